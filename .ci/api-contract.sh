#!/usr/bin/env bash
# API contract: property-based tests (schemathesis) against a live relay,
# driven by the relay's own OpenAPI document (/api/v1/openapi.json).
#
# For each role (overlay, bot, admin) schemathesis generates valid and
# invalid requests for every documented operation and fails on any 5xx, any
# undocumented status code or content type, and any response body that does
# not match the document.
#
# The relay runs as a user runs it (`tau-relay` binary, embedded SQLite in a
# temp dir, a loopback port) with Twitch credentials that point at a closed
# loopback port: routes that need them answer as configured, and nothing
# leaves the machine. One event is stored through a signed webhook first, so
# the history's answers carry a real event.
#
# Left out of the per-role runs, with reasons:
# - POST /api/v1/tau-user-token/refresh replaces the token the run
#   authenticates with (every later request would be a 401); it gets a run
#   of its own at the end, with a throwaway token.
# - PATCH/DELETE /api/v1/tokens/{id} never get the ids of the tokens in
#   use (they could revoke or demote them mid-run): they are fuzzed with
#   generated ids and a throwaway token's id, not with ids schemathesis saw
#   in responses, and the admin run has no stateful phase (its links would
#   feed them ids from GET /api/v1/tokens). After each run the script
#   checks that the run's token still works.
#
# schemathesis is installed once, pinned, into a cached venv
# (~/.cache/tau-tools/schemathesis-venv; PyPI). Usage: bash .ci/api-contract.sh
# (MAX_EXAMPLES=N for a longer run).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES="${MAX_EXAMPLES:-25}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tau/target}"

venv="$HOME/.cache/tau-tools/schemathesis-venv"
st="$venv/bin/schemathesis"
if [[ "$("$st" --version 2>/dev/null || true)" != *"version $SCHEMATHESIS_VERSION" ]]; then
  echo "=== installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --quiet -p tau-relay --bin tau-relay
relay_bin="$CARGO_TARGET_DIR/debug/tau-relay"

work="$(mktemp -d "${TMPDIR:-/tmp}/tau-api-contract.XXXXXX")"
relay_pid=""
cleanup() {
  if [[ -n "$relay_pid" ]]; then
    kill "$relay_pid" 2>/dev/null || true
    wait "$relay_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
port="$(free_port)"
closed="$(free_port)" # nothing listens there: Twitch is unreachable
base="http://127.0.0.1:$port"
admin_token="$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
webhook_secret="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

(
  cd "$work"
  exec env -i PATH="$PATH" HOME="$HOME" \
    RUST_LOG=warn \
    TAU_LISTEN="127.0.0.1:$port" \
    TAU_DATABASE_URL="sqlite://$work/tau.db" \
    TAU_API_TOKEN="$admin_token" \
    TWITCH_CLIENT_ID=contract-test \
    TWITCH_CLIENT_SECRET=contract-test-secret \
    TWITCH_WEBHOOK_SECRET="$webhook_secret" \
    TWITCH_BROADCASTER=contract_channel \
    TWITCH_API_URL="http://127.0.0.1:$closed/helix" \
    TWITCH_AUTH_URL="http://127.0.0.1:$closed/oauth2" \
    TWITCH_EVENTSUB_WS_URL="ws://127.0.0.1:$closed/ws" \
    "$relay_bin"
) >"$work/relay.log" 2>&1 &
relay_pid=$!

for _ in $(seq 1 100); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$relay_pid" 2>/dev/null || { cat "$work/relay.log"; echo "relay exited" >&2; exit 1; }
  sleep 0.2
done
curl -fsS "$base/readyz" >/dev/null

# `curl_json METHOD PATH TOKEN [BODY]`: the JSON answer; fails on an HTTP error.
curl_json() {
  curl -fsS -X "$1" "$base$2" -H "Authorization: Token $3" \
    -H 'Content-Type: application/json' ${4:+--data "$4"}
}
new_token() {
  curl_json POST /api/v1/tokens "$admin_token" "{\"name\": \"$1\", \"role\": \"$2\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}
bot_token="$(new_token contract-bot bot)"
overlay_token="$(new_token contract-overlay overlay)"
refresh_token="$(new_token contract-refresh bot)"

# Two stored events, through Twitch's signed webhook: one to read and
# replay, one for the admin run to delete.
python3 - "$base" "$webhook_secret" <<'EOF'
import datetime, hashlib, hmac, json, sys, urllib.request
base, secret = sys.argv[1], sys.argv[2]
for n in (1, 2):
    body = json.dumps({
        "subscription": {"id": "contract-sub", "status": "enabled", "type": "channel.follow",
                         "version": "2", "cost": 0, "condition": {"broadcaster_user_id": "1337"},
                         "transport": {"method": "webhook", "callback": "https://example.com/cb"},
                         "created_at": "2024-01-01T00:00:00Z"},
        "event": {"user_id": str(1000 + n), "user_login": f"user_{n}", "user_name": f"User_{n}",
                  "broadcaster_user_id": "1337", "broadcaster_user_login": "contract_channel",
                  "broadcaster_user_name": "Contract_Channel", "followed_at": "2024-01-01T00:00:00Z"},
    }).encode()
    message_id = f"contract-event-{n}"
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
EOF
read -r kept_event doomed_event < <(curl_json GET /api/v1/twitch-events "$overlay_token" |
  python3 -c 'import json, sys; print(*[e["id"] for e in json.load(sys.stdin)["results"]])')
[[ -n "$doomed_event" ]] || { echo "expected two stored events" >&2; exit 1; }
doomed_token_id="$(curl_json POST /api/v1/tokens "$admin_token" '{"name": "contract-doomed", "role": "overlay"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["record"]["id"])')"

event_types="$(curl_json GET /api/v1/twitch/eventsub-subscriptions "$bot_token" |
  python3 -c 'import json, sys; print(json.dumps(sorted({e["event_type"] for e in json.load(sys.stdin)})))')"

# Real ids and event types for half the generated values, so the answers
# about things that exist (an event, a token, a type) are checked too, not
# only 404s and 400s. The doomed event and token are there to be deleted
# (admin run).
cat >"$work/schemathesis.toml" <<EOF
[dictionaries]
kept-event = { values = ["$kept_event"] }
doomed-event = { values = ["$doomed_event"] }
doomed-token = { values = ["$doomed_token_id"] }
event-types = { values = $event_types }

[[operations]]
include-path = "/api/v1/twitch-events/{key}/test"
parameters = { "path.key" = { dictionary = "event-types", probability = 0.5 } }

[[operations]]
include-path = "/api/v1/tokens"
include-method = "POST"
parameters = { "body.event_types[*]" = { dictionary = "event-types", probability = 0.5 } }

[[operations]]
include-path-regex = '^/api/v1/twitch-events/[{]key[}](/replay)?$'
include-method-regex = '^(GET|POST)$'
parameters = { "path.key" = { dictionary = "kept-event", probability = 0.5 } }

[[operations]]
include-path = "/api/v1/twitch-events/{key}"
include-method-regex = '^(DELETE|PUT|PATCH)$'
parameters = { "path.key" = { dictionary = "doomed-event", probability = 0.5 } }

# Routes that need Twitch answer 503 (documented) when it cannot be
# reached, and this relay's Twitch is a closed port: sending chat, and
# watching a streamer (its login is resolved at Twitch).
[[operations]]
include-path-regex = '^/api/v1/(irc|streamers)$'
include-method = "POST"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]

