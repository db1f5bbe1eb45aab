"""The caches and the read path as Python sees it: loaders run for the
native core, the Cache class, the decorator. The engine is in _engine.py."""

import asyncio
import functools
import inspect
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from . import _native, errors
from ._clock import RealWork

__all__ = ["Cache", "Loaded", "tenant_from_secret", "tenant_hex"]


@dataclass(frozen=True)
class Loaded:
    """What a loader may return instead of a bare value: the value plus how to store it.

    ``ttl`` (seconds) overrides the namespace's ttl for this entry; ``tags``
    are for :meth:`Cache.invalidate_tag`.
    """

    value: Any
    ttl: Optional[float] = None
    tags: Sequence[str] = field(default_factory=tuple)


def tenant_from_secret(secret, key: Optional[str] = None) -> int:
    """The tenant id of a secret (a bot token, a phone number): a keyed hash (SipHash-2-4).

    ``key`` is the configuration's ``tenant_key`` (32 hex digits; default: the
    library's built-in key). Only the id is ever stored, logged or exported.
    """
    return _native.tenant_from_secret(secret, key)


def tenant_hex(tenant: int) -> str:
    """16 hex digits: how tenant ids appear in logs, metrics and rate-limiter keys."""
    return _native.tenant_hex(tenant)


# ---- Loaders, run for the native core ----------------------------------------

_loader_tasks = set()  # strong references: asyncio keeps only weak ones


def _is_async(fn) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(type(fn), "__call__", None)
    return call is not None and inspect.iscoroutinefunction(call)


def _deliver(future, ok, value):
    """Hands a load's outcome to an awaiting caller (its future may be cancelled)."""
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


_local = threading.local()


def _running_loop():
    """asyncio.get_running_loop(), remembered per thread.

    get_running_loop() makes a getpid() system call (CPython 3.11), which
    costs microseconds on some virtual machines: a load that waits must not
    pay it for every waiter. A thread runs one loop at a time, so the loop
    remembered is still this thread's while it runs (is_running(): public,
    in asyncio's loops and uvloop's alike).
    """
    loop = getattr(_local, "loop", None)
    if loop is None or not loop.is_running():
        loop = _local.loop = asyncio.get_running_loop()
    return loop


def _start_load(loader, context, completion):
    """Called by the engine to run the loader as a task of the event loop of
    the caller that leads the load (or of a reader that starts a background
    refresh). Usually on that loop's thread; on the Redis coordinator's
    thread when the caller waited for another process loading the same key
    and the value still was not in Redis: then handed to the loop.
    `context`: (work, loop, the loop's thread ident) from get_or_load."""
    work, loop, thread = context
    if thread == threading.get_ident():
        _spawn_loader(loop, loader, work, completion)
        return
    try:
        loop.call_soon_threadsafe(_spawn_loader, loop, loader, work, completion)
    except RuntimeError:  # the loop was closed meanwhile
        completion.fail(errors.Cancelled("the event loop that asked for this load is closed"))


def _spawn_loader(loop, loader, work, completion):
    task = loop.create_task(_run_loader(loop, loader, work, completion))
    _loader_tasks.add(task)
    task.add_done_callback(_loader_tasks.discard)


async def _run_loader(loop, loader, work, completion):
    # The load belongs to the flight, not to the caller that started it:
    # cancelling a waiter never cancels this task.
    try:
        if _is_async(loader):
            value = await loader()
        else:  # never block the event loop: synchronous loaders run on a thread
            work.begin()
            try:
                value = await loop.run_in_executor(None, loader)
            finally:
                work.end()
            if inspect.isawaitable(value):  # e.g. `lambda: fetch(x)`
                value = await value
    except asyncio.CancelledError:
        completion.fail(errors.Cancelled("the load was cancelled (its event loop is shutting down?)"))
        raise
    except BaseException as exc:  # every waiter raises this very object
        completion.fail(exc)
        if not isinstance(exc, Exception):
            raise
    else:
        completion.set(value)


def _sync_loader(loader):
    def run():
        value = loader()
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()
            raise TypeError("get_or_load_sync needs a synchronous loader; await get_or_load() for async ones")
        return value

    return run


_MISS = object()  # "no fresh value": never a cached value
_fast_get = _native._fast_get
_fast_fresh = _native._fast_fresh

_native._set_deliver(_deliver)
_native._set_starter(_start_load)
_native._set_loaded_class(Loaded)
_Waiter = _native.Waiter


def _running_loop_here():
    return asyncio._get_running_loop() is not None


# ---- Cache ---------------------------------------------------------------------------


