"""The toolkit from asyncio and threads: rate limiter, account locks, bounded
queue, seen set, state store. Timing is checked on virtual time (exact and
instant); the event loop's liveness on real time."""

import asyncio
import logging
import threading
import time

import pytest

import callcache
from callcache.testing import run


class Heartbeat:
    def __init__(self):
        self.ticks = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self):
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1

    def stop(self):
        self._task.cancel()


# ---- Rate limiter -------------------------------------------------------------------


def test_slots_follow_the_mtproto_preset_per_account_and_method():
    clock = callcache.VirtualClock()
    limiter = callcache.RateLimiter.telegram_user(clock=clock)

    async def main():
        starts = []

        async def call(account, method):
            async with limiter.slot(method=method, account=account):
                starts.append((account, method, round(clock.now() - 1.0, 3)))

        await asyncio.gather(*(call("a1", "get_entity") for _ in range(3)),
                             call("a2", "get_entity"), call("a1", "get_messages"))
        return starts

    starts = run(main(), clock)
    # get_entity: one per 3 s per account; other accounts and methods never wait for it.
    assert sorted(starts) == [("a1", "get_entity", 0.0), ("a1", "get_entity", 3.0), ("a1", "get_entity", 6.0),
                              ("a1", "get_messages", 0.0), ("a2", "get_entity", 0.0)]


def test_deadline_refuses_without_reserving_and_penalize_blocks_exactly_its_key():
    clock = callcache.VirtualClock()
    limiter = callcache.RateLimiter({"per_chat": {"limit": 1, "period": "1s", "key": ["bot", "chat"]}}, clock=clock)

    async def main():
        await limiter.acquire(bot="b", chat=1)
        with pytest.raises(callcache.DeadlineExceeded):
            await limiter.acquire(bot="b", chat=1, deadline=0.5)  # needs 1 s
        t0 = clock.now()
        await limiter.acquire(bot="b", chat=1)  # the refused call reserved nothing
        assert clock.now() - t0 == pytest.approx(1.0)

        limiter.penalize({"bot": "b", "chat": 2}, 30)  # a 429 retry_after for chat 2 only
        t0 = clock.now()
        await limiter.acquire(bot="b", chat=3)
        assert clock.now() == t0
        await limiter.acquire(bot="b", chat=2)
        assert clock.now() - t0 == pytest.approx(30.0)

    run(main(), clock)
    stats = limiter.stats()
    assert stats["rules"]["per_chat"]["deadline_refusals"] == 1
    assert stats["rules"]["penalty"]["penalties"] == 1
    assert 'rule="per_chat"' in limiter.prometheus()


def test_bad_rules_and_keys_are_refused():
    with pytest.raises(callcache.ConfigError, match="rate_limits.rules.r.limit"):
        callcache.RateLimiter({"r": {"limit": 0}})
    with pytest.raises(callcache.ConfigError, match="rate_limits.presets: unknown preset 'telegram_pigeon'"):
        callcache.RateLimiter(presets=["telegram_pigeon"])
    limiter = callcache.RateLimiter.telegram_bot()
    with pytest.raises(ValueError, match="unknown attribute 'user'"):
        limiter.penalize({"user": 1}, 3)
    with pytest.raises(TypeError, match="chat: expected an int"):
        limiter.try_acquire(bot="b", chat="-100")


async def test_a_200ms_slot_wait_never_blocks_the_loop():
    limiter = callcache.RateLimiter({"r": {"interval": "200ms", "key": ["account"]}})
    await limiter.acquire(account="a")
    beat = Heartbeat()
    t0 = time.monotonic()
    async with limiter.slot(account="a"):
        waited = time.monotonic() - t0
    beat.stop()
    assert waited >= 0.15 and beat.ticks >= 1  # a blocked loop cannot tick at all during the wait


def test_threads_wait_in_the_library_not_in_python():
    limiter = callcache.RateLimiter({"r": {"interval": "100ms", "key": ["account"]}})
    t0 = time.monotonic()
    threads = [threading.Thread(target=limiter.acquire_sync, kwargs={"account": "a"}) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - t0 >= 0.19  # three calls of one key: 0, 100, 200 ms
    assert limiter.try_acquire(account="b") == (True, 0.0)


# ---- Account locks ----------------------------------------------------------------------


def test_strict_locks_refuse_wait_and_time_out():
    clock = callcache.VirtualClock()
    locks = callcache.AccountLocks("strict", wait_timeout=0, clock=clock)

    async def main():
        async with locks.hold("acct", task="likebot"):
            with pytest.raises(callcache.Busy, match="likebot"):
                await locks.acquire("acct", task="other")
            with pytest.raises(callcache.Timeout):
                await locks.acquire("acct", task="other", wait=5)
            assert clock.now() == pytest.approx(6.0)
            assert locks.holder("acct")["task"] == "likebot"

            async def later_release(guard_task):
                await asyncio.sleep(2)

            waiter = asyncio.create_task(locks.acquire("acct", task="patient", wait=60))
            await asyncio.sleep(2)
            assert not waiter.done()
        guard = await waiter  # granted when the first task left
        assert clock.now() == pytest.approx(8.0)
        assert locks.holder("acct")["task"] == "patient"
        guard.release()
        assert locks.holder("acct") is None

    run(main(), clock)
    s = locks.stats()
    assert (s["refusals"], s["timeouts"], s["waits"]) == (1, 1, 2)


def test_several_accounts_at_once_never_deadlock():
    clock = callcache.VirtualClock()
    locks = callcache.AccountLocks("strict", wait_timeout=3600, clock=clock)
    done = []

    async def task(name, accounts):
        async with locks.hold(accounts, task=name):
            await asyncio.sleep(1)
            done.append(name)

    async def main():
        # Opposite orders: per-account locking would deadlock; all-or-none does not.
        await asyncio.gather(task("ab", ["a", "b"]), task("ba", ["b", "a"]), task("bc", ["b", "c"]),
                             task("c", "c"))

    run(main(), clock)
    assert sorted(done) == ["ab", "ba", "bc", "c"]


def test_warn_mode_proceeds_and_logs(caplog):
    locks = callcache.AccountLocks("warn")
    with caplog.at_level(logging.WARNING, logger="callcache.locks"):
        with locks.hold("acct", task="first"), locks.hold("acct", task="second"):
            assert len(locks.holders()) == 2
    assert locks.stats()["conflicts"] == 1
    assert any("first" in r.message and "second" in r.message for r in caplog.records)


async def test_cancelled_lock_waiter_gives_the_account_back_and_the_loop_keeps_running():
    locks = callcache.AccountLocks("strict", wait_timeout=10)
    guard = await locks.acquire("acct", task="holder")
    beat = Heartbeat()
    waiter = asyncio.create_task(locks.acquire("acct", task="waiter"))
    await asyncio.sleep(0.2)  # the waiter waits in the library, the loop runs
    waiter.cancel()
    guard.release()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0.05)
    beat.stop()
    assert beat.ticks >= 1  # a blocked loop cannot tick at all during the wait
    assert locks.holder("acct") is None  # granted to a cancelled waiter, then given back
    async with locks.hold("acct", task="next", wait=1):
        pass


