#!/usr/bin/python3
"""Crash consistency: `callcache serve` (SQLite tier) killed with SIGKILL at
random points under mixed read/write load, twenty times, and checked after
each restart:

1. `PRAGMA integrity_check` on the file says ok;
2. durability: every answer whose write-behind flush had completed before
   the kill (read by another SQLite connection just before it: committed
   rows) is served from L2 (`X-Callcache: l2_hit`) without an upstream call,
   unless a write that may invalidate it ended after its load began;
3. invalidation: no answer older than the last acknowledged write that
   changed it comes back (served from L2 or anywhere else): getChat shows
   the title of the last acknowledged setChatTitle (or of one still in
   flight at the kill), getChatMember the status of the last acknowledged
   ban/unban and the epoch of the last acknowledged leaveChat;
4. nothing acknowledged is lost upstream: every acknowledged write and send
   reached the upstream.

Load: 6 workers on keep-alive connections, 60% reads (getChat,
getChatMember; the upstream answers reads after 10 ms, so reads overlap
writes), 40% writes and sends (setChatTitle, banChatMember,
unbanChatMember, leaveChat, sendMessage). Each worker writes only its own
chats, so the writes to one key are sequential and "the last acknowledged
write" is well defined; every worker reads every key.

  crash_test.py --serve <callcache_serve_dev> [--cycles 20] [--seed N] [--out FILE.md] [--doc FILE]
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time

import harness
from fake_upstream import FakeUpstream, owner_tag
from harness import TOKEN_A, TOKEN_B, Gateway

TOKENS = [TOKEN_A, TOKEN_B]
WORKERS = 6
CHATS_PER_WORKER = 5   # getChat keys: 2 tokens x 30 chats
USERS = [11, 12, 13]   # getChatMember keys: 2 tokens x 30 chats x 3 users


def chat_of(worker, i):
    return -1009000000 - worker * 100 - i


ALL_CHATS = [chat_of(w, i) for w in range(WORKERS) for i in range(CHATS_PER_WORKER)]
TAG_TO_TOKEN = {owner_tag(t): t for t in TOKENS}


class Write:
    """One write or send as the load issued it."""

    def __init__(self, kind, token, chat, user=None, value=None):
        self.kind = kind
        self.token = token
        self.chat = chat
        self.user = user
        self.value = value
        self.start_wall_ms = time.time() * 1000
        self.done_wall_ms = None  # when any answer came back (None: in flight at the kill)
        self.acked = False        # {"ok":true} came back
        self.message_id = None

    def slot(self):
        """What the write sets: a later acknowledged write of the same slot supersedes it."""
        if self.kind in ("banChatMember", "unbanChatMember"):
            return (self.token, self.chat, "member", self.user)
        return (self.token, self.chat, self.kind, None)

    def affects(self, key):
        """Whether this write may change the read `key` = (method, token, chat, user)."""
        method, token, chat, user = key
        if token != self.token or chat != self.chat:
            return False
        if method == "getChat":  # the preset: leaveChat drops the chat's getChat too
            return self.kind in ("setChatTitle", "leaveChat")
        if method == "getChatMember":
            return self.kind == "leaveChat" or (self.kind in ("banChatMember", "unbanChatMember")
                                                and self.user == user)
        return False


class Load:
    def __init__(self, port, rng, cycle):
        self.port = port
        self.rng = rng
        self.cycle = cycle
        self.writes = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.reads = 0
        self.errors = 0
        self.threads = [threading.Thread(target=self.worker, args=(w, random.Random(rng.random())), daemon=True)
                        for w in range(WORKERS)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def worker(self, w, rng):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        n = 0
        while not self.stop.is_set():
            n += 1
            token = rng.choice(TOKENS)
            x = rng.random()
            try:
                if x < 0.35:
                    self.call(conn, "GET", "/bot%s/getChat?chat_id=%d" % (token, rng.choice(ALL_CHATS)))
                    self.reads += 1
                elif x < 0.6:
                    self.call(conn, "GET", "/bot%s/getChatMember?chat_id=%d&user_id=%d" % (
                        token, rng.choice(ALL_CHATS), rng.choice(USERS)))
                    self.reads += 1
                else:
                    chat = chat_of(w, rng.randrange(CHATS_PER_WORKER))
                    y = rng.random()
                    if y < 0.4:
                        wr = Write("setChatTitle", token, chat, value="t%d.%d.%d" % (self.cycle, w, n))
                        body = {"chat_id": chat, "title": wr.value}
                    elif y < 0.7:
                        kind = rng.choice(["banChatMember", "unbanChatMember"])
                        wr = Write(kind, token, chat, user=rng.choice(USERS))
                        body = {"chat_id": chat, "user_id": wr.user}
                    elif y < 0.8:
                        # The marker (ignored by the Bot API) becomes the fake's member epoch.
                        wr = Write("leaveChat", token, chat, value="e%d.%d.%d" % (self.cycle, w, n))
                        body = {"chat_id": chat, "marker": wr.value}
                    else:
                        # Sends go to the worker's own private chat: paced at 1/s per chat,
                        # so most are refused with 429 (not acknowledged, fine).
                        wr = Write("sendMessage", token, 500 + w, value="m%d.%d.%d" % (self.cycle, w, n))
                        body = {"chat_id": 500 + w, "text": wr.value}
                    with self.lock:
                        self.writes.append(wr)
                    status, answer = self.call(conn, "POST", "/bot%s/%s" % (token, wr.kind), json.dumps(body))
                    wr.done_wall_ms = time.time() * 1000
                    if status == 200 and answer.get("ok") is True:
                        wr.acked = True
                        if wr.kind == "sendMessage":
                            wr.message_id = answer["result"]["message_id"]
            except (OSError, http.client.HTTPException, ValueError):
                self.errors += 1
                conn.close()
                if self.stop.wait(0.01):
                    return
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)

    @staticmethod
    def call(conn, method, target, body=None):
        headers = {"Content-Type": "application/json"} if body else {}
        conn.request(method, target, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return r.status, json.loads(data)


def committed_rows(path):
    """The answers committed in the SQLite file: {key: (wall ms at which their load began, result)}.

    A value is the tier's frame byte (0 = stored raw; compressed ones are
    skipped) and the read path's record: magic "\\xffcc\\x01", the load's
    start in wall-clock microseconds (int64 LE), its tags (uint16 LE count,
    then uint16 LE length + bytes each), then the cached answer, whose body
    (the Bot API JSON) ends it."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        rows = con.execute("SELECT e.ns, e.value FROM entries e LEFT JOIN namespaces n ON n.ns = e.ns "
                           "WHERE e.version = COALESCE(n.version, 0) AND e.expires_at > ?",
                           (int(time.time() * 1000),)).fetchall()
    finally:
        con.close()
    out = {}
    magic = b"\xffcc\x01"
    for ns, value in rows:
        value = bytes(value)
        if not value.startswith(b"\x00" + magic):
            continue
        at = 1 + len(magic)
        loaded_ms = int.from_bytes(value[at:at + 8], "little", signed=True) // 1000
        j = value.find(b'{"ok":true')
        if j < 0:
            continue
        result = json.loads(value[j:])["result"]
        token = TAG_TO_TOKEN.get(result.get("owner"))
        if ns == "tg_chat":
            key = ("getChat", token, result["id"], None)
        elif ns == "tg_member":
            key = ("getChatMember", token, result["chat"], result["user"]["id"])
        else:
            continue
        out[key] = (loaded_ms, result)
    return out