class Cache:
    """One engine's namespaces (a process, task or isolated scope; see :class:`Engine`).

    Values are Python objects, stored as they are (a hit returns the object
    the loader returned, not a copy): treat cached values as immutable.
    ``tenant=`` is None (no tenant), an id from
    :meth:`Engine.tenant_from_secret`, or a public name (hashed the same way).
    Thread-safe: use one Cache from any thread and any event loop.
    """

    __slots__ = ("_core", "_engine", "_work", "_fronts")

    def __init__(self, core, engine):
        self._core = core
        self._engine = engine
        self._work = RealWork(engine.clock)
        self._fronts = {ns: core.front_handle(ns) for ns in core.namespaces()}  # for the hit paths

    # ---- Plain access ----
    def get(self, ns: str, key, *, tenant=None):
        """The fresh value, or None (miss, expired, or a remembered failure). Never loads."""
        front = self._fronts.get(ns)
        if front is None:
            return self._core.get(ns, tenant, key)  # raises NotFound naming the namespaces
        return _fast_get(front, tenant, key)

    def put(self, ns: str, key, value, *, tenant=None, ttl: Optional[float] = None, tags=None):
        """Stores `value` (and writes it to the second tier when the namespace has one).

        Raises TooLarge (over the namespace's byte budget), CodecError (the
        second tier's codec cannot encode it), InvalidArgument (empty key).
        """
        self._core.put(ns, tenant, key, value, ttl, tags)

    def erase(self, ns: str, key, *, tenant=None) -> bool:
        """Drops one key (both tiers). Returns True if it was in memory."""
        return self._core.erase(ns, tenant, key)

    invalidate = erase

    def invalidate_tenant(self, tenant) -> int:
        """Drops every entry of a tenant in every namespace (both tiers). Returns entries dropped from memory."""
        return self._core.invalidate_tenant(tenant)

    def invalidate_tag(self, tag: str) -> int:
        """Drops every entry carrying `tag` in every namespace (both tiers). Returns entries dropped from memory."""
        return self._core.invalidate_tag(tag)

    def invalidate_namespace(self, ns: str):
        """Drops every entry of a namespace, in O(1) (both tiers)."""
        self._core.invalidate_namespace(ns)

    # ---- Loading ----
    async def get_or_load(self, ns: str, key, loader: Callable, *, tenant=None, timeout: Optional[float] = None):
        """The value for `key`, loading it once however many coroutines and threads ask.

        `loader` is called with no arguments: an ``async def`` runs as a task
        on this loop, a plain function on a worker thread (so the loop never
        blocks); it returns the value or a :class:`Loaded`. Every waiter gets
        the value, or raises the loader's own exception. Cancelling this call
        never cancels the load. ``timeout``: give up waiting after this many
        seconds (DeadlineExceeded); the load continues for the others.
        Freshness, negative caching, stale serving, refresh-ahead and
        load_timeout follow the namespace's policy.
        """
        front = self._fronts.get(ns)
        if front is not None:
            value = _fast_fresh(front, tenant, key, _MISS)
            if value is not _MISS:
                return value
        loop = _running_loop()
        r = self._core.load(ns, tenant, key, loader, (self._work, loop, threading.get_ident()), timeout)
        if r.__class__ is _Waiter:  # a miss: wait for the flight on this loop
            future = loop.create_future()
            r.attach(future, loop)
            return await future
        return r

    def get_or_load_sync(self, ns: str, key, loader: Callable, *, tenant=None, timeout: Optional[float] = None):
        """get_or_load for threads: blocks this thread (never the GIL) until the value is there.

        Joins the same single flight as the coroutines. `loader` must be
        synchronous. Not for use on a thread running an event loop.
        """
        front = self._fronts.get(ns)
        if front is not None:  # a hit never blocks: no checks needed
            value = _fast_fresh(front, tenant, key, _MISS)
            if value is not _MISS:
                return value
        if _running_loop_here():
            raise RuntimeError("get_or_load_sync would block the running event loop: use `await get_or_load(...)`")
        if _is_async(loader):
            raise TypeError("get_or_load_sync needs a synchronous loader; await get_or_load() for async ones")
        return self._core.load_blocking(ns, tenant, key, _sync_loader(loader), timeout)

    def cached(self, ns: str, *, key: Optional[Callable] = None, tenant=None, ttl=None, tags=None):
        """Decorates a sync or async function: its result is cached in `ns` (see :meth:`Engine.cached`)."""
        return _decorator(lambda: self, ns, key, tenant, ttl, tags)

    # ---- Introspection ----
    def stats(self) -> dict:
        """Counters per namespace and in total: hits, misses, hit_ratio, coalesced, loads, evictions, load_latency ..."""
        return self._core.stats()

    def prometheus(self) -> str:
        return self._core.prometheus()

    def __len__(self):
        return self._core.size()

    @property
    def scope(self) -> str:
        """'process', 'task' or 'isolated'."""
        return self._core.scope

    @property
    def warm(self) -> bool:
        """A task that started with entries already cached (process scope)."""
        return self._core.warm

    @property
    def entries_at_start(self) -> int:
        return self._core.entries_at_start

    @property
    def namespaces(self):
        return self._core.namespaces()


def _default_key(fn):
    """Key from the call's arguments bound to the signature (defaults applied):
    f(1), f(x=1) and f(1, y=<default>) share one entry."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    sig = inspect.signature(fn)

    def key(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        return f"{name}:{tuple(bound.arguments.items())!r}"

    return key


def _decorator(get_cache, ns, key, tenant, ttl, tags):
    def decorate(fn):
        make_key = key or _default_key(fn)

        def tenant_of(args, kwargs):
            return tenant(*args, **kwargs) if callable(tenant) else tenant

        def tags_of(args, kwargs):
            return tuple(tags(*args, **kwargs)) if callable(tags) else tuple(tags or ())

        wrap = ttl is not None or tags is not None
        if _is_async(fn):

            @functools.wraps(fn)
            async def wrapper(*args, **kwargs):
                if wrap:

                    async def loader():
                        return Loaded(await fn(*args, **kwargs), ttl, tags_of(args, kwargs))

                else:
                    loader = functools.partial(fn, *args, **kwargs)
                return await get_cache().get_or_load(
                    ns, make_key(*args, **kwargs), loader, tenant=tenant_of(args, kwargs)
                )

        else:

            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                if wrap:

                    def loader():
                        return Loaded(fn(*args, **kwargs), ttl, tags_of(args, kwargs))

                else:
                    loader = functools.partial(fn, *args, **kwargs)
                return get_cache().get_or_load_sync(
                    ns, make_key(*args, **kwargs), loader, tenant=tenant_of(args, kwargs)
                )

        def invalidate(*args, **kwargs):
            """Drops the cached result for these arguments."""
            return get_cache().erase(ns, make_key(*args, **kwargs), tenant=tenant_of(args, kwargs))

        wrapper.invalidate = invalidate
        return wrapper

    return decorate
