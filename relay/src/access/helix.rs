//! The Helix passthrough's policy: which calls a role may make, and with
//! which Twitch token. Pure functions; the handler is `api::helix`.
//!
//! Why so strict: the passthrough spends the broadcaster's user token, and
//! the application's app token, which (when several channels share one
//! Twitch application) reaches other channels' subscriptions and conduits.
//!
//! - The path is checked segment by segment, *before* any decoding: only
//!   `[A-Za-z0-9_-]` segments are accepted, so `..`, `.`, `%2F`, `%2e%2e`,
//!   `\`, empty segments (`//`) and absolute URLs (`https:`) are 400, and
//!   the upstream URL is built from those segments under the Helix base.
//! - `overlay` tokens never reach the passthrough (the route needs `bot`).
//! - `bot` tokens: the user token, on the [`BOT_CALLS`] allow-list only.
//! - `admin` tokens: the user token on any path; the app token only on
//!   [`APP_CALLS`] (reads of EventSub subscriptions and conduits), chosen
//!   by the path (conduits are app-only at Twitch) or by
//!   `X-TAU-Token-Type: app`. The header alone never grants the app token.

use axum::http::Method;

use super::{needs, Role};
use crate::twitch::helix::TokenKind;

/// Calls a bot token may make (user token): a read-mostly list for chat
/// bots and overlays' helpers. Anything else needs an admin token.
pub const BOT_CALLS: &[(&str, &str)] = &[
    ("GET", "users"),
    ("GET", "channels"),
    ("GET", "channels/followers"),
    ("GET", "streams"),
    ("GET", "chat/chatters"),
    ("GET", "chat/settings"),
    ("GET", "chat/emotes"),
    ("GET", "chat/badges"),
    ("POST", "chat/messages"),
    ("GET", "polls"),
    ("GET", "predictions"),
    ("GET", "subscriptions"),
    ("GET", "bits/leaderboard"),
    ("GET", "clips"),
    ("GET", "games"),
    ("GET", "goals"),
    ("GET", "hypetrain/events"),
    ("GET", "schedule"),
    ("GET", "channel_points/custom_rewards"),
    ("GET", "channel_points/custom_rewards/redemptions"),
];

/// Calls made with the app token (admin only). Reads only: the relay and
/// the operator manage subscriptions and conduits themselves.
pub const APP_CALLS: &[(&str, &str)] = &[
    ("GET", "eventsub/subscriptions"),
    ("GET", "eventsub/conduits"),
    ("GET", "eventsub/conduits/shards"),
];

/// Paths Twitch serves only with an app token.
const APP_ONLY_PATHS: &[&str] = &["eventsub/conduits", "eventsub/conduits/shards"];

/// Methods the passthrough forwards.
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// A call the policy allows.
#[derive(Debug, PartialEq, Eq)]
pub struct HelixCall {
    /// Path segments under the Helix base (each `[A-Za-z0-9_-]+`).
    pub segments: Vec<String>,
    /// The token to send.
    pub token: TokenKind,
}

impl HelixCall {
    /// The path as logged and matched: `segments` joined by `/`.
    pub fn path(&self) -> String {
        self.segments.join("/")
    }
}

/// Why a call is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400: the path or a header is malformed.
    BadRequest(String),
    /// 403: the role may not make this call.
    Forbidden(String),
    /// 405: the method is never forwarded.
    Method(String),
}

/// Splits the raw (still percent-encoded) path after `/api/twitch/helix/`.
pub fn segments(raw: &str) -> Result<Vec<String>, Refusal> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || !parts.iter().all(|s| valid(s)) {
        return Err(Refusal::BadRequest(
            "Helix path segments may hold only letters, digits, _ and - (no empty segment, \
             dot segment, percent-encoding or URL)"
                .into(),
        ));
    }
    Ok(parts.into_iter().map(str::to_string).collect())
}

fn listed(list: &[(&str, &str)], method: &Method, path: &str) -> bool {
    list.iter()
        .any(|(m, p)| *m == method.as_str() && *p == path)
}

fn describe(list: &[(&str, &str)]) -> String {
    let calls: Vec<String> = list.iter().map(|(m, p)| format!("{m} {p}")).collect();
    calls.join(", ")
}

