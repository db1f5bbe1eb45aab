#!/usr/bin/env bash
# callcache serve vs nginx (proxy_cache + proxy_cache_lock) in front of the
# same fake Bot API upstream, on loopback, in one run. Prints a Markdown
# report. Bounded: every wrk run has a fixed duration; the memory fill stops
# after MEM_ENTRIES answers or MEM_MAX_SECONDS.
#
#   bench/gateway/run.sh [BUILD_DIR]          (default: build/gateway)
# Env: DURATION (10s), CONNECTIONS (64), THREADS (2: gateway/nginx workers
#      and wrk threads), MEM_ENTRIES (1000000), MEM_MAX_SECONDS (240),
#      SKIP_MEMORY=1 to skip the 1M-entry fill.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build/gateway}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
MEM_ENTRIES=${MEM_ENTRIES:-1000000}
MEM_MAX_SECONDS=${MEM_MAX_SECONDS:-240}
TOKEN="123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi"
FAKE_BIN=$(find "$BUILD" -name callcache_fake_telegram_server -type f | head -1)
SERVE_BIN=$(find "$BUILD" -name callcache_serve_dev -type f | head -1)
[[ -x $FAKE_BIN && -x $SERVE_BIN ]] || {
  echo "build callcache_fake_telegram_server and callcache_serve_dev in $BUILD first" >&2; exit 2; }
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx" >&2; exit 2; }

TMP=$(mktemp -d /tmp/callcache-bench-XXXXXX)
chmod 755 "$TMP"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not up" >&2; exit 1; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# ---- fake upstream --------------------------------------------------------
FAKE_PORT=$(free_port)
"$FAKE_BIN" --port "$FAKE_PORT" --threads 1 > "$TMP/fake.out" &
PIDS+=($!)
wait_port "$FAKE_PORT"

# ---- callcache serve -------------------------------------------------------
GW_PORT=$(free_port); GW_ADMIN=$(free_port)
cat > "$TMP/gw.yaml" <<YAML
server: {listen: 127.0.0.1:$GW_PORT, threads: $THREADS, access_log: false, log_level: warn}
admin: {listen: 127.0.0.1:$GW_ADMIN}
gateway: {upstream: "http://127.0.0.1:$FAKE_PORT"}
storage: {l2: none}
telegram:
  namespaces:
    tg_chat: {max_entries: 2000000, max_bytes: 2GiB}
YAML
"$SERVE_BIN" --config "$TMP/gw.yaml" > "$TMP/gw.out" 2>&1 &
GW_PID=$!; PIDS+=($GW_PID)
wait_port "$GW_PORT"

# ---- nginx (unprivileged, own prefix) ---------------------------------------
NG_PORT=$(free_port)
mkdir -p "$TMP/nginx/cache" "$TMP/nginx/logs"
USER_LINE=""
RUN_AS=()
if [[ $(id -u) = 0 ]]; then
  chown -R nobody "$TMP/nginx"
  RUN_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
cat > "$TMP/nginx/nginx.conf" <<NGINX
worker_processes $THREADS;
error_log $TMP/nginx/logs/error.log warn;
pid $TMP/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  proxy_cache_path $TMP/nginx/cache levels=1:2 keys_zone=tg:50m max_size=1g inactive=10m use_temp_path=off;
  upstream fake { server 127.0.0.1:$FAKE_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NG_PORT;
    location / {
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache tg;
      proxy_cache_key \$request_uri;
      proxy_cache_valid 200 5m;
      proxy_cache_lock on;
      proxy_ignore_headers Cache-Control Expires Set-Cookie;
    }
  }
}
NGINX
"${RUN_AS[@]}" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' 2>"$TMP/nginx/stderr" &
PIDS+=($!)
wait_port "$NG_PORT"

HIT_PATH="/bot$TOKEN/getChat?chat_id=-1001234567890"
for port in "$GW_PORT" "$NG_PORT"; do
  curl -s "http://127.0.0.1:$port$HIT_PATH" > /dev/null
  curl -s "http://127.0.0.1:$port$HIT_PATH" > /dev/null
done

# wrk output → "rps p50 p90 p99" (latencies in ms)
parse_wrk() {
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps=$2 }
    /^ +50%/ { p50=ms($2) } /^ +90%/ { p90=ms($2) } /^ +99%/ { p99=ms($2) }
    /Non-2xx/ { non2xx=$NF }
    END { printf "%s %.3f %.3f %.3f %s\n", rps, p50, p90, p99, (non2xx==""?0:non2xx) }'
}
run_wrk() {  # name port path [extra wrk args...]
  local name=$1 port=$2 path=$3; shift 3
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "http://127.0.0.1:$port$path" > "$TMP/$name.wrk"
  parse_wrk < "$TMP/$name.wrk"
}

