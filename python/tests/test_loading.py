"""get_or_load from asyncio and threads: single flight, errors, cancellation,
the event loop never blocked, and the namespace policies (negative_ttl,
stale_ttl, refresh_ahead, load_timeout)."""

import asyncio
import threading
import time

import pytest

import callcache
from callcache import Loaded
from callcache.testing import run


def make_cache(**policy):
    return callcache.Engine(namespaces={"data": {"ttl": "60s", **policy}}).isolated()


async def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def data_stats(cache):
    return cache.stats()["namespaces"]["data"]


async def test_one_loader_call_for_1000_coroutines_and_8_threads():
    cache = make_cache()
    calls = []
    release = asyncio.Event()

    async def loader():
        calls.append("async")
        await release.wait()
        return {"answer": 42}

    def thread_loader():  # must never run: the coroutine's flight is in progress
        calls.append("thread")
        return {"answer": -1}

    tasks = [asyncio.create_task(cache.get_or_load("data", "k", loader)) for _ in range(1000)]
    await wait_for(lambda: calls)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_load_sync("data", "k", thread_loader)))
               for _ in range(8)]
    for t in threads:
        t.start()
    # Every waiter has joined the one flight before it completes.
    await wait_for(lambda: data_stats(cache)["coalesced"] == 999 + 8)
    release.set()
    values = await asyncio.gather(*tasks)
    await asyncio.get_running_loop().run_in_executor(None, lambda: [t.join() for t in threads])
    assert calls == ["async"]
    assert len(results) == 8
    first = values[0]
    assert all(v is first for v in values + results)  # the very same object: no copy on a hit
    s = data_stats(cache)
    assert (s["loads"], s["misses"], s["coalesced"]) == (1, 1008, 1007)


async def test_a_thread_can_lead_and_coroutines_follow():
    cache = make_cache()
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return "from thread"

    t = threading.Thread(target=lambda: cache.get_or_load_sync("data", "k", slow))
    t.start()
    await wait_for(lambda: calls)

    async def never():
        calls.append(2)
        return "from coroutine"

    values = await asyncio.gather(*(cache.get_or_load("data", "k", never) for _ in range(100)))
    await asyncio.get_running_loop().run_in_executor(None, t.join)
    assert calls == [1] and set(values) == {"from thread"}


async def test_every_waiter_raises_the_loaders_own_exception():
    cache = make_cache()
    release = asyncio.Event()
    boom = ValueError("upstream said no")

    async def loader():
        await release.wait()
        raise boom

    tasks = [asyncio.create_task(cache.get_or_load("data", "k", loader)) for _ in range(100)]
    await wait_for(lambda: data_stats(cache)["coalesced"] == 99)
    caught = []

    def thread_wait():
        try:
            cache.get_or_load_sync("data", "k", lambda: "unused")
        except ValueError as e:
            caught.append(e)

    threads = [threading.Thread(target=thread_wait) for _ in range(4)]
    for t in threads:
        t.start()
    await wait_for(lambda: data_stats(cache)["coalesced"] == 103)
    release.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().run_in_executor(None, lambda: [t.join() for t in threads])
    assert all(o is boom for o in outcomes)
    assert len(caught) == 4 and all(e is boom for e in caught)
    # No negative_ttl: nothing is remembered, the next call loads again.
    assert await cache.get_or_load("data", "k", lambda: "fine") == "fine"


async def test_cancelling_one_waiter_does_not_cancel_the_load():
    cache = make_cache()
    release = asyncio.Event()
    finished = []

    async def loader():
        await release.wait()
        finished.append(True)
        return "loaded"

    leader = asyncio.create_task(cache.get_or_load("data", "k", loader))
    await asyncio.sleep(0.01)
    follower = asyncio.create_task(cache.get_or_load("data", "k", loader))
    await asyncio.sleep(0.01)
    leader.cancel()  # the caller that started the load goes away
    with pytest.raises(asyncio.CancelledError):
        await leader
    release.set()
    assert await follower == "loaded"
    assert finished == [True]
    assert cache.get("data", "k") == "loaded"  # and it was stored


