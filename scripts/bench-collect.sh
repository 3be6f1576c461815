#!/usr/bin/env bash
# Benchmark of `evidence-agent collect` (release build), side by side with the tools it is
# compared with, on this machine, in one run:
#   1. full `evidence-agent collect` vs `lynis audit system --quick` (when lynis is installed);
#   2. the patch collector alone vs `apt list --upgradable`, with both counts printed.
# Prints a Markdown section; with --write it replaces the matching section of BENCHMARKS.md.
# Run as root so every collector can read what it needs: `sudo scripts/bench-collect.sh --write`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p evidence-agent
agent="$CARGO_TARGET_DIR/release/evidence-agent"
runs="${RUNS:-20}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

peak_rss_kb() { # median peak RSS (KiB) over $1 runs of the rest
  local n=$1; shift
  for _ in $(seq "$n"); do
    /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n 1
  done | sort -n | sed -n "$(( (n + 1) / 2 ))p"
}
median_ms() { # median wall ms from a hyperfine JSON export, command index $2
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][int(sys.argv[2])]; print(round(r['median']*1000,1))" "$1" "$2"
}

"$agent" collect >/dev/null # warm the page cache for every tool alike
# One hyperfine run, so the three commands meet the same machine load.
hyperfine -N --warmup 3 --runs "$runs" --export-json "$tmp/side.json" \
  "$agent collect --json" "$agent collect --only patch_level --json" "apt list --upgradable" \
  >/dev/null 2>&1

collect_ms=$(median_ms "$tmp/side.json" 0)
ours_patch=$(median_ms "$tmp/side.json" 1)
apt_ms=$(median_ms "$tmp/side.json" 2)
collect_rss=$(peak_rss_kb 5 "$agent" collect --json)
apt_rss=$(peak_rss_kb 5 apt list --upgradable)

counts=$("$agent" collect --only patch_level --json | python3 -c '
import json,sys
pending=json.load(sys.stdin)["facts"]["patch_level"]["observed"]["updates"]["observed"]["pending"]
print(len(pending), sum(1 for p in pending if p["security"]))')
apt_out=$(apt list --upgradable 2>/dev/null | grep -v '^Listing' || true)
apt_total=$(grep -c . <<<"$apt_out" || true)
apt_security=$(grep -c -- '-security' <<<"$apt_out" || true)

lynis_line="| lynis audit system --quick | not run (install lynis: WITH_LYNIS=1 scripts/install-test-deps.sh) | | |"
if command -v lynis >/dev/null; then
  hyperfine -N --runs 3 --export-json "$tmp/lynis.json" \
    "lynis audit system --quick --no-colors --quiet" >/dev/null 2>&1 || true
  if [ -s "$tmp/lynis.json" ]; then
    lynis_ms=$(median_ms "$tmp/lynis.json" 0)
    lynis_rss=$(peak_rss_kb 1 lynis audit system --quick --no-colors --quiet)
    lynis_line="| lynis audit system --quick | $lynis_ms ms | $((lynis_rss / 1024)) MiB | $(python3 -c "print(round($lynis_ms/$collect_ms))")x slower than collect |"
  fi
fi

section=$(cat <<MD
<!-- bench-collect:start -->
## Collect (one host)
Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(uname -r), as $(id -un); medians of $runs runs (hyperfine -N), peak RSS the median of 5 runs (/usr/bin/time; lynis: 1 run, 3 timed runs).
Reproduce: \`sudo scripts/bench-collect.sh --write\`

| command | median wall | peak RSS | note |
|---|---|---|---|
| evidence-agent collect --json (all collectors) | $collect_ms ms | $((collect_rss / 1024)) MiB | target: at most 200 ms and 25 MiB |
$lynis_line
| evidence-agent collect --only patch_level | $ours_patch ms | | pending $(cut -d' ' -f1 <<<"$counts"), security $(cut -d' ' -f2 <<<"$counts") |
| apt list --upgradable | $apt_ms ms | $((apt_rss / 1024)) MiB | pending $apt_total, security $apt_security |

Patch collector speed-up over apt: $(python3 -c "print(round($apt_ms/$ours_patch,1))")x (target: at least 3x, identical counts).
<!-- bench-collect:end -->
MD
)
echo "$section"
if [ "${1:-}" = "--write" ]; then
  python3 - "$section" <<'PY'
import re, sys
section = sys.argv[1]
path = "BENCHMARKS.md"
text = open(path).read()
pattern = re.compile(r"<!-- bench-collect:start -->.*?<!-- bench-collect:end -->", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
fi
