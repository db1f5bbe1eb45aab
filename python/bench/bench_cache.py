#!/usr/bin/env python3
"""callcache from Python against what Python bots use today, in one run.

Baselines, measured in the same process and run (the machine is shared and
noisy: compare the ratios, not the absolute figures):

- ``cachetools``: ``cachetools.TTLCache`` behind a ``threading.Lock`` (the
  usual way to share it between threads or tasks); no single flight.
- ``seeds``: the seeds' asyncio pattern: a dict with an ``OrderedDict`` for
  LRU order, an ``asyncio.Lock`` around it, and a dict of in-flight futures
  so concurrent misses share one load (its thread form: the same with a
  ``threading.Lock`` and no in-flight futures).

Measured: hit throughput from asyncio (``await get_or_load`` on a present
key), from 1 and 4 threads (``get``), the cost of a coalesced load (1,000
coroutines asking for one missing key), and bytes per entry (RSS growth of a
fresh process holding 200,000 entries).

    PYTHONPATH=build/release/python python3 python/bench/bench_cache.py [--quick]
"""

import argparse
import asyncio
import collections
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import cachetools

import callcache

TTL = 300.0
KEYS = [f"user:{i}" for i in range(1000)]


# ---- The two baselines ------------------------------------------------------------


class CachetoolsCache:
    def __init__(self, maxsize=300_000):
        self._c = cachetools.TTLCache(maxsize=maxsize, ttl=TTL)
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            return self._c.get(key)

    def put(self, key, value):
        with self._lock:
            self._c[key] = value

    async def get_or_load(self, key, loader):
        with self._lock:
            value = self._c.get(key)
        if value is None:  # every concurrent miss loads
            value = await loader()
            with self._lock:
                self._c[key] = value
        return value


class SeedsCache:
    """dict + OrderedDict + asyncio.Lock + in-flight futures."""

    def __init__(self, maxsize=300_000):
        self._data = collections.OrderedDict()  # key -> (value, expires)
        self._maxsize = maxsize
        self._lock = asyncio.Lock()
        self._tlock = threading.Lock()
        self._inflight = {}

    def _lookup(self, key):
        item = self._data.get(key)
        if item is not None and item[1] > time.monotonic():
            self._data.move_to_end(key)
            return item[0]
        return None

    def _store(self, key, value):
        self._data[key] = (value, time.monotonic() + TTL)
        self._data.move_to_end(key)
        while len(self._data) > self._maxsize:
            self._data.popitem(last=False)

    def get(self, key):  # the thread form
        with self._tlock:
            return self._lookup(key)

    def put(self, key, value):
        with self._tlock:
            self._store(key, value)

    async def get_or_load(self, key, loader):
        async with self._lock:
            value = self._lookup(key)
            if value is not None:
                return value
            fut = self._inflight.get(key)
            leader = fut is None
            if leader:
                fut = asyncio.get_running_loop().create_future()
                self._inflight[key] = fut
        if not leader:
            return await fut
        try:
            value = await loader()
        except BaseException as e:
            fut.set_exception(e)
            raise
        finally:
            self._inflight.pop(key, None)
        async with self._lock:
            self._store(key, value)
        fut.set_result(value)
        return value


class CallcacheCache:
    def __init__(self, maxsize=300_000):
        engine = callcache.Engine(namespaces={"bench": {"ttl": TTL, "max_entries": maxsize}})
        self._cache = engine.isolated()

    def get(self, key):
        return self._cache.get("bench", key)

    def put(self, key, value):
        self._cache.put("bench", key, value)

    async def get_or_load(self, key, loader):
        return await self._cache.get_or_load("bench", key, loader)


IMPLS = {"callcache": CallcacheCache, "cachetools": CachetoolsCache, "seeds": SeedsCache}


# ---- Measurements ----------------------------------------------------------------------


def asyncio_hits(cls, n):
    cache = cls()
    for k in KEYS:
        cache.put(k, {"id": k})

    async def loader():
        raise AssertionError("a hit was expected")

    async def main():
        get = cache.get_or_load
        t0 = time.perf_counter()
        for i in range(n):
            await get(KEYS[i % 1000], loader)
        return n / (time.perf_counter() - t0)

    return asyncio.run(main())


