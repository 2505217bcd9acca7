//! Twitch's own CLI as the webhook peer (every type it generates, a wrong
//! secret, duplicate resends, revocation, its verification checks, a
//! watched streamer's online/offline; the CLI has no chat events) and as
//! the EventSub WebSocket peer (close reasons, keepalive silence, reconnect).
//!
//! Runs when `TWITCH_CLI` names the binary (built by the developer from
//! Twitch's source; `.ci/run` looks in `~/.cache/tau-tools/twitch-cli/`);
//! otherwise prints why it was skipped. The CLI exits 0 even on failures, so assertions read its
//! output and what the relay's clients saw.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use common::{assert_tau_frame, TestRelay, SECRET};
use serde_json::{json, Value};
use tau_relay::store::StreamerSource;

/// The two suites take turns: the webhook suite starts a CLI process per
/// event type, and once, with that load beside it on a busy CI machine,
/// the CLI's mock server sent the websocket suite no welcome for 30 s (the
/// cause is inside the CLI; taking turns removes the load).
static ONE_SUITE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn cli() -> Option<PathBuf> {
    match std::env::var_os("TWITCH_CLI") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            // Straight to stderr: libtest hides eprintln! output of passing tests.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED twitch_cli: TWITCH_CLI is not set (build the Twitch CLI from its source)"
            );
            None
        }
    }
}

