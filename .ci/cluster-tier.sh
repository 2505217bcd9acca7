#!/usr/bin/env bash
# Real-cluster tier: TAU's chart, operator and relay on a single-node
# Kubernetes cluster whose pods really run (.ci/cluster-up.sh: kubelet on
# containerd + runc, controller-manager, scheduler, kube-proxy, CoreDNS), driven
# with helm and kubectl exactly as a user would, against the fake Twitch
# (tests/fake-twitch, served on the bridge address).
#
#   sudo bash .ci/cluster-tier.sh      # as root; ~1 min warm (binaries cached);
#                                      # first run builds node binaries, CoreDNS
#                                      # and release binaries (~20-50 min cold)
#
# Scenarios, in order, each checked before the next (issue 10):
#  1. `helm install` of charts/tau -> the operator Deployment is available,
#     its pod holds the leader Lease and its /readyz says leader.
#  2. examples/twitchchannel.yaml (websocket transport, broadcaster set to the
#     fake's user) -> relay Deployment, its PVC bound, pod Ready, channel
#     RelayReady, but Authorized=False and SubscriptionsReady=False (the
#     operator reads the relay's status through its Service); Connect Twitch:
#     the OAuth authorization-code flow walked through the relay's Service
#     (the callback the fake redirects the "browser" to,
#     http://localhost:8000/..., goes to the Service, as a port-forward
#     would) -> the relay opens an EventSub WebSocket session with
#     subscriptions at the fake -> the channel turns Authorized,
#     SubscriptionsReady (naming that session) and Ready -> a bot connected
#     through the Service receives the event the fake sends on that session.
#  4. `kubectl delete pod` of that single-replica channel -> the replacement
#     pod (on the same PersistentVolumeClaim) still has the stored events,
#     an API token created through the API before the restart, and the
#     Twitch authorization: it opens a new EventSub session by itself (no
#     new OAuth walk) and a new event reaches a bot.
#  5-8. .ci/cluster-lifecycle.sh: rotating the credentials Secret rolls the
#     relay, which then refreshes with the new secret; deleting a channel with
#     the operator gone; leader failover with 2 operator replicas;
#     operator.namespaces moved from the channels' namespace to another.
#  9, 3. .ci/cluster-fleet.sh (before 5-8: it needs the channel of 2/4 and the
#     operator serving the channels' namespace): the chart's bundled Postgres and Redis; conduit
#     and webhook channels with 3 replicas, a pod deleted mid-stream.
#  10. .ci/cluster-ingress.sh, around 9 and 3 (its bot idles while they
#     run): Traefik, built from the Go module proxy, serving a webhook
#     channel's Ingress; the webhook verification and deliveries, the
#     dashboard and a bot's websocket all through it; the websocket stays up
#     through minutes without events and resumes with `since` across a relay
#     rollout, missing nothing.
#
# The cluster is always torn down (trap), and the host verified to be as it
# was (cluster-up.sh stop: processes, iptables, sysctls, cgroups, cni0, netns,
# mounts; the packet guard must have dropped nothing). On failure the logs
# stay in the work dir it prints (cluster/*.log, fake-twitch.log, pod logs).
#
# Needs: root, cargo, go (first run), curl, jq, python3, helm/etcd/... from
# .ci/k8s-binaries.sh --cluster, Debian packages containerd runc
# containernetworking-plugins iptables conntrack umoci skopeo.
# CARGO_TARGET_DIR is honoured (release binaries: the image holds them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

NS=tau-system           # release namespace
CHANNELS=tau-channels   # the channels' namespace
RELEASE=tau
CHANNEL=my-channel      # examples/twitchchannel.yaml
BROADCASTER=cooler_user # the fake's only user (tau_fake_twitch::FakeTwitch::BROADCASTER_LOGIN)
CLIENT_ID=faketauclientid000000000000000
CLIENT_SECRET=faketauclientsecret00000000000

