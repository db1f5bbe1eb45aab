"""Fault matrix cells: the SQLite and Redis tiers fail (tests/reliability/fault_matrix.py)."""
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


def sqlite_cells(m):
    can_mount = try_mount_tmpfs(os.path.join(m.work, "probe"), "64k")
    m.disk_method = "tmpfs" if can_mount else "RLIMIT_FSIZE"

    def locked_by_another_process():
        # A read-only remount is refused while the gateway holds the file open
        # for writing (EBUSY), so the runtime fault is another process holding
        # the write lock (a backup, a manual query): every commit times out.
        import sqlite3
        path = os.path.join(m.work, "locked.sqlite3")
        # getChat fresh for 5 minutes here: the answers checked after the
        # restart must not expire first, however slow the machine.
        cfg = {"storage": {"l2": "sqlite", "path": path},
               "telegram": {"reads": {"getChat": {"ttl": "5m"}}}}
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
            # /readyz probes the tier: the first success after the release ends
            # the outage at once (rather than waiting out a backoff that grew
            # while the lock was held, however slow the machine).
            def ready():
                return json.loads(gw.admin("/readyz").body).get("l2") == "ok"
            check(wait_for(ready, 10, 0.2), "readyz never said l2 ok after the lock was released")
            # The tier takes answers again: one read after the release reaches
            # the file (committed, seen by another connection) within seconds.
            # (A read right at the recovery may still be left out, as while
            # the tier failed: answers are a cache, nothing acknowledged.)
            tries = []

            def committed():
                after = m.chat()
                tries.append(after)
                check(m.get_chat(after, gw=gw).status == 200, "after")
                key = "getChat?chat_id=%d" % after
                for _ in range(10):
                    ro = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=2)
                    try:
                        n = ro.execute("SELECT COUNT(*) FROM entries WHERE ns = 'tg_chat' AND key = ?",
                                       (key.encode(),)).fetchone()[0]
                    finally:
                        ro.close()
                    if n:
                        return True
                    time.sleep(0.2)
                return False
            check(wait_for(committed, 10, 0), "no answer read after the release reached the file (%d tried)"
                  % len(tries))
            after = tries[-1]
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
                    "%s tier errors; after release: stored again (committed on read %d, l2_hit after a restart; "
                    "%d of 29 answers from the locked period kept), integrity ok" % (worst, errors, len(tries), kept))
        finally:
            if gw.alive():
                gw.kill()
    m.run("sqlite", "SQLite write lock held by another process (BEGIN EXCLUSIVE)",
          "requests 200 within the SQLite call timeout; L2 recovers", locked_by_another_process)

    def read_only_at_start():
        d = os.path.join(m.work, "ro-start")
        os.makedirs(d, exist_ok=True)
        path = d + "/cc.sqlite3"
        gw0 = m.start_gateway("gw-ro-start0", {"storage": {"l2": "sqlite", "path": path}})
        m.get_chat(m.chat(), gw=gw0)
        gw0.stop()
        if can_mount:
            check(try_mount_tmpfs(d + "-m", "16m"), "mount")
            shutil.copy(path, d + "-m/cc.sqlite3")
            subprocess.run(["mount", "-o", "remount,ro", d + "-m"], check=True)
            path = d + "-m/cc.sqlite3"
        try:
            gw = Gateway(m.args.serve, m.work, gateway_config(m.up.port, {
                "storage": {"l2": "sqlite", "path": path}}), name="gw-ro-start",
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
            check("storage.path" in msg, "the message does not name the key: %r" % msg)
            return "refuses to start: exit 2, %r" % msg[:110]
        finally:
            if can_mount:
                umount(d + "-m")
            else:
                os.chmod(d, 0o755)
    m.run("sqlite", "SQLite file read-only at start",
          "a clear error naming storage.path, or L1-only", read_only_at_start)

    def disk_full():
        d = os.path.join(m.work, "full")
        preexec = None
        if can_mount:
            check(try_mount_tmpfs(d, "512k"), "mount")
        else:
            os.makedirs(d, exist_ok=True)
            preexec = fsize_limit(256 * 1024)
        try:
            # getChat fresh for 5 minutes: the answer checked after the restart
            # must not expire first, however slow the machine.
            long_ttl = {"telegram": {"reads": {"getChat": {"ttl": "5m"}}}}
            gw = m.start_gateway("gw-full", dict(long_ttl, storage={"l2": "sqlite",
                                                                    "path": d + "/cc.sqlite3"}),
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
                    gw2 = m.start_gateway("gw-full2", dict(long_ttl, storage={"l2": "sqlite",
                                                                              "path": d + "/cc.sqlite3"}))
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
        gw0 = m.start_gateway("gw-pages0", {"storage": {"l2": "sqlite", "path": path}})
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
        "storage": {"l2": "sqlite", "path": path}}), name=name)
    try:
        gw.start(expect_fail=True)
    except RuntimeError:
        pass
    if gw.port is None:
        rc = gw.proc.wait(10)
        lines = gw.output().strip().splitlines()
        msg = lines[-1] if lines else ""
        check(rc == 2, "exit status %s (a crash is a signal: negative)" % rc)
        check(path in msg or "storage.path" in msg, "the message does not name the file: %r" % msg)
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
    cfg = {"storage": {"l2": "redis", "redis_url": redis.url, "timeout": "100ms",
                       "connect_timeout": "100ms"},
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
        cfg = {"storage": {"l2": "redis", "redis_url": redis.url, "timeout": "100ms",
                           "connect_timeout": "100ms"},
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
