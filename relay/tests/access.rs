//! Least privilege: every rule of the route table against every role,
//! token management with roles, overlay event restrictions, and sockets
//! closed when their token is revoked or demoted.

mod common;

use std::time::Duration;

use axum::{body::Body, http::Request, routing::get};
use common::{Frame, TestRelay};
use serde_json::{json, Value};
use tau_relay::{
    access::{
        guard::{guard, GuardState},
        routes::{Need, RouteTable},
        Grant, Role,
    },
    app,
};
use tower::ServiceExt;

/// A concrete path for a route pattern (path parameters filled in).
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{key}/test", "channel-follow/test")
        .replace("{key}", &uuid::Uuid::new_v4().to_string())
        .replace("{id}", &uuid::Uuid::new_v4().to_string())
        .replace("{*path}", "users")
        .replace("{login}", "cooler_user")
}

/// A fresh token of `role` (fresh, so a route that rotates it harms no other case).
async fn token(relay: &TestRelay, role: Role) -> String {
    let name = format!("{role}-{}", uuid::Uuid::new_v4());
    relay
        .state
        .store
        .create_token(&name, &Grant::role(role))
        .await
        .unwrap()
        .token
}

async fn send(relay: &TestRelay, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = relay
        .http
        .request(method.parse().unwrap(), format!("{}{path}", relay.base));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Token {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    // Every answer, of every route, success or error: nothing cached, sniffed or framed.
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(
            response.headers().get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{method} {path}: {name}"
        );
    }
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Opens `path` as a websocket with `token` and reports how it answered.
async fn socket(relay: &TestRelay, path: &str, token: &str) -> Option<(u16, String)> {
    let url = format!("{}{path}", relay.base.replace("http://", "ws://"));
    let (ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let mut client = common::Client { ws };
    use futures_util::SinkExt;
    client
        .ws
        .send(tokio_tungstenite::tungstenite::Message::Text(
            json!({ "token": token }).to_string().into(),
        ))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_millis(500), client.next(5)).await {
            Err(_) => return None,
            Ok(Frame::Closed(close)) => return close,
            Ok(Frame::Json(value, _)) if value.get("error").is_some() => continue,
            // The status socket sends its document at once: accepted.
            Ok(Frame::Json(_, _)) => return None,
        }
    }
}

/// Walks the router's own rule list: every route, every role. A route
/// added to the relay is in this list by construction, so it is tested.
#[tokio::test]
async fn every_route_refuses_weaker_roles_and_admits_the_rest() {
    let relay = TestRelay::start().await;
    let table = app::routes();
    let rules = table.rules().to_vec();
    assert!(rules.len() > 25, "the table holds every route");
    assert!(
        rules
            .iter()
            .all(|r| r.path == "/" || !r.path.ends_with('/')),
        "routes are registered once, without a trailing slash (the HTTP stack trims it)"
    );
    for rule in rules {
        let path = concrete(&rule.path);
        let method = rule.method.clone().unwrap_or(axum::http::Method::GET);
        let what = format!("{method} {}", rule.path);
        match rule.need {
            Need::Public => {
                let (status, body) = send(&relay, method.as_str(), &path, None).await;
                assert_ne!(status, 401, "{what} is public");
                let detail = body["detail"].as_str().unwrap_or_default();
                assert!(!detail.contains("this needs"), "{what}: {detail}");
            }
            Need::Token(need) => {
                let (status, _) = send(&relay, method.as_str(), &path, None).await;
                assert_eq!(status, 401, "{what} without a token");
                // The original TAU's trailing slash reaches the same route and rule.
                let (status, _) = send(&relay, method.as_str(), &format!("{path}/"), None).await;
                assert_eq!(status, 401, "{what} with a trailing slash, without a token");
                for role in Role::ALL {
                    let token = token(&relay, role).await;
                    let (status, body) = send(&relay, method.as_str(), &path, Some(&token)).await;
                    if role.covers(need) {
                        assert!(
                            status != 401 && status != 403,
                            "{what} as {role}: {status} {body}"
                        );
                    } else {
                        assert_eq!(status, 403, "{what} as {role}: {body}");
                        let detail = body["detail"].as_str().unwrap();
                        assert!(
                            detail.contains(&format!(" {need} token")),
                            "{what} as {role}: 403 names the role needed: {detail}"
                        );
                    }
                }
            }
            Need::Socket(need) => {
                for role in Role::ALL {
                    let token = token(&relay, role).await;
                    let answer = socket(&relay, &path, &token).await;
                    if role.covers(need) {
                        // 1013: admitted, but no Twitch account is connected
                        // here to be the chat bot (the chat-bot socket).
                        assert!(
                            answer.as_ref().is_none_or(|(code, _)| *code == 1013),
                            "{what} as {role}: {answer:?}"
                        );
                    } else {
                        let (code, reason) = answer.expect("closed");
                        assert_eq!(code, 1008, "{what} as {role}");
                        assert!(reason.contains(&format!(" {need} token")), "{reason}");
                    }
                }
            }
        }
    }
}

