#!/usr/bin/python3
"""Security properties of `callcache serve`, checked over real sockets:

1. Secrets never leave the request path: bot tokens (and generic APIs'
   tenant keys, in headers or queries) never appear in the logs (access
   log and stderr, at debug level), /metrics, /stats, the SQLite file (and
   its WAL) or Redis keys and values, whatever the traffic: normal calls,
   malformed targets, upstream errors, 429s, uploads, downloads, admin
   invalidation by bot_token.
2. One tenant never reads another's entry: a randomised sequence of reads
   by near-identical tokens and API keys over the same chats and resources,
   on both fronts (Bot API and a generic JSON API) and both tiers (L1, then
   SQLite after a restart, then Redis through a second gateway), where every
   answer must carry its own requester's owner tag.
3. The admin listener refuses a non-loopback address without a token,
   starts with one, and answers 401 to a missing, wrong, shorter or longer
   token (the comparison itself is constant-time: admin_token_test).

  security_test.py --serve <callcache_serve_dev> [--seed N]
"""
import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse

import harness
from fake_upstream import FakeUpstream, owner_tag
from harness import Gateway

FAILURES = []


def check(cond, what):
    print("%s %s" % ("ok  " if cond else "FAIL", what), flush=True)
    if not cond:
        FAILURES.append(what)


TOKENS = [
    "123456:AAHsecretSecretSecret-abcdefghij_0123",
    "123456:AAHsecretSecretSecret-abcdefghij_0124",   # one character apart
    "123456:aahsecretsecretsecret-abcdefghij_0123",   # the same, lower case
    "123457:AAHsecretSecretSecret-abcdefghij_0123",   # another bot id, the same secret
    "99:Zz-short-but-valid-token-01",
    "123456:AAHsecretSecretSecret-abcdefghij_01234",  # a prefix of nothing, a superset of #0
]
API_KEYS = ["key-alpha-7f3a91", "key-alpha-7f3a92", "KEY-ALPHA-7F3A91", "k"]


def generic_config(port):
    return {
        "namespaces": {"gen": {"ttl": "5m", "max_entries": 10000}},
        "apis": [{
            "name": "gen", "prefix": "/gen", "upstream": "http://127.0.0.1:%d/api" % port,
            "rules": [
                {"match": "GET /items/{id}", "name": "item", "namespace": "gen", "key": ["query.lang"],
                 "tenant": ["header.x-api-key"]},
                {"match": "GET /q/{id}", "name": "q", "namespace": "gen", "tenant": ["query.key"]},
            ]}],
    }


def secrets():
    """Every string that must never be stored, logged or exported."""
    out = set()
    for t in TOKENS:
        out.add(t)
        out.add(t.split(":", 1)[1])
        out.add(urllib.parse.quote(t, safe=""))
    out.update(API_KEYS[:3])  # "k" is too short to grep for
    return out