STEP_NAME="" STEP_T0=""
T0=$EPOCHREALTIME
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}'; }
step() {
  [[ -n $STEP_NAME ]] && echo "--- cluster: $STEP_NAME: ok in $(elapsed "$STEP_T0") s"
  STEP_NAME=$1 STEP_T0=$EPOCHREALTIME
  [[ -n $STEP_NAME ]] && echo "--- cluster: $STEP_NAME"
  return 0
}
die() { echo "FAIL (cluster tier, step: ${STEP_NAME:-setup}): $*" >&2; exit 1; }
for c in cargo curl jq python3 kubectl; do command -v "$c" >/dev/null || die "$c is required"; done
[[ $(id -u) == 0 ]] || die "run as root (the kubelet, containerd and CNI need it)"
# One cluster per machine (cni0, port 6443): a second run waits its turn.
exec 9>/run/tau-cluster-tier.lock
flock -w 1800 9 || die "another cluster tier still holds /run/tau-cluster-tier.lock after 30 min"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tau-cluster-tier.XXXXXX")
CLUSTER=$WORK/cluster
FAKE_PID=""
BOT_PIDS=()
cleanup() {
  local rc=$? p
  set +e
  for p in "${BOT_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  if [[ $rc -ne 0 && -f $CLUSTER/kubeconfig ]]; then
    # What a user would look at, saved before the cluster goes.
    {
      KUBECONFIG=$CLUSTER/kubeconfig kubectl get all,pvc,pv,twitchchannels,leases -A -o wide
      KUBECONFIG=$CLUSTER/kubeconfig kubectl get events -A --sort-by=.lastTimestamp | tail -n 60
      KUBECONFIG=$CLUSTER/kubeconfig kubectl -n "$CHANNELS" get twitchchannels -o yaml
    } >"$WORK/cluster-state.txt" 2>&1
    for pod in $(KUBECONFIG=$CLUSTER/kubeconfig kubectl get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}' 2>/dev/null); do
      KUBECONFIG=$CLUSTER/kubeconfig kubectl -n "${pod%/*}" logs --all-containers "${pod#*/}" >"$WORK/pod-${pod//\//_}.log" 2>&1
    done
  fi
  [[ -n $FAKE_PID ]] && kill "$FAKE_PID" 2>/dev/null && wait "$FAKE_PID" 2>/dev/null
  local t=$EPOCHREALTIME down=0
  if [[ -f $CLUSTER/bin.path ]]; then
    bash .ci/cluster-up.sh stop "$CLUSTER" || down=1
    echo "--- cluster: teardown in $(elapsed "$t") s"
  fi
  if [[ $rc -ne 0 || $down -ne 0 ]]; then
    echo "cluster tier FAILED after $(elapsed "$T0") s; logs: $WORK (cluster/*.log: control plane, kubelet, containerd;" \
      "pod-*.log; fake-twitch.log; bot-*.jsonl; cluster-state.txt)" >&2
    exit 1
  fi
  rm -rf "$WORK"
  echo "=== cluster tier passed in $(elapsed "$T0") s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # wait_for SECONDS WHAT CMD...
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${limit} s waiting for: $what"
    sleep 0.5
  done
}

# ------------------------------------------------------------- build --
step "binaries (k8s-binaries.sh --cluster; cargo build --release: tau-relay, tau-operator, fake-twitch)"
K8S_BIN=$(bash .ci/k8s-binaries.sh --cluster | tail -n 1)
HELM=$K8S_BIN/helm
nice cargo build --quiet --release --locked -p tau-relay -p tau-operator -p tau-fake-twitch --bins
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/release
for b in tau-relay tau-operator fake-twitch; do [[ -x $TARGET/$b ]] || die "$TARGET/$b missing"; done

step "TAU image (umoci + skopeo, no Docker) tagged as the chart renders it; Traefik's"
app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/tau/Chart.yaml)
IMAGE=$("$HELM" template "$RELEASE" charts/tau | sed -n 's/^ *image: *"\{0,1\}\([^" ]\{1,\}\)"\{0,1\}$/\1/p' | head -n 1)
[[ $IMAGE == "ghcr.io/tau-dev/tau:$app_version" ]] || die "the chart renders image '$IMAGE', expected ghcr.io/tau-dev/tau:$app_version"
bash .ci/tau-image.sh tau "$IMAGE" "$WORK/tau-image.tar" "$TARGET/tau-relay" "$TARGET/tau-operator"
SERVICE_IMAGES=$(bash .ci/service-images.sh "$HELM") # "REF TAR" of the bundled Postgres/Redis (scenario 9)
TRAEFIK_BIN=$(bash .ci/traefik.sh | tail -n 1)      # scenario 10
TRAEFIK_IMAGE=localhost/traefik:$(basename "$(dirname "$TRAEFIK_BIN")")
TRAEFIK_TAR=$WORK/traefik-image.tar
bash .ci/tau-image.sh --static "$TRAEFIK_BIN" "$TRAEFIK_IMAGE" "$TRAEFIK_TAR"