def integrity(path):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


class Truth:
    """What each read key must show: the last acknowledged write, or a write in flight."""

    def __init__(self):
        self.title = {}    # (token, chat) -> title of the last acknowledged setChatTitle
        self.status = {}   # (token, chat, user) -> status after the last acknowledged ban/unban
        self.epoch = {}    # (token, chat) -> marker of the last acknowledged leaveChat
        self.pending = []  # writes not acknowledged (in flight at a kill, or failed)

    def apply(self, writes):
        for wr in writes:
            if not wr.acked:
                self.pending.append(wr)
                continue
            if wr.kind == "setChatTitle":
                self.title[(wr.token, wr.chat)] = wr.value
            elif wr.kind in ("banChatMember", "unbanChatMember"):
                self.status[(wr.token, wr.chat, wr.user)] = "kicked" if wr.kind == "banChatMember" else "left"
            elif wr.kind == "leaveChat":
                self.epoch[(wr.token, wr.chat)] = wr.value
            # A later acknowledged write supersedes earlier unacknowledged ones of its slot
            # (writes to one slot are sequential: one worker owns each chat).
            self.pending = [p for p in self.pending if p.slot() != wr.slot()]

    def valid(self, key, result):
        method, token, chat, user = key
        pend = [p for p in self.pending if p.affects(key)]
        if method == "getChat":
            ok = {self.title.get((token, chat), "Chat %d" % chat)} | {p.value for p in pend}
            return result.get("title") in ok, "title %r, expected one of %r" % (result.get("title"), sorted(ok))
        statuses = {self.status.get((token, chat, user), "member")} | {
            "kicked" if p.kind == "banChatMember" else "left" for p in pend if p.kind != "leaveChat"}
        epochs = {self.epoch.get((token, chat), "0")} | {p.value for p in pend if p.kind == "leaveChat"}
        ok = result.get("status") in statuses and result.get("epoch") in epochs
        return ok, "status %r epoch %r, expected %r / %r" % (result.get("status"), result.get("epoch"),
                                                              sorted(statuses), sorted(epochs))


