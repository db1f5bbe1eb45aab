"""Two processes on one real redis-server (started on loopback by the
fixture): they share the second tier, one rate limit (and its FLOOD_WAIT
penalties) and one account lock; an invalidation in one reaches the other's
L1, and a key one of them is loading is not loaded again by the other."""

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time

import callcache
import pytest


def config(url):
    return {
        "namespaces": {"profiles": {"ttl": "1h"}},
        "storage": {"l2": "redis", "redis_url": url},
        "rate_limits": {"rules": {"per_account": {"interval": "10s", "key": ["account"]}}},
        "account_locks": {"mode": "strict", "wait_timeout": 0},
    }


CHILD = textwrap.dedent("""
    import asyncio, json, sys, callcache
    engine = callcache.Engine.from_config(json.loads(sys.argv[1]))
    out = {"limiter_distributed": engine.limiter.distributed, "locks_distributed": engine.locks.distributed}

    def must_not_load():
        raise AssertionError("the loader ran: the other process's value was not in Redis")

    out["sync"] = engine.cache.get_or_load_sync("profiles", "alice", must_not_load, tenant="bot")

    async def read():
        async def never():
            must_not_load()
        return await engine.cache.get_or_load("profiles", "bob", never, tenant="bot")

    out["async"] = asyncio.run(read())
    out["l2_hits"] = engine.stats()["namespaces"]["profiles"]["l2"]["hits"]
    out["admitted"], out["wait"] = engine.limiter.try_acquire(account="acct-1")
    out["penalized"] = engine.limiter.try_acquire(account="acct-2", method="get_entity")
    out["other_method"] = engine.limiter.try_acquire(account="acct-2", method="send_reaction")
    try:
        engine.locks.acquire_sync("acct-1", task="child", wait=0).release()
        out["lock"] = "acquired"
    except callcache.Busy as e:
        out["lock"] = str(e)
    print(json.dumps(out))
""")


