"""Two processes on one real redis-server (started on loopback by the
fixture): they share the second tier, one rate limit (and its FLOOD_WAIT
penalties) and one account lock."""

import json
import subprocess
import sys
import textwrap

import callcache


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


def test_redis_down_degrades_to_memory_and_never_fails_a_read(redis_server):
    cfg = config(redis_server.url)
    del cfg["rate_limits"], cfg["account_locks"]
    engine = callcache.Engine.from_config(cfg)
    redis_server.stop()
    calls = []

    def loader():
        calls.append(1)
        return "fresh"

    assert engine.cache.get_or_load_sync("profiles", "k", loader) == "fresh"
    assert engine.cache.get_or_load_sync("profiles", "k", loader) == "fresh"  # L1 still works
    assert calls == [1]
    assert engine.stats()["l2"]["errors"] >= 1
    engine.cache.put("profiles", "p", 1)  # an L2 write error is counted, not raised
    assert engine.cache.get("profiles", "p") == 1