/// The rules that matter most, spelled out: a change to any is deliberate.
#[tokio::test]
async fn key_routes_need_the_documented_role() {
    let table = app::routes();
    let need = |method: &str, path: &str| {
        table
            .rules()
            .iter()
            .find(|r| {
                r.path == path && r.method.as_ref().map(|m| m.as_str()) == Some(method)
                    || (r.path == path && r.method.is_none() && method == "ANY")
            })
            .unwrap_or_else(|| panic!("no rule for {method} {path}"))
            .need
    };
    let cases = [
        ("GET", "/api/v1/twitch-events", Need::Token(Role::Overlay)),
        (
            "GET",
            "/api/v1/twitch-events/{key}",
            Need::Token(Role::Overlay),
        ),
        (
            "DELETE",
            "/api/v1/twitch-events/{key}",
            Need::Token(Role::Admin),
        ),
        (
            "POST",
            "/api/v1/twitch-events/{key}/test",
            Need::Token(Role::Bot),
        ),
        (
            "GET",
            "/api/v1/twitch-events/{key}/test",
            Need::Token(Role::Bot),
        ),
        (
            "POST",
            "/api/v1/twitch-events/{key}/replay",
            Need::Token(Role::Bot),
        ),
        ("GET", "/api/v1/whoami", Need::Token(Role::Overlay)),
        (
            "POST",
            "/api/v1/twitch/resubscribe",
            Need::Token(Role::Admin),
        ),
        (
            "GET",
            "/api/v1/twitch/event-types",
            Need::Token(Role::Admin),
        ),
        (
            "PUT",
            "/api/v1/twitch/event-types",
            Need::Token(Role::Admin),
        ),
        (
            "DELETE",
            "/api/v1/twitch/event-types",
            Need::Token(Role::Admin),
        ),
        ("GET", "/api/v1/tokens", Need::Token(Role::Admin)),
        ("POST", "/api/v1/tokens", Need::Token(Role::Admin)),
        ("DELETE", "/api/v1/tokens/{id}", Need::Token(Role::Admin)),
        ("POST", "/api/v1/twitch/authorize", Need::Token(Role::Admin)),
        ("GET", "/twitch/authorize", Need::Token(Role::Admin)),
        ("ANY", "/api/twitch/helix/{*path}", Need::Token(Role::Bot)),
        ("GET", "/ws/twitch-events", Need::Socket(Role::Overlay)),
        ("GET", "/ws/tau-status", Need::Socket(Role::Bot)),
        ("GET", "/ws/irc-messages", Need::Socket(Role::Overlay)),
        ("GET", "/ws/chat-bots/{login}", Need::Socket(Role::Overlay)),
        ("POST", "/api/v1/irc", Need::Token(Role::Bot)),
        ("GET", "/api/v1/chat/senders", Need::Token(Role::Bot)),
        ("GET", "/api/v1/heartbeat", Need::Public),
        ("GET", "/favicon.svg", Need::Public),
        ("GET", "/favicon.ico", Need::Public),
    ];
    for (method, path, expected) in cases {
        assert_eq!(need(method, path), expected, "{method} {path}");
    }
}