async def test_wait_timeout_gives_up_but_the_load_continues():
    cache = make_cache()
    release = asyncio.Event()

    async def loader():
        await release.wait()
        return "late"

    other = asyncio.create_task(cache.get_or_load("data", "k", loader))
    await asyncio.sleep(0.01)
    with pytest.raises(callcache.DeadlineExceeded):
        await cache.get_or_load("data", "k", loader, timeout=0.05)
    release.set()
    assert await other == "late"
    assert cache.get("data", "k") == "late"


class Heartbeat:
    """Counts ticks of a 10 ms task: a blocked event loop stops it."""

    def __init__(self):
        self.ticks = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self):
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1

    def stop(self):
        self._task.cancel()


async def test_loop_keeps_running_while_a_load_led_by_a_thread_takes_200ms():
    cache = make_cache()
    started = threading.Event()

    def slow():
        started.set()
        time.sleep(0.2)  # a C++-side wait for the coroutine below
        return "v"

    t = threading.Thread(target=lambda: cache.get_or_load_sync("data", "k", slow))
    t.start()
    await asyncio.get_running_loop().run_in_executor(None, started.wait)
    beat = Heartbeat()
    assert await cache.get_or_load("data", "k", lambda: "unused") == "v"
    beat.stop()
    await asyncio.get_running_loop().run_in_executor(None, t.join)
    assert beat.ticks >= 1  # a blocked loop cannot tick at all during the wait


async def test_a_synchronous_loader_runs_on_a_thread_not_on_the_loop():
    cache = make_cache()
    beat = Heartbeat()

    def blocking_loader():
        time.sleep(0.2)
        return threading.current_thread() is threading.main_thread()

    on_main_thread = await cache.get_or_load("data", "k", blocking_loader)
    beat.stop()
    assert on_main_thread is False
    assert beat.ticks >= 1  # a blocked loop cannot tick at all during the wait


async def test_loaded_sets_ttl_and_tags():
    clock = callcache.VirtualClock()
    cache = callcache.Engine(namespaces={"data": {"ttl": "60s"}}, clock=clock).isolated()
    v = await cache.get_or_load("data", "k", lambda: Loaded("short", ttl=5, tags=["acct:1"]))
    assert v == "short"
    clock.advance(6)
    assert cache.get("data", "k") is None  # its own ttl, not the namespace's
    await cache.get_or_load("data", "k", lambda: Loaded("tagged", tags=["acct:1"]))
    assert cache.invalidate_tag("acct:1") == 1
    assert cache.get("data", "k") is None


def test_negative_ttl_remembers_the_failure_and_its_exception():
    clock = callcache.VirtualClock()
    cache = callcache.Engine(namespaces={"data": {"ttl": "60s", "negative_ttl": "30s"}}, clock=clock).isolated()
    calls = []
    gone = LookupError("no such channel")

    def missing():
        calls.append(1)
        raise gone

    for _ in range(3):
        with pytest.raises(LookupError) as info:
            cache.get_or_load_sync("data", "@nobody", missing)
        assert info.value is gone
    assert calls == [1]
    assert data_stats(cache)["negative_hits"] == 2
    clock.advance(31)
    assert cache.get_or_load_sync("data", "@nobody", lambda: "appeared") == "appeared"


def test_stale_while_revalidate_and_stale_if_error():
    clock = callcache.VirtualClock()
    cache = callcache.Engine(namespaces={"data": {"ttl": "10s", "stale_ttl": "30s"}}, clock=clock).isolated()
    versions = iter(["v1", "v2"])

    async def main():
        loads = []

        async def loader():
            loads.append(1)
            return next(versions)

        assert await cache.get_or_load("data", "k", loader) == "v1"
        clock.advance(15)  # past ttl, within stale_ttl
        assert await cache.get_or_load("data", "k", loader) == "v1"  # served stale, refresh started
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert await cache.get_or_load("data", "k", loader) == "v2"
        assert len(loads) == 2

        clock.advance(15)

        async def failing():
            raise RuntimeError("upstream down")

        assert await cache.get_or_load("data", "k", failing) == "v2"  # stale-if-error
        await asyncio.sleep(0)
        assert await cache.get_or_load("data", "k", failing) == "v2"
        s = data_stats(cache)
        assert s["stale_hits"] >= 2 and s["refresh_failures"] == 1

    asyncio.run(main())


