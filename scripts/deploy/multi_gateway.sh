#!/bin/sh
# N callcache gateways behind nginx, sharing one redis-server, on this host
# (docs/deployment.md). For a trial run or as a template for a real one:
#
#   scripts/deploy/multi_gateway.sh [N]     (default 3)
#
# Environment: CALLCACHE (the binary, default build/release/src/tools/callcache),
# UPSTREAM (default https://api.telegram.org), LISTEN (nginx, default
# 127.0.0.1:8080), FIRST_PORT (gateways at FIRST_PORT.., admin at +100;
# default 18081), REDIS_URL (use an existing Redis instead of starting one),
# REDIS_PORT (the one started, default 6390), RUN_DIR (default
# ./data/multi). Stops everything on Ctrl-C.
set -eu
N=${1:-3}
CALLCACHE=${CALLCACHE:-build/release/src/tools/callcache}
UPSTREAM=${UPSTREAM:-https://api.telegram.org}
LISTEN=${LISTEN:-127.0.0.1:8080}
FIRST_PORT=${FIRST_PORT:-18081}
REDIS_PORT=${REDIS_PORT:-6390}
RUN_DIR=${RUN_DIR:-./data/multi}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
PIDS=""
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  [ -f "$RUN_DIR/nginx.pid" ] && kill "$(cat "$RUN_DIR/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [ -z "${REDIS_URL:-}" ]; then
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" &
  PIDS="$PIDS $!"
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
fi

mkdir -p "$RUN_DIR/nginx"
: > "$RUN_DIR/nginx/gateways.inc"
i=0
while [ "$i" -lt "$N" ]; do
  port=$((FIRST_PORT + i))
  "$CALLCACHE" serve --config config/callcache.yaml --listen "127.0.0.1:$port" \
    --admin-listen "127.0.0.1:$((port + 100))" --upstream "$UPSTREAM" \
    --storage redis --redis-url "$REDIS_URL" --access-log off \
    2>"$RUN_DIR/gateway-$i.log" &
  PIDS="$PIDS $!"
  echo "server 127.0.0.1:$port max_fails=1 fail_timeout=2s;" >> "$RUN_DIR/nginx/gateways.inc"
  i=$((i + 1))
done

sed -e "s|@PREFIX@|$RUN_DIR/nginx|g" -e "s|@LISTEN@|$LISTEN|" \
    "$HERE/nginx.conf.in" > "$RUN_DIR/nginx/nginx.conf"
nginx -p "$RUN_DIR/nginx" -c "$RUN_DIR/nginx/nginx.conf" -g "daemon off;" &
PIDS="$PIDS $!"
echo "callcache: $N gateways behind http://$LISTEN (Redis $REDIS_URL); logs in $RUN_DIR"
wait
