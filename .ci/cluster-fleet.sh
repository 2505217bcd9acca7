# shellcheck shell=bash
# Scenarios 9 and 3 of the real-cluster tier (issue 10), sourced by
# .ci/cluster-tier.sh once scenario 4 has passed: its helpers (step, die,
# wait_for), cluster (KUBECONFIG, HELM, NS, CHANNELS, RELEASE, CLUSTER, WORK,
# BOT_PIDS) and fake Twitch (CONTROL) are in scope. The service images were
# imported into containerd under the references the chart renders
# (.ci/service-images.sh).
#
#  9. `helm upgrade --set postgresql.enabled=true --set redis.enabled=true`
#     -> the bundled Postgres and Redis StatefulSets become Ready on images
#     built from Debian's packages; the operator rolls out with them as its
#     defaults; the websocket channel of scenarios 2/4 (SQLite on its claim)
#     is left exactly as it was (same pod, same database); new channels'
#     relays use them: their Secret points at the bundled Services, the
#     relay reports Postgres, its schema in the bundled Postgres holds the
#     events, and every replica subscribes to its Redis channel. The relays
#     are created while that Postgres is held down (scaled to 0): they run
#     unready (/readyz 503, /healthz 200, one log line per attempt) and become
#     Ready once it is back, without a single restart.
#  3. A conduit channel and a webhook channel, 3 replicas each, on that
#     Postgres and Redis. Conduit: every replica's EventSub session is a
#     shard of the conduit at the fake. Webhook: the operator's subscription
#     is verified by the fake through the relay Service (the callback host
#     routed to its ClusterIP, as DNS and an ingress would). Three bots per
#     channel connect through the Service (tau-bot.py --reconnect: resume
#     with `since`). Events stream (~4/s per channel, ~20 s): conduit
#     notifications routed to shards by the fake, webhooks POSTed by the
#     fake and resent with the same message id until acknowledged (2xx), as
#     Twitch does (and every 10th delivered twice, as Twitch sometimes does);
#     mid-stream the pod behind the conduit's event shard and
#     the webhook pod with the most bots are deleted. Every bot must receive
#     every sent (conduit) / acknowledged (webhook) event exactly once.

FLEET_EVENTS=${TAU_FLEET_EVENTS:-80}   # events per channel
FLEET_PAUSE=${TAU_FLEET_PAUSE:-0.15}   # seconds between events
FLEET_KILL_AFTER=${TAU_FLEET_KILL_AFTER:-25} # events sent before the pod deletions
FLEET_BOTS=3

fleet_pods() { # fleet_pods CHANNEL -> "name ip" of its running, not deleted pods
  kubectl -n "$CHANNELS" get pods -l "tau.dev/channel=$1" -o json |
    jq -r '.items[] | select(.metadata.deletionTimestamp == null and .status.phase == "Running" and .status.podIP != null)
      | "\(.metadata.name) \(.status.podIP)"'
}
fleet_status() { # fleet_status POD-IP TOKEN -> the relay's /api/v1/status of that pod
  curl -sf --max-time 5 -H "Authorization: Token $2" "http://$1:8000/api/v1/status"
}
fleet_ready_replicas() { # fleet_ready_replicas CHANNEL N: the Deployment has N ready, updated replicas
  local d
  d=$(kubectl -n "$CHANNELS" get deployment "tau-$1" -o json) || return 1
  jq -e --argjson n "$2" '.status.readyReplicas == $n and .status.updatedReplicas == $n and .status.replicas == $n' <<<"$d"
}
fleet_secret() { # fleet_secret CHANNEL KEY
  kubectl -n "$CHANNELS" get secret "tau-$1" -o jsonpath="{.data.$2}" | base64 -d
}

# ------------------------------------------- 9. bundled Postgres and Redis --
step "9a. helm upgrade --set postgresql.enabled=true --set redis.enabled=true -> the operator's defaults"
# Two more 1Gi hostPath volumes like cluster-up.sh's, for their claims.
for v in pg redis; do
  mkdir -p "$CLUSTER/pv/fleet-$v"
  chmod 0777 "$CLUSTER/pv/fleet-$v"
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata:
  name: tau-pv-fleet-$v
  labels: {tau.dev/cluster-tier: "true"}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: $CLUSTER/pv/fleet-$v, type: Directory}
