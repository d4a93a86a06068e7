#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian 12 machine of this kind:
# rustup targets and components, Debian packages (independent peers: coturn,
# libsrtp2, ffmpeg, chromium; QEMU from bookworm-backports), npm playwright-core
# and a Python venv with aiortc. Idempotent: skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[setup] $*"; }

# Rust targets and components.
for t in thumbv6m-none-eabi riscv32imc-unknown-none-elf thumbv7m-none-eabi; do
  rustup target list --installed | grep -qx "$t" || { log "rustup target add $t"; rustup target add "$t"; }
done
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

# Debian packages.
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
need=()
for p in coturn libsrtp2-dev pkg-config ffmpeg chromium iproute2 openssl libjna-java; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# QEMU for Cortex-M, from bookworm-backports (the image's qemu-utils is from there).
if ! command -v qemu-system-arm >/dev/null; then
  log "installing qemu-system-arm from bookworm-backports"
  tmp=$(mktemp -d); mkdir -p "$tmp/parts"
  line=$(grep -rhE '^(deb|URIs:)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | grep -m1 -E 'debian' || true)
  if echo "$line" | grep -q '^URIs:'; then
    uri=$(echo "$line" | awk '{print $2}')
  else
    uri=$(echo "$line" | awk '{for(i=2;i<=NF;i++) if ($i ~ /^http/) {print $i; exit}}')
  fi
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-backports main\n' "$uri" "$uri" "$uri" > "$tmp/bp.list"
  opts=(-o Dir::Etc::SourceList="$tmp/bp.list" -o Dir::Etc::SourceParts="$tmp/parts")
  $SUDO apt-get -o DPkg::Lock::Timeout=600 "${opts[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 "${opts[@]}" install -y -qq --no-install-recommends -t bookworm-backports qemu-system-arm >/dev/null
fi

# npm: playwright-core drives Debian's chromium.
if [ ! -d host-tests/js/node_modules/playwright-core ]; then
  log "npm install (host-tests/js)"
  (cd host-tests/js && npm install --no-audit --no-fund --silent)
fi

# Python venv with aiortc.
if [ ! -x host-tests/.venv/bin/python ] || ! host-tests/.venv/bin/python -c 'import aiortc' 2>/dev/null; then
  log "python venv with aiortc"
  python3 -m venv host-tests/.venv
  host-tests/.venv/bin/pip install -q --disable-pip-version-check aiortc
fi
log "done"
