#!/usr/bin/env bash
# Chart tier: the Helm chart (charts/tau) checked statically and against a
# REAL kube-apiserver (etcd + kube-apiserver processes, see K8S-NOTES.md).
#
#   bash .ci/chart-tier.sh
#
# 1. static: the chart's CRD is crds/twitchchannel.yaml byte for byte; the
#    chart's appVersion is the crates' version; `helm lint --strict` and
#    `helm template --kube-version 1.33` with default, full (ci/full-values.yaml),
#    dev, namespaced (the deprecated watchNamespace) and cluster
#    (allNamespaces) values; each grants the operator exactly where it serves
#    (a Role per namespace, or one ClusterRole); values typos are rejected by
#    the schema.
# 2. API server: `helm install` for real (full values), `helm upgrade` keeps
#    the generated passwords (lookup); `kubectl apply --server-side
#    --dry-run=server` of every rendered object of every render and of
#    examples/ (the CRD is installed for real first, so custom resources are
#    validated against its schema and CEL rules).
# 3. drift: every env var the chart sets on the operator is an option of
#    `tau-operator --help`; every Secret key it references exists; the image
#    tag defaults to appVersion; and the relay Deployments the real operator
#    builds from the chart's configuration only use variables of
#    `tau-relay --help`, Secret keys that exist, the port the chart's
#    NetworkPolicy opens, and values the relay accepts (it is started with them).
# 4. RBAC proof: the chart's ServiceAccount + Roles (one per namespace
#    served: full values serve two) are installed by helm, a token is minted
#    for the ServiceAccount (`kubectl create token`), and the real
#    tau-operator binary runs under that token with the chart's environment
#    through a scenario exercising every API call it makes (children,
#    orphans, status, finalizers, Events, the Lease). The apiserver's audit
#    log must show no request of the ServiceAccount denied, every granted verb
#    must have been used (least privilege), and `kubectl auth can-i --list`
#    must show nothing beyond the chart's rules: nothing at all in a
#    namespace not served, nothing cluster-wide. (allNamespaces renders the
#    same rules as one ClusterRole: the release is then upgraded to it and
#    the operator's real-apiserver test suite runs under the token.)
#
# Needs: cargo, curl, jq, openssl (k8s-up.sh), python3 or ss. Binaries: helm,
# etcd and kube-apiserver from .ci/k8s-binaries.sh (built once, cached).
# CARGO_TARGET_DIR is honoured. Prints the time of every step.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

KUBE_VERSION=1.33
RELEASE=tau                # release name: fullname "tau", operator "tau-operator"
NS=tau-ci                  # release namespace
CHANNELS=tau-channels      # namespace of the scenario's TwitchChannels (full values serve it and $NS)
CHART=charts/tau
FULL=$CHART/ci/full-values.yaml
DEV=$CHART/values-dev.yaml

# ------------------------------------------------------------ plumbing --
STEP_NAME="" STEP_T0=""
T0=$EPOCHREALTIME
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}'; }
step() { # step NAME: ends the previous step, starts the next
  [[ -n $STEP_NAME ]] && echo "--- chart: $STEP_NAME: ok in $(elapsed "$STEP_T0") s"
  STEP_NAME=$1 STEP_T0=$EPOCHREALTIME
  [[ -n $STEP_NAME ]] && echo "--- chart: $STEP_NAME"
  return 0
}
die() { echo "FAIL (chart tier, step: ${STEP_NAME:-setup}): $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 is required"; }
need cargo; need curl; need jq; need openssl

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tau-chart-tier.XXXXXX")
K8S_DIR=$WORK/k8s
OPERATOR_PID=""
RELAY_PID=""
cleanup() {
  local rc=$?
  [[ -n $RELAY_PID ]] && kill "$RELAY_PID" 2>/dev/null && wait "$RELAY_PID" 2>/dev/null
  if [[ -n $OPERATOR_PID ]] && kill -0 "$OPERATOR_PID" 2>/dev/null; then
    kill "$OPERATOR_PID" 2>/dev/null; wait "$OPERATOR_PID" 2>/dev/null
  fi
  if [[ -f $K8S_DIR/apiserver.port ]]; then bash .ci/k8s-up.sh stop "$K8S_DIR" >/dev/null 2>&1 || true; fi
  if [[ $rc -ne 0 ]]; then
    for f in "$WORK"/operator.log "$WORK"/relay.log; do
      [[ -s $f ]] && { echo "--- last lines of $f"; tail -n 40 "$f"; }
    done
    echo "chart tier FAILED after $(elapsed "$T0") s (work dir kept: $WORK)" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 30000))
}

# wait_for SECONDS WHAT CMD...: polls CMD every 0.5 s.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${limit} s waiting for: $what"
    sleep 0.5
  done
}

# Env var names a binary accepts: the `[env: NAME` markers of its --help.
env_names() { "$1" --help | grep -o '\[env: [A-Z0-9_]*' | cut -c 7- | sort -u; }
# Not options, read by both binaries: the tracing filter.
EXTRA_ENV="RUST_LOG"

# --------------------------------------------------------------- tools --
step "tools (helm, etcd, kube-apiserver; cargo build of tau-relay + tau-operator)"
K8S_BIN=$(bash .ci/k8s-binaries.sh | tail -n 1)
HELM=$K8S_BIN/helm
[[ -x $HELM ]] || die "no helm in $K8S_BIN"
"$HELM" version --short
cargo build --quiet -p tau-relay -p tau-operator --bins
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
RELAY_BIN=$TARGET/debug/tau-relay
OPERATOR_BIN=$TARGET/debug/tau-operator
[[ -x $RELAY_BIN && -x $OPERATOR_BIN ]] || die "binaries missing in $TARGET/debug"

