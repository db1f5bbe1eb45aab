"""The package on uvloop's event loop (Debian python3-uvloop), a common
choice for bots: it has none of asyncio's private loop attributes, so
everything the package does with a loop must go through public API."""

import asyncio
import threading
import time

import callcache
import uvloop


def run(coro):
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_coroutines_on_uvloop_share_one_load_and_a_new_loop_is_picked_up():
    engine = callcache.Engine(namespaces={"n": {"ttl": 60}})
    calls = []

    async def load():
        calls.append(threading.get_ident())
        await asyncio.sleep(0.05)
        return "v"

    async def many():
        return await asyncio.gather(*(engine.cache.get_or_load("n", "k", load) for _ in range(100)))

    assert run(many()) == ["v"] * 100
    assert calls == [threading.get_ident()]  # one load, a task of the loop on this thread

    # A second uvloop loop on the same thread (the first one is closed), and
    # a plain loader, which runs on a worker thread without blocking the loop.
    def sync_load():
        time.sleep(0.05)
        return "w"

    async def one():
        return await engine.cache.get_or_load("n", "k2", sync_load)

    assert run(one()) == "w"
    # The previous asyncio loop of this thread is not reused either.
    assert asyncio.run(engine.cache.get_or_load("n", "k3", load)) == "v"
    assert len(calls) == 2
    engine.close()


def test_the_toolkit_waits_on_uvloop():
    limiter = callcache.RateLimiter({"r": {"interval": "100ms", "key": ["account"]}})
    locks = callcache.AccountLocks("strict", wait_timeout=1.0)
    queue = callcache.BoundedQueue(1, "block")

    async def main():
        t0 = time.monotonic()
        await limiter.acquire(account="a")
        async with limiter.slot(account="a"):
            waited = time.monotonic() - t0
        async with locks.hold("acct", task="one"):
            other = asyncio.ensure_future(locks.acquire("acct", task="two"))
            await asyncio.sleep(0.05)
            assert not other.done()
        (await other).release()
        await queue.put("x")
        consumer = asyncio.ensure_future(queue.get())
        await queue.put("y")  # waits for room until the consumer took "x"
        return waited, await consumer, await queue.get()

    waited, first, second = run(main())
    assert waited >= 0.08
    assert (first, second) == ("x", "y")
