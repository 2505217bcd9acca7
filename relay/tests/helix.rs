//! The Helix passthrough against the fake Twitch: path traversal and
//! malformed paths never reach Twitch, each role gets exactly its calls,
//! and no header buys the app token.

mod common;

use std::time::Duration;

use common::{authorize, TestRelay};
use serde_json::Value;
use tau_fake_twitch::{AuthKind, FakeTwitch};
use tau_relay::access::{Grant, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An authorized relay (WebSocket transport, one subscription type).
async fn relay(fake: &FakeTwitch) -> TestRelay {
    let relay = TestRelay::start_twitch(fake, |c| {
        c.eventsub_types = vec![("channel.cheer".into(), "1".into())]
    })
    .await;
    assert_eq!(authorize(&relay).await.status(), 200);
    // Let the relay's own subscription call land before counting calls.
    fake.wait_for_subscriptions(1, Duration::from_secs(15))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    relay
}

async fn token(relay: &TestRelay, role: Role) -> String {
    relay
        .state
        .store
        .create_token(&format!("{role}"), &Grant::role(role))
        .await
        .unwrap()
        .token
}

/// Sends `method target` byte for byte (no client-side normalisation of
/// `..` or `%2e`, which reqwest and the url crate would apply).
async fn raw(
    relay: &TestRelay,
    method: &str,
    target: &str,
    token: &str,
    extra: &str,
) -> (u16, String) {
    let addr = relay.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Token {token}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .unwrap()
    .unwrap();
    let status = response[9..12].parse().unwrap();
    (status, response)
}

fn helix_requests(fake: &FakeTwitch) -> Vec<tau_fake_twitch::RecordedRequest> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/helix"))
        .collect()
}

#[tokio::test]
async fn traversal_and_malformed_paths_never_reach_twitch() {
    let fake = FakeTwitch::start().await;
    let relay = relay(&fake).await;
    let before = helix_requests(&fake).len();
    for target in [
        "/api/twitch/helix/..%2F..%2Foauth2%2Fvalidate",
        "/api/twitch/helix/..%2f..%2foauth2/validate",
        "/api/twitch/helix/%2e%2e/%2e%2e/oauth2/validate",
        "/api/twitch/helix/%2E%2E/oauth2/validate",
        "/api/twitch/helix/users/../../oauth2/validate",
        "/api/twitch/helix/./users",
        "/api/twitch/helix//users",
        // (A trailing `//` is trimmed by the HTTP stack like every
        // trailing slash; an empty segment inside the path is refused.)
        "/api/twitch/helix/users//x",
        "/api/twitch/helix/users%5C..%5C..%5Coauth2",
        "/api/twitch/helix/users\\..\\oauth2",
        "/api/twitch/helix/http://127.0.0.1:1/x",
        "/api/twitch/helix/https:%2F%2Fevil.example%2Fx",
        "/api/twitch/helix/%68ttps:",
    ] {
        let (status, response) = raw(&relay, "GET", target, &relay.token, "").await;
        assert_eq!(status, 400, "{target}: {response}");
    }
    assert_eq!(
        helix_requests(&fake).len(),
        before,
        "no malformed path was forwarded: {:?}",
        &helix_requests(&fake)[before..]
    );
    // The well-formed call still works, query and rate-limit headers included.
    let (status, response) = raw(
        &relay,
        "GET",
        "/api/twitch/helix/users?login=cooler_user",
        &relay.token,
        "",
    )
    .await;
    assert_eq!(status, 200, "{response}");
    assert!(response.to_lowercase().contains("ratelimit-remaining"));
    let last = helix_requests(&fake).pop().unwrap();
    assert_eq!(last.path, "/helix/users");
    assert_eq!(last.query.as_deref(), Some("login=cooler_user"));
}

/// Token, method, Helix path, extra header, expected status, and the
/// credential Twitch should see (`None`: the call must not reach Twitch).
type Case<'a> = (&'a str, &'a str, &'a str, &'a str, u16, Option<AuthKind>);

#[tokio::test]
async fn each_role_gets_its_calls_and_no_header_buys_the_app_token() {
    let fake = FakeTwitch::start().await;
    let relay = relay(&fake).await;
    let bot = token(&relay, Role::Bot).await;
    let overlay = token(&relay, Role::Overlay).await;
    let admin = relay.token.clone();
    let app = "X-TAU-Token-Type: app\r\n";
    let cases: Vec<Case> = vec![
        (&bot, "GET", "users", "", 200, Some(AuthKind::User)),
        (&bot, "GET", "users", app, 403, None),
        (&bot, "GET", "eventsub/subscriptions", "", 403, None),
        (&bot, "GET", "eventsub/subscriptions", app, 403, None),
        (&bot, "GET", "eventsub/conduits", "", 403, None),
        (&bot, "DELETE", "eventsub/subscriptions", "", 403, None),
        (&bot, "DELETE", "users", "", 403, None),
        (&overlay, "GET", "users", "", 403, None),
        (&admin, "GET", "users", app, 403, None),
        (&admin, "POST", "eventsub/subscriptions", app, 403, None),
        (&admin, "DELETE", "eventsub/conduits", "", 403, None),
        (
            &admin,
            "GET",
            "users",
            "X-TAU-Token-Type: root\r\n",
            400,
            None,
        ),
        (&admin, "OPTIONS", "users", "", 405, None),
        (
            &admin,
            "GET",
            "eventsub/conduits",
            "",
            200,
            Some(AuthKind::App),
        ),
        (
            &admin,
            "GET",
            "eventsub/subscriptions",
            app,
            200,
            Some(AuthKind::App),
        ),
        (
            &admin,
            "GET",
            "eventsub/subscriptions",
            "",
            200,
            Some(AuthKind::User),
        ),
        (
            &admin,
            "GET",
            "users",
            "X-TAU-Token-Type: user\r\n",
            200,
            Some(AuthKind::User),
        ),
    ];
    for (token, method, path, header, status, credential) in cases {
        let before = helix_requests(&fake).len();
        let target = format!("/api/twitch/helix/{path}");
        let (got, response) = raw(&relay, method, &target, token, header).await;
        let what = format!("{method} {path} {header:?}");
        assert_eq!(got, status, "{what}: {response}");
        let sent = &helix_requests(&fake)[before..];
        match credential {
            None => assert!(sent.is_empty(), "{what} reached Twitch: {sent:?}"),
            Some(kind) => {
                assert_eq!(sent.len(), 1, "{what}: {sent:?}");
                assert_eq!(sent[0].auth, kind, "{what}");
                assert_eq!(sent[0].path, format!("/helix/{path}"), "{what}");
            }
        }
        if status == 403 {
            let body: Value =
                serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
            assert!(
                body["detail"].as_str().unwrap().contains("token"),
                "{what}: {body}"
            );
        }
    }
}