/// Runs the CLI with a private HOME (it keeps a cache there); returns its output.
async fn run(cli: &Path, home: &Path, args: Vec<String>) -> String {
    let (cli, home) = (cli.to_path_buf(), home.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let out = Command::new(&cli)
            .args(&args)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", &home)
            .output()
            .expect("twitch-cli runs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
    .await
    .unwrap()
}

fn trigger(kind: &str, url: &str, secret: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["event", "trigger", kind, "-F", url, "-s", secret, "-D"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[tokio::test]
async fn the_twitch_cli_webhook_suite_passes() {
    let Some(cli) = cli() else { return };
    let _alone = ONE_SUITE_AT_A_TIME.lock().await;
    let home = std::env::temp_dir().join(format!("tau-twitch-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&home).unwrap();
    let relay = TestRelay::start().await;
    let url = format!("{}/twitch/eventsub", relay.base);
    let mut client = relay.client(json!({})).await;
    relay.wait_clients(1).await;

    // Every type the CLI generates for webhooks, from its own help text.
    let help = run(
        &cli,
        &home,
        vec!["event".into(), "trigger".into(), "--help".into()],
    )
    .await;
    let list = help
        .split('[')
        .nth(1)
        .and_then(|s| s.split(']').next())
        .expect("supported list in help");
    let types: Vec<&str> = list.split_whitespace().collect();
    assert!(types.len() >= 40, "{types:?}");
    for kind in &types {
        // channel.update has two versions in the CLI; it wants one named.
        let extra: &[&str] = if *kind == "channel.update" {
            &["-v", "2"]
        } else {
            &[]
        };
        let out = run(&cli, &home, trigger(kind, &url, SECRET, extra)).await;
        assert!(out.contains("Received Status Code: 204"), "{kind}: {out}");
        let (frame, _) = client.event().await;
        assert_tau_frame(&frame);
        assert_eq!(frame["event_type"], kind.replace('.', "-"), "{kind}");
        assert_eq!(frame["origin"], "twitch");
    }

    let wrong = run(
        &cli,
        &home,
        trigger("channel.follow", &url, "not-the-secret-at-all", &[]),
    )
    .await;
    assert!(wrong.contains("Received Status Code: 403"), "{wrong}");

    let twice = run(
        &cli,
        &home,
        trigger(
            "channel.cheer",
            &url,
            SECRET,
            &["-c", "2", "-I", "resent-id-1"],
        ),
    )
    .await;
    assert_eq!(
        twice.matches("Received Status Code: 204").count(),
        2,
        "{twice}"
    );
    assert_eq!(client.event().await.0["event_id"], "resent-id-1");
    assert!(client.quiet_for(300).await, "a resend is delivered once");

    let revoked = run(
        &cli,
        &home,
        trigger(
            "channel.follow",
            &url,
            SECRET,
            &["-r", "authorization_revoked"],
        ),
    )
    .await;
    assert!(revoked.contains("Received Status Code: 204"), "{revoked}");
    let status: Value = relay.get("/api/v1/status").await.json().await.unwrap();
    assert_eq!(status["revocations"][0]["status"], "authorization_revoked");

    let verify = run(
        &cli,
        &home,
        [
            "event",
            "verify-subscription",
            "channel.follow",
            "-F",
            &url,
            "-s",
            SECRET,
            "-D",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    )
    .await;
    for check in [
        "Valid response",
        "Valid content-type header",
        "Valid status code",
    ] {
        assert!(verify.contains(check), "{check}: {verify}");
    }
    assert!(!verify.contains('✗'), "{verify}");
    let stored = relay.state.store.count_events().await.unwrap();
    assert_eq!(stored as usize, types.len() + 1);

    // A watched streamer going live and offline, in the CLI's own payloads:
    // the relay keeps its record (no Helix here, so from the event alone).
    relay
        .state
        .store
        .insert_streamer("cli_streamer", "8675309", StreamerSource::Api)
        .await
        .unwrap();
    let streamer = || async {
        relay
            .state
            .store
            .streamer("cli_streamer")
            .await
            .unwrap()
            .unwrap()
    };
    let online = trigger(
        "stream.online",
        &url,
        SECRET,
        &["-t", "8675309", "-I", "cli-online-1"],
    );
    let out = run(&cli, &home, online).await;
    assert!(out.contains("Received Status Code: 204"), "{out}");
    assert_eq!(client.event().await.0["event_type"], "stream-online");
    for _ in 0..100 {
        if streamer().await.streaming {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        streamer().await.streaming,
        "stream.online marks the streamer live"
    );
    let streams = relay
        .state
        .store
        .streams("8675309", None, 10)
        .await
        .unwrap();
    assert_eq!(streams.len(), 1, "{streams:?}");
    assert_eq!(streams[0].ended_us, None);
    let offline = trigger("stream.offline", &url, SECRET, &["-t", "8675309"]);
    let out = run(&cli, &home, offline).await;
    assert!(out.contains("Received Status Code: 204"), "{out}");
    assert_eq!(client.event().await.0["event_type"], "stream-offline");
    for _ in 0..100 {
        if !streamer().await.streaming {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!streamer().await.streaming, "stream.offline ends it");
    let streams = relay
        .state
        .store
        .streams("8675309", None, 10)
        .await
        .unwrap();
    assert!(streams[0].ended_us.is_some(), "{streams:?}");
    std::fs::remove_dir_all(home).ok();
}

/// Kills the CLI's mock server when the test ends, however it ends.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn eventsub_status(relay: &TestRelay) -> Value {
    let status: Value = relay.get("/api/v1/status").await.json().await.unwrap();
    status["twitch"]["eventsub"].clone()
}

/// Waits until the relay holds a session other than `previous` with all
/// `subs` subscriptions enabled; returns its id.
async fn wait_session(relay: &TestRelay, previous: Option<&str>, subs: usize) -> String {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = eventsub_status(relay).await;
        let id = last["session_id"].as_str().unwrap_or_default();
        let enabled = last["subscriptions"]
            .as_array()
            .map_or(0, |s| s.iter().filter(|s| s["status"] == "enabled").count());
        if last["state"] == "connected" && !id.is_empty() && Some(id) != previous && enabled == subs
        {
            return id.to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no new session with {subs} enabled subscriptions (previous {previous:?}): {last}");
}

/// The CLI's mock EventSub WebSocket server (`-S`: subscribe within 10 s or
/// 4003) as the relay's socket and subscription endpoint: subscribe in time,
/// deliver triggered events, survive every close reason, keepalive silence
/// (`event websocket keepalive --enabled=false`: pings go on, keepalives
/// stop) and a reconnect without losing or duplicating an event.
#[tokio::test]
async fn the_twitch_cli_websocket_server_suite_passes() {
    let Some(cli) = cli() else { return };
    let _alone = ONE_SUITE_AT_A_TIME.lock().await;
    let home = std::env::temp_dir().join(format!("tau-twitch-cli-ws-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&home).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Command::new(&cli)
        .args([
            "event",
            "websocket",
            "start-server",
            "--ip",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-S",
        ])
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", &home)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mock server starts");
    let _server = ChildGuard(server);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // OAuth comes from the fake Twitch (the CLI has no code flow); the
    // EventSub socket and subscription endpoint are the CLI's.
    let fake = tau_fake_twitch::FakeTwitch::start().await;
    let types = [
        ("channel.follow", "2"),
        ("channel.cheer", "1"),
        ("channel.subscribe", "1"),
        ("stream.online", "1"),
    ];
    let relay = TestRelay::start_twitch(&fake, |c| {
        c.twitch.api_url = format!("http://127.0.0.1:{port}").parse().unwrap();
        c.twitch.eventsub_ws_url = format!("ws://127.0.0.1:{port}/ws").parse().unwrap();
        c.eventsub_types = types
            .iter()
            .map(|(t, v)| (t.to_string(), v.to_string()))
            .collect();
    })
    .await;
    assert_eq!(common::authorize(&relay).await.status(), 200);
    let mut session = wait_session(&relay, None, types.len()).await;
    let mut client = relay.client(json!({})).await;
    relay.wait_clients(1).await;
    let mut seen = std::collections::HashSet::new();

    let ws_trigger = |kind: &str| -> Vec<String> {
        ["event", "trigger", kind, "-T", "websocket"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let mut expect_event = |frame: Value, kind: &str| {
        assert_tau_frame(&frame);
        assert_eq!(frame["event_type"], kind.replace('.', "-"));
        assert!(
            seen.insert(frame["event_id"].as_str().unwrap().to_string()),
            "duplicate {frame}"
        );
    };
    for (kind, _) in types {
        let out = run(&cli, &home, ws_trigger(kind)).await;
        assert!(!out.contains("Error"), "{kind}: {out}");
        expect_event(client.event().await.0, kind);
    }

    // Every close reason the CLI sends leads to a fresh, subscribed session.
    for code in ["4000", "4001", "4002", "4003", "4005", "4006", "4007"] {
        let out = run(
            &cli,
            &home,
            [
                "event",
                "websocket",
                "close",
                "--session",
                &session,
                "--reason",
                code,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        )
        .await;
        assert!(!out.contains("Error"), "close {code}: {out}");
        session = wait_session(&relay, Some(&session), types.len()).await;
        run(&cli, &home, ws_trigger("channel.cheer")).await;
        expect_event(client.event().await.0, "channel.cheer");
    }

    // Keepalive silence: the CLI stops `session_keepalive` on the session
    // but keeps pinging it; the relay must notice within the keepalive
    // window (10 s) plus its slack and start a fresh, subscribed session.
    let out = run(
        &cli,
        &home,
        [
            "event",
            "websocket",
            "keepalive",
            "--session",
            &session,
            "--enabled=false",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    )
    .await;
    assert!(
        !out.contains("Error") && !out.contains('✗'),
        "keepalive off: {out}"
    );
    let silenced = std::time::Instant::now();
    session = wait_session(&relay, Some(&session), types.len()).await;
    let took = silenced.elapsed();
    let limit = std::time::Duration::from_secs(10) + relay.state.config.timings.keepalive_slack;
    assert!(
        took <= limit + std::time::Duration::from_secs(5),
        "fresh session only {took:?} after keepalives stopped"
    );
    run(&cli, &home, ws_trigger("channel.cheer")).await;
    expect_event(client.event().await.0, "channel.cheer");

    // Reconnect: the relay moves to the new URL; subscriptions carry over.
    let out = run(
        &cli,
        &home,
        ["event", "websocket", "reconnect"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )
    .await;
    assert!(!out.contains("Error"), "reconnect: {out}");
    let moved = wait_session(&relay, Some(&session), types.len()).await;
    assert_ne!(moved, session);
    run(&cli, &home, ws_trigger("channel.follow")).await;
    expect_event(client.event().await.0, "channel.follow");
    assert!(
        client.quiet_for(500).await,
        "nothing duplicated after the handover"
    );
    assert_eq!(
        relay.state.store.count_events().await.unwrap() as usize,
        seen.len()
    );
    std::fs::remove_dir_all(home).ok();
}
