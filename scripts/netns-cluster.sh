#!/usr/bin/env bash
# A durable 3-node QUIC cluster whose nodes each live in their own network namespace, joined by
# a bridge, with `tc netem` delay (1 ms ± 0.2 ms) and 0.5% loss on every node's link; the
# generator attaches from the host with addresses given explicitly (the only way paxbench talks
# to anything outside loopback). Node 3 is isolated for a while and healed. Afterwards the nodes
# are stopped and every store is audited against the evidence the run kept (`paxbench audit
# --results`), which records the audit in the run's summary. Everything it creates is torn down
# on exit.
#
# With --zones the three nodes are three WAN zones instead (round trips of 40, 60 and 80 ms
# between them, a scenario choice): `tc netem` delays each node's traffic per destination node,
# and the config says `node_delays: external`; the generator delays each proposer's traffic by
# its zone, as on any target. Where there is no netem, the nodes' fault layer delays their links
# instead, and the script says so.
#
#   scripts/netns-cluster.sh OUT_DIR [TIME_SCALE] [--zones]
#   PAXBENCH=target/debug/paxbench scripts/netns-cluster.sh OUT_DIR 0.3
#
# Exits 77, with the reason on its last line, where namespaces cannot be made (not root, no
# iproute2): scripts/fault-campaign.sh reports the scenario as skipped. Where the kernel has no
# netem (sch_netem), the namespaces are still used and the delay and loss come from paxbench's
# own fault layer instead; the script says so.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/netns-cluster.sh OUT_DIR [TIME_SCALE] [--zones]}
scale=${2:-1}
zones=0
[ "${3:-}" = --zones ] && zones=1
# --zones: the round trip between nodes i and j, in ms (node i is zone z$i).
declare -A rtt=([1,2]=40 [2,1]=40 [1,3]=80 [3,1]=80 [2,3]=60 [3,2]=60)
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

# --zones: a prio qdisc on node $1's link with one netem band per other node, chosen by
# destination address; other traffic (the generator's) goes undelayed through the last band.
zone_qdisc() {
  local i=$1 ns="${prefix}n$1" band=1 j
  tc -n "$ns" qdisc add dev eth0 root handle 1: prio bands 4 priomap 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 \
    2>/dev/null || return 1
  for j in 1 2 3; do
    [ "$j" = "$i" ] && continue
    tc -n "$ns" qdisc add dev eth0 parent "1:$band" handle "${band}0:" netem \
      delay "$(awk -v r="${rtt[$i,$j]}" 'BEGIN { print r / 2 }')ms" 2>/dev/null || return 1
    tc -n "$ns" filter add dev eth0 parent 1: protocol ip prio 1 u32 \
      match ip dst "10.77.0.$j/32" flowid "1:$band" 2>/dev/null || return 1
    band=$((band + 1))
  done
}

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
  if [ "$zones" = 1 ]; then
    if [ "$netem" = 1 ] && ! zone_qdisc "$i"; then
      netem=0
      tc -n "$ns" qdisc del dev eth0 root 2>/dev/null || true
      echo "tc netem is not available (no sch_netem in this kernel): the nodes' fault layer delays their links to each other instead"
    fi
  elif [ "$netem" = 1 ] && ! tc -n "$ns" qdisc add dev eth0 root netem delay 1ms 200us loss 0.5% 2>/dev/null; then
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
if [ "$zones" = 1 ]; then
  [ "$netem" = 1 ] && node_delays=external || node_delays=fault-layer
  # Zones: the matrix above, node i in zone z$i; the timeouts scale to it (left unset), and
  # the generic delay and loss give way to the zones'.
  zone_section="  zones:
    names: [z1, z2, z3]
    rtt_ms: [[0, ${rtt[1,2]}, ${rtt[1,3]}], [${rtt[2,1]}, 0, ${rtt[2,3]}], [${rtt[3,1]}, ${rtt[3,2]}, 0]]
    distribution: constant
    nodes: {1: z1, 2: z2, 3: z3}
    node_delays: $node_delays"
  timeouts=""
  link_faults=0
else
  zone_section=""
  timeouts="  phase1_timeout_ms: 30
  phase2_timeout_ms: 30"
  link_faults=$((1 - netem))
fi
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
    cert: $work/certs/admin-0.pem
    key: $work/certs/admin-0.key
$zone_section
workload:
  proposers: 16
  keys: 1000
  warmup_s: $(at 1)
  duration_s: $(at 10)
measure:
  evidence: true                     # the stores are audited against it once the nodes stop
proposer:
$timeouts
  max_attempts: 100
faults:
$(if [ "$link_faults" = 1 ]; then echo "  - {at_s: 0, set-delay-us: 1000}"; echo "  - {at_s: $(at 3), heal}"; fi)
  - {at_s: $(at 4), isolate: [3]}
  - {at_s: $(at 7), heal}
$(if [ "$link_faults" = 1 ]; then echo "  - {at_s: $(at 8), set-drop: 0.005}"; fi)
YAML
status=0
"$paxbench" run "$work/netns.yaml" --out "$out" --no-progress --no-charts || status=$?
for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${pids[@]}"; do wait "$pid" || true; done
pids=()
"$paxbench" audit --nodes 3 --results "$out" 1="$work/data-1" 2="$work/data-2" 3="$work/data-3" \
  || status=$?
exit $status
