"""A fake Telegram for real Telethon clients, offline.

:class:`FakeTelegram` replaces the network layer of a ``TelegramClient`` (its
MTProto sender): everything above it — requests, ``resolve()``, the session,
``get_entity``, ``get_messages`` — is Telethon's own code. The fake answers
TL objects for public channels and their posts, enforces per-method limits
the way ``callcache replay`` simulates them (GCRA buckets per account, per
channel, per method), and refuses a call over a limit with
``FloodWaitError`` (whole seconds, rounded up, at least 1). A refused call
still counts as an upstream call. Replies arrive after a log-normal latency
per method; on a :class:`callcache.VirtualClock` all of it is virtual time.

The TL requests it serves, and the method names it counts them under (the
names of the replay's LikeBot scenario and of the MTProto rate-limit preset):

==================================  ================  =========================
request                             method            answer
==================================  ================  =========================
contacts.ResolveUsernameRequest     get_entity        the channel's public data
                                                      (a ``min`` constructor: no
                                                      usable access hash)
channels.GetChannelsRequest         get_input_entity  the channel with *this
                                                      account's* access hash
channels.GetMessagesRequest         get_messages      the posts
messages.GetMessagesViewsRequest    view              view counters (incremented)
messages.SendReactionRequest        send_reaction     an empty Updates
==================================  ================  =========================

Access hashes differ per account, and a request carrying another account's
hash fails with ``ChannelInvalidError``, as Telegram does.

    telegram = FakeTelegram.from_scenario("scenarios/likebot.yaml", clock=clock)
    client = telegram.connect(TelegramClient(MemorySession(), 1, "x"), "account1")
"""

import asyncio
import collections
import datetime
import hashlib
import math
import random
import re
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import yaml
from telethon import errors, functions, types, utils

__all__ = ["FakeTelegram", "FakeSender", "Scenario", "load_scenario", "parse_duration"]

_DATE = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
_CHANNEL_ID_BASE = 1_000_000_000  # channel k has id _CHANNEL_ID_BASE + k


