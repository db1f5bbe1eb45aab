"""The engine, its caches, and the read path as Python sees it."""

import asyncio
import contextvars
import datetime
import functools
import inspect
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import yaml

from . import _native, errors
from . import codecs as _codecs
from ._clock import RealWork, VirtualClock, native_clock

__all__ = ["Engine", "Cache", "Loaded", "tenant_from_secret", "tenant_hex"]


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
    pay it for every waiter.
    """
    loop = getattr(_local, "loop", None)
    if loop is None or loop._thread_id != threading.get_ident():
        loop = _local.loop = asyncio.get_running_loop()
    return loop


def _start_load(loader, work, completion):
    """Called by the engine, on the thread of the caller that leads a load
    (or of a reader that starts a background refresh): runs the loader as a
    task of the event loop running on this thread."""
    loop = _running_loop()
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


# ---- Configuration --------------------------------------------------------------


def _plain(value, path):
    """A configuration dict as YAML-ready plain data (timedelta -> '1.5s')."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise errors.ConfigError(f"{path or '<root>'}: keys must be strings, got {k!r}")
            out[k] = _plain(v, f"{path}.{k}" if path else k)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, datetime.timedelta):
        return f"{value.total_seconds()}s"
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise errors.ConfigError(f"{path}: expected a string, number, bool, list or mapping, got {type(value).__name__}")


def _config_from_dict(doc, source="<dict>"):
    text = yaml.safe_dump(_plain(doc, ""), sort_keys=False)
    try:
        return _native.Config.from_text(text, source)
    except errors.CallcacheError as e:
        raise errors.ConfigError(str(e)) from None


def _load_config(path_or_dict):
    if isinstance(path_or_dict, dict):
        return _config_from_dict(path_or_dict)
    if isinstance(path_or_dict, (str, os.PathLike)):
        try:
            return _native.Config.from_file(os.fspath(path_or_dict))
        except errors.CallcacheError as e:
            raise errors.ConfigError(str(e)) from None
    raise TypeError(f"expected a path or a dict, got {type(path_or_dict).__name__}")


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
        """Drops every in-memory entry carrying `tag`. Returns entries dropped.

        Tags live in memory only: a namespace whose values carry tags should
        not also keep them in a second tier (``python.namespaces.<ns>.l2: false``).
        """
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
        r = self._core.load(ns, tenant, key, loader, self._work, timeout)
        if r.__class__ is _Waiter:  # a miss: wait for the flight on this loop
            loop = _running_loop()
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


# ---- Engine ------------------------------------------------------------------------------

_current_task = contextvars.ContextVar("callcache_task_cache", default=None)


class _TaskScope:
    """``with engine.task(name) as cache`` / ``async with``: one task's cache."""

    def __init__(self, engine, name):
        self._engine = engine
        self._name = name
        self._core = None
        self._token = None

    def __enter__(self) -> Cache:
        self._core = self._engine._rt.begin_task(self._name)
        cache = Cache(self._core, self._engine)
        self._token = _current_task.set(cache)
        return cache

    def __exit__(self, *exc):
        _current_task.reset(self._token)
        self._core.end()  # task scope: its engine is dropped; process scope: the hold ends
        return False

    async def __aenter__(self) -> Cache:
        return self.__enter__()

    async def __aexit__(self, *exc):
        return self.__exit__(*exc)


