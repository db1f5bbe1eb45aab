"""Exceptions raised by callcache.

Every error of the native core arrives as a subclass of :class:`CallcacheError`
chosen by its status code (``err.code``), and also derives from the built-in
exception a Python caller would expect (``ValueError`` for bad arguments,
``TimeoutError`` for timeouts, ``LookupError`` for unknown names ...).

A loader's own exception is not wrapped: every caller waiting for that load
(coroutines and threads) raises the very same exception object.
"""


class CallcacheError(Exception):
    """Base class of callcache's errors."""

    code = "internal"


class InvalidArgument(CallcacheError, ValueError):
    """A value passed to callcache is malformed (empty key, bad option)."""

    code = "invalid_argument"


class ConfigError(InvalidArgument):
    """The configuration is invalid; the message names the key path and the value."""


class NotFound(CallcacheError, LookupError):
    """A named thing (namespace, file) does not exist."""

    code = "not_found"


class AlreadyExists(CallcacheError):
    code = "already_exists"


class TooLarge(CallcacheError, ValueError):
    """A value exceeds the namespace's byte budget; it was not stored."""

    code = "too_large"


class ResourceExhausted(CallcacheError):
    """A bounded structure is full and refuses (queue with policy reject, state store)."""

    code = "resource_exhausted"


class DeadlineExceeded(CallcacheError, TimeoutError):
    """Waiting would exceed the caller's deadline; nothing was reserved."""

    code = "deadline_exceeded"


class Timeout(CallcacheError, TimeoutError):
    """An operation ran out of its time budget (load_timeout, a lock wait)."""

    code = "timeout"


class Cancelled(CallcacheError):
    """The operation was cancelled (a loader task cancelled by its event loop)."""

    code = "cancelled"


class ShutdownError(CallcacheError):
    """The object was shut down (a task scope that ended, a closed queue)."""

    code = "shutdown"


class QueueClosed(ShutdownError):
    """get() on a closed, empty queue; put() on a closed queue."""


class Unavailable(CallcacheError):
    """A dependency (Redis) cannot be reached right now."""

    code = "unavailable"


class Busy(CallcacheError):
    """An account is held by another task (strict account locks)."""

    code = "busy"


class LoadError(CallcacheError):
    """A load failed and its original exception is no longer available."""

    code = "load_failed"


class IoError(CallcacheError, OSError):
    code = "io_error"


class Corruption(CallcacheError):
    code = "corruption"


class InternalError(CallcacheError):
    code = "internal"


class CodecError(CallcacheError, TypeError):
    """A value cannot be encoded for the second tier (SQLite, Redis) with its namespace's codec."""

    code = "codec"


BY_CODE = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        TooLarge,
        ResourceExhausted,
        DeadlineExceeded,
        Timeout,
        Cancelled,
        ShutdownError,
        Unavailable,
        Busy,
        LoadError,
        IoError,
        Corruption,
        InternalError,
    )
}
