# Shared by the EventSub compatibility tiers (.ci/eventsub-compat.sh,
# .ci/twurple-compat.sh): two relay replicas on one SQLite file behind
# balancer.py, Twitch-signed webhooks into them, and waiting on the bot.
# Sourced, not run. The caller sets `work` (a temp dir), `relay_bin`,
# `base` (the balancer's URL), `admin_token`, `webhook_secret`,
# `broadcaster_login`, `bot_pid` (once the bot runs) and the array
# `twitch_env` (the relays' TWITCH_* / TAU_TRANSPORT settings).

# `stop PID`: ends a background process, if any.
stop() {
  local pid="$1"
  if [[ -n "$pid" ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

random_hex() {
  python3 -c "import secrets; print(secrets.token_hex($1))"
}

# `start_relay N PORT`: replica N on PORT (sets started_pid); the public
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
      TWITCH_WEBHOOK_SECRET="$webhook_secret" \
      "${twitch_env[@]}" \
      "$relay_bin"
  ) >>"$work/relay$1.log" 2>&1 &
  started_pid=$!
  for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$started_pid" 2>/dev/null || { echo "relay $1 exited" >&2; exit 1; }
    sleep 0.2
  done
  echo "relay not ready" >&2
  exit 1
}

# `new_token NAME ROLE`: prints a new TAU API token.
new_token() {
  curl -fsS -X POST "$base/api/v1/tokens" -H "Authorization: Token $admin_token" \
    -H 'Content-Type: application/json' --data "{\"name\": \"$1\", \"role\": \"$2\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
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

# `follow MESSAGE_ID USER_ID LOGIN`: a follow of broadcaster 1337.
follow() {
  webhook "$1" channel.follow 2 "{\"user_id\": \"$2\", \"user_login\": \"$3\", \"user_name\": \"$3\",
    \"broadcaster_user_id\": \"1337\", \"broadcaster_user_login\": \"$broadcaster_login\",
    \"broadcaster_user_name\": \"$broadcaster_login\", \"followed_at\": \"2024-01-01T00:00:00Z\"}"
}

# `other_channel_follow MESSAGE_ID`: a follow of another channel (999),
# which the bot must not receive.
other_channel_follow() {
  webhook "$1" channel.follow 2 '{"user_id": "7", "user_login": "elsewhere", "user_name": "Elsewhere",
    "broadcaster_user_id": "999", "broadcaster_user_login": "other", "broadcaster_user_name": "Other",
    "followed_at": "2024-01-01T00:00:00Z"}'
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

# `check_relay_logs`: fails if a relay logged an error or panicked.
check_relay_logs() {
  if grep -qE '\bERROR\b|panicked' "$work"/relay*.log; then
    cat "$work"/relay*.log
    echo "the relay logged errors" >&2
    exit 1
  fi
}