EOF
done
ws_deploy_gen=$(kubectl -n "$CHANNELS" get deployment "tau-$CHANNEL" -o jsonpath='{.metadata.generation}')
ws_pod=$(kubectl -n "$CHANNELS" get pods -l "tau.dev/channel=$CHANNEL" -o jsonpath='{.items[0].metadata.name}')
old_op_pod=$(kubectl -n "$NS" get lease "$RELEASE-operator" -o jsonpath='{.spec.holderIdentity}')
"$HELM" upgrade "$RELEASE" charts/tau --namespace "$NS" --reuse-values \
  --set postgresql.enabled=true --set redis.enabled=true \
  --set postgresql.persistence.size=1Gi --set redis.persistence.size=1Gi >"$WORK/helm-upgrade.txt"
PG=$RELEASE-postgresql
REDIS=$RELEASE-redis
# The operator restarts with the bundled services as its defaults (a new
# leader); channels made before that would get SQLite.
kubectl -n "$NS" rollout status deployment/"$RELEASE-operator" --timeout=120s >/dev/null ||
  die "the operator did not roll out after the upgrade"
new_leader() {
  local h
  h=$(kubectl -n "$NS" get lease "$RELEASE-operator" -o jsonpath='{.spec.holderIdentity}')
  [[ -n $h && $h != "$old_op_pod" ]] && kubectl -n "$NS" get pod "$h" >/dev/null
}
wait_for 90 "a new operator pod holding the Lease" new_leader
kubectl -n "$NS" get deployment "$RELEASE-operator" -o json |
  jq -e '.spec.template.spec.containers[0].env | map(.name) | index("TAU_DEFAULT_DATABASE_URL") and index("TAU_DEFAULT_REDIS_URL")' >/dev/null ||
  die "the operator has no default database/Redis after the upgrade"

step "9b. bundled Postgres and Redis Ready on the stand-in images"
kubectl -n "$NS" rollout status statefulset/"$PG" --timeout=180s >/dev/null || die "StatefulSet $PG not ready"
kubectl -n "$NS" rollout status statefulset/"$REDIS" --timeout=120s >/dev/null || die "StatefulSet $REDIS not ready"
for s in "$PG" "$REDIS"; do
  img=$(kubectl -n "$NS" get pod "$s-0" -o jsonpath='{.spec.containers[0].image}')
  grep -q "^$img " <<<"$SERVICE_IMAGES" || die "$s-0 runs '$img', not an image imported for the chart"
  echo "$s-0 Ready: $img (uid $(kubectl -n "$NS" get pod "$s-0" -o jsonpath='{.spec.securityContext.runAsUser}'))," \
    "claim $(kubectl -n "$NS" get pvc "data-$s-0" -o jsonpath='{.status.phase}')"
done

# Hold the database down while the relays start (as when the bundled
# Postgres is still initializing, or fails over): they must wait, unready,
# instead of exiting into CrashLoopBackOff.
pg_uid=$(kubectl -n "$NS" get pod "$PG-0" -o jsonpath='{.metadata.uid}')
kubectl -n "$NS" scale statefulset "$PG" --replicas=0 >/dev/null
pg_gone() { ! kubectl -n "$NS" get pod "$PG-0" -o jsonpath='{.metadata.uid}' 2>/dev/null | grep -qx "$pg_uid"; }
wait_for 60 "$PG-0 stopped" pg_gone

step "3a. conduit + webhook TwitchChannels, 3 replicas each, on the bundled services (Postgres down)"
FC=fleet-conduit
FW=fleet-webhook
FW_HOST=fleet-webhook.tau.test
kubectl -n "$CHANNELS" apply -f - >/dev/null <<EOF
apiVersion: tau.dev/v1alpha1
kind: TwitchChannel
metadata: {name: $FC}
spec:
  broadcaster: $BROADCASTER
  credentials: {secretName: twitch-app}
  events: [channel.follow@2]
  transport: conduit
  publicUrl: http://localhost:8001
  relay: {replicas: 3}
---
apiVersion: tau.dev/v1alpha1
kind: TwitchChannel
metadata: {name: $FW}
spec:
  broadcaster: $BROADCASTER
  credentials: {secretName: twitch-app}
  events: [channel.follow@2]
  transport: webhook
  ingress: {host: $FW_HOST}
  relay: {replicas: 3}
