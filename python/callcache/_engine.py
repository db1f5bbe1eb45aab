"""The engine: configuration (the library's readers), scopes, and the toolkit
built from the same configuration. The caches and the read path are in
_cache.py."""

import contextvars
import datetime
import os
import threading
from typing import Callable, Optional

import yaml

from . import _native, errors
from . import codecs as _codecs
from ._cache import Cache, _decorator
from ._clock import VirtualClock, native_clock

__all__ = ["Engine"]

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
