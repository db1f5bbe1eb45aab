#!/usr/bin/python3
"""Floods: a million requests (by default) through `callcache serve`, each
with a key no other request carries, while resident memory and the rate
limiter's keys are sampled. The namespaces' bounds scale with --requests
(50,000 / 50,000 / 20,000 per tenant at a million), so a shorter flood (CI
sends 250,000) fills them as early in the run and checks the same things.

The mix (tests/reliability/flood.lua): 40% getChat of one bot (A) for
distinct chats, 30% getMe of distinct bots (tokens), 30% sendMessage of
distinct bots to distinct chats (distinct pacing keys). Before the flood a
second bot (B) caches 1,000 chats.

Checks:
- every answer is 200 and no socket errors;
- resident memory stays under the bound the configuration implies:
  RSS at start + sum over namespaces of max_entries x PER_ENTRY_BOUND +
  FIXED_OVERHEAD (stated below, in the report), and is flat over the second
  half of the flood;
- bot A's entries stop at max_entries_per_tenant, and every one of bot B's
  1,000 answers is still a cache hit afterwards (no upstream call);
- the rate limiter's tracked keys stay flat (keys of idle bots and chats are
  dropped) and fall back to zero once the flood stops.

  flood.py --serve <callcache_serve_dev> --fake <callcache_fake_telegram_server>
      [--requests 1000000] [--out FILE.md] [--doc docs/reliability.md]
"""
import argparse
import json
import os
import signal
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import harness
from harness import TOKEN_A, TOKEN_B, Gateway

HERE = os.path.dirname(os.path.abspath(__file__))

# The bounds this test states and checks; the namespaces' sizes are for a
# million requests and scale with --requests (bounds()).
TG_CHAT_MAX_PER_MILLION = 50000
TG_BOT_MAX_PER_MILLION = 50000
PER_TENANT_MAX_PER_MILLION = 20000
PER_ENTRY_BOUND = 1024        # bytes of RSS one cached answer may cost (measured: ~420 B)
FIXED_OVERHEAD = 48 << 20     # connections, buffers, pacing state, allocator slack
GATEWAY_THREADS = 2
# /stats reads a shard's entry count without its lock: an insert counts its
# entry before it evicts the one it displaces, so a sample can see one entry
# per inserting thread over the bound (never after the insert returns).
IN_FLIGHT = GATEWAY_THREADS


def bounds(requests):
    """(tg_chat max_entries, tg_bot max_entries, max_entries_per_tenant)."""
    scale = requests / 1e6
    return (max(2000, int(TG_CHAT_MAX_PER_MILLION * scale)), max(2000, int(TG_BOT_MAX_PER_MILLION * scale)),
            max(1000, int(PER_TENANT_MAX_PER_MILLION * scale)))


# Set by main() from --requests.
TG_CHAT_MAX, TG_BOT_MAX, PER_TENANT_MAX = bounds(1000000)