def child(cfg):
    r = subprocess.run([sys.executable, "-P", "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


async def test_two_processes_share_a_redis_tier_a_limit_and_a_lock(redis_server):
    cfg = config(redis_server.url)
    engine = callcache.Engine.from_config(cfg)
    assert engine.limiter.distributed and engine.locks.distributed
    engine.cache.put("profiles", "alice", {"name": "Alice"}, tenant="bot")
    assert await engine.cache.get_or_load("profiles", "bob", lambda: {"name": "Bob"}, tenant="bot") == {"name": "Bob"}
    assert engine.limiter.try_acquire(account="acct-1") == (True, 0.0)
    guard = await engine.locks.acquire("acct-1", task="parent")
    engine.limiter.penalize({"account": "acct-2", "method": "get_entity"}, 60)  # a FLOOD_WAIT seen here

    out = child(cfg)
    assert out["limiter_distributed"] and out["locks_distributed"]
    assert out["sync"] == {"name": "Alice"} and out["async"] == {"name": "Bob"}
    assert out["l2_hits"] == 2
    assert out["admitted"] is False and 0 < out["wait"] <= 10.0  # this process used the slot
    penalized, wait = out["penalized"]
    assert penalized is False and 10.0 < wait <= 60.0  # the penalty, not the rule, holds it
    assert out["other_method"] == [True, 0.0]  # exactly that method of that account
    assert "parent" in out["lock"]  # held by this process's task, named in the refusal

    guard.release()
    assert child(cfg)["lock"] == "acquired"
    assert engine.locks.holder("acct-1") is None
    engine.close()


@pytest.mark.parametrize("coordinated", [False, True])
def test_redis_down_degrades_to_memory_and_never_fails_a_read(redis_server, coordinated):
    cfg = config(redis_server.url)
    del cfg["rate_limits"], cfg["account_locks"]
    cfg["storage"]["redis_coordination"] = coordinated
    engine = callcache.Engine.from_config(cfg)
    redis_server.stop()
    calls = []

    def loader():
        calls.append(1)
        return "fresh"

    assert engine.cache.get_or_load_sync("profiles", "k", loader) == "fresh"
    assert engine.cache.get_or_load_sync("profiles", "k", loader) == "fresh"  # L1 still works
    if coordinated:
        # Invalidations from other processes may be missed while Redis is
        # down: L1 is dropped when that is noticed, then every second, so a
        # read may load again, and still never fails.
        assert 1 <= len(calls) <= 2
        assert wait_until(lambda: engine.stats()["l2"]["coordination"]["l1_flushes"] >= 1)
        assert engine.cache.get_or_load_sync("profiles", "k", loader) == "fresh"
    else:
        assert calls == [1]
    assert engine.stats()["l2"]["errors"] >= 1
    engine.cache.put("profiles", "p", 1)  # an L2 write error is counted, not raised
    assert engine.cache.get("profiles", "p") == 1


# ---- Processes on one Redis keep their L1s coherent and load a key once -------------

ERASER = textwrap.dedent("""
    import json, sys, callcache
    engine = callcache.Engine.from_config(json.loads(sys.argv[1]))
    engine.cache.erase("profiles", "alice", tenant="bot")
    with engine.task("eraser") as cache:  # process scope: the same engine and coordinator
        cache.invalidate_tag("team")
    engine.close()
""")


def wait_until(predicate, limit=5.0):
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_an_invalidation_in_another_process_reaches_this_processs_l1(redis_server):
    cfg = config(redis_server.url)
    del cfg["rate_limits"], cfg["account_locks"]
    uncoordinated = json.loads(json.dumps(cfg))
    uncoordinated["storage"]["redis_coordination"] = False
    engines = {"coordinated": callcache.Engine.from_config(cfg),
               "uncoordinated": callcache.Engine.from_config(uncoordinated)}
    assert wait_until(lambda: engines["coordinated"].stats()["l2"]["subscribed"])
    assert "subscribed" not in engines["uncoordinated"].stats()["l2"]
    for engine in engines.values():
        engine.cache.put("profiles", "alice", {"v": 1}, tenant="bot")
        engine.cache.put("profiles", "carol", {"v": 1}, tenant="bot", tags=["team"])

    r = subprocess.run([sys.executable, "-P", "-c", ERASER, json.dumps(cfg)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr

    # The key and the tag the other process invalidated leave this process's
    # L1 within moments, not at their 1 h TTL ...
    cache = engines["coordinated"].cache
    assert wait_until(lambda: cache.get("profiles", "alice", tenant="bot") is None, limit=2.0)
    assert wait_until(lambda: cache.get("profiles", "carol", tenant="bot") is None, limit=2.0)
    assert engines["coordinated"].stats()["l2"]["coordination"]["remote_invalidations"] >= 2
    assert 'callcache_coordination_total{event="remote_invalidation"}' in engines["coordinated"].prometheus()
    # ... where a process without coordination keeps serving its copies.
    assert engines["uncoordinated"].cache.get("profiles", "alice", tenant="bot") == {"v": 1}
    assert engines["uncoordinated"].cache.get("profiles", "carol", tenant="bot") == {"v": 1}
    for engine in engines.values():
        engine.close()


# Loads "dave" with a loader that announces itself, waits a while, then
# returns a value or fails: the parent asks for the same key meanwhile.
LEASE_HOLDER = textwrap.dedent("""
    import json, sys, time, callcache
    engine = callcache.Engine.from_config(json.loads(sys.argv[1]))
    fail = sys.argv[2] == "fail"

    def load():
        print("loading", flush=True)
        time.sleep(0.8)
        if fail:
            raise RuntimeError("upstream down")
        return {"by": "child"}

    try:
        print(json.dumps(engine.cache.get_or_load_sync("profiles", "dave", load, tenant="bot")), flush=True)
    except RuntimeError as e:
        print(json.dumps(str(e)), flush=True)
    engine.close()
""")


async def lease_race(cfg, mode):
    """The child leads the load of "dave"; once its loader runs, this process
    asks for the same key. Returns (value here, calls of this process's
    loader and their threads, what the child got, this engine's L2 stats)."""
    engine = callcache.Engine.from_config(cfg)
    assert wait_until(lambda: engine.stats()["l2"]["subscribed"])
    child = await asyncio.create_subprocess_exec(sys.executable, "-P", "-c", LEASE_HOLDER, json.dumps(cfg), mode,
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert (await asyncio.wait_for(child.stdout.readline(), 30)).strip() == b"loading"
    calls = []

    async def load():
        calls.append(threading.get_ident())
        return {"by": "parent"}

    value = await asyncio.wait_for(engine.cache.get_or_load("profiles", "dave", load, tenant="bot"), 10)
    out, err = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 0, err.decode()
    l2 = engine.stats()["namespaces"]["profiles"]["l2"]
    engine.close()
    return value, calls, json.loads(out), l2


async def test_a_key_another_process_is_loading_is_read_from_redis_not_loaded_again(redis_server):
    cfg = config(redis_server.url)
    del cfg["rate_limits"], cfg["account_locks"]
    value, calls, child_got, l2 = await lease_race(cfg, "ok")
    assert value == {"by": "child"} and child_got == {"by": "child"}
    assert calls == []  # one upstream call for the two processes
    assert l2["lease_waits"] == 1 and l2["lease_wait_hits"] == 1


async def test_when_the_other_process_fails_this_one_loads_on_its_own_loop(redis_server):
    cfg = config(redis_server.url)
    del cfg["rate_limits"], cfg["account_locks"]
    value, calls, child_got, l2 = await lease_race(cfg, "fail")
    assert child_got == "upstream down"
    # The wait ended on the coordinator's thread; the loader still ran as a
    # task of this test's event loop.
    assert value == {"by": "parent"}
    assert calls == [threading.get_ident()]
    assert l2["lease_waits"] == 1 and l2["lease_wait_hits"] == 0


def test_on_uvloop_the_load_after_a_lease_wait_still_runs_on_that_loop(redis_server):
    import uvloop

    cfg = config(redis_server.url)
    del cfg["rate_limits"], cfg["account_locks"]
    loop = uvloop.new_event_loop()
    try:
        value, calls, child_got, l2 = loop.run_until_complete(lease_race(cfg, "fail"))
    finally:
        loop.close()
    assert child_got == "upstream down"
    assert value == {"by": "parent"} and calls == [threading.get_ident()]
    assert l2["lease_waits"] == 1 and l2["lease_wait_hits"] == 0
