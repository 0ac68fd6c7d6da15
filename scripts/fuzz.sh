#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer), each for a while, on its
# committed corpus (fuzz/corpus/<target>/), which new finds are added to. Not part of
# `make test`.
#
#   scripts/fuzz.sh                 every target, 240 s each
#   scripts/fuzz.sh extract 600     one target, 600 s
#   FUZZ_JOBS=2 scripts/fuzz.sh     two targets at once
#   scripts/fuzz.sh --minimize      merge each corpus down to the inputs that add coverage
#
# The toolchain is stable (rust-toolchain.toml); cargo-fuzz needs nightly flags, which
# RUSTC_BOOTSTRAP=1 allows. Built without a sanitizer (the workspace forbids unsafe code;
# the cost is the dependencies' unsafe code going unchecked by ASan) and with debug
# assertions, so integer overflow is a crash. A crash leaves its input in
# fuzz/artifacts/<target>/; reproduce it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none -a <target> fuzz/artifacts/<target>/<file>
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

targets=(extract chunk s3_event gateway_body)
seconds=240
minimize=0
case "${1:-}" in
  --minimize) minimize=1 ;;
  "") ;;
  *) targets=("$1"); seconds="${2:-$seconds}" ;;
esac

cargo fuzz build -s none -a

run() {
  local target="$1"
  mkdir -p "corpus/$target"
  if [ "$minimize" = 1 ]; then
    cargo fuzz cmin -s none -a "$target" "corpus/$target"
    return
  fi
  # Inputs up to 256 KiB (bombs need room), 10 s per input at most (a hang is a crash),
  # 2 GiB of memory at most (a reader that allocates past it is a crash).
  cargo fuzz run -s none -a "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=262144 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 2>&1 | tee "fuzz-$target.log" | grep -E "^(#[0-9]+ *DONE|stat::|==|Done)" || true
  if grep -q "SUMMARY\|deadly signal\|ERROR: libFuzzer" "fuzz-$target.log"; then
    echo "fuzz: $target crashed; see fuzz/artifacts/$target/ and fuzz/fuzz-$target.log" >&2
    return 1
  fi
}

status=0
jobs="${FUZZ_JOBS:-1}"
for target in "${targets[@]}"; do
  if [ "$jobs" -gt 1 ]; then
    run "$target" &
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || status=1; done
  else
    run "$target" || status=1
  fi
done
wait || status=1
exit "$status"
