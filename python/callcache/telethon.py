"""callcache for Telethon: an unmodified ``TelegramClient`` that reads through
callcache and paces itself.

    from callcache.telethon import wrap

    client = wrap(TelegramClient(session, api_id, api_hash), engine,
                  account="+34600000000", limiter=callcache.RateLimiter.telegram_user())
    channel = await client.get_entity("durov")           # one call for every account
    peer = await client.get_input_entity(channel)         # this account's access hash
    [post] = await client.get_messages(peer, ids=[42])    # one call for every account

What changes (everything else is Telethon's own code):

- **Reads are cached** in the engine's namespaces, at the level of the raw
  requests Telethon sends, so ``get_entity``, ``get_input_entity``,
  ``get_messages`` and your own ``client(Request(...))`` all benefit:

  ======================================  ===============  ===================
  request                                 namespace        shared by
  ======================================  ===============  ===================
  contacts.ResolveUsernameRequest         ``entity``       every account
  channels.GetFullChannelRequest          ``full_channel`` every account
  channels.GetMessagesRequest (by id)     ``message``      every account
  channels.GetChannelsRequest (one)       ``input_peer``   this account only
  users.GetUsersRequest (one)             ``input_peer``   this account only
  messages.GetMessagesRequest (by id)     ``message``      this account only
  ======================================  ===============  ===================

  Public data is stored without access hashes (they are per account: a hash
  fetched by one account is refused for another); each account gets its own
  hash through ``input_peer``, keyed by a keyed hash of ``account`` — the
  phone number or session string never appears in keys, logs or metrics.
  Values are stored as TL bytes and decoded for each caller (Telethon
  mutates the objects it returns, so accounts never share one). Single
  flight: a channel resolved by ten accounts at once is one upstream call.
  Use the ``bytes`` codec for these namespaces when they have a second tier.
- **Every request is paced** by `limiter` (per account, per method, per chat:
  ``RateLimiter.telegram_user()`` is the MTProto preset) before it reaches
  the network; views, reactions and sends are never cached.
- **FLOOD_WAIT** penalises exactly that request type for that account in the
  limiter — so every task of the process (and every process, when the
  limiter is in Redis) waits — and the request is retried after the wait, up
  to `max_flood_retries` times; a wait longer than `max_flood_wait` seconds
  (default: the client's ``flood_sleep_threshold``) is raised at once.
"""

import asyncio
import collections
import itertools
from typing import Optional

from telethon import errors as tl_errors
from telethon import functions, types, utils
from telethon.extensions import BinaryReader
from telethon.tl.tlobject import TLRequest

from ._cache import tenant_hex
from ._engine import Engine

__all__ = ["wrap", "TelethonAdapter", "method_name", "NAMESPACES"]

# Request types -> the method names rate limits use (the MTProto preset's and
# the replay scenarios': get_entity 3 s, get_messages 0.3 s, send_reaction
# 0.5 s, send_message 0.5 s, anything else 0.2 s per account).
_METHOD_NAMES = {
    functions.contacts.ResolveUsernameRequest: "get_entity",
    functions.channels.GetChannelsRequest: "get_input_entity",
    functions.users.GetUsersRequest: "get_users",
    functions.channels.GetMessagesRequest: "get_messages",
    functions.messages.GetMessagesRequest: "get_messages",
    functions.channels.GetFullChannelRequest: "get_full_channel",
    functions.messages.GetMessagesViewsRequest: "view",
    functions.messages.SendReactionRequest: "send_reaction",
    functions.messages.SendMessageRequest: "send_message",
}

# Roles -> engine namespaces (override with wrap(namespaces=...); None = not cached).
NAMESPACES = {
    "resolve": "entity",
    "full_channel": "full_channel",
    "messages": "message",
    "input_peer": "input_peer",
}


def method_name(request) -> str:
    """The method name a request is paced (and counted) under."""
    return _METHOD_NAMES.get(type(request), type(request).__name__)


