"""The client toolkit's containers from asyncio: bounded queue, seen set and
state store (re-exported by :mod:`callcache.toolkit`). Each wraps the
library's own implementation; the ``await`` forms never park a thread or
block the event loop.
"""

import asyncio
import collections
import json
import threading
from typing import Optional

from . import _native, errors
from ._clock import native_clock

__all__ = ["BoundedQueue", "SeenSet", "StateStore"]


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
