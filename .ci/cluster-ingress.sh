# shellcheck shell=bash disable=SC2154
# Scenario 10 of the real-cluster tier (issue 10): bots on the ingress
# endpoint, as the design promises. Sourced by .ci/cluster-tier.sh, which
# calls ingress_start after scenario 4 and ingress_finish after the fleet
# (scenarios 9 and 3), so the idle minutes overlap the fleet's work. Uses the
# tier's helpers (step, die, wait_for, elapsed) and variables (WORK, CLUSTER,
# CHANNELS, BROADCASTER, CONTROL, BOT_PIDS, TRAEFIK_TAR, TRAEFIK_IMAGE).
#
# 10a. Traefik (built from the Go module proxy, .ci/traefik.sh; manifest
#      .ci/traefik.yaml with Traefik's default timeouts) serves Ingresses of
#      class traefik. A webhook TwitchChannel `edge` (one replica, SQLite on
#      its claim) with spec.ingress {host: edge.tau.test, className: traefik}:
#      the operator's Ingress is admitted (Traefik writes its Service's name
#      into the Ingress status), the fake Twitch delivers to the callback host
#      through Traefik (DNS stand-in: the fake connects to Traefik's Service
#      and sends Host: edge.tau.test), so the operator's subscription is
#      verified through the ingress; the dashboard and the status API answer
#      through it.
# 10b. A bot (tau-bot.py --reconnect --via Traefik) connects through the
#      ingress and receives a webhook event; then no event for
#      TAU_INGRESS_IDLE seconds (default 180, past Traefik's 60 s read and
#      180 s idle timeouts): its one connection must stay up, answering the
#      relay's pings.
# 10c. A relay rollout (spec.retention changed -> new pod, Recreate) while
#      webhooks stream through Traefik (unacknowledged ones resent with the
#      same id, as Twitch does): the bot reconnects through Traefik with
#      `since` and has every acknowledged event exactly once.
# Then `edge` is deleted, and Traefik with it.

EDGE=edge
EDGE_HOST=edge.tau.test
EDGE_CALLBACK=https://$EDGE_HOST/twitch/eventsub
INGRESS_IDLE=${TAU_INGRESS_IDLE:-180}
INGRESS_EVENTS=${TAU_INGRESS_EVENTS:-40}

edge_webhook() { # edge_webhook LOGIN MESSAGE-ID RETRY -> the fake's answer ({status} or {error})
  curl -s --max-time 20 -X POST "$CONTROL/notify" -H 'Content-Type: application/json' --data "$(jq -cn \
    --arg u "$1" --arg id "$2" --argjson retry "$3" --arg cb "$EDGE_CALLBACK" \
    '{type: "channel.follow", version: "2", transport: "webhook", callback: $cb, message_id: $id, retry: $retry,
      event: {user_id: "9001", user_login: $u, user_name: $u, broadcaster_user_id: "1337",
        broadcaster_user_login: "cooler_user", broadcaster_user_name: "Cooler_User", followed_at: "2026-12-01T20:00:00Z"}}')"
}
edge_send() { # edge_send LOGIN: one event, resent until acknowledged -> prints its id; appends resends to edge-resent.txt
  local id tries=0 answer status
  id=$(cat /proc/sys/kernel/random/uuid)
  while :; do
    answer=$(edge_webhook "$1" "$id" "$tries")
    status=$(jq -r '.status // empty' <<<"$answer" 2>/dev/null || true)
    [[ $status == 2* ]] && break
    echo "$id try $tries: ${status:-$(jq -r '.error // "no answer"' <<<"$answer" 2>/dev/null || echo "no answer")}" >>"$WORK/edge-resent.txt"
    tries=$((tries + 1))
    ((tries < 150)) || return 1
    sleep 0.2
  done
  echo "$id"
}
via_traefik() { # via_traefik PATH [CURL-ARGS...]: a request to the channel's host through Traefik's Service
  local path=$1
  shift
  curl -s --max-time 10 --resolve "$EDGE_HOST:80:$TRAEFIK_SVC" "$@" "http://$EDGE_HOST$path"
}

