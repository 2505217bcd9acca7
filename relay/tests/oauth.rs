//! The OAuth callback: only the configured broadcaster's account is kept,
//! a `state` is good for exactly one callback, and the state cookie is
//! built and parsed as a cookie (attributes, several cookies in a header).

mod common;

use common::{oauth::no_redirects, TestRelay};
use tau_fake_twitch::FakeTwitch;

/// Starts the flow with the relay's admin token: `(cookie, callback URL)`.
async fn start_flow(relay: &TestRelay) -> (String, String) {
    let http = no_redirects();
    let start = http
        .get(format!("{}/twitch/authorize", relay.base))
        .header("Authorization", format!("Token {}", relay.token))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 303);
    let set_cookie = start.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/twitch-callback/",
        "Max-Age=600",
    ] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let to_twitch = start.headers()["location"].to_str().unwrap().to_string();
    let consent = http.get(&to_twitch).send().await.unwrap();
    let back = consent.headers()["location"].to_str().unwrap().to_string();
    (cookie, back)
}

/// The body of an OAuth outcome page, after checking what every one has:
/// HTML under a policy that allows its inline style and nothing else, light
/// and dark, and the way back to the dashboard's setup view.
async fn outcome_page(response: reqwest::Response) -> String {
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{headers:?}"
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'") && csp.contains("style-src 'sha256-"),
        "{csp}"
    );
    let page = response.text().await.unwrap();
    assert!(
        page.contains("<style>") && page.contains("prefers-color-scheme"),
        "{page}"
    );
    assert!(
        page.contains("href=\"/#/setup\">Back to the dashboard</a>"),
        "{page}"
    );
    assert!(!page.contains("<script"), "{page}");
    page
}

async fn callback(url: &str, cookie: &str) -> reqwest::Response {
    no_redirects()
        .get(url)
        // Other cookies around ours, as a browser sends them.
        .header("Cookie", format!("theme=dark; {cookie}; lang=en"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn another_account_is_refused_with_a_page_that_says_how_to_retry() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |c| {
        c.twitch.broadcaster = Some(FakeTwitch::BROADCASTER_LOGIN.into())
    })
    .await;
    fake.set_authorize_as(Some(("4242", "someone_else")));
    let (cookie, back) = start_flow(&relay).await;
    let response = callback(&back, &cookie).await;
    assert_eq!(response.status(), 403);
    let page = outcome_page(response).await;
    assert!(page.contains("Wrong Twitch account"), "{page}");
    assert!(page.contains("<b>someone_else</b>"), "{page}");
    assert!(page.contains(FakeTwitch::BROADCASTER_LOGIN), "{page}");
    assert!(page.contains("retry"), "{page}");
    assert_eq!(
        relay
            .state
            .store
            .setting("twitch_user_token")
            .await
            .unwrap(),
        None,
        "nothing stored"
    );
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.method == "POST" && r.path == "/oauth2/revoke"),
        "the other account's token is revoked at Twitch"
    );
    // The right account then connects.
    fake.set_authorize_as(None);
    let (cookie, back) = start_flow(&relay).await;
    let response = callback(&back, &cookie).await;
    assert_eq!(response.status(), 200);
    let page = outcome_page(response).await;
    assert!(page.contains("Connected to Twitch"), "{page}");
    assert!(page.contains(FakeTwitch::BROADCASTER_LOGIN), "{page}");
    assert!(!page.contains("Missing:"), "every scope granted: {page}");
    assert!(relay
        .state
        .store
        .setting("twitch_user_token")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_state_is_good_for_one_callback_only() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |_| {}).await;
    let (cookie, back) = start_flow(&relay).await;
    assert_eq!(callback(&back, &cookie).await.status(), 200);
    assert_eq!(
        callback(&back, &cookie).await.status(),
        403,
        "a replayed callback is refused"
    );
    // Two callbacks racing with one state: one wins.
    let (cookie, back) = start_flow(&relay).await;
    let (a, b) = tokio::join!(callback(&back, &cookie), callback(&back, &cookie));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses[1], 403, "{statuses:?}");
    assert!(statuses[0] == 200 || statuses[0] == 400, "{statuses:?}");
    // A cookie that does not match the state is refused too.
    let (_, back) = start_flow(&relay).await;
    assert_eq!(
        callback(&back, "tau_oauth_state=somethingelse")
            .await
            .status(),
        403
    );
}