def leak_traffic(gw, up):
    """Normal, failing and malformed traffic carrying the secrets."""
    t = TOKENS[0]
    enc = urllib.parse.quote(t, safe="")
    targets = [
        "/bot%s/getMe" % t, "/bot%s/getChat?chat_id=1" % t, "/bot%s/getChat?chat_id=1" % t,
        "/bot%s/getChatMember?chat_id=1&user_id=2" % t, "/bot%s/getUpdates?timeout=0" % t,
        "/bot%s/unknownMethod?x=1" % t, "/bot%s/" % t, "/bot%s" % t, "/bot%s/getMe/extra" % t,
        "/bot%s/get%%ZZChat" % t, "/bot%s/getChat?chat_id=%%ZZ" % t, "//bot%s/getMe" % t,
        "/BOT%s/getMe" % t, "/bot%s/getMe" % enc, "/file/bot%s/documents/a.txt" % t,
        "/file/bot%s/" % t, "/bot%s/getChat?chat_id=1&chat_id=2" % t, "/bot%s/getMe?%s" % (t, t),
        "/gen/items/1?lang=en", "/gen/q/1?key=%s" % API_KEYS[0], "/gen/q/1?key=%s&x=%%ZZ" % API_KEYS[1],
        "/nowhere/%s" % t, "/bot%s/getMe#frag" % t,
    ]
    for target in targets:
        try:
            gw.get(target, headers={"x-api-key": API_KEYS[2], "Authorization": "Bearer " + t})
        except Exception as e:  # noqa: BLE001
            print("request %r failed: %s" % (target[:40], e))
    gw.post("/bot%s/sendMessage" % t, json.dumps({"chat_id": 5, "text": t}))
    gw.post("/bot%s/setChatTitle" % t, "chat_id=1&title=x", ctype="application/x-www-form-urlencoded")
    gw.post("/bot%s/getChat" % t, "{not json")
    up.fault("*", "status", status=500, count=2)
    gw.get("/bot%s/getChat?chat_id=77" % t)
    up.fault("*", "429", retry_after=1, count=3)
    gw.post("/bot%s/sendMessage" % t, json.dumps({"chat_id": 6, "text": "x"}))
    up.fault("*", "reset_before", count=2)
    gw.get("/bot%s/getChat?chat_id=78" % t)
    up.clear_faults()
    boundary = "bnd"
    body = ("--%s\r\nContent-Disposition: form-data; name=\"document\"; filename=\"%s\"\r\n\r\n%s\r\n--%s--\r\n"
            % (boundary, t, "x" * (300 * 1024), boundary))
    gw.post("/bot%s/sendDocument?chat_id=3" % t, body, ctype="multipart/form-data; boundary=" + boundary)
    gw.admin("/invalidate?bot_token=%s" % urllib.parse.quote(t, safe=""), method="POST")
    gw.admin("/invalidate?bot_token=%s&method=getChat" % urllib.parse.quote(TOKENS[1], safe=""), method="POST")
    gw.admin("/invalidate?tenant=%s" % TOKENS[2], method="POST")  # a token where a tenant id belongs
    for tok in TOKENS[1:]:
        gw.get("/bot%s/getChat?chat_id=9" % tok)
    up.fault("getChat", "pad", bytes=4096, count=1)  # an answer the tier stores compressed
    gw.get("/bot%s/getChat?chat_id=79" % TOKENS[1])
    up.clear_faults()


def unframed(values):
    """The L2 tier stores values of 1 KiB and more zstd-compressed (a 0x01
    frame byte, then a zstd frame): a grep of the raw bytes cannot see a
    secret inside them. Returns (how many were compressed, their text)."""
    out = []
    for v in values:
        if isinstance(v, str):
            v = v.encode("latin-1")
        if not v.startswith(b"\x01\x28\xb5\x2f\xfd"):
            continue
        r = subprocess.run(["zstd", "-d", "-c", "-q"], input=v[1:], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        check(r.returncode == 0, "zstd -d of a stored value: %r" % r.stderr[:200])
        out.append(r.stdout.decode("latin-1"))
    return len(out), "\n".join(out)


def sqlite_values(path):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        return [bytes(v) for (v,) in con.execute("SELECT value FROM entries")]
    finally:
        con.close()


def grep_everything(name, gw, extra_files, redis=None):
    metrics = gw.admin("/metrics").body.decode("utf-8", "replace")
    stats = gw.admin("/stats").body.decode("utf-8", "replace")
    dashboard = gw.admin("/").body.decode("utf-8", "replace")
    rc = gw.stop()
    places = {"metrics": metrics, "stats": stats, "dashboard": dashboard,
              "log (stdout+stderr)": gw.output()}
    for f in extra_files:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f + suffix):
                with open(f + suffix, "rb") as fh:
                    places[os.path.basename(f + suffix)] = fh.read().decode("latin-1")
    compressed = 0
    for f in extra_files:
        if f.endswith(".sqlite3") and os.path.exists(f):
            n, text = unframed(sqlite_values(f))
            compressed += n
            places[os.path.basename(f) + " (values decompressed)"] = text
    if redis is not None:
        dump = redis.dump_all()
        n, text = unframed(v for _, vals in dump for v in vals)
        compressed += n
        places["redis values (decompressed)"] = text
        check(len(dump) > 0, "%s: Redis holds %d keys to search" % (name, len(dump)))
        places["redis keys and values"] = "\n".join(
            (k if isinstance(k, str) else k.decode("latin-1")) + " " +
            " ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in vals)
            for k, vals in dump)
    check(compressed > 0 or not (redis is not None or any(f.endswith(".sqlite3") for f in extra_files)),
          "%s: a compressed L2 value was decompressed and searched (%d)" % (name, compressed))
    for where, text in places.items():
        found = sorted(s for s in secrets() if s in text)
        check(not found, "%s: no secret in %s (%d bytes)%s" % (name, where, len(text),
                                                              "; found %r" % found[:2] if found else ""))
    check(rc == 0, "%s: exit 0 on SIGTERM" % name)
    # The logs must show the traffic, or the grep proves nothing.
    logs = "".join(v for k, v in places.items() if k.startswith("log") or k.endswith(".log"))
    check("<t:" in logs, "%s: the access log shows redacted targets" % name)


