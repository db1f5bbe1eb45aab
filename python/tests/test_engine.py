"""The engine from Python: configuration (and its errors), plain access,
invalidation, tenants, scopes, statistics, codecs and the SQLite tier, and
memory (no leaked references)."""

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import pytest

import callcache
from callcache import _native


class Box:
    """A weak-referenceable value."""

    def __init__(self, n):
        self.n = n


# ---- Configuration ---------------------------------------------------------------


def test_engine_from_a_yaml_file_and_from_the_same_dict(tmp_path):
    path = tmp_path / "callcache.yaml"
    path.write_text(textwrap.dedent("""
        tenant_key: 000102030405060708090a0b0c0d0e0f
        namespaces:
          analytics: {ttl: 5m, max_entries: 1000, negative_ttl: 30s, stale_ttl: 1m}
        cache: {scope: process}
        rate_limits: {presets: [telegram_user]}
        account_locks: {mode: warn}
        server: {listen: 127.0.0.1:8081}   # the gateway's section is accepted and ignored
    """))
    from_file = callcache.Engine.from_config(str(path))
    from_dict = callcache.Engine.from_config({
        "tenant_key": "000102030405060708090a0b0c0d0e0f",
        "namespaces": {"analytics": {"ttl": "5m", "max_entries": 1000, "negative_ttl": "30s", "stale_ttl": "1m"}},
        "cache": {"scope": "process"},
        "rate_limits": {"presets": ["telegram_user"]},
        "account_locks": {"mode": "warn"},
    })
    for engine in (from_file, from_dict):
        assert engine.policy("analytics") == {
            "ttl": 300.0, "max_entries": 1000, "max_bytes": 0, "max_entries_per_tenant": 0, "eviction": "adaptive",
            "negative_ttl": 30.0, "stale_ttl": 60.0, "refresh_ahead": 0.0, "jitter": 0.0, "load_timeout": 0.0,
            "shared": False}
        assert "entity" in engine.namespaces  # the library's defaults are kept
        assert engine.scope == "process"
        assert engine.limiter.rules == ["get_entity", "get_messages", "send_reaction", "send_message", "default"]
        assert engine.locks.mode == "warn"
    # The configured tenant key, not the default one.
    assert from_file.tenant_from_secret("123:token") == from_dict.tenant_from_secret("123:token")
    assert from_file.tenant_from_secret("123:token") != callcache.tenant_from_secret("123:token")


@pytest.mark.parametrize("doc, message", [
    ({"namespaces": {"entity": {"ttl": "soon"}}},
     "namespaces.entity.ttl: expected a duration like 300, 300s, 250ms, 5m or 1h, got 'soon'"),
    ({"namespaces": {"entity": {"max_entries": 0}}}, "namespaces.entity.max_entries"),
    ({"namespaces": {"entity": {"colour": "red"}}}, "namespaces.entity.colour"),
    ({"namespaces": {"entity": {"refresh_ahead": "10m"}}}, "refresh_ahead"),
    ({"storage": {"l2": "floppy"}}, "storage.l2: expected one of none, sqlite, redis, got 'floppy'"),
    ({"storage": {"l2": "redis", "redis_password": "hunter2"}}, "storage.redis_password"),
    ({"rate_limits": {"rules": {"per_chat": {"limit": 1, "key": ["chan"]}}}},
     "rate_limits.rules.per_chat.key: unknown attribute 'chan'"),
    ({"account_locks": {"mode": "lenient"}}, "account_locks.mode"),
    ({"cache": {"scope": "global"}}, "cache.scope: expected one of task, process, got 'global'"),
    ({"python": {"codec": "marshal"}}, "python.codec: expected one of pickle, json, bytes, got 'marshal'"),
    ({"python": {"namespaces": {"nope": {"codec": "json"}}}}, "python.namespaces.nope: no namespace 'nope'"),
    ({"namespace": {"entity": {"ttl": 1}}}, "namespace"),  # a typo at the top level is not ignored
    ({"namespaces": {"entity": {"ttl": object()}}}, "namespaces.entity.ttl: expected a string, number"),
])
def test_bad_configuration_names_the_key_path_and_the_value(doc, message):
    with pytest.raises(callcache.ConfigError) as info:
        callcache.Engine.from_config(doc)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_configuration_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("namespaces:\n  entity: {ttl: soon}\n")
    with pytest.raises(callcache.ConfigError, match=f"{path}: namespaces.entity.ttl"):
        callcache.Engine.from_config(str(path))
    with pytest.raises(callcache.ConfigError, match="cannot open config file"):
        callcache.Engine.from_config(str(tmp_path / "missing.yaml"))
    with pytest.raises(callcache.ConfigError, match="codecs: no namespace 'nope'"):
        callcache.Engine(codecs={"nope": "json"})