ingress_start() {
  step "10a. Traefik ingress controller; a webhook channel on its Ingress (class traefik, host $EDGE_HOST)"
  ctr --address "$TAU_CLUSTER_CONTAINERD" -n k8s.io images import "$TRAEFIK_TAR" >/dev/null
  sed "s|TRAEFIK_IMAGE|$TRAEFIK_IMAGE|" .ci/traefik.yaml | kubectl apply -f - >/dev/null
  kubectl -n traefik rollout status deployment/traefik --timeout=120s >/dev/null || die "Traefik did not become available"
  TRAEFIK_SVC=$(kubectl -n traefik get service traefik -o jsonpath='{.spec.clusterIP}')
  mkdir -p "$CLUSTER/pv/edge" && chmod 0777 "$CLUSTER/pv/edge"
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata:
  name: tau-pv-edge
  labels: {tau.dev/cluster-tier: "true"}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: $CLUSTER/pv/edge, type: Directory}
EOF
  # What DNS does for Twitch and for bots: the public host is the ingress.
  curl -sf --max-time 5 -X POST "$CONTROL/webhook-routes" -H 'Content-Type: application/json' \
    --data "{\"host\": \"$EDGE_HOST\", \"to\": \"http://$TRAEFIK_SVC:80\"}" || die "could not route $EDGE_HOST at the fake"
  kubectl -n "$CHANNELS" apply -f - >/dev/null <<EOF
apiVersion: tau.dev/v1alpha1
kind: TwitchChannel
metadata: {name: $EDGE}
spec:
  broadcaster: $BROADCASTER
  credentials: {secretName: twitch-app}
  events: [channel.follow@2]
  transport: webhook
  ingress: {host: $EDGE_HOST, className: traefik}
EOF
  wait_for 60 "Ingress tau-$EDGE" kubectl -n "$CHANNELS" get ingress "tau-$EDGE"
  kubectl -n "$CHANNELS" rollout status deployment/"tau-$EDGE" --timeout=180s >/dev/null || die "the relay of $EDGE did not become available"
  admitted() { [[ $(kubectl -n "$CHANNELS" get ingress "tau-$EDGE" -o jsonpath='{.status.loadBalancer.ingress[0].hostname}') == traefik.traefik.svc ]]; }
  wait_for 30 "Traefik admits Ingress tau-$EDGE (its Service in the Ingress status)" admitted
  EDGE_TOKEN=$(kubectl -n "$CHANNELS" get secret "tau-$EDGE" -o jsonpath='{.data.api-token}' | base64 -d)
  through_traefik() { [[ $(via_traefik /readyz -o /dev/null -w '%{http_code}') == 200 ]]; }
  wait_for 30 "relay /readyz through Traefik" through_traefik
  edge_sub() {
    curl -sf "$CONTROL/subscriptions" | jq -e --arg cb "$EDGE_CALLBACK" \
      '[.[] | select(.type == "channel.follow" and .status == "enabled" and .transport.callback == $cb)] | length == 1'
  }
  wait_for 90 "the operator's webhook subscription verified through Traefik" edge_sub
  # The dashboard and the API, as a person and a bot's set-up see them.
  local page
  page=$(via_traefik / -f) || die "the dashboard did not load through Traefik"
  grep -q '<title>TAU dashboard</title>' <<<"$page" || die "GET / through Traefik is not the dashboard: $(head -c 200 <<<"$page")"
  via_traefik /api/v1/status -f -H "Authorization: Token $EDGE_TOKEN" | jq -e 'has("events_stored")' >/dev/null ||
    die "the status API did not answer through Traefik"
  [[ $(via_traefik /api/v1/status -o /dev/null -w '%{http_code}') == 401 ]] || die "the status API answered without a token through Traefik"
  echo "Traefik $TRAEFIK_SVC:80 serves $EDGE_HOST: subscription verified, dashboard and API answer"

  step "10b. a bot through Traefik receives an event, then idles ${INGRESS_IDLE}s (overlapping scenarios 9 and 3)"
  : >"$WORK/edge-resent.txt"
  python3 .ci/tau-bot.py --reconnect --via "$TRAEFIK_SVC:80" "ws://$EDGE_HOST/ws/twitch-events/" "$EDGE_TOKEN" \
    "$WORK/bot-edge.jsonl" 2>"$WORK/bot-edge.err" &
  BOT_PIDS+=($!)
  wait_for 15 "the edge bot connected through Traefik" grep -q '"bot": "connected"' "$WORK/bot-edge.jsonl"
  local first
  first=$(edge_send idle_first) || die "the first webhook through Traefik was never acknowledged"
  edge_got() { jq -e --arg id "$1" 'select(.event_id == $id)' "$WORK/bot-edge.jsonl"; }
  wait_for 20 "the edge bot receives $first" edge_got "$first"
  EDGE_IDLE_T0=$SECONDS
  echo "bot connected through Traefik got $first; idle from now"
}