def leak_tests(serve, work, up):
    # SQLite tier, access log to a file and to stderr, debug logging.
    path = os.path.join(work, "leak.sqlite3")
    logfile = os.path.join(work, "access.log")
    cfg = harness.merge(generic_config(up.port), {
        "server": {"access_log": logfile, "log_level": "debug"},
        "gateway": {"upstream": "http://127.0.0.1:%d" % up.port, "pacing": {"retry_max_delay": "1s"}},
        "storage": {"l2": "sqlite", "path": path}})
    gw = Gateway(serve, work, cfg, name="gw-leak-sqlite").start()
    leak_traffic(gw, up)
    time.sleep(0.3)
    grep_everything("sqlite", gw, [path, logfile])
    with open(logfile) as f:
        log = f.read()
    check(log.count("\n") >= 20, "the access log file has %d lines" % log.count("\n"))
    check(not any(s in log for s in secrets()), "no secret in the access log file")

    redis = harness.Redis(work).start()
    try:
        cfg = harness.merge(generic_config(up.port), {
            "server": {"access_log": "-", "log_level": "debug"},
            "gateway": {"upstream": "http://127.0.0.1:%d" % up.port, "pacing": {"retry_max_delay": "1s"}},
            "storage": {"l2": "redis", "redis_url": redis.url}})
        gw = Gateway(serve, work, cfg, name="gw-leak-redis").start()
        leak_traffic(gw, up)
        grep_everything("redis", gw, [], redis=redis)
    finally:
        redis.close()


def cross_tenant(serve, work, up, rng):
    """Random reads by many tenants over shared resources; every answer must be the requester's own."""
    chats = [1, 2, 3, -100500]
    items = ["1", "2", "a%20b", "A%20B"]

    def plan(n):
        seq = []
        for _ in range(n):
            x = rng.random()
            if x < 0.5:
                seq.append(("bot", rng.choice(TOKENS), rng.choice(["getChat", "getMe", "getChatMember"]),
                            rng.choice(chats)))
            else:
                seq.append(("gen", rng.choice(API_KEYS), rng.choice(["items", "q"]), rng.choice(items)))
        return seq

    def run(gw, seq, label):
        outcomes = {}
        wrong = 0
        for front, who, what, res in seq:
            if front == "bot":
                target = "/bot%s/%s?chat_id=%s&user_id=7" % (who, what, res)
                r = gw.get(target)
                owner = r.json().get("result", {}).get("owner") if r.status == 200 else None
            elif what == "items":
                r = gw.get("/gen/items/%s?lang=en" % res, headers={"x-api-key": who})
                owner = r.json().get("owner") if r.status == 200 else None
            else:
                r = gw.get("/gen/q/%s?key=%s" % (res, urllib.parse.quote(who)))
                owner = r.json().get("owner") if r.status == 200 else None
            if owner != owner_tag(who):
                wrong += 1
                if wrong <= 3:
                    print("  %s: %s %s %s answered for owner %s, expected %s (%s)" % (
                        label, front, what, res, owner, owner_tag(who), r.outcome))
            outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
        return wrong, outcomes

    base = harness.merge(generic_config(up.port), {
        "server": {"access_log": False}, "gateway": {"upstream": "http://127.0.0.1:%d" % up.port}})
    path = os.path.join(work, "tenants.sqlite3")
    seq = plan(600)
    sq = harness.merge(base, {"storage": {"l2": "sqlite", "path": path}})
    gw = Gateway(serve, work, sq, name="gw-tenants-1").start()
    wrong, outcomes = run(gw, seq, "L1")
    check(wrong == 0 and outcomes.get("hit", 0) > 100,
          "L1: 600 random reads by %d tenants, %d answered with another tenant's entry (%s)" % (
              len(TOKENS) + len(API_KEYS), wrong, outcomes))
    gw.stop()
    gw = Gateway(serve, work, sq, name="gw-tenants-2").start()
    seq2 = plan(600)
    wrong, outcomes = run(gw, seq2, "SQLite")
    check(wrong == 0 and outcomes.get("l2_hit", 0) > 20,
          "SQLite after a restart: 600 random reads, %d answered with another tenant's entry (%s)" % (
              wrong, outcomes))
    gw.stop()

    redis = harness.Redis(work).start()
    try:
        rd = harness.merge(base, {"storage": {"l2": "redis", "redis_url": redis.url}})
        gw1 = Gateway(serve, work, rd, name="gw-tenants-r1").start()
        wrong1, _ = run(gw1, plan(300), "Redis writer")
        gw2 = Gateway(serve, work, rd, name="gw-tenants-r2").start()
        wrong2, outcomes = run(gw2, plan(600), "Redis reader")
        check(wrong1 == 0 and wrong2 == 0 and outcomes.get("l2_hit", 0) > 20,
              "Redis, a second gateway: 600 random reads, %d answered with another tenant's entry (%s)" % (
                  wrong1 + wrong2, outcomes))
        gw1.stop()
        gw2.stop()
    finally:
        redis.close()


