#!/usr/bin/env bash
# The ID-scheme comparison end to end: bench-configs/id-schemes.yaml on a spawned QUIC cluster
# and in the simulator, then the two side by side. The headline chart (retries and preemptions
# per operation against proposers, one line per ID scheme) is charts/id-schemes.png in each
# run's folder. About a minute.
#
#   scripts/compare-ids.sh [RESULTS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
results=${1:-results}
cargo build --release -q --bin paxbench
real="$results/id-schemes-quic"
sim="$results/id-schemes-sim"
rm -rf "$real" "$sim" "$results/id-schemes-compared"
target/release/paxbench run bench-configs/id-schemes.yaml --out "$real" --no-progress
target/release/paxbench run bench-configs/id-schemes.yaml --target sim --out "$sim" --no-progress
# Exit code 4 only means the two targets differ by more than the threshold, as they will.
target/release/paxbench compare "$real" "$sim" --out "$results/id-schemes-compared" || [[ $? == 4 ]]
echo
echo "headline charts: $real/charts/id-schemes.png $sim/charts/id-schemes.png"
echo "reports: $real/report.html $sim/report.html"
