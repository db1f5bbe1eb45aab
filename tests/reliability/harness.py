"""Shared pieces of the reliability tests: the gateway and redis-server as
real processes, HTTP over real sockets, /proc sampling, and the Markdown
sections these tests generate in docs/reliability.md.

Everything here is the standard library of Debian's /usr/bin/python3.
"""
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

TOKEN_A = "111111:AAAA-secretTokenOfBotA-0123456789abcdef"
TOKEN_B = "222222:BBBB-secretTokenOfBotB-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit(wanted):
    """Raises this process's open-file limit (children inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """Enough YAML for gateway configs: nested dicts, lists of scalars or dicts."""
    pad = " " * indent
    out = []
    for k, v in obj.items():
        if isinstance(v, dict):
            out.append("%s%s:" % (pad, k))
            out.append(to_yaml(v, indent + 2))
        elif isinstance(v, list):
            out.append("%s%s:" % (pad, k))
            for item in v:
                if isinstance(item, dict):
                    body = to_yaml(item, indent + 4).lstrip()
                    out.append("%s  - %s" % (pad, body))
                else:
                    out.append("%s  - %s" % (pad, yaml_scalar(item)))
        else:
            out.append("%s%s: %s" % (pad, k, yaml_scalar(v)))
    return "\n".join(x for x in out if x)


def merge(base, extra):
    out = dict(base)
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


class Gateway:
    """`callcache serve` (callcache_serve_dev) as a child process.

    `config` is merged over a test default (loopback ports picked by the
    gateway, 2 threads, access log on stderr). All output goes to
    `self.log_path`; start() waits for the listening line.
    """

    def __init__(self, binary, workdir, config=None, name="gw", preexec=None, env=None):
        self.binary = binary
        self.workdir = workdir
        self.name = name
        self.preexec = preexec
        self.env = env
        self.config = merge({
            "server": {"listen": "127.0.0.1:0", "threads": 2, "access_log": "-"},
            "admin": {"listen": "127.0.0.1:0"},
            "storage": {"l2": "none"},
        }, config)
        self.proc = None
        self.port = None
        self.admin_port = None
        self.log_path = os.path.join(workdir, "%s.log" % name)
        self.config_path = os.path.join(workdir, "%s.yaml" % name)
        self._lines = []
        self._lock = threading.Lock()

    def start(self, timeout=20, expect_fail=False):
        with open(self.config_path, "w") as f:
            f.write(to_yaml(self.config) + "\n")
        logf = open(self.log_path, "a")
        self.proc = subprocess.Popen([self.binary, "--config", self.config_path],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     preexec_fn=self.preexec, env=self.env)
        ready = threading.Event()
        pattern = re.compile(rb"listening on http://127\.0\.0\.1:(\d+).*admin (?:http://\S+:(\d+)|off)")

        def pump():
            for line in self.proc.stdout:
                logf.write(line.decode("utf-8", "replace"))
                logf.flush()
                with self._lock:
                    self._lines.append(line)
                m = pattern.search(line)
                if m and not ready.is_set():
                    self.port = int(m.group(1))
                    self.admin_port = int(m.group(2)) if m.group(2) else None
                    ready.set()
            logf.close()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.05):
            if time.monotonic() > deadline:
                raise RuntimeError("%s did not start in %ss: %s" % (self.name, timeout, self.output()[-2000:]))
        if self.port is None and not expect_fail:
            self.proc.wait(5)
            raise RuntimeError("%s exited %s before listening: %s" % (self.name, self.proc.returncode,
                                                                     self.output()[-2000:]))
        return self

    def output(self):
        with self._lock:
            return b"".join(self._lines).decode("utf-8", "replace")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signals the gateway and waits; returns the exit status (negative = killed by a signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("%s did not exit within %ss of signal %d" % (self.name, timeout, sig))
        time.sleep(0.05)  # let the pump thread drain the last lines
        return self.proc.returncode

    def kill(self):
        return self.stop(signal.SIGKILL)

    # ---- requests ----
    def get(self, target, headers=None, timeout=10):
        return request(self.port, "GET", target, headers=headers, timeout=timeout)

    def post(self, target, body, ctype="application/json", headers=None, timeout=10):
        h = {"Content-Type": ctype}
        h.update(headers or {})
        return request(self.port, "POST", target, body=body, headers=h, timeout=timeout)

    def admin(self, path, method="GET", headers=None, timeout=10):
        return request(self.admin_port, method, path, headers=headers, timeout=timeout)

    def stats(self):
        r = self.admin("/stats")
        return json.loads(r.body)

    def rss_kib(self):
        return proc_status(self.pid, "VmRSS")

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))


class Response:
    def __init__(self, status, headers, body, seconds):
        self.status = status
        self.headers = headers
        self.body = body
        self.seconds = seconds

    @property
    def outcome(self):
        return self.headers.get("x-callcache", "")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %s %.3fs %r>" % (self.status, self.outcome, self.seconds, self.body[:160])


def request(port, method, target, body=None, headers=None, timeout=10):
    """One request on a fresh connection. Raises on a transport failure."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return Response(r.status, hdrs, data, time.monotonic() - started)
    finally:
        conn.close()