def parse_duration(text) -> float:
    """Seconds from 300, "300s", "250ms", "33334us", "5m", "1h"."""
    if isinstance(text, (int, float)):
        return float(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(us|ms|s|m|min|h|)\s*", str(text))
    if not m:
        raise ValueError(f"expected a duration like 300, 300s, 250ms or 5m, got {text!r}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}[m.group(2)]
    return float(m.group(1)) * scale


# ---- The scenario ----------------------------------------------------------------


@dataclass
class Scenario:
    """The parts of a replay scenario file (scenarios/likebot.yaml) a Python run needs."""

    name: str
    seed: int
    accounts: List[str]
    channels: List[str]                      # channel1 .. channelN
    posts: Dict[str, List[int]]              # channel -> post ids (global numbering, like the replay)
    namespaces: Dict[str, dict]              # name -> {ttl (s), shared}
    methods: Dict[str, dict]                 # name -> {namespace, target, latency (s), sigma}
    steps: List[str]
    workers: int
    order: str
    upstream_limits: List[dict] = field(default_factory=list)  # {per, method, interval (s), burst}


def load_scenario(source) -> Scenario:
    """A Scenario from a YAML path or the same document as a dict."""
    doc = source if isinstance(source, dict) else yaml.safe_load(open(source))
    acc = doc.get("accounts", {})
    prefix = acc.get("prefix", "account")
    accounts = acc.get("names") or [f"{prefix}{i}" for i in range(1, int(acc.get("count", 10)) + 1)]
    obj = doc.get("objects", {})
    groups, per = int(obj.get("groups", 5)), int(obj.get("items_per_group", 10))
    gp = obj.get("group_prefix", "channel")
    channels = [f"{gp}{g + 1}" for g in range(groups)]
    posts = {channels[g]: [g * per + i + 1 for i in range(per)] for g in range(groups)}
    namespaces = {
        name: {"ttl": parse_duration(d.get("ttl", 300)), "shared": bool(d.get("shared", False))}
        for name, d in doc.get("namespaces", {}).items()
    }
    methods = {
        name: {
            "namespace": d.get("namespace"),
            "target": d.get("target", "item"),
            "latency": parse_duration(d.get("latency", "100ms")),
            "sigma": float(d.get("sigma", 0.3)),
        }
        for name, d in doc.get("methods", {}).items()
    }
    limits = [
        {
            "per": r.get("per", "account"),
            "method": r.get("method", "any"),
            "interval": parse_duration(r["interval"]),
            "burst": int(r.get("burst", 1)),
        }
        for r in doc.get("limits", {}).get("upstream", [])
    ]
    work = doc.get("workload", {})
    return Scenario(
        name=doc.get("name", "scenario"),
        seed=int(doc.get("seed", 42)),
        accounts=list(accounts),
        channels=channels,
        posts=posts,
        namespaces=namespaces,
        methods=methods,
        steps=list(work.get("steps", [])),
        workers=int(work.get("workers", 10)),
        order=work.get("order", "rotated"),
        upstream_limits=limits,
    )


# ---- Limits: GCRA buckets, as the replay's simulated upstream keeps them ------------------


class _Limits:
    def __init__(self, rules):
        self._rules = list(rules)
        self._tat = {}  # bucket -> theoretical arrival time (ns)

    def _matches(self, account, method, group):
        out = []
        for i, r in enumerate(self._rules):
            if r["method"] == method:
                part = method
            elif r["method"] == "any":
                part = "*"
            elif r["method"] == "default":
                if any(o["per"] == r["per"] and o["method"] == method for o in self._rules):
                    continue
                part = method
            else:
                continue
            scope = {"account": account, "group": group, "account_group": f"{account}|{group}", "global": ""}[r["per"]]
            interval = round(r["interval"] * 1e9)
            out.append((f"{i}|{part}|{scope}", interval, (r["burst"] - 1) * interval))
        return out

    def try_acquire(self, account, method, group, now_ns):
        """None (and the call recorded) if every matching bucket admits it now, else the wait in ns."""
        ms = self._matches(account, method, group)
        t = now_ns
        for bucket, _, tolerance in ms:
            if bucket in self._tat:
                t = max(t, self._tat[bucket] - tolerance)
        if t > now_ns:
            return t - now_ns
        for bucket, interval, _ in ms:
            self._tat[bucket] = max(self._tat.get(bucket, now_ns), now_ns) + interval
        return None


# ---- The fake ------------------------------------------------------------------------------------

_METHODS = {
    functions.contacts.ResolveUsernameRequest: "get_entity",
    functions.channels.GetChannelsRequest: "get_input_entity",
    functions.channels.GetMessagesRequest: "get_messages",
    functions.messages.GetMessagesViewsRequest: "view",
    functions.messages.SendReactionRequest: "send_reaction",
}


class FakeTelegram:
    """Public channels with posts, behind per-method limits. See the module docstring."""

    def __init__(self, channels: Dict[str, List[int]], *, limits=(), latencies: Optional[Dict[str, tuple]] = None,
                 seed: int = 42, clock=None):
        self._posts = {name: list(ids) for name, ids in channels.items()}
        self._ids = {name: _CHANNEL_ID_BASE + k + 1 for k, name in enumerate(self._posts)}
        self._names = {cid: name for name, cid in self._ids.items()}
        self._limits = _Limits(limits)
        self._latencies = dict(latencies or {})
        self._rng = random.Random(seed)
        self._clock = clock
        self.calls = collections.Counter()   # upstream calls by method (refused ones included)
        self.floods = collections.Counter()  # FLOOD_WAITs by method
        self.views = collections.Counter()   # (channel, post) -> views
        self.reactions = collections.Counter()  # (channel, post) -> reactions

    @classmethod
    def from_scenario(cls, scenario, *, clock=None):
        """The fake a scenario describes: its channels and posts, its upstream limits, its latencies."""
        s = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        lat = {name: (m["latency"], m["sigma"]) for name, m in s.methods.items()}
        return cls(s.posts, limits=s.upstream_limits, latencies=lat, seed=s.seed, clock=clock)

    # ---- Wiring ----
    def connect(self, client, account: str):
        """Replaces `client`'s network layer by this fake, logged in as `account`. Returns the client."""
        client._sender = FakeSender(self, account)
        return client

    def channel_id(self, name: str) -> int:
        return self._ids[name]

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_floods(self) -> int:
        return sum(self.floods.values())

    def reset_counters(self):
        self.calls.clear()
        self.floods.clear()

    # ---- Serving ----
    def _now_ns(self):
        return self._clock.now_ns() if self._clock is not None else time.monotonic_ns()

    def access_hash(self, account: str, cid: int) -> int:
        digest = hashlib.blake2b(f"{account}|{cid}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little", signed=True) or 1

    def _channel(self, cid, account=None):
        name = self._names[cid]
        return types.Channel(
            id=cid,
            title=f"Channel {name}",
            photo=types.ChatPhotoEmpty(),
            date=_DATE,
            broadcast=True,
            username=name,
            min=None if account else True,
            access_hash=self.access_hash(account, cid) if account else None,
        )

    def _group_of(self, request):
        if isinstance(request, functions.contacts.ResolveUsernameRequest):
            return request.username
        for attr in ("peer", "channel"):
            p = getattr(request, attr, None)
            if p is not None:
                cid = getattr(p, "channel_id", None)
                return self._names.get(cid, "")
        if isinstance(request, functions.channels.GetChannelsRequest) and request.id:
            return self._names.get(getattr(request.id[0], "channel_id", None), "")
        return ""

    def _check_channel(self, account, request, peer):
        cid = getattr(peer, "channel_id", None)
        if cid not in self._names or peer.access_hash != self.access_hash(account, cid):
            raise errors.ChannelInvalidError(request)
        return cid

    def _answer(self, account, request):
        if isinstance(request, functions.contacts.ResolveUsernameRequest):
            cid = self._ids.get(request.username.lower())
            if cid is None:
                raise errors.UsernameNotOccupiedError(request)
            return types.contacts.ResolvedPeer(peer=types.PeerChannel(cid), chats=[self._channel(cid)], users=[])
        if isinstance(request, functions.channels.GetChannelsRequest):
            chats = []
            for ic in request.id:
                cid = getattr(ic, "channel_id", None)
                if cid not in self._names or ic.access_hash not in (0, self.access_hash(account, cid)):
                    raise errors.ChannelInvalidError(request)
                chats.append(self._channel(cid, account))
            return types.messages.Chats(chats=chats)
        if isinstance(request, functions.channels.GetMessagesRequest):
            cid = self._check_channel(account, request, request.channel)
            name = self._names[cid]
            messages = []
            for m in request.id:
                if isinstance(m, types.InputMessageID) and m.id in self._posts[name]:
                    messages.append(types.Message(
                        id=m.id, peer_id=types.PeerChannel(cid), date=_DATE, post=True,
                        message=f"{name}/post{m.id}", views=self.views[(name, m.id)], forwards=0))
                else:
                    messages.append(types.MessageEmpty(id=getattr(m, "id", 0)))
            return types.messages.ChannelMessages(
                pts=1, count=len(messages), messages=messages, chats=[self._channel(cid, account)], users=[])
        if isinstance(request, functions.messages.GetMessagesViewsRequest):
            cid = self._check_channel(account, request, request.peer)
            name = self._names[cid]
            out = []
            for i in request.id:
                if request.increment:
                    self.views[(name, i)] += 1
                out.append(types.MessageViews(views=self.views[(name, i)]))
            return types.messages.MessageViews(views=out, chats=[], users=[])
        if isinstance(request, functions.messages.SendReactionRequest):
            cid = self._check_channel(account, request, request.peer)
            self.reactions[(self._names[cid], request.msg_id)] += 1
            return types.Updates(updates=[], users=[], chats=[], date=_DATE, seq=0)
        raise errors.RPCError(request, f"the fake Telegram does not serve {type(request).__name__}", 400)

    async def _serve(self, account, request):
        method = _METHODS.get(type(request), type(request).__name__)
        self.calls[method] += 1
        wait_ns = self._limits.try_acquire(account, method, self._group_of(request), self._now_ns())
        median, sigma = self._latencies.get(method, (0.1, 0.3))
        await asyncio.sleep(self._rng.lognormvariate(math.log(median), sigma))
        if wait_ns is not None:
            self.floods[method] += 1
            raise errors.FloodWaitError(request, capture=max(1, math.ceil(wait_ns / 1e9)))
        return self._answer(account, request)


class FakeSender:
    """Stands in for Telethon's MTProtoSender: ``send()`` returns a future of the answer."""

    def __init__(self, telegram: FakeTelegram, account: str):
        self._telegram = telegram
        self.account = account
        self.auth_key = None

    def send(self, request, ordered=False):
        if utils.is_list_like(request):
            return [self.send(r, ordered) for r in request]
        return asyncio.get_running_loop().create_task(self._telegram._serve(self.account, request))

    def is_connected(self):
        return True

    async def connect(self, connection=None):
        return True

    async def disconnect(self):
        return None
