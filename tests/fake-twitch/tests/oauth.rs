//! OAuth: authorization code flow, refresh rotation, revoked refresh tokens,
//! validate, client credentials, expiry.

mod common;

use reqwest::header::LOCATION;
use reqwest::Method;
use serde_json::{json, Value};
use tau_fake_twitch::{AuthKind, FakeTwitch};

const REDIRECT: &str = "http://localhost:17563/callback";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn token_call(fake: &FakeTwitch, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/token", fake.auth_url()))
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn refresh(fake: &FakeTwitch, refresh_token: &str) -> (u16, Value) {
    token_call(
        fake,
        &[
            ("client_id", FakeTwitch::CLIENT_ID),
            ("client_secret", FakeTwitch::CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn validate(fake: &FakeTwitch, token: &str) -> (u16, Value) {
    let resp = client()
        .get(format!("{}/validate", fake.auth_url()))
        .header("Authorization", format!("OAuth {token}"))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn code_flow_then_refresh_rotation_then_revoked_refresh() {
    let fake = FakeTwitch::start().await;
    let resp = client()
        .get(format!("{}/authorize", fake.auth_url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", FakeTwitch::CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("scope", "bits:read channel:read:subscriptions"),
            ("state", "xyz"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = url::Url::parse(resp.headers()[LOCATION].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT));
    let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["scope"], "bits:read channel:read:subscriptions");

    let (status, tokens) = token_call(
        &fake,
        &[
            ("client_id", FakeTwitch::CLIENT_ID),
            ("client_secret", FakeTwitch::CLIENT_SECRET),
            ("code", &q["code"]),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(
        tokens["scope"],
        json!(["bits:read", "channel:read:subscriptions"])
    );
    assert!(tokens["expires_in"].as_u64().unwrap() > 0);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh1 = tokens["refresh_token"].as_str().unwrap();

    // The code is single use.
    let (status, _) = token_call(
        &fake,
        &[
            ("client_id", FakeTwitch::CLIENT_ID),
            ("client_secret", FakeTwitch::CLIENT_SECRET),
            ("code", &q["code"]),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, 400);

    let (status, v) = validate(&fake, access).await;
    assert_eq!(status, 200);
    assert_eq!(v["user_id"], FakeTwitch::BROADCASTER_ID);
    assert_eq!(v["login"], FakeTwitch::BROADCASTER_LOGIN);
    assert_eq!(v["client_id"], FakeTwitch::CLIENT_ID);
    assert_eq!(
        v["scopes"],
        json!(["bits:read", "channel:read:subscriptions"])
    );

    // Refresh rotates both tokens; the old refresh token is dead.
    let (status, rotated) = refresh(&fake, refresh1).await;
    assert_eq!(status, 200);
    let refresh2 = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(refresh2, refresh1);
    assert_ne!(rotated["access_token"].as_str().unwrap(), access);
    assert_eq!(rotated["scope"], tokens["scope"]);
    let (status, err) = refresh(&fake, refresh1).await;
    assert_eq!(
        (status, err),
        (
            400,
            json!({"status": 400, "message": "Invalid refresh token"})
        )
    );

    // Revoking every refresh token kills the newest one too.
    fake.revoke_refresh_tokens();
    let (status, err) = refresh(&fake, refresh2).await;
    assert_eq!(
        (status, err["message"].as_str()),
        (400, Some("Invalid refresh token"))
    );
}

#[tokio::test]
async fn denied_authorization_redirects_with_error() {
    let fake = FakeTwitch::start().await;
    fake.set_deny_authorization(true);
    let resp = client()
        .get(format!("{}/authorize", fake.auth_url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", FakeTwitch::CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    let location = resp.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(
        location.contains("error=access_denied") && location.contains("state=s"),
        "{location}"
    );
}

#[tokio::test]
async fn client_credentials_validate_and_expiry() {
    let fake = FakeTwitch::start().await;
    let (status, _) = token_call(
        &fake,
        &[
            ("client_id", FakeTwitch::CLIENT_ID),
            ("client_secret", "wrong"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    let (status, app) = token_call(
        &fake,
        &[
            ("client_id", FakeTwitch::CLIENT_ID),
            ("client_secret", FakeTwitch::CLIENT_SECRET),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(app.get("refresh_token").is_none());
    let app_token = app["access_token"].as_str().unwrap();
    let (status, v) = validate(&fake, app_token).await;
    assert_eq!(status, 200);
    assert_eq!(v["scopes"], json!([]));
    assert!(v.get("user_id").is_none());

    let users = common::helix(&fake, Method::GET, "/users?login=cooler_user", app_token)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
    assert_eq!(
        users.json::<Value>().await.unwrap()["data"][0]["id"],
        "1337"
    );

    fake.expire_access_token(app_token);
    let (status, v) = validate(&fake, app_token).await;
    assert_eq!(
        (status, v["message"].as_str()),
        (401, Some("invalid access token"))
    );
    let resp = common::helix(&fake, Method::GET, "/users?id=1337", app_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"})
    );

    let kinds: Vec<AuthKind> = fake
        .requests()
        .iter()
        .filter(|r| r.path == "/helix/users")
        .map(|r| r.auth)
        .collect();
    assert_eq!(kinds, [AuthKind::App, AuthKind::Invalid]);
}

#[tokio::test]
async fn a_rotated_client_secret_replaces_the_old_one() {
    let fake = FakeTwitch::start().await;
    let (_, refresh_token) = fake.issue_user_token(&["bits:read"], 3600);
    let (user, _) = fake.issue_user_token(&["bits:read"], 3600);
    fake.rotate_client_secret("a-new-secret-from-the-console");
    let grant = |secret: &'static str| {
        [
            ("client_id", FakeTwitch::CLIENT_ID),
            ("client_secret", secret),
            ("grant_type", "client_credentials"),
        ]
    };
    let (status, _) = token_call(&fake, &grant(FakeTwitch::CLIENT_SECRET)).await;
    assert_eq!(status, 403, "the old secret is refused");
    let (status, _) = token_call(&fake, &grant("a-new-secret-from-the-console")).await;
    assert_eq!(status, 200);

    fake.expire_user_tokens();
    assert_eq!(validate(&fake, &user).await.0, 401, "user tokens expired");
    let form = [
        ("client_id", FakeTwitch::CLIENT_ID),
        ("client_secret", "a-new-secret-from-the-console"),
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
    ];
    let (status, fresh) = token_call(&fake, &form).await;
    assert_eq!(status, 200, "{fresh}");
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(
        validate(&fake, fresh).await.0,
        200,
        "a refreshed token works"
    );
}
