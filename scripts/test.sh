#!/usr/bin/env bash
# The one command that runs every test: installs what is missing, then
# formatting, lints, the no_std builds, all tests and the benchmarks' reports.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== no_std builds of the core"
for t in thumbv6m-none-eabi riscv32imc-unknown-none-elf; do
  cargo build -q -p tinyrtc --no-default-features --target "$t"
  echo "core builds for $t"
done
echo "== firmware: Cortex-M3 image under QEMU (no allocator linked)"
cargo fmt --manifest-path firmware/qemu-smoke/Cargo.toml -- --check
./firmware/qemu-smoke/run.sh
echo "== benchmarks (figures printed, not asserted)"
for f in host-tests/benches/*.rs; do
  [ -e "$f" ] || continue
  cargo bench -q -p host-tests --bench "$(basename "$f" .rs)"
done
echo "== tests"
cargo test --workspace --no-fail-fast
