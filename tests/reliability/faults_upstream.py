"""Fault matrix cells: the upstream misbehaves (tests/reliability/fault_matrix.py)."""
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
from matrix import (CONNECT_TIMEOUT, IDLE_TIMEOUT, MARGIN, READ_TIMEOUT, REDIS_TIMEOUT,
                    SHUTDOWN_TIMEOUT, UPSTREAM_TIMEOUT, Cell, Failed, check, gateway_config)


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
            check(not gaps or min(gaps) >= 0.9,
                  "upstream called %.2fs after a 429 asking for 1 s" % (min(gaps) if gaps else 0))
            with_ra = sum(1 for r in rs if isinstance(r.json().get("parameters", {}).get("retry_after"), int))
            up.clear_faults()
            time.sleep(1.2)
            ok = m.gw.post("/bot%s/sendMessage" % TOKEN_A, json.dumps({"chat_id": chat, "text": "after"}))
            check(ok.status == 200, "the chat stayed blocked after the storm: %r" % ok)
            check(any(p.get("text") == "after" for _, p in up.times("sendMessage")),
                  "the acknowledged send never reached the upstream")
            return ("10 concurrent sends to one chat: all 429 JSON (%d with retry_after) within %.2fs; %d upstream "
                    "calls in %.1fs, never sooner than 1 s apart (%s); after the storm: 200" % (
                        with_ra, worst, len(calls), time.monotonic() - t0 - 1.2,
                        "min gap %.2fs" % min(gaps) if gaps else "no second call"))
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
