#!/usr/bin/env bash
# A durable 3-node QUIC cluster whose nodes each live in their own network namespace, joined by
# a bridge, with `tc netem` delay (1 ms ± 0.2 ms) and 0.5% loss on every node's link; the
# generator attaches from the host with addresses given explicitly (the only way paxbench talks
# to anything outside loopback). Node 3 is isolated for a while and healed. Afterwards the nodes
# are stopped and every store is audited against the evidence the run kept (`paxbench audit
# --results`), which records the audit in the run's summary. Everything it creates is torn down
# on exit.
#
#   scripts/netns-cluster.sh OUT_DIR [TIME_SCALE]
#   PAXBENCH=target/debug/paxbench scripts/netns-cluster.sh OUT_DIR 0.3
#
# Exits 77, with the reason on its last line, where namespaces cannot be made (not root, no
# iproute2): scripts/fault-campaign.sh reports the scenario as skipped. Where the kernel has no
# netem (sch_netem), the namespaces are still used and the delay and loss come from paxbench's
# own fault layer instead; the script says so.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/netns-cluster.sh OUT_DIR [TIME_SCALE]}
scale=${2:-1}
skip() { echo "skipped: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null 2>&1 || skip "iproute2 (ip) is not installed"
command -v tc >/dev/null 2>&1 || skip "tc (iproute2) is not installed"

# PAXBENCH names the binary (the campaign test passes its own build).
paxbench=${PAXBENCH:-target/release/paxbench}
[ -x "$paxbench" ] || cargo build --release --bin paxbench
prefix="pxb$$"
bridge="${prefix}br"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for i in 1 2 3; do ip netns del "${prefix}n$i" 2>/dev/null || true; done
  ip link del "$bridge" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

netem=1
ip netns add "${prefix}n1" 2>/dev/null || skip "cannot create a network namespace here"
ip link add "$bridge" type bridge 2>/dev/null || skip "cannot create a bridge here"
ip addr add 10.77.0.254/24 dev "$bridge"
ip link set "$bridge" up
for i in 1 2 3; do
  ns="${prefix}n$i"
  [ "$i" = 1 ] || ip netns add "$ns"
  ip link add "${prefix}v$i" type veth peer name eth0 netns "$ns"
  ip link set "${prefix}v$i" master "$bridge" up
  ip -n "$ns" addr add "10.77.0.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  if [ "$netem" = 1 ] && ! tc -n "$ns" qdisc add dev eth0 root netem delay 1ms 200us loss 0.5% 2>/dev/null; then
    netem=0
    echo "tc netem is not available (no sch_netem in this kernel): delay and loss come from the transport's fault layer instead"
  fi
done

"$paxbench" node certs --out "$work/certs" --nodes 3 --clients 1 >/dev/null
for i in 1 2 3; do
  peers=()
  for j in 1 2 3; do [ "$j" = "$i" ] || peers+=(--peer "$j=10.77.0.$j:7000"); done
  RUST_LOG=info ip netns exec "${prefix}n$i" "$paxbench" node run --id "$i" \
    --listen "10.77.0.$i:7000" "${peers[@]}" --storage durable --data-dir "$work/data-$i" \
    --ca "$work/certs/ca.pem" --cert "$work/certs/node-$i.pem" --key "$work/certs/node-$i.key" \
    --stats-interval-ms 0 >"$work/node-$i.log" 2>&1 &
  pids+=($!)
done

at() { awk -v a="$1" -v s="$scale" 'BEGIN { printf "%g", a * s }'; }
cat >"$work/netns.yaml" <<YAML
name: faults-netns
description: >
  16 proposers against a durable 3-node QUIC cluster in network namespaces, with netem delay
  and loss on every link, while node 3 is isolated and healed.
seed: 68
target:
  kind: attach
  attach:
    nodes:
      - {id: 1, addr: "10.77.0.1:7000"}
      - {id: 2, addr: "10.77.0.2:7000"}
      - {id: 3, addr: "10.77.0.3:7000"}
    ca: $work/certs/ca.pem
    cert: $work/certs/client-0.pem
    key: $work/certs/client-0.key
workload:
  proposers: 16
  keys: 1000
  warmup_s: $(at 1)
  duration_s: $(at 10)
measure:
  evidence: true                     # the stores are audited against it once the nodes stop
proposer:
  phase1_timeout_ms: 30
  phase2_timeout_ms: 30
  max_attempts: 100
faults:
$(if [ "$netem" = 0 ]; then echo "  - {at_s: 0, set-delay-us: 1000}"; echo "  - {at_s: $(at 3), heal}"; fi)
  - {at_s: $(at 4), isolate: [3]}
  - {at_s: $(at 7), heal}
$(if [ "$netem" = 0 ]; then echo "  - {at_s: $(at 8), set-drop: 0.005}"; fi)
YAML
status=0
"$paxbench" run "$work/netns.yaml" --out "$out" --no-progress --no-charts || status=$?
for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${pids[@]}"; do wait "$pid" || true; done
pids=()
"$paxbench" audit --nodes 3 --results "$out" 1="$work/data-1" 2="$work/data-2" 3="$work/data-3" \
  || status=$?
exit $status
