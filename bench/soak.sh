#!/usr/bin/env bash
# Soak: `callcache serve` with the SQLite tier under a mixed Bot API load at
# half its measured maximum for a long time (30 minutes by default), in
# front of the fake upstream, sampling every 10 s: resident memory, open
# file descriptors, requests/s, p50/p99 latency and errors. Not run in CI.
#
#   bench/soak.sh [BUILD_DIR] [OUT_DIR]     (defaults: build/release, soak-out)
# Env: MINUTES (30), SAMPLE (10: seconds per sample), CONNECTIONS (64),
#      MAX_SECONDS (15: the measurement of the maximum), THREADS (2).
#
# The load (bench/soak/mixed.lua): 80% getChat over 10 bots x 10,000 chats,
# 10% getChatMember, 5% setChatTitle (invalidations, SQLite erases), 5%
# sendMessage (paced). The maximum is measured first with no delay between
# requests; the soak then runs wrk in back-to-back SAMPLE-second runs with a
# per-connection delay chosen so that the rate is about half of it (each
# run's latency and errors are that window's).
#
# Output: OUT_DIR/soak.csv (one row per sample), OUT_DIR/soak.svg (chart,
# gnuplot), OUT_DIR/summary.md (what docs/reliability.md quotes). Run it
# with `nice` on a shared machine: everything is on loopback and CPU-bound.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build/release}
OUT=${2:-$ROOT/soak-out}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
MINUTES=${MINUTES:-30}
SAMPLE=${SAMPLE:-10}
CONNECTIONS=${CONNECTIONS:-64}
MAX_SECONDS=${MAX_SECONDS:-15}
THREADS=${THREADS:-2}
FAKE_BIN=$(find "$BUILD" -name callcache_fake_telegram_server -type f | head -1)
SERVE_BIN=$(find "$BUILD" -name callcache_serve_dev -type f | head -1)
[[ -x $FAKE_BIN && -x $SERVE_BIN ]] || {
  echo "build callcache_fake_telegram_server and callcache_serve_dev in $BUILD first" >&2; exit 2; }