# ---- Plain access and bad arguments -------------------------------------------------


def test_get_put_erase_and_a_hit_is_the_stored_object():
    cache = callcache.Engine(namespaces={"data": {"ttl": 60}}).cache
    value = {"title": "callcache"}
    cache.put("data", "k", value)
    assert cache.get("data", "k") is value
    assert cache.get("data", b"k") is value  # bytes and str keys name the same entry
    assert cache.erase("data", "k") is True
    assert cache.erase("data", "k") is False
    assert cache.get("data", "k") is None


def test_bad_arguments_raise_clear_errors():
    engine = callcache.Engine(namespaces={"data": {"ttl": 60, "max_bytes": "1KB"}})
    cache = engine.cache
    with pytest.raises(callcache.errors.InvalidArgument, match="empty key"):
        cache.put("data", "", 1)
    with pytest.raises(TypeError, match="key: expected str or bytes, got int"):
        cache.get("data", 42)
    with pytest.raises(LookupError, match=r"no namespace 'nope' \(configured: .*data"):
        cache.get("nope", "k")
    with pytest.raises(ValueError, match="ttl: expected seconds >= 0, got -1"):
        cache.put("data", "k", 1, ttl=-1)
    with pytest.raises(TypeError, match="tags: expected a list of str"):
        cache.put("data", "k", 1, tags="acct:1")
    with pytest.raises(ValueError, match=r"tenant: an int tenant id must be in \[0, 2\*\*64\)"):
        cache.get("data", "k", tenant=-5)
    with pytest.raises(TypeError, match="tenant: expected None, an int id or a str name"):
        cache.get("data", "k", tenant=1.5)
    with pytest.raises(callcache.TooLarge):
        cache.put("data", "big", b"x" * 100_000)
    assert cache.get("data", "big") is None
    with pytest.raises(TypeError, match="clock: expected a callcache.VirtualClock"):
        callcache.Engine(clock=object())


# ---- Invalidation and tenants -----------------------------------------------------------


def test_invalidation_by_key_tenant_tag_and_namespace():
    engine = callcache.Engine(namespaces={"a": {"ttl": 60}, "b": {"ttl": 60}})
    cache = engine.cache
    alice = engine.tenant_from_secret("bot-token-alice")
    bob = engine.tenant_from_secret("bot-token-bob")
    for ns in ("a", "b"):
        cache.put(ns, "k", f"{ns}-alice", tenant=alice, tags=["t1"])
        cache.put(ns, "k", f"{ns}-bob", tenant=bob)
    assert cache.get("a", "k", tenant=alice) == "a-alice"  # same key, two tenants, no collision
    assert cache.get("a", "k", tenant=bob) == "a-bob"
    assert cache.get("a", "k") is None  # no tenant is a tenant of its own

    assert cache.invalidate_tag("t1") == 2
    assert cache.get("a", "k", tenant=alice) is None and cache.get("a", "k", tenant=bob) == "a-bob"
    cache.put("a", "k", "again", tenant=alice)
    assert cache.invalidate_tenant(bob) == 2
    assert cache.get("b", "k", tenant=bob) is None and cache.get("a", "k", tenant=alice) == "again"
    cache.invalidate_namespace("a")
    assert cache.get("a", "k", tenant=alice) is None
    cache.put("b", "k", 1, tenant="public-name")  # a name is hashed like a secret
    assert cache.get("b", "k", tenant=engine.tenant_from_secret("public-name")) == 1


