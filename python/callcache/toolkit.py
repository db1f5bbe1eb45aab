"""The client toolkit from asyncio: rate limiter, account locks, bounded queue,
seen set and state store (the last three in callcache._containers). Each
wraps the library's own implementation; the ``await`` forms never park a
thread or block the event loop.
"""

import asyncio
import json
import threading
from typing import Iterable, Optional, Union

from . import _native
from ._containers import BoundedQueue, SeenSet, StateStore  # re-exported
from ._engine import _config_from_dict
from ._clock import native_clock

__all__ = ["RateLimiter", "AccountLocks", "LockGuard", "BoundedQueue", "SeenSet", "StateStore"]

_SCOPE_BITS = {
    "method": _native.SCOPE_METHOD,
    "account": _native.SCOPE_ACCOUNT,
    "chat": _native.SCOPE_CHAT,
    "bot": _native.SCOPE_BOT,
    "paid": _native.SCOPE_PAID,
}


def _call(method="", account="", bot="", chat=None, paid=False):
    if chat is not None and not isinstance(chat, int):
        raise TypeError(f"chat: expected an int chat id, got {type(chat).__name__}")
    return _native.Call(str(method), str(account), str(bot), chat, bool(paid))


def _storage_section(redis_url):
    return {"l2": "redis", "redis_url": redis_url} if redis_url else None


async def _sleep_until(clock, target_ns, wait):
    await asyncio.sleep(wait)
    if clock is not None:  # virtual time: never start before the reserved instant
        while clock.now_ns() < target_ns:
            await asyncio.sleep((target_ns - clock.now_ns()) / 1e9)


# ---- Rate limiter ----------------------------------------------------------------


class RateLimiter:
    """Paces calls by rules ("N per period for key K"), GCRA, as the library does.

    ``rules``: the ``rate_limits.rules`` mapping of the YAML configuration
    (``{"per_chat": {"limit": 1, "period": "1s", "key": ["bot", "chat"]}}``);
    ``presets``: ``telegram_bot`` (30/s per bot, 1/s per private chat, 20/min
    per group) and/or ``telegram_user`` (MTProto: get_entity 3 s,
    get_messages 0.3 s, send_reaction 0.5 s, send_message 0.5 s, any other
    method 0.2 s, per account and method). ``redis_url``: share the limits
    with every process using that Redis.

    ``async with limiter.slot(method=..., account=..., chat=...)`` waits for
    the call's turn on the event loop; ``deadline`` (seconds) raises
    DeadlineExceeded instead of waiting longer, reserving nothing.
    Accounts and bots are identities, never secrets: pass tenant ids
    (:func:`callcache.tenant_hex`).
    """

    def __init__(self, rules: Optional[dict] = None, *, presets: Iterable[str] = (), clock=None,
                 redis_url: Optional[str] = None):
        section = {}
        if presets:
            section["presets"] = list(presets)
        if rules:
            section["rules"] = rules
        doc = {"rate_limits": section}
        if redis_url:
            doc["storage"] = _storage_section(redis_url)
        self._init(_config_from_dict(doc), clock)

    @classmethod
    def telegram_user(cls, **kw):
        """The MTProto preset (user accounts, per account and method)."""
        return cls(presets=["telegram_user"], **kw)

    @classmethod
    def telegram_bot(cls, **kw):
        """The Bot API preset (per bot, per chat, per group)."""
        return cls(presets=["telegram_bot"], **kw)

    @classmethod
    def _from_native_config(cls, config, clock):
        self = cls.__new__(cls)
        self._init(config, clock)
        return self

    def _init(self, config, clock):
        self._clock = clock
        self._native = _native.RateLimiter(config, native_clock(clock))

    @property
    def distributed(self) -> bool:
        return self._native.distributed

    @property
    def rules(self):
        return self._native.rule_names()

    async def acquire(self, *, method="", account="", bot="", chat=None, paid=False, deadline=None):
        """Waits (on the event loop) until the call may start; its slot is then taken."""
        call = _call(method, account, bot, chat, paid)
        if self._native.distributed:  # a Redis round trip: off the loop
            loop = asyncio.get_running_loop()
            wait = await loop.run_in_executor(None, self._native.reserve, call, deadline)
        else:
            wait = self._native.reserve(call, deadline)
        if wait > 0:
            target = self._clock.now_ns() + round(wait * 1e9) if self._clock else 0
            await _sleep_until(self._clock, target, wait)

    def slot(self, *, method="", account="", bot="", chat=None, paid=False, deadline=None):
        """``async with limiter.slot(...)``: the body starts when the call may go."""
        return _Slot(self, dict(method=method, account=account, bot=bot, chat=chat, paid=paid, deadline=deadline))

    def acquire_sync(self, *, method="", account="", bot="", chat=None, paid=False, deadline=None):
        """Blocks this thread (not the GIL) until the call may start."""
        self._native.acquire(_call(method, account, bot, chat, paid), deadline)

    def try_acquire(self, *, method="", account="", bot="", chat=None, paid=False):
        """(True, 0.0) and the slot taken if the call may start now, else (False, wait_seconds)."""
        return self._native.try_acquire(_call(method, account, bot, chat, paid))

    def penalize(self, key: dict, seconds: float):
        """Blocks exactly `key` for `seconds` (an upstream FLOOD_WAIT or 429 retry_after).

        `key` names the attributes the back-off concerns, e.g.
        ``{"account": a, "method": "get_entity"}`` (one method of one
        account), ``{"bot": b, "chat": c}`` (one chat), ``{"bot": b}``: every
        call that agrees on those attributes waits, on top of its rules.
        Extends, never shortens, a penalty in force.
        """
        unknown = set(key) - set(_SCOPE_BITS)
        if unknown:
            raise ValueError(f"penalize: unknown attribute {sorted(unknown)[0]!r} (expected {', '.join(_SCOPE_BITS)})")
        if not key:
            raise ValueError("penalize: name at least one attribute (method, account, chat, bot, paid)")
        scope = 0
        for name in key:
            scope |= _SCOPE_BITS[name]
        self._native.penalize(_call(**key), scope, seconds)

    def stats(self) -> dict:
        return json.loads(self._native.stats_json())

    def prometheus(self) -> str:
        return self._native.prometheus()