def thread_hits(cls, threads, n):
    cache = cls()
    for k in KEYS:
        cache.put(k, {"id": k})
    start = threading.Barrier(threads + 1)

    def work():
        get = cache.get
        keys = KEYS
        start.wait()
        for i in range(n):
            get(keys[i % 1000])

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return threads * n / (time.perf_counter() - t0)


def coalesced_load(cls, waiters):
    """Microseconds per waiter for `waiters` coroutines on one missing key, and loads made."""
    loads = 0

    async def loader():
        nonlocal loads
        loads += 1
        await asyncio.sleep(0)
        return "value"

    async def main():
        best = float("inf")
        for rep in range(5):
            cache = cls()
            t0 = time.perf_counter()
            await asyncio.gather(*(cache.get_or_load(f"missing:{rep}", loader) for _ in range(waiters)))
            best = min(best, time.perf_counter() - t0)
        return best

    seconds = asyncio.run(main())
    return seconds / waiters * 1e6, loads / 5


MEMORY_CHILD = """
import gc, os, sys
sys.path[:0] = {path!r}
import bench_cache as b
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
n = {n}
values = [("v%08d" % i).encode() for i in range(n)]   # 9-byte values, kept alive by this list
cache = b.IMPLS[{name!r}](maxsize=n)
gc.collect()
before = rss()
for i in range(n):
    cache.put("user:%d" % i, values[i])
gc.collect()
print((rss() - before) / n)
"""


def bytes_per_entry(name, n):
    code = MEMORY_CHILD.format(path=[os.path.dirname(os.path.abspath(__file__))] + sys.path, n=n, name=name)
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer operations (a smoke run)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    n = 20_000 if args.quick else 300_000
    reps = 1 if args.quick else 5
    entries = 20_000 if args.quick else 200_000
    # Repetitions interleave the implementations, so load drift on a shared
    # machine hits all three alike; each figure is the median of its reps.
    samples = {name: collections.defaultdict(list) for name in IMPLS}
    for _ in range(reps):
        for name, cls in IMPLS.items():
            s = samples[name]
            s["asyncio_hits_per_s"].append(asyncio_hits(cls, n))
            s["thread1_hits_per_s"].append(thread_hits(cls, 1, n))
            s["thread4_hits_per_s"].append(thread_hits(cls, 4, n // 4))
            us, loads = coalesced_load(cls, 1000)
            s["coalesced_us_per_waiter"].append(us)
            s["loads_for_1000_waiters"].append(loads)
            s["bytes_per_entry"].append(bytes_per_entry(name, entries))
    results = {name: {k: statistics.median(v) for k, v in s.items()} for name, s in samples.items()}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    cc = results["callcache"]
    rows = [("hit from asyncio (await get_or_load)", "asyncio_hits_per_s", "k/s", 1e-3, True),
            ("hit, 1 thread (get)", "thread1_hits_per_s", "k/s", 1e-3, True),
            ("hit, 4 threads (get)", "thread4_hits_per_s", "k/s", 1e-3, True),
            ("coalesced load, per waiter (1,000 waiters)", "coalesced_us_per_waiter", "us", 1, False),
            (f"bytes per entry ({entries:,} entries)", "bytes_per_entry", "B", 1, False)]
    print(f"{'measure':<44}{'callcache':>12}{'cachetools':>12}{'seeds':>12}{'vs cachetools':>15}{'vs seeds':>10}")
    for label, key, unit, scale, higher_better in rows:
        vals = [results[k][key] * scale for k in IMPLS]
        ratio = (lambda b: cc[key] / b) if higher_better else (lambda b: b / cc[key])
        print(f"{label:<44}" + "".join(f"{v:>9.1f} {unit:<2}" for v in vals)
              + f"{ratio(results['cachetools'][key]):>14.2f}x{ratio(results['seeds'][key]):>9.2f}x")
    print(f"{'loads for 1,000 concurrent misses':<44}"
          + "".join(f"{results[k]['loads_for_1000_waiters']:>12.0f}" for k in IMPLS))
    print("\n(ratios > 1: callcache is better — faster, or smaller)")


if __name__ == "__main__":
    main()