/// Declining on Twitch's page, and a link without state, code or cookie,
/// lead to pages that say so (4xx kept), not JSON.
#[tokio::test]
async fn declined_and_broken_callbacks_are_pages() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |_| {}).await;
    fake.set_deny_authorization(true);
    let (cookie, back) = start_flow(&relay).await;
    assert!(back.contains("error=access_denied"), "{back}");
    let response = callback(&back, &cookie).await;
    assert_eq!(response.status(), 400);
    let page = outcome_page(response).await;
    assert!(
        page.contains("Twitch authorization was not granted"),
        "{page}"
    );
    assert!(page.contains("declined"), "{page}");

    let base = format!("{}/twitch-callback/", relay.base);
    for (query, cookie, status, heading) in [
        (
            "?code=x",
            "tau_oauth_state=abc",
            400,
            "This link is incomplete",
        ),
        ("?code=x&state=abc", "lang=en", 403, "This link has expired"),
        (
            "?code=x&state=abc",
            "tau_oauth_state=abc",
            403,
            "This link has expired",
        ),
        (
            "?state=a&state=b",
            "tau_oauth_state=a",
            400,
            "This link is incomplete",
        ),
    ] {
        let response = callback(&format!("{base}{query}"), cookie).await;
        assert_eq!(response.status(), status, "{query}");
        let page = outcome_page(response).await;
        assert!(page.contains(heading), "{query}: {page}");
    }
    // Twitch's words are escaped.
    let hostile = format!("{base}?error=%3Cscript%3Ex&error_description=%3Cimg%20src%3Dx%3E");
    let page = outcome_page(callback(&hostile, "").await).await;
    assert!(
        page.contains("&lt;script&gt;x") && page.contains("&lt;img src=x&gt;"),
        "{page}"
    );
}

/// The broadcaster unticked a permission: connected, and the page says
/// which scopes are missing and which event types will not arrive.
#[tokio::test]
async fn fewer_scopes_than_asked_are_flagged() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |c| {
        c.eventsub_types = vec![
            ("channel.follow".into(), "2".into()),
            ("channel.cheer".into(), "1".into()),
        ]
    })
    .await;
    let http = no_redirects();
    let start = http
        .get(format!("{}/twitch/authorize", relay.base))
        .header("Authorization", format!("Token {}", relay.token))
        .send()
        .await
        .unwrap();
    let cookie = start.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let mut to_twitch = url::Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    let asked: Vec<(String, String)> = to_twitch.query_pairs().into_owned().collect();
    let scope = &asked.iter().find(|(k, _)| k == "scope").unwrap().1;
    assert!(
        scope.contains("bits:read") && scope.contains("moderator:read:followers"),
        "{scope}"
    );
    // Twitch grants only the bits scope.
    to_twitch
        .query_pairs_mut()
        .clear()
        .extend_pairs(asked.iter().map(|(k, v)| {
            (
                k.as_str(),
                if k == "scope" {
                    "bits:read"
                } else {
                    v.as_str()
                },
            )
        }));
    let consent = http.get(to_twitch.as_str()).send().await.unwrap();
    let back = consent.headers()["location"].to_str().unwrap().to_string();
    let response = callback(&back, &cookie).await;
    assert_eq!(response.status(), 200);
    let page = outcome_page(response).await;
    assert!(page.contains("Connected to Twitch"), "{page}");
    assert!(
        page.contains("Missing: <code>moderator:read:followers</code>"),
        "{page}"
    );
    assert!(page.contains("<code>channel-follow</code>"), "{page}");
    assert!(!page.contains("<code>channel-cheer</code>"), "{page}");
    // The status document says the same.
    let status: serde_json::Value = relay.get("/api/v1/status").await.json().await.unwrap();
    let user = &status["twitch"]["user_token"];
    assert_eq!(
        user["scopes_needed"],
        serde_json::json!(["bits:read", "moderator:read:followers"])
    );
    assert_eq!(
        user["scopes_missing"],
        serde_json::json!(["moderator:read:followers"])
    );
    assert_eq!(
        status["twitch"]["event_types"],
        serde_json::json!(["channel-follow", "channel-cheer"])
    );
    assert_eq!(
        status["twitch"]["redirect_uri"],
        format!("{}/twitch-callback/", relay.base)
    );
}
