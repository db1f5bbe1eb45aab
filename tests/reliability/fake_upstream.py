"""A Bot API look-alike that misbehaves on command (reliability tests).

Real HTTP/1.1 over loopback, served by an asyncio loop on a thread of its
own, so a test drives it from ordinary blocking code:

    up = FakeUpstream()          # listening on 127.0.0.1:<up.port>
    up.fault("getChat", "status", status=503)       # every getChat: 503
    up.fault("*", "reset_before", count=3)          # the next 3 calls: RST
    up.clear_faults()
    up.down(); up.up()                              # refuse, then accept again
    up.calls("getChat")                             # calls seen per method

Answers are plausible Bot API JSON and carry who asked, so a test can tell
one bot's answer from another's: every result of getMe/getChat holds
`owner` = owner_tag(token) (the first 12 hex digits of the token's SHA-256).
getChat returns the chat's current title, which setChatTitle changes
(per token and chat); getChatMember a status that banChatMember and
unbanChatMember change, and an epoch that leaveChat sets (to its `marker`
parameter, which tests add): a stale cached
answer shows an old title, status or epoch.

Faults (fault(method, kind, count=None, **args); method "*" = any; count
None = until cleared; the first matching rule wins):
  delay        seconds=S: answer after S seconds
  late         seconds=S: answer after S seconds what was true when the call
               came (a read that crosses a write)
  spike        every=K, seconds=S: every K-th call waits S seconds
  status       status=N [html=True]: a Bot API error body (or an HTML page)
  reset_before the connection is reset before any answer byte
  reset_mid    the head and half the body, then a reset
  truncate     Content-Length N, fewer bytes, then a clean close (FIN)
  oversize     bytes=N: a 200 answer of N bytes (streamed in 64 KiB pieces)
  invalid_json body=B: status 200, a body that is not the Bot API's JSON
  429          retry_after=S or None (None: neither header nor parameter)
  stall        never answers (the connection stays open until closed)
  pad          bytes=N: the usual answer, its result given a `description`
               of N bytes (an answer large enough for the tier to compress)

Large downloads: GET /file/bot<token>/big/<bytes>[?delay=<s per 64 KiB>].
A generic JSON API under /api/...: {"path", "owner": owner_tag(x-api-key
header, else the `key` query parameter), "lang"} (method "api").
Uploads (multipart) are read to the end and recorded (uploads()).

Thread-safety: every public method may be called from any thread.
"""
import asyncio
import hashlib
import json
import socket
import struct
import threading
import time
import urllib.parse


def owner_tag(token):
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class _Rule:
    def __init__(self, method, kind, count, args):
        self.method = method
        self.kind = kind
        self.count = count
        self.args = args
        self.seen = 0


