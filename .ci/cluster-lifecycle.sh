# shellcheck shell=bash disable=SC2154
# Real-cluster tier, scenarios 5-8 of issue 10: what happens to a running
# channel and to the operator over time. Sourced by .ci/cluster-tier.sh after
# scenario 4 (uses its helpers: step, die, wait_for, api, start_bot,
# send_follow, bot_got, and its variables: NS, CHANNELS, CHANNEL, RELAY, BASE,
# CONTROL, HELM, RELEASE, TOKEN, extra, pod2).
#
#  5. Rotate the client secret (at the fake Twitch, as in Twitch's console,
#     then in the credentials Secret) -> the operator notices the Secret, the
#     relay Deployment rolls (inputs checksum), and the new pod refreshes the
#     broadcaster's expired user token with the NEW secret (the fake refuses
#     the old one) and serves events again.
#  6. Delete the TwitchChannel with the operator scaled to zero -> it is gone
#     at once (a websocket channel owns nothing at Twitch, so it carries no
#     finalizer) and the garbage collector removes its Deployment, Service,
#     Secret and PersistentVolumeClaim.
#  7. Operator with 2 replicas: kill the leader (no graceful release) -> the
#     other takes the Lease and reconciles a new channel.
#  8. `helm upgrade --set operator.namespaces={<ns>}` (from the channels'
#     namespace to another) -> the Role moves to <ns>, no ClusterRole; the
#     operator (TAU_NAMESPACES=<ns>) is Ready, leader, reconciles a channel
#     there and ignores one in the namespace it no longer serves.
# (SC2154: pod2, extra, ... are set by cluster-tier.sh.)

pods_of() { # pods_of NAMESPACE SELECTOR: names of live pods
  kubectl -n "$1" get pods -l "$2" -o json |
    jq -r '.items[] | select(.metadata.deletionTimestamp == null) | .metadata.name'
}
ready_pod_other_than() { # ready_pod_other_than NAMESPACE SELECTOR OLD
  kubectl -n "$1" get pods -l "$2" -o json |
    jq -er --arg old "$3" '[.items[] | select(.metadata.name != $old and .metadata.deletionTimestamp == null)
      | select(any(.status.conditions[]?; .type == "Ready" and .status == "True")) | .metadata.name][0] // empty'
}
checksum_of() { # checksum_of NAMESPACE DEPLOYMENT
  kubectl -n "$1" get deployment "$2" -o jsonpath='{.spec.template.metadata.annotations.tau\.dev/inputs-checksum}'
}
apply_channel() { # apply_channel NAMESPACE NAME: a websocket channel for the fake's broadcaster
  kubectl -n "$1" apply -f - >/dev/null <<EOF
apiVersion: tau.dev/v1alpha1
kind: TwitchChannel
metadata:
  name: $2
spec:
  broadcaster: $BROADCASTER
  credentials:
    secretName: twitch-app
  events: [channel.follow]
  transport: websocket
EOF
}
reconciled() { # reconciled NAMESPACE NAME: the operator wrote a status and made the Deployment
  [[ $(kubectl -n "$1" get twitchchannel "$2" -o jsonpath='{.status.observedGeneration}') == 1 ]] &&
    kubectl -n "$1" get deployment "tau-$2" >/dev/null
}
operator_leader() { # operator_leader: the pod holding the Lease, if it is Ready
  local holder
  holder=$(kubectl -n "$NS" get lease "$RELEASE-operator" -o jsonpath='{.spec.holderIdentity}')
  [[ -n $holder ]] && kubectl -n "$NS" get pod "$holder" -o json 2>/dev/null |
    jq -e 'select(.metadata.deletionTimestamp == null) | any(.status.conditions[]?; .type == "Ready" and .status == "True")' >/dev/null &&
    echo "$holder"
}

# ------------------------------------------- 5. rotate the credentials --
step "5. rotate the client secret -> the relay rolls out and uses the new value"
NEW_SECRET=rotatedtauclientsecret0000000000
before_sum=$(checksum_of "$CHANNELS" "$RELAY")
[[ -n $before_sum ]] || die "the relay Deployment has no inputs checksum"
curl -sf --max-time 5 -X POST "$CONTROL/client-secret" -H 'Content-Type: application/json' \
  --data "{\"secret\": \"$NEW_SECRET\"}" || die "could not rotate the secret at the fake"
# The stored user token expires too: the new pod must refresh it, which
# only works with the new secret.
curl -sf --max-time 5 -X POST "$CONTROL/expire-user-tokens" || die "could not expire the user tokens"
sessions_before=$(curl -sf "$CONTROL/sessions" | jq -c '[.[].id]')
kubectl -n "$CHANNELS" patch secret twitch-app --type merge \
  -p "{\"stringData\": {\"client-secret\": \"$NEW_SECRET\"}}" >/dev/null
new_checksum() { local s; s=$(checksum_of "$CHANNELS" "$RELAY"); [[ -n $s && $s != "$before_sum" ]]; }
wait_for 30 "a new inputs checksum on the relay Deployment" new_checksum
kubectl -n "$CHANNELS" rollout status deployment/"$RELAY" --timeout=180s >/dev/null ||
  die "the relay did not roll out after the Secret changed"
