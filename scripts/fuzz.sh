#!/usr/bin/env bash
# Fuzz every target (or those named) for a bounded time each, with cargo-fuzz (libFuzzer) on
# nightly: frame and message decoding, bench-config parsing, the acceptor fed arbitrary message
# schedules with the safety checker on, three Multi-Paxos node hosts (leader role, ranged
# acceptor, authority) fed schedules with crashes and forged messages, and write-ahead-log
# recovery of damaged segments.
# Inputs start from fuzz/seeds and fuzz/regressions; the growing corpus stays in fuzz/corpus
# (not committed). Each run appends `target<TAB>seconds<TAB>execs` to fuzz/stats.tsv (the
# Reliability table's fuzzing hours, docs/reliability.md, come from it).
# A crash is copied into fuzz/regressions/<target>/, which crates/loadgen/tests/fuzz_corpus.rs
# replays in `cargo test --workspace` forever after; the script then exits 1.
#
#   scripts/fuzz.sh                 # 60 s per target
#   scripts/fuzz.sh 600 acceptor    # 10 minutes on one target
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(frames config acceptor leader wal)
fi
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "cargo fuzz needs a nightly toolchain: rustup toolchain install nightly" >&2
  exit 1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

status=0
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus" "fuzz/artifacts/$target" "fuzz/regressions/$target"
  log=$(mktemp)
  echo "== fuzzing $target for ${seconds}s" >&2
  if cargo +nightly fuzz run "$target" "$corpus" "fuzz/seeds/$target" "fuzz/regressions/$target" \
      -- -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=4096 \
         -print_final_stats=1 2>&1 | tee "$log" | grep -E "^(#[0-9]+ +DONE|==|SUMMARY|Done)" >&2; then
    :
  fi
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
  if grep -qE 'ERROR: libFuzzer|panicked|SUMMARY: .*Sanitizer' "$log"; then
    status=1
    for crash in fuzz/artifacts/"$target"/*; do
      [ -f "$crash" ] || continue
      cp "$crash" "fuzz/regressions/$target/"
      echo "CRASH in $target: saved as fuzz/regressions/$target/$(basename "$crash")" >&2
    done
    grep -E 'panicked|ERROR' "$log" | head -5 >&2
  fi
  printf '%s\t%s\t%s\n' "$target" "$seconds" "${execs:-0}" >> fuzz/stats.tsv
  rm -f "$log"
done
exit $status