EOF
# What DNS and the ingress would do for Twitch: the callback host reaches the
# webhook channel's Service.
wait_for 60 "Service tau-$FW" kubectl -n "$CHANNELS" get service "tau-$FW"
FW_SVC=$(kubectl -n "$CHANNELS" get service "tau-$FW" -o jsonpath='{.spec.clusterIP}')
FC_SVC=$(kubectl -n "$CHANNELS" get service "tau-$FC" -o jsonpath='{.spec.clusterIP}')
curl -sf --max-time 5 -X POST "$CONTROL/webhook-routes" -H 'Content-Type: application/json' \
  --data "{\"host\": \"$FW_HOST\", \"to\": \"http://$FW_SVC:80\"}" || die "could not route $FW_HOST at the fake"

waiting_relays() { # every relay pod of both channels Running, unready, alive, and saying why
  local ch p ip n
  for ch in "$FC" "$FW"; do
    n=0
    while read -r p ip; do
      [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$ip:8000/readyz") == 503 ]] || return 1
      [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$ip:8000/healthz") == 200 ]] || return 1
      kubectl -n "$CHANNELS" logs "$p" | grep -q 'database not reachable yet' || return 1
      n=$((n + 1))
    done < <(fleet_pods "$ch")
    ((n == 3)) || return 1
  done
}
wait_for 120 "6 relay pods waiting for the database (/readyz 503, /healthz 200, logging it)" waiting_relays
echo "6 relay pods up and unready while $PG is down; starting it again"
kubectl -n "$NS" scale statefulset "$PG" --replicas=1 >/dev/null

step "9c. the relays use them; the SQLite channel stays on its claim"
for ch in "$FC" "$FW"; do
  wait_for 60 "Deployment tau-$ch" kubectl -n "$CHANNELS" get deployment "tau-$ch"
done
for ch in "$FC" "$FW"; do
  wait_for 180 "3 ready replicas of tau-$ch" fleet_ready_replicas "$ch" 3
done
for ch in "$FC" "$FW"; do
  db=$(fleet_secret "$ch" database-url)
  rd=$(fleet_secret "$ch" redis-url)
  [[ $db == postgres://*@$PG.$NS.svc:5432/* ]] || die "tau-$ch database-url is not the bundled Postgres: ${db%%:*}://…@${db#*@}"
  [[ $rd == redis://*@$REDIS.$NS.svc:6379/* ]] || die "tau-$ch redis-url is not the bundled Redis"
  restarts=$(kubectl -n "$CHANNELS" get pods -l "tau.dev/channel=$ch" -o json | jq '[.items[].status.containerStatuses[]?.restartCount] | add')
  [[ $restarts == 0 ]] || die "relay pods of $ch restarted $restarts times (they must wait for the database, not crash)"
  waited=0
  for p in $(kubectl -n "$CHANNELS" get pods -l "tau.dev/channel=$ch" -o jsonpath='{.items[*].metadata.name}'); do
    n=$(kubectl -n "$CHANNELS" logs "$p" | grep -c 'database not reachable yet' || true)
    waited=$((waited + n))
  done
  token=$(fleet_secret "$ch" api-token)
  read -r _ ip < <(fleet_pods "$ch" | head -n 1)
  kind=$(fleet_status "$ip" "$token" | jq -r .database)
  [[ $kind == postgres ]] || die "relay of $ch reports database '$kind'"
  echo "$ch: 3 replicas Ready on $PG + $REDIS, 0 restarts ($waited 'database not reachable yet' lines while it was down)"
done
# The websocket channel of scenarios 2 and 4: same pod, same Deployment, still SQLite.
[[ $(kubectl -n "$CHANNELS" get deployment "tau-$CHANNEL" -o jsonpath='{.metadata.generation}') == "$ws_deploy_gen" ]] ||
  die "the upgrade changed the Deployment of $CHANNEL (it would start on an empty database)"
[[ $(fleet_secret "$CHANNEL" database-url) == sqlite:* ]] || die "$CHANNEL was moved off its claim"
kubectl -n "$CHANNELS" get pod "$ws_pod" >/dev/null 2>&1 || die "the upgrade restarted $CHANNEL's pod"
# shellcheck disable=SC2154 # stored2: scenario 4's count (cluster-tier.sh)
[[ $(api GET /api/v1/status | jq -r .events_stored) == "$stored2" ]] || die "$CHANNEL lost events in the upgrade"
echo "$CHANNEL: untouched (pod $ws_pod, SQLite on its claim, $stored2 events)"

# -------------------------------------------- 3. replicas, kill mid-stream --
step "3b. conduit shards and the verified webhook subscription at the fake"
conduit_sub() { curl -sf "$CONTROL/subscriptions" | jq -e '[.[] | select(.type == "channel.follow" and .status == "enabled" and .transport.method == "conduit")] | length == 1'; }
wait_for 60 "an enabled conduit subscription" conduit_sub
conduit_shards() { # the 3 replicas' sessions are shards: 3 distinct connected sessions in the relay status
  local n=0 ip s
  while read -r _ ip; do
    s=$(fleet_status "$ip" "$FC_TOKEN" | jq -r '.twitch.eventsub.session_id // empty')
    [[ -n $s ]] && curl -sf "$CONTROL/sessions" | jq -e --arg s "$s" '[.[] | select(.id == $s and .connected)] | length == 1' >/dev/null && n=$((n + 1))
  done < <(fleet_pods "$FC")
  ((n == 3))
}
FC_TOKEN=$(fleet_secret "$FC" api-token)
FW_TOKEN=$(fleet_secret "$FW" api-token)
wait_for 60 "3 conduit shards (one session per replica)" conduit_shards
echo "conduit: 3 shards after $(elapsed "$STEP_T0") s"
webhook_sub() { # (what the fake saw stays in $WORK for a failure's post-mortem)
  curl -sf "$CONTROL/requests" >"$WORK/fake-requests.json" || true
  curl -sf "$CONTROL/subscriptions" >"$WORK/fake-subscriptions.json" &&
    jq -e --arg cb "https://$FW_HOST/twitch/eventsub" \
      '[.[] | select(.type == "channel.follow" and .status == "enabled" and .transport.callback == $cb)] | length == 1' \
      "$WORK/fake-subscriptions.json"
}
# The operator remakes a subscription whose verification failed (the relay
# was not ready yet) on its next reconcile.
wait_for 90 "the webhook subscription verified through the Service" webhook_sub
echo "webhook: https://$FW_HOST/twitch/eventsub verified via http://$FW_SVC:80 after $(elapsed "$STEP_T0") s"

step "3c. bots connected through the Services (3 per channel, resuming with since)"
follow_request() { # follow_request TRANSPORT LOGIN [MESSAGE-ID RETRY]: a /notify body (LOGIN: [a-z0-9_])
  local extra=""
  [[ -n ${3:-} ]] && extra=",\"message_id\":\"$3\",\"retry\":${4:-0}"
  # Webhooks go to this channel's subscription (scenario 10's channel has one too).
  [[ $1 == webhook ]] && extra+=",\"callback\":\"https://$FW_HOST/twitch/eventsub\""
  printf '{"type":"channel.follow","version":"2","transport":"%s"%s,"event":{"user_id":"9001","user_login":"%s","user_name":"%s","broadcaster_user_id":"1337","broadcaster_user_login":"cooler_user","broadcaster_user_name":"Cooler_User","followed_at":"2026-12-01T20:00:00Z"}}' \
    "$1" "$extra" "$2" "$2"
}
notify_conduit() { # notify_conduit LOGIN -> the fake's answer (message_id, shard_id, session_id)
  curl -sf --max-time 10 -X POST "$CONTROL/notify" -H 'Content-Type: application/json' --data "$(follow_request conduit "$1")"
}
notify_webhook() { # notify_webhook LOGIN [MESSAGE-ID RETRY] -> {message_id, status} or {message_id, error}
  curl -s --max-time 20 -X POST "$CONTROL/notify" -H 'Content-Type: application/json' --data "$(follow_request webhook "$@")"
}
for ch in "$FC" "$FW"; do
  svc=$([[ $ch == "$FC" ]] && echo "$FC_SVC" || echo "$FW_SVC")
  token=$([[ $ch == "$FC" ]] && echo "$FC_TOKEN" || echo "$FW_TOKEN")
  for ((b = 1; b <= FLEET_BOTS; b++)); do
    python3 .ci/tau-bot.py --reconnect "ws://$svc:80/ws/twitch-events/" "$token" "$WORK/bot-$ch-$b.jsonl" 2>"$WORK/bot-$ch-$b.err" &
    BOT_PIDS+=($!)
  done
done
bots_counted() { # bots_counted CHANNEL TOKEN: the replicas count all bots
  local total=0 ip n
  while read -r _ ip; do
    n=$(fleet_status "$ip" "$2" | jq -r .clients_connected) || return 1
    total=$((total + n))
  done < <(fleet_pods "$1")
  ((total == FLEET_BOTS))
}
wait_for 20 "the conduit replicas count $FLEET_BOTS bots" bots_counted "$FC" "$FC_TOKEN"
wait_for 20 "the webhook replicas count $FLEET_BOTS bots" bots_counted "$FW" "$FW_TOKEN"
# A first event each bot has seen gives it a resume point (since).
warm_c=$(notify_conduit warmup_c) || die "the fake could not send on the conduit"
FC_SESSION=$(jq -r .session_id <<<"$warm_c")
warm_w=$(notify_webhook warmup_w)
[[ $(jq -r .status <<<"$warm_w") == 2* ]] || die "the first webhook was not acknowledged: $warm_w"
all_bots_got() { # all_bots_got CHANNEL MESSAGE-ID
  local b
  for ((b = 1; b <= FLEET_BOTS; b++)); do
    jq -e --arg id "$2" 'select(.event_id == $id)' "$WORK/bot-$1-$b.jsonl" >/dev/null || return 1
  done
}
wait_for 20 "every conduit bot receives the first event" all_bots_got "$FC" "$(jq -r .message_id <<<"$warm_c")"
wait_for 20 "every webhook bot receives the first event" all_bots_got "$FW" "$(jq -r .message_id <<<"$warm_w")"
bots_on() { # bots_on IP TOKEN
  fleet_status "$1" "$2" | jq -r .clients_connected
}
# Victims: the conduit replica whose session is the shard Twitch routes this
# subscription's events to; the webhook replica holding the most bots.
fc_victim="" fw_victim="" fw_most=-1
while read -r name ip; do
  [[ $(fleet_status "$ip" "$FC_TOKEN" | jq -r '.twitch.eventsub.session_id') == "$FC_SESSION" ]] && fc_victim=$name
done < <(fleet_pods "$FC")
while read -r name ip; do
  n=$(bots_on "$ip" "$FW_TOKEN")
  ((n > fw_most)) && fw_victim=$name fw_most=$n
done < <(fleet_pods "$FW")
[[ -n $fc_victim ]] || die "no conduit replica holds session $FC_SESSION"
fc_ip=$(kubectl -n "$CHANNELS" get pod "$fc_victim" -o jsonpath='{.status.podIP}')
echo "will delete $fc_victim (the conduit's event shard, session $FC_SESSION, bots: $(bots_on "$fc_ip" "$FC_TOKEN"))" \
  "and $fw_victim (bots: $fw_most of $FLEET_BOTS)"

step "3d. stream events, kubectl delete pod mid-stream (conduit: $fc_victim, webhook: $fw_victim)"
stream_conduit() { # -> sent-conduit.txt (message ids the fake put on a shard), unsent-conduit.txt
  local i answer
  for ((i = 1; i <= FLEET_EVENTS; i++)); do
    if answer=$(notify_conduit "c$i"); then
      jq -r '"\(.message_id) \(.shard_id) \(.session_id)"' <<<"$answer" >>"$WORK/sent-conduit.txt"
    else
      echo "c$i" >>"$WORK/unsent-conduit.txt"
    fi
    echo "$i" >"$WORK/progress-conduit"
    sleep "$FLEET_PAUSE"
  done
}
stream_webhook() { # -> acked-webhook.txt (ids acknowledged 2xx), resent-webhook.txt (every retry)
  local i answer id status tries
  for ((i = 1; i <= FLEET_EVENTS; i++)); do
    # The id is Twitch's, chosen once: a resend (even after an answer that
    # never came back) carries the same one.
    id=$(cat /proc/sys/kernel/random/uuid) tries=0
    while :; do
      answer=$(notify_webhook "w$i" "$id" "$tries")
      status=$(jq -r '.status // empty' <<<"$answer" 2>/dev/null || true)
      [[ $status == 2* ]] && break
      # Not acknowledged: Twitch resends the same message later.
      echo "$id try $tries: ${status:-$(jq -r '.error // "no answer"' <<<"$answer" 2>/dev/null || echo "no answer")}" >>"$WORK/resent-webhook.txt"
      tries=$((tries + 1))
      ((tries < 100)) || { echo "w$i never acknowledged" >>"$WORK/unacked-webhook.txt"; break; }
      sleep 0.2
    done
    [[ $status == 2* ]] && echo "$id" >>"$WORK/acked-webhook.txt"
    # Twitch sometimes delivers a message twice: every 10th is resent once
    # after its acknowledgement (it may land on another replica).
    if [[ $status == 2* ]] && ((i % 10 == 0)); then
      answer=$(notify_webhook "w$i" "$id" 1)
      echo "$id $(jq -r '.status // .error' <<<"$answer" 2>/dev/null || echo "no answer")" >>"$WORK/duplicated-webhook.txt"
    fi
    echo "$i" >"$WORK/progress-webhook"
    sleep "$FLEET_PAUSE"
  done
}
: >"$WORK/sent-conduit.txt" && : >"$WORK/unsent-conduit.txt" && : >"$WORK/acked-webhook.txt"
: >"$WORK/resent-webhook.txt" && : >"$WORK/unacked-webhook.txt" && : >"$WORK/duplicated-webhook.txt"
echo 0 >"$WORK/progress-conduit" && echo 0 >"$WORK/progress-webhook"
t_stream=$EPOCHREALTIME
stream_conduit & sc_pid=$!
stream_webhook & sw_pid=$!
BOT_PIDS+=("$sc_pid" "$sw_pid") # stopped by the tier's cleanup if anything fails
progressed() { (($(cat "$WORK/progress-conduit") >= FLEET_KILL_AFTER && $(cat "$WORK/progress-webhook") >= FLEET_KILL_AFTER)); }
wait_for 60 "$FLEET_KILL_AFTER events per channel" progressed
kubectl -n "$CHANNELS" delete pod "$fc_victim" "$fw_victim" --wait=false >/dev/null
echo "deleted $fc_victim and $fw_victim after $(elapsed "$t_stream") s of streaming"
wait "$sc_pid" || die "the conduit stream failed"
wait "$sw_pid" || die "the webhook stream failed"
echo "streamed $FLEET_EVENTS events per channel in $(elapsed "$t_stream") s"
[[ ! -s $WORK/unacked-webhook.txt ]] || die "webhooks never acknowledged: $(cat "$WORK/unacked-webhook.txt")"
! grep -qv ' 2[0-9][0-9]$' "$WORK/duplicated-webhook.txt" ||
  die "a duplicate delivery was not acknowledged: $(grep -v ' 2[0-9][0-9]$' "$WORK/duplicated-webhook.txt" | head -n 3)"
for ch in "$FC" "$FW"; do
  wait_for 120 "3 ready replicas of tau-$ch again" fleet_ready_replicas "$ch" 3
done

step "3e. every bot got every sent/acknowledged event exactly once"
fleet_count() { # fleet_count CHANNEL IDS-FILE BOT -> "received duplicates missing"
  local out=$WORK/bot-$1-$3.jsonl got
  got=$(jq -r 'select(.event_id != null) | .event_id' "$out")
  local received dups missing
  received=$(sort -u <<<"$got" | grep -cxFf "$2" || true)
  dups=$(sort <<<"$got" | uniq -d | wc -l)
  missing=$(sort -u "$2" | comm -23 - <(sort -u <<<"$got") | wc -l)
  echo "$received $dups $missing"
}
bots_complete() { # bots_complete CHANNEL IDS-FILE
  local b r
  for ((b = 1; b <= FLEET_BOTS; b++)); do
    read -r _ _ r < <(fleet_count "$1" "$2" "$b")
    ((r == 0)) || return 1
  done
}
sort -u "$WORK/sent-conduit.txt" | cut -d' ' -f1 >"$WORK/ids-conduit.txt"
sort -u "$WORK/acked-webhook.txt" >"$WORK/ids-webhook.txt"
# Up to 45 s for stragglers, then the counts either way.
deadline=$((SECONDS + 45))
until bots_complete "$FC" "$WORK/ids-conduit.txt" && bots_complete "$FW" "$WORK/ids-webhook.txt"; do
  ((SECONDS < deadline)) || break
  sleep 0.5
done
fail=""
for ch in "$FC" "$FW"; do
  ids=$WORK/ids-${ch#fleet-}.txt
  if [[ $ch == "$FC" ]]; then
    echo "$ch: fake sent $(wc -l <"$ids") of $FLEET_EVENTS on shards $(cut -d' ' -f2 "$WORK/sent-conduit.txt" | sort | uniq -c | awk '{printf "%s%s×%s", sep, $2, $1; sep=", "}')" \
      "(not sendable: $(wc -l <"$WORK/unsent-conduit.txt"))"
  else
    echo "$ch: $(wc -l <"$ids") of $FLEET_EVENTS acknowledged (2xx); $(wc -l <"$WORK/resent-webhook.txt") resends of unacknowledged ones;" \
      "$(wc -l <"$WORK/duplicated-webhook.txt") delivered twice (answers: $(cut -d' ' -f2 "$WORK/duplicated-webhook.txt" | sort | uniq -c | awk '{printf "%s%s×%s", sep, $2, $1; sep=", "}'))"
  fi
  for ((b = 1; b <= FLEET_BOTS; b++)); do
    read -r r d m < <(fleet_count "$ch" "$ids" "$b")
    reconnects=$(grep -c '"bot": "connected"' "$WORK/bot-$ch-$b.jsonl" || true)
    echo "  bot $b: received $r, duplicates $d, missing $m (connections: $reconnects)"
    ((d == 0 && m == 0)) || fail+=" $ch/bot$b"
  done
done
[[ -z $fail ]] || die "events lost or duplicated at:$fail (bot-*.jsonl, sent-conduit.txt, acked-webhook.txt in $WORK)"
# Scenario 9's last proof: the events are in the bundled Postgres, in each
# channel's own schema, and every replica listens on its Redis channel.
redis_pass=$(kubectl -n "$NS" get secret "$REDIS" -o jsonpath='{.data.password}' | base64 -d)
for ch in "$FC" "$FW"; do
  instance=$(kubectl -n "$CHANNELS" get deployment "tau-$ch" -o json |
    jq -r '.spec.template.spec.containers[0].env[] | select(.name == "TAU_INSTANCE") | .value')
  # Loopback inside the pod is trusted, as in the official image.
  in_pg=$(kubectl -n "$NS" exec "$PG-0" -- psql -h 127.0.0.1 -U tau -d tau -Atc \
    "SELECT count(*) FROM \"$instance\".events")
  subs=$(kubectl -n "$NS" exec "$REDIS-0" -- redis-cli -a "$redis_pass" --no-auth-warning PUBSUB NUMSUB "$instance:events" | tail -n 1)
  ((in_pg >= $(wc -l <"$WORK/ids-${ch#fleet-}.txt"))) || die "$PG holds $in_pg events of $ch"
  [[ $subs == 3 ]] || die "$subs replicas of $ch subscribe to $instance:events in $REDIS"
  echo "$ch: $in_pg events in $PG schema $instance; $subs replicas on Redis channel $instance:events"
done

step "3f. delete both channels (the lifecycle scenarios start from the channel of 2/4 alone)"
kubectl -n "$CHANNELS" delete twitchchannel "$FC" "$FW" --wait=false >/dev/null
fleet_gone() {
  [[ -z $(kubectl -n "$CHANNELS" get twitchchannel "$FC" "$FW" -o name --ignore-not-found) ]] &&
    [[ -z $(kubectl -n "$CHANNELS" get pods -l "tau.dev/channel in ($FC,$FW)" -o name) ]]
}
wait_for 120 "$FC and $FW deleted, their relay pods gone" fleet_gone
left=$(curl -sf "$CONTROL/subscriptions" | jq --arg cb "https://$FW_HOST/twitch/eventsub" \
  '[.[] | select(.transport.callback == $cb)] | length')
[[ $left == 0 ]] || die "$left webhook subscriptions of $FW left at the fake after deleting it"
echo "both channels deleted; no webhook subscription of $FW left at the fake"