def test_refresh_ahead_reloads_before_expiry():
    clock = callcache.VirtualClock()
    cache = callcache.Engine(namespaces={"data": {"ttl": "10s", "refresh_ahead": "3s"}}, clock=clock).isolated()
    loads = []

    def loader():
        loads.append(1)
        return len(loads)

    assert cache.get_or_load_sync("data", "k", loader) == 1
    clock.advance(8)  # inside the refresh-ahead window
    assert cache.get_or_load_sync("data", "k", loader) == 1  # still served, refresh started
    clock.advance(0)  # the refresh of a blocking loader runs on the engine's scheduler
    assert loads == [1, 1]
    assert cache.get("data", "k") == 2


def test_load_timeout_fails_every_waiter_in_virtual_time():
    clock = callcache.VirtualClock()
    cache = callcache.Engine(namespaces={"data": {"ttl": "60s", "load_timeout": "5s"}}, clock=clock).isolated()

    async def main():
        hang = asyncio.Event()

        async def loader():
            await hang.wait()

        start = clock.now()
        outcomes = await asyncio.gather(*(cache.get_or_load("data", "k", loader) for _ in range(10)),
                                        return_exceptions=True)
        assert all(isinstance(o, callcache.Timeout) for o in outcomes)
        assert "did not complete within 5000 ms" in str(outcomes[0])
        assert clock.now() - start == pytest.approx(5.0)
        hang.set()

    run(main(), clock)
    assert data_stats(cache)["load_timeouts"] == 1


async def test_decorator_on_async_and_sync_functions():
    engine = callcache.Engine(namespaces={"analytics": {"ttl": "5m"}})
    calls = []

    @engine.cached("analytics", key=lambda account_id: f"acct:{account_id}",
                   tags=lambda account_id: [f"acct:{account_id}"])
    async def analytics(account_id):
        calls.append(account_id)
        await asyncio.sleep(0.01)
        return {"account": account_id, "followers": 100 * account_id}

    results = await asyncio.gather(*(analytics(7) for _ in range(50)))
    assert calls == [7] and all(r is results[0] for r in results)
    assert engine.cache.get("analytics", "acct:7") == {"account": 7, "followers": 700}
    assert engine.cache.invalidate_tag("acct:7") == 1
    await analytics(7)
    assert calls == [7, 7]
    assert analytics.invalidate(7) is True
    await analytics(7)
    assert calls == [7, 7, 7]

    @engine.cached("analytics")
    def report(day, *, region="eu"):
        calls.append((day, region))
        return f"{day}/{region}"

    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, report, "mon") == "mon/eu"
    assert await loop.run_in_executor(None, lambda: report("mon", region="eu")) == "mon/eu"
    assert await loop.run_in_executor(None, lambda: report("mon", region="us")) == "mon/us"
    assert calls[3:] == [("mon", "eu"), ("mon", "us")]


async def test_sync_forms_refuse_to_block_a_running_loop():
    cache = make_cache()
    with pytest.raises(RuntimeError, match="would block the running event loop"):
        cache.get_or_load_sync("data", "k", lambda: 1)

    async def coro():
        return 1

    with pytest.raises(TypeError, match="synchronous loader"):
        await asyncio.get_running_loop().run_in_executor(None, cache.get_or_load_sync, "data", "k", coro)


async def test_coroutines_on_other_event_loops_join_the_same_flight():
    cache = make_cache()
    release = asyncio.Event()
    calls = []

    async def loader():
        calls.append(1)
        await release.wait()
        return "shared"

    leader = asyncio.create_task(cache.get_or_load("data", "k", loader))
    await wait_for(lambda: calls)
    results = []

    def other_loop():  # a second event loop, in its own thread
        async def follow():
            return await asyncio.gather(*(cache.get_or_load("data", "k", loader) for _ in range(10)))

        results.extend(asyncio.run(follow()))

    t = threading.Thread(target=other_loop)
    t.start()
    await wait_for(lambda: data_stats(cache)["coalesced"] == 10)
    release.set()
    assert await leader == "shared"
    await asyncio.get_running_loop().run_in_executor(None, t.join)
    assert results == ["shared"] * 10 and calls == [1]