def _chat_of(request) -> Optional[int]:
    for attr in ("peer", "channel"):
        p = getattr(request, attr, None)
        if p is not None:
            try:
                return utils.get_peer_id(p)
            except (TypeError, ValueError):
                return None
    return None


def _copy(obj):
    return BinaryReader(bytes(obj)).tgread_object()


def _publicize(result):
    """A copy of `result` without account-specific access hashes (min constructors)."""
    out = _copy(result)
    for e in itertools.chain(getattr(out, "chats", ()) or (), getattr(out, "users", ()) or ()):
        if isinstance(e, (types.Channel, types.User)):
            e.access_hash = None
            e.min = True
    return out


def _message_ids(ids):
    if not ids or not all(isinstance(i, types.InputMessageID) for i in ids):
        return None
    return ",".join(str(i.id) for i in ids)


class _PacedSender:
    """The client's network layer behind the limiter (paces every request, handles FLOOD_WAIT)."""

    __slots__ = ("_inner", "_adapter")

    def __init__(self, inner, adapter):
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_adapter", adapter)

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __setattr__(self, name, value):
        setattr(self._inner, name, value)

    def send(self, request, ordered=False):
        if utils.is_list_like(request):
            return [self.send(r, ordered) for r in request]
        return asyncio.ensure_future(self._adapter._send(self._inner, request, ordered))


