//! Twitch's own CLI as the webhook peer: every type it generates, a wrong
//! secret, duplicate resends, revocation, and its verification checks.
//!
//! Runs when `TWITCH_CLI` names the binary (`.ci/install-twitch-cli.sh`
//! installs it when the Go module proxy serves it); otherwise prints why it
//! was skipped. The CLI exits 0 even on failures, so assertions read its
//! output and what the relay's clients saw.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use common::{assert_tau_frame, TestRelay, SECRET};
use serde_json::{json, Value};

fn cli() -> Option<PathBuf> {
    match std::env::var_os("TWITCH_CLI") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            eprintln!("SKIPPED twitch_cli: TWITCH_CLI is not set (see .ci/install-twitch-cli.sh)");
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
    std::fs::remove_dir_all(home).ok();
}
