"""The fault matrix's common parts: the gateway's configured timeouts, the
configuration every cell starts from, a cell's record, and Matrix, which
runs the cells against one fake upstream (tests/reliability/fault_matrix.py
runs them)."""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import harness
from fake_upstream import FakeUpstream, owner_tag, wait_for
from harness import TOKEN_A, TOKEN_B, Gateway, bot_api_error_shape


# The timeouts the matrix configures; "no hang" means within these plus a margin.
UPSTREAM_TIMEOUT = 2.0
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
IDLE_TIMEOUT = 4.0
SHUTDOWN_TIMEOUT = 3.0
MARGIN = 1.0
REDIS_TIMEOUT = 0.1


def gateway_config(upstream_port, extra=None):
    base = {
        "server": {"read_timeout": "%gs" % READ_TIMEOUT, "idle_timeout": "%gs" % IDLE_TIMEOUT,
                   "write_timeout": "2s", "shutdown_timeout": "%gs" % SHUTDOWN_TIMEOUT,
                   "max_connections": 10050},
        "gateway": {"upstream": "http://127.0.0.1:%d" % upstream_port,
                    "connect_timeout": "%gs" % CONNECT_TIMEOUT,
                    "upstream_timeout": "%gs" % UPSTREAM_TIMEOUT,
                    "max_response_bytes": "1MiB",
                    "pacing": {"max_wait": "2s", "retry_429": 2, "retry_max_delay": "1s"}},
        # getChat: fresh for 1 s, then stale for up to 60 s (stale_ttl of tg_chat);
        # getFile: fresh for 1 s, never stale (tg_file has no stale_ttl).
        "telegram": {"reads": {"getChat": {"ttl": "1s"}, "getFile": {"ttl": "1s"}},
                     "namespaces": {"tg_chat": {"stale_ttl": "60s"}}},
    }
    return harness.merge(base, extra)


class Cell:
    def __init__(self, group, name, expected):
        self.group = group
        self.name = name
        self.expected = expected
        self.observed = ""
        self.ok = None
        self.seconds = 0.0


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


class Matrix:
    def __init__(self, args):
        self.args = args
        self.cells = []
        self.work = tempfile.mkdtemp(prefix="cc-faults-")
        self.up = FakeUpstream()
        self.gw = None
        self.disk_method = None

    def close(self):
        if self.gw and self.gw.alive():
            self.gw.kill()
        self.up.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def start_gateway(self, name, extra=None, **kw):
        gw = Gateway(self.args.serve, self.work, gateway_config(self.up.port, extra), name=name, **kw)
        return gw.start()

    def run(self, group, name, expected, fn, gw=None):
        if self.args.only and not re.search(self.args.only, "%s %s" % (group, name)):
            return
        cell = Cell(group, name, expected)
        started = time.monotonic()
        self.up.clear_faults()
        try:
            cell.observed = fn() or ""
            cell.ok = True
        except Failed as e:
            cell.observed = "FAILED: %s" % e
            cell.ok = False
        except Exception as e:  # noqa: BLE001 — a transport error or a hang is a failure too
            cell.observed = "FAILED: %s: %s" % (type(e).__name__, e)
            cell.ok = False
            traceback.print_exc()
        self.up.clear_faults()
        target = gw or self.gw
        if target is not None and not target.alive():
            cell.ok = False
            cell.observed += " | the gateway died (exit %s)" % target.proc.returncode
        cell.seconds = time.monotonic() - started
        self.cells.append(cell)
        print("%s %-8s %-48s %s (%.1fs)" % ("PASS" if cell.ok else "FAIL", group, name,
                                            cell.observed, cell.seconds), flush=True)

    # ---- helpers ----
    def chat(self):
        """A chat id no cell used before (each cell reads its own keys)."""
        self._chat = getattr(self, "_chat", -1001000) - 1
        return self._chat

    def get_chat(self, chat, token=TOKEN_A, timeout=10, gw=None):
        return (gw or self.gw).get("/bot%s/getChat?chat_id=%d" % (token, chat), timeout=timeout)

    def warm_then_expire(self, chat, gw=None):
        """Caches getChat(chat), then waits until it is past its 1 s ttl (stale, not expired)."""
        r = self.get_chat(chat, gw=gw)
        check(r.status == 200 and r.outcome == "miss", "warm-up getChat: %r" % r)
        time.sleep(1.2)
        return r

    def expect_error(self, r, status, limit):
        check(bot_api_error_shape(r), "not a Bot API JSON error: %r" % r)
        check(r.status == status, "status %d, expected %d: %r" % (r.status, status, r))
        check(r.seconds <= limit, "answered after %.2fs (limit %.1fs)" % (r.seconds, limit))
        return "%d %s in %.2fs" % (r.status, r.json()["description"][:60], r.seconds)

    # Timing checks are about the configured timeouts, never about speed: a
    # stale answer must not wait for the upstream (which takes at least
    # upstream_timeout to fail), an error must come within the timeout that
    # caused it.
    def expect_stale(self, r, chat, limit=UPSTREAM_TIMEOUT):
        check(r.status == 200 and r.outcome == "stale", "expected a stale 200, got %r" % r)
        check(r.json()["result"]["id"] == chat, "stale answer of another chat: %r" % r)
        check(r.seconds <= limit, "stale answer took %.2fs" % r.seconds)
        return "200 stale in %.3fs" % r.seconds


# ============================================================ upstream faults
