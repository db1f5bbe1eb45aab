"""Virtual time: one time line shared by an engine, its limiter, its locks and
an asyncio event loop (see :mod:`callcache.testing`).

Pass the same ``VirtualClock`` to ``Engine(clock=...)``, ``RateLimiter``,
``AccountLocks`` and the flow structures; run the program on
``callcache.testing.run(main(), clock)``. Expiry, pacing, lock waits and
``asyncio.sleep`` then all read this clock, which jumps to the next timer
whenever the program has nothing else to do: a run that waits minutes in
real life finishes in a fraction of a second, with the same decisions.

Work done on real threads (a synchronous loader run on a worker thread) takes
no virtual time: while any is in flight the loop waits for it instead of
advancing the clock.
"""

import threading

from . import _native


class VirtualClock:
    """A clock that moves only when advanced (by the virtual-time loop or by hand)."""

    def __init__(self, start: float = 1.0):
        self._native = _native.VirtualClock(start)
        self._real_work = 0
        self._mu = threading.Lock()

    def now(self) -> float:
        """Seconds since the clock's epoch."""
        return self._native.now()

    def now_ns(self) -> int:
        return self._native.now_ns()

    def advance(self, seconds: float) -> int:
        """Moves time forward, running the library's timers due on the way. Returns timers run."""
        return self._native.advance(seconds)

    def advance_to(self, seconds: float) -> int:
        """Moves time to `seconds` (never backwards), to the nearest nanosecond.

        Nearest, not up: a timer set for an exact nanosecond (a rate-limit
        slot) must fire on it, not one nanosecond late.
        """
        return self._native.advance_to_ns(round(seconds * 1e9))

    def next_deadline(self):
        """When the library's next timer is due (seconds), or None."""
        return self._native.next_deadline()

    # Real-thread work in flight (the virtual loop does not advance meanwhile).
    @property
    def real_work(self) -> int:
        return self._real_work

    def begin_real_work(self):
        with self._mu:
            self._real_work += 1

    def end_real_work(self):
        with self._mu:
            self._real_work -= 1


def native_clock(clock):
    """The extension's clock object for `clock` (None = real time)."""
    if clock is None:
        return None
    if not isinstance(clock, VirtualClock):
        raise TypeError(f"clock: expected a callcache.VirtualClock or None, got {type(clock).__name__}")
    return clock._native


class RealWork:
    """Marks real-thread work for a virtual clock (no-op for real time)."""

    __slots__ = ("_clock",)

    def __init__(self, clock):
        self._clock = clock

    def begin(self):
        if self._clock is not None:
            self._clock.begin_real_work()

    def end(self):
        if self._clock is not None:
            self._clock.end_real_work()
