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
# shellcheck source=.ci/eventsub-compat/lib.sh
source .ci/eventsub-compat/lib.sh
relay_pid=""
relay2_pid=""
balancer_pid=""
bot_pid=""
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

lb_port="$(free_port)"
port1="$(free_port)"
port2="$(free_port)"
closed="$(free_port)" # nothing listens there: Twitch is unreachable
base="http://127.0.0.1:$lb_port"
admin_token="$(random_hex 24)"
webhook_secret="$(random_hex 16)"
broadcaster_login=compat_channel
twitch_env=(
  TWITCH_CLIENT_ID=eventsub-compat
  TWITCH_CLIENT_SECRET=eventsub-compat-secret
  TWITCH_API_URL="http://127.0.0.1:$closed/helix"
  TWITCH_AUTH_URL="http://127.0.0.1:$closed/oauth2"
  TWITCH_EVENTSUB_WS_URL="ws://127.0.0.1:$closed/ws"
)

python3 .ci/eventsub-compat/balancer.py "$lb_port" "$port1" "$port2" &
balancer_pid=$!
start_relay 1 "$port1"
relay_pid=$started_pid
for _ in $(seq 1 50); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "$base/readyz" >/dev/null
bot_token="$(new_token compat-bot bot)"

echo "=== eventsub-compat: twitchAPI bot subscribes through TAU"
TAU_BASE="$base" TAU_TOKEN="$bot_token" STATE_DIR="$work" BROADCASTER_ID=1337 TIMEOUT=60 \
  "$venv/bin/python" .ci/eventsub-compat/bot.py >"$work/bot.log" 2>&1 &
bot_pid=$!
wait_file ready 30

echo "=== eventsub-compat: signed webhooks in (follow, cheer, another channel's follow)"
other_channel_follow compat-other
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

check_relay_logs
echo "=== eventsub-compat: twitchAPI $TWITCHAPI_VERSION ran on TAU unchanged"
