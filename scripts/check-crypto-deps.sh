#!/usr/bin/env bash
# Fails when OpenSSL or aws-lc enters the dependency graph: TLS is rustls with ring only.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for crate in openssl-sys openssl aws-lc-rs aws-lc-sys native-tls; do
  if out=$(cargo tree --workspace --all-features -e normal,build -i "$crate" 2>&1); then
    echo "check-crypto-deps: $crate is in the build:" >&2
    echo "$out" >&2
    status=1
  elif ! grep -q "did not match any packages" <<<"$out"; then
    echo "check-crypto-deps: cargo tree failed for $crate:" >&2
    echo "$out" >&2
    status=1
  fi
done
[ $status = 0 ] && echo "check-crypto-deps: no OpenSSL, no aws-lc in the build"
exit $status
