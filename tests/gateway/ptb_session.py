#!/usr/bin/env python3
"""A real Bot API client (Debian's python3-python-telegram-bot, v13) drives a
scripted session through `callcache serve` in front of the fake upstream.

Run by ctest (gateway_ptb_session_test):
  ptb_session.py --serve <callcache_serve_dev> --fake <callcache_fake_telegram_server>
Exits 0 when every step passed; the gateway must also exit 0 on SIGTERM.
"""
import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings

warnings.filterwarnings("ignore")
import telegram  # noqa: E402

TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"


def read_line_matching(proc, pattern, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError("process exited with %s before printing %r" % (proc.returncode, pattern))
            continue
        m = re.search(pattern, line)
        if m:
            return m
    raise RuntimeError("timed out waiting for %r" % pattern)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", required=True)
    ap.add_argument("--fake", required=True)
    args = ap.parse_args()
    procs = []
    try:
        fake = subprocess.Popen([args.fake, "--port", "0"], stdout=subprocess.PIPE, text=True)
        procs.append(fake)
        fake_port = int(read_line_matching(fake, r"listening (\d+)").group(1))
        with tempfile.TemporaryDirectory() as tmp:
            gw = subprocess.Popen(
                [args.serve, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                 "--upstream", "http://127.0.0.1:%d" % fake_port, "--storage", "sqlite",
                 "--sqlite-path", tmp + "/cc.sqlite3", "--access-log", "off", "--threads", "2"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            procs.append(gw)
            m = read_line_matching(gw, r"listening on http://127\.0\.0\.1:(\d+).*admin http://127\.0\.0\.1:(\d+)")
            port, admin_port = int(m.group(1)), int(m.group(2))
            base = "http://127.0.0.1:%d" % port
            bot = telegram.Bot(TOKEN, base_url=base + "/bot", base_file_url=base + "/file/bot")

            me = bot.get_me()
            check(me.id == 123456 and me.is_bot and me.username == "fake_123456_bot", "getMe")
            chat = bot.get_chat(-100555)
            check(chat.id == -100555 and chat.title == "Chat -100555", "getChat")
            chat2 = bot.get_chat(-100555)
            check(chat2.title == chat.title, "getChat again (cached)")
            # Method names are case-insensitive at Telegram: the client's own
            # request layer with other spellings reaches the same method and
            # the same cache entry (getChat still goes upstream twice in all).
            raw = bot.request.post(bot.base_url + "/GETCHAT", {"chat_id": -100555})
            check(raw["title"] == chat.title, "GETCHAT answers from getChat's cache entry")
            raw = bot.request.post(bot.base_url + "/getchat", {"chat_id": -100555})
            check(raw["title"] == chat.title, "getchat too")
            sent = bot.request.post(bot.base_url + "/SendMessage", {"chat_id": 42, "text": "mixed"})
            check(sent["text"] == "mixed", "SendMessage is sendMessage")
            member = bot.get_chat_member(-100555, 42)
            check(member.status == "member" and member.user.id == 42, "getChatMember")
            msg = bot.send_message(42, "hello through callcache")
            check(msg.text == "hello through callcache" and msg.chat.id == 42, "sendMessage")
            check(bot.set_chat_title(-100555, "New title") is True, "setChatTitle")
            chat3 = bot.get_chat(-100555)
            check(chat3.title == "New title", "getChat after setChatTitle is fresh")
            f = bot.get_file("abc")
            check(f.file_path.endswith("documents/abc.txt"), "getFile")
            data = f.download_as_bytearray()
            check(bytes(data) == b"FAKEFILE:documents/abc.txt", "file download through /file/bot")
            check(bot.get_updates(timeout=0) == [], "getUpdates passes through")
            try:
                bot.get_file("")  # the fake answers 400 "file_id is empty"
                check(False, "error answer raises")
            except telegram.error.BadRequest as e:
                check("file_id is empty" in str(e).lower(), "Bot API error relayed: %s" % e)

            metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin_port, timeout=5).read().decode()
            hits = int(re.search(r'callcache_gateway_requests_total\{outcome="hit"\} (\d+)', metrics).group(1))
            check(hits >= 3, "admin /metrics counts %d cache hit(s)" % hits)
            check(TOKEN not in metrics and TOKEN.split(":")[1] not in metrics, "token absent from metrics")
            calls = re.search(r'callcache_gateway_upstream_method_calls_total\{method="getChat",result="ok"\} (\d+)', metrics)
            check(calls and int(calls.group(1)) == 2, "getChat went upstream twice (first read, after the write)")
            check(re.search(r'method="(getchat|GETCHAT|SendMessage)"', metrics) is None,
                  "metrics name methods as the Bot API does, whatever the client's spelling")

            gw.send_signal(signal.SIGTERM)
            rc = gw.wait(timeout=15)
            check(rc == 0, "gateway exits 0 on SIGTERM")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001
        print("FAILED:", e)
        sys.exit(1)