/// A route added without a rule is refused, not served.
#[tokio::test]
async fn a_route_without_a_rule_is_refused() {
    let relay = TestRelay::start().await;
    let (router, rules) = RouteTable::new()
        .map_router(|r| r.route("/sneaky", get(|| async { "open" })))
        .into_parts();
    let router = router
        .route_layer(axum::middleware::from_fn_with_state(
            GuardState {
                app: relay.state.clone(),
                rules: std::sync::Arc::new(rules),
            },
            guard,
        ))
        .with_state(relay.state.clone());
    let response = router
        .oneshot(Request::get("/sneaky").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

/// A method without a rule is 405 with `Allow` (what HTTP clients expect),
/// even if a handler for it was registered by mistake: it never runs.
#[tokio::test]
async fn a_method_without_a_rule_is_405_and_never_served() {
    let relay = TestRelay::start().await;
    let handler = get(|| async { "fine" }).post(|| async { "open" });
    let (router, rules) = RouteTable::new()
        .add(axum::http::Method::GET, "/half", Need::Public, handler)
        .into_parts();
    let router = router
        .route_layer(axum::middleware::from_fn_with_state(
            GuardState {
                app: relay.state.clone(),
                rules: std::sync::Arc::new(rules),
            },
            guard,
        ))
        .with_state(relay.state.clone());
    for method in ["POST", "PUT", "TRACE", "OPTIONS"] {
        let request = Request::builder()
            .method(method)
            .uri("/half")
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "GET, HEAD", "{method}");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert!(body["detail"].as_str().unwrap().contains(method), "{body}");
    }
    // And on the real routes: a path's other methods are 405 for anyone.
    let response = relay
        .http
        .put(format!("{}/api/v1/tokens", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD, POST");
}

#[tokio::test]
async fn tokens_have_roles_unique_names_and_hash_hints() {
    let relay = TestRelay::start().await;
    let create = |body: Value| {
        let relay = relay.clone();
        async move {
            let response = relay
                .http
                .post(format!("{}/api/v1/tokens", relay.base))
                .header("Authorization", format!("Token {}", relay.token))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, created) =
        create(json!({"name": "obs", "role": "overlay", "event_types": ["channel.follow"]})).await;
    assert_eq!(status, 201, "{created}");
    let value = created["token"].as_str().unwrap().to_string();
    assert_eq!(created["record"]["role"], "overlay");
    assert_eq!(created["record"]["event_types"], json!(["channel-follow"]));
    let (status, body) = create(json!({"name": "obs", "role": "bot"})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("obs"));
    for bad in [
        json!({"name": "x"}),
        json!({"name": "x", "role": "root"}),
        json!({"name": "x", "role": "bot", "event_types": ["channel-follow"]}),
        json!({"name": "x", "role": "overlay", "event_types": ["channel-nope"]}),
    ] {
        assert_eq!(create(bad.clone()).await.0, 400, "{bad}");
    }
    let list = relay.get("/api/v1/tokens").await.text().await.unwrap();
    assert!(!list.contains(&value) && !list.contains(&relay.token));
    let records: Vec<Value> = serde_json::from_str(&list).unwrap();
    let obs = records.iter().find(|r| r["name"] == "obs").unwrap();
    assert_eq!(obs["role"], "overlay");
    let hint = obs["hint"].as_str().unwrap();
    assert_eq!(hint.len(), 8);
    assert!(
        !value.contains(hint),
        "the hint is not a piece of the token"
    );
    // Promote it: the record says so, and it can do bot things.
    let id = obs["id"].as_str().unwrap();
    let patched = relay
        .http
        .patch(format!("{}/api/v1/tokens/{id}", relay.base))
        .header("Authorization", format!("Token {}", relay.token))
        .json(&json!({"role": "bot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(patched.json::<Value>().await.unwrap()["role"], "bot");
    let (status, _) = send(&relay, "GET", "/api/v1/status", Some(&value)).await;
    assert_eq!(status, 200);
    // The last admin can be neither revoked nor demoted through the API.
    let admin = relay.state.store.authenticate(&relay.token).await.unwrap();
    let admin_id = admin.unwrap().id;
    let path = format!("/api/v1/tokens/{admin_id}");
    let (status, body) = send(&relay, "DELETE", &path, Some(&relay.token)).await;
    assert_eq!(status, 409, "{body}");
    let demote = relay
        .http
        .patch(format!("{}{path}", relay.base))
        .header("Authorization", format!("Token {}", relay.token))
        .json(&json!({"role": "bot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(demote.status(), 409);
    assert_eq!(
        send(&relay, "GET", "/api/v1/tokens", Some(&relay.token))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_restricted_overlay_sees_only_its_event_types() {
    let relay = TestRelay::start().await;
    let grant = Grant {
        role: Role::Overlay,
        event_types: Some(vec!["channel-follow".into()]),
    };
    let overlay = relay
        .state
        .store
        .create_token("follows-only", &grant)
        .await
        .unwrap()
        .token;
    let mut client = relay
        .client_raw(&json!({ "token": overlay }).to_string())
        .await;
    relay.wait_clients(1).await;
    for kind in ["channel-cheer", "channel-follow"] {
        let path = format!("/api/v1/twitch-events/{kind}/test");
        assert_eq!(relay.post(&path, "").await.status(), 200);
    }
    let (frame, _) = client.event().await;
    assert_eq!(frame["event_type"], "channel-follow");
    assert!(client.quiet_for(200).await, "the cheer never arrives");
    // Asking for more than the grant is refused.
    let mut greedy = relay
        .client_raw(&json!({ "token": overlay, "events": ["channel.cheer"] }).to_string())
        .await;
    assert!(matches!(greedy.next(5).await, Frame::Json(v, _) if v["error"].is_string()));
    assert!(matches!(
        greedy.next(5).await,
        Frame::Closed(Some((1008, _)))
    ));
    // History: only its types, and a hidden event is "not found".
    let cheer = r#"{"user_id":"1","user_login":"a","user_name":"A","bits":5}"#;
    assert_eq!(relay.notify("c1", "channel.cheer", "1", cheer).await, 204);
    let follow = r#"{"user_id":"2","user_login":"b","user_name":"B"}"#;
    assert_eq!(relay.notify("f1", "channel.follow", "2", follow).await, 204);
    let (_, page) = send(&relay, "GET", "/api/v1/twitch-events", Some(&overlay)).await;
    let types: Vec<_> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["channel-follow"]);
    let (_, all) = send(&relay, "GET", "/api/v1/twitch-events", Some(&relay.token)).await;
    let cheer_id = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "channel-cheer")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/twitch-events/{cheer_id}");
    assert_eq!(send(&relay, "GET", &path, Some(&overlay)).await.0, 404);
    assert_eq!(send(&relay, "GET", &path, Some(&relay.token)).await.0, 200);
}

/// Revoked through the API (this replica) or in the store by someone else
/// (another replica, the CLI), demoted, or rotated: the sockets close with
/// 1008 within a second.
#[tokio::test]
async fn revoking_or_demoting_a_token_closes_its_sockets() {
    let relay = TestRelay::start().await;
    let store = &relay.state.store;
    let mut tokens = Vec::new();
    for name in ["via-api", "via-store", "demoted", "status", "rotated"] {
        let new = store
            .create_token(name, &Grant::role(Role::Bot))
            .await
            .unwrap();
        tokens.push((new.record.id, new.token));
    }
    let mut clients = Vec::new();
    for (_, token) in tokens[..3].iter().chain(&tokens[4..]) {
        clients.push(
            relay
                .client_raw(&json!({ "token": token }).to_string())
                .await,
        );
    }
    let status_url = format!("{}/ws/tau-status/", relay.base.replace("http://", "ws://"));
    let (ws, _) = tokio_tungstenite::connect_async(&status_url).await.unwrap();
    let mut status = common::Client { ws };
    {
        use futures_util::SinkExt;
        let hello = json!({ "token": tokens[3].1 }).to_string();
        status.ws.send(hello.into()).await.unwrap();
    }
    assert!(matches!(status.next(5).await, Frame::Json(v, _) if v["version"].is_string()));
    relay.wait_clients(4).await;
    let untouched = relay.client(json!({})).await;
    relay.wait_clients(5).await;

    let started = tokio::time::Instant::now();
    let id = &tokens[0].0;
    let response = relay
        .http
        .delete(format!("{}/api/v1/tokens/{id}", relay.base))
        .header("Authorization", format!("Token {}", relay.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    store.revoke_token("via-store").await.unwrap();
    store
        .set_grant(&tokens[2].0, &Grant::role(Role::Overlay))
        .await
        .unwrap();
    store.revoke_token("status").await.unwrap();
    let rotated = relay
        .http
        .post(format!("{}/api/v1/tau-user-token/refresh/", relay.base))
        .header("Authorization", format!("Token {}", tokens[4].1))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
    let expect = [
        ("via-api", "token revoked"),
        ("via-store", "token revoked"),
        ("demoted", "token permissions changed"),
        ("rotated", "token revoked"),
    ];
    for (client, (name, reason)) in clients.iter_mut().zip(expect) {
        match client.next(2).await {
            Frame::Closed(Some((1008, why))) => assert!(why.contains(reason), "{name}: {why}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    loop {
        match status.next(2).await {
            Frame::Json(v, _) if v["error"].is_string() => continue,
            Frame::Json(_, _) => continue,
            Frame::Closed(close) => {
                assert_eq!(close.map(|c| c.0), Some(1008));
                break;
            }
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    relay.wait_clients(1).await;
    drop(untouched);
}