class Engine:
    """A configured callcache: namespaces and policies, scopes, the second tier,
    and (from the same configuration) a rate limiter and account locks.

    Build it from the YAML the C++ library reads, or from the same sections
    as a dict::

        engine = callcache.Engine.from_config("callcache.yaml")
        engine = callcache.Engine(namespaces={"analytics": {"ttl": "5m", "negative_ttl": "30s"}})

    Scopes (``cache.scope``; the Python default is ``process``):
    ``engine.cache`` is the process-wide cache; ``with engine.task(name) as
    cache`` gives a task its cache (in task scope a fresh one, dropped when
    the task ends; in process scope the shared one, and ``cache.warm`` says
    whether it started with entries); ``engine.isolated()`` a private one.

    ``clock``: a :class:`VirtualClock` for virtual time (tests, simulations).
    ``codecs``: per-namespace codec overrides for the second tier
    (see :mod:`callcache.codecs`).
    """

    def __init__(
        self,
        namespaces: Optional[dict] = None,
        *,
        storage: Optional[dict] = None,
        rate_limits: Optional[dict] = None,
        account_locks: Optional[dict] = None,
        scope: Optional[str] = None,
        tenant_key: Optional[str] = None,
        python: Optional[dict] = None,
        config: Optional[dict] = None,
        codecs: Optional[dict] = None,
        clock: Optional[VirtualClock] = None,
    ):
        doc = dict(config or {})
        for name, section in (
            ("namespaces", namespaces),
            ("storage", storage),
            ("rate_limits", rate_limits),
            ("account_locks", account_locks),
            ("tenant_key", tenant_key),
            ("python", python),
        ):
            if section is not None:
                doc[name] = section
        if scope is not None:
            doc["cache"] = {**doc.get("cache", {}), "scope": scope}
        self._setup(_config_from_dict(doc), codecs, clock)

    @classmethod
    def from_config(cls, path_or_dict, *, codecs: Optional[dict] = None, clock: Optional[VirtualClock] = None):
        """An engine from a YAML file (path) or the same document as a dict.

        Raises ConfigError naming the key path and the value.
        """
        self = cls.__new__(cls)
        self._setup(_load_config(path_or_dict), codecs, clock)
        return self

    def _setup(self, config, codecs, clock):
        self._config = config
        self.clock = clock
        codecs = dict(codecs or {})
        unknown = set(codecs) - set(config.namespaces)
        if unknown:
            raise errors.ConfigError(f"codecs: no namespace {sorted(unknown)[0]!r}")
        native_codecs = {}
        for ns in config.namespaces:
            if config.uses_l2(ns):
                c = _codecs.resolve(codecs.get(ns, config.codec_of(ns)))
                native_codecs[ns] = (c.name, c.dumps, c.loads)
        self._rt = _native.Runtime(config, native_codecs, native_clock(clock))
        self._process = None
        self._limiter = None
        self._locks = None
        self._lock = threading.Lock()

    # ---- Scopes ----
    @property
    def cache(self) -> Cache:
        """The cache of the current task (inside ``engine.task(...)``), else the process cache."""
        current = _current_task.get()
        if current is not None and current._engine is self:
            return current
        if self._process is None:
            core = self._rt.process_cache()
            if core is None:
                raise errors.ShutdownError(
                    "this engine is in task scope (cache.scope: task): use `with engine.task(name) as cache`"
                )
            self._process = Cache(core, self)
        return self._process

    def task(self, name: str = "task") -> _TaskScope:
        """A task's cache as a context manager (``with`` or ``async with``)."""
        return _TaskScope(self, name)

    def isolated(self) -> Cache:
        """A private cache with this engine's namespaces (tests, one-off tools)."""
        return Cache(self._rt.isolated(), self)

    @property
    def scope(self) -> str:
        return self._rt.scope

    @property
    def namespaces(self):
        return list(self._config.namespaces)

    def policy(self, ns: str) -> dict:
        """The namespace's policy (seconds for durations)."""
        return self._config.policy(ns)

    # ---- The current cache, for short code ----
    def get(self, ns, key, *, tenant=None):
        return self.cache.get(ns, key, tenant=tenant)

    def put(self, ns, key, value, *, tenant=None, ttl=None, tags=None):
        return self.cache.put(ns, key, value, tenant=tenant, ttl=ttl, tags=tags)

    def erase(self, ns, key, *, tenant=None):
        return self.cache.erase(ns, key, tenant=tenant)

    async def get_or_load(self, ns, key, loader, *, tenant=None, timeout=None):
        return await self.cache.get_or_load(ns, key, loader, tenant=tenant, timeout=timeout)

    def get_or_load_sync(self, ns, key, loader, *, tenant=None, timeout=None):
        return self.cache.get_or_load_sync(ns, key, loader, tenant=tenant, timeout=timeout)

    def cached(self, ns: str, *, key: Optional[Callable] = None, tenant=None, ttl=None, tags=None):
        """Caches a sync or async function's results in `ns`, with single flight::

            @engine.cached("analytics", key=lambda account_id: f"acct:{account_id}",
                           tags=lambda account_id: [f"acct:{account_id}"])
            async def analytics(account_id): ...

            await analytics(7)                  # loads once, then hits
            engine.cache.invalidate_tag("acct:7")
            analytics.invalidate(7)             # or drop one result

        ``key``/``tenant``/``tags`` are values or functions of the call's
        arguments; ``ttl`` (seconds) overrides the namespace's. The cache used
        is the engine's current one when the function is called.
        """
        return _decorator(lambda: self.cache, ns, key, tenant, ttl, tags)

    # ---- Tenants ----
    def tenant_from_secret(self, secret) -> int:
        """The tenant id of a secret under this configuration's ``tenant_key``."""
        return self._rt.tenant_id(secret)

    # ---- Toolkit from the same configuration ----
    @property
    def limiter(self):
        """The rate limiter of the ``rate_limits`` section (None when absent).

        In Redis when ``storage.l2`` is redis (``python.distributed``)."""
        if not self._config.has_rate_limits:
            return None
        with self._lock:
            if self._limiter is None:
                from .toolkit import RateLimiter

                self._limiter = RateLimiter._from_native_config(self._config, self.clock)
            return self._limiter

    @property
    def locks(self):
        """The account locks of the ``account_locks`` section (strict, no wait, when absent)."""
        with self._lock:
            if self._locks is None:
                from .toolkit import AccountLocks

                self._locks = AccountLocks._from_native_config(self._config, self.clock)
            return self._locks

    # ---- Introspection ----
    def stats(self) -> dict:
        """The current cache's counters (see :meth:`Cache.stats`), plus ``l2`` (the tier's status)."""
        s = self.cache.stats()
        s["l2"] = self._rt.l2_status()
        return s

    def prometheus(self) -> str:
        """Prometheus text: the cache's counters, and the limiter's and locks' when in use."""
        parts = [self.cache.prometheus()]
        if self._limiter is not None:
            parts.append(self._limiter.prometheus())
        if self._locks is not None:
            parts.append(self._locks.prometheus())
        return "".join(parts)

    def close(self):
        """Flushes the second tier and shuts the scopes down (later reads miss). Idempotent."""
        self._rt.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
