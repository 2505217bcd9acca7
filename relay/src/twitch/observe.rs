//! Webhook relays whose subscriptions someone else makes
//! (`TAU_MANAGE_SUBSCRIPTIONS=false`: the operator, for a `TwitchChannel`
//! with the webhook transport).
//!
//! Such a relay only receives, so without this its status and dashboard
//! would show no subscriptions and its default event types. Instead it
//! lists, with the app token, the subscriptions that deliver to its own
//! callback — what the operator made — and shows them with Twitch's status
//! for each, and their types as the relay's event types. It never creates
//! or deletes one: that stays the operator's job (the Deployment is not
//! touched when `spec.events` changes, so this is how the relay learns the
//! list).

use std::time::Duration;

use serde_json::Value;
use tau_twitch::plan::Destination;

use super::{helix::TokenKind, SubscriptionStatus, TwitchError};
use crate::app::AppState;

/// How often Twitch's list is read again (a resubscribe request, e.g.
/// from the dashboard, reads it at once).
const EVERY: Duration = Duration::from_secs(60);

/// Follows the subscriptions made for this relay until shutdown.
pub fn spawn(app: AppState) {
    tokio::spawn(async move {
        let mut again = app.twitch.resubscribe_requests();
        loop {
            if let Err(err) = observe_once(&app).await {
                tracing::warn!(error = %err, "listing this relay's webhook subscriptions failed");
                app.twitch.update(|s| {
                    s.state = "error".into();
                    s.last_error = Some(err.to_string());
                });
            }
            tokio::select! {
                _ = app.shutdown.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
                Ok(()) = again.changed() => {}
            }
        }
    });
}

/// One look: Twitch's subscriptions delivering to this relay, into the
/// status and the event types.
pub async fn observe_once(app: &AppState) -> Result<(), TwitchError> {
    let ours = Destination::Webhook {
        callback: super::app_subs::webhook_callback(app),
    };
    let listed = app.twitch.helix.list_subscriptions(TokenKind::App).await?;
    let subscriptions: Vec<SubscriptionStatus> = listed
        .iter()
        .filter(|s| ours.delivers(s))
        .map(status_of)
        .collect();
    let types = subscriptions
        .iter()
        .map(|s| (s.kind.clone(), s.version.clone()))
        .collect();
    if app.twitch.event_types.observed(types) {
        tracing::info!(
            subscriptions = subscriptions.len(),
            "the subscriptions made for this relay changed"
        );
    }
    let enabled = subscriptions.iter().all(|s| s.status == "enabled");
    app.twitch.update(|s| {
        s.state = match (subscriptions.is_empty(), enabled) {
            (true, _) => "waiting_for_subscriptions",
            (false, true) => "subscribed",
            (false, false) => "partially_subscribed",
        }
        .into();
        s.subscriptions = subscriptions;
        s.last_error = None;
    });
    Ok(())
}

fn status_of(listed: &Value) -> SubscriptionStatus {
    let text = |key: &str| listed[key].as_str().unwrap_or_default().to_string();
    SubscriptionStatus {
        id: text("id"),
        kind: text("type"),
        version: text("version"),
        condition: listed["condition"].as_object().cloned().unwrap_or_default(),
        status: text("status"),
    }
}
