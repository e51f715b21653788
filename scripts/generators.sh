#!/usr/bin/env bash
# Runs N generators of one attach config together and merges them: each is client k
# (`--client k`), all share one `--start-at` a few seconds ahead, and `paxbench merge` adds
# their results and checks agreement across their evidence.
#
#   scripts/generators.sh CONFIG N OUT [LEAD_S]
#
# OUT/gen-K holds each generator's results, OUT/merged the merged report. LEAD_S (default 5)
# is how far ahead the start is: time for every generator to start, connect and ping. The
# cluster needs N client certificates (scripts/local-cluster.sh's fifth argument).
set -euo pipefail
config=$1
count=$2
out=$3
lead=${4:-5}
cd "$(dirname "$0")/.."
cargo build --release -q --bin paxbench
bin=target/release/paxbench
start=$(date -u -d "+$lead sec" +%FT%TZ)
mkdir -p "$out"
pids=()
for k in $(seq 0 $((count - 1))); do
  "$bin" run "$config" --client "$k" --start-at "$start" --out "$out/gen-$k" --no-progress \
    > "$out/gen-$k.log" 2>&1 &
  pids+=($!)
done
failed=0
for k in "${!pids[@]}"; do
  if ! wait "${pids[$k]}"; then
    echo "generator $k failed; its output: $out/gen-$k.log" >&2
    failed=1
  fi
done
[[ $failed == 0 ]] || exit 1
parts=()
for k in $(seq 0 $((count - 1))); do parts+=("$out/gen-$k"); done
"$bin" merge "${parts[@]}" --out "$out/merged"