command -v wrk >/dev/null && command -v gnuplot >/dev/null || { echo "needs wrk and gnuplot" >&2; exit 2; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

TMP=$(mktemp -d /tmp/callcache-soak-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not up" >&2; exit 1; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
ms() {  # wrk latency text (e.g. 1.23ms, 850.00us, 1.02s) -> milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0;
                         else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

FAKE_PORT=$(free_port)
"$FAKE_BIN" --port "$FAKE_PORT" --threads 1 > "$TMP/fake.out" &
PIDS+=($!)
wait_port "$FAKE_PORT"

GW_PORT=$(free_port); GW_ADMIN=$(free_port)
cat > "$TMP/gw.yaml" <<YAML
server: {listen: 127.0.0.1:$GW_PORT, threads: $THREADS, access_log: false, log_level: warn}
admin: {listen: 127.0.0.1:$GW_ADMIN}
gateway: {upstream: "http://127.0.0.1:$FAKE_PORT"}
storage: {l2: sqlite, path: $TMP/soak.sqlite3}
YAML
"$SERVE_BIN" --config "$TMP/gw.yaml" > "$TMP/gw.out" 2>&1 &
GW_PID=$!; PIDS+=($GW_PID)
wait_port "$GW_PORT"
URL=http://127.0.0.1:$GW_PORT

# run_wrk SECONDS DELAY_MS SEED -> wrk's report in $TMP/wrk.txt
run_wrk() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1"s --timeout 10s --latency -s "$ROOT/bench/soak/mixed.lua" \
    "$URL" -- "$2" "$3" > "$TMP/wrk.txt" 2>&1 || true
}
# field PATTERN N: the Nth word of wrk's first line matching PATTERN ("" if none)
field() { { grep -E "$1" "$TMP/wrk.txt" || true; } | head -1 | awk "{print \$$2}"; }

echo "== warm-up and maximum ($MAX_SECONDS s, no delay)"
run_wrk 5 0 1
run_wrk "$MAX_SECONDS" 0 2
MAX_RPS=$(field 'Requests/sec' 2)
MAX_RPS=${MAX_RPS%.*}
[[ -n $MAX_RPS && $MAX_RPS -gt 0 ]] || { cat "$TMP/wrk.txt"; echo "no maximum measured" >&2; exit 1; }
TARGET=$((MAX_RPS / 2))
# connections x 1000 / delay = target (the latency adds a little on top).
DELAY=$(( CONNECTIONS * 1000 / TARGET ))
(( DELAY >= 1 )) || DELAY=1
echo "maximum $MAX_RPS req/s; soak target $TARGET req/s: $CONNECTIONS connections, ${DELAY} ms between requests"

CSV=$OUT/soak.csv
echo "t_s,rss_mib,fds,req_s,p50_ms,p99_ms,errors,non_2xx" > "$CSV"
START=$(date +%s)
END=$((START + MINUTES * 60))
seed=10
while (( $(date +%s) < END )); do
  seed=$((seed + 1))
  run_wrk "$SAMPLE" "$DELAY" "$seed"
  now=$(( $(date +%s) - START ))
  rps=$(field 'Requests/sec' 2)
  p50=$(ms "$(field '^ +50%' 2)")
  p99=$(ms "$(field '^ +99%' 2)")
  errs=$({ grep -E 'Socket errors' "$TMP/wrk.txt" || true; } | sed -E 's/[^0-9 ]//g' | awk '{s=0; for (i=1;i<=NF;i++) s+=$i; print s}')
  non2xx=$(field 'Non-2xx' 5)
  kill -0 "$GW_PID" 2>/dev/null || { echo "the gateway died" >&2; cat "$TMP/gw.out" >&2; exit 1; }
  line="$now,$(awk -v k="$(rss_kib "$GW_PID")" 'BEGIN{printf "%.1f", k/1024}'),$(fds "$GW_PID"),${rps:-0},$p50,$p99,${errs:-0},${non2xx:-0}"
  echo "$line" >> "$CSV"
  echo "$line"
done

kill -TERM "$GW_PID"
wait "$GW_PID" && GW_RC=0 || GW_RC=$?

gnuplot <<GP
set terminal svg size 900,640 dynamic font "sans,11" background "white"
set output "$OUT/soak.svg"
set datafile separator ","
set key top left
set multiplot layout 2,1 title "callcache serve soak: mixed load at half the measured maximum ($TARGET of $MAX_RPS req/s), SQLite tier"
set xlabel "time (s)"
set ylabel "MiB / fds"
set y2label "requests/s"
set y2tics
set ytics nomirror
set yrange [0:*]
set y2range [0:*]
plot "$CSV" using 1:2 skip 1 with lines lw 2 title "RSS (MiB)", \
     "$CSV" using 1:3 skip 1 with lines lw 2 title "open fds", \
     "$CSV" using 1:4 skip 1 axes x1y2 with lines title "requests/s (right)"
set ylabel "latency (ms)"
unset y2label
unset y2tics
plot "$CSV" using 1:5 skip 1 with lines lw 2 title "p50", \
     "$CSV" using 1:6 skip 1 with lines lw 2 title "p99", \
     "$CSV" using 1:(\$7+\$8) skip 1 axes x1y1 with impulses title "errors + non-2xx"
unset multiplot
GP

/usr/bin/python3 - "$CSV" "$MAX_RPS" "$TARGET" "$MINUTES" "$GW_RC" > "$OUT/summary.md" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
n = len(rows)
end = float(rows[-1]["t_s"])
warmup = min(300.0, end / 5)  # caches fill first: five minutes, or a fifth of a short run
warm = [r for r in rows if float(r["t_s"]) >= warmup] or rows
def col(rs, k): return [float(r[k]) for r in rs]
def span(rs, k): v = col(rs, k); return "%.1f-%.1f" % (min(v), max(v))
first = warm[: max(1, len(warm) // 10)]
last = warm[-max(1, len(warm) // 10):]
avg = lambda v: sum(v) / len(v)
print("| | value |")
print("|---|---|")
print("| maximum (no delay) / soak target | %s / %s req/s |" % (sys.argv[2], sys.argv[3]))
print("| duration, samples | %s min, %d samples of 10 s |" % (sys.argv[4], n))
print("| requests/s (mean over the soak) | %.0f |" % avg(col(rows, "req_s")))
print("| RSS after the first %.0f s (min-max) | %s MiB |" % (warmup, span(warm, "rss_mib")))
print("| RSS, first vs last tenth after warm-up (mean) | %.1f vs %.1f MiB |" % (avg(col(first, "rss_mib")), avg(col(last, "rss_mib"))))
print("| open fds (min-max) | %s |" % span(rows, "fds"))
print("| p50 / p99 per window, median over the soak | %.2f / %.2f ms |" % (
    sorted(col(rows, "p50_ms"))[n // 2], sorted(col(rows, "p99_ms"))[n // 2]))
print("| p99, worst window | %.2f ms |" % max(col(rows, "p99_ms")))
print("| socket errors + non-2xx answers, total | %d |" % sum(int(r["errors"]) + int(r["non_2xx"]) for r in rows))
print("| gateway exit status on SIGTERM | %s |" % sys.argv[5])
PY
cat "$OUT/summary.md"
echo "CSV: $CSV; chart: $OUT/soak.svg"
