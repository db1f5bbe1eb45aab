"""An asyncio event loop on a :class:`callcache.VirtualClock`.

``loop.time()`` reads the virtual clock; when the loop has nothing ready to
run and no real I/O is waiting, it moves the clock to its next timer (an
``asyncio.sleep``, a ``call_later``) or the library's next timer (expiry
sweeps, load timeouts, lock grants) — whichever comes first — instead of
sleeping. Real I/O and cross-thread wake-ups still work; while real-thread
work is marked in flight (``clock.real_work``) the loop waits for it rather
than moving time.

    clock = callcache.VirtualClock()
    engine = callcache.Engine(namespaces={...}, clock=clock)
    callcache.testing.run(main(engine), clock)
"""

import asyncio
import selectors

from .._clock import VirtualClock

__all__ = ["VirtualTimeLoop", "new_event_loop", "run"]

# How long the loop waits for real-thread work before looking again.
_REAL_WORK_POLL = 0.05


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock):
        super().__init__(selectors.DefaultSelector())
        if not isinstance(clock, VirtualClock):
            raise TypeError("VirtualTimeLoop needs a callcache.VirtualClock")
        self._vclock = clock
        real_select = self._selector.select

        def select(timeout=None):
            clock.advance(0)  # the library's timers due now (lock grants, ...)
            events = real_select(0)
            if events or timeout == 0 or self._ready:
                return events
            if clock.real_work > 0:  # a worker thread will wake us; no virtual time passes
                return real_select(_REAL_WORK_POLL)
            targets = []
            if timeout is not None:
                targets.append(clock.now() + timeout)
            library_next = clock.next_deadline()
            if library_next is not None:
                targets.append(library_next)
            if not targets:  # nothing scheduled anywhere: only another thread can wake us
                return real_select(None)
            clock.advance_to(min(targets))
            return real_select(0)

        self._selector.select = select

    def time(self) -> float:
        return self._vclock.now()

    @property
    def clock(self) -> VirtualClock:
        return self._vclock


def new_event_loop(clock: VirtualClock) -> VirtualTimeLoop:
    return VirtualTimeLoop(clock)


def run(coro, clock: VirtualClock):
    """asyncio.run() on virtual time: runs `coro` to completion and closes the loop."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(clock)) as runner:
        return runner.run(coro)