def requests_answered(gw):
    return sum(gw.stats()["gateway"]["requests"].values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", required=True)
    ap.add_argument("--fake", required=True)
    ap.add_argument("--requests", type=int, default=1000000)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--out")
    ap.add_argument("--doc")
    args = ap.parse_args()
    global TG_CHAT_MAX, TG_BOT_MAX, PER_TENANT_MAX
    TG_CHAT_MAX, TG_BOT_MAX, PER_TENANT_MAX = bounds(args.requests)
    work = tempfile.mkdtemp(prefix="cc-flood-")
    procs = []
    try:
        fake = subprocess.Popen([args.fake, "--port", "0", "--threads", "1"], stdout=subprocess.PIPE, text=True)
        procs.append(fake)
        fake_port = int(re.search(r"listening (\d+)", fake.stdout.readline()).group(1))
        gw = Gateway(args.serve, work, {
            "server": {"access_log": False, "threads": GATEWAY_THREADS},
            "gateway": {"upstream": "http://127.0.0.1:%d" % fake_port},
            # getChat fresh for an hour: bot B's answers must outlive the
            # flood however slow the machine (5 minutes by default).
            "telegram": {"reads": {"getChat": {"ttl": "1h"}}, "namespaces": {
                "tg_chat": {"max_entries": TG_CHAT_MAX, "max_entries_per_tenant": PER_TENANT_MAX},
                "tg_bot": {"max_entries": TG_BOT_MAX}}},
        }, name="gw-flood").start()
        procs.append(gw.proc)

        # Bot B's answers, which bot A's flood must not evict.
        b_chats = list(range(-500001000, -500000000))
        for c in b_chats:
            r = gw.get("/bot%s/getChat?chat_id=%d" % (TOKEN_B, c))
            assert r.status == 200, r
        gw.get("/bot%s/getMe" % TOKEN_A)
        time.sleep(0.5)
        rss_start = gw.rss_kib() * 1024
        bound = rss_start + (TG_CHAT_MAX + TG_BOT_MAX) * PER_ENTRY_BOUND + FIXED_OVERHEAD

        samples = []  # (t, rss bytes, tracked pacing keys, tg_chat entries, tg_bot entries)
        stop = threading.Event()
        t0 = time.monotonic()

        def sample():
            while not stop.is_set():
                try:
                    s = gw.stats()
                    ns = s["engine"].get("namespaces", {})
                    samples.append((time.monotonic() - t0, gw.rss_kib() * 1024,
                                    s["pacing"]["tracked_keys"],
                                    ns.get("tg_chat", {}).get("entries", 0),
                                    ns.get("tg_bot", {}).get("entries", 0)))
                except Exception as e:  # noqa: BLE001
                    print("sample failed:", e)
                stop.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        answered0 = requests_answered(gw)
        # wrk runs until its duration even when every thread stopped: it is
        # interrupted (and prints its report) once the gateway answered them all.
        wrk = subprocess.Popen(["wrk", "-t%d" % args.threads, "-c64", "-d900s", "--timeout", "10s",
                                "-s", os.path.join(HERE, "flood.lua"), "http://127.0.0.1:%d" % gw.port,
                                "--", str(args.requests), TOKEN_A, str(args.threads)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        while wrk.poll() is None and requests_answered(gw) - answered0 < args.requests:
            time.sleep(0.2)
        wrk.send_signal(signal.SIGINT)
        out, _ = wrk.communicate(timeout=60)
        flood_seconds = time.monotonic() - t0
        print(out)
        m = re.search(r"FLOOD requests=(\d+) bad=(\d+) connect=(\d+) read=(\d+) write=(\d+) timeout=(\d+) "
                      r"completed=(\d+) seconds=([\d.]+) p50_ms=([\d.]+) p99_ms=([\d.]+)", out)
        assert m, "wrk printed no FLOOD line"
        sent, bad = int(m.group(1)), int(m.group(2))
        sock_errors = sum(int(m.group(i)) for i in range(3, 7))
        rate = sent / float(m.group(8))

        s = gw.stats()
        ns = s["engine"]["namespaces"]
        chat_end, bot_end = ns["tg_chat"]["entries"], ns["tg_bot"]["entries"]
        upstream_before = s["gateway"]["upstream"]["calls"]
        b_hits = 0
        for c in b_chats:
            r = gw.get("/bot%s/getChat?chat_id=%d" % (TOKEN_B, c))
            b_hits += r.outcome == "hit" and json.loads(r.body)["result"]["id"] == c
        upstream_b = gw.stats()["gateway"]["upstream"]["calls"] - upstream_before
        time.sleep(2.5)  # pacing keys of idle bots and chats age out
        tracked_after = gw.stats()["pacing"]["tracked_keys"]
        stop.set()
        sampler.join()

        flood = [x for x in samples if x[0] <= flood_seconds]
        half = [x for x in flood if x[0] >= flood_seconds / 2]
        rss_max = max(x[1] for x in samples)
        rss_half_min = min(x[1] for x in half)
        rss_half_max = max(x[1] for x in half)
        keys_max = max(x[2] for x in flood)
        keys_first = max((x[2] for x in flood if x[0] < flood_seconds / 2), default=0)
        keys_second = max((x[2] for x in half), default=0)
        chat_max = max(x[3] for x in samples)
        bot_max = max(x[4] for x in samples)
        gw_rc = gw.stop()

        checks = [
            ("%d requests sent, every one a distinct key" % sent, sent >= args.requests),
            ("%d non-200 answers, %d socket errors" % (bad, sock_errors), bad == 0 and sock_errors == 0),
            ("peak RSS %.1f MiB <= bound %.1f MiB" % (rss_max / 2**20, bound / 2**20), rss_max <= bound),
            ("RSS over the second half of the flood: %.1f-%.1f MiB (growth %.1f MiB <= 16 MiB)" % (
                rss_half_min / 2**20, rss_half_max / 2**20, (rss_half_max - rss_half_min) / 2**20),
             rss_half_max - rss_half_min <= 16 << 20),
            ("tg_chat entries: peak %d <= per-tenant cap %d + bot B's 1,000 (+ %d inserts in flight), "
             "%d after the flood" % (chat_max, PER_TENANT_MAX, IN_FLIGHT, chat_end),
             chat_max <= PER_TENANT_MAX + len(b_chats) + IN_FLIGHT and chat_end <= PER_TENANT_MAX + len(b_chats)),
            ("tg_bot entries: peak %d <= max_entries %d (+ %d inserts in flight), %d after the flood" % (
                bot_max, TG_BOT_MAX, IN_FLIGHT, bot_end), bot_max <= TG_BOT_MAX + IN_FLIGHT and bot_end <= TG_BOT_MAX),
            ("bot B: %d of %d answers still cache hits, %d upstream calls" % (b_hits, len(b_chats), upstream_b),
             b_hits == len(b_chats) and upstream_b == 0),
            ("pacing keys tracked: peak %d in the first half, %d in the second (of %d distinct), %d after 2.5 s idle"
             % (keys_first, keys_second, sent * 3 // 10 * 2, tracked_after),
             keys_second <= max(2 * keys_first, 1000) and keys_max <= sent * 3 // 10 // 4 and tracked_after <= 100),
            ("gateway exit status %s on SIGTERM" % gw_rc, gw_rc == 0),
        ]
        for what, ok in checks:
            print("%s %s" % ("ok  " if ok else "FAIL", what))
        text = render(args, sent, rate, float(m.group(9)), float(m.group(10)), rss_start, bound, samples,
                      flood_seconds, checks, ns)
        print(text)
        if args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as f:
                f.write(text)
        if args.doc:
            harness.replace_section(args.doc, "flood", text)
        return 0 if all(ok for _, ok in checks) else 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


def render(args, sent, rate, p50, p99, rss_start, bound, samples, flood_seconds, checks, ns):
    lines = [
        "Generated by `tests/reliability/flood.py` (ctest `reliability_flood_test`) on %s: %d requests "
        "in %.0f s (%.0f req/s, p50 %.2f ms, p99 %.2f ms; wrk -t%d -c64, the gateway %d threads, the fake "
        "upstream 1 thread; %s)." % (time.strftime("%Y-%m-%d"), sent, flood_seconds, rate, p50, p99,
                                      args.threads, GATEWAY_THREADS, harness.machine_line()),
        "",
        "Configuration: `tg_chat` max_entries %d, max_entries_per_tenant %d; `tg_bot` max_entries %d; "
        "L2 none. Stated bound: RSS at start (%.1f MiB) + (max_entries of tg_chat + tg_bot) x %d B + "
        "%d MiB fixed = **%.1f MiB**." % (TG_CHAT_MAX, PER_TENANT_MAX, TG_BOT_MAX, rss_start / 2**20,
                                         PER_ENTRY_BOUND, FIXED_OVERHEAD >> 20, bound / 2**20),
        "",
        "| check | |",
        "|---|---|",
    ]
    for what, ok in checks:
        lines.append("| %s | %s |" % (what, "pass" if ok else "**FAIL**"))
    lines += ["", "| t (s) | RSS (MiB) | pacing keys | tg_chat entries | tg_bot entries |",
              "|---:|---:|---:|---:|---:|"]
    step = max(1, len(samples) // 12)
    for x in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        lines.append("| %.0f | %.1f | %d | %d | %d |" % (x[0], x[1] / 2**20, x[2], x[3], x[4]))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