# -------------------------------------------------------------- static --
step "CRD: chart copy equals the generated crds/twitchchannel.yaml"
cmp "$CHART/files/crds/twitchchannel.yaml" crds/twitchchannel.yaml ||
  die "charts/tau/files/crds/twitchchannel.yaml differs from crds/twitchchannel.yaml: cp crds/twitchchannel.yaml charts/tau/files/crds/"

step "versions: appVersion = crate versions; image tag defaults to appVersion"
app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$CHART/Chart.yaml")
[[ -n $app_version ]] || die "no appVersion in Chart.yaml"
for crate in relay operator; do
  v=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$crate/Cargo.toml" | head -n 1)
  [[ $v == "$app_version" ]] || die "Chart appVersion $app_version != $crate/Cargo.toml version $v"
done
grep -q '^  tag: ""$' "$CHART/values.yaml" || die "values.yaml image.tag must default to \"\" (= appVersion)"
echo "appVersion $app_version"

step "helm lint --strict (default, full, dev values)"
"$HELM" lint --strict "$CHART"
"$HELM" lint --strict "$CHART" -f "$FULL"
"$HELM" lint --strict "$CHART" -f "$DEV"

step "helm template --kube-version $KUBE_VERSION (default, full, dev, namespaced, cluster)"
# Rendered as release "$DRY" so the server-side dry-runs below do not collide
# with the release installed for real (StatefulSet volume claims are immutable).
DRY=dry
tpl() { "$HELM" template "$DRY" "$CHART" --namespace "$NS" --kube-version "$KUBE_VERSION" "$@"; }
tpl >"$WORK/default.yaml"
tpl -f "$FULL" >"$WORK/full.yaml"
tpl -f "$DEV" >"$WORK/dev.yaml"
tpl --set operator.watchNamespace="$CHANNELS" >"$WORK/namespaced.yaml"
tpl --set operator.allNamespaces=true >"$WORK/cluster.yaml"
RENDERS="default full dev namespaced cluster"
for r in $RENDERS; do
  printf '%-11s %3d objects\n' "$r" "$(grep -c '^kind: ' "$WORK/$r.yaml")"
done
# allNamespaces with a namespace list contradicts itself: refused with a reason.
if out=$(tpl --set operator.allNamespaces=true --set "operator.namespaces={$CHANNELS}" 2>&1); then
  die "operator.allNamespaces with operator.namespaces was accepted"
fi
grep -q "operator.allNamespaces serves every namespace" <<<"$out" || die "unexpected refusal: $out"
grep -q "image: ghcr.io/tau-dev/tau:$app_version\$" "$WORK/default.yaml" ||
  die "default operator image is not <repository>:$app_version"
grep -q "value: \"ghcr.io/tau-dev/tau:$app_version\"" "$WORK/default.yaml" ||
  die "default TAU_RELAY_IMAGE is not the TAU image at $app_version"

step "values.schema.json rejects typos"
rejects() { # rejects WHY HELM-ARGS...: helm must fail, naming the schema
  local out
  if out=$("$HELM" template "$RELEASE" "$CHART" "${@:2}" 2>&1); then
    die "schema accepted $1: ${*:2}"
  fi
  grep -q "don't meet the specifications of the schema" <<<"$out" || die "helm failed on $1 but not by the schema: $out"
  echo "rejected: $1"
}
rejects "a top-level typo" --set imagee.tag=x
rejects "a nested typo" --set operator.replicsa=2
rejects "a typo inside a list item" --set 'networkPolicy.dns[0].podSelectr.matchLabels.a=b'
rejects "a wrong type" --set-string operator.replicas=two
rejects "a bad duration" --set operator.resync=often
rejects "replicas > 1 without leader election" --set operator.replicas=2 --set operator.leaderElection.enabled=false
rejects "a resources typo" --set operator.resources.request.cpu=1

# ----------------------------------------------------------- apiserver --
step "start etcd + kube-apiserver (audit log on; OwnerReferencesPermissionEnforcement)"
mkdir -p "$K8S_DIR"
# Audit every request of the operator's ServiceAccount: the RBAC proof reads
# which calls it made and whether any was denied.
SA_USER=system:serviceaccount:$NS:$RELEASE-operator
cat >"$WORK/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    users: ["$SA_USER"]
  - level: None
EOF
# The admission plugin that makes blockOwnerDeletion need update on the
# owner's finalizers (on by default in OpenShift): the rule must be proven too.
TAU_K8S_BIN=$K8S_BIN TAU_K8S_APISERVER_ARGS="--audit-policy-file=$WORK/audit-policy.yaml --audit-log-path=$WORK/audit.log --audit-log-mode=blocking --enable-admission-plugins=OwnerReferencesPermissionEnforcement" \
  bash .ci/k8s-up.sh start "$K8S_DIR" >/dev/null
# shellcheck disable=SC1091
source "$K8S_DIR/env"
export KUBECONFIG
kubectl version 2>/dev/null | sed -n 's/^Server Version: /server /p'

step "prometheus-operator CRD stand-ins (ServiceMonitor, PodMonitor kinds only)"
# The real CRDs are not vendored here: these accept any spec, so the dry-run
# below proves the kinds and metadata, not the monitors' spec fields.
for kind in ServiceMonitor PodMonitor; do
  plural=$(tr '[:upper:]' '[:lower:]' <<<"$kind")s
  kubectl apply --server-side -f - >/dev/null <<EOF
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: $plural.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: $kind, plural: $plural, listKind: ${kind}List, singular: $(tr '[:upper:]' '[:lower:]' <<<"$kind")}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
EOF
done
kubectl wait --for condition=Established --timeout=60s crd/servicemonitors.monitoring.coreos.com crd/podmonitors.monitoring.coreos.com >/dev/null