# ---- Bounded queue ---------------------------------------------------------------------------


async def test_queue_policies():
    q = callcache.BoundedQueue(2, "drop_newest")
    assert [await q.put(i) for i in range(3)] == ["enqueued", "enqueued", "dropped_newest"]
    assert [await q.get(), await q.get()] == [0, 1]
    q = callcache.BoundedQueue(2, "drop_oldest")
    assert [await q.put(i) for i in range(3)] == ["enqueued", "enqueued", "enqueued_dropped_oldest"]
    assert [await q.get(), await q.get()] == [1, 2]
    q = callcache.BoundedQueue(1, "reject", name="updates")
    await q.put("a")
    with pytest.raises(callcache.ResourceExhausted, match="queue 'updates' is full"):
        await q.put("b")
    assert q.stats()["rejected"] == 1
    with pytest.raises(ValueError, match="policy: expected one of block"):
        callcache.BoundedQueue(1, "spill")
    with pytest.raises(callcache.errors.InvalidArgument, match="capacity must be at least 1"):
        callcache.BoundedQueue(0)


def test_blocking_queue_waits_for_room_and_times_out_in_virtual_time():
    clock = callcache.VirtualClock()
    q = callcache.BoundedQueue(1, "block", clock=clock)

    async def main():
        await q.put("first")
        with pytest.raises(callcache.Timeout):
            await q.put("second", timeout=5)
        assert clock.now() == pytest.approx(6.0)

        async def consumer():
            await asyncio.sleep(3)
            return await q.get()

        c = asyncio.create_task(consumer())
        assert await q.put("third") == "enqueued"  # waits for the consumer's room
        assert clock.now() == pytest.approx(9.0)
        assert await c == "first"
        q.close()
        assert [item async for item in q] == ["third"]
        with pytest.raises(callcache.QueueClosed):
            await q.put("late")

    run(main(), clock)
    s = q.stats()
    assert s["timed_out"] == 1 and s["refused_closed"] == 1 and s["high_water"] == 1


async def test_queue_shared_by_threads_and_coroutines():
    q = callcache.BoundedQueue(4, "block")
    n = 2000
    received = []

    def producer(base):
        for i in range(n):
            q.put_sync(base + i)

    async def consumer():
        while True:
            try:
                received.append(await q.get())
            except callcache.QueueClosed:
                return

    beat = Heartbeat()
    consumers = [asyncio.create_task(consumer()) for _ in range(3)]
    threads = [threading.Thread(target=producer, args=(k * n,)) for k in range(2)]
    for t in threads:
        t.start()
    await asyncio.get_running_loop().run_in_executor(None, lambda: [t.join() for t in threads])
    q.close()
    await asyncio.gather(*consumers)
    beat.stop()
    assert sorted(received) == list(range(2 * n))
    assert q.stats()["high_water"] <= 4


# ---- Seen set and state store --------------------------------------------------------------------


def test_seen_set_deduplicates_with_ttl_and_capacity():
    clock = callcache.VirtualClock()
    seen = callcache.SeenSet(capacity=2, ttl=10, clock=clock)
    assert seen.insert_if_new(1) and not seen.insert_if_new(1)
    assert seen.insert_if_new("update-2") and 1 in seen
    assert seen.insert_if_new(3)  # full: the least recently seen id (1) is forgotten
    assert 1 not in seen
    clock.advance(11)
    assert seen.insert_if_new(3)  # expired: new again
    assert seen.stats()["evicted"] == 1


def test_state_store_never_evicts_live_state():
    clock = callcache.VirtualClock()
    store = callcache.StateStore(max_states=2, idle_ttl=60, clock=clock)
    store.put("user:1", {"step": "ask_name"})
    store.put("user:2", {"step": "ask_age"})
    with pytest.raises(callcache.ResourceExhausted, match="never evicted before their idle TTL"):
        store.put("user:3", {"step": "start"})
    assert store.update("user:1", lambda s: {**s, "name": "Ann"}) == {"step": "ask_name", "name": "Ann"}
    clock.advance(61)
    store.put("user:3", {"step": "start"})  # the idle states expired
    assert store.get("user:1") is None and store.get("user:3") == {"step": "start"}
    assert store.stats()["refusals"] == 1
