"""The Telethon adapter with real TelegramClient objects over the fake
Telegram network layer (callcache.testing.fake_telegram), on virtual time:
caching of the raw reads, access hashes per account, pacing, FLOOD_WAIT
penalties, and the LikeBot task's floors."""

import asyncio
import importlib.util
import os

import pytest
from telethon import TelegramClient, errors, functions, types
from telethon.sessions import MemorySession

import callcache
from callcache.telethon import wrap
from callcache.testing import fake_telegram, run

HERE = os.path.dirname(os.path.abspath(__file__))


def likebot_module():
    spec = importlib.util.spec_from_file_location("likebot", os.path.join(HERE, "..", "examples", "likebot.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake(clock, limits=(), channels=("channel1", "channel2")):
    return fake_telegram.FakeTelegram({name: [1, 2, 3] for name in channels}, limits=limits,
                                      latencies={}, clock=clock)


def client_for(telegram, account, engine, **kw):
    client = telegram.connect(TelegramClient(MemorySession(), 1, "0" * 32), account)
    return wrap(client, engine, account=account, **kw)


def engine_for(clock, **namespaces):
    ns = {"entity": {"ttl": "5m", "shared": True}, "message": {"ttl": "1m", "shared": True}, **namespaces}
    return callcache.Engine(namespaces=ns, clock=clock)


def test_likebot_reaches_the_replay_floors(source_dir):
    report = likebot_module().run_likebot(os.path.join(source_dir, "scenarios", "likebot.yaml"))
    first, rerun = report["first"], report["rerun"]
    assert report["floor"] == {"first": 1105, "rerun": 1000}
    assert first["by_method"] == {"get_entity": 5, "get_input_entity": 50, "get_messages": 50, "view": 500,
                                  "send_reaction": 500}
    assert (first["calls"], first["flood_waits"]) == (1105, 0)
    assert rerun["by_method"] == {"get_entity": 0, "get_input_entity": 0, "get_messages": 0, "view": 500,
                                  "send_reaction": 500}
    assert (rerun["calls"], rerun["flood_waits"]) == (1000, 0)
    assert rerun["l2_hits"] == 105  # every cached read of the re-run came from the SQLite tier
    assert first["coalesced"] > 0  # accounts asked for one channel or post at once
    assert first["virtual_seconds"] < 60  # paced per account, not one global queue (the seeds: 260 s)


def test_one_resolve_for_ten_accounts_and_a_hash_for_each():
    clock = callcache.VirtualClock()
    telegram = fake(clock)
    engine = engine_for(clock)

    async def main():
        clients = [client_for(telegram, f"account{i}", engine) for i in range(10)]
        entities = await asyncio.gather(*(c.get_entity("channel1") for c in clients))
        assert telegram.calls["get_entity"] == 1
        # Public data only: no account's access hash reaches another account.
        assert all(e.id == telegram.channel_id("channel1") and e.min and e.access_hash is None for e in entities)
        assert entities[0] is not entities[1]  # each caller gets its own objects
        peers = await asyncio.gather(*(c.get_input_entity(e) for c, e in zip(clients, entities)))
        assert telegram.calls["get_input_entity"] == 10
        assert [p.access_hash for p in peers] == [telegram.access_hash(f"account{i}", peers[0].channel_id)
                                                  for i in range(10)]
        # Each account's own hash works for it (the fake refuses another's).
        posts = await asyncio.gather(*(c.get_messages(p, ids=2) for c, p in zip(clients, peers)))
        assert telegram.calls["get_messages"] == 1 and all(m.message == "channel1/post2" for m in posts)
        with pytest.raises(errors.ChannelInvalidError):
            await clients[1](functions.messages.GetMessagesViewsRequest(peer=peers[0], id=[2], increment=True))
        # Views and reactions are never cached.
        for _ in range(2):
            await clients[0](functions.messages.GetMessagesViewsRequest(peer=peers[0], id=[2], increment=True))
        assert telegram.views[("channel1", 2)] == 2

    run(main(), clock)


def test_flood_wait_penalises_that_method_of_that_account_and_retries():
    clock = callcache.VirtualClock()
    # The fake allows one resolve per 3 s per account; this client does not pace resolves.
    telegram = fake_telegram.FakeTelegram(
        {"channel1": [1], "channel2": [1], "channel3": [1]},
        limits=[{"per": "account", "method": "get_entity", "interval": 3.0, "burst": 1}],
        latencies={"get_entity": (0.1, 0.0)}, clock=clock)
    engine = engine_for(clock)
    limiter = callcache.RateLimiter({"fast": {"interval": "1ms", "key": ["account", "method"]}}, clock=clock)

    async def main():
        a = client_for(telegram, "account1", engine, limiter=limiter)
        b = client_for(telegram, "account2", engine, limiter=limiter)
        await a.get_entity("channel1")  # t = 1.1
        t0 = clock.now()
        task = asyncio.create_task(a.get_entity("channel2"))  # refused: FLOOD_WAIT_3 (the fake's bucket ends at 4.0)
        await asyncio.sleep(0.5)
        assert telegram.floods["get_entity"] == 1 and not task.done()
        # The penalty is the limiter's: every task of account1 waits for get_entity ...
        await limiter.acquire(method="get_entity", account=a.callcache.account_id)
        penalty_end = clock.now()
        # ... and nothing else waits: another method of account1, or account2.
        await limiter.acquire(method="get_messages", account=a.callcache.account_id)
        t1 = clock.now()
        await b.get_entity("channel3")
        assert clock.now() - t1 == pytest.approx(0.1)
        channel2 = await task  # retried once the wait was over
        return t0, penalty_end, channel2

    t0, penalty_end, channel2 = run(main(), clock)
    assert channel2.username == "channel2"
    assert penalty_end - t0 == pytest.approx(0.1 + 3.0, abs=0.002)  # the refusal's answer came back after 0.1 s
    assert telegram.floods["get_entity"] == 1
    assert telegram.calls["get_entity"] == 4  # channel1, channel2 refused, channel2 again, channel3 by account2
    assert limiter.stats()["rules"]["penalty"]["penalties"] == 1


def test_flood_wait_past_the_maximum_reaches_the_caller():
    clock = callcache.VirtualClock()
    telegram = fake(clock, limits=[{"per": "account", "method": "view", "interval": 60.0, "burst": 1}])
    engine = engine_for(clock)

    async def main():
        c = client_for(telegram, "account1", engine, max_flood_wait=30)
        peer = await c.get_input_entity(await c.get_entity("channel1"))
        view = functions.messages.GetMessagesViewsRequest(peer=peer, id=[1], increment=True)
        await c(view)
        with pytest.raises(errors.FloodWaitError) as info:
            await c(view)
        assert info.value.seconds == 60
        c2 = client_for(telegram, "account2", engine, max_flood_retries=0)
        peer2 = await c2.get_input_entity(await c2.get_entity("channel1"))
        await c2(functions.messages.GetMessagesViewsRequest(peer=peer2, id=[1], increment=True))
        with pytest.raises(errors.FloodWaitError):
            await c2(functions.messages.GetMessagesViewsRequest(peer=peer2, id=[1], increment=True))
        return c.callcache.stats()

    stats = run(main(), clock)
    assert stats["flood_waits"] == {"view": 1}
    assert telegram.floods["view"] == 2


def test_unknown_usernames_are_remembered_for_negative_ttl():
    clock = callcache.VirtualClock()
    telegram = fake(clock)
    engine = engine_for(clock, entity={"ttl": "5m", "shared": True, "negative_ttl": "30s"})

    async def main():
        c = client_for(telegram, "account1", engine)
        for _ in range(3):
            with pytest.raises(ValueError, match='No user has "nobody" as username'):
                await c.get_entity("nobody")
        assert telegram.calls["get_entity"] == 1
        await asyncio.sleep(31)
        with pytest.raises(ValueError):
            await c.get_entity("nobody")
        assert telegram.calls["get_entity"] == 2

    run(main(), clock)


def test_accounts_are_keyed_hashes_everywhere():
    clock = callcache.VirtualClock()
    telegram = fake(clock)
    engine = engine_for(clock)
    locks = callcache.AccountLocks("strict", clock=clock)
    phone = "+34600000000"

    async def main():
        c = client_for(telegram, phone, engine, locks=locks)
        assert c.callcache.account_id == callcache.tenant_hex(engine.tenant_from_secret(phone))
        async with c.callcache.hold(task="likebot"):
            [holder] = locks.holders()
            assert holder["account"] == c.callcache.account_id and phone not in str(holder)
        with pytest.raises(ValueError, match="already wrapped"):
            wrap(c, engine, account=phone)
        with pytest.raises(ValueError, match="no namespace 'entities'"):
            client_for(telegram, "x", engine, namespaces={"resolve": "entities"})

    run(main(), clock)


def test_the_pacing_of_the_mtproto_preset_avoids_every_flood_wait():
    clock = callcache.VirtualClock()
    # The fake enforces the preset's own per-account intervals.
    limits = [{"per": "account", "method": m, "interval": i, "burst": 1}
              for m, i in (("get_entity", 3.0), ("get_messages", 0.3), ("send_reaction", 0.5), ("default", 0.2))]
    telegram = fake(clock, limits=limits, channels=("channel1", "channel2", "channel3"))
    engine = engine_for(clock)
    limiter = callcache.RateLimiter.telegram_user(clock=clock)

    async def main():
        c = client_for(telegram, "account1", engine, limiter=limiter)
        for name in ("channel1", "channel2", "channel3"):
            peer = await c.get_input_entity(await c.get_entity(name))
            for post in (1, 2, 3):
                await c.get_messages(peer, ids=post)
                await c(functions.messages.SendReactionRequest(peer=peer, msg_id=post, reaction="👍"))

    run(main(), clock)
    assert telegram.total_floods == 0
    assert sum(telegram.reactions.values()) == 9