step "helm install (full values) for real: CRD, RBAC, operator, Postgres, Redis, policies"
for ns in "$NS" "$CHANNELS"; do kubectl create namespace "$ns" >/dev/null; done
"$HELM" install "$RELEASE" "$CHART" --namespace "$NS" -f "$FULL" >"$WORK/install.txt"
grep -q "^kubectl -n $CHANNELS apply -f - <<'EOF'\$" "$WORK/install.txt" || die "NOTES do not tell the next command"
sed -n '/^NOTES:/,/^$/p' "$WORK/install.txt" | head -n 8
kubectl wait --for condition=Established --timeout=60s crd/twitchchannels.tau.dev >/dev/null
crd_annot=$(kubectl get crd twitchchannels.tau.dev -o jsonpath='{.metadata.annotations.helm\.sh/resource-policy}')
[[ $crd_annot == keep ]] || die "the CRD lacks helm.sh/resource-policy: keep"

step "the installed CRD's spec equals crds/twitchchannel.yaml"
kubectl create --dry-run=client -o json -f crds/twitchchannel.yaml | jq -S .spec >"$WORK/crd.generated.json"
"$HELM" get manifest "$RELEASE" -n "$NS" |
  awk '/^# Source: tau\/templates\/crd.yaml/{p=1;next} /^---/{p=0} p' >"$WORK/crd.chart.yaml"
kubectl create --dry-run=client -o json -f "$WORK/crd.chart.yaml" | jq -S .spec >"$WORK/crd.chart.json"
diff -u "$WORK/crd.generated.json" "$WORK/crd.chart.json" || die "the chart renders a different CRD spec"

