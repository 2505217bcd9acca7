#!/usr/bin/env bash
# EventSub compatibility tier: a bot written for Twitch with a real client
# library (twitchAPI 4.5.0, PyPI), unchanged but for its base URLs and a
# TAU token, subscribes through TAU's Helix-compatible API, connects to
# TAU's EventSub WebSocket (/eventsub/ws) and must receive events that
# enter TAU through Twitch's signed webhook, with the right fields; then
# the relay drains while a second replica on the same database runs behind
# a load balancer (a rolling restart), the library follows TAU's
# session_reconnect to the other replica without resubscribing, and an
# event stored during the handover and one after it must reach it too.
#
# The relay runs as a user runs it (`tau-relay` binary, SQLite in a temp
# dir, a free loopback port); its Twitch credentials point at a closed
# loopback port (nothing leaves the machine; the default event types,
# which include channel.follow v2 and channel.cheer v1, count as received).
# Then webhook forwarding: a receiver written from Twitch's signature recipe
# in Node (node:crypto, no npm; twitchAPI's EventSubWebhook refuses
# non-https callbacks) is added as a target (challenge), receives forwarded
# events, goes down, and gets the missed ones in order exactly once.
# twitchAPI is installed pinned into ~/.cache/tau/venv-eventsub.
# Usage: bash .ci/eventsub-compat.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TWITCHAPI_VERSION=4.5.0
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tau/target}"

venv="$HOME/.cache/tau/venv-eventsub"
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('twitchAPI') != '$TWITCHAPI_VERSION')" 2>/dev/null; then
  echo "=== installing twitchAPI $TWITCHAPI_VERSION into $venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "twitchAPI==$TWITCHAPI_VERSION"
fi

echo "=== eventsub-compat: cargo build tau-relay"
cargo build --quiet -p tau-relay --bin tau-relay
relay_bin="$CARGO_TARGET_DIR/debug/tau-relay"

