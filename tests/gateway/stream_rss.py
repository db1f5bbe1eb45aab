#!/usr/bin/env python3
"""Peak memory of `callcache serve` while one 50 MB upload and one 50 MB
download go through it at the same time (a measurement, not a test).

For each --serve binary in turn: start it in front of one fake upstream
(callcache_fake_telegram_server), run the two transfers concurrently, and
read the gateway's VmHWM (peak RSS) from /proc before and after. Pass the
streaming build and a buffering build (e.g. an older main) to compare them
in the same run:

  tests/gateway/stream_rss.py --fake build/dev/src/gateway/callcache_fake_telegram_server \\
      --serve streaming=build/dev/src/gateway/callcache_serve_dev \\
      --serve buffered=/tmp/cc-base/build/src/gateway/callcache_serve_dev

Prints a Markdown table. Exits non-zero if a transfer fails.
"""
import argparse
import http.client
import os
import re
import subprocess
import sys
import threading
import time

TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
MB = 1024 * 1024
BOUNDARY = "callcacheRssBoundary"


def read_line_matching(proc, pattern, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError("process exited before printing %r" % pattern)
            continue
        m = re.search(pattern, line)
        if m:
            return m
    raise RuntimeError("timed out waiting for %r" % pattern)


def vm_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def upload(port, size, result):
    head = ("--%s\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n--%s\r\n"
            "Content-Disposition: form-data; name=\"document\"; filename=\"big.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n" % (BOUNDARY, BOUNDARY)).encode()
    tail = ("\r\n--%s--\r\n" % BOUNDARY).encode()
    block = os.urandom(MB)

    def body():
        yield head
        left = size
        while left > 0:
            n = min(left, MB)
            yield block[:n]
            left -= n
        yield tail

    total = len(head) + size + len(tail)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", "/bot%s/sendDocument?chat_id=42" % TOKEN, body=body(),
              headers={"Content-Type": "multipart/form-data; boundary=" + BOUNDARY,
                       "Content-Length": str(total)})
    r = c.getresponse()
    answer = r.read().decode()
    ok = r.status == 200 and ('"file_size":%d' % total) in answer
    result["upload"] = (ok, total, r.status)


def download(port, size, result):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("GET", "/file/bot%s/large/%d.bin" % (TOKEN, size))
    r = c.getresponse()
    got = 0
    while True:
        piece = r.read(256 * 1024)
        if not piece:
            break
        got += len(piece)
    result["download"] = (r.status == 200 and got == size, got, r.status)


def measure(label, serve, fake_port, size):
    gw = subprocess.Popen([serve, "--listen", "127.0.0.1:0", "--no-admin",
                           "--upstream", "http://127.0.0.1:%d" % fake_port, "--storage", "none",
                           "--access-log", "off", "--threads", "2"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = int(read_line_matching(gw, r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        # Warm up: one small call of each kind, then take the starting figure.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/bot%s/getMe" % TOKEN)
        c.getresponse().read()
        before = vm_kib(gw.pid, "VmHWM")
        result = {}
        started = time.time()
        threads = [threading.Thread(target=upload, args=(port, size, result)),
                   threading.Thread(target=download, args=(port, size, result))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.time() - started
        after = vm_kib(gw.pid, "VmHWM")
        return label, before, after, seconds, result
    finally:
        gw.terminate()
        gw.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fake", required=True)
    ap.add_argument("--serve", action="append", required=True, help="LABEL=PATH (repeatable)")
    ap.add_argument("--mb", type=int, default=50)
    args = ap.parse_args()
    fake = subprocess.Popen([args.fake, "--port", "0"], stdout=subprocess.PIPE, text=True)
    failed = False
    try:
        fake_port = int(read_line_matching(fake, r"listening (\d+)").group(1))
        rows = []
        for spec in args.serve:
            label, _, path = spec.partition("=")
            rows.append(measure(label, path, fake_port, args.mb * MB))
        print("| build | VmHWM before | VmHWM after both transfers | growth | both transfers took | upload | download |")
        print("|---|---:|---:|---:|---:|---|---|")
        for label, before, after, seconds, result in rows:
            up, down = result.get("upload"), result.get("download")
            failed |= not (up and up[0] and down and down[0])
            print("| %s | %.1f MiB | %.1f MiB | %+.1f MiB | %.2f s | %s | %s |" % (
                label, before / 1024, after / 1024, (after - before) / 1024, seconds,
                "ok %d B" % up[1] if up and up[0] else "FAILED %r" % (up,),
                "ok %d B" % down[1] if down and down[0] else "FAILED %r" % (down,)))
    finally:
        fake.terminate()
        fake.wait(timeout=30)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
