#!/usr/bin/env bash
# Validates the deployment files offline: the Kubernetes manifests against the API schemas
# (kubernetes-validate, strict: unknown fields are errors) and the compose file with
# `docker compose config` where a Docker engine runs, else against the Compose Specification's
# JSON schema. The bench and node configs inside them are checked by
# crates/loadgen/tests/deploy.rs, which runs this script.
#
#   scripts/check-deploy.sh [--install | DEPLOY_DIR]
#
# DEPLOY_DIR (default deploy/) is checked instead of the repository's, for tests that break a
# copy on purpose.
# --install makes a Python virtualenv under target/ with the pinned tools (CI runs it from
# .ci/run). Without it, a missing virtualenv makes the script say so and exit 2 ("skipped").
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE=1.31.0      # schemas of Kubernetes 1.31
JSONSCHEMA=4.23.0
PYYAML=6.0.2
# The Compose Specification's schema, as docker-compose 1.29.2 ships it (only the JSON file
# is used; the wheel is not installed).
DOCKER_COMPOSE_WHEEL=1.29.2
KUBERNETES_VERSION=1.31.0

venv=${CARGO_TARGET_DIR:-target}/deploy-check
if [[ ${1:-} == --install ]]; then
  if [[ ! -x $venv/bin/kubernetes-validate || ! -f $venv/compose_spec.json ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "kubernetes-validate==$KUBERNETES_VALIDATE" \
      "jsonschema==$JSONSCHEMA" "pyyaml==$PYYAML"
    "$venv/bin/pip" download -q --no-deps -d "$venv/wheels" "docker-compose==$DOCKER_COMPOSE_WHEEL"
    "$venv/bin/python" - "$venv" <<'PY'
import glob, sys, zipfile
venv = sys.argv[1]
wheel = glob.glob(f"{venv}/wheels/docker_compose-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(f"{venv}/compose_spec.json", "wb") as out:
    out.write(z.read("compose/config/compose_spec.json"))
PY
  fi
  echo "deployment checks installed in $venv"
  exit 0
fi
deploy=deploy
if [[ -n ${1:-} ]]; then
  deploy=$(cd "$caller" && realpath -- "$1")
fi
if [[ ! -x $venv/bin/kubernetes-validate ]]; then
  echo "skipped: the validators are not installed (scripts/check-deploy.sh --install)"
  exit 2
fi

manifests=("$deploy"/kubernetes/{network-policy,node-config,nodes,bench-config,results,generators,merge}.yaml)
"$venv/bin/kubernetes-validate" --strict --quiet -k "$KUBERNETES_VERSION" "${manifests[@]}"
echo "kubernetes: ${#manifests[@]} manifests valid against Kubernetes $KUBERNETES_VERSION (strict)"

if command -v kubectl >/dev/null; then
  kubectl kustomize "$deploy/kubernetes" >/dev/null
  echo "kustomize: $deploy/kubernetes builds"
fi

if docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  docker compose -p paxbench -f "$deploy/compose/compose.yaml" config --quiet
  echo "compose: docker compose config accepts $deploy/compose/compose.yaml"
else
  "$venv/bin/python" - "$venv/compose_spec.json" "$deploy/compose/compose.yaml" <<'PY'
import json, sys, jsonschema, yaml
schema = json.load(open(sys.argv[1]))
try:
    jsonschema.validate(yaml.safe_load(open(sys.argv[2])), schema)
except jsonschema.ValidationError as e:
    where = "/".join(str(p) for p in e.absolute_path)
    sys.exit(f"{sys.argv[2]}: {where}: {e.message}")
PY
  echo "compose: $deploy/compose/compose.yaml valid against the Compose Specification schema (no Docker engine here)"
fi