class TelethonAdapter:
    """What :func:`wrap` attaches to a client as ``client.callcache``."""

    def __init__(self, client, engine: Engine, *, account: str, limiter=None, locks=None, namespaces=None,
                 max_flood_wait: Optional[float] = None, max_flood_retries: int = 3):
        if not account:
            raise ValueError("account: give a stable identity of the account (e.g. its phone number)")
        self.client = client
        self.engine = engine
        self.limiter = limiter
        self.locks = locks
        self.tenant = engine.tenant_from_secret(account)
        self.account_id = tenant_hex(self.tenant)  # what limits, locks and logs see
        self.namespaces = {**NAMESPACES, **(namespaces or {})}
        for role, ns in self.namespaces.items():
            if ns is not None and ns not in engine.namespaces:
                raise ValueError(f"namespaces[{role!r}]: the engine has no namespace {ns!r}")
        self.max_flood_wait = client.flood_sleep_threshold if max_flood_wait is None else max_flood_wait
        self.max_flood_retries = max_flood_retries
        self._orig_call = client._call
        self.requests = collections.Counter()     # requests sent upstream, by method
        self.flood_waits = collections.Counter()  # FLOOD_WAITs received, by method
        self.loads = collections.Counter()        # cache loads, by namespace

    # ---- Account locks ----
    def hold(self, task: str, wait: Optional[float] = None):
        """``async with client.callcache.hold(task="likebot")``: this account for one task."""
        if self.locks is None:
            raise ValueError("wrap(..., locks=...) was not given")
        return self.locks.hold(self.account_id, task=task, wait=wait)

    # ---- Reads ----
    def _plan(self, r):
        """(namespace, key, tenant) for a cacheable request; tenant None = public data."""
        ns = self.namespaces
        if isinstance(r, functions.contacts.ResolveUsernameRequest):
            return ns["resolve"], f"resolve:{r.username.lower()}", None
        if isinstance(r, functions.channels.GetFullChannelRequest) and isinstance(r.channel, types.InputChannel):
            return ns["full_channel"], f"channel:{r.channel.channel_id}", None
        if isinstance(r, functions.channels.GetMessagesRequest) and isinstance(r.channel, types.InputChannel):
            ids = _message_ids(r.id)
            return (ns["messages"], f"channel:{r.channel.channel_id}:{ids}", None) if ids else None
        if isinstance(r, functions.messages.GetMessagesRequest):
            ids = _message_ids(r.id)  # ids of private chats and groups are per account
            return (ns["messages"], f"private:{ids}", self.tenant) if ids else None
        if isinstance(r, functions.channels.GetChannelsRequest) and len(r.id) == 1 \
                and isinstance(r.id[0], types.InputChannel):
            return ns["input_peer"], f"channel:{r.id[0].channel_id}", self.tenant
        if isinstance(r, functions.users.GetUsersRequest) and len(r.id) == 1 and isinstance(r.id[0], types.InputUser):
            return ns["input_peer"], f"user:{r.id[0].user_id}", self.tenant
        return None

    async def _call(self, sender, request, ordered=False, flood_sleep_threshold=None):
        # Flood waits are handled below the cache (in _send): Telethon must
        # not sleep on them again.
        if not isinstance(request, TLRequest):  # lists, or a non-request (Telethon raises)
            return await self._orig_call(sender, request, ordered=ordered, flood_sleep_threshold=0)
        await request.resolve(self.client, utils)
        plan = self._plan(request)
        if plan is None or plan[0] is None:
            return await self._orig_call(sender, request, ordered=ordered, flood_sleep_threshold=0)
        ns, key, tenant = plan

        async def load():
            self.loads[ns] += 1
            result = await self._orig_call(sender, request, ordered=ordered, flood_sleep_threshold=0)
            return bytes(_publicize(result) if tenant is None else result)

        data = await self.engine.cache.get_or_load(ns, key, load, tenant=tenant)
        result = BinaryReader(data).tgread_object()  # this caller's own objects
        self.client.session.process_entities(result)
        self.client._entity_cache.add(result)
        return result

    # ---- The network, paced ----
    async def _send(self, inner, request, ordered):
        method = method_name(request)
        chat = _chat_of(request)
        retries = 0
        while True:
            if self.limiter is not None:
                await self.limiter.acquire(method=method, account=self.account_id, chat=chat)
            self.requests[method] += 1
            try:
                return await inner.send(request, ordered=ordered)
            except tl_errors.FloodWaitError as e:
                self.flood_waits[method] += 1
                if retries >= self.max_flood_retries or e.seconds > self.max_flood_wait:
                    raise
                retries += 1
                if self.limiter is not None:  # every task of this account waits, not just this one
                    self.limiter.penalize({"account": self.account_id, "method": method}, e.seconds)
                else:
                    await asyncio.sleep(e.seconds)

    def stats(self) -> dict:
        return {
            "account": self.account_id,
            "requests": dict(self.requests),
            "flood_waits": dict(self.flood_waits),
            "loads": dict(self.loads),
        }


def wrap(client, engine: Engine, *, account: str, limiter=None, locks=None, namespaces: Optional[dict] = None,
         max_flood_wait: Optional[float] = None, max_flood_retries: int = 3):
    """Makes `client` (a ``telethon.TelegramClient``) read through `engine` and pace itself.

    `account`: a stable identity of the account (phone number, user id); only
    its keyed hash is used. `limiter`: a :class:`callcache.RateLimiter`
    (``RateLimiter.telegram_user()`` for the MTProto preset; share one
    between the clients of a process). `locks`: :class:`callcache.AccountLocks`
    for ``client.callcache.hold(task=...)``. `namespaces`: overrides of
    :data:`NAMESPACES`. Returns the same client, with ``client.callcache``
    (a :class:`TelethonAdapter`: counters, hold()).
    """
    if getattr(client, "callcache", None) is not None:
        raise ValueError("this client is already wrapped")
    adapter = TelethonAdapter(client, engine, account=account, limiter=limiter, locks=locks, namespaces=namespaces,
                              max_flood_wait=max_flood_wait, max_flood_retries=max_flood_retries)
    client._sender = _PacedSender(client._sender, adapter)
    client._call = adapter._call
    client.flood_sleep_threshold = 0  # FLOOD_WAIT is handled below the cache, once
    client.callcache = adapter
    return client