work="$(mktemp -d "${TMPDIR:-/tmp}/tau-eventsub-compat.XXXXXX")"
relay_pid=""
relay2_pid=""
balancer_pid=""
bot_pid=""
stop() {
  local pid="$1"
  if [[ -n "$pid" ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
cleanup() {
  local rc=$?
  stop "$bot_pid"
  stop "$relay_pid"
  stop "$relay2_pid"
  stop "$balancer_pid"
  if [[ $rc -ne 0 ]]; then
    echo "--- relay log"; cat "$work"/relay*.log 2>/dev/null || true
    echo "--- bot log"; cat "$work/bot.log" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
lb_port="$(free_port)"
port1="$(free_port)"
port2="$(free_port)"
closed="$(free_port)" # nothing listens there: Twitch is unreachable
base="http://127.0.0.1:$lb_port"
admin_token="$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
webhook_secret="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

# `start_relay N PORT`: replica N on PORT (sets started_pid), the public
# URL is the balancer's.
start_relay() {
  (
    cd "$work"
    exec env -i PATH="$PATH" HOME="$HOME" \
      RUST_LOG=info \
      TAU_LISTEN="127.0.0.1:$2" \
      TAU_SECRET_KEY_FILE="$work/secret.key" \
      TAU_PUBLIC_URL="$base" \
      TAU_DATABASE_URL="sqlite://$work/tau.db" \
      TAU_API_TOKEN="$admin_token" \
      TWITCH_CLIENT_ID=eventsub-compat \
      TWITCH_CLIENT_SECRET=eventsub-compat-secret \
      TWITCH_WEBHOOK_SECRET="$webhook_secret" \
      TWITCH_API_URL="http://127.0.0.1:$closed/helix" \
      TWITCH_AUTH_URL="http://127.0.0.1:$closed/oauth2" \
      TWITCH_EVENTSUB_WS_URL="ws://127.0.0.1:$closed/ws" \
      "$relay_bin"
  ) >>"$work/relay$1.log" 2>&1 &
  started_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$started_pid" 2>/dev/null || { echo "relay $1 exited" >&2; exit 1; }
    sleep 0.2
  done
  echo "relay not ready" >&2
  exit 1
}

# `webhook MESSAGE_ID TYPE VERSION EVENT_JSON`: a notification signed as Twitch signs it.
webhook() {
  python3 - "$base" "$webhook_secret" "$@" <<'PY'
import datetime, hashlib, hmac, json, sys, urllib.request
base, secret, message_id, kind, version, event = sys.argv[1:7]
body = json.dumps({
    "subscription": {"id": "compat-" + kind, "status": "enabled", "type": kind, "version": version,
                     "cost": 0, "condition": {"broadcaster_user_id": "1337"},
                     "transport": {"method": "webhook", "callback": "https://example.com/cb"},
                     "created_at": "2024-01-01T00:00:00Z"},
    "event": json.loads(event),
}).encode()
timestamp = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
mac = hmac.new(secret.encode(), message_id.encode() + timestamp.encode() + body, hashlib.sha256)
request = urllib.request.Request(base + "/twitch/eventsub", data=body, method="POST", headers={
    "Content-Type": "application/json",
    "Twitch-Eventsub-Message-Id": message_id,
    "Twitch-Eventsub-Message-Timestamp": timestamp,
    "Twitch-Eventsub-Message-Signature": "sha256=" + mac.hexdigest(),
    "Twitch-Eventsub-Message-Type": "notification",
    "Twitch-Eventsub-Message-Retry": "0",
})
assert urllib.request.urlopen(request).status == 204
PY
}
follow() {
  webhook "$1" channel.follow 2 "{\"user_id\": \"$2\", \"user_login\": \"$3\", \"user_name\": \"$3\",
    \"broadcaster_user_id\": \"1337\", \"broadcaster_user_login\": \"compat_channel\",
    \"broadcaster_user_name\": \"Compat_Channel\", \"followed_at\": \"2024-01-01T00:00:00Z\"}"
}

# `wait_file NAME SECONDS`: until the bot writes it (or exits).
wait_file() {
  for _ in $(seq 1 $(($2 * 5))); do
    [[ -e "$work/$1" ]] && return 0
    kill -0 "$bot_pid" 2>/dev/null || { echo "the bot exited before '$1'" >&2; exit 1; }
    sleep 0.2
  done
  echo "the bot did not reach '$1' within $2 s" >&2
  exit 1
}

python3 .ci/eventsub-compat/balancer.py "$lb_port" "$port1" "$port2" &
balancer_pid=$!
start_relay 1 "$port1"
relay_pid=$started_pid
for _ in $(seq 1 50); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "$base/readyz" >/dev/null
bot_token="$(curl -fsS -X POST "$base/api/v1/tokens" -H "Authorization: Token $admin_token" \
  -H 'Content-Type: application/json' --data '{"name": "compat-bot", "role": "bot"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"

echo "=== eventsub-compat: twitchAPI bot subscribes through TAU"
TAU_BASE="$base" TAU_TOKEN="$bot_token" STATE_DIR="$work" BROADCASTER_ID=1337 TIMEOUT=60 \
  "$venv/bin/python" .ci/eventsub-compat/bot.py >"$work/bot.log" 2>&1 &
bot_pid=$!
wait_file ready 30

echo "=== eventsub-compat: signed webhooks in (follow, cheer, another channel's follow)"
webhook compat-other channel.follow 2 '{"user_id": "7", "user_login": "elsewhere", "user_name": "Elsewhere",
  "broadcaster_user_id": "999", "broadcaster_user_login": "other", "broadcaster_user_name": "Other",
  "followed_at": "2024-01-01T00:00:00Z"}'
follow compat-follow-1 4242 compat_follower
webhook compat-cheer-1 channel.cheer 1 '{"is_anonymous": false, "user_id": "4243", "user_login": "compat_cheerer",
  "user_name": "Compat_Cheerer", "broadcaster_user_id": "1337", "broadcaster_user_login": "compat_channel",
  "broadcaster_user_name": "Compat_Channel", "message": "compat cheer", "bits": 500}'
wait_file phase1 30

echo "=== eventsub-compat: a second replica; the first drains (session_reconnect)"
start_relay 2 "$port2"
relay2_pid=$started_pid
kill -TERM "$relay_pid"
# Reaches the second replica (the first stopped accepting): stored while
# the bot moves over, delivered by the session that takes over.
follow compat-follow-2 4244 during_handover
wait "$relay_pid" 2>/dev/null || true
relay_pid=""
follow compat-follow-3 4245 after_restart

echo "=== eventsub-compat: waiting for the bot's verdict"
bot_rc=0
wait "$bot_pid" || bot_rc=$?
bot_pid=""
cat "$work/bot.log"
if grep -q "elsewhere" "$work/bot.log"; then
  echo "another channel's follow reached the bot" >&2
  exit 1
fi
[[ $bot_rc -eq 0 ]] || { echo "the bot failed (exit $bot_rc)" >&2; exit 1; }

echo "=== eventsub-compat: signed webhook forwarding to a Node receiver (Twitch's recipe)"
node .ci/eventsub-compat/webhook-receiver.mjs "$base" "$admin_token" "$webhook_secret"

if grep -qE '\bERROR\b|panicked' "$work"/relay*.log; then
  cat "$work"/relay*.log
  echo "the relay logged errors" >&2
  exit 1
fi
echo "=== eventsub-compat: twitchAPI $TWITCHAPI_VERSION ran on TAU unchanged"
