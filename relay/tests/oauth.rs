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
    let page = response.text().await.unwrap();
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
    assert!(response
        .text()
        .await
        .unwrap()
        .contains(FakeTwitch::BROADCASTER_LOGIN));
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