step "helm upgrade keeps the generated Postgres and Redis passwords (lookup)"
secret_value() { kubectl -n "$1" get secret "$2" -o json | jq -er --arg k "$3" '.data[$k] | @base64d'; }
pg_before=$(secret_value "$NS" "$RELEASE-postgresql" password)
redis_before=$(secret_value "$NS" "$RELEASE-redis" password)
[[ ${#pg_before} -ge 32 && ${#redis_before} -ge 32 ]] || die "generated passwords are too short"
"$HELM" upgrade "$RELEASE" "$CHART" --namespace "$NS" -f "$FULL" >/dev/null
[[ $(secret_value "$NS" "$RELEASE-postgresql" password) == "$pg_before" ]] || die "helm upgrade changed the Postgres password"
[[ $(secret_value "$NS" "$RELEASE-redis" password) == "$redis_before" ]] || die "helm upgrade changed the Redis password"
[[ $(secret_value "$NS" "$RELEASE-postgresql" database-url) == *":$pg_before@$RELEASE-postgresql.$NS.svc:5432/"* ]] ||
  die "database-url does not carry the kept password and the Service's name"

step "kubectl apply --server-side --dry-run=server: every object of every render, and examples/"
for r in $RENDERS; do
  # Namespaces the render puts objects in must exist (dry-run does not create them).
  for ns in $(grep -h '^  namespace: ' "$WORK/$r.yaml" | awk '{print $2}' | sort -u); do
    kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns" >/dev/null
  done
  # --force-conflicts: the CRD belongs to the helm release installed above.
  kubectl apply --server-side --force-conflicts --dry-run=server --field-manager=chart-tier \
    -f "$WORK/$r.yaml" -o json >"$WORK/$r.server.json" ||
    die "the API server rejected the $r render"
  n_in=$(grep -c '^kind: ' "$WORK/$r.yaml")
  n_out=$(jq '.items | length' "$WORK/$r.server.json")
  [[ $n_in -eq $n_out ]] || die "$r: $n_in objects rendered, $n_out accepted"
  echo "$r: $n_out objects accepted"
done
for f in examples/*.yaml; do
  kubectl apply --server-side --dry-run=server -n "$CHANNELS" -f "$f" >/dev/null || die "$f is rejected"
done
examples=(examples/*.yaml)
echo "examples: ${#examples[@]} files accepted"
# And the CRD's own validation still rejects a bad channel.
if kubectl apply --server-side --dry-run=server -n "$CHANNELS" -f - >/dev/null 2>&1 <<'EOF'; then
apiVersion: tau.dev/v1alpha1
kind: TwitchChannel
metadata: {name: bad}
spec: {broadcaster: "Not A Login", credentials: {secretName: x}}
EOF
  die "a TwitchChannel with an invalid broadcaster was accepted"
fi

step "RBAC: each render grants the operator exactly the namespaces it serves"
# The RBAC shape of a render: "Kind namespace name" of the operator's roles
# and bindings (not the Lease's), and the operator's TAU_NAMESPACES.
rbac_shape() {
  jq -r '.items[]
    | if (.kind | test("^(Cluster)?Role(Binding)?$")) and (.metadata.name | endswith("-leader-election") | not) then
        "\(.kind) \(.metadata.namespace // "-") \(.metadata.name)"
      elif .kind == "Deployment" and (.metadata.name | endswith("-operator")) then
        "TAU_NAMESPACES \([.spec.template.spec.containers[0].env[] | select(.name == "TAU_NAMESPACES") | .value] | first // "unset")"
      else empty end' "$WORK/$1.server.json" | sort
}
expect_shape() { # expect_shape RENDER LINES...: the render's RBAC shape is exactly LINES
  diff -u <(printf '%s\n' "${@:2}" | sort) <(rbac_shape "$1") || die "$1: the operator's RBAC or TAU_NAMESPACES is not as expected"
  echo "$1: $(rbac_shape "$1" | grep -v TAU_NAMESPACES | tr '\n' ';') $(rbac_shape "$1" | grep TAU_NAMESPACES)"
}
role_in() { printf '%s\n' "Role $1 $DRY-tau-operator" "RoleBinding $1 $DRY-tau-operator"; }
# Least privilege by default: the release namespace only, nothing cluster-wide.
mapfile -t shape < <(role_in "$NS"; echo "TAU_NAMESPACES $NS")
expect_shape default "${shape[@]}"
mapfile -t shape < <(role_in default; echo "TAU_NAMESPACES default")
expect_shape dev "${shape[@]}"
# operator.namespaces + networkPolicy.relayNamespaces: one list.
mapfile -t shape < <(role_in "$CHANNELS"; role_in "$NS"; echo "TAU_NAMESPACES $CHANNELS,$NS")
expect_shape full "${shape[@]}"
# The deprecated operator.watchNamespace: a list of one.
mapfile -t shape < <(role_in "$CHANNELS"; echo "TAU_NAMESPACES $CHANNELS")
expect_shape namespaced "${shape[@]}"
expect_shape cluster "ClusterRole - $DRY-tau-operator" "ClusterRoleBinding - $DRY-tau-operator" "TAU_NAMESPACES unset"
# The bundled Postgres and Redis admit the relays of every namespace served;
# with allNamespaces, of any namespace.
for component in postgresql redis; do
  jq -e --arg n "$DRY-tau-$component" --arg a "$CHANNELS" --arg b "$NS" '
    [.items[] | select(.kind == "NetworkPolicy" and .metadata.name == $n)][0].spec.ingress[0].from[0]
    | .namespaceSelector.matchExpressions[0].values == [$a, $b]' "$WORK/full.server.json" >/dev/null ||
    die "full: the $component policy does not admit relays of $CHANNELS and $NS"
done
full_relay_policies=$(jq -r --arg n "$DRY-tau-relay" '[.items[] | select(.kind == "NetworkPolicy" and .metadata.name == $n) | .metadata.namespace] | sort | join(",")' "$WORK/full.server.json")
[[ $full_relay_policies == "$(printf '%s\n' "$CHANNELS" "$NS" | sort | paste -sd,)" ]] || die "full: relay policies in $full_relay_policies"
jq -e --arg n "$DRY-tau-relay" '[.items[] | select(.kind == "NetworkPolicy" and .metadata.name == $n)][0].spec.egress[-1].ports[0].port == 5433' \
  "$WORK/full.server.json" >/dev/null || die "full: networkPolicy.relayEgress is not in the relay policy"
# allNamespaces: the operator reaches relays in any namespace.
jq -e --arg n "$DRY-tau-operator" '[.items[] | select(.kind == "NetworkPolicy" and .metadata.name == $n)][0].spec.egress
  | any(.to // [] | any(.namespaceSelector == {} and .podSelector.matchLabels["app.kubernetes.io/name"] == "tau-relay"))' \
  "$WORK/cluster.server.json" >/dev/null || die "cluster: the operator's policy does not reach relays of any namespace"

step "drift: chart -> operator (env names, Secret keys, image)"
op_help_env=$(env_names "$OPERATOR_BIN")
for r in $RENDERS; do
  deploy=$(jq -c --arg n "$DRY-tau-operator" '.items[] | select(.kind=="Deployment" and .metadata.name==$n)' "$WORK/$r.server.json")
  [[ -n $deploy ]] || die "$r: no operator Deployment"
  for name in $(jq -r '.spec.template.spec.containers[0].env[].name' <<<"$deploy"); do
    grep -qx "$name" <<<"$op_help_env"$'\n'"$EXTRA_ENV" ||
      die "$r: the chart sets $name on the operator, which tau-operator --help does not list"
  done
  # Every Secret key the operator's env references exists in a Secret of the render.
  while IFS=$'\t' read -r secret key; do
    [[ -z $secret ]] && continue
    jq -e --arg s "$secret" --arg k "$key" \
      '[.items[] | select(.kind=="Secret" and .metadata.name==$s) | (.data // {}) + (.stringData // {}) | has($k)] | any' \
      "$WORK/$r.server.json" >/dev/null || die "$r: the operator reads key $key of Secret $secret, which the chart does not create"
  done < <(jq -r '.spec.template.spec.containers[0].env[] | .valueFrom.secretKeyRef // empty | [.name, .key] | @tsv' <<<"$deploy")
  echo "$r: $(jq '.spec.template.spec.containers[0].env | length' <<<"$deploy") operator env vars known to tau-operator"
done
relay_port=$(jq -r '.items[] | select(.kind=="NetworkPolicy" and (.metadata.name|endswith("-relay"))) | .spec.ingress[0].ports[0].port' "$WORK/full.server.json" | head -n 1)
grep -q "pub const PORT: i32 = $relay_port;" operator/src/build/deployment.rs ||
  die "the chart opens relay port $relay_port; operator/src/build/deployment.rs PORT differs"

# ------------------------------------------------------------ RBAC proof --
step "RBAC: token for the chart's ServiceAccount; can-i --list = the chart's rules"
SA=$RELEASE-operator
token=$(kubectl -n "$NS" create token "$SA" --duration=1h)
sed -e "s/token: .*/token: $token/" -e "s/- name: admin$/- name: $SA/" -e "s/user: admin$/user: $SA/" \
  "$K8S_DIR/kubeconfig" >"$WORK/sa.kubeconfig"
chmod 600 "$WORK/sa.kubeconfig"
sa() { KUBECONFIG=$WORK/sa.kubeconfig kubectl "$@"; }
[[ $(sa auth whoami -o jsonpath='{.status.userInfo.username}') == "$SA_USER" ]] || die "the token is not $SA_USER"
# Rules as "verb resource[.group][/sub][:name]" lines.
rules_of() { # rules_of JSON-of-Role-or-ClusterRole
  jq -r '.rules[] | . as $r | ($r.apiGroups[] ) as $g | $r.resources[] as $res | $r.verbs[] as $v
    | (if ($r.resourceNames // []) == [] then [""] else $r.resourceNames end)[] as $n
    | "\($v) \($res)\(if $g == "" then "" else "." + $g end)\(if $n == "" then "" else ":" + $n end)"' <<<"$1" |
    sed -E 's#^([a-z]+) ([a-z]+)/([a-z]+)\.([a-z.]+)#\1 \2.\4/\3#'
}
# can-i --list rows: Resources  Non-Resource-URLs  Resource-Names  Verbs
cani_rules() { # cani_rules NAMESPACE
  sa auth can-i --list -n "$1" | tail -n +2 | awk '$1 !~ /^\[/ && $2 ~ /^\[/ {
      res=$1; names=$3; verbs=""; for (i=4;i<=NF;i++) verbs=verbs" "$i
      gsub(/[\[\]]/, "", names); gsub(/[\[\]]/, "", verbs)
      n=split(verbs, v, " "); m=split(names, nm, " ")
      for (i=1;i<=n;i++) { if (m==0) print v[i], res; else for (j=1;j<=m;j++) print v[i], res ":" nm[j] }
    }' | sort -u
}
# Self-review rules every authenticated user has (system:basic-user).
BASIC="create selfsubjectaccessreviews.authorization.k8s.io
create selfsubjectreviews.authentication.k8s.io
create selfsubjectrulesreviews.authorization.k8s.io"
# Full values serve $CHANNELS and $NS: the same Role in each, nothing cluster-wide.
kubectl get clusterrole "$SA" >/dev/null 2>&1 && die "a ClusterRole $SA is installed without operator.allNamespaces"
operator_rules=$(rules_of "$(kubectl -n "$CHANNELS" get role "$SA" -o json)")
[[ $(rules_of "$(kubectl -n "$NS" get role "$SA" -o json)") == "$operator_rules" ]] ||
  die "the operator's Roles in $CHANNELS and $NS differ"
lease_rules=$(rules_of "$(kubectl -n "$NS" get role "$SA-leader-election" -o json)")
echo "$operator_rules" | sed "s/^/  granted in $CHANNELS and $NS: /"
echo "$lease_rules" | sed "s/^/  granted in $NS: /"
expected_channels=$(printf '%s\n%s\n' "$operator_rules" "$BASIC" | sort -u)
expected_release=$(printf '%s\n%s\n%s\n' "$operator_rules" "$lease_rules" "$BASIC" | sort -u)
diff -u <(echo "$expected_channels") <(cani_rules "$CHANNELS") || die "the ServiceAccount's permissions in $CHANNELS differ from the chart's rules"
diff -u <(echo "$expected_release") <(cani_rules "$NS") || die "the ServiceAccount's permissions in $NS differ from the chart's rules"
for denied in "update secrets" "get configmaps" "list namespaces" "update deployments" "get deployments" \
  "delete twitchchannels.tau.dev" "get pods" "create leases" "update twitchchannels.tau.dev" "create pods"; do
  # shellcheck disable=SC2086
  if sa auth can-i $denied -n "$CHANNELS" >/dev/null 2>&1; then die "the ServiceAccount may $denied"; fi
done
# Outside the namespaces served: nothing; and no Secret readable cluster-wide.
diff -u <(echo "$BASIC") <(cani_rules default) || die "the ServiceAccount has permissions in a namespace it does not serve"
for denied in "get secrets -n default" "list secrets -n default" "list secrets --all-namespaces" \
  "watch twitchchannels.tau.dev --all-namespaces"; do
  # shellcheck disable=SC2086
  if sa auth can-i $denied >/dev/null 2>&1; then die "the ServiceAccount may $denied"; fi
done
echo "exactly the chart's rules; nothing else"

step "RBAC: the real tau-operator under that token, with the chart's environment"
# The operator's environment is the installed Deployment's: plain values as
# they are, Secret references resolved, fieldRefs filled in. Overridden: the
# admin listen address (a free loopback port), the Twitch URLs (nothing
# listens there: this machine has no Twitch; webhook syncs fail and retry,
# which exercises Event series patches) and the error backoff (to repeat fast).
deploy_json=$(kubectl -n "$NS" get deployment "$RELEASE-operator" -o json)
op_env=()
while IFS=$'\t' read -r name kind a b; do
  case $kind in
    value) op_env+=("$name=$a") ;;
    secret) op_env+=("$name=$(secret_value "$NS" "$a" "$b")") ;;
    field)
      case $a in
        metadata.namespace) op_env+=("$name=$NS") ;;
        metadata.name) op_env+=("$name=$RELEASE-operator-chart-tier") ;;
        *) die "unhandled fieldRef $a" ;;
      esac ;;
  esac