def test_tenant_ids_are_keyed_hashes():
    t = callcache.tenant_from_secret("+34600000000")
    assert isinstance(t, int) and t != 0
    assert callcache.tenant_from_secret(b"+34600000000") == t
    assert "34600000000" not in callcache.tenant_hex(t) and len(callcache.tenant_hex(t)) == 16
    assert callcache.tenant_from_secret("+34600000000", key="000102030405060708090a0b0c0d0e0f") != t


# ---- Scopes --------------------------------------------------------------------------------


def test_task_scope_drops_a_tasks_cache_when_it_ends():
    engine = callcache.Engine(namespaces={"data": {"ttl": 60}}, scope="task")
    with pytest.raises(callcache.ShutdownError, match="task scope"):
        engine.cache.get("data", "k")
    with engine.task("first") as cache:
        assert cache.scope == "task" and not cache.warm
        cache.put("data", "k", 1)
        assert engine.cache is cache  # the current task's cache
    with engine.task("second") as cache:
        assert cache.get("data", "k") is None


async def test_process_scope_is_shared_by_tasks_and_reports_warm_starts():
    engine = callcache.Engine(namespaces={"data": {"ttl": 60}})
    async with engine.task("first") as cache:
        assert cache.scope == "process" and not cache.warm
        cache.put("data", "k", 1)
    async with engine.task("second") as cache:
        assert cache.warm and cache.entries_at_start == 1
        assert cache.get("data", "k") == 1
    isolated = engine.isolated()
    assert isolated.scope == "isolated" and isolated.get("data", "k") is None


# ---- Statistics ------------------------------------------------------------------------------


async def test_stats_and_prometheus():
    engine = callcache.Engine(namespaces={"data": {"ttl": 60}})
    cache = engine.cache

    async def loader():
        await asyncio.sleep(0.01)
        return 1

    await asyncio.gather(*(cache.get_or_load("data", "k", loader) for _ in range(5)))
    await cache.get_or_load("data", "k", loader)
    s = engine.stats()
    d = s["namespaces"]["data"]
    assert (d["hits"], d["misses"], d["coalesced"], d["loads"]) == (1, 5, 4, 1)
    assert d["hit_ratio"] == pytest.approx(1 / 6)
    assert d["load_latency"]["count"] == 1 and d["load_latency"]["p50_ms"] > 5
    assert d["evictions"] == 0 and set(d["evictions_by_cause"]) >= {"size", "bytes", "tenant_cap", "explicit"}
    assert s["total"]["loads"] >= 1 and s["l2"] == {}
    text = engine.prometheus()
    assert 'callcache_hits_total{namespace="data"' in text
    assert 'callcache_coalesced_total{namespace="data"' in text


# ---- Codecs and the SQLite tier ----------------------------------------------------------------

WRITER = """
import sys, callcache
engine = callcache.Engine(namespaces={"profiles": {"ttl": "1h"}, "raw": {"ttl": "1h"}},
                          storage={"l2": "sqlite", "path": sys.argv[1]},
                          python={"namespaces": {"raw": {"codec": "bytes"}}})
engine.cache.put("profiles", "alice", {"name": "Alice", "followers": 1200}, tenant="bot")
assert engine.cache.get_or_load_sync("raw", "blob", lambda: b"\\x00\\x01") == b"\\x00\\x01"
engine.close()
"""


