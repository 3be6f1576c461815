#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what the tests need, builds every
# binary the end-to-end tests run, and runs all tests. Run as root (namespaces, loop devices,
# debootstrap): `sudo scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
if ! command -v cargo >/dev/null; then
  echo "test.sh: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi
scripts/check-crypto-deps.sh
cargo fmt --all -- --check
# Said before the run, since cargo hides a passing test's output: what this kernel cannot do.
if ! grep -q ' device-mapper$' /proc/misc 2>/dev/null; then
  echo "*** NOTE: this kernel has no device-mapper: the dm-crypt mount test" \
       "(collectors/tests/luks_live.rs) cannot open a LUKS volume here and will skip itself ***"
fi
cargo build --workspace --bins
cargo test --workspace -- "$@"