# -------------------------------------------------------------- cluster --
step "cluster up (.ci/cluster-up.sh start)"
TAU_K8S_BIN=$K8S_BIN bash .ci/cluster-up.sh start "$CLUSTER" >/dev/null
# shellcheck disable=SC1091
source "$CLUSTER/env"
export KUBECONFIG
BRIDGE=$TAU_CLUSTER_BRIDGE_IP
kubectl get nodes -o wide
ctr --address "$TAU_CLUSTER_CONTAINERD" -n k8s.io images import "$WORK/tau-image.tar" >/dev/null
ctr --address "$TAU_CLUSTER_CONTAINERD" -n k8s.io images ls -q | grep -x "$IMAGE" >/dev/null || die "$IMAGE not in containerd after import"
while read -r ref tar; do
  ctr --address "$TAU_CLUSTER_CONTAINERD" -n k8s.io images import "$tar" >/dev/null
  ctr --address "$TAU_CLUSTER_CONTAINERD" -n k8s.io images ls -q | grep -xF "$ref" >/dev/null || die "$ref not in containerd after import"
done <<<"$SERVICE_IMAGES"

step "fake Twitch on the bridge address ($BRIDGE)"
"$TARGET/fake-twitch" --listen "$BRIDGE:0" --control 127.0.0.1:0 >"$WORK/fake-twitch.out" 2>"$WORK/fake-twitch.log" &
FAKE_PID=$!
wait_for 10 "fake-twitch listening" grep -q '^control ' "$WORK/fake-twitch.out"
TWITCH=$(sed -n 's/^twitch //p' "$WORK/fake-twitch.out")
CONTROL=$(sed -n 's/^control //p' "$WORK/fake-twitch.out")
echo "fake Twitch: $TWITCH (control $CONTROL)"

# ------------------------------------------------ 1. helm install --
step "1. helm install charts/tau -> operator available and leader"
# As the README: the channels' namespace first, served through operator.namespaces.
kubectl create namespace "$NS" >/dev/null
kubectl create namespace "$CHANNELS" >/dev/null
"$HELM" install "$RELEASE" charts/tau --namespace "$NS" \
  --set twitch.apiUrl="$TWITCH/helix" --set twitch.authUrl="$TWITCH/oauth2" \
  --set twitch.eventsubWsUrl="ws://${TWITCH#http://}/ws" \
  --set operator.resync=30s --set operator.errorBackoff=2s \
  --set "operator.namespaces={$CHANNELS}" >"$WORK/helm-install.txt"
# Least privilege: a Role where channels live, no ClusterRole (scenario 8 moves it).
kubectl -n "$CHANNELS" get role "$RELEASE-operator" >/dev/null || die "operator.namespaces={$CHANNELS} installed no Role there"
kubectl get clusterrole "$RELEASE-operator" >/dev/null 2>&1 && die "operator.namespaces={$CHANNELS} installed a ClusterRole"
kubectl -n "$NS" rollout status deployment/"$RELEASE-operator" --timeout=120s || die "the operator Deployment did not become available"
op_pod=$(kubectl -n "$NS" get pods -l app.kubernetes.io/component=operator -o jsonpath='{.items[0].metadata.name}')
op_ip=$(kubectl -n "$NS" get pod "$op_pod" -o jsonpath='{.status.podIP}')
lease_holder() { [[ $(kubectl -n "$NS" get lease "$RELEASE-operator" -o jsonpath='{.spec.holderIdentity}') == "$op_pod" ]]; }
wait_for 60 "Lease $NS/$RELEASE-operator held by $op_pod" lease_holder
readyz=$(curl -sf --max-time 5 "http://$op_ip:8080/readyz") || die "operator /readyz at $op_ip failed"
grep -q leader <<<"$readyz" || die "operator /readyz does not say leader: $readyz"
echo "operator $op_pod ($op_ip) holds the Lease; /readyz: $readyz"

