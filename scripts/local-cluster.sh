#!/usr/bin/env bash
# Starts a local paxbench cluster on 127.0.0.1 and keeps it up until Ctrl-C (or SIGTERM), then stops every
# node with SIGTERM (each finishes its batch in flight and closes its connections).
#
#   scripts/local-cluster.sh [DIR] [NODES] [STORAGE] [FIRST_PORT] [CLIENTS] [NODE FLAGS...]
#
# DIR (default ./local-cluster) receives certs/, one config and data dir per node, and logs.
# STORAGE is `durable` (the write-ahead log, the default), `redb` or `memory`. Nodes listen on
# FIRST_PORT (default 7001) and up. Client certificates for attaching, one per generator:
# DIR/certs/client-N.{pem,key} for N below CLIENTS (default 2). Flags after the fifth
# argument go to every node: `scripts/local-cluster.sh local 3 durable 7001 2 --protocol
# multi-paxos --leader '{initial: 1}'` runs Multi-Paxos for an attach run with
# `target.protocol: multi-paxos`.
set -euo pipefail

dir=${1:-local-cluster}
nodes=${2:-3}
storage=${3:-durable}
first_port=${4:-7001}
clients=${5:-2}
node_flags=("${@:6}")

cd "$(dirname "$0")/.."
cargo build --release -q -p paxbench-node
bin=target/release/paxbench-node

mkdir -p "$dir"
if [[ ! -f "$dir/certs/ca.pem" ]]; then
  "$bin" certs --out "$dir/certs" --nodes "$nodes" --clients "$clients"
fi

pids=()
stop() {
  echo "stopping ${#pids[@]} nodes"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop EXIT
trap "exit 130" INT TERM

for id in $(seq 1 "$nodes"); do
  config="$dir/node-$id.yaml"
  {
    echo "id: $id"
    echo "listen: 127.0.0.1:$((first_port + id - 1))"
    echo "peers:"
    for peer in $(seq 1 "$nodes"); do
      [[ $peer == "$id" ]] && continue
      echo "  - id: $peer"
      echo "    addr: 127.0.0.1:$((first_port + peer - 1))"
    done
    echo "data_dir: $dir/data/node-$id"
    echo "storage: $storage"
    echo "tls:"
    echo "  ca: $dir/certs/ca.pem"
    echo "  cert: $dir/certs/node-$id.pem"
    echo "  key: $dir/certs/node-$id.key"
  } > "$config"
  "$bin" run --config "$config" "${node_flags[@]}" > "$dir/node-$id.log" 2>&1 &
  pids+=($!)
  echo "node $id: 127.0.0.1:$((first_port + id - 1))  config $config  log $dir/node-$id.log"
done
echo "cluster up; Ctrl-C stops it"
wait