/// Decides whether `role` may send `method` to the raw path, and with
/// which token. `token_type` is the `X-TAU-Token-Type` header, if any.
pub fn plan(
    role: Role,
    method: &Method,
    raw_path: &str,
    token_type: Option<&str>,
) -> Result<HelixCall, Refusal> {
    if !METHODS.contains(method) {
        return Err(Refusal::Method(format!(
            "the Helix passthrough forwards GET, POST, PUT, PATCH and DELETE, not {method}"
        )));
    }
    let segments = segments(raw_path)?;
    let path = segments.join("/");
    let wants_app = match token_type.map(str::trim) {
        None | Some("") | Some("user") => false,
        Some("app") => true,
        Some(other) => {
            return Err(Refusal::BadRequest(format!(
                "X-TAU-Token-Type must be user or app, not {other:?}"
            )))
        }
    };
    if wants_app || APP_ONLY_PATHS.contains(&path.as_str()) {
        if role != Role::Admin {
            return Err(Refusal::Forbidden(needs(Role::Admin, role)));
        }
        if !listed(APP_CALLS, method, &path) {
            return Err(Refusal::Forbidden(format!(
                "the app token is used only for: {}",
                describe(APP_CALLS)
            )));
        }
        return Ok(HelixCall {
            segments,
            token: TokenKind::App,
        });
    }
    let allowed = match role {
        Role::Admin => true,
        Role::Bot => listed(BOT_CALLS, method, &path),
        Role::Overlay => false,
    };
    if !allowed {
        let need = needs(Role::Admin, role);
        return Err(Refusal::Forbidden(match role {
            Role::Bot => format!("{need}; bot tokens may call only: {}", describe(BOT_CALLS)),
            _ => need,
        }));
    }
    Ok(HelixCall {
        segments,
        token: TokenKind::User,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(raw: &str) -> bool {
        matches!(segments(raw), Err(Refusal::BadRequest(_)))
    }

    #[test]
    fn only_plain_segments_pass() {
        assert_eq!(
            segments("channel_points/custom_rewards").unwrap(),
            ["channel_points", "custom_rewards"]
        );
        for raw in [
            "",
            "..",
            ".",
            "users/..",
            "..%2F..%2Fapi",
            "%2e%2e/x",
            "users%2Fx",
            "users%5Cx",
            "users\\x",
            "users//x",
            "/users",
            "users/",
            "https:",
            "http:/evil.example/x",
            "users?x",
            "us ers",
        ] {
            assert!(bad(raw), "{raw:?} must be refused");
        }
    }

    /// Random paths over the characters that matter (dots, slashes,
    /// percent signs, backslashes, colons): whatever is accepted yields a
    /// URL exactly one level of plain segments under the Helix base.
    #[test]
    fn accepted_paths_never_leave_the_helix_base() {
        use rand::{Rng, SeedableRng};
        let base = url::Url::parse("https://api.twitch.tv/helix").unwrap();
        let alphabet: Vec<char> = "./%2eEfF5c\\:ab_-?#@ ".chars().collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let len = rng.gen_range(0..12);
            let raw: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let Ok(parts) = segments(&raw) else {
                continue;
            };
            accepted += 1;
            let url = crate::twitch::helix::helix_url(&base, &parts, None).unwrap();
            assert_eq!(url.host_str(), Some("api.twitch.tv"), "{raw:?}");
            assert_eq!(url.path(), format!("/helix/{raw}"), "{raw:?}");
            assert!(
                parts
                    .iter()
                    .all(|p| p != "." && p != ".." && !p.contains('%')),
                "{raw:?}"
            );
        }
        assert!(accepted > 100, "the generator also makes valid paths");
    }

    #[test]
    fn roles_get_their_calls_and_tokens() {
        let get = Method::GET;
        let user = |role, method: &Method, path| plan(role, method, path, None).map(|c| c.token);
        assert_eq!(user(Role::Bot, &get, "users"), Ok(TokenKind::User));
        assert_eq!(
            user(Role::Bot, &Method::POST, "chat/messages"),
            Ok(TokenKind::User)
        );
        assert!(matches!(
            user(Role::Bot, &Method::DELETE, "users"),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            user(Role::Bot, &get, "eventsub/subscriptions"),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            user(Role::Overlay, &get, "users"),
            Err(Refusal::Forbidden(_))
        ));
        assert_eq!(
            user(Role::Admin, &Method::DELETE, "moderation/bans"),
            Ok(TokenKind::User)
        );
        // Conduits are app-only: admins read them with the app token.
        assert_eq!(
            user(Role::Admin, &get, "eventsub/conduits"),
            Ok(TokenKind::App)
        );
        assert!(matches!(
            user(Role::Admin, &Method::DELETE, "eventsub/conduits"),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            user(Role::Bot, &get, "eventsub/conduits"),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            plan(Role::Admin, &Method::OPTIONS, "users", None),
            Err(Refusal::Method(_))
        ));
    }

    #[test]
    fn the_header_alone_never_grants_the_app_token() {
        let app = |role, method: &Method, path| plan(role, method, path, Some("app"));
        assert!(matches!(
            app(Role::Bot, &Method::GET, "users"),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            app(Role::Bot, &Method::GET, "eventsub/subscriptions"),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            app(Role::Admin, &Method::GET, "users"),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            app(Role::Admin, &Method::POST, "eventsub/subscriptions"),
            Err(Refusal::Forbidden(_))
        ));
        assert_eq!(
            app(Role::Admin, &Method::GET, "eventsub/subscriptions").map(|c| c.token),
            Ok(TokenKind::App)
        );
        assert!(matches!(
            plan(Role::Admin, &Method::GET, "users", Some("root")),
            Err(Refusal::BadRequest(_))
        ));
    }
}
