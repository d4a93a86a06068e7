#!/usr/bin/env bash
# Builds the Cortex-M3 smoke image (no allocator linked), prints its size and
# runs it under QEMU mps2-an385; exits non-zero if any on-target check fails.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${FIRMWARE_TARGET_DIR:-$PWD/../../target/firmware}"
cargo build --release -q
elf="$CARGO_TARGET_DIR/thumbv7m-none-eabi/release/qemu-smoke"
echo "image size (text = flash, data + bss = static RAM):"
size "$elf" 2>/dev/null || llvm-size "$elf"
timeout 300 qemu-system-arm -cpu cortex-m3 -machine mps2-an385 -nographic -icount shift=0 \
  -semihosting-config enable=on,target=native -kernel "$elf"
