//! Which EventSub subscriptions the relay wants (shared with the operator:
//! [`tau_eventsub::subscriptions`], re-exported), and creating them for one
//! EventSub WebSocket session with the broadcaster's user token.
//!
//! WebSocket subscriptions belong to a session: every new session (not a
//! reconnect hand-over) needs them created again, inside Twitch's
//! keepalive window, so they are created concurrently.

use std::time::Duration;

use futures_util::StreamExt;

pub use tau_eventsub::subscriptions::*;

use super::{helix::TokenKind, SubscriptionStatus, TwitchError};
use crate::app::AppState;

/// Twitch allows 300 enabled subscriptions per connection.
const MAX_SUBSCRIPTIONS: usize = 300;
/// Subscription requests in flight at once (well inside the rate limit).
const CONCURRENT: usize = 8;

/// Creates every wanted subscription for `session_id` and shows the result
/// on the status board.
pub async fn subscribe_session(
    app: &AppState,
    session_id: &str,
    keepalive: Duration,
) -> Result<(), TwitchError> {
    let twitch = &app.twitch;
    let token = twitch
        .tokens
        .user_info()
        .await
        .ok_or(TwitchError::AuthorizationNeeded)?;
    let user_id = token.user_id.clone().unwrap_or_default();
    let broadcaster_id = broadcaster_id(app, &user_id).await?;
    let ids = Ids {
        broadcaster_id,
        user_id,
        client_id: app.twitch.credentials.client_id().unwrap_or_default(),
    };
    let types = twitch.event_types.current().await;
    let (mut wanted, skipped) = desired(&types, &ids);
    app.streamers.add_wanted(&mut wanted).await?;
    if wanted.len() > MAX_SUBSCRIPTIONS {
        tracing::warn!(
            wanted = wanted.len(),
            "more than 300 subscriptions wanted; Twitch allows 300 per connection"
        );
        wanted.truncate(MAX_SUBSCRIPTIONS);
    }
    let transport = serde_json::json!({"method": "websocket", "session_id": session_id});
    let results: Vec<SubscriptionStatus> = futures_util::stream::iter(wanted)
        .map(|want| {
            let body = want.request(transport.clone());
            async move {
                let created = twitch
                    .helix
                    .create_subscription(&body, TokenKind::User)
                    .await;
                let (id, status) = match created {
                    Ok(Some(created)) => (
                        created["id"].as_str().unwrap_or_default().into(),
                        created["status"].as_str().unwrap_or("enabled").into(),
                    ),
                    Ok(None) => (String::new(), "already_exists".into()),
                    Err(err) => {
                        tracing::warn!(kind = %want.kind, error = %err, "subscription not created");
                        (String::new(), format!("failed: {err}"))
                    }
                };
                SubscriptionStatus {
                    id,
                    kind: want.kind.clone(),
                    version: want.version.clone(),
                    condition: want.condition.clone(),
                    status,
                }
            }
        })
        .buffer_unordered(CONCURRENT)
        .collect()
        .await;
    let enabled = results.iter().filter(|s| s.status == "enabled").count();
    tracing::info!(
        enabled,
        total = results.len(),
        "EventSub subscriptions created"
    );
    twitch.update(|s| {
        s.state = "connected".into();
        s.session_id = Some(session_id.to_string());
        s.keepalive_seconds = Some(keepalive.as_secs());
        s.connected_at = Some(crate::event::format_created(chrono::Utc::now()));
        s.subscriptions = results;
        s.skipped = skipped
            .iter()
            .map(|(k, why)| format!("{k}: {why}"))
            .collect();
        s.last_error = None;
    });
    Ok(())
}

/// The scopes of `needed` that `granted` lacks, in `needed`'s order.
pub fn missing_scopes(needed: &[String], granted: &[String]) -> Vec<String> {
    needed
        .iter()
        .filter(|s| !granted.contains(s))
        .cloned()
        .collect()
}

/// The channel's user id: `TWITCH_BROADCASTER` looked up once (then kept),
/// else the authorizing user.
pub async fn broadcaster_id(app: &AppState, user_id: &str) -> Result<String, TwitchError> {
    let Some(login) = &app.config.twitch.broadcaster else {
        return Ok(user_id.to_string());
    };
    let key = format!("broadcaster_id:{login}");
    if let Some(id) = app.store.setting(&key).await? {
        return Ok(id);
    }
    let id = app
        .twitch
        .helix
        .user_by_login(login, TokenKind::User)
        .await?
        .ok_or_else(|| {
            TwitchError::Socket(format!("Twitch has no user {login:?} (TWITCH_BROADCASTER)"))
        })?
        .id;
    app.store.set_setting(&key, &id).await?;
    app.store.set_setting("broadcaster_id", &id).await?;
    Ok(id)
}
