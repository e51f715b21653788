#!/usr/bin/env bash
# Makes the cluster's certificates and stores them as the Secret paxbench-certs:
#
#   deploy/kubernetes/certs.sh [NODES] [CLIENTS] [ADMINS]   # defaults: 3 nodes, 2 generators, 0 admins
#
# Give as many admins as generators when the bench config has faults or zones.
# The CA's private key stays in ./paxbench-ca (keep it to add clients later); only the CA
# certificate and each member's certificate and key go into the Secret. Uses paxbench-node from
# PATH, else from target/release, else from the image paxbench:0.1.0.
set -euo pipefail
nodes=${1:-3}
clients=${2:-2}
admins=${3:-0}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if command -v paxbench-node >/dev/null; then
  paxbench-node certs --out "$out" --nodes "$nodes" --clients "$clients" --admins "$admins"
elif [[ -x target/release/paxbench-node ]]; then
  target/release/paxbench-node certs --out "$out" --nodes "$nodes" --clients "$clients" --admins "$admins"
else
  docker run --rm --user "$(id -u):$(id -g)" -v "$out:/certs" --entrypoint paxbench-node \
    paxbench:0.1.0 certs --out /certs --nodes "$nodes" --clients "$clients" --admins "$admins"
fi
mkdir -p paxbench-ca
mv "$out/ca.key" paxbench-ca/ca.key
cp "$out/ca.pem" paxbench-ca/ca.pem
kubectl create secret generic paxbench-certs --from-file="$out" --dry-run=client -o yaml |
  kubectl apply -f -
echo "secret paxbench-certs: CA, $nodes nodes, $clients clients, $admins admins (CA key kept in ./paxbench-ca)"
