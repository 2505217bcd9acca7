//! No secret in a log line or an API response: API tokens (admin, bot,
//! overlay, revoked ones, a wrong guess), the broadcaster's access and
//! refresh tokens, the app token, the client and webhook secrets.
//!
//! One scenario touches every route family that handles a secret (token
//! management, sockets, OAuth with the right and a wrong account, the Helix
//! passthrough with both Twitch tokens, refusals) with every log line
//! captured at `debug` (and `trace` for the relay itself), then searches
//! the log and every response. The only responses allowed to carry a token
//! are the ones that hand out a new one (create, rotate) and the original
//! TAU's `GET /api/v1/tau-user-token/`, which echoes the caller's own.

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock},
};

use common::{authorize, TestRelay};
use serde_json::{json, Value};
use tau_fake_twitch::FakeTwitch;

/// Every log line of this test binary.
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter("debug,tau_relay=trace")
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .init();
        buffer
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Status, headers and body of a response, as one searchable text.
async fn text(response: reqwest::Response) -> String {
    let mut out = format!("{}\n", response.status());
    for (name, value) in response.headers() {
        out.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
    }
    out + &response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_line_or_a_response() {
    let log = log();
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |c| {
        c.eventsub_types = vec![("channel.cheer".into(), "1".into())];
        c.twitch.broadcaster = Some(FakeTwitch::BROADCASTER_LOGIN.into());
    })
    .await;
    let mut responses = Vec::new();
    // OAuth: a wrong account first (refused), then the broadcaster.
    fake.set_authorize_as(Some(("4242", "someone_else")));
    responses.push(text(authorize(&relay).await).await);
    fake.set_authorize_as(None);
    responses.push(text(authorize(&relay).await).await);
    fake.wait_for_subscriptions(1, std::time::Duration::from_secs(15))
        .await
        .unwrap();

    let call = |method: &str, path: &str, token: &str, body: Option<Value>| {
        let mut request = relay
            .http
            .request(method.parse().unwrap(), format!("{}{path}", relay.base))
            .header("Authorization", format!("Token {token}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let admin = relay.token.clone();
    // Minted here: their creation responses may (must) show them once.
    let created: Value = call(
        "POST",
        "/api/v1/tokens",
        &admin,
        Some(json!({"name": "bot", "role": "bot"})),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let bot = created["token"].as_str().unwrap().to_string();
    let bot_id = created["record"]["id"].as_str().unwrap().to_string();
    let created: Value = call(
        "POST",
        "/api/v1/tokens",
        &admin,
        Some(json!({"name": "obs", "role": "overlay", "event_types": ["channel.cheer"]})),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let overlay = created["token"].as_str().unwrap().to_string();
    // Rotating is bot-level: the overlay is refused, the bot gets a new value.
    let refused = call("POST", "/api/v1/tau-user-token/refresh/", &overlay, None);
    responses.push(text(refused.await.unwrap()).await);
    let rotated: Value = call("POST", "/api/v1/tau-user-token/refresh/", &bot, None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old_bot = bot;
    let bot = rotated["token"].as_str().unwrap().to_string();
    let wrong_guess = format!("tau_{}", "0".repeat(40));

    for (method, path, token, body) in [
        ("GET", "/api/v1/tokens", &admin, None),
        ("GET", "/api/v1/status", &admin, None),
        ("GET", "/api/v1/status", &bot, None),
        ("GET", "/api/v1/twitch-events", &overlay, None),
        ("GET", "/api/v1/tokens", &overlay, None),
        ("GET", "/api/v1/tokens", &old_bot, None),
        ("GET", "/api/v1/tokens", &wrong_guess, None),
        (
            "POST",
            "/api/v1/twitch-events/channel-cheer/test",
            &bot,
            None,
        ),
        ("GET", "/api/twitch/helix/users", &bot, None),
        (
            "GET",
            "/api/twitch/helix/eventsub/subscriptions",
            &bot,
            None,
        ),
        ("GET", "/api/twitch/helix/eventsub/conduits", &admin, None),
        (
            "GET",
            "/api/twitch/helix/eventsub/subscriptions",
            &admin,
            None,
        ),
        (
            "GET",
            "/api/twitch/helix/users/..%2F..%2Foauth2%2Fvalidate",
            &admin,
            None,
        ),
        (
            "PATCH",
            &format!("/api/v1/tokens/{bot_id}"),
            &admin,
            Some(json!({"role": "bot"})),
        ),
    ] {
        responses.push(text(call(method, path, token, body).await.unwrap()).await);
    }
    // Sockets: accepted, refused, and closed by a revocation.
    let mut client = relay.client_raw(&json!({ "token": bot }).to_string()).await;
    let mut refused = relay
        .client_raw(&json!({ "token": wrong_guess }).to_string())
        .await;
    responses.push(format!("{:?}", refused.next(5).await));
    responses.push(
        text(
            call("DELETE", &format!("/api/v1/tokens/{bot_id}"), &admin, None)
                .await
                .unwrap(),
        )
        .await,
    );
    responses.push(format!("{:?}", client.next(5).await));
    let _ = client.ws.close(None).await;

    let app_token = relay.state.twitch.tokens.app_token().await.unwrap();
    let user = relay.stored_user_token().await;
    let secrets = [
        ("admin API token", admin.clone()),
        ("bot API token", bot.clone()),
        ("rotated bot API token", old_bot.clone()),
        ("overlay API token", overlay.clone()),
        ("guessed API token", wrong_guess.clone()),
        (
            "user access token",
            user["access_token"].as_str().unwrap().to_string(),
        ),
        (
            "user refresh token",
            user["refresh_token"].as_str().unwrap().to_string(),
        ),
        ("app token", app_token),
        ("client secret", FakeTwitch::CLIENT_SECRET.to_string()),
        ("webhook secret", common::SECRET.to_string()),
    ];
    let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(logged.contains("helix passthrough"), "the log was captured");
    for (what, secret) in &secrets {
        assert!(!logged.contains(secret.as_str()), "{what} in the log");
        for response in &responses {
            assert!(
                !response.contains(secret.as_str()),
                "{what} in a response: {response}"
            );
        }
    }
}