wait_for 120 "a relay pod other than $pod2 Ready" ready_pod_other_than "$CHANNELS" "tau.dev/channel=$CHANNEL" "$pod2"
pod3=$(ready_pod_other_than "$CHANNELS" "tau.dev/channel=$CHANNEL" "$pod2")
wait_for 30 "relay /readyz through the Service" curl -sf --max-time 3 "$BASE/readyz"
fresh_session() {
  curl -sf "$CONTROL/sessions" | jq -e --argjson old "$sessions_before" \
    '[.[] | select(.connected and (.id as $i | $old | index($i) | not) and (.subscription_ids | length) > 0)] | length == 1'
}
wait_for 90 "the new pod's EventSub session with subscriptions (refreshed with the new secret)" fresh_session
wait_for 30 "relay status: user token valid with the new secret" user_state
start_bot three "$extra"
msg3=$(send_follow third_follower) || die "the fake could not send on the new pod's session"
wait_for 20 "bot three receives event $msg3" bot_got three "$msg3"
echo "checksum $before_sum -> $(checksum_of "$CHANNELS" "$RELAY"); pod $pod2 -> $pod3; user token refreshed with the rotated secret; event $msg3 delivered"

# --------------------------- 6. delete the channel, operator gone --
step "6. delete the TwitchChannel with the operator scaled to 0 -> gone at once, children collected"
finalizers=$(kubectl -n "$CHANNELS" get twitchchannel "$CHANNEL" -o jsonpath='{.metadata.finalizers}')
[[ -z $finalizers ]] || die "a websocket channel carries finalizers: $finalizers"
kubectl -n "$NS" scale deployment "$RELEASE-operator" --replicas=0 >/dev/null
no_operator() { [[ -z $(pods_of "$NS" app.kubernetes.io/component=operator) ]]; }
wait_for 60 "no operator pod" no_operator
kubectl -n "$CHANNELS" delete twitchchannel "$CHANNEL" --timeout=20s >/dev/null ||
  die "deleting the channel hung with the operator gone"
children_gone() {
  for kind in deployment service secret pvc; do
    kubectl -n "$CHANNELS" get "$kind" "$RELAY" >/dev/null 2>&1 && return 1
  done
  [[ -z $(pods_of "$CHANNELS" "tau.dev/channel=$CHANNEL") ]]
}
wait_for 120 "Deployment, Service, Secret, PVC and pods of $CHANNEL garbage collected" children_gone
echo "channel deleted without the operator; its children were garbage collected"

# ------------------------------------- 7. leader failover (2 replicas) --
step "7. operator with 2 replicas: kill the leader -> the other takes over and reconciles"
"$HELM" upgrade "$RELEASE" charts/tau --namespace "$NS" --reuse-values --set operator.replicas=2 >/dev/null
kubectl -n "$NS" rollout status deployment/"$RELEASE-operator" --timeout=120s >/dev/null ||
  die "2 operator replicas did not become available"
wait_for 60 "a leader among the 2 operator pods" operator_leader
leader=$(operator_leader)
[[ $(pods_of "$NS" app.kubernetes.io/component=operator | wc -l) == 2 ]] || die "expected 2 operator pods"
kubectl -n "$NS" delete pod "$leader" --grace-period=0 --force >/dev/null 2>&1
t_kill=$EPOCHREALTIME
new_leader() { local l; l=$(operator_leader) && [[ $l != "$leader" ]]; }
wait_for 90 "another operator pod holding the Lease" new_leader
echo "leader $leader killed; $(operator_leader) took over in $(elapsed "$t_kill") s"
apply_channel "$CHANNELS" after-failover
wait_for 60 "channel after-failover reconciled by the new leader" reconciled "$CHANNELS" after-failover
kubectl -n "$CHANNELS" delete twitchchannel after-failover --timeout=30s >/dev/null

# ------------------------------------------- 8. operator.namespaces --
step "8. helm upgrade --set operator.namespaces={<ns>} -> Ready, leader, reconciling only there"
WATCHED=tau-watched
kubectl create namespace "$WATCHED" >/dev/null
kubectl -n "$WATCHED" create secret generic twitch-app --from-literal=client-id="$CLIENT_ID" \
  --from-literal=client-secret="$NEW_SECRET" >/dev/null
"$HELM" upgrade "$RELEASE" charts/tau --namespace "$NS" --reuse-values \
  --set operator.replicas=1 --set "operator.namespaces={$WATCHED}" >/dev/null
kubectl -n "$NS" rollout status deployment/"$RELEASE-operator" --timeout=120s >/dev/null ||
  die "the operator did not become available with namespaces=$WATCHED"
scoped=$(kubectl -n "$NS" get deployment "$RELEASE-operator" -o json |
  jq -r '.spec.template.spec.containers[0].env[]? | select(.name == "TAU_NAMESPACES") | .value')
[[ $scoped == "$WATCHED" ]] || die "the operator does not serve $WATCHED (TAU_NAMESPACES='$scoped')"
kubectl get clusterrole "$RELEASE-operator" >/dev/null 2>&1 &&
  die "a ClusterRole is still installed with operator.namespaces set"
kubectl get clusterrolebinding "$RELEASE-operator" >/dev/null 2>&1 &&
  die "a ClusterRoleBinding is still installed with operator.namespaces set"
kubectl -n "$WATCHED" get role "$RELEASE-operator" >/dev/null || die "no operator Role in $WATCHED"
kubectl -n "$CHANNELS" get role "$RELEASE-operator" >/dev/null 2>&1 && die "an operator Role in $CHANNELS, which is not served"
wait_for 60 "a Ready leader with namespaces=$WATCHED" operator_leader
apply_channel "$WATCHED" watched
wait_for 60 "channel $WATCHED/watched reconciled" reconciled "$WATCHED" watched
apply_channel "$CHANNELS" unwatched
sleep 5
[[ -z $(kubectl -n "$CHANNELS" get twitchchannel unwatched -o jsonpath='{.status}') ]] ||
  die "the operator reconciled a channel outside $WATCHED"
kubectl -n "$CHANNELS" delete twitchchannel unwatched --timeout=30s >/dev/null
echo "operator $(operator_leader) leads with a namespaced Role and reconciles only $WATCHED"
