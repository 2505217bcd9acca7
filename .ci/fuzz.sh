#!/usr/bin/env bash
# Short fuzz pass: builds every cargo-fuzz target under fuzz/ and runs each
# from its committed corpus for a bounded time, failing on any crash.
#
# Only stable Rust is installed, so cargo-fuzz runs with RUSTC_BOOTSTRAP=1
# and `--sanitizer none` (the code under test forbids `unsafe`; libFuzzer's
# coverage and the targets' assertions, with debug assertions and overflow
# checks on, are what find bugs). cargo-fuzz itself is installed from
# crates.io once, into ~/.cache/tau-tools/cargo-fuzz.
#
#   bash .ci/fuzz.sh                 # every target, FUZZ_SECONDS each (default 20)
#   FUZZ_SECONDS=60 bash .ci/fuzz.sh webhook helix_path
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_FUZZ_TARGET_DIR:-$HOME/.cache/tau/target-fuzz}"
export CARGO_INCREMENTAL=0
export RUSTC_BOOTSTRAP=1
tools="$HOME/.cache/tau-tools/cargo-fuzz"
seconds="${FUZZ_SECONDS:-20}"

if [[ ! -x "$tools/bin/cargo-fuzz" ]]; then
  echo "=== installing cargo-fuzz into $tools"
  CARGO_TARGET_DIR="$HOME/.cache/tau/target-cargo-fuzz-install" \
    cargo install --locked cargo-fuzz --version 0.13.2 --root "$tools"
  rm -rf "$HOME/.cache/tau/target-cargo-fuzz-install"
fi
export PATH="$tools/bin:$PATH"

cd fuzz
mapfile -t targets < <(cargo fuzz list)
if (($#)); then targets=("$@"); fi
# -a: debug assertions and overflow checks on, in the targets and the code.
cargo fuzz build --sanitizer none -a
for target in "${targets[@]}"; do
  work="$(mktemp -d "${TMPDIR:-/tmp}/tau-fuzz-$target.XXXXXX")"
  # New inputs go to a scratch corpus: the committed one stays minimized.
  mkdir "$work/corpus"
  log="$work/log"
  # One in-process worker (libFuzzer's -jobs would fork and log elsewhere).
  if ! nice cargo fuzz run --sanitizer none -a "$target" "$work/corpus" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$work/" >"$log" 2>&1; then
    echo "=== fuzz $target: FAILED (crash input and log in $work)"
    tail -n 40 "$log"
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  speed="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  echo "=== fuzz $target: $runs executions in ${seconds} s ($speed/s), no crash"
  rm -rf "$work"
done
