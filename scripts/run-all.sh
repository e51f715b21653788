#!/usr/bin/env bash
# Runs every bench config (except attach-local.yaml, which needs a running cluster) and lists
# the report of each. Each run draws its own charts and report.html. About 6 minutes.
#
#   scripts/run-all.sh [RESULTS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
results=${1:-results}
cargo build --release -q --bin paxbench
failed=0
for config in bench-configs/*.yaml; do
  [[ $config == *attach-local.yaml ]] && continue
  echo "== $config"
  if ! target/release/paxbench run "$config" --results "$results" --no-progress; then
    echo "!! $config failed (exit $?)" >&2
    failed=1
  fi
done
echo
echo "reports:"
ls -d "$results"/*/report.html 2>/dev/null || true
exit $failed
