#!/usr/bin/env python3
"""The LikeBot task through real Telethon clients and callcache, offline.

10 user accounts view and react to 50 posts in 5 public channels
(scenarios/likebot.yaml, the task `callcache replay` simulates). Each task is
one (account, post) pair, run by one of 10 workers holding that account's
lock: validate the post — resolve the channel (public data, shared by every
account), this account's access hash, the post itself — then view it and
react. Every Telegram call goes through a real ``TelegramClient`` wrapped by
``callcache.telethon.wrap``; below it, a fake Telegram enforces the
scenario's per-method limits (FloodWaitError when exceeded). Time is virtual:
the run takes well under a second of wall time.

The task runs twice: a first run, then a re-run after a restart (a new
engine, new clients) over the SQLite tier the first run wrote. The floors:
1,105 upstream calls on the first run (5 channels + 50 access hashes + 50
posts + 1,000 views and reactions, which can never be cached), 1,000 on the
re-run, 0 flood waits.

    PYTHONPATH=build/debug/python python3 python/examples/likebot.py [--scenario FILE] [--json]
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile

from telethon import TelegramClient, functions
from telethon.sessions import MemorySession

import callcache
from callcache.telethon import wrap
from callcache.testing import fake_telegram, run

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCENARIO = os.path.join(HERE, "..", "..", "scenarios", "likebot.yaml")
API_ID, API_HASH = 1, "0123456789abcdef0123456789abcdef"  # never used: the network is fake


def pacing_rules(scenario):
    """The client's pacing: the upstream's own limits ("pacing: upstream"), as limiter rules."""
    keys = {"account": ["account"], "group": ["chat"], "account_group": ["account", "chat"], "global": []}
    rules = {}
    for i, r in enumerate(scenario.upstream_limits):
        rule = {"interval": f"{round(r['interval'] * 1e6)}us", "burst": r["burst"], "key": list(keys[r["per"]])}
        if r["method"] == "default":  # one bucket per other method
            rule["key"].append("method")
            rule["except_methods"] = [o["method"] for o in scenario.upstream_limits
                                      if o["per"] == r["per"] and o["method"] not in ("default", "any")]
        elif r["method"] != "any":
            rule["methods"] = [r["method"]]
        rules[f"r{i}_{r['per']}_{r['method']}"] = rule
    return rules


def jobs(scenario):
    """(account, channel, post) in the replay's order: round-major, account N starting at channel N."""
    posts = [(ch, p) for ch in scenario.channels for p in scenario.posts[ch]]
    per_channel = len(posts) // len(scenario.channels)
    out = []
    for r in range(len(posts)):
        for a, account in enumerate(scenario.accounts):
            offset = (a % len(scenario.channels)) * per_channel if scenario.order == "rotated" else 0
            out.append((account,) + posts[(r + offset) % len(posts)])
    return out


async def like(client, channel, post):
    """One task: validate the post, then view it and react."""
    entity = await client.get_entity(channel)             # public: one call for every account
    peer = await client.get_input_entity(entity)           # this account's access hash
    message = await client.get_messages(peer, ids=post)   # public: one call for every account
    if message is None or message.id != post:
        raise RuntimeError(f"post {channel}/{post} not found")
    await client(functions.messages.GetMessagesViewsRequest(peer=peer, id=[post], increment=True))
    await client(functions.messages.SendReactionRequest(peer=peer, msg_id=post, reaction="👍"))


async def run_once(scenario, clock, tier_path):
    telegram = fake_telegram.FakeTelegram.from_scenario(scenario, clock=clock)
    namespaces = {name: {**d, "max_entries": 100_000} for name, d in scenario.namespaces.items()}
    engine = callcache.Engine(namespaces=namespaces, storage={"l2": "sqlite", "path": tier_path},
                              python={"codec": "bytes"}, clock=clock)
    limiter = callcache.RateLimiter(pacing_rules(scenario), clock=clock)
    locks = callcache.AccountLocks("strict", wait_timeout=3600, clock=clock)
    clients = {}
    for account in scenario.accounts:
        client = telegram.connect(TelegramClient(MemorySession(), API_ID, API_HASH), account)
        clients[account] = wrap(client, engine, account=account, limiter=limiter, locks=locks)

    queue = callcache.BoundedQueue(capacity=scenario.workers, policy="block", name="likebot", clock=clock)

    async def produce():
        for job in jobs(scenario):
            await queue.put(job)
        queue.close()

    async def work():
        async for account, channel, post in queue:
            client = clients[account]
            async with client.callcache.hold(task=f"like {channel}/{post}"):
                await like(client, channel, post)

    start = clock.now()
    await asyncio.gather(produce(), *(work() for _ in range(scenario.workers)))
    elapsed = clock.now() - start
    stats = engine.stats()
    engine.close()  # the process exits: the SQLite tier is flushed
    ns = stats["namespaces"]
    return {
        "calls": sum(telegram.calls.values()),
        "by_method": {m: telegram.calls[m] for m in scenario.methods},
        "flood_waits": sum(telegram.floods.values()),
        "coalesced": sum(ns[n]["coalesced"] for n in scenario.namespaces),
        "l2_hits": sum(ns[n].get("l2", {}).get("hits", 0) for n in scenario.namespaces),
        "virtual_seconds": round(elapsed, 3),
        "lock_waits": locks.stats()["waits"],
    }


def run_likebot(scenario_path=DEFAULT_SCENARIO, tier_dir=None):
    """Both runs; returns {"floor": ..., "first": {...}, "rerun": {...}}."""
    scenario = fake_telegram.load_scenario(scenario_path)
    cacheable = {n: 0 for n in scenario.namespaces}
    for name, m in scenario.methods.items():
        if m["namespace"]:
            shared = scenario.namespaces[m["namespace"]]["shared"]
            per = len(scenario.channels) if m["target"] == "group" else sum(map(len, scenario.posts.values()))
            cacheable[m["namespace"]] += per * (1 if shared else len(scenario.accounts))
    actions = sum(1 for m in scenario.methods.values() if not m["namespace"]) * len(jobs(scenario))
    clock = callcache.VirtualClock()
    with tempfile.TemporaryDirectory(dir=tier_dir) as d:
        tier = os.path.join(d, "likebot.sqlite3")
        first = run(run_once(scenario, clock, tier), clock)
        rerun = run(run_once(scenario, clock, tier), clock)  # a restart: new engine, clients, Telegram
    return {"floor": {"first": sum(cacheable.values()) + actions, "rerun": actions}, "first": first, "rerun": rerun}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=DEFAULT_SCENARIO)
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args()
    report = run_likebot(args.scenario)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print("LikeBot through Telethon + callcache (fake Telegram, virtual time)\n")
    methods = list(report["first"]["by_method"])
    print(f"{'run':<28}" + "".join(f"{m:>18}" for m in methods) + f"{'total':>8}{'floor':>8}{'floods':>8}{'time':>9}")
    for label, key in (("first run", "first"), ("re-run (SQLite tier)", "rerun")):
        r = report[key]
        print(f"{label:<28}" + "".join(f"{r['by_method'][m]:>18,}" for m in methods)
              + f"{r['calls']:>8,}{report['floor'][key]:>8,}{r['flood_waits']:>8}{r['virtual_seconds']:>8.1f}s")
    ok = all(report[k]["calls"] == report["floor"][k] and report[k]["flood_waits"] == 0 for k in ("first", "rerun"))
    print("\nfloors reached" if ok else "\nFLOORS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