done < <(jq -r '.spec.template.spec.containers[0].env[] |
  if .value != null then [.name, "value", .value, ""]
  elif .valueFrom.secretKeyRef then [.name, "secret", .valueFrom.secretKeyRef.name, .valueFrom.secretKeyRef.key]
  elif .valueFrom.fieldRef then [.name, "field", .valueFrom.fieldRef.fieldPath, ""]
  else error("unhandled env \(.name)") end | @tsv' <<<"$deploy_json")
admin_port=$(free_port)
op_env+=("TAU_OPERATOR_LISTEN=127.0.0.1:$admin_port" "TWITCH_API_URL=http://127.0.0.1:9/helix"
  "TWITCH_AUTH_URL=http://127.0.0.1:9/oauth2" "TAU_ERROR_BACKOFF=1s" "TAU_MAX_BACKOFF=4s")
relay_image=$(jq -r '.spec.template.spec.containers[0].env[] | select(.name=="TAU_RELAY_IMAGE") | .value' <<<"$deploy_json")
env -i PATH="$PATH" HOME="$HOME" KUBECONFIG="$WORK/sa.kubeconfig" "${op_env[@]}" "$OPERATOR_BIN" >"$WORK/operator.log" 2>&1 &
OPERATOR_PID=$!
wait_for 60 "operator /readyz says leader" bash -c "curl -sf http://127.0.0.1:$admin_port/readyz | grep -q leader"
holder=$(kubectl -n "$NS" get lease "$SA" -o jsonpath='{.spec.holderIdentity}')
[[ $holder == "$RELEASE-operator-chart-tier" ]] || die "the Lease $NS/$SA is held by '$holder'"
echo "operator up (pid $OPERATOR_PID), holds Lease $NS/$SA"

step "RBAC scenario: channels, children, orphans, status, Events, deletion"
# Strays carrying a channel's labels: the operator must delete them (orphan removal).
stray_labels="app.kubernetes.io/managed-by=tau-operator,tau.dev/channel=my-channel"
kubectl -n "$CHANNELS" create secret generic stray-secret --from-literal=a=b >/dev/null
kubectl -n "$CHANNELS" create service clusterip stray-service --tcp=80:80 >/dev/null
kubectl -n "$CHANNELS" create deployment stray-deployment --image=example.invalid/x >/dev/null
kubectl -n "$CHANNELS" create ingress stray-ingress --rule="stray.example.com/*=stray-service:80" >/dev/null
for kind in secret/stray-secret service/stray-service deployment/stray-deployment ingress/stray-ingress; do
  kubectl -n "$CHANNELS" label "$kind" app.kubernetes.io/managed-by=tau-operator tau.dev/channel=my-channel >/dev/null
done
kubectl -n "$CHANNELS" apply -f examples/twitch-credentials.yaml -f examples/twitchchannel.yaml \
  -f examples/twitchchannel-webhook.yaml >/dev/null
for ch in my-channel my-channel-webhook; do
  for kind in secret deployment service; do
    wait_for 60 "$kind tau-$ch" kubectl -n "$CHANNELS" get "$kind" "tau-$ch"
  done
done
wait_for 60 "ingress tau-my-channel-webhook" kubectl -n "$CHANNELS" get ingress tau-my-channel-webhook
# A channel keeping its state in the pod (SQLite) gets a PersistentVolumeClaim.
sed -e 's/name: my-channel$/name: my-channel-sqlite/' \
  -e 's|# databaseUrl: postgres://tau:password@postgres.example.com:5432/tau_my_channel|databaseUrl: sqlite:///var/lib/tau/tau.db|' \
  examples/twitchchannel.yaml | kubectl -n "$CHANNELS" apply -f - >/dev/null
wait_for 60 "pvc tau-my-channel-sqlite" kubectl -n "$CHANNELS" get pvc tau-my-channel-sqlite
[[ $(kubectl -n "$CHANNELS" get deployment tau-my-channel-sqlite -o jsonpath='{.spec.template.spec.volumes[?(@.name=="data")].persistentVolumeClaim.claimName}') == tau-my-channel-sqlite ]] ||
  die "the SQLite channel's relay does not mount its claim"
kubectl -n "$CHANNELS" get pvc tau-my-channel >/dev/null 2>&1 && die "a channel on the chart's Postgres got a claim"
for kind in secret service deployment ingress; do
  wait_for 60 "stray $kind deleted" bash -c "! kubectl -n $CHANNELS get $kind stray-$kind"
done
if kubectl -n "$CHANNELS" get secret,service,deployment,ingress -l "$stray_labels" -o name | grep -q stray; then
  die "strays left"
fi
wait_for 60 "status of my-channel" bash -c \
  "kubectl -n $CHANNELS get twitchchannel my-channel -o jsonpath='{.status.conditions[?(@.type==\"RelayReady\")].status}' | grep -q False"
# Make the relay Deployments ready by hand (no controller-manager here); the
# webhook channel subscribes (and takes its finalizer) only once a relay can
# answer Twitch's verification challenge.
for ch in my-channel my-channel-webhook; do
  gen=$(kubectl -n "$CHANNELS" get deployment "tau-$ch" -o jsonpath='{.metadata.generation}')
  kubectl -n "$CHANNELS" patch deployment "tau-$ch" --subresource=status --type=merge \
    -p "{\"status\":{\"observedGeneration\":$gen,\"replicas\":1,\"readyReplicas\":1,\"availableReplicas\":1,\"updatedReplicas\":1}}" >/dev/null
done
wait_for 60 "my-channel RelayReady=True" bash -c \
  "kubectl -n $CHANNELS get twitchchannel my-channel -o jsonpath='{.status.conditions[?(@.type==\"RelayReady\")].status}' | grep -q True"
wait_for 60 "finalizer on my-channel-webhook" bash -c \
  "kubectl -n $CHANNELS get twitchchannel my-channel-webhook -o jsonpath='{.metadata.finalizers}' | grep -q tau.dev/subscriptions"
# The webhook channel cannot reach Twitch: its failed reconciles repeat as one Event series.
wait_for 60 "an Event series (patched Event)" bash -c \
  "kubectl -n $CHANNELS get events.events.k8s.io -o json | jq -e '[.items[] | select(.series.count >= 2)] | length > 0'"
kubectl -n "$CHANNELS" get twitchchannels

step "drift: relay Deployments built by the operator from the chart's configuration"
relay_help_env=$(env_names "$RELAY_BIN")
chart_db_url=$(secret_value "$NS" "$RELEASE-postgresql" database-url)
chart_redis_url=$(secret_value "$NS" "$RELEASE-redis" redis-url)
for ch in my-channel my-channel-webhook; do
  d=$(kubectl -n "$CHANNELS" get deployment "tau-$ch" -o json)
  c=$(jq -c '.spec.template.spec.containers[0]' <<<"$d")
  [[ $(jq -r .image <<<"$c") == "$relay_image" ]] || die "tau-$ch runs $(jq -r .image <<<"$c"), not the chart's relay image $relay_image"
  [[ $(jq -r '.ports[] | select(.name=="http") | .containerPort' <<<"$c") == "$relay_port" ]] ||
    die "tau-$ch listens on another port than the chart's NetworkPolicy opens ($relay_port)"
  [[ $(jq -r '.env[] | select(.name=="TAU_LISTEN") | .value' <<<"$c") == *":$relay_port" ]] || die "tau-$ch TAU_LISTEN is not :$relay_port"
  for name in $(jq -r '.env[].name' <<<"$c"); do
    grep -qx "$name" <<<"$relay_help_env"$'\n'"$EXTRA_ENV" ||
      die "tau-$ch sets $name, which tau-relay --help does not list (the relay would silently ignore it)"
  done
  while IFS=$'\t' read -r secret key; do
    kubectl -n "$CHANNELS" get secret "$secret" -o json | jq -e --arg k "$key" '.data | has($k)' >/dev/null ||
      die "tau-$ch reads key $key of Secret $secret, which does not exist"
  done < <(jq -r '.env[] | .valueFrom.secretKeyRef // empty | [.name, .key] | @tsv' <<<"$c")
  [[ $(secret_value "$CHANNELS" "tau-$ch" database-url) == "$chart_db_url" || $ch == my-channel-webhook ]] ||
    die "tau-$ch does not use the chart's Postgres"
  [[ $(secret_value "$CHANNELS" "tau-$ch" redis-url) == "$chart_redis_url" || $ch == my-channel-webhook ]] ||
    die "tau-$ch does not use the chart's Redis"
  echo "tau-$ch: $(jq '.env | length' <<<"$c") env vars, all known to tau-relay; Secret keys exist; port $relay_port"
done

step "drift: the relay starts with the values the operator gave it"
# Same environment as the websocket channel's pod, with Secret references
# resolved; only where it runs differs: loopback port, SQLite in the work dir
# instead of the cluster-internal Postgres/Redis, Twitch unreachable.
c=$(kubectl -n "$CHANNELS" get deployment tau-my-channel -o json | jq -c '.spec.template.spec.containers[0]')
relay_env=()
while IFS=$'\t' read -r name kind a b; do
  case $kind in
    value) relay_env+=("$name=$a") ;;
    secret) relay_env+=("$name=$(secret_value "$CHANNELS" "$a" "$b")") ;;
  esac
