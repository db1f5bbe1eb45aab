#!/usr/bin/python3
"""The fault matrix: `callcache serve` against an upstream, tiers and clients
that misbehave on command, one cell per fault, over real sockets.

For every cell the gateway must not crash, must not hang past its configured
timeouts, must serve a stale answer where the namespace allows it and a
Bot API-shaped JSON error otherwise, and must not lose anything it
acknowledged. Each cell records what it observed; the run prints the table
and writes it (Markdown) to --out, and with --doc into the generated section
of docs/reliability.md.

  fault_matrix.py --serve build/debug/src/gateway/callcache_serve_dev \\
      [--out build/debug/reliability/fault_matrix.md] [--doc docs/reliability.md] [--only REGEX]

Exits 1 if any cell failed. Run by ctest as reliability_fault_matrix_test.
"""
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

def upstream_cells(m):
    up = m.up

    def slow():
        up.fault("getChat", "delay", seconds=0.5)
        r = m.get_chat(m.chat())
        check(r.status == 200 and r.outcome == "miss", "slow answer: %r" % r)
        check(0.45 <= r.seconds <= UPSTREAM_TIMEOUT, "took %.2fs" % r.seconds)
        return "200 miss after %.2fs" % r.seconds
    m.run("upstream", "slow answer (0.5 s, under upstream_timeout)", "200, relayed", slow)

    def slow_past_timeout():
        up.fault("getChat", "delay", seconds=UPSTREAM_TIMEOUT + 3)
        r = m.get_chat(m.chat())
        return m.expect_error(r, 502, UPSTREAM_TIMEOUT + MARGIN)
    m.run("upstream", "answer slower than upstream_timeout, no stale entry",
          "502 JSON within upstream_timeout", slow_past_timeout)

    def stall_with_stale():
        chat = m.chat()
        m.warm_then_expire(chat)
        up.fault("getChat", "stall")
        out = m.expect_stale(m.get_chat(chat), chat)
        r2 = m.get_chat(chat)  # the refresh is still stalled: stale again
        m.expect_stale(r2, chat)
        return out + ", again while the refresh stalls"
    m.run("upstream", "upstream stalls, stale entry (getChat, stale_ttl 60 s)",
          "stale served at once", stall_with_stale)

    def spikes():
        up.fault("getChat", "spike", every=5, seconds=1.5)
        chats = [m.chat() for _ in range(40)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            rs = list(pool.map(lambda c: m.get_chat(c), chats))
        bad = [r for r in rs if r.status != 200 or r.json()["result"]["id"] != chats[rs.index(r)]]
        check(not bad, "%d bad answers: %r" % (len(bad), bad[:2]))
        slow = sorted(r.seconds for r in rs)
        check(slow[-1] <= UPSTREAM_TIMEOUT + MARGIN, "slowest %.2fs" % slow[-1])
        return "40 misses, 8 at a time: all 200; p50 %.3fs, max %.2fs" % (slow[len(slow) // 2], slow[-1])
    m.run("upstream", "latency spikes (every 5th call +1.5 s)", "all 200, only spiked calls slow", spikes)

    def five_xx():
        up.fault("getChat", "status", status=503)
        chat = m.chat()
        r = m.get_chat(chat)
        out = m.expect_error(r, 503, UPSTREAM_TIMEOUT + MARGIN)
        up.clear_faults()
        r2 = m.get_chat(chat)
        check(r2.status == 200 and r2.outcome == "miss", "a 5xx was cached: %r" % r2)
        return out + "; not cached (next call 200 miss)"
    m.run("upstream", "5xx with a Bot API body, no stale entry", "5xx JSON relayed, not cached", five_xx)

    def five_xx_html():
        up.fault("getChat", "status", status=502, html=True)
        return m.expect_error(m.get_chat(m.chat()), 502, UPSTREAM_TIMEOUT + MARGIN)
    m.run("upstream", "5xx with an HTML body (a proxy's error page)", "502 Bot API JSON", five_xx_html)

    def five_xx_stale():
        chat = m.chat()
        m.warm_then_expire(chat)
        up.fault("getChat", "status", status=500)
        out = m.expect_stale(m.get_chat(chat), chat)
        time.sleep(0.2)  # the background refresh fails
        m.expect_stale(m.get_chat(chat), chat)
        return out + ", still stale after the failed refresh"
    m.run("upstream", "5xx, stale entry", "stale served", five_xx_stale)

    def reset_before():
        up.fault("getChat", "reset_before")
        return m.expect_error(m.get_chat(m.chat()), 502, UPSTREAM_TIMEOUT + MARGIN)
    m.run("upstream", "connection reset before the answer", "502 JSON", reset_before)

    def reset_mid():
        up.fault("getChat", "reset_mid")
        return m.expect_error(m.get_chat(m.chat()), 502, UPSTREAM_TIMEOUT + MARGIN)
    m.run("upstream", "connection reset in the middle of the body", "502 JSON", reset_mid)

    def truncated():
        up.fault("getChat", "truncate")
        return m.expect_error(m.get_chat(m.chat()), 502, UPSTREAM_TIMEOUT + MARGIN)
    m.run("upstream", "truncated body (Content-Length not reached, FIN)", "502 JSON", truncated)

    def truncated_stale():
        chat = m.chat()
        m.warm_then_expire(chat)
        up.fault("getChat", "truncate")
        out = m.expect_stale(m.get_chat(chat), chat)
        time.sleep(0.2)
        r = m.get_chat(chat)
        m.expect_stale(r, chat)
        check(r.json()["result"]["title"] == "Chat %d" % chat, "stale body changed: %r" % r)
        return out + ", the half body never stored"
    m.run("upstream", "truncated body, stale entry", "stale served, nothing half-stored", truncated_stale)

    def oversized():
        up.fault("getChat", "oversize", bytes=4 << 20)
        return m.expect_error(m.get_chat(m.chat()), 502, UPSTREAM_TIMEOUT + MARGIN)
    m.run("upstream", "oversized answer (4 MiB > max_response_bytes 1 MiB)", "502 JSON", oversized)

    def invalid_json():
        up.fault("getChat", "invalid_json", count=1, body=b'{"ok":true,"result":{"id":1,')
        chat = m.chat()
        out = m.expect_error(m.get_chat(chat), 502, UPSTREAM_TIMEOUT + MARGIN)
        r2 = m.get_chat(chat)
        check(r2.status == 200 and r2.outcome == "miss", "the invalid answer was cached: %r" % r2)
        return out + "; not cached"
    m.run("upstream", "invalid JSON with status 200, no stale entry", "502 JSON, not cached", invalid_json)

    def invalid_json_stale():
        chat = m.chat()
        m.warm_then_expire(chat)
        up.fault("getChat", "invalid_json", body=b"<html>maintenance</html>")
        out = m.expect_stale(m.get_chat(chat), chat)
        time.sleep(0.2)
        r = m.get_chat(chat)
        m.expect_stale(r, chat)
        return out + ", the HTML never stored"
    m.run("upstream", "invalid JSON with status 200, stale entry", "stale served", invalid_json_stale)

    def invalid_json_send():
        up.fault("sendMessage", "invalid_json", body=b"<html>oops</html>")
        r = m.gw.post("/bot%s/sendMessage" % TOKEN_A, json.dumps({"chat_id": 7001, "text": "x"}))
        return m.expect_error(r, 502, UPSTREAM_TIMEOUT + MARGIN)
    m.run("upstream", "invalid JSON with status 200 to a send", "502 JSON", invalid_json_send)

    def storm_429(retry_after):
        def cell():
            chat = 8000 + (7 if retry_after else 0)
            up.fault("sendMessage", "429", retry_after=retry_after)
            before = len(up.times("sendMessage"))
            t0 = time.monotonic()
            send = lambda i: m.gw.post("/bot%s/sendMessage" % TOKEN_A,
                                       json.dumps({"chat_id": chat, "text": "storm %d" % i}), timeout=15)
            with concurrent.futures.ThreadPoolExecutor(10) as pool:
                rs = list(pool.map(send, range(10)))
            calls = [t for t, p in up.times("sendMessage")[before:] if p.get("chat_id") == str(chat)]
            for r in rs:
                check(bot_api_error_shape(r) and r.status == 429, "not a 429 JSON: %r" % r)
            worst = max(r.seconds for r in rs)
            limit = 3 * 2.0 + MARGIN  # the first try and two retries, each waiting at most pacing.max_wait
            check(worst <= limit, "a send took %.2fs" % worst)
            gaps = [b - a for a, b in zip(calls, calls[1:])]
            # The back-off is retry_after (1 s), or the 1 s default when the 429 names none.
            check(not gaps or min(gaps) >= 0.9, "upstream called %.2fs after a 429 asking for 1 s" % min(gaps))
            with_ra = sum(1 for r in rs if isinstance(r.json().get("parameters", {}).get("retry_after"), int))
            up.clear_faults()
            time.sleep(1.2)
            ok = m.gw.post("/bot%s/sendMessage" % TOKEN_A, json.dumps({"chat_id": chat, "text": "after"}))
            check(ok.status == 200, "the chat stayed blocked after the storm: %r" % ok)
            check(any(p.get("text") == "after" for _, p in up.times("sendMessage")),
                  "the acknowledged send never reached the upstream")
            return ("10 concurrent sends to one chat: all 429 JSON (%d with retry_after) within %.2fs; %d upstream "
                    "calls in %.1fs, never sooner than 1 s apart (min gap %.2fs); after the storm: 200" % (
                        with_ra, worst, len(calls), time.monotonic() - t0 - 1.2, min(gaps) if gaps else 0))
        return cell
    m.run("upstream", "429 storm with retry_after=1", "429 JSON; upstream never called before the back-off",
          storm_429(1))
    m.run("upstream", "429 storm without retry_after", "429 JSON; upstream called at most once a second",
          storm_429(None))

    def down_then_back():
        chat_stale = m.chat()
        m.warm_then_expire(chat_stale)
        up.down()
        try:
            r = m.get_chat(m.chat())
            out = m.expect_error(r, 502, CONNECT_TIMEOUT + MARGIN)
            out2 = m.expect_stale(m.get_chat(chat_stale), chat_stale)
            rs = m.gw.post("/bot%s/sendMessage" % TOKEN_A, json.dumps({"chat_id": 7002, "text": "x"}))
            m.expect_error(rs, 502, CONNECT_TIMEOUT + MARGIN)
        finally:
            up.up()
        r3 = m.get_chat(m.chat())
        check(r3.status == 200 and r3.outcome == "miss", "not back after the upstream returned: %r" % r3)
        return "down: miss %s, stale key %s, send 502; back: 200" % (out, out2)
    m.run("upstream", "upstream down (connection refused), then back",
          "502 JSON / stale while down; 200 when back", down_then_back)

    def write_reset_mid():
        chat = m.chat()
        r = m.get_chat(chat)
        check(r.status == 200, "warm-up: %r" % r)
        up.fault("setChatTitle", "reset_mid", count=1)
        w = m.gw.post("/bot%s/setChatTitle" % TOKEN_A, json.dumps({"chat_id": chat, "title": "renamed"}))
        out = m.expect_error(w, 502, UPSTREAM_TIMEOUT + MARGIN)
        check(up.title(TOKEN_A, chat) == "renamed", "the upstream did not apply the write")
        r2 = m.get_chat(chat)
        check(r2.status == 200 and r2.json()["result"]["title"] == "renamed",
              "the read after a failed-looking write served the old title: %r" % r2)
        return "write: %s; the next getChat shows the new title (%s)" % (out, r2.outcome)
    m.run("upstream", "a write whose answer is cut (reset mid-body)",
          "502 JSON; reads still invalidated", write_reset_mid)

    def read_crosses_write():
        # The read reaches the upstream first and is answered (the old title)
        # after the write of the same chat was acknowledged: delivered, but
        # never stored, so once post_write_bypass is over the cache cannot
        # serve the title the write replaced.
        gw = m.start_gateway("gw-race", {"telegram": {"post_write_bypass": "1s"}})
        try:
            chat = m.chat()
            up.fault("getChat", "late", count=1, seconds=1.0)
            before = up.calls("getChat")
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                read = pool.submit(lambda: m.get_chat(chat, gw=gw))
                check(wait_for(lambda: up.calls("getChat") > before, 3), "the read never reached the upstream")
                w = gw.post("/bot%s/setChatTitle" % TOKEN_A, json.dumps({"chat_id": chat, "title": "renamed"}))
                check(w.status == 200, "write: %r" % w)
                r1 = read.result(UPSTREAM_TIMEOUT + MARGIN)
            check(r1.status == 200 and r1.json()["result"]["title"] == "Chat %d" % chat,
                  "the crossing read: %r" % r1)
            time.sleep(1.2)  # past post_write_bypass
            r2 = m.get_chat(chat, gw=gw)
            check(r2.status == 200 and r2.json()["result"]["title"] == "renamed",
                  "after the bypass window the cache served the title the write replaced: %r" % r2)
            check(gw.stop() == 0, "gateway exit status")
            return ("the crossing read delivered the old title; %.1f s later: '%s' (%s)"
                    % (1.2, r2.json()["result"]["title"], r2.outcome))
        finally:
            if gw.alive():
                gw.kill()
    m.run("upstream", "a read answered after a write of the same chat (post_write_bypass 1 s)",
          "old answer delivered, not stored: the new title after the window", read_crosses_write)

    def stall_on_shutdown():
        gw = m.start_gateway("gw-shutdown")
        up.fault("getChat", "stall")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            fut = pool.submit(lambda: gw.get("/bot%s/getChat?chat_id=1" % TOKEN_A, timeout=10))
            wait_for(lambda: up.active() > 0, 3)
            t0 = time.monotonic()
            rc = gw.stop(signal.SIGTERM, timeout=SHUTDOWN_TIMEOUT + UPSTREAM_TIMEOUT + 5)
            took = time.monotonic() - t0
            try:
                r = fut.result(5)
                client = "client got %d" % r.status
            except Exception as e:  # noqa: BLE001
                client = "client connection closed (%s)" % type(e).__name__
        check(rc == 0, "exit status %s" % rc)
        check(took <= SHUTDOWN_TIMEOUT + MARGIN, "shutdown took %.2fs" % took)
        return "exit 0 after %.2fs; %s" % (took, client)
    m.run("upstream", "SIGTERM while a request waits on a stalled upstream",
          "exit 0 within shutdown_timeout", stall_on_shutdown)


# ============================================================ tier faults

def sqlite_cells(m):
    can_mount = try_mount_tmpfs(os.path.join(m.work, "probe"), "64k")
    m.disk_method = "tmpfs" if can_mount else "RLIMIT_FSIZE"

    def locked_by_another_process():
        # A read-only remount is refused while the gateway holds the file open
        # for writing (EBUSY), so the runtime fault is another process holding
        # the write lock (a backup, a manual query): every commit times out.
        import sqlite3
        path = os.path.join(m.work, "locked.sqlite3")
        cfg = {"storage": {"l2": "sqlite", "sqlite": {"path": path}}}
        gw = m.start_gateway("gw-locked", cfg)
        try:
            check(m.get_chat(m.chat(), gw=gw).status == 200, "before")
            time.sleep(0.3)
            con = sqlite3.connect(path, timeout=2, isolation_level=None)
            con.execute("BEGIN EXCLUSIVE")
            try:
                during = [m.chat() for _ in range(30)]
                rs = [m.get_chat(c, gw=gw) for c in during]
                w = gw.post("/bot%s/setChatTitle" % TOKEN_A, json.dumps({"chat_id": during[0], "title": "x"}))
                time.sleep(0.5)
                errors = gw.stats()["gateway"].get("tier_errors")
            finally:
                con.execute("COMMIT")
                con.close()
            check(all(r.status == 200 for r in rs) and w.status == 200,
                  "requests failed while locked: %r" % [r for r in rs + [w] if r.status != 200][:2])
            worst = max(r.seconds for r in rs + [w])
            check(worst < 1.5, "a request took %.2fs (one SQLite call is bounded by 250 ms)" % worst)
            after = m.chat()
            # /readyz probes the tier: the first success after the release ends
            # the outage at once (rather than waiting out a backoff that grew
            # while the lock was held, however slow the machine).
            def ready():
                return json.loads(gw.admin("/readyz").body).get("l2") == "ok"
            check(wait_for(ready, 10, 0.2), "readyz never said l2 ok after the lock was released")
            check(m.get_chat(after, gw=gw).status == 200, "after")
            time.sleep(0.5)
            rc = gw.stop()
            check(rc == 0, "exit %s" % rc)
            gw2 = m.start_gateway("gw-locked2", cfg)
            try:
                r = m.get_chat(after, gw=gw2)
                check(r.outcome == "l2_hit", "an answer stored after the lock was released was lost: %r" % r)
                kept = sum(m.get_chat(c, gw=gw2).outcome == "l2_hit" for c in during[1:])
            finally:
                gw2.stop()
            check(gw_integrity(path) == "ok", "integrity_check")
            return ("30 reads and a write while another process held the write lock: all 200 (slowest %.3fs), "
                    "%s tier errors; after release: stored again (l2_hit after a restart; %d of 29 answers "
                    "from the locked period kept), integrity ok" % (worst, errors, kept))
        finally:
            if gw.alive():
                gw.kill()
    m.run("sqlite", "SQLite write lock held by another process (BEGIN EXCLUSIVE)",
          "requests 200 within the SQLite call timeout; L2 recovers", locked_by_another_process)

    def read_only_at_start():
        d = os.path.join(m.work, "ro-start")
        os.makedirs(d, exist_ok=True)
        path = d + "/cc.sqlite3"
        gw0 = m.start_gateway("gw-ro-start0", {"storage": {"l2": "sqlite", "sqlite": {"path": path}}})
        m.get_chat(m.chat(), gw=gw0)
        gw0.stop()
        if can_mount:
            check(try_mount_tmpfs(d + "-m", "16m"), "mount")
            shutil.copy(path, d + "-m/cc.sqlite3")
            subprocess.run(["mount", "-o", "remount,ro", d + "-m"], check=True)
            path = d + "-m/cc.sqlite3"
        try:
            gw = Gateway(m.args.serve, m.work, gateway_config(m.up.port, {
                "storage": {"l2": "sqlite", "sqlite": {"path": path}}}), name="gw-ro-start",
                preexec=None if can_mount else drop_to_nobody)
            if not can_mount:
                os.chmod(d, 0o555)
                os.chmod(path, 0o444)
            try:
                gw.start(expect_fail=True)
            except RuntimeError:
                pass
            if gw.port is not None:
                r = m.get_chat(m.chat(), gw=gw)
                check(r.status == 200, "read with a read-only L2: %r" % r)
                gw.stop()
                return "starts; reads 200 (%s)" % r.outcome
            rc = gw.proc.wait(10)
            msg = gw.output().strip().splitlines()[-1] if gw.output().strip() else ""
            check(rc == 2, "exit status %s (expected 2, a configuration error)" % rc)
            check("storage.sqlite.path" in msg, "the message does not name the key: %r" % msg)
            return "refuses to start: exit 2, %r" % msg[:110]
        finally:
            if can_mount:
                umount(d + "-m")
            else:
                os.chmod(d, 0o755)
    m.run("sqlite", "SQLite file read-only at start",
          "a clear error naming storage.sqlite.path, or L1-only", read_only_at_start)

    def disk_full():
        d = os.path.join(m.work, "full")
        preexec = None
        if can_mount:
            check(try_mount_tmpfs(d, "512k"), "mount")
        else:
            os.makedirs(d, exist_ok=True)
            preexec = fsize_limit(256 * 1024)
        try:
            gw = m.start_gateway("gw-full", {"storage": {"l2": "sqlite", "sqlite": {"path": d + "/cc.sqlite3"}}},
                                 preexec=preexec)
            try:
                if can_mount:
                    fill_disk(d)
                # Big enough answers to need new pages: chat titles of 2 KiB.
                rs = []
                for i in range(200):
                    chat = m.chat()
                    rs.append(m.get_chat(chat, gw=gw))
                check(all(r.status == 200 for r in rs), "reads failed with the disk full: %r" %
                      [r for r in rs if r.status != 200][:2])
                worst = max(r.seconds for r in rs)
                check(worst < 1.5, "a read took %.2fs" % worst)
                time.sleep(0.5)
                st = gw.stats()
                errors = st["gateway"].get("tier_errors", 0) + st["l2"]["errors"]
                check(errors > 0, "no L2 errors counted (was the disk full?)")
                ready_full = json.loads(gw.admin("/readyz").body).get("l2")
                warned = "is failing" in gw.output()
                if can_mount:
                    os.remove(os.path.join(d, "filler"))
                # /readyz probes the tier: a success ends the outage at once
                # (instead of after the backoff), so the next answer is stored.
                ready_back = json.loads(gw.admin("/readyz").body).get("l2")
                chat2 = m.chat()
                check(m.get_chat(chat2, gw=gw).status == 200, "after")
                check(wait_for(lambda: gw.stats()["l2"]["pending_writes"] == 0, 3), "queued writes never committed")
                rc = gw.stop()
                if can_mount:
                    check(rc == 0, "exit %s after space came back: %s" % (rc, [l for l in gw.output().splitlines() if "GET" not in l][-6:]))
                    gw2 = m.start_gateway("gw-full2", {"storage": {"l2": "sqlite",
                                                                  "sqlite": {"path": d + "/cc.sqlite3"}}})
                    try:
                        r = m.get_chat(chat2, gw=gw2)
                        check(r.outcome == "l2_hit", "an answer stored after space came back was lost: %r" % r)
                        integrity = gw_integrity(d + "/cc.sqlite3")
                        check(integrity == "ok", "integrity_check: %s" % integrity)
                    finally:
                        gw2.stop()
                    return ("200 reads with the disk full: all 200 (slowest %.3fs), %d L2 errors, %s, readyz l2 %s; "
                            "space back (readyz %s): stored again, l2_hit after restart, integrity ok" % (
                                worst, errors, "logged" if warned else "NOT logged", ready_full, ready_back))
                return "200 reads at the RLIMIT_FSIZE limit: all 200 (slowest %.3fs), %d tier errors; exit %s" % (
                    worst, errors, rc)
            finally:
                if gw.alive():
                    gw.kill()
        finally:
            if can_mount:
                umount(d)
    m.run("sqlite", "disk full (%s)" % ("512 KiB tmpfs" if can_mount else "RLIMIT_FSIZE 256 KiB"),
          "reads 200, errors counted, L2 recovers", disk_full)

    def corrupt_garbage():
        path = os.path.join(m.work, "garbage.sqlite3")
        with open(path, "wb") as f:
            f.write(os.urandom(64 * 1024))
        return start_on_bad_file(m, path, "gw-garbage")
    m.run("sqlite", "corrupted SQLite file at start (random bytes)",
          "a clear error naming the file, or L1-only; no crash", corrupt_garbage)

    def corrupt_pages():
        path = os.path.join(m.work, "pages.sqlite3")
        gw0 = m.start_gateway("gw-pages0", {"storage": {"l2": "sqlite", "sqlite": {"path": path}}})
        chats = [m.chat() for _ in range(100)]
        for c in chats:
            m.get_chat(c, gw=gw0)
        gw0.stop()
        size = os.path.getsize(path)
        with open(path, "r+b") as f:  # keep the header page, scribble over every b-tree page header
            for off in range(4096, size, 4096):
                f.seek(off)
                f.write(os.urandom(64))
        return start_on_bad_file(m, path, "gw-pages", chats[:20])
    m.run("sqlite", "corrupted pages in a valid SQLite file at start",
          "no crash; reads 200 or a clear error", corrupt_pages)


def start_on_bad_file(m, path, name, chats=None):
    gw = Gateway(m.args.serve, m.work, gateway_config(m.up.port, {
        "storage": {"l2": "sqlite", "sqlite": {"path": path}}}), name=name)
    try:
        gw.start(expect_fail=True)
    except RuntimeError:
        pass
    if gw.port is None:
        rc = gw.proc.wait(10)
        lines = gw.output().strip().splitlines()
        msg = lines[-1] if lines else ""
        check(rc == 2, "exit status %s (a crash is a signal: negative)" % rc)
        check(path in msg or "storage.sqlite.path" in msg, "the message does not name the file: %r" % msg)
        return "refuses to start: exit 2, %r" % msg[:120]
    try:
        rs = [m.get_chat(c, gw=gw) for c in (chats or [m.chat() for _ in range(20)])]
        check(all(r.status == 200 for r in rs), "reads failed: %r" % [r for r in rs if r.status != 200][:2])
        outcomes = sorted(set(r.outcome for r in rs))
        errors = gw.stats()["gateway"].get("tier_errors")
        rc = gw.stop()
        check(rc in (0, 1), "exit %s" % rc)
        return "starts; %d reads all 200 (%s), %s tier errors, exit %s on SIGTERM" % (
            len(rs), "/".join(outcomes), errors, rc)
    finally:
        if gw.alive():
            gw.kill()


def gw_integrity(path):
    import sqlite3
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def try_mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode == 0 and path.endswith("probe"):
        umount(path)
    return r.returncode == 0


def umount(path):
    subprocess.run(["umount", "-l", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fill_disk(d):
    try:
        with open(os.path.join(d, "filler"), "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass  # ENOSPC: full


def fsize_limit(limit):
    def preexec():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death, as with ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def drop_to_nobody():
    os.setgid(65534)
    os.setuid(65534)


def redis_cells(m):
    redis = harness.Redis(m.work).start()
    # getChat fresh for 5 minutes here: answers stay in Redis for the whole cell.
    cfg = {"storage": {"l2": "redis", "redis": {"url": redis.url, "timeout": "100ms",
                                                "connect_timeout": "100ms"}},
           "telegram": {"reads": {"getChat": {"ttl": "5m"}}}}
    gw = m.start_gateway("gw-redis", cfg)
    try:
        def killed_restarted():
            chat = m.chat()
            check(m.get_chat(chat, gw=gw).status == 200, "warm-up")
            redis.kill()
            rs = [m.get_chat(m.chat(), gw=gw) for _ in range(30)]
            hit = m.get_chat(chat, gw=gw)  # still in L1
            check(all(r.status == 200 for r in rs), "reads failed with Redis down: %r" % rs[:2])
            worst = max(r.seconds for r in rs)
            check(worst < 1.5, "a read took %.2fs with Redis down" % worst)
            ready = json.loads(gw.admin("/readyz").body)
            check(ready.get("l2") == "degraded", "readyz says %r" % ready)
            redis.start()
            # The tier is probed with a growing backoff; new answers reach Redis again.
            def stored():
                m.get_chat(m.chat(), gw=gw)
                return redis.command("DBSIZE") > 0
            check(wait_for(stored, 10, 0.2), "nothing reached Redis after it came back")
            ready2 = json.loads(gw.admin("/readyz").body)
            return ("30 reads with Redis killed: all 200 (slowest %.3fs), L1 hit %s, readyz %s; "
                    "restarted: answers stored again, readyz %s" % (worst, hit.outcome, ready["l2"], ready2["l2"]))
        m.run("redis", "Redis killed, then restarted", "reads 200 from L1/upstream; L2 resumes",
              killed_restarted, gw=gw)

        def slow_redis():
            chat = m.chat()
            check(m.get_chat(chat, gw=gw).status == 200, "warm-up")
            redis.pause()  # SIGSTOP: connections open, no answers (every command times out)
            try:
                t0 = time.monotonic()
                rs = []
                while time.monotonic() - t0 < 2.0:
                    rs.append(m.get_chat(m.chat(), gw=gw, timeout=5))
            finally:
                redis.resume()
            check(all(r.status == 200 for r in rs), "reads failed with Redis stalled: %r" % rs[:2])
            lat = sorted(r.seconds for r in rs)
            check(lat[-1] < 1.5, "a read took %.2fs (redis timeout %.1fs)" % (
                lat[-1], REDIS_TIMEOUT))
            return "%d reads during a 2 s Redis stall: all 200, p50 %.3fs, max %.3fs" % (
                len(rs), lat[len(lat) // 2], lat[-1])
        m.run("redis", "Redis slow (SIGSTOP 2 s: every command times out)",
              "reads 200, each within a few Redis timeouts", slow_redis, gw=gw)

        def write_during_stall():
            chat = m.chat()
            check(m.get_chat(chat, gw=gw).status == 200, "warm-up")
            time.sleep(0.1)
            redis.pause()
            try:
                w = gw.post("/bot%s/setChatTitle" % TOKEN_A, json.dumps({"chat_id": chat, "title": "new"}))
                check(w.status == 200, "write: %r" % w)
            finally:
                redis.resume()
            time.sleep(2.5)  # past the bypass window (post_write_bypass 3 s from the write)
            other = m.start_gateway("gw-redis-2", cfg)
            try:
                r = m.get_chat(chat, gw=other)
                check(r.status == 200, "read: %r" % r)
                title = r.json()["result"]["title"]
                check(title == "new", "another gateway served the title from before an acknowledged "
                      "write (%s, %s)" % (title, r.outcome))
                return "the write's invalidation reached Redis after the stall: the other gateway reads 'new' (%s)" % (
                    r.outcome)
            finally:
                other.stop()
        m.run("redis", "write acknowledged while Redis stalls; read from another gateway",
              "the new title, never the old one", write_during_stall, gw=gw)
    finally:
        if gw.alive():
            gw.stop()
        redis.close()

    def write_while_down_persistent():
        # Redis with an append-only file: what it held before a crash is back
        # after the restart, so an invalidation it missed must not be lost.
        redis = harness.Redis(m.work, persist=True).start()
        cfg = {"storage": {"l2": "redis", "redis": {"url": redis.url, "timeout": "100ms",
                                                    "connect_timeout": "100ms"}},
               "telegram": {"reads": {"getChat": {"ttl": "5m"}}}}
        gw = m.start_gateway("gw-redis-aof", cfg)
        other = None
        try:
            chat = m.chat()
            check(m.get_chat(chat, gw=gw).status == 200, "warm-up")
            time.sleep(0.1)
            redis.kill()
            w = gw.post("/bot%s/setChatTitle" % TOKEN_A, json.dumps({"chat_id": chat, "title": "new"}))
            check(w.status == 200, "write while Redis is down: %r" % w)
            redis.start()
            check(redis.command("DBSIZE") > 0, "Redis lost its append-only file")
            time.sleep(3.2)  # past the bypass window; the gateway's backoff lets it reach Redis again
            # Traffic after the recovery, until answers reach Redis again.
            def stored():
                m.get_chat(m.chat(), gw=gw)
                return redis.command("DBSIZE") > 1
            check(wait_for(stored, 10, 0.2), "nothing reached Redis after it came back")
            r1 = m.get_chat(chat, gw=gw)
            other = m.start_gateway("gw-redis-aof-2", cfg)
            r2 = m.get_chat(chat, gw=other)
            titles = [r.json()["result"]["title"] for r in (r1, r2)]
            check(titles == ["new", "new"], "after Redis came back with its data: the writing gateway reads %r "
                  "(%s), another gateway %r (%s)" % (titles[0], r1.outcome, titles[1], r2.outcome))
            return "both gateways read the new title (%s, %s)" % (r1.outcome, r2.outcome)
        finally:
            for g in (gw, other):
                if g is not None and g.alive():
                    g.stop()
            redis.close()
    m.run("redis", "write acknowledged while Redis is down; Redis restarts with its data (AOF)",
          "the new title, never the old one", write_while_down_persistent)


# ============================================================ client faults

def client_cells(m):
    gw = m.gw

    def slowloris():
        socks = []
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", gw.port))
            s.sendall(b"GET /bot%s/getMe HTTP/1.1\r\n" % TOKEN_A.encode())
            socks.append(s)
        t0 = time.monotonic()
        closed_at = {}
        r = None
        while time.monotonic() - t0 < READ_TIMEOUT + IDLE_TIMEOUT + 3 and len(closed_at) < len(socks):
            for i, s in enumerate(socks):
                if i in closed_at:
                    continue
                try:
                    s.sendall(b"X")  # one header byte at a time, never the end of the header
                    s.setblocking(False)
                    try:
                        if s.recv(1024) == b"":
                            closed_at[i] = time.monotonic() - t0
                    except BlockingIOError:
                        pass
                    s.setblocking(True)
                except OSError:
                    closed_at[i] = time.monotonic() - t0
            if r is None and time.monotonic() - t0 > 0.5:
                r = gw.get("/bot%s/getMe" % TOKEN_A)
            time.sleep(0.25)
        for s in socks:
            s.close()
        check(r is not None and r.status == 200 and r.seconds < READ_TIMEOUT, "a normal client was not served: %r" % r)
        check(len(closed_at) == len(socks), "%d of %d slow clients still open after %.0fs" % (
            len(socks) - len(closed_at), len(socks), READ_TIMEOUT + IDLE_TIMEOUT + 3))
        worst = max(closed_at.values())
        check(worst <= READ_TIMEOUT + MARGIN, "slow clients closed after %.1fs, read_timeout is %.0fs" % (
            worst, READ_TIMEOUT))
        return "200 slow headers: all closed by %.1fs (read_timeout %.0fs); a normal client served in %.3fs" % (
            worst, READ_TIMEOUT, r.seconds)
    m.run("client", "slowloris (200 clients, one header byte every 0.25 s)",
          "closed at read_timeout; others served", slowloris)

    def vanish_upload_streamed():
        before = len(m.up.uploads())
        s = socket.create_connection(("127.0.0.1", gw.port))
        boundary = "b0undary"
        total = 4 << 20
        s.sendall(("POST /bot%s/sendDocument?chat_id=5 HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n" % (
                       TOKEN_A, boundary, total)).encode())
        s.sendall(("--%s\r\nContent-Disposition: form-data; name=\"document\"; filename=\"a\"\r\n\r\n" %
                   boundary).encode() + b"z" * (1 << 20))
        wait_for(lambda: m.up.active() > 0, 3)
        reset(s)
        got = wait_for(lambda: len(m.up.uploads()) > before, 5)
        check(got, "the upstream never saw the upload end")
        u = m.up.uploads()[-1]
        check(not u["complete"], "the upstream received a complete upload from a vanished client")
        check(wait_for(lambda: gw.stats()["server"]["connections"] == 0, 3), "connection not released")
        r = gw.get("/bot%s/getMe" % TOKEN_A)
        check(r.status == 200, "after: %r" % r)
        return "upstream saw a truncated upload (never complete); connection released; next request 200"
    m.run("client", "client vanishes mid-upload (streamed 4 MiB multipart)",
          "upstream never sees a complete body", vanish_upload_streamed)

    def vanish_upload_buffered():
        before = m.up.calls("setChatTitle")
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(("POST /bot%s/setChatTitle HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: 1000\r\n\r\n{\"chat_id\":1," % TOKEN_A).encode())
        time.sleep(0.2)
        reset(s)
        time.sleep(0.3)
        check(m.up.calls("setChatTitle") == before, "a half-received write was forwarded")
        check(wait_for(lambda: gw.stats()["server"]["connections"] == 0, 3), "connection not released")
        return "nothing forwarded; connection released"
    m.run("client", "client vanishes mid-body (buffered JSON write)", "nothing forwarded",
          vanish_upload_buffered)

    def download_over_limit():
        n = 3 << 20
        r = gw.get("/file/bot%s/big/%d" % (TOKEN_A, n), timeout=UPSTREAM_TIMEOUT + 5)
        expect = (bytes(range(256)) * 256 * (n // 65536 + 1))[:n]
        check(r.status == 200 and r.body == expect, "download: %d, %d bytes" % (r.status, len(r.body)))
        return "200, all %d bytes (%s)" % (n, r.outcome)
    m.run("client", "download larger than max_response_bytes (3 MiB > 1 MiB)",
          "streams through whole (the limit bounds buffered answers)", download_over_limit)

    def vanish_download():
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(("GET /file/bot%s/big/%d?delay=0.01 HTTP/1.1\r\nHost: x\r\n\r\n" % (
            TOKEN_A, 64 << 20)).encode())
        got = 0
        while got < 512 * 1024:
            data = s.recv(65536)
            check(data, "the download ended early")
            got += len(data)
        reset(s)
        released = wait_for(lambda: m.up.active() == 0, UPSTREAM_TIMEOUT + 3)
        check(released, "the upstream download kept running after the client left")
        check(wait_for(lambda: gw.stats()["server"]["connections"] == 0, 3), "connection not released")
        return "the upstream transfer stopped; connection released"
    m.run("client", "client vanishes mid-download (64 MiB file, streamed)",
          "upstream transfer aborted, nothing leaks", vanish_download)

    def idle_10k():
        n = min(10000, harness.raise_fd_limit(20500) - 200)
        rss0 = gw.rss_kib()
        socks = []
        t0 = time.monotonic()
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", gw.port)))
        opened = time.monotonic() - t0
        check(wait_for(lambda: gw.stats()["server"]["connections"] >= n, 5), "not all accepted")
        rss1 = gw.rss_kib()
        r = gw.get("/bot%s/getMe" % TOKEN_A)
        check(r.status == 200 and r.seconds < 2.0, "a request beside %d idle connections: %r" % (n, r))
        extra = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(80)]
        refused = 0
        for s in extra:
            s.settimeout(3)
            try:
                data = s.recv(4096)
                if b" 503 " in data.split(b"\r\n")[0] and b'"error_code":503' in data:
                    refused += 1
            except OSError:
                pass
        check(refused >= 20, "only %d of 80 connections over max_connections got a 503 JSON" % refused)
        for s in extra:
            s.close()
        t1 = time.monotonic()
        gone = wait_for(lambda: gw.stats()["server"]["connections"] == 0, IDLE_TIMEOUT + 5, 0.2)
        closed_after = time.monotonic() - t0
        for s in socks:
            s.close()
        check(gone, "idle connections not closed by idle_timeout")
        check(closed_after <= opened + IDLE_TIMEOUT + MARGIN + 1, "closed after %.1fs" % closed_after)
        rss2 = gw.rss_kib()
        return ("%d idle: %.0f B RSS each, a request beside them in %.3fs; %d over max_connections: 503 JSON; "
                "all closed %.1fs after opening (idle_timeout %.0fs); RSS after %.1f MiB (before %.1f)" % (
                    n, (rss1 - rss0) * 1024.0 / n, r.seconds, refused, closed_after - opened, IDLE_TIMEOUT,
                    rss2 / 1024.0, rss0 / 1024.0))
    m.run("client", "10,000 idle connections (max_connections 10,050)",
          "others served; 503 beyond the cap; closed at idle_timeout", idle_10k)

    def pipelined():
        chats = [m.chat() for _ in range(50)]
        req = b"".join(b"GET /bot%s/getChat?chat_id=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (TOKEN_A.encode(), c)
                       for c in chats)
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.settimeout(10)
        s.sendall(req)
        answers = read_responses(s, len(chats))
        s.close()
        ids = [json.loads(b)["result"]["id"] for _, b in answers]
        check(ids == chats, "answers out of order or missing: %d answers" % len(ids))
        # A malformed request in the middle: the ones before it answered, then 400 and close.
        bad = (b"GET /bot%s/getMe HTTP/1.1\r\nHost: x\r\n\r\n" % TOKEN_A.encode()) * 3 + \
              b"GARBAGE\r\n\r\n" + b"GET /bot%s/getMe HTTP/1.1\r\nHost: x\r\n\r\n" % TOKEN_A.encode()
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.settimeout(5)
        s.sendall(bad)
        answers = read_responses(s, 5)
        s.close()
        statuses = [st for st, _ in answers]
        check(statuses == [200, 200, 200, 400], "statuses %r" % statuses)
        check(json.loads(answers[3][1]).get("ok") is False, "the 400 is not Bot API JSON")
        return "50 pipelined reads answered in order; 3 + garbage + 1: 200 200 200 400, then closed"
    m.run("client", "pipelined requests (50 in one write; one malformed)",
          "in order; 400 JSON then close", pipelined)


def reset(s):
    import struct
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def read_responses(s, limit):
    """Reads up to `limit` HTTP responses (Content-Length framed) until the peer closes."""
    buf = b""
    out = []
    while len(out) < limit:
        while b"\r\n\r\n" not in buf:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                return out
            buf += data
        head, _, buf = buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        m = re.search(rb"(?i)content-length: *(\d+)", head)
        n = int(m.group(1)) if m else 0
        while len(buf) < n:
            data = s.recv(65536)
            if not data:
                return out
            buf += data
        out.append((status, buf[:n]))
        buf = buf[n:]
    return out


# ============================================================ report

def render(m, total_seconds):
    passed = sum(1 for c in m.cells if c.ok)
    lines = [
        "Generated by `tests/reliability/fault_matrix.py` (ctest `reliability_fault_matrix_test`) on %s; "
        "%d of %d cells passed in %.0f s (%s). Disk full simulated with %s." % (
            time.strftime("%Y-%m-%d"), passed, len(m.cells), total_seconds, harness.machine_line(),
            m.disk_method or "n/a"),
        "",
        "| | fault | expected | observed | |",
        "|---|---|---|---|---|",
    ]
    group = None
    for i, c in enumerate(m.cells, 1):
        g = c.group if c.group != group else ""
        group = c.group
        obs = c.observed.replace("|", "\\|").replace("\n", " ")
        lines.append("| %s | %s | %s | %s | %s |" % (
            ("**%s** " % g if g else "") + str(i), c.name, c.expected, obs, "pass" if c.ok else "**FAIL**"))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", required=True)
    ap.add_argument("--out", help="write the Markdown table here")
    ap.add_argument("--doc", help="replace the fault-matrix section of this file (docs/reliability.md)")
    ap.add_argument("--only", help="run only cells whose 'group name' matches this regex")
    args = ap.parse_args()
    harness.raise_fd_limit(20500)
    m = Matrix(args)
    t0 = time.monotonic()
    try:
        m.gw = m.start_gateway("gw", {"storage": {"l2": "sqlite",
                                                  "sqlite": {"path": os.path.join(m.work, "main.sqlite3")}}})
        upstream_cells(m)
        client_cells(m)
        sqlite_cells(m)
        redis_cells(m)
        rc = m.gw.stop()
        m.cells.append(Cell("gateway", "SIGTERM after the whole matrix", "exit 0"))
        m.cells[-1].ok = rc == 0
        m.cells[-1].observed = "exit %s" % rc
    finally:
        m.close()
    text = render(m, time.monotonic() - t0)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
    failed = [c for c in m.cells if not c.ok]
    if args.doc and not args.only:
        harness.replace_section(args.doc, "fault-matrix", text)
    print("%d cells, %d failed" % (len(m.cells), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