def bot_api_error_shape(resp):
    """True when `resp` is a Bot API-shaped JSON error: {"ok":false,"error_code":N,"description":"..."}."""
    try:
        j = resp.json()
    except ValueError:
        return False
    return (isinstance(j, dict) and j.get("ok") is False and isinstance(j.get("error_code"), int)
            and j.get("error_code") == resp.status and isinstance(j.get("description"), str)
            and resp.headers.get("content-type", "").startswith("application/json"))


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Redis:
    """A real redis-server on a free loopback port (persistence off)."""

    def __init__(self, workdir, persist=False):
        """persist: an append-only file synced on every write, so a restart keeps the data."""
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=workdir)
        self.port = free_port()
        self.proc = None
        self.persist = persist

    def start(self):
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--dir", self.dir, "--protected-mode", "no"] + aof,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                # PING answers while an append-only file is still loading; DBSIZE does not.
                if self.command("PING") == "PONG" and isinstance(self.command("DBSIZE"), int):
                    return self
            except (OSError, RuntimeError):
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def command(self, *args, timeout=5):
        """One RESP command on a fresh connection; returns the decoded reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return _resp_read(f)

    def dump_all(self):
        """Every key and the raw bytes of every value (strings, hashes, sets, zsets, lists)."""
        out = []
        cursor = b"0"
        while True:
            cursor, keys = self.command("SCAN", cursor, "COUNT", 1000)
            for k in keys:
                t = self.command("TYPE", k)
                if t == "string":
                    v = [self.command("GET", k)]
                elif t == "hash":
                    v = self.command("HGETALL", k)
                elif t == "set":
                    v = self.command("SMEMBERS", k)
                elif t == "zset":
                    v = self.command("ZRANGE", k, 0, -1, "WITHSCORES")
                elif t == "list":
                    v = self.command("LRANGE", k, 0, -1)
                else:
                    v = []
                out.append((k, [x for x in v if x is not None]))
            if cursor in (b"0", "0"):
                return out

    def close(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _resp_read(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RuntimeError("redis error: " + rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise RuntimeError("bad RESP reply %r" % line)


# ---- generated documentation ----

def replace_section(doc_path, name, text):
    """Replaces the text between the markers of section `name` in `doc_path`."""
    begin = "<!-- BEGIN GENERATED %s -->" % name
    end = "<!-- END GENERATED %s -->" % name
    with open(doc_path) as f:
        doc = f.read()
    i, j = doc.find(begin), doc.find(end)
    if i < 0 or j < i:
        raise RuntimeError("%s: markers of section %r not found" % (doc_path, name))
    doc = doc[: i + len(begin)] + "\n" + text.rstrip("\n") + "\n" + doc[j:]
    with open(doc_path, "w") as f:
        f.write(doc)


def machine_line():
    load = os.getloadavg()
    return "%d CPUs, load average %.1f / %.1f / %.1f when the run ended" % (
        os.cpu_count(), load[0], load[1], load[2])
