#!/usr/bin/env bash
# Operator tier: the operator against a real etcd + kube-apiserver.
#
# Builds (or reuses the cached) k8s binaries, starts a throwaway control
# plane in a temp dir, runs operator/tests/apiserver.rs with
# TAU_REQUIRE_SERVICES=1 (a skip is a failure here), and always stops the
# control plane. Extra arguments go to the test binary, e.g.
#   bash .ci/operator-tier.sh scale      # only the 100-channel test
# Knobs: TAU_QUIET_SECONDS (quiet period of the scale test, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="$(bash .ci/k8s-binaries.sh | tail -n 1)"
dir="$(mktemp -d "${TMPDIR:-/tmp}/tau-operator-k8s.XXXXXX")"
cleanup() {
  bash .ci/k8s-up.sh stop "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

TAU_K8S_BIN="$bin" bash .ci/k8s-up.sh start "$dir" >/dev/null
# shellcheck disable=SC1091
source "$dir/env"
export KUBECONFIG TAU_REQUIRE_SERVICES=1

cargo test -p tau-operator --test apiserver --test lifecycle -- --nocapture --test-threads=2 "$@"