def test_values_survive_a_restart_over_sqlite(tmp_path):
    db = str(tmp_path / "tier.sqlite3")
    env = dict(os.environ)
    subprocess.run([sys.executable, "-P", "-c", WRITER, db], check=True, env=env, timeout=60)
    engine = callcache.Engine(namespaces={"profiles": {"ttl": "1h"}, "raw": {"ttl": "1h"}},
                              storage={"l2": "sqlite", "path": db},
                              python={"namespaces": {"raw": {"codec": "bytes"}}})
    cache = engine.cache

    def must_not_load():
        raise AssertionError("the loader ran: the value was not found in the tier")

    assert cache.get("profiles", "alice", tenant="bot") is None  # L1 is empty after the restart
    assert cache.get_or_load_sync("profiles", "alice", must_not_load, tenant="bot") == {"name": "Alice",
                                                                                      "followers": 1200}

    async def read_raw():
        return await cache.get_or_load("raw", "blob", must_not_load)

    assert asyncio.run(read_raw()) == b"\x00\x01"
    stats = engine.stats()
    assert stats["namespaces"]["profiles"]["l2"]["hits"] == 1
    assert stats["namespaces"]["raw"]["l2"]["hits"] == 1
    assert stats["l2"]["backend"] == "sqlite" and stats["l2"]["hits"] == 2 and stats["l2"]["errors"] == 0
    engine.close()


def test_coroutine_loads_write_through_and_invalidation_reaches_the_tier(tmp_path):
    """Values loaded by coroutines reach L2 with their tags; invalidating a tag
    or a key hides the L2 copies from the next engine over the same file."""
    cfg = dict(namespaces={"profiles": {"ttl": "1h"}}, storage={"l2": "sqlite", "path": str(tmp_path / "t.db")})
    names = ["alice", "bob", "carol", "dave"]
    loads = []

    def loader(name):
        async def load():
            loads.append(name)
            return callcache.Loaded({"name": name}, tags=["team:red"] if name in ("alice", "bob") else [])
        return load

    async def read_all(engine):
        return [await engine.cache.get_or_load("profiles", n, loader(n), tenant="bot") for n in names]

    first = callcache.Engine(**cfg)
    assert asyncio.run(read_all(first)) == [{"name": n} for n in names]
    assert loads == names
    assert first.stats()["namespaces"]["profiles"]["l2"]["writes"] == 4
    first.close()

    second = callcache.Engine(**cfg)  # memory is empty: every value comes from L2, tags included
    loads.clear()
    assert asyncio.run(read_all(second)) == [{"name": n} for n in names]
    assert loads == []
    assert second.cache.invalidate_tag("team:red") == 2
    assert second.cache.erase("profiles", "carol", tenant="bot")
    second.close()

    third = callcache.Engine(**cfg)
    loads.clear()
    assert asyncio.run(read_all(third)) == [{"name": n} for n in names]
    assert loads == ["alice", "bob", "carol"]  # dave is still served by L2
    l2 = third.stats()["namespaces"]["profiles"]["l2"]
    assert (l2["hits"], l2["invalidated"], l2["misses"]) == (1, 2, 1)
    third.close()


