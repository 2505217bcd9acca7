//! The dashboard in a real headless Chromium: it logs in from a link, shows
//! history, the catalog and the status, connects its live socket, and
//! prompts for Twitch authorization when the relay needs it.
//!
//! Needs Debian's `chromium` (`.ci/install-chromium.sh`); skipped with a
//! printed reason without it, failed instead under `TAU_REQUIRE_SERVICES=1`.

mod common;

use std::{io::Write, path::PathBuf, process::Command};

use common::TestRelay;

fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("CHROMIUM").map(PathBuf::from).or_else(|| {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    });
    if found.is_none() {
        let reason = "chromium not found (install with .ci/install-chromium.sh or set CHROMIUM)";
        assert!(
            std::env::var("TAU_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "{reason}"
        );
        let _ = writeln!(std::io::stderr(), "SKIPPED dashboard: {reason}");
    }
    found
}

/// The DOM after the page's scripts ran (Chromium's virtual time budget).
async fn render(chromium: PathBuf, url: String) -> String {
    tokio::task::spawn_blocking(move || {
        let profile = std::env::temp_dir().join(format!("tau-chromium-{}", uuid::Uuid::new_v4()));
        let out = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=5000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .output()
            .expect("chromium runs");
        let _ = std::fs::remove_dir_all(profile);
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_dashboard_shows_history_catalog_status_and_goes_live() {
    let Some(chromium) = chromium() else { return };
    let relay = TestRelay::start().await;
    let raid = r#"{"from_broadcaster_user_id":"7","from_broadcaster_user_login":"raider_x","to_broadcaster_user_id":"1","to_broadcaster_user_login":"me","viewers":42}"#;
    assert_eq!(relay.notify("dash-1", "channel.raid", "1", raid).await, 204);
    let dom = render(chromium, format!("{}/#token={}", relay.base, relay.token)).await;
    assert!(
        dom.contains("raider_x"),
        "history shows the stored raid: {dom}"
    );
    assert!(dom.contains(">channel-raid<"), "history shows its type");
    assert!(
        dom.contains("channel-follow ★"),
        "catalog lists the default set first"
    );
    assert!(
        dom.contains("&quot;events_stored&quot;: 1") || dom.contains("\"events_stored\": 1"),
        "status is shown"
    );
    assert!(
        dom.contains(r#"id="state" class="ok">connected<"#),
        "the live socket authenticated"
    );
    assert!(
        !dom.contains(&relay.token),
        "the token is not left in the page"
    );
}

#[tokio::test]
async fn the_dashboard_prompts_for_twitch_authorization() {
    let Some(chromium) = chromium() else { return };
    let fake = tau_fake_twitch::FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |_| {}).await;
    let dom = render(chromium, format!("{}/#token={}", relay.base, relay.token)).await;
    assert!(
        dom.contains(r#"<div id="authorize">"#),
        "the prompt is visible: {dom}"
    );
    assert!(dom.contains("Connect your Twitch account"));
}