echo "## callcache serve vs nginx — cache hits (getChat, $(curl -s "http://127.0.0.1:$GW_PORT$HIT_PATH" | wc -c) B answer)"
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, loopback; both servers $THREADS worker threads/processes; $(nproc) CPUs shared with wrk and the fake upstream."
echo
echo "| run | server | requests/s | p50 ms | p90 ms | p99 ms | non-2xx |"
echo "|---|---|---:|---:|---:|---:|---:|"
for round in 1 2; do
  for s in gateway nginx; do
    port=$GW_PORT; [[ $s = nginx ]] && port=$NG_PORT
    read -r rps p50 p90 p99 bad < <(run_wrk "hit-$s-$round" "$port" "$HIT_PATH")
    echo "| $round | $s | $rps | $p50 | $p90 | $p99 | $bad |"
  done
done
UPSTREAM_GETCHAT=$(curl -s "http://127.0.0.1:$GW_ADMIN/metrics" | awk -F' ' '/upstream_method_calls_total\{method="getChat",result="ok"\}/ {print $2}')
echo
echo "Upstream getChat calls made by the gateway during the hit runs: ${UPSTREAM_GETCHAT:-?}"

# ---- added latency on a miss: one connection, a new chat id per request ------
echo
echo "## Added latency on a miss (1 connection, every request a new key)"
echo
echo "| path | requests/s | p50 ms | p90 ms | p99 ms |"
echo "|---|---:|---:|---:|---:|"
MISS_PATH="/"
read -r drps d50 d90 d99 _ < <(CC_TOKEN=$TOKEN CC_OFFSET=1 wrk -t1 -c1 -d5s --latency -s "$ROOT/bench/gateway/miss.lua" "http://127.0.0.1:$FAKE_PORT/" | parse_wrk)
read -r grps g50 g90 g99 _ < <(CC_TOKEN=$TOKEN CC_OFFSET=500000000 wrk -t1 -c1 -d5s --latency -s "$ROOT/bench/gateway/miss.lua" "http://127.0.0.1:$GW_PORT/" | parse_wrk)
echo "| direct to the fake upstream | $drps | $d50 | $d90 | $d99 |"
echo "| through callcache (miss) | $grps | $g50 | $g90 | $g99 |"
awk -v a="$g50" -v b="$d50" -v c="$g99" -v d="$d99" 'BEGIN { printf "\nAdded by the gateway: p50 %+.3f ms, p99 %+.3f ms\n", a-b, c-d }'

# ---- memory with 1,000,000 cached answers --------------------------------------
if [[ ${SKIP_MEMORY:-0} != 1 ]]; then
  echo
  echo "## Memory with $MEM_ENTRIES cached answers"
  before=$(rss_kb "$GW_PID")
  per_thread=$(( (MEM_ENTRIES + THREADS - 1) / THREADS ))
  CC_TOKEN=$TOKEN CC_OFFSET=1000000000 CC_LIMIT=$per_thread \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${MEM_MAX_SECONDS}s" -s "$ROOT/bench/gateway/miss.lua" \
    "http://127.0.0.1:$GW_PORT/" > "$TMP/fill.wrk"
  sleep 1
  after=$(rss_kb "$GW_PID")
  entries=$(curl -s "http://127.0.0.1:$GW_ADMIN/metrics" | awk '/^callcache_entries\{namespace="tg_chat"/ {print $2}')
  bytes=$(curl -s "http://127.0.0.1:$GW_ADMIN/metrics" | awk '/^callcache_bytes\{namespace="tg_chat"/ {print $2}')
  echo
  echo "| entries in tg_chat | payload bytes | RSS before | RSS after | RSS per entry |"
  echo "|---:|---:|---:|---:|---:|"
  awk -v e="${entries:-0}" -v b="${bytes:-0}" -v x="$before" -v y="$after" 'BEGIN {
    per = (e > 0) ? (y - x) * 1024 / e : 0;
    printf "| %d | %d | %.1f MiB | %.1f MiB | %.0f B |\n", e, b, x/1024, y/1024, per }'
  echo
  echo "(fill: $(grep -E 'requests in' "$TMP/fill.wrk" | sed 's/^ *//'))"
fi