class FakeUpstream:
    def __init__(self, port=0):
        self._lock = threading.Lock()
        self._rules = []
        self._calls = {}
        self._log = []  # (method, token, params) of every call, in order
        self._times = []  # (monotonic time, method, params) of every call, in order
        self._titles = {}
        self._commands = {}
        self._members = {}  # (token, chat, user) -> status, changed by ban/unban
        self._left = {}     # (token, chat) -> the `marker` parameter of the last leaveChat
        self._uploads = []
        self._message_id = 0
        self._writers = set()
        self._server = None
        self._active = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait()
        self.port = self._call(self._listen(port))

    # ---- control (any thread) ----
    def fault(self, method, kind, count=None, **args):
        with self._lock:
            self._rules.append(_Rule(method, kind, count, args))

    def clear_faults(self):
        with self._lock:
            self._rules = []

    def calls(self, method=None):
        with self._lock:
            if method is None:
                return sum(self._calls.values())
            return self._calls.get(method, 0)

    def log(self):
        with self._lock:
            return list(self._log)

    def times(self, method):
        """(time.monotonic() of arrival, params) of every call of `method`, in order."""
        with self._lock:
            return [(t, p) for t, m, p in self._times if m == method]

    def reset_log(self):
        with self._lock:
            self._log = []
            self._times = []
            self._calls = {}

    def title(self, token, chat):
        with self._lock:
            return self._titles.get((token, str(chat)))

    def member(self, token, chat, user):
        """(status, epoch) getChatMember answers now."""
        with self._lock:
            return (self._members.get((token, str(chat), str(user)), "member"),
                    self._left.get((token, str(chat)), "0"))

    def uploads(self):
        with self._lock:
            return list(self._uploads)

    def active(self):
        """Requests being answered now (stalled ones included)."""
        with self._lock:
            return self._active

    def down(self):
        """Stops listening and closes every connection: connections are refused."""
        self._call(self._down())

    def up(self):
        """Listens again on the same port."""
        self._call(self._listen(self.port))

    def close(self):
        try:
            self._call(self._down())
            self._call(self._cancel_all())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    # ---- loop side ----
    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        self._loop.run_forever()

    def _call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _listen(self, port):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
        self._server = await asyncio.start_server(self._session, sock=sock, limit=1 << 20)
        return sock.getsockname()[1]

    async def _down(self):
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            _reset(w)
        self._writers.clear()

    async def _cancel_all(self):
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _take_rule(self, method):
        with self._lock:
            for r in self._rules:
                if r.method not in ("*", method):
                    continue
                if r.count is not None and r.count <= 0:
                    continue
                if r.count is not None:
                    r.count -= 1
                r.seen += 1
                return r.kind, dict(r.args), r.seen
        return None, None, 0

    async def _session(self, reader, writer):
        self._writers.add(writer)
        sock = writer.get_extra_info("socket")
        if sock is not None:  # no Nagle delay between an answer's head and body
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method_line = lines[0].split(" ")
                if len(method_line) < 3:
                    return
                verb, target = method_line[0], method_line[1]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body, complete = await _read_body(reader, headers)
                if not complete and not headers.get("content-type", "").startswith("multipart/"):
                    return
                keep = await self._answer(reader, writer, verb, target, headers, body, complete)
                if not keep:
                    return
        finally:
            self._writers.discard(writer)
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    async def _answer(self, reader, writer, verb, target, headers, body, complete):
        path, _, query = target.partition("?")
        path = urllib.parse.unquote(path)
        file = path.startswith("/file/bot")
        rest = path[len("/file/bot"):] if file else path[len("/bot"):] if path.startswith("/bot") else None
        if rest is None:
            if path.startswith("/api/"):
                return await self._generic(writer, path, query, headers)
            return await _send(writer, 404, _err(404, "Not Found"))
        token, _, method = rest.partition("/")
        counted = "file" if file else method
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        ctype = headers.get("content-type", "")
        if ctype.startswith("application/json") and body:
            try:
                obj = json.loads(body)
                if isinstance(obj, dict):
                    for k, v in obj.items():
                        params[k] = v if isinstance(v, str) else json.dumps(v)
            except ValueError:
                pass
        elif ctype.startswith("application/x-www-form-urlencoded"):
            params.update(urllib.parse.parse_qsl(body.decode("latin-1"), keep_blank_values=True))
        with self._lock:
            self._calls[counted] = self._calls.get(counted, 0) + 1
            self._log.append((counted, token, params))
            self._times.append((time.monotonic(), counted, params))
            self._active += 1
        try:
            kind, args, seen = self._take_rule(counted)
            if ctype.startswith("multipart/"):
                with self._lock:
                    self._uploads.append({"method": method, "bytes": len(body), "complete": complete})
                if not complete:
                    return False
            if kind == "delay":
                await asyncio.sleep(args.get("seconds", 1))
                kind = None
            elif kind == "late":
                answer = self._bot_api(file, token, method, params, verb)
                await asyncio.sleep(args.get("seconds", 1))
                return await _send(writer, *answer, head_only=verb == "HEAD")
            elif kind == "spike":
                if seen % args.get("every", 5) == 0:
                    await asyncio.sleep(args.get("seconds", 1))
                kind = None
            if kind == "stall":
                try:  # until the client gives up and closes the connection
                    await asyncio.wait_for(reader.read(), 3600)
                except (asyncio.TimeoutError, ConnectionError):
                    pass
                return False
            if kind == "reset_before":
                _reset(writer)
                return False
            if kind == "status":
                if args.get("html"):
                    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
                    return await _send(writer, args["status"], page, "text/html")
                return await _send(writer, args["status"], _err(args["status"], "Internal Server Error"))
            if kind == "429":
                ra = args.get("retry_after")
                extra = {} if ra is None else {"Retry-After": str(ra)}
                return await _send(writer, 429, _err(429, "Too Many Requests: retry later", ra), extra=extra)
            if kind == "invalid_json":
                return await _send(writer, 200, args.get("body", b"<html>not json</html>"))
            if kind == "oversize":
                n = args.get("bytes", 4 << 20)
                writer.write(_head(200, n, "application/json"))
                piece = b"x" * 65536
                sent = 0
                while sent < n:
                    chunk = piece[: min(65536, n - sent)]
                    writer.write(chunk)
                    sent += len(chunk)
                    try:
                        await writer.drain()
                    except ConnectionError:
                        return False
                return True
            status, payload, ctype_out = self._bot_api(file, token, method, params, verb)
            if kind == "pad":
                obj = json.loads(payload)
                if isinstance(obj.get("result"), dict):
                    obj["result"]["description"] = "p" * args.get("bytes", 4096)
                    payload = json.dumps(obj, separators=(",", ":")).encode()
            if kind in ("reset_mid", "truncate"):
                writer.write(_head(status, len(payload), ctype_out))
                writer.write(payload[: max(1, len(payload) // 2)])
                try:
                    await writer.drain()
                except ConnectionError:
                    return False
                if kind == "reset_mid":
                    _reset(writer)
                else:
                    writer.close()
                return False
            if file and method.startswith("big/"):
                return await self._big(writer, method, params)
            return await _send(writer, status, payload, ctype_out, head_only=verb == "HEAD")
        finally:
            with self._lock:
                self._active -= 1

    async def _generic(self, writer, path, query, headers):
        """A generic JSON API: the answer names the path and who asked (x-api-key or ?key=)."""
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        who = headers.get("x-api-key", params.get("key", ""))
        with self._lock:
            self._calls["api"] = self._calls.get("api", 0) + 1
            self._log.append(("api", who, params))
        kind, args, _ = self._take_rule("api")
        if kind == "status":
            return await _send(writer, args["status"], b'{"error":"upstream failed"}')
        body = json.dumps({"path": path, "owner": owner_tag(who), "lang": params.get("lang", "")})
        return await _send(writer, 200, body.encode())

    async def _big(self, writer, method, params):
        try:
            n = int(method[4:])
        except ValueError:
            return await _send(writer, 404, _err(404, "Not Found"))
        delay = float(params.get("delay", "0"))
        writer.write(_head(200, n, "application/octet-stream"))
        piece = bytes(range(256)) * 256
        sent = 0
        while sent < n:
            chunk = piece[: min(len(piece), n - sent)]
            writer.write(chunk)
            sent += len(chunk)
            try:
                await writer.drain()
            except ConnectionError:
                return False
            if delay:
                await asyncio.sleep(delay)
        return True

    def _bot_api(self, file, token, method, params, verb):
        tag = owner_tag(token)
        if file:
            return 200, ("FAKEFILE:%s:%s" % (tag, method)).encode(), "application/octet-stream"
        bot_id, colon, _ = token.partition(":")
        if not colon or not bot_id.isdigit():
            return 401, _err(401, "Unauthorized"), "application/json"
        chat = params.get("chat_id", "")
        with self._lock:
            if method == "getMe":
                result = {"id": int(bot_id), "is_bot": True, "first_name": "Fake", "owner": tag}
            elif method == "getChat":
                if not chat:
                    return 400, _err(400, "Bad Request: chat_id is empty"), "application/json"
                title = self._titles.get((token, chat), "Chat " + chat)
                result = {"id": _num(chat), "type": "supergroup", "title": title, "owner": tag}
            elif method == "setChatTitle":
                self._titles[(token, chat)] = params.get("title", "")
                result = True
            elif method == "getChatMember":
                user = params.get("user_id", "")
                status = self._members.get((token, chat, user), "member")
                result = {"user": {"id": _num(user), "is_bot": False, "first_name": "U"},
                          "status": status, "chat": _num(chat), "epoch": self._left.get((token, chat), "0"),
                          "owner": tag}
            elif method in ("banChatMember", "unbanChatMember"):
                user = params.get("user_id", "")
                self._members[(token, chat, user)] = "kicked" if method == "banChatMember" else "left"
                result = True
            elif method == "leaveChat":
                self._left[(token, chat)] = params.get("marker", "")
                result = True
            elif method == "getChatMemberCount":
                result = 42
            elif method == "getFile":
                fid = params.get("file_id", "")
                result = {"file_id": fid, "file_unique_id": "u" + fid, "file_size": 16,
                          "file_path": "documents/%s.txt" % fid, "owner": tag}
            elif method == "getMyCommands":
                result = json.loads(self._commands.get(token, "[]"))
            elif method == "setMyCommands":
                self._commands[token] = params.get("commands", "[]")
                result = True
            elif method == "getUpdates":
                result = []
            elif method.startswith("send"):
                if not chat:
                    return 400, _err(400, "Bad Request: chat_id is empty"), "application/json"
                self._message_id += 1
                result = {"message_id": self._message_id, "chat": {"id": _num(chat), "type": "private"},
                          "date": 1700000000, "text": params.get("text", ""), "owner": tag}
            else:
                result = True
        return 200, json.dumps({"ok": True, "result": result}, separators=(",", ":")).encode(), \
            "application/json"


def _num(text):
    try:
        return int(text)
    except ValueError:
        return text


def _err(code, description, retry_after=None):
    obj = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        obj["parameters"] = {"retry_after": retry_after}
    return json.dumps(obj).encode()


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable"}


def _head(status, length, ctype, extra=None):
    lines = ["HTTP/1.1 %d %s" % (status, _REASONS.get(status, "Status")),
             "Content-Type: " + ctype, "Content-Length: %d" % length, "Server: fake-upstream"]
    for k, v in (extra or {}).items():
        lines.append("%s: %s" % (k, v))
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _send(writer, status, payload, ctype="application/json", extra=None, head_only=False):
    writer.write(_head(status, len(payload), ctype, extra) + (b"" if head_only else payload))
    try:
        await writer.drain()
    except ConnectionError:
        return False
    return True


def _reset(writer):
    """Closes with a TCP reset (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


async def _read_body(reader, headers):
    """The request body, and whether it arrived whole."""
    try:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    return bytes(out), True
                out += await reader.readexactly(size)
                await reader.readexactly(2)
        n = int(headers.get("content-length", "0") or 0)
        if n == 0:
            return b"", True
        data = bytearray()
        while len(data) < n:
            piece = await reader.read(min(1 << 16, n - len(data)))
            if not piece:
                return bytes(data), False
            data += piece
        return bytes(data), True
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        return b"", False


def wait_for(predicate, timeout, interval=0.02):
    """Polls `predicate` until true or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