class _Slot:
    __slots__ = ("_limiter", "_kw")

    def __init__(self, limiter, kw):
        self._limiter = limiter
        self._kw = kw

    async def __aenter__(self):
        await self._limiter.acquire(**self._kw)

    async def __aexit__(self, *exc):
        return False


# ---- Account locks ---------------------------------------------------------------------


class LockGuard:
    """Accounts held by one task. Released by ``release()`` or the ``with`` block."""

    __slots__ = ("_native",)

    def __init__(self, native):
        self._native = native

    @property
    def accounts(self):
        return self._native.accounts

    @property
    def holds(self) -> bool:
        return self._native.holds

    def release(self):
        self._native.release()


def _deliver_guard(future, ok, value):
    if future.done():  # the waiter was cancelled: give the accounts back
        if ok:
            value.release()
        return
    if ok:
        future.set_result(LockGuard(value))
    else:
        future.set_exception(value)


class AccountLocks:
    """One task per account.

    ``mode``: ``strict`` (a held account makes others wait up to ``wait``
    seconds, then raise Busy (no wait) or Timeout) or ``warn`` (conflicts
    proceed and are logged to the ``callcache.locks`` logger). Several
    accounts are taken all at once or not at all, so tasks that need
    overlapping sets never deadlock. ``redis_url``: locks shared by every
    process using that Redis (leases renewed while held).

        async with locks.hold("account-7", task="likebot"):
            ...
    """

    def __init__(self, mode: str = "strict", wait_timeout: float = 0, *, clock=None,
                 redis_url: Optional[str] = None):
        doc = {"account_locks": {"mode": mode, "wait_timeout": wait_timeout}}
        if redis_url:
            doc["storage"] = _storage_section(redis_url)
        self._init(_config_from_dict(doc), clock)

    @classmethod
    def _from_native_config(cls, config, clock):
        self = cls.__new__(cls)
        self._init(config, clock)
        return self

    def _init(self, config, clock):
        self._clock = clock
        self._native = _native.AccountLocks(config, native_clock(clock))

    @property
    def mode(self) -> str:
        return self._native.mode

    @property
    def distributed(self) -> bool:
        return self._native.distributed

    async def acquire(self, accounts: Union[str, Iterable[str]], *, task: str, wait: Optional[float] = None) -> LockGuard:
        """Takes every account for `task` (all or none), waiting on the event loop."""
        names = [accounts] if isinstance(accounts, str) else list(accounts)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        loop_thread = threading.get_ident()

        def done(ok, value):  # the locks' scheduler thread, or this loop's virtual clock
            if threading.get_ident() == loop_thread:
                _deliver_guard(future, ok, value)
            else:
                loop.call_soon_threadsafe(_deliver_guard, future, ok, value)

        self._native.acquire_async(names, task, wait, done)
        return await future

    def acquire_sync(self, accounts, *, task: str, wait: Optional[float] = None) -> LockGuard:
        """Blocks this thread (not the GIL) until the accounts are held."""
        names = [accounts] if isinstance(accounts, str) else list(accounts)
        return LockGuard(self._native.acquire(names, task, wait))

    def hold(self, accounts, *, task: str, wait: Optional[float] = None):
        """``async with`` (or ``with``, blocking) context manager holding the accounts."""
        return _Hold(self, accounts, task, wait)

    def holder(self, account: str):
        """{'account', 'task', 'held_for'} of the task holding `account`, or None."""
        return self._native.holder(account)

    def holders(self):
        return self._native.holders()

    def stats(self) -> dict:
        return json.loads(self._native.stats_json())

    def prometheus(self) -> str:
        return self._native.prometheus()


class _Hold:
    __slots__ = ("_locks", "_accounts", "_task", "_wait", "_guard")

    def __init__(self, locks, accounts, task, wait):
        self._locks, self._accounts, self._task, self._wait = locks, accounts, task, wait
        self._guard = None

    async def __aenter__(self):
        self._guard = await self._locks.acquire(self._accounts, task=self._task, wait=self._wait)
        return self._guard

    async def __aexit__(self, *exc):
        self._guard.release()
        return False

    def __enter__(self):
        self._guard = self._locks.acquire_sync(self._accounts, task=self._task, wait=self._wait)
        return self._guard

    def __exit__(self, *exc):
        self._guard.release()
        return False
