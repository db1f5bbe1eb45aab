"""The client toolkit from asyncio: rate limiter, account locks, bounded queue,
seen set and state store. Each wraps the library's own implementation; the
``await`` forms never park a thread or block the event loop.
"""

import asyncio
import collections
import json
import threading
from typing import Iterable, Optional, Union

from . import _native, errors
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


# ---- Bounded queue ------------------------------------------------------------------------


class BoundedQueue:
    """A bounded multi-producer/multi-consumer queue with a declared overflow policy.

    ``policy`` when full: ``block`` (``await put`` waits for room, up to
    ``timeout``/``block_timeout`` seconds, then raises Timeout),
    ``drop_newest`` (the new item is dropped: put returns
    ``"dropped_newest"``), ``drop_oldest`` (the oldest is dropped: put returns
    ``"enqueued_dropped_oldest"``) or ``reject`` (put raises
    ResourceExhausted). ``close()`` refuses new items (QueueClosed); consumers
    drain what is left, then ``get`` raises QueueClosed and ``async for``
    ends. Coroutines on any loop and threads (``put_sync``/``get_sync``) may
    share one queue.
    """

    def __init__(self, capacity: int, policy: str = "block", *, name: str = "queue",
                 block_timeout: Optional[float] = None, clock=None):
        self._native = _native.BoundedQueue(name, capacity, policy, block_timeout, native_clock(clock))
        self._name = name
        self._block_timeout = block_timeout
        self._mu = threading.Lock()
        self._getters = collections.deque()  # (loop, future) awaiting an item
        self._putters = collections.deque()  # (loop, future) awaiting room

    @property
    def name(self) -> str:
        return self._name

    @property
    def policy(self) -> str:
        return self._native.policy

    @property
    def capacity(self) -> int:
        return self._native.capacity

    @property
    def closed(self) -> bool:
        return self._native.closed

    def __len__(self):
        return self._native.size()

    # Wake-ups for waiters on event loops (threads wait inside the library).
    def _wake(self, waiters, all_=False):
        with self._mu:
            while waiters:
                loop, fut = waiters.popleft()
                try:
                    loop.call_soon_threadsafe(_wake_future, fut)
                except RuntimeError:  # that loop is closed
                    continue
                if not all_:
                    return

    def _outcome(self, outcome: str) -> str:
        if outcome in ("enqueued", "enqueued_dropped_oldest"):
            self._wake(self._getters)
        elif outcome == "closed":
            raise errors.QueueClosed(f"queue '{self._name}' is closed")
        elif outcome != "dropped_newest":
            self._native.raise_for(outcome)  # rejected (ResourceExhausted), timed_out (Timeout)
        return outcome

    async def _wait(self, waiters, loop, deadline, retry):
        """Waits for a wake-up on `waiters`, then returns retry() (None = wait again).

        Registered before retry() looks, so no wake-up is lost; a waiter that
        leaves (timeout, cancellation) after being woken passes the wake-up on.
        """
        while True:
            entry = (loop, loop.create_future())
            with self._mu:
                waiters.append(entry)
            try:
                result = retry()
                if result is not None:
                    return result
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise asyncio.TimeoutError
                await asyncio.wait_for(entry[1], remaining)
            except BaseException:
                if not self._forget(waiters, entry):
                    self._wake(waiters)
                raise
            self._forget(waiters, entry)

    def _forget(self, waiters, entry) -> bool:
        """Removes a waiter. False if a wake-up took it first."""
        with self._mu:
            try:
                waiters.remove(entry)
                return True
            except ValueError:
                return False

    async def put(self, item, timeout: Optional[float] = None) -> str:
        """Adds `item` under the queue's policy. Returns the outcome's name."""
        if timeout is None:
            timeout = self._block_timeout
        outcome = self._native.try_push(item)
        if outcome is None:  # full, policy block: wait for room on the loop
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            try:
                outcome = await self._wait(self._putters, loop, deadline, lambda: self._native.try_push(item))
            except asyncio.TimeoutError:
                # A last attempt that the queue counts as timed out if still full.
                outcome = self._native.push(item, 0)
        return self._outcome(outcome)

    async def get(self, timeout: Optional[float] = None):
        """The oldest item, waiting for one. Raises QueueClosed once closed and empty, Timeout after `timeout`."""

        def take():
            ok, item = self._native.try_pop()
            if ok:
                return (item,)
            if self._native.closed:
                raise errors.QueueClosed(f"queue '{self._name}' is closed and empty")
            return None

        got = take()
        if got is None:
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            try:
                got = await self._wait(self._getters, loop, deadline, take)
            except asyncio.TimeoutError:
                raise errors.Timeout(f"queue '{self._name}': no item within {timeout} s") from None
        self._wake(self._putters)
        return got[0]

    def put_sync(self, item, timeout: Optional[float] = None) -> str:
        """put() for threads: blocks this thread (not the GIL) under policy block."""
        return self._outcome(self._native.push(item, timeout))

    def get_sync(self, timeout: Optional[float] = None):
        """get() for threads."""
        ok, item = self._native.pop(timeout)
        if ok:
            self._wake(self._putters)
            return item
        if self._native.closed:
            raise errors.QueueClosed(f"queue '{self._name}' is closed and empty")
        raise errors.Timeout(f"queue '{self._name}': no item within {timeout} s")

    def close(self):
        """Refuses new items and wakes every waiter. Idempotent."""
        self._native.close()
        self._wake(self._getters, all_=True)
        self._wake(self._putters, all_=True)

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.get()
        except errors.QueueClosed:
            raise StopAsyncIteration from None

    def stats(self) -> dict:
        return json.loads(self._native.stats_json())

    def prometheus(self) -> str:
        return self._native.prometheus()


