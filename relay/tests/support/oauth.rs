//! Walks Twitch's authorization-code flow as a browser would: start at the
//! relay (with a TAU token), follow Twitch's consent redirect, return to the
//! callback with the state cookie. Shared by the test harnesses.

/// A client that shows redirects instead of following them.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Starts at `start_base` with `token`; `route_callback` maps the callback
/// URL Twitch redirects to (built from the relay's public URL) onto the
/// relay that should receive it. Returns the callback's response.
pub async fn walk(
    start_base: &str,
    token: &str,
    route_callback: impl Fn(&str) -> String,
) -> reqwest::Response {
    let http = no_redirects();
    let start = http
        .get(format!("{start_base}/twitch/authorize"))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 303, "authorize redirects to Twitch");
    let cookie = start.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let to_twitch = start.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to_twitch.contains("scope=") && to_twitch.contains("state="),
        "{to_twitch}"
    );
    let consent = http.get(&to_twitch).send().await.unwrap();
    let back = consent.headers()["location"].to_str().unwrap().to_string();
    http.get(route_callback(&back))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
}
