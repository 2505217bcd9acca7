//! Test harness: an in-process relay on 127.0.0.1:0, signed webhook posts,
//! and a TAU websocket client.

#![allow(dead_code)]

#[path = "../support/oauth.rs"]
pub mod oauth;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tau_relay::{
    access::{Grant, Role},
    app::{self, AppState},
    config::Config,
    ingest::signature::sign,
    secret::SecretKey,
    store::Store,
};
use tokio::net::TcpStream;
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream, WebSocketStream};

/// The webhook secret every test relay uses.
pub const SECRET: &str = "test-webhook-secret";

/// A running relay.
#[derive(Clone)]
pub struct TestRelay {
    pub base: String,
    pub ws_url: String,
    pub token: String,
    pub state: AppState,
    pub http: reqwest::Client,
}

impl TestRelay {
    pub async fn start() -> TestRelay {
        TestRelay::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestRelay {
        let mut config = Config::for_tests();
        adjust(&mut config);
        let store = Store::in_memory().await;
        TestRelay::start_on(config, store).await
    }

    /// A relay wired to `fake` (WebSocket transport), Twitch side running.
    pub async fn start_twitch(
        fake: &tau_fake_twitch::FakeTwitch,
        adjust: impl FnOnce(&mut Config),
    ) -> TestRelay {
        TestRelay::start_twitch_on(
            fake,
            Store::in_memory().await,
            SecretKey::generate(),
            adjust,
        )
        .await
    }

    /// [`TestRelay::start_twitch`] on `store` with `key` (a restart: the
    /// same database and key).
    pub async fn start_twitch_on(
        fake: &tau_fake_twitch::FakeTwitch,
        store: Store,
        key: SecretKey,
        adjust: impl FnOnce(&mut Config),
    ) -> TestRelay {
        let mut config = Config::for_tests();
        config.twitch.client_id = Some(tau_fake_twitch::FakeTwitch::CLIENT_ID.into());
        config.twitch.client_secret = Some(tau_fake_twitch::FakeTwitch::CLIENT_SECRET.into());
        config.twitch.api_url = fake.api_url().parse().unwrap();
        config.twitch.auth_url = fake.auth_url().parse().unwrap();
        config.twitch.eventsub_ws_url = fake.eventsub_ws_url().parse().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.public_url = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        adjust(&mut config);
        let relay = TestRelay::start_keyed(listener, config, store, key).await;
        app::spawn_twitch(&relay.state);
        relay
    }

    pub async fn start_on(config: Config, store: Store) -> TestRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        TestRelay::start_on_listener(listener, config, store).await
    }

    pub async fn start_on_listener(
        listener: tokio::net::TcpListener,
        config: Config,
        store: Store,
    ) -> TestRelay {
        TestRelay::start_keyed(listener, config, store, SecretKey::generate()).await
    }

    /// A relay on `listener` whose Twitch tokens are sealed with `key`.
    pub async fn start_keyed(
        listener: tokio::net::TcpListener,
        config: Config,
        store: Store,
        key: SecretKey,
    ) -> TestRelay {
        let addr = listener.local_addr().unwrap();
        let state = app::build_with_store(config, key, store);
        let token = state
            .store
            // Unique: a test may start several relays on one database.
            .create_token(
                &format!("test-{}", uuid::Uuid::new_v4()),
                &Grant::role(Role::Admin),
            )
            .await
            .unwrap()
            .token;
        tokio::spawn(app::serve(listener, state.clone()));
        TestRelay {
            base: format!("http://{addr}"),
            ws_url: format!("ws://{addr}/ws/twitch-events/"),
            token,
            state,
            http: reqwest::Client::new(),
        }
    }

    /// Posts a webhook body signed as Twitch would.
    pub async fn post_webhook(
        &self,
        message_type: &str,
        message_id: &str,
        body: &str,
    ) -> reqwest::Response {
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        self.post_webhook_at(message_type, message_id, body, &timestamp, SECRET)
            .await
    }