def _wake_future(fut):
    if not fut.done():
        fut.set_result(None)


# ---- Seen set, state store ------------------------------------------------------------------


class SeenSet:
    """A bounded, TTL'd set of processed ids (update de-duplication).

    ``if seen.insert_if_new(update.id): handle(update)``. Holds at most
    ``capacity`` ids (the least recently seen is forgotten first) and forgets
    an id ``ttl`` seconds after it was last seen.
    """

    def __init__(self, capacity: int = 100_000, ttl: float = 3600, *, refresh_on_repeat: bool = True, clock=None):
        self._native = _native.SeenSet(capacity, ttl, refresh_on_repeat, native_clock(clock))

    def insert_if_new(self, id_) -> bool:
        return self._native.insert_if_new(id_)

    def __contains__(self, id_):
        return self._native.contains(id_)

    def discard(self, id_) -> bool:
        return self._native.erase(id_)

    def cleanup_expired(self) -> int:
        return self._native.cleanup_expired()

    def __len__(self):
        return self._native.size()

    def stats(self) -> dict:
        return json.loads(self._native.stats_json())


class StateStore:
    """Per-user conversation state with an idle TTL. Not a cache: a state is
    never evicted before it has been idle ``idle_ttl`` seconds; a full store
    refuses new state with ResourceExhausted. Every read or write restarts a
    state's idle TTL. Values are Python objects (stored as they are).
    """

    def __init__(self, max_states: int = 100_000, idle_ttl: float = 1800, *, name: str = "state", clock=None):
        self._native = _native.StateStore(name, max_states, idle_ttl, native_clock(clock))
        self._update_mu = threading.Lock()

    def put(self, key: str, value):
        self._native.put(key, value)

    def get(self, key: str, default=None):
        v = self._native.get(key)
        return default if v is None else v

    def update(self, key: str, fn, default=None):
        """Replaces the state of `key` by fn(state) (state = `default` when absent), atomically
        with respect to other update() calls. Returns the new state."""
        with self._update_mu:
            new = fn(self.get(key, default))
            self._native.put(key, new)
            return new

    def discard(self, key: str) -> bool:
        return self._native.erase(key)

    def __contains__(self, key):
        return self._native.contains(key)

    def cleanup_expired(self) -> int:
        return self._native.cleanup_expired()

    def __len__(self):
        return self._native.size()

    def stats(self) -> dict:
        return json.loads(self._native.stats_json())
