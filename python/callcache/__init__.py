"""callcache for Python: the callcache engine, toolkit and tiers for asyncio bots.

    import callcache

    engine = callcache.Engine.from_config("callcache.yaml")     # or Engine(namespaces={...})
    cache = engine.cache

    async def channel(name):
        return await cache.get_or_load("entity", f"@{name}", lambda: api.resolve(name))

One loader call per key for any number of coroutines and threads (the
library's single flight), the event loop never blocked, values kept as Python
objects in memory and encoded (pickle, json, bytes) only for the second tier
(SQLite or Redis). The toolkit — RateLimiter, AccountLocks, BoundedQueue,
SeenSet, StateStore — is the library's own, with ``await`` forms. The
Telethon adapter is :mod:`callcache.telethon`; offline test helpers (virtual
time, a fake Telegram network layer) are in :mod:`callcache.testing`.
"""

import atexit as _atexit

from . import _native, errors
from ._cache import Cache, Loaded, tenant_from_secret, tenant_hex
from ._engine import Engine
from ._clock import VirtualClock
from .errors import (
    Busy,
    CallcacheError,
    CodecError,
    ConfigError,
    DeadlineExceeded,
    LoadError,
    QueueClosed,
    ResourceExhausted,
    ShutdownError,
    Timeout,
    TooLarge,
)
from .toolkit import AccountLocks, BoundedQueue, LockGuard, RateLimiter, SeenSet, StateStore

_native._set_exception_classes(dict(errors.BY_CODE))
# Release every cached object while the interpreter is still whole; the
# library's threads never touch Python afterwards.
_atexit.register(_native._finalize)

__version__ = "0.1.0"

__all__ = [
    "Engine",
    "Cache",
    "Loaded",
    "VirtualClock",
    "tenant_from_secret",
    "tenant_hex",
    "RateLimiter",
    "AccountLocks",
    "LockGuard",
    "BoundedQueue",
    "SeenSet",
    "StateStore",
    "errors",
    "CallcacheError",
    "ConfigError",
    "CodecError",
    "TooLarge",
    "DeadlineExceeded",
    "Timeout",
    "Busy",
    "LoadError",
    "ShutdownError",
    "QueueClosed",
    "ResourceExhausted",
]