    pub async fn post_webhook_at(
        &self,
        message_type: &str,
        message_id: &str,
        body: &str,
        timestamp: &str,
        secret: &str,
    ) -> reqwest::Response {
        let signature = sign(secret.as_bytes(), message_id, timestamp, body.as_bytes());
        self.http
            .post(format!("{}/twitch/eventsub", self.base))
            .header("Twitch-Eventsub-Message-Id", message_id)
            .header("Twitch-Eventsub-Message-Timestamp", timestamp)
            .header("Twitch-Eventsub-Message-Signature", signature)
            .header("Twitch-Eventsub-Message-Type", message_type)
            .header("Twitch-Eventsub-Message-Retry", "0")
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Posts a notification of `kind` with `event` JSON text.
    pub async fn notify(
        &self,
        message_id: &str,
        kind: &str,
        version: &str,
        event: &str,
    ) -> reqwest::StatusCode {
        let body = notification_body(kind, version, event);
        self.post_webhook("notification", message_id, &body)
            .await
            .status()
    }

    /// The stored Twitch user token (access, refresh, scopes...), unsealed
    /// with the relay's own key.
    pub async fn stored_user_token(&self) -> Value {
        let sealed = self
            .state
            .store
            .setting("twitch_user_token")
            .await
            .unwrap()
            .expect("a stored user token");
        serde_json::from_str(&self.state.secret_key.open(&sealed).unwrap()).unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Token {}", self.token))
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Token {}", self.token))
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Connects and authenticates with `extra` fields merged into the first frame.
    pub async fn client(&self, extra: Value) -> Client {
        let mut hello = serde_json::json!({ "token": self.token });
        if let (Some(h), Some(e)) = (hello.as_object_mut(), extra.as_object()) {
            h.extend(e.clone());
        }
        self.client_raw(&hello.to_string()).await
    }

    /// Connects and sends `first_frame` as is.
    pub async fn client_raw(&self, first_frame: &str) -> Client {
        let (mut ws, _) = tokio_tungstenite::connect_async(&self.ws_url)
            .await
            .unwrap();
        ws.send(Message::Text(first_frame.into())).await.unwrap();
        Client { ws }
    }

    /// Waits until `n` authenticated clients are connected.
    pub async fn wait_clients(&self, n: i64) {
        self.wait_clients_for(n, Duration::from_secs(5)).await
    }

    /// Waits up to `limit` until `n` authenticated clients are connected.
    pub async fn wait_clients_for(&self, n: i64, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self.state.metrics.clients_connected.get() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "expected {n} clients, have {}",
            self.state.metrics.clients_connected.get()
        );
    }
}

/// Walks the authorization-code flow as a browser would; returns the callback response.
pub async fn authorize(relay: &TestRelay) -> reqwest::Response {
    let response = oauth::walk(&relay.base, &relay.token, str::to_string).await;
    response
}

/// `{"subscription": {...}, "event": <event>}` as Twitch sends it.
pub fn notification_body(kind: &str, version: &str, event: &str) -> String {
    format!(
        r#"{{"subscription":{{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"enabled","type":"{kind}","version":"{version}","cost":0,"condition":{{"broadcaster_user_id":"1337"}},"transport":{{"method":"webhook","callback":"https://example.com/webhooks/callback"}},"created_at":"2019-11-16T10:11:12.634234626Z"}},"event":{event}}}"#
    )
}

/// A connected TAU client.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the next frame was.
#[derive(Debug)]
pub enum Frame {
    Json(Value, String),
    Closed(Option<(u16, String)>),
}

impl Client {
    /// The next text frame as JSON, or the close; panics after `secs`.
    pub async fn next(&mut self, secs: u64) -> Frame {
        let deadline = Duration::from_secs(secs);
        loop {
            let message = tokio::time::timeout(deadline, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Frame::Json(serde_json::from_str(&text).unwrap(), text.to_string())
                }
                Some(Ok(Message::Close(frame))) => {
                    return Frame::Closed(frame.map(|f| (u16::from(f.code), f.reason.to_string())))
                }
                Some(Ok(_)) => continue,
                None | Some(Err(_)) => return Frame::Closed(None),
            }
        }
    }

    /// The next event frame; panics on close or timeout.
    pub async fn event(&mut self) -> (Value, String) {
        match self.next(10).await {
            Frame::Json(value, text) => (value, text),
            Frame::Closed(close) => panic!("socket closed: {close:?}"),
        }
    }

    /// True if no frame arrives within `ms`.
    pub async fn quiet_for(&mut self, ms: u64) -> bool {
        tokio::time::timeout(Duration::from_millis(ms), self.ws.next())
            .await
            .is_err()
    }
}

/// The exact field set of the original TAU's event frame.
pub const TAU_FIELDS: [&str; 7] = [
    "created",
    "event_data",
    "event_id",
    "event_source",
    "event_type",
    "id",
    "origin",
];

/// Asserts a frame has exactly TAU's fields (the compatibility contract).
pub fn assert_tau_frame(value: &Value) {
    let mut keys: Vec<_> = value
        .as_object()
        .expect("frame is an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, TAU_FIELDS, "frame fields: {value}");
    assert!(value["event_data"].is_object());
    assert!(value["event_type"]
        .as_str()
        .unwrap()
        .chars()
        .all(|c| c != '.'));
    let created = value["created"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(created).expect("created is RFC 3339");
}