# ------------------------------------- 2. websocket channel end to end --
step "2a. websocket TwitchChannel (examples/) -> relay pod Ready on its PVC"
sed -e "s/your-twitch-client-id/$CLIENT_ID/" -e "s/your-twitch-client-secret/$CLIENT_SECRET/" \
  examples/twitch-credentials.yaml | kubectl -n "$CHANNELS" apply -f - >/dev/null
sed "s/broadcaster: your_twitch_login/broadcaster: $BROADCASTER/" examples/twitchchannel.yaml |
  kubectl -n "$CHANNELS" apply -f - >/dev/null
RELAY=tau-$CHANNEL
wait_for 60 "Deployment $RELAY" kubectl -n "$CHANNELS" get deployment "$RELAY"
kubectl -n "$CHANNELS" rollout status deployment/"$RELAY" --timeout=180s || die "the relay Deployment did not become available"
pvc_phase=$(kubectl -n "$CHANNELS" get pvc "$RELAY" -o jsonpath='{.status.phase}')
[[ $pvc_phase == Bound ]] || die "PVC $RELAY is $pvc_phase"
relay_ready() { [[ $(kubectl -n "$CHANNELS" get twitchchannel "$CHANNEL" -o jsonpath='{.status.conditions[?(@.type=="RelayReady")].status}') == True ]]; }
wait_for 90 "TwitchChannel $CHANNEL RelayReady=True" relay_ready
SVC=$(kubectl -n "$CHANNELS" get service "$RELAY" -o jsonpath='{.spec.clusterIP}')
SVC_PORT=$(kubectl -n "$CHANNELS" get service "$RELAY" -o jsonpath='{.spec.ports[0].port}')
BASE=http://$SVC:$SVC_PORT
TOKEN=$(kubectl -n "$CHANNELS" get secret "$RELAY" -o jsonpath='{.data.api-token}' | base64 -d)
# kube-proxy programs the Service a moment after the pod is Ready.
wait_for 30 "relay /readyz through the Service ($BASE)" curl -sf --max-time 3 "$BASE/readyz"
pod1=$(kubectl -n "$CHANNELS" get pods -l tau.dev/channel=$CHANNEL -o jsonpath='{.items[0].metadata.name}')
echo "relay pod $pod1 Ready; Service $BASE; PVC $RELAY Bound"

api() { # api METHOD PATH [BODY]: the relay's REST API through the Service
  curl -sf --max-time 10 -X "$1" -H "Authorization: Token $TOKEN" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "$BASE$2"
}

condition() { # condition TYPE [FIELD]: the channel's condition, "status reason" (or FIELD)
  kubectl -n "$CHANNELS" get twitchchannel "$CHANNEL" -o json |
    jq -r --arg t "$1" --arg f "${2:-}" '.status.conditions[]? | select(.type == $t)
      | if $f == "" then "\(.status) \(.reason)" else .[$f] end'
}
condition_is() { [[ "$(condition "$1") " == "$2 "* ]]; } # condition_is TYPE "STATUS[ REASON]"
# Nobody has connected Twitch yet: the operator must say so, as the relay reports it.
wait_for 60 "TwitchChannel $CHANNEL Authorized=False NotAuthorized (read from the relay)" condition_is Authorized "False NotAuthorized"
condition_is SubscriptionsReady False || die "SubscriptionsReady is $(condition SubscriptionsReady) before any authorization"
condition_is Ready False || die "Ready is $(condition Ready) before any authorization"
grep -q '/twitch/authorize' <<<"$(condition Authorized message)" ||
  die "Authorized does not say where to connect Twitch: $(condition Authorized message)"
echo "before Connect Twitch: Authorized $(condition Authorized): $(condition Authorized message)"
echo "  SubscriptionsReady $(condition SubscriptionsReady): $(condition SubscriptionsReady message)"