def all_keys():
    keys = []
    for t in TOKENS:
        for c in ALL_CHATS:
            keys.append(("getChat", t, c, None))
            for u in USERS:
                keys.append(("getChatMember", t, c, u))
    return keys


def target_of(key):
    method, token, chat, user = key
    if method == "getChat":
        return "/bot%s/getChat?chat_id=%d" % (token, chat)
    return "/bot%s/getChatMember?chat_id=%d&user_id=%d" % (token, chat, user)


def get_on(conn, target):
    """GET on a kept-alive connection."""
    conn.request("GET", target)
    r = conn.getresponse()
    body = r.read()
    return harness.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, body, 0.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", required=True)
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--out")
    ap.add_argument("--doc")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print("seed", args.seed)
    work = tempfile.mkdtemp(prefix="cc-crash-")
    path = os.path.join(work, "cc.sqlite3")
    up = FakeUpstream()
    up.fault("getChat", "delay", seconds=0.01)
    up.fault("getChatMember", "delay", seconds=0.01)
    truth = Truth()
    config = {"server": {"access_log": False},
              "telegram": {"reads": {"getChatMember": {"ttl": "10m"}}},
              "gateway": {"upstream": "http://127.0.0.1:%d" % up.port},
              "storage": {"l2": "sqlite", "path": path}}
    failures = []
    rows_per_cycle = []
    totals = {"l2_hits": 0, "durable_checked": 0, "reads": 0, "writes_acked": 0, "sends_acked": 0,
              "stale_checked": 0}
    t_start = time.monotonic()
    gw = None
    try:
        for cycle in range(args.cycles + 1):
            gw = Gateway(args.serve, work, config, name="gw%d" % cycle).start()
            if cycle > 0:
                # ---- verify what the previous kill left ----
                ic = integrity(path)
                if ic != "ok":
                    failures.append("cycle %d: integrity_check: %s" % (cycle, ic))
                calls_before = up.calls("getChat") + up.calls("getChatMember")
                misses = 0
                l2_hits = 0
                conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
                for key in all_keys():
                    r = get_on(conn, target_of(key))
                    if r.status != 200:
                        failures.append("cycle %d: %s answered %r" % (cycle, target_of(key), r))
                        continue
                    result = r.json()["result"]
                    ok, why = truth.valid(key, result)
                    totals["stale_checked"] += 1
                    if not ok:
                        failures.append("cycle %d: %s (%s): %s" % (cycle, key[:3], r.outcome, why))
                    misses += r.outcome == "miss"
                    l2_hits += r.outcome == "l2_hit"
                    if key in snapshot:
                        loaded_ms, _ = snapshot[key]
                        # A write answered after its load began may have hidden or erased it.
                        later = [wr for wr in last_writes if wr.affects(key) and (
                            wr.done_wall_ms is None or wr.done_wall_ms >= loaded_ms - 5)]
                        if not later:
                            totals["durable_checked"] += 1
                            if r.outcome != "l2_hit":
                                ws = [(w.kind, w.value, w.user, round(w.start_wall_ms - loaded_ms),
                                       None if w.done_wall_ms is None else round(w.done_wall_ms - loaded_ms),
                                       w.acked) for w in last_writes if w.token == key[1] and w.chat == key[2]]
                                failures.append("cycle %d: %s was committed before the kill but came back "
                                                "as %s (after the kill the file %s it; writes to the chat, ms "
                                                "from its load start: %s)" % (
                                                    cycle, key[:3], r.outcome,
                                                    "held" if key in after_kill else "no longer held", ws))
                conn.close()
                calls = up.calls("getChat") + up.calls("getChatMember") - calls_before
                if calls != misses:
                    failures.append("cycle %d: %d upstream reads for %d misses" % (cycle, calls, misses))
                totals["l2_hits"] += l2_hits
                rows_per_cycle.append((cycle, len(snapshot), l2_hits, misses, ic, last_load))
            if cycle == args.cycles:
                break
            # ---- load, then a kill at a random point ----
            load = Load(gw.port, rng, cycle)
            load.start()
            time.sleep(rng.uniform(0.4, 1.4))
            snapshot = committed_rows(path)
            time.sleep(rng.uniform(0, 0.05))
            gw.proc.send_signal(signal.SIGKILL)
            gw.proc.wait()
            after_kill = committed_rows(path)
            load.join()
            last_writes = list(load.writes)
            truth.apply(last_writes)
            acked = [w for w in last_writes if w.acked]
            totals["reads"] += load.reads
            totals["writes_acked"] += sum(1 for w in acked if w.kind != "sendMessage")
            totals["sends_acked"] += sum(1 for w in acked if w.kind == "sendMessage")
            last_load = (load.reads, len(acked), len(last_writes) - len(acked))
            # Nothing acknowledged lost upstream.
            seen = set()
            for method, token, params in up.log():
                if method in ("setChatTitle", "sendMessage"):
                    seen.add((method, token, params.get("title") or params.get("text")))
            for w in acked:
                if w.kind in ("setChatTitle", "sendMessage") and (w.kind, w.token, w.value) not in seen:
                    failures.append("cycle %d: acknowledged %s %r never reached the upstream" % (
                        cycle, w.kind, w.value))
        rc = gw.stop()
        if rc != 0:
            failures.append("final SIGTERM: exit %s" % rc)
        # The durability check must have had something to check: committed
        # rows the test cannot read would make it pass vacuously.
        if args.cycles >= 5 and totals["durable_checked"] == 0:
            failures.append("no committed answer was read from the file before a kill (record format?)")
    finally:
        if gw and gw.alive():
            gw.kill()
        up.close()
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - t_start
    for f in failures[:40]:
        print("FAIL", f)
    text = render(args, rows_per_cycle, totals, failures, seconds)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
    if args.doc:
        harness.replace_section(args.doc, "crash", text)
    return 1 if failures else 0


def render(args, rows, totals, failures, seconds):
    lines = [
        "Generated by `tests/reliability/crash_test.py --seed %d` (ctest `reliability_crash_test`) on %s: "
        "%d SIGKILLs in %.0f s (%s). Totals: %d reads and %d acknowledged writes (%d acknowledged sends) "
        "under load; after the restarts %d keys checked against the last acknowledged write, %d committed "
        "answers checked for durability, %d served as l2_hit; **%d failures**." % (
            args.seed, time.strftime("%Y-%m-%d"), args.cycles, seconds, harness.machine_line(), totals["reads"],
            totals["writes_acked"], totals["sends_acked"], totals["stale_checked"], totals["durable_checked"],
            totals["l2_hits"], len(failures)),
        "",
        "| kill | load before it (reads / acked writes / unacked) | rows committed at the kill | after restart: l2_hit / miss | integrity_check |",
        "|---:|---|---:|---|---|",
    ]
    for cycle, committed, l2, miss, ic, load in rows:
        lines.append("| %d | %d / %d / %d | %d | %d / %d | %s |" % (cycle, load[0], load[1], load[2], committed,
                                                                 l2, miss, ic))
    if failures:
        lines += ["", "Failures:", ""] + ["- %s" % f for f in failures[:20]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
