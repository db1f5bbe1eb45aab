"""Offline helpers for testing bots that use callcache.

- :mod:`callcache.testing.virtual_time`: an asyncio event loop on a
  :class:`callcache.VirtualClock`, so pacing, expiry and timeouts that take
  minutes run in milliseconds, deterministically.
- :mod:`callcache.testing.fake_telegram`: a fake Telegram network layer for
  real Telethon clients: it answers TL objects and raises FloodWaitError when
  its per-method limits are exceeded.
"""

from .virtual_time import VirtualTimeLoop, new_event_loop, run

__all__ = ["VirtualTimeLoop", "new_event_loop", "run"]
