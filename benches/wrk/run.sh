#!/usr/bin/env bash
# Describe and durable Update under wrk, a widely used HTTP load generator,
# against the release server on a fresh temp data dir (127.0.0.1 only;
# the server is stopped at the end).
#
#   bash benches/wrk/run.sh            # needs wrk (Debian: apt-get install wrk)
#
# WRK_SECONDS (5), WRK_THREADS (2), WRK_DESCRIBE_CONCURRENCY (1 16 64),
# WRK_UPDATE_CONCURRENCY (1 16 64), WRK_ASSOCIATIONS (1024).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${WRK_SECONDS:-5}
threads=${WRK_THREADS:-2}
command -v wrk >/dev/null || { echo "wrk is not installed (Debian: apt-get install wrk)" >&2; exit 1; }

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

RUST_LOG=warn "$root/target/release/pod-identity-store" --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/out" &
server=$!
for _ in $(seq 100); do
  base=$(sed -n 's/^pod-identity-store listening on //p' "$work/out")
  [ -n "$base" ] && break
  sleep 0.1
done
[ -n "$base" ] || { echo "the server did not start" >&2; exit 1; }
python3 "$here/seed.py" "$base" "${WRK_ASSOCIATIONS:-1024}" "$work/ids.lua"
export WRK_DIR=$here WRK_IDS=$work/ids.lua

fail() { echo "$*" >&2; exit 1; }
# The group commit's counters from one scrape (each costs the server a walk
# over its tokens): "flushes writes_flushed".
commit_counters() {
  local page
  page=$(curl -sf "$base/metrics") || fail "could not read $base/metrics"
  awk '$1 == "pod_identity_store_flushes_total" { f = $2 }
       $1 == "pod_identity_store_writes_flushed_total" { w = $2 }
       END { print f, w }' <<<"$page"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
ticks_per_s=$(getconf CLK_TCK)

echo "wrk: $seconds s per measurement, $threads threads, $(nproc) cores, commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
printf '%-9s %5s %9s %8s %8s %9s %7s %9s %10s %11s\n' operation conc req/s "p50 ms" "p99 ms" "p99.9 ms" errors wr/flush "srv cores" "µs srv CPU"
run() {
  local op=$1 conc=$2
  local counters flushes0 writes0 flushes1 writes1 cpu0 cpu out line
  counters=$(commit_counters)
  read -r flushes0 writes0 <<<"$counters"
  cpu0=$(cpu_ticks)
  out=$(wrk -t"$(( threads < conc ? threads : conc ))" -c"$conc" -d"${seconds}s" -s "$here/$op.lua" "$base") \
    || fail "wrk failed for $op at $conc connections"
  # Before the scrape below, which costs the server CPU of its own.
  cpu=$(( $(cpu_ticks) - cpu0 ))
  line=$(grep '^RESULT' <<<"$out") || fail "wrk printed no result for $op at $conc connections: $out"
  counters=$(commit_counters)
  read -r flushes1 writes1 <<<"$counters"
  local flushes=$(( flushes1 - flushes0 )) writes=$(( writes1 - writes0 ))
  local r_requests r_seconds r_rps r_p50_ms r_p99_ms r_p999_ms r_non2xx r_socket_errors
  eval "${line#RESULT }"  # r_requests= r_rps= ... from common.lua's done()
  [ "$r_requests" -gt 0 ] || fail "no request completed for $op at $conc connections"
  local per_flush=-
  [ "$op" = update ] && per_flush=$(awk -v w="$writes" -v f="$flushes" 'BEGIN { printf "%.1f", w / (f > 0 ? f : 1) }')
  awk -v op="$op" -v c="$conc" -v rps="$r_rps" -v p50="$r_p50_ms" -v p99="$r_p99_ms" -v p999="$r_p999_ms" \
      -v err=$(( r_non2xx + r_socket_errors )) -v pf="$per_flush" -v cpu="$cpu" -v hz="$ticks_per_s" -v s="$r_seconds" -v n="$r_requests" \
      'BEGIN { printf "%-9s %5d %9d %8.3f %8.3f %9.3f %7d %9s %10.2f %11.1f\n", op, c, rps, p50, p99, p999, err, pf, cpu / hz / s, cpu / hz / n * 1e6 }'
}
for c in ${WRK_DESCRIBE_CONCURRENCY-1 16 64}; do run describe "$c"; done
for c in ${WRK_UPDATE_CONCURRENCY-1 16 64}; do run update "$c"; done