def test_unencodable_values_raise_clear_errors_and_stay_out_of_the_tier(tmp_path):
    engine = callcache.Engine(namespaces={"p": {"ttl": 60}, "j": {"ttl": 60}, "mem": {"ttl": 60}},
                              storage={"l2": "sqlite", "path": str(tmp_path / "t.sqlite3")},
                              python={"namespaces": {"j": {"codec": "json"}, "mem": {"l2": False}}})
    cache = engine.cache
    lock = threading.Lock()
    with pytest.raises(callcache.CodecError, match=r"namespace 'p': a value of type lock cannot be encoded "
                                                   r"with the 'pickle' codec"):
        cache.put("p", "k", lock)
    with pytest.raises(callcache.CodecError, match="'json' codec"):
        cache.put("j", "k", {1, 2})
    cache.put("mem", "k", lock)  # a memory-only namespace keeps any object
    assert cache.get("mem", "k") is lock

    async def main():
        async def loader():
            return lambda: None  # a lambda cannot be pickled

        outcomes = await asyncio.gather(*(cache.get_or_load("p", "f", loader) for _ in range(3)),
                                        return_exceptions=True)
        assert all(isinstance(o, callcache.CodecError) for o in outcomes)
        assert outcomes[0] is outcomes[1]

    asyncio.run(main())
    with pytest.raises(callcache.CodecError):
        cache.get_or_load_sync("p", "g", lambda: threading.Lock())
    assert cache.get("p", "f") is None and cache.get("p", "g") is None
    cache.put("j", "t", (1, 2))  # JSON: tuples come back as lists from the tier
    engine.close()


# ---- Memory ------------------------------------------------------------------------------------------


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def settle(done, timeout=30.0):
    """Waits until `done()` holds: the sweep frees retired entries, and their
    references are released on this thread by callcache's drain."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)
        _native._drain()


def test_a_million_get_put_cycles_leak_no_references_and_keep_rss_flat():
    # A lookup reads without locks, so an evicted entry (and the reference it
    # holds) is freed after a grace period, by the next removal or the
    # process sweep (src/core/reclaim.h); a short sweep interval bounds it.
    engine = callcache.Engine(namespaces={"data": {"ttl": 60, "max_entries": 1000}},
                              config={"process": {"cleanup_interval": "20ms"}})
    cache = engine.isolated()
    value = Box(1)
    keys = [f"k{i}" for i in range(2000)]  # twice the capacity: evictions too
    base_refs = sys.getrefcount(value)

    def cycles(n):
        put, get = cache.put, cache.get
        for i in range(n):
            k = keys[i % 2000]
            put("data", k, value)
            get("data", k)

    cycles(100_000)  # warm up: slabs, tables, allocator
    gc.collect()
    before = rss_bytes()
    cycles(1_000_000)
    gc.collect()
    after = rss_bytes()
    # Exactly one reference per live entry: none leaked by a million puts,
    # replacements and evictions.
    assert 0 < len(cache) <= 1000
    # Entries retired but not yet freed hold a few references for a moment; a
    # leak would be hundreds of thousands after a million cycles.
    assert sys.getrefcount(value) - base_refs - len(cache) < 10_000
    settle(lambda: sys.getrefcount(value) == base_refs + len(cache))
    assert sys.getrefcount(value) == base_refs + len(cache)
    for k in keys:
        cache.erase("data", k)
    settle(lambda: sys.getrefcount(value) == base_refs)
    assert sys.getrefcount(value) == base_refs
    assert after - before < 4 << 20, f"RSS grew by {(after - before) >> 10} KiB over a million cycles"


def test_values_dropped_by_the_engines_own_threads_are_released():
    # The process sweep runs on a library thread: it drops expired entries
    # without the GIL; the references are released later, on this thread.
    engine = callcache.Engine(namespaces={"data": {"ttl": 0.05}}, config={"process": {"cleanup_interval": "20ms"}})
    value = Box(2)
    ref = weakref.ref(value)
    engine.cache.put("data", "k", value)
    del value
    deadline = time.monotonic() + 60  # a generous bound for a loaded machine; normally ~0.1 s
    while ref() is not None and time.monotonic() < deadline:
        time.sleep(0.02)  # no callcache call here: the interpreter drains the releases itself
    assert ref() is None
    assert engine.cache.stats()["namespaces"]["data"]["expirations"] >= 1


def test_engine_close_releases_every_value():
    engine = callcache.Engine(namespaces={"data": {"ttl": 60}})
    value = Box(3)
    ref = weakref.ref(value)
    engine.cache.put("data", "k", value)
    del value
    engine.close()
    assert ref() is None
    assert engine.cache.get("data", "k") is None
