#!/usr/bin/env bash
# Benchmark of `evidence-agent run` (release build) against a local `evidence-server serve` on
# loopback, in one run:
#   1. idle service: CPU time and peak RSS over IDLE_SECS (default 600) of `run` observing this
#      host (`/`), default schedule (hourly full collection, 15 min heartbeat); the first full
#      collection at start is included in the peak and reported apart in the CPU time;
#   2. drain: COUNT (default 10000) real signed reports (this host's facts) spooled while the
#      agent is stopped, then the time from `run` start until the spool is empty and every report
#      is on the server with a verified receipt.
# Prints a Markdown section; with --write it replaces the "Agent service" section of
# BENCHMARKS.md. Needs root (the collectors read /etc/shadow) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q --bin evidence-agent --bin evidence-server
agent="$CARGO_TARGET_DIR/release/evidence-agent"
server="$CARGO_TARGET_DIR/release/evidence-server"
idle_secs="${IDLE_SECS:-600}"
count="${COUNT:-10000}"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$server" serve --listen "127.0.0.1:$port" --data-dir "$tmp/server" >"$tmp/server.out" 2>"$tmp/server.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '^listening on' "$tmp/server.out" && break; sleep 0.1; done
token=$(sed -n 's/.*store it now): //p' "$tmp/server.out")
fingerprint=$(sed -n 's/.*fingerprint: //p' "$tmp/server.out")
secret=$(curl -sk -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{}' "https://127.0.0.1:$port/v1/admin/enrollment-secrets" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')

cat >"$tmp/agent.toml" <<EOF
state_dir = "$tmp/state"
[spool]
max_reports = $((count + 10))
max_bytes = 4294967296
EOF
"$agent" enroll --config "$tmp/agent.toml" --server "https://127.0.0.1:$port" --token "$secret" \
  --server-fingerprint "$fingerprint" >/dev/null 2>&1

ticks=$(getconf CLK_TCK)
cpu_secs() { # user+system CPU seconds of pid $1
  awk -v t="$ticks" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"
}
spool_depth() { find "$tmp/state/spool" -maxdepth 1 -name '*.report' | wc -l; }

# 1. Idle.
"$agent" run --config "$tmp/agent.toml" 2>"$tmp/agent-idle.log" &
agent_pid=$!
pids+=($agent_pid)
for _ in $(seq 600); do [ -f "$tmp/state/status.json" ] && [ "$(spool_depth)" = 0 ] &&
  grep -q last_receipt "$tmp/state/status.json" && grep -q '"seq"' "$tmp/state/status.json" && break; sleep 0.1; done
sleep 5
cpu_start=$(cpu_secs $agent_pid)
rss_start=$(awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status")
sleep "$idle_secs"
cpu_end=$(cpu_secs $agent_pid)
rss_end=$(awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$agent_pid/status")
threads=$(awk '/Threads/ {print $2}' "/proc/$agent_pid/status")
kill -TERM $agent_pid
wait $agent_pid || true
idle_cpu=$(python3 -c "print(f'{$cpu_end - $cpu_start:.2f}')")

# 2. Drain.
fill=$("$agent" bench-spool --config "$tmp/agent.toml" --count "$count")
report_bytes=$(find "$tmp/state/spool" -maxdepth 1 -name '*.report' -printf '%s\n' | sort -n |
  awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
start=$(date +%s.%N)
"$agent" run --config "$tmp/agent.toml" 2>"$tmp/agent-drain.log" &
agent_pid=$!
pids+=($agent_pid)
while [ "$(spool_depth)" -gt 0 ]; do sleep 0.2; done
end=$(date +%s.%N)
drain_cpu=$(cpu_secs $agent_pid)
drain_hwm=$(awk '/VmHWM/ {print $2}' "/proc/$agent_pid/status")
kill -TERM $agent_pid
wait $agent_pid || true
drain_secs=$(python3 -c "print(f'{$end - $start:.1f}')")
rate=$(python3 -c "print(round($count / ($end - $start)))")

section=$(cat <<EOF
<!-- bench-agent-service:start -->
## Agent service
\`sudo scripts/bench-agent-service.sh --write\` (release build, $(nproc) cores shared with other
work, agent and server on loopback, TLS pinned by fingerprint). Run on $(date -u +%Y-%m-%d).

| what | figure |
| --- | --- |
| idle \`run\`, ${idle_secs} s after the first report: CPU time | ${idle_cpu} s (agent total since start: ${cpu_end} s, most of it the first full collection) |
| idle \`run\`: peak RSS (VmHWM, includes the first full collection of \`/\`) | $((hwm / 1024)) MiB (${hwm} KiB); RSS at the end $((rss_end / 1024)) MiB (after first report: $((rss_start / 1024)) MiB); ${threads} threads |
| drain ${count} spooled reports (median ${report_bytes} bytes each) into the server, each receipt verified | ${drain_secs} s, ${rate} reports/s; agent CPU ${drain_cpu} s, peak RSS $((drain_hwm / 1024)) MiB |
| spooling them (\`bench-spool\`: sign, fsync, rename, fsync dir, chain state fsynced) | ${fill#spooled } |
<!-- bench-agent-service:end -->
EOF
)
echo "$section"
if [ "${1:-}" = "--write" ]; then
  python3 - "$section" <<'PY'
import re, sys
section = sys.argv[1]
text = open("BENCHMARKS.md").read()
pattern = re.compile(r"<!-- bench-agent-service:start -->.*?<!-- bench-agent-service:end -->", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
open("BENCHMARKS.md", "w").write(text)
PY
fi
