#!/bin/sh
# Side by side: the server ingest and snapshot benchmarks of bench-server.sh for two release
# builds, alternated, so a noisy shared machine affects both alike. Each directory holds a
# release build's evidence-server and evidence-loadgen (build the older one from a worktree:
# `git worktree add /tmp/old REV && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build
# --release --bins)`).
# Usage: server/scripts/bench-ab.sh OLD_RELEASE_DIR NEW_RELEASE_DIR [ROUNDS]
set -u
OLD=$1 NEW=$2 ROUNDS=${3:-3}
LOADGEN="$NEW/evidence-loadgen"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
printf 'enroll_burst_per_secret = 100000\nenroll_per_minute_per_secret = 600000\n' >"$WORK/bench.toml"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

cpu_ticks() { # pid: its user + system time in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}

ingest() { # label release-dir
    rm -rf "$WORK/d"
    "$2/evidence-server" serve --config "$WORK/bench.toml" --listen 127.0.0.1:0 --data-dir "$WORK/d" >"$WORK/out" 2>"$WORK/err" &
    server=$!
    while ! grep -q listening "$WORK/out"; do sleep 0.2; done
    url=$(grep listening "$WORK/out" | awk '{print $3}')
    fp=$(grep fingerprint "$WORK/out" | awk '{print $NF}')
    token=$(grep "admin token (shown once" "$WORK/out" | awk '{print $NF}')
    printf '%s flat:    ' "$1"
    before=$(cpu_ticks $server)
    "$LOADGEN" ingest --url "$url" --fingerprint "$fp" --admin-token "$token" \
        --hosts 200 --reports 40000 --concurrency 64 2>/dev/null | tr -d '\n'
    # Server CPU (user + system) over the run, including its 200 enrollments.
    echo " server_cpu_us_per_report=$(( ($(cpu_ticks $server) - before) * 1000000 / $(getconf CLK_TCK) / 40000 ))"
    printf '%s 1000/s:  ' "$1"
    "$LOADGEN" ingest --url "$url" --fingerprint "$fp" --admin-token "$token" \
        --hosts 200 --reports 30000 --concurrency 64 --rate 1000 2>/dev/null
    kill $server; wait $server 2>/dev/null
}

for _ in $(seq "$ROUNDS"); do
    ingest old "$OLD"
    ingest new "$NEW"
done
for _ in 1 2; do
    for label in old new; do
        dir=$OLD; [ $label = new ] && dir=$NEW
        printf '%s snapshot: ' "$label"
        "$dir/evidence-loadgen" snapshot-bench --hosts 100000 --checks 40 --rounds 7 2>&1 | tail -1
    done
done