def admin_tests(serve, work, up):
    def start(listen, token=None, name="gw-admin"):
        cfg = {"gateway": {"upstream": "http://127.0.0.1:%d" % up.port}, "admin": {"listen": listen}}
        if token is not None:
            cfg["admin"]["token"] = token
        gw = Gateway(serve, work, cfg, name=name)
        try:
            gw.start(expect_fail=True)
        except RuntimeError:
            pass
        return gw

    for listen in ("0.0.0.0:0", "[::]:0"):
        gw = start(listen, name="gw-admin-open")
        rc = gw.proc.wait(10) if gw.port is None else gw.stop()
        msg = gw.output().strip().splitlines()[-1] if gw.output().strip() else ""
        check(gw.port is None and rc == 2 and "admin.listen" in msg and "token" in msg,
              "admin on %s without a token: refused (exit %s: %r)" % (listen, rc, msg[:100]))

    gw = start("localhost:0", name="gw-admin-name")
    rc = gw.stop() if gw.port is not None else gw.proc.wait(10)
    msg = gw.output().strip().splitlines()[-1] if gw.output().strip() else ""
    check(rc in (0, 2) and (rc == 0 or "admin.listen" in msg),
          "admin on a host name (localhost): no crash (exit %s: %r)" % (rc, msg[:100]))

    secret = "s3cret-admin-token-0123456789"
    gw = start("0.0.0.0:0", token=secret, name="gw-admin-token")
    check(gw.port is not None, "admin on 0.0.0.0 with a token: starts")
    if gw.port is None:
        return
    cases = [(None, 401), ("Bearer " + secret, 200), ("Bearer " + secret[:-1], 401),
             ("Bearer " + secret + "x", 401), ("Bearer " + secret.upper(), 401), ("bearer " + secret, 401),
             (secret, 401), ("Bearer ", 401), ("Bearer " + "x" * 10000, 401)]
    for auth, want in cases:
        headers = {"Authorization": auth} if auth is not None else {}
        # (The dashboard's own files hold no data and are served without a token.)
        got = [gw.admin(p, headers=headers).status for p in ("/stats", "/metrics", "/stats/history")]
        check(all(s == want for s in got), "admin %-14r -> %s (want %d)" % (
            (auth or "no header")[:14], got, want))
    r = gw.admin("/invalidate?namespace=tg_chat", method="POST", headers={"Authorization": "Bearer x"})
    check(r.status == 401, "unauthenticated POST /invalidate -> %d" % r.status)
    check(gw.stop() == 0, "exit 0")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", required=True)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    print("seed", args.seed)
    work = tempfile.mkdtemp(prefix="cc-security-")
    up = FakeUpstream()
    try:
        leak_tests(args.serve, work, up)
        cross_tenant(args.serve, work, up, random.Random(args.seed))
        admin_tests(args.serve, work, up)
    finally:
        up.close()
        shutil.rmtree(work, ignore_errors=True)
    print("%d failures" % len(FAILURES))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
