#!/usr/bin/env bash
# Installs every Debian package the test suite and the benchmarks use. Needs root.
# The tests create network namespaces, loop devices, LUKS headers and debootstrap trees, so the
# suite itself runs as root too (CI does).
set -euo pipefail
packages=(
  debootstrap     # Debian root trees for `collect --root` tests
  nftables        # nft: rulesets loaded into test network namespaces
  iptables        # iptables-save / ip6tables-save rulesets
  iproute2        # ip netns
  procps          # sysctl inside test namespaces
  ufw             # a real ufw ruleset in a test namespace (its packaged config leaves it disabled)
  cryptsetup-bin  # cryptsetup luksFormat / luksDump for LUKS header tests
  e2fsprogs       # mkfs.ext4 on test volumes
  util-linux      # losetup, mount, setpriv
  zstd            # the cached debootstrap tarball (tar --zstd)
  lz4 xz-utils gzip  # compressing real apt indexes in tests
  ca-certificates
  hyperfine time  # benchmarks: side-by-side timings and peak RSS
  python3 python3-venv  # schemathesis (OpenAPI test), installed in its own virtualenv
)
if [ "$(id -u)" != 0 ]; then
  echo "install-test-deps: run as root (sudo $0)" >&2
  exit 1
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# schemathesis, for the OpenAPI test (tests/tests/server_openapi.rs): in its own virtualenv
# outside the clone (kept between runs), linked into /usr/local/bin.
tools="${EVIDENCE_TOOLS_DIR:-/var/cache/evidence-tools}"
if ! command -v schemathesis >/dev/null; then
  if [ ! -x "$tools/schemathesis/bin/schemathesis" ]; then
    mkdir -p "$tools"
    python3 -m venv "$tools/schemathesis"
    "$tools/schemathesis/bin/pip" install --quiet 'schemathesis>=4.3,<5'
  fi
  ln -sf "$tools/schemathesis/bin/schemathesis" /usr/local/bin/schemathesis
fi
# Optional: lynis, only for the side-by-side benchmark.
if [ "${WITH_LYNIS:-0}" = 1 ]; then apt-get install -y -qq --no-install-recommends lynis; fi
echo "install-test-deps: all packages present"
