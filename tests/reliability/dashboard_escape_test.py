#!/usr/bin/python3
"""The admin dashboard escapes everything it renders.

The page served at `/` of a real gateway's admin listener is loaded in
headless Chromium through a proxy that passes the page through unchanged
and rewrites every other admin answer it fetches (/stats, /metrics, ...):
JSON gets an extra member named by a hostile string in every object (a
copy of one of its members) and the hostile string appended to every string
value; Prometheus text gets a copy of each family's first sample with
hostile label values. The hostile string carries markup that would run
script or add elements if it were inserted as HTML:

  <img src=x id=xssimg onerror="...set data-pwned...">"'><b id=xssattr>q</b></script><script>...</script>

After the page ran, the DOM Chromium dumps must contain the hostile text
escaped (so the page did render the data: the test can fail) and no element
or attribute it would have created. The test knows nothing of the page's
structure, so it applies to whatever dashboard `/` serves.

  dashboard_escape_test.py --serve <callcache_serve_dev> [--chromium chromium]
"""
import argparse
import copy
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

import harness
from fake_upstream import FakeUpstream
from harness import TOKEN_A, Gateway

PWN = "document.body.setAttribute('data-pwned','1')"
HOSTILE = ('<img src=x id=xssimg onerror="%s">"\'><b id=xssattr>q</b>'
           '</script><script>document.body.setAttribute(\'data-pwned\',\'2\')</script>' % PWN)


def poison_json(node):
    if isinstance(node, dict):
        out = {k: poison_json(v) for k, v in node.items()}
        if out:
            first = next(iter(out.values()))
            out[HOSTILE] = copy.deepcopy(first)
        return out
    if isinstance(node, list):
        return [poison_json(v) for v in node]
    if isinstance(node, str):
        return node + HOSTILE
    return node


def poison_prometheus(text):
    out = []
    seen = set()
    label = HOSTILE.replace("\\", "\\\\").replace('"', '\\"')
    for line in text.splitlines():
        out.append(line)
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (.*)$", line)
        if m and m.group(1) not in seen:
            seen.add(m.group(1))
            labels = re.sub(r'="(?:[^"\\]|\\.)*"', '="%s"' % label, m.group(2))
            out.append("%s{%s} %s" % (m.group(1), labels, m.group(3)))
    return "\n".join(out) + "\n"


def make_proxy(admin_port, fetched):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            r = harness.request(admin_port, "GET", self.path,
                                headers={k: v for k, v in self.headers.items() if k.lower() == "authorization"})
            body = r.body
            ctype = r.headers.get("content-type", "")
            if self.path.split("?")[0] != "/":
                fetched.append(self.path)
                if "json" in ctype:
                    body = json.dumps(poison_json(json.loads(body))).encode()
                elif ctype.startswith("text/plain"):
                    body = poison_prometheus(body.decode()).encode()
            self.send_response(r.status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", required=True)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cc-dashboard-")
    up = FakeUpstream()
    gw = Gateway(args.serve, work, {"gateway": {"upstream": "http://127.0.0.1:%d" % up.port},
                                    "server": {"access_log": False}}, name="gw-dash").start()
    failures = []
    try:
        for i in range(5):  # something in every table: outcomes, methods, namespaces
            gw.get("/bot%s/getChat?chat_id=%d" % (TOKEN_A, i))
            gw.get("/bot%s/getChat?chat_id=%d" % (TOKEN_A, i))
        gw.post("/bot%s/sendMessage" % TOKEN_A, json.dumps({"chat_id": 1, "text": "x"}))
        fetched = []
        proxy = make_proxy(gw.admin_port, fetched)
        url = "http://127.0.0.1:%d/" % proxy.server_address[1]
        profile = os.path.join(work, "chromium-profile")
        run = subprocess.run([args.chromium, "--headless", "--no-sandbox", "--disable-gpu",
                              "--no-first-run", "--disable-extensions", "--user-data-dir=" + profile,
                              "--virtual-time-budget=4000", "--dump-dom", url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=90)
        dom = run.stdout
        proxy.shutdown()
        escaped = "&lt;img src=x id=xssimg"
        checks = [
            ("Chromium dumped the page (%d bytes, exit %d)" % (len(dom), run.returncode),
             run.returncode == 0 and "<body" in dom),
            ("the page fetched admin data through the proxy: %s" % sorted(set(fetched)), bool(fetched)),
            ("the hostile text is rendered, escaped (%d times)" % dom.count(escaped), dom.count(escaped) > 0),
            ("no element the hostile text would create (id=\"xssimg\" / id=\"xssattr\")",
             'id="xssimg"' not in dom and 'id="xssattr"' not in dom),
            ("no script it carries ran (data-pwned on <body>)", "data-pwned=" not in dom),
        ]
        for what, ok in checks:
            print("%s %s" % ("ok  " if ok else "FAIL", what))
            if not ok:
                failures.append(what)
        if failures:
            print(dom[:3000])
            print(run.stderr[-2000:])
        if gw.stop() != 0:
            failures.append("gateway exit status")
    finally:
        if gw.alive():
            gw.kill()
        up.close()
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
