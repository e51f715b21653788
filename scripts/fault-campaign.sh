#!/usr/bin/env bash
# The fault campaign: every bench-configs/faults-*.yaml on spawned, durable QUIC clusters of 3
# and 5 nodes (kill -9 loops, a majority killed, partitions, lossy/duplicating/slow links, clock
# jumps, disk faults), each followed by the audit of every node's store; then, where root and
# iproute2 allow, a cluster in network namespaces with tc netem delay and loss between them.
# Prints the Reliability table of the README and exits non-zero if anything was violated or lost.
#
#   scripts/fault-campaign.sh            # the full campaign (about 2 min of runs)
#   scripts/fault-campaign.sh --short    # every scenario at 0.5x its times (what CI runs)
#   scripts/fault-campaign.sh --no-netns # skip the network-namespace scenario
set -euo pipefail
cd "$(dirname "$0")/.."

scale=1
netns=1
for arg in "$@"; do
  case "$arg" in
    --short) scale=0.5 ;;
    --no-netns) netns=0 ;;
    *) echo "unknown argument: $arg (use --short, --no-netns)" >&2; exit 2 ;;
  esac
done

cargo build --release --bin paxbench >&2
paxbench=target/release/paxbench
out="results/campaign-$(date -u +%Y-%m-%dT%H-%M-%SZ)"
mkdir -p "$out"
status=0
dirs=()
for config in bench-configs/faults-*.yaml; do
  name=$(basename "$config" .yaml)
  echo "== $name (time scale $scale)" >&2
  if ! "$paxbench" run "$config" --time-scale "$scale" --out "$out/$name" --no-progress --no-charts >"$out/$name.log" 2>&1; then
    echo "FAILED: $name (see $out/$name.log)" >&2
    status=1
  fi
  dirs+=("$out/$name")
done

if [ "$netns" = 1 ]; then
  if PAXBENCH="$paxbench" scripts/netns-cluster.sh "$out/netns" "$scale" >"$out/netns.log" 2>&1; then
    dirs+=("$out/netns")
  else
    code=$?
    if [ "$code" = 77 ]; then
      echo "netns scenario skipped: $(tail -1 "$out/netns.log")" >&2
    else
      echo "FAILED: netns scenario (see $out/netns.log)" >&2
      status=1
    fi
  fi
fi

"$paxbench" reliability "${dirs[@]}" | tee "$out/reliability.md"
exit $status
