#!/usr/bin/env bash
# Smoke test of the local control plane from .ci/k8s-up.sh: starts it in a
# temp dir, checks what the operator's tests rely on, stops it.
#   .ci/k8s-smoke.sh      # exit 0 and "k8s-smoke: N passed, 0 failed" when fine
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=$(mktemp -d "${TMPDIR:-/tmp}/tau-k8s-smoke.XXXXXX")
trap '"$HERE/k8s-up.sh" stop "$DIR" || true; rm -rf "$DIR"' EXIT

"$HERE/k8s-up.sh" start "$DIR" >/dev/null
# shellcheck disable=SC1091
source "$DIR/env"
helm=$TAU_K8S_BIN/helm
pass=0 fail=0
check() { # check NAME CMD...
  local name=$1; shift
  if "$@" >"$DIR/check.out" 2>&1; then
    pass=$((pass + 1)); echo "ok   $name"
  else
    fail=$((fail + 1)); echo "FAIL $name"; sed 's/^/     /' "$DIR/check.out"
  fi
}

cat >"$DIR/crd.yaml" <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.smoke.tau.dev}
spec:
  group: smoke.tau.dev
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties: {size: {type: integer}}
            x-kubernetes-validations: [{rule: "self.size <= 10", message: "size too big"}]
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
EOF
cat >"$DIR/deploy.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: d1}
spec:
  selector: {matchLabels: {app: d1}}
  template:
    metadata: {labels: {app: d1}}
    spec: {containers: [{name: c, image: busybox}]}
EOF

check "server version is v1.33" sh -c 'kubectl version -o json | grep -q "\"gitVersion\": \"v1.33"'
check "get namespaces" kubectl get ns default
check "apply CRD" kubectl apply -f "$DIR/crd.yaml"
check "CRD established" kubectl wait --for=condition=Established crd/widgets.smoke.tau.dev --timeout=30s
check "create custom object" sh -c 'echo "{\"apiVersion\":\"smoke.tau.dev/v1\",\"kind\":\"Widget\",\"metadata\":{\"name\":\"w1\"},\"spec\":{\"size\":3}}" | kubectl apply -f -'
check "CEL validation rejects" sh -c '! echo "{\"apiVersion\":\"smoke.tau.dev/v1\",\"kind\":\"Widget\",\"metadata\":{\"name\":\"w2\"},\"spec\":{\"size\":30}}" | kubectl apply -f -'
check "status subresource patch" kubectl patch widget w1 --subresource=status --type=merge -p '{"status":{"ready":true}}'
check "create serviceaccount" kubectl create serviceaccount x
check "TokenRequest + SA auth" sh -c 'kubectl --token="$(kubectl create token x)" auth whoami | grep -q system:serviceaccount:default:x'
check "RBAC denies SA" sh -c '! kubectl --token="$(kubectl create token x)" get widgets'
check "SSA dry-run Deployment" kubectl apply --server-side --dry-run=server -f "$DIR/deploy.yaml"
check "SSA Deployment" kubectl apply --server-side -f "$DIR/deploy.yaml"
check "patch Deployment status" kubectl patch deploy d1 --subresource=status --type=merge -p '{"status":{"readyReplicas":1,"replicas":1}}'
check "helm template" sh -c "cd '$DIR' && '$helm' create hc >/dev/null && '$helm' template hc ./hc --kube-version 1.33.0 | grep -q 'kind: Deployment'"
check "helm install" "$helm" install hc "$DIR/hc"

echo "k8s-smoke: $pass passed, $fail failed"
((fail == 0))