ingress_finish() {
  step "10b. the bot's connection through Traefik after ${INGRESS_IDLE}s without events"
  local left=$((EDGE_IDLE_T0 + INGRESS_IDLE - SECONDS))
  ((left > 0)) && { echo "idle for ${left}s more"; sleep "$left"; }
  local idle=$((SECONDS - EDGE_IDLE_T0)) connects pings lost
  connects=$(grep -c '"bot": "connected"' "$WORK/bot-edge.jsonl" || true)
  lost=$(grep -c '"bot": "\(lost\|closed\)"' "$WORK/bot-edge.jsonl" || true)
  pings=$(grep -c '"bot": "ping"' "$WORK/bot-edge.jsonl" || true)
  ((connects == 1 && lost == 0)) ||
    die "the bot's websocket through Traefik did not stay up for ${idle}s: $connects connections, $lost closes (bot-edge.jsonl)"
  ((pings >= idle / 30)) || die "only $pings pings reached the bot through Traefik in ${idle}s"
  echo "one connection through Traefik, up ${idle}s without an event ($pings relay pings answered)"

  step "10c. relay rollout while webhooks stream through Traefik -> the bot resumes with since, nothing missed"
  local old_pod ids=$WORK/edge-acked.txt i id
  old_pod=$(kubectl -n "$CHANNELS" get pods -l "tau.dev/channel=$EDGE" -o jsonpath='{.items[0].metadata.name}')
  : >"$ids"
  for ((i = 1; i <= INGRESS_EVENTS; i++)); do
    id=$(edge_send "edge$i") || die "webhook edge$i was never acknowledged through Traefik"
    echo "$id" >>"$ids"
    if ((i == INGRESS_EVENTS / 4)); then
      kubectl -n "$CHANNELS" patch twitchchannel "$EDGE" --type merge -p '{"spec":{"retention":"7d"}}' >/dev/null
      echo "spec.retention changed after $i events: the operator rolls the relay"
    fi
    sleep 0.2
  done
  new_edge_pod() {
    kubectl -n "$CHANNELS" get pods -l "tau.dev/channel=$EDGE" -o json | jq -e --arg old "$old_pod" \
      '[.items[] | select(.metadata.name != $old and any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length == 1'
  }
  wait_for 120 "the rolled-out relay pod of $EDGE Ready" new_edge_pod
  has_all() { [[ -z $(comm -23 <(sort -u "$ids") <(jq -r 'select(.event_id != null) | .event_id' "$WORK/bot-edge.jsonl" | sort -u)) ]]; }
  wait_for 45 "the edge bot has every acknowledged event" has_all
  local got dups reconnects
  got=$(jq -r 'select(.event_id != null) | .event_id' "$WORK/bot-edge.jsonl")
  dups=$(sort <<<"$got" | uniq -d | wc -l)
  reconnects=$(grep -c '"bot": "connected"' "$WORK/bot-edge.jsonl")
  ((dups == 0)) || die "the edge bot received $dups events twice"
  ((reconnects >= 2)) || die "the rollout never closed the bot's connection (did the relay roll?)"
  echo "$INGRESS_EVENTS of $INGRESS_EVENTS acknowledged ($(wc -l <"$WORK/edge-resent.txt") resends while the relay rolled);" \
    "bot: all received, 0 duplicates, $reconnects connections through Traefik"

  kubectl -n "$CHANNELS" delete twitchchannel "$EDGE" --wait=false >/dev/null
  edge_gone() { [[ -z $(kubectl -n "$CHANNELS" get twitchchannel "$EDGE" -o name --ignore-not-found) ]]; }
  wait_for 60 "$EDGE deleted" edge_gone
  kubectl delete -f .ci/traefik.yaml --ignore-not-found --wait=false >/dev/null 2>&1 || true
}
