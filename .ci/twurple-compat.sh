#!/usr/bin/env bash
# EventSub compatibility tier, second library: a bot written for Twitch with
# twurple (@twurple/eventsub-ws + @twurple/api + @twurple/auth 8.1.4, npm),
# unchanged but for its base URLs and a TAU token, subscribes through TAU's
# Helix-compatible API, connects to TAU's EventSub WebSocket
# (/eventsub/ws) and must receive a follow that enters TAU through Twitch's
# signed webhook and a cheer that enters through (the fake) Twitch's
# EventSub socket, with the right fields, and not another channel's follow;
# then the relay drains while a second replica on the same database runs
# behind a load balancer (.ci/eventsub-compat/balancer.py), twurple follows
# TAU's session_reconnect without subscribing again, and follows stored
# during and after the handover reach it too.
#
# Unlike the twitchAPI tier, the relays are wired to the fake Twitch
# (tests/fake-twitch) and a broadcaster connects through its OAuth: twurple
# insists that /oauth2/validate name a user (an app token is refused).
# The three packages are pinned in .ci/twurple-compat/package-lock.json
# (`npm ci`). Usage: bash .ci/twurple-compat.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tau/target}"

echo "=== twurple-compat: npm ci"
(cd .ci/twurple-compat && npm ci --no-audit --no-fund --loglevel=error)

echo "=== twurple-compat: cargo build tau-relay, fake-twitch"
cargo build --quiet -p tau-relay --bin tau-relay -p tau-fake-twitch --bin fake-twitch
relay_bin="$CARGO_TARGET_DIR/debug/tau-relay"
fake_bin="$CARGO_TARGET_DIR/debug/fake-twitch"

work="$(mktemp -d "${TMPDIR:-/tmp}/tau-twurple-compat.XXXXXX")"
# shellcheck source=.ci/eventsub-compat/lib.sh
source .ci/eventsub-compat/lib.sh
fake_pid=""
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
  stop "$fake_pid"
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
base="http://127.0.0.1:$lb_port"
admin_token="$(random_hex 24)"
webhook_secret="$(random_hex 16)"
broadcaster_login=cooler_user

"$fake_bin" --listen 127.0.0.1:0 --control 127.0.0.1:0 >"$work/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 1 100); do
  grep -q '^control ' "$work/fake.log" 2>/dev/null && break
  sleep 0.1
done
twitch="$(sed -n 's/^twitch //p' "$work/fake.log")"
control="$(sed -n 's/^control //p' "$work/fake.log")"
[[ -n "$twitch" && -n "$control" ]] || { cat "$work/fake.log"; echo "fake-twitch did not start" >&2; exit 1; }

# The relays use the fake's app and broadcaster (harness.js).
twitch_env=(
  TAU_TRANSPORT=websocket
  TWITCH_CLIENT_ID=faketauclientid000000000000000
  TWITCH_CLIENT_SECRET=faketauclientsecret00000000000
  TWITCH_BROADCASTER=cooler_user
  TWITCH_API_URL="$twitch/helix"
  TWITCH_AUTH_URL="$twitch/oauth2"
  TWITCH_EVENTSUB_WS_URL="${twitch/http/ws}/ws"
)

python3 .ci/eventsub-compat/balancer.py "$lb_port" "$port1" "$port2" &
balancer_pid=$!
start_relay 1 "$port1"
relay_pid=$started_pid
for _ in $(seq 1 50); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "$base/readyz" >/dev/null

echo "=== twurple-compat: the broadcaster connects Twitch (the fake's OAuth)"
python3 - "$base" "$admin_token" <<'PY'
import json, sys, urllib.error, urllib.request
base, admin = sys.argv[1:3]
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None
opener = urllib.request.build_opener(NoRedirect)
start = urllib.request.urlopen(urllib.request.Request(
    base + "/api/v1/twitch/authorize", method="POST", headers={"Authorization": "Token " + admin}))
cookie = start.headers["Set-Cookie"].split(";")[0]
url = json.load(start)["url"]
try:
    opener.open(url)
    sys.exit("the fake's authorize did not redirect")
except urllib.error.HTTPError as e:
    back = e.headers["Location"]
done = urllib.request.urlopen(urllib.request.Request(back, headers={"Cookie": cookie}))
assert done.status == 200, done.status
PY
bot_token="$(new_token twurple-bot bot)"
for _ in $(seq 1 100); do
  curl -fsS -H "Authorization: OAuth $bot_token" "$base/oauth2/validate" | grep -q '"user_id":"1337"' && break
  sleep 0.2
done

echo "=== twurple-compat: twurple bot subscribes through TAU"
TAU_BASE="$base" TAU_TOKEN="$bot_token" STATE_DIR="$work" TIMEOUT=60 \
  node .ci/twurple-compat/bot.mjs >"$work/bot.log" 2>&1 &
bot_pid=$!
wait_file ready 30

echo "=== twurple-compat: a signed webhook (follow), the fake's EventSub socket (cheer), another channel's follow"
other_channel_follow twurple-other
follow twurple-follow-1 4242 compat_follower
# The fake delivers to the relay's EventSub session once it holds the subscription.
for _ in $(seq 1 150); do
  curl -fsS "$control/subscriptions" | grep -q '"channel.cheer"' && break
  sleep 0.2
done
curl -fsS -X POST "$control/notify" -H 'Content-Type: application/json' --data '{"type": "channel.cheer", "version": "1",
  "event": {"is_anonymous": false, "user_id": "4243", "user_login": "compat_cheerer", "user_name": "Compat_Cheerer",
  "broadcaster_user_id": "1337", "broadcaster_user_login": "cooler_user", "broadcaster_user_name": "Cooler_User",
  "message": "twurple cheer", "bits": 500}}' >/dev/null
wait_file phase1 30

echo "=== twurple-compat: a second replica; the first drains (session_reconnect)"
start_relay 2 "$port2"
relay2_pid=$started_pid
kill -TERM "$relay_pid"
# Reaches the second replica (the first stopped accepting): stored while
# the bot moves over, delivered by the session that takes over.
follow twurple-follow-2 4244 during_handover
wait "$relay_pid" 2>/dev/null || true
relay_pid=""
follow twurple-follow-3 4245 after_restart

echo "=== twurple-compat: waiting for the bot's verdict"
bot_rc=0
wait "$bot_pid" || bot_rc=$?
bot_pid=""
cat "$work/bot.log"
if grep -q "elsewhere" "$work/bot.log"; then
  echo "another channel's follow reached the bot" >&2
  exit 1
fi
[[ $bot_rc -eq 0 ]] || { echo "the bot failed (exit $bot_rc)" >&2; exit 1; }
check_relay_logs
echo "=== twurple-compat: twurple 8.1.4 ran on TAU unchanged"
