#!/usr/bin/env python3
"""Writes the seed inputs the corpora grew from (run once, then `cargo fuzz
cmin`): Twitch's example payloads from eventsub/src/data/examples.json
wrapped the way each target reads its input, plus hand-made edge cases."""
import hashlib
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
EXAMPLES = json.loads((ROOT.parent / "eventsub/src/data/examples.json").read_text())


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    out = ROOT / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)


def subscription(key, status="enabled"):
    kind, version = key.split("@")
    return {"id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4", "type": kind, "version": version,
            "status": status, "cost": 0, "condition": {"broadcaster_user_id": "1337"},
            "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"},
            "created_at": "2019-11-16T10:11:12.634234626Z"}


def webhook(kind, body, ts="2019-11-16T10:11:12.634234626Z", extra=""):
    return (f"twitch-eventsub-message-id: e76c6bd4-55c9-4987-8304-da1588d8988b\n"
            f"twitch-eventsub-message-timestamp: {ts}\n"
            f"twitch-eventsub-message-type: {kind}\n{extra}\n") + body


def ws(kind, payload, message_id="befa7b53-d79d-478f-86b9-120f112b044e"):
    return json.dumps({"metadata": {"message_id": message_id, "message_type": kind,
                                    "message_timestamp": "2023-07-19T14:56:51.634234626Z"},
                       "payload": payload})


for key, events in list(EXAMPLES.items())[::4]:
    for event in events[:1]:
        sub = subscription(key)
        body = {"subscription": sub, **event}
        put("webhook", webhook("notification", json.dumps(body)))
        put("eventsub_message", ws("notification", body))
put("webhook", webhook("webhook_callback_verification",
                       json.dumps({"challenge": "pogchamp-kappa-360noscope-vohiyo",
                                   "subscription": subscription("channel.follow@2", "webhook_callback_verification_pending")})))
put("webhook", webhook("revocation", json.dumps({"subscription": subscription("channel.follow@2", "authorization_revoked")})))
put("webhook", webhook("notification", json.dumps({"subscription": subscription("drop.entitlement.grant@1"),
                                                   "events": [{"id": "a", "data": {}}, {"id": "b", "data": {}}]})))
put("webhook", webhook("notification", "{}", extra="x-fuzz-skew: 601\n"))
put("webhook", webhook("notification", "{}", extra="twitch-eventsub-message-signature: sha256=00\n"))
put("webhook", webhook("notification", "{}", ts="2024-02-29T23:59:60+14:00"))

put("eventsub_message", ws("session_welcome", {"session": {
    "id": "AQoQexAWVYKSTIu4ec_2VAxyuhAB", "status": "connected", "connected_at": "2023-07-19T14:56:51.616329898Z",
    "keepalive_timeout_seconds": 10, "reconnect_url": None, "recovery_url": None}}))
put("eventsub_message", ws("session_welcome", {"session": {"id": "x", "keepalive_timeout_seconds": 18446744073709551615}}))
put("eventsub_message", ws("session_keepalive", {}))
put("eventsub_message", ws("session_reconnect", {"session": {
    "id": "AQoQexAWVYKSTIu4ec_2VAxyuhAB", "status": "reconnecting", "keepalive_timeout_seconds": None,
    "reconnect_url": "wss://eventsub.wss.twitch.tv?...", "connected_at": "2023-07-19T14:56:51.616329898Z"}}))
put("eventsub_message", ws("revocation", {"subscription": subscription("channel.follow@2", "authorization_revoked")}))
put("eventsub_message", ws("notification", {"subscription": subscription("drop.entitlement.grant@1"),
                                            "events": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}))

for frame in [{"token": "tau_abc"}, {"token": "tau_abc", "events": ["channel.follow", "channel-raid", "stream.online"]},
              {"token": "tau_abc", "since": "0190a6f2-7d3c-7c8e-8d1b-6a8f0e8b9c11"},
              {"token": "", "events": []}, {"token": "t", "since": "{0190a6f2-7d3c-7c8e-8d1b-6a8f0e8b9c11}"},
              {"token": "t", "since": "urn:uuid:0190a6f2-7d3c-7c8e-8d1b-6a8f0e8b9c11", "events": ["channel.channel_points_custom_reward_redemption.add"]}]:
    put("handshake", json.dumps(frame))

for query in ["", "cursor=YjEyMw", "cursor=YTQ1", "page_size=500&event_type=channel.follow&user_name=Foo",
              "cursor=&page_size=1&raid_from=a%20b&raid_to=%F0%9F%98%80&reward_id=x+y&user_id=1",
              "cursor=Yi05MjIzMzcyMDM2ODU0Nzc1ODA4", "page_size=+7&cursor=YSswMDc", "event_type=channel-raid&event_type=x"]:
    put("history_query", query)

put("channel_children", json.dumps({"name": "demo", "namespace": "streams", "defaults": 0, "spec": {
    "broadcaster": "cooler_user", "credentials": {"secretName": "twitch-app"},
    "events": ["default"], "ingress": {"host": "demo.tau.example.com", "className": "nginx",
                                        "tlsSecretName": "demo-tls", "annotations": {"a": "b"}}}}))
put("channel_children", json.dumps({"name": "a", "namespace": "b", "defaults": 3,
                                    "existing": {"webhook-secret": "kept", "secret-key": "", "database-url": "sqlite:///var/lib/tau/tau.db"},
                                    "spec": {"broadcaster": "x", "credentials": {"secretName": "s", "clientIdKey": "id"},
                                             "transport": "conduit", "events": ["channel.follow@2", "stream.online", "nope"],
                                             "databaseUrlSecret": {"name": "db", "key": "url"}, "redisUrl": "redis://r",
                                             "publicUrl": "http://localhost:8000/", "retention": "0",
                                             "relay": {"replicas": 3, "image": "tau:dev", "podAnnotations": {"tau.dev/inputs-checksum": "x"},
                                                       "nodeSelector": {"pool": "bots"}, "tolerations": [{"key": "k", "operator": "Exists"}],
                                                       "imagePullSecrets": [{"name": "reg"}], "priorityClassName": "high",
                                                       "resources": {"limits": {"memory": "1Gi"}}}}}))
put("channel_children", json.dumps({"name": "x" * 50, "namespace": "n" * 63, "defaults": 15,
                                    "spec": {"broadcaster": "", "credentials": {"secretName": ""}, "transport": "websocket",
                                             "events": [], "relay": {"replicas": -2147483648}}}))
