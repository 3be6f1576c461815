#!/bin/sh
# Server benchmarks for BENCHMARKS.md "## Server ingest": ingest throughput flat out, p99 at
# 1,000 reports/s, the fleet snapshot for 100,000 hosts (in-process with 40 checks each, and
# over HTTPS on a populated store), and server RSS at 100,000 hosts.
# Usage: server/scripts/bench-server.sh   (from the workspace root; needs ~3 GB in $TMPDIR)
set -eu
: "${CARGO_TARGET_DIR:=target}"
cargo build --release -p evidence-server -p evidence-loadgen >/dev/null
BIN="$CARGO_TARGET_DIR/release"
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load $(cut -d' ' -f1-3 /proc/loadavg)"

# The load generator enrolls its 200 hosts with one secret at once: past the default
# per-secret enrollment rate (a burst of 100, then 10/s), which the benchmark does not measure.
printf 'enroll_burst_per_secret = 100000\nenroll_per_minute_per_secret = 600000\n' >"$WORK/bench.toml"

start_server() { # data dir
    "$BIN/evidence-server" serve --config "$WORK/bench.toml" --listen 127.0.0.1:0 --data-dir "$1" >"$WORK/out" 2>"$WORK/err" &
    SERVER=$!
    while ! grep -q listening "$WORK/out"; do sleep 0.2; done
    URL=$(grep listening "$WORK/out" | awk '{print $3}')
    FP=$(grep fingerprint "$WORK/out" | awk '{print $NF}')
    TOKEN=$(grep "admin token" "$WORK/out" | awk '{print $NF}')
}

start_server "$WORK/ingest"
echo "== ingest, flat out (200 hosts, 64 keep-alive connections, ~6 KB signed reports)"
"$BIN/evidence-loadgen" ingest --url "$URL" --fingerprint "$FP" --admin-token "$TOKEN" \
    --hosts 200 --reports 40000 --concurrency 64 2>/dev/null
echo "== ingest at 1,000 reports/s"
"$BIN/evidence-loadgen" ingest --url "$URL" --fingerprint "$FP" --admin-token "$TOKEN" \
    --hosts 200 --reports 30000 --concurrency 64 --rate 1000 2>/dev/null
grep -E 'VmHWM' "/proc/$SERVER/status" | sed 's/^/server after ingest: /'
kill $SERVER; wait $SERVER 2>/dev/null || true

echo "== snapshot in-process, 100,000 hosts x 40 checks"
"$BIN/evidence-loadgen" snapshot-bench --hosts 100000 --checks 40 --rounds 7

echo "== 100,000 hosts in the store (one evaluated full report each)"
"$BIN/evidence-loadgen" populate --data-dir "$WORK/fleet" --hosts 100000 2>&1 | tail -1
start_server "$WORK/fleet"
grep -E 'VmRSS' "/proc/$SERVER/status" | sed 's/^/server after start: /'
for i in 1 2 3 4 5 6 7; do
    curl -sk -o /dev/null -w "GET /v1/snapshot %{http_code} %{time_total}s\n" -H "Authorization: Bearer $TOKEN" "$URL/v1/snapshot"
done
curl -sk -o /dev/null -w "GET /v1/snapshot?at=<today> %{http_code} %{time_total}s\n" -H "Authorization: Bearer $TOKEN" "$URL/v1/snapshot?at=$(date -u +%Y-%m-%d)"
grep -E 'VmRSS|VmHWM' "/proc/$SERVER/status" | sed 's/^/server: /'
