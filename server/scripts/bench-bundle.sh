#!/bin/sh
# Evidence bundle at fleet scale: a release server takes REPORTS signed reports from HOSTS
# simulated hosts over HTTPS (evidence-loadgen), then `export-bundle` writes every entry into one
# bundle and `evidence-verify` checks it offline; both timed, with their peak RSS.
# Usage: server/scripts/bench-bundle.sh RELEASE_DIR [REPORTS] [HOSTS]
set -eu
BIN=$1 REPORTS=${2:-100000} HOSTS=${3:-1000}
WORK=$(mktemp -d)
trap 'kill $server 2>/dev/null; rm -rf "$WORK"' EXIT
printf 'enroll_burst_per_secret = 100000\nenroll_per_minute_per_secret = 600000\n' >"$WORK/bench.toml"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN/evidence-server" serve --config "$WORK/bench.toml" --listen 127.0.0.1:0 --data-dir "$WORK/d" >"$WORK/out" 2>"$WORK/err" &
server=$!
while ! grep -q listening "$WORK/out"; do sleep 0.2; done
url=$(grep listening "$WORK/out" | awk '{print $3}')
fp=$(grep fingerprint "$WORK/out" | awk '{print $NF}')
token=$(grep "admin token (shown once" "$WORK/out" | awk '{print $NF}')
"$BIN/evidence-loadgen" ingest --url "$url" --fingerprint "$fp" --admin-token "$token" \
    --hosts "$HOSTS" --reports "$REPORTS" --concurrency 64 2>/dev/null
kill $server; wait $server 2>/dev/null || true
/usr/bin/time -f "export: %e s, peak RSS %M KiB" "$BIN/evidence-server" export-bundle \
    --data-dir "$WORK/d" --out "$WORK/bundle.tar" --to 2100-01-01T00:00:00Z
echo "bundle: $(stat -c %s "$WORK/bundle.tar") bytes, $(tar tf "$WORK/bundle.tar" | wc -l) files"
key=$("$BIN/evidence-server" log-key --data-dir "$WORK/d")
/usr/bin/time -f "verify: %e s, peak RSS %M KiB" "$BIN/evidence-verify" "$WORK/bundle.tar" \
    --server-key "$key" | tail -12