done < <(jq -r '.env[] | if .value != null then [.name, "value", .value, ""]
  else [.name, "secret", .valueFrom.secretKeyRef.name, .valueFrom.secretKeyRef.key] end | @tsv' <<<"$c")
relay_port_local=$(free_port)
relay_env+=("TAU_LISTEN=127.0.0.1:$relay_port_local" "TAU_DATABASE_URL=sqlite://$WORK/relay.db"
  "TAU_SECRET_KEY_FILE=$WORK/relay-secret.key" "TWITCH_API_URL=http://127.0.0.1:9/helix"
  "TWITCH_AUTH_URL=http://127.0.0.1:9/oauth2" "TWITCH_EVENTSUB_WS_URL=ws://127.0.0.1:9/ws")
# No Redis here: drop TAU_REDIS_URL (an in-process bus instead).
relay_env=("${relay_env[@]/#TAU_REDIS_URL=*/TAU_CHART_TIER_NO_REDIS=1}")
(cd "$WORK" && exec env -i PATH="$PATH" HOME="$HOME" "${relay_env[@]}" "$RELAY_BIN") >"$WORK/relay.log" 2>&1 &
RELAY_PID=$!
wait_for 60 "relay /readyz" curl -sf "http://127.0.0.1:$relay_port_local/readyz"
kill "$RELAY_PID"; wait "$RELAY_PID" 2>/dev/null || true; RELAY_PID=""
echo "tau-relay accepted the operator's configuration and became ready"

step "RBAC scenario: delete the channels (finalizer removed), stop the operator (Lease released)"
kubectl -n "$CHANNELS" delete twitchchannel my-channel my-channel-webhook my-channel-sqlite --wait=false >/dev/null
wait_for 60 "channels gone" bash -c "[[ -z \$(kubectl -n $CHANNELS get twitchchannels -o name) ]]"
kill "$OPERATOR_PID"
wait "$OPERATOR_PID" || die "the operator exited with $? on SIGTERM"
OPERATOR_PID=""

step "RBAC: audit log: nothing denied; every granted verb used"
[[ -s $WORK/audit.log ]] || die "no audit log"
jq -r --arg u "$SA_USER" 'select(.user.username==$u and .objectRef != null and .stage != "ResponseStarted")
  | [.verb, (.objectRef.resource + (if (.objectRef.apiGroup // "") == "" then "" else "." + .objectRef.apiGroup end)
     + (if .objectRef.subresource then "/" + .objectRef.subresource else "" end)), (.responseStatus.code|tostring)] | @tsv' \
  "$WORK/audit.log" | sort | uniq -c | sort -k2 >"$WORK/audit.summary"
awk '{printf "  %5d x %-6s %-45s -> %s\n", $1, $2, $3, $4}' "$WORK/audit.summary"
if awk '$4 == 403' "$WORK/audit.summary" | grep -q .; then
  die "the API server denied the operator: $(awk '$4 == 403 {print $2, $3}' "$WORK/audit.summary" | tr '\n' ';')"
fi
grep -i forbidden "$WORK/operator.log" && die "the operator logged a Forbidden error"
# A server-side apply that created its object (201) was also authorized as
# `create` (the audit log names only the request's verb, patch).
used=$(awk '{print $2, $3} $2 == "patch" && $4 == 201 {print "create", $3}' "$WORK/audit.summary" | sort -u)
# Granted rules with resourceNames count as used when the verb+resource was.
unused=$(printf '%s\n%s\n' "$operator_rules" "$lease_rules" | sed 's/:.*//' | sort -u | while read -r v r; do
  grep -qx "$v $r" <<<"$used" || echo "$v $r"
done)
# Not a request of the operator's: the OwnerReferencesPermissionEnforcement
# admission plugin checks it when children are created with
# blockOwnerDeletion (they were: the children above exist).
ADMISSION_ONLY="update twitchchannels.tau.dev/finalizers"
unused=$(grep -vxF "$ADMISSION_ONLY" <<<"$unused" || true)
[[ -z $unused ]] || die "granted but never used by the operator (remove, or extend the scenario): $(tr '\n' ';' <<<"$unused")"
echo "every request allowed; every granted verb used"

step "RBAC: $ADMISSION_ONLY is needed (blockOwnerDeletion under OwnerReferencesPermissionEnforcement)"
kubectl -n "$CHANNELS" apply -f examples/twitchchannel.yaml >/dev/null
owner_uid=$(kubectl -n "$CHANNELS" get twitchchannel my-channel -o jsonpath='{.metadata.uid}')
probe() { # probe NAME: the operator's kind of child, applied under the token
  sa -n "$CHANNELS" apply --server-side --field-manager=chart-tier -f - 2>&1 <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: $1
  ownerReferences:
    - {apiVersion: tau.dev/v1alpha1, kind: TwitchChannel, name: my-channel, uid: $owner_uid, controller: true, blockOwnerDeletion: true}
stringData: {probe: "1"}
EOF
}
probe probe-with-rule >/dev/null || die "a child with blockOwnerDeletion was refused with the chart's rules"
kubectl -n "$CHANNELS" get role "$SA" -o json |
  jq '.rules |= map(select(.resources != ["twitchchannels/finalizers"]))' | kubectl replace -f - >/dev/null
if out=$(probe probe-without-rule); then die "blockOwnerDeletion was allowed without the finalizers rule: the rule is not needed"; fi
grep -q "cannot set blockOwnerDeletion" <<<"$out" || die "unexpected refusal: $out"
echo "without it: $out"

step "RBAC: operator.allNamespaces; the operator's real-apiserver test suite under its ClusterRole"
# Each test makes its own namespace, which only the cluster-wide mode covers:
# the release moves to operator.allNamespaces (one ClusterRole, the same
# rules) and the suite's operator client runs under the ServiceAccount token
# (operator/tests/support reads TAU_OPERATOR_KUBECONFIG; the tests' own
# client stays admin for CRDs, namespaces, Secrets and /status patches).
"$HELM" upgrade "$RELEASE" "$CHART" --namespace "$NS" -f "$FULL" --set operator.allNamespaces=true \
  --set-json 'operator.namespaces=[]' --set-json 'networkPolicy.relayNamespaces=[]' >/dev/null
kubectl get clusterrole "$SA" >/dev/null || die "operator.allNamespaces installed no ClusterRole"
kubectl -n "$CHANNELS" get role "$SA" >/dev/null 2>&1 && die "the Role in $CHANNELS outlived operator.allNamespaces"
[[ $(rules_of "$(kubectl get clusterrole "$SA" -o json)") == "$operator_rules" ]] ||
  die "the ClusterRole's rules differ from the namespaced Roles'"
sa auth can-i list secrets --all-namespaces >/dev/null || die "operator.allNamespaces: the ServiceAccount cannot list Secrets cluster-wide"
grep -q TAU_OPERATOR_KUBECONFIG operator/tests/support/mod.rs || die "operator/tests/support no longer reads TAU_OPERATOR_KUBECONFIG"
TAU_REQUIRE_SERVICES=1 TAU_OPERATOR_KUBECONFIG=$WORK/sa.kubeconfig \
  cargo test -p tau-operator --test apiserver --test lifecycle -- --test-threads=2 --skip scale

step ""
echo "=== chart tier passed in $(elapsed "$T0") s"
