#!/usr/bin/env bash
# Criterion benchmarks of every crate, saved as a named baseline or compared against one.
#
#   scripts/bench.sh save main        # run and save as baseline `main`
#   scripts/bench.sh compare main     # run and compare against baseline `main`
#   scripts/bench.sh save main -p paxbench-core    # one crate
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: scripts/bench.sh save|compare BASELINE [cargo bench args]}
baseline=${2:?usage: scripts/bench.sh save|compare BASELINE [cargo bench args]}
shift 2
packages=("$@")
[[ ${#packages[@]} == 0 ]] && packages=(--workspace)
case $mode in
  save) cargo bench "${packages[@]}" -- --save-baseline "$baseline" ;;
  compare) cargo bench "${packages[@]}" -- --baseline "$baseline" ;;
  *) echo "usage: scripts/bench.sh save|compare BASELINE [cargo bench args]" >&2; exit 2 ;;
esac