step "2b. Connect Twitch: OAuth through the Service -> EventSub session at the fake -> channel Ready"
H=$WORK/oauth
curl -s --max-time 10 -D "$H.1" -o /dev/null -H "Authorization: Token $TOKEN" "$BASE/twitch/authorize"
grep -q '^HTTP/1.1 303' "$H.1" || die "/twitch/authorize did not redirect: $(head -n 1 "$H.1")"
cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' "$H.1" | head -n 1)
to_twitch=$(sed -n 's/^[Ll]ocation: \(.*\)\r$/\1/p' "$H.1")
[[ $to_twitch == "$TWITCH/oauth2/authorize?"* ]] || die "authorize goes to '$to_twitch', not the fake Twitch"
curl -s --max-time 10 -D "$H.2" -o /dev/null "$to_twitch"
back=$(sed -n 's/^[Ll]ocation: \(.*\)\r$/\1/p' "$H.2")
[[ $back == http://localhost:8000/twitch-callback/* ]] || die "Twitch redirected to '$back', not the channel's publicUrl callback"
# The browser's localhost:8000 is a port-forward to the Service: go there.
callback=$BASE${back#http://localhost:8000}
code=$(curl -s --max-time 10 -o "$H.3" -w '%{http_code}' -H "Cookie: $cookie" "$callback")
[[ $code == 2* || $code == 3* ]] || die "callback answered $code: $(head -c 300 "$H.3")"
user_state() { api GET /api/v1/status | jq -e '.twitch.user_token.state == "valid"'; }
wait_for 30 "relay status: user token valid" user_state
session_with_subs() { curl -sf "$CONTROL/sessions" | jq -e '[.[] | select(.connected and (.subscription_ids | length) > 0)] | length == 1'; }
wait_for 60 "an EventSub session with subscriptions at the fake" session_with_subs
session1=$(curl -sf "$CONTROL/sessions" | jq -r '[.[] | select(.connected)][0].id')
nsubs=$(curl -sf "$CONTROL/sessions" | jq -r '[.[] | select(.connected)][0].subscription_ids | length')
echo "authorized; EventSub session $session1 with $nsubs subscriptions"
api GET /api/v1/status | jq -c '{user_token: .twitch.user_token.state, eventsub: .twitch.eventsub.state, session: .twitch.eventsub.session_id}'
# The operator polls a channel that is not Ready (backoff capped at resync=30s).
wait_for 90 "TwitchChannel $CHANNEL Authorized=True" condition_is Authorized True
wait_for 60 "TwitchChannel $CHANNEL SubscriptionsReady=True" condition_is SubscriptionsReady True
wait_for 30 "TwitchChannel $CHANNEL Ready=True" condition_is Ready True
grep -q "$session1" <<<"$(condition SubscriptionsReady message)" ||
  die "SubscriptionsReady does not name session $session1: $(condition SubscriptionsReady message)"
subs_ready=$(kubectl -n "$CHANNELS" get twitchchannel "$CHANNEL" -o jsonpath='{.status.subscriptionsReady}')
[[ $subs_ready == "$nsubs/$nsubs" ]] || die "status.subscriptionsReady is '$subs_ready', the fake has $nsubs subscriptions"
echo "channel Ready; SubscriptionsReady: $(condition SubscriptionsReady message)"
kubectl -n "$CHANNELS" get twitchchannel "$CHANNEL"

step "2c. an event the fake Twitch sends reaches a bot connected through the Service"
start_bot() { # start_bot NAME TOKEN
  python3 .ci/tau-bot.py "ws://$SVC:$SVC_PORT/ws/twitch-events/" "$2" "$WORK/bot-$1.jsonl" 2>"$WORK/bot-$1.err" &
  BOT_PIDS+=($!)
  wait_for 15 "bot $1 connected" grep -q '"bot": "connected"' "$WORK/bot-$1.jsonl"
  clients_at_least() { api GET /api/v1/status | jq -e ".clients_connected >= $1"; }
  wait_for 15 "the relay counts bot $1" clients_at_least 1
}
send_follow() { # send_follow USER -> prints the Twitch message id
  curl -sf --max-time 10 -X POST "$CONTROL/notify" -H 'Content-Type: application/json' --data "$(jq -cn --arg u "$1" \
    '{type: "channel.follow", version: "2", event: {user_id: "9001", user_login: $u, user_name: $u,
      broadcaster_user_id: "1337", broadcaster_user_login: "cooler_user", broadcaster_user_name: "Cooler_User",
      followed_at: "2026-12-01T20:00:00Z"}}')" | jq -er .message_id
}
bot_got() { # bot_got NAME MESSAGE-ID
  jq -e --arg id "$2" 'select(.event_id == $id and .event_type == "channel-follow" and .origin == "twitch")' "$WORK/bot-$1.jsonl"
}
start_bot one "$TOKEN"
msg1=$(send_follow first_follower) || die "the fake could not send on the relay's session"
wait_for 20 "bot one receives event $msg1" bot_got one "$msg1"
jq -c "select(.event_id == \"$msg1\") | {event_id, event_type, user: .event_data.user_login}" "$WORK/bot-one.jsonl"
stored1=$(api GET /api/v1/status | jq -r .events_stored)
((stored1 >= 1)) || die "the relay stored $stored1 events"

# ------------------------------- 4. restart keeps the channel's state --
step "4. kubectl delete pod -> the replacement keeps history, API tokens and the Twitch authorization"
extra=$(api POST /api/v1/tokens '{"name":"cluster-tier bot","role":"bot"}' | jq -er .token) || die "could not create an API token"
kubectl -n "$CHANNELS" delete pod "$pod1" --wait=false >/dev/null
new_pod_ready() {
  local p
  p=$(kubectl -n "$CHANNELS" get pods -l tau.dev/channel=$CHANNEL -o json |
    jq -r --arg old "$pod1" '.items[] | select(.metadata.name != $old and .metadata.deletionTimestamp == null)
      | select(any(.status.conditions[]?; .type == "Ready" and .status == "True")) | .metadata.name')
  [[ -n $p ]] && echo "$p"
}
wait_for 120 "a replacement relay pod Ready" new_pod_ready
pod2=$(new_pod_ready)
wait_for 30 "relay /readyz through the Service" curl -sf --max-time 3 "$BASE/readyz"
echo "replacement pod $pod2 Ready"
# History: the event from before the restart, by the generated API token.
in_history() { api GET "/api/v1/twitch-events?event_type=channel-follow" | jq -e --arg id "$msg1" '[.results[] | select(.event_id == $id)] | length == 1'; }
wait_for 20 "event $msg1 in the history after the restart" in_history
# API tokens: the one created through the API before the restart still works.
curl -sf --max-time 10 -H "Authorization: Token $extra" "$BASE/api/v1/status" >/dev/null ||
  die "the API token created before the restart is not accepted after it"
# Twitch authorization: a NEW session with subscriptions, without a new OAuth walk.
authorize_calls() { curl -sf "$CONTROL/requests" | jq '[.[] | select(.path == "/oauth2/authorize")] | length'; }
new_session() { curl -sf "$CONTROL/sessions" | jq -e --arg s "$session1" '[.[] | select(.connected and .id != $s and (.subscription_ids | length) > 0)] | length == 1'; }
wait_for 60 "a new EventSub session of the replacement pod" new_session
[[ $(authorize_calls) == 1 ]] || die "the replacement needed a new OAuth authorization ($(authorize_calls) authorize requests)"
wait_for 20 "relay status: user token valid after the restart" user_state
start_bot two "$extra"
msg2=$(send_follow second_follower) || die "the fake could not send on the new session"
wait_for 20 "bot two receives event $msg2" bot_got two "$msg2"
stored2=$(api GET /api/v1/status | jq -r .events_stored)
((stored2 == stored1 + 1)) || die "events stored: $stored1 before the restart, $stored2 after one more event"
echo "history kept ($stored2 events), API token kept, authorization kept (new session, 1 OAuth walk in total)"

# shellcheck source=.ci/cluster-ingress.sh
source .ci/cluster-ingress.sh # 10. Traefik: webhooks, dashboard, a bot idle and across a rollout
ingress_start
# shellcheck source=.ci/cluster-fleet.sh
source .ci/cluster-fleet.sh # 9. bundled Postgres + Redis; 3. webhook/conduit channels, 3 replicas, kill mid-stream
ingress_finish
# shellcheck source=.ci/cluster-lifecycle.sh
source .ci/cluster-lifecycle.sh

step ""