# Never ids seen in responses here: GET /api/v1/tokens lists the tokens
# the runs use (a PATCH would demote the admin token mid-run).
[[operations]]
include-path = "/api/v1/tokens/{id}"
parameters = { "path.id" = { dictionary = "doomed-token", probability = 0.5 }, "body.event_types[*]" = { dictionary = "event-types", probability = 0.5 } }
phases.examples.extra-data-sources.responses = false
phases.coverage.extra-data-sources.responses = false
phases.fuzzing.extra-data-sources.responses = false
EOF

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
# `contract NAME TOKEN ARGS...`: one schemathesis run as that token.
contract() {
  local name="$1" token="$2"; shift 2
  echo "=== schemathesis as $name"
  (
    cd "$work"
    "$st" --config-file "$work/schemathesis.toml" run "$base/api/v1/openapi.json" \
      --checks "$checks" \
      --header "Authorization: Token $token" \
      --max-examples "$MAX_EXAMPLES" \
      --generation-database none \
      --no-color \
      "$@"
  )
  # The run must not have lost its token (coverage would silently drop to 401s).
  curl -fsS -o /dev/null "$base/api/v1/twitch-events?page_size=1" -H "Authorization: Token $token" ||
    { echo "the $name token stopped working during its run" >&2; exit 1; }
}

refresh=/api/v1/tau-user-token/refresh
contract overlay "$overlay_token" --exclude-path "$refresh"
contract bot "$bot_token" --exclude-path "$refresh"
contract admin "$admin_token" --exclude-path "$refresh" --phases examples,coverage,fuzzing

echo "=== schemathesis: $refresh (its own run: it replaces the token it is called with)"
(
  cd "$work"
  "$st" run "$base/api/v1/openapi.json" \
    --checks "$checks" \
    --header "Authorization: Token $refresh_token" \
    --include-path "$refresh" \
    --max-examples 5 \
    --generation-database none \
    --no-color
)

# A clean run logs no error (an internal error, a panic, a route without an
# access rule would). Warnings are not judged: a slow disk makes sqlx warn.
if grep -qE '\bERROR\b|panicked' "$work/relay.log"; then
  cat "$work/relay.log"
  echo "the relay logged errors during the run" >&2
  exit 1
fi
echo "=== API contract held for every role"
