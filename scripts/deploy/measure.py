#!/usr/bin/env python3
"""Measures what coordination through Redis does for N gateways sharing it
(docs/deployment.md): the invalidation lag (a write through one gateway →
the first fresh answer from another, p50/p99) and the upstream calls that
cross-gateway single flight saves (concurrent reads of fresh keys spread
over the gateways, with coordination on and off, in the same run).

  scripts/deploy/measure.py --callcache build/debug/callcache \\
      --fake build/debug/src/gateway/callcache_fake_telegram_server

Everything runs on 127.0.0.1: one redis-server, one fake Bot API (real HTTP,
--latency-ms per call), the gateways, and (with --nginx) nginx as the load
balancer for the concurrent reads.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TOKEN = "111111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    until = time.time() + timeout
    while time.time() < until:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def post_json(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


def metric(admin_port, name):
    text = get(f"http://127.0.0.1:{admin_port}/metrics")
    m = re.search("^" + re.escape(name) + r" ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


class Deployment:
    def __init__(self, args, coordination, tmp):
        self.procs = []
        try:
            self._start(args, coordination, tmp)
        except Exception:
            self.close()
            raise

    def _start(self, args, coordination, tmp):
        self.tmp = tmp
        self.redis_port = free_port()
        self.procs.append(subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL))
        wait_port(self.redis_port)
        self.fake_port = free_port()
        self.procs.append(subprocess.Popen(
            [args.fake, "--port", str(self.fake_port), "--latency-ms", str(args.latency_ms)],
            stdout=subprocess.DEVNULL))
        wait_port(self.fake_port)
        self.gateways = []
        for i in range(args.gateways):
            port, admin = free_port(), free_port()
            cfg = os.path.join(tmp, f"gw{i}-{coordination}.yaml")
            with open(cfg, "w") as f:
                f.write(f"""server: {{listen: "127.0.0.1:{port}", threads: 2, access_log: false, log_level: warn}}
admin: {{listen: "127.0.0.1:{admin}"}}
gateway: {{upstream: "http://127.0.0.1:{self.fake_port}", pacing: {{enabled: false}}}}
storage: {{l2: redis, redis_url: "redis://127.0.0.1:{self.redis_port}/0", redis_coordination: {str(coordination).lower()}}}
telegram: {{post_write_bypass: 0s}}
""")
            self.procs.append(subprocess.Popen([args.callcache, "serve", "--config", cfg]))
            self.gateways.append((port, admin))
        for port, admin in self.gateways:
            wait_port(port)
            wait_port(admin)
        self.lb_port = None
        if args.nginx and shutil.which("nginx"):
            prefix = os.path.join(tmp, f"nginx-{coordination}")
            os.makedirs(prefix, exist_ok=True)
            with open(os.path.join(prefix, "gateways.inc"), "w") as f:
                for port, _ in self.gateways:
                    f.write(f"server 127.0.0.1:{port};\n")
            self.lb_port = free_port()
            conf = open(os.path.join(HERE, "nginx.conf.in")).read()
            conf = conf.replace("@PREFIX@", prefix).replace("@LISTEN@", f"127.0.0.1:{self.lb_port}")
            with open(os.path.join(prefix, "nginx.conf"), "w") as f:
                f.write(conf)
            self.procs.append(subprocess.Popen(
                ["nginx", "-p", prefix, "-c", os.path.join(prefix, "nginx.conf"), "-g",
                 "daemon off;"], stderr=subprocess.DEVNULL))
            wait_port(self.lb_port)
        time.sleep(0.3)  # subscriptions up

    def url(self, i, method):
        return f"http://127.0.0.1:{self.gateways[i][0]}/bot{TOKEN}/{method}"

    def upstream_calls(self):
        return sum(metric(a, "callcache_gateway_upstream_calls_total") for _, a in self.gateways)

    def close(self):
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def lag(dep, rounds):
    """A write through gateway 0; the time until another gateway has applied
    the invalidation to its L1 (its remote_invalidation counter, polled on
    /metrics, so the figure includes one poll's round trip), and whether the
    first read there after the write was already fresh."""
    name = 'callcache_gateway_coordination_total{event="remote_invalidation"}'
    lags, fresh_first = [], 0
    n = len(dep.gateways)
    for r in range(rounds):
        chat = -100000 - r % 10
        reader = 1 + r % (n - 1)
        admin = dep.gateways[reader][1]
        get(dep.url(reader, f"getChat?chat_id={chat}"))  # the old answer in the reader's L1
        before = metric(admin, name)
        title = f"title-{r}"
        post_json(dep.url(0, "setChatTitle"), {"chat_id": chat, "title": title})
        start = time.perf_counter()
        while metric(admin, name) <= before:
            if time.perf_counter() - start > 5:
                raise RuntimeError("an invalidation was not applied within 5 s")
        lags.append((time.perf_counter() - start) * 1000)
        fresh_first += title in get(dep.url(reader, f"getChat?chat_id={chat}"))
    lags.sort()
    return {
        "rounds": rounds,
        "applied_p50_ms": round(statistics.median(lags), 3),
        "applied_p99_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 3),
        "applied_max_ms": round(lags[-1], 3),
        "first_read_after_write_fresh": fresh_first,
    }


def saved(dep, keys, readers):
    """`readers` concurrent reads of each of `keys` fresh keys, spread over
    the gateways (through nginx when there is one)."""
    before = dep.upstream_calls()
    n = len(dep.gateways)
    with concurrent.futures.ThreadPoolExecutor(readers) as pool:
        for k in range(keys):
            chat = 500000 + k
            urls = []
            for i in range(readers):
                if dep.lb_port:
                    urls.append(f"http://127.0.0.1:{dep.lb_port}/bot{TOKEN}/getChat?chat_id={chat}")
                else:
                    urls.append(dep.url(i % n, f"getChat?chat_id={chat}"))
            list(pool.map(get, urls))
    return dep.upstream_calls() - before


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--callcache", default="build/debug/src/tools/callcache")
    ap.add_argument("--fake", default="build/debug/src/gateway/callcache_fake_telegram_server")
    ap.add_argument("--gateways", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=300, help="writes for the lag")
    ap.add_argument("--keys", type=int, default=20, help="fresh keys for the calls saved")
    ap.add_argument("--readers", type=int, default=30, help="concurrent reads per key")
    ap.add_argument("--latency-ms", type=int, default=100, help="fake upstream latency")
    ap.add_argument("--nginx", action="store_true", help="spread the reads through nginx")
    args = ap.parse_args()
    out = {}
    with tempfile.TemporaryDirectory(prefix="cc-multi-") as tmp:
        for coordination in (True, False):
            dep = Deployment(args, coordination, tmp)
            try:
                name = "coordination" if coordination else "no_coordination"
                out[name] = {"upstream_calls": saved(dep, args.keys, args.readers)}
                if coordination:
                    out[name]["lag"] = lag(dep, args.rounds)
            finally:
                dep.close()
    out["reads"] = args.keys * args.readers
    out["gateways"] = args.gateways
    out["upstream_latency_ms"] = args.latency_ms
    out["via"] = "nginx" if args.nginx else "round-robin"
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
