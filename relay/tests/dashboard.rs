//! The dashboard (the Preact app built into `relay/src/dashboard/dist`):
//! its three assets are served with the strict CSP and their content types;
//! in a real headless Chromium it logs in from a link (taking the token out
//! of the address bar), connects its live socket, shows a stored raid in
//! words in History, and shows the Connect Twitch step when the relay needs
//! authorization. (The full browser suite is `dashboard/e2e`.)
//!
//! The Chromium tests need Debian's `chromium` (`.ci/install-chromium.sh`);
//! skipped with a printed reason without it, failed instead under
//! `TAU_REQUIRE_SERVICES=1`.

mod common;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

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

/// A browser profile (its localStorage keeps the token between pages).
struct Profile(PathBuf);

impl Profile {
    fn new() -> Profile {
        Profile(std::env::temp_dir().join(format!("tau-chromium-{}", uuid::Uuid::new_v4())))
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The DOM after the page's scripts ran (Chromium's virtual time budget).
async fn render(chromium: &Path, profile: &Profile, url: String) -> String {
    let chromium = chromium.to_path_buf();
    let profile = profile.0.clone();
    tokio::task::spawn_blocking(move || {
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
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_assets_are_served_with_the_csp_and_their_types() {
    let relay = TestRelay::start().await;
    let get = |path: &str| relay.http.get(format!("{}{path}", relay.base)).send();
    let page = get("/").await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("style-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline"),
        "no inline script or style: {csp}"
    );
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"src="/app.js""#), "{html}");
    assert!(html.contains(r#"href="/app.css""#), "{html}");
    assert!(!html.contains("<script>"), "no inline script: {html}");
    for (path, kind) in [("/app.js", "text/javascript"), ("/app.css", "text/css")] {
        let asset = get(path).await.unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        assert!(
            asset.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
        assert_eq!(asset.headers()["x-content-type-options"], "nosniff");
        assert!(
            asset.text().await.unwrap().len() > 1000,
            "{path} is the build"
        );
    }
    assert!(
        html.contains(r#"<link rel="icon" href="/favicon.svg" type="image/svg+xml""#),
        "{html}"
    );
    // The icon: the page's link, and the path browsers try on their own
    // (the OAuth outcome pages have no link), the same SVG at both.
    let mut icons = Vec::new();
    for path in ["/favicon.svg", "/favicon.ico"] {
        let icon = get(path).await.unwrap();
        assert_eq!(icon.status(), 200, "{path}");
        assert_eq!(icon.headers()["content-type"], "image/svg+xml", "{path}");
        assert_eq!(icon.headers()["x-content-type-options"], "nosniff");
        let body = icon.text().await.unwrap();
        assert!(
            body.starts_with("<svg") && body.contains("</svg>"),
            "{path}: {body}"
        );
        icons.push(body);
    }
    assert_eq!(icons[0], icons[1], "one icon at both paths");
    assert_eq!(get("/dashboard.js").await.unwrap().status(), 404);
}

#[tokio::test]
async fn a_login_link_goes_live_and_history_shows_a_raid_in_words() {
    let Some(chromium) = chromium() else { return };
    let relay = TestRelay::start().await;
    let raid = r#"{"from_broadcaster_user_id":"7","from_broadcaster_user_login":"raider_x","from_broadcaster_user_name":"Raider_X","to_broadcaster_user_id":"1","to_broadcaster_user_login":"me","to_broadcaster_user_name":"Me","viewers":42}"#;
    assert_eq!(relay.notify("dash-1", "channel.raid", "1", raid).await, 204);
    let profile = Profile::new();

    let live = render(
        &chromium,
        &profile,
        format!("{}/#token={}", relay.base, relay.token),
    )
    .await;
    assert!(
        live.contains(r#"aria-label="Relay connection""#) && live.contains("Relay: connected"),
        "the live socket authenticated: {live}"
    );
    assert!(live.contains(r#"aria-label="Twitch connection""#));
    assert!(live.contains(r#"role="log""#) && live.contains(r#"aria-label="Live events""#));
    assert!(live.contains(">History</a>"), "the nav links History");
    assert!(
        !live.contains(&relay.token),
        "the token is not left in the page or address"
    );

    // The same browser, later: the stored token opens History.
    let history = render(&chromium, &profile, format!("{}/#/history", relay.base)).await;
    assert!(
        history.contains("Raider_X raided with 42 viewers"),
        "history shows the stored raid in words: {history}"
    );
    assert!(history.contains(r#"data-event-type="channel-raid""#));
}

#[tokio::test]
async fn the_setup_page_offers_to_connect_twitch() {
    let Some(chromium) = chromium() else { return };
    let fake = tau_fake_twitch::FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |_| {}).await;
    let profile = Profile::new();
    let live = render(
        &chromium,
        &profile,
        format!("{}/#token={}", relay.base, relay.token),
    )
    .await;
    assert!(
        live.contains("Twitch: not authorized"),
        "the header says why Twitch is red: {live}"
    );
    let setup = render(&chromium, &profile, format!("{}/#/setup", relay.base)).await;
    assert!(
        setup.contains(">Connect Twitch<"),
        "the step is offered: {setup}"
    );
    assert!(setup.contains("Redirect URL registered at Twitch"));
}
