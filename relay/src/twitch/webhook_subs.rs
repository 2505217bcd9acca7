//! Webhook transport: keep Twitch's subscriptions equal to the wanted set.
//!
//! With the app token: list what exists, keep what matches (right type,
//! version, condition, our callback, and a live status), delete what is
//! stale (our callback but unwanted, or wanted but failed / pointing at an
//! old callback), create what is missing (409 = already there). Twitch then
//! sends each new subscription a verification challenge, which the webhook
//! route answers; a second listing shows them move from
//! `webhook_callback_verification_pending` to `enabled`. Runs at start and
//! every [`RECHECK`] (revocations and failures get repaired).

use std::{sync::Arc, time::Duration};

use serde_json::Value;

use super::{
    helix::TokenKind,
    subscriptions::{desired, Desired, Ids},
    SubscriptionStatus, Twitch, TwitchError,
};
use crate::app::AppState;

/// How often the reconciler runs again.
const RECHECK: Duration = Duration::from_secs(600);
/// How long to wait for pending verifications after creating.
const VERIFY_WAIT: Duration = Duration::from_secs(10);
/// Statuses that will never deliver again: recreate.
const DEAD: [&str; 6] = [
    "webhook_callback_verification_failed",
    "notification_failures_exceeded",
    "authorization_revoked",
    "moderator_removed",
    "user_removed",
    "version_removed",
];

/// What one reconcile pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Subscriptions created.
    pub created: usize,
    /// Subscriptions deleted.
    pub deleted: usize,
    /// Subscriptions already right.
    pub kept: usize,
    /// Creations that failed (with Twitch's reason in the status).
    pub failed: usize,
}

/// Starts the reconciler loop.
pub fn spawn(app: AppState) {
    tokio::spawn(async move {
        loop {
            match reconcile(&app).await {
                Ok(report) => tracing::info!(?report, "webhook subscriptions reconciled"),
                Err(err) => {
                    tracing::warn!(error = %err, "webhook subscription reconcile failed");
                    app.twitch.update(|s| {
                        s.state = "error".into();
                        s.last_error = Some(err.to_string());
                    });
                }
            }
            tokio::select! {
                _ = app.shutdown.cancelled() => return,
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    });
}

fn callback_of(existing: &Value) -> &str {
    existing["transport"]["callback"]
        .as_str()
        .unwrap_or_default()
}

/// One pass: converge Twitch's webhook subscriptions on the wanted set.
pub async fn reconcile(app: &AppState) -> Result<Report, TwitchError> {
    let twitch = &app.twitch;
    let secret = app.config.twitch.webhook_secret.clone().ok_or_else(|| {
        TwitchError::Socket("webhook transport needs TWITCH_WEBHOOK_SECRET".into())
    })?;
    let login =
        app.config.twitch.broadcaster.clone().ok_or_else(|| {
            TwitchError::Socket("webhook transport needs TWITCH_BROADCASTER".into())
        })?;
    let (broadcaster_id, _, _) = twitch
        .helix
        .user_by_login(&login, TokenKind::App)
        .await?
        .ok_or_else(|| {
            TwitchError::Socket(format!("Twitch has no user {login:?} (TWITCH_BROADCASTER)"))
        })?;
    app.store
        .set_setting("broadcaster_id", &broadcaster_id)
        .await?;
    let callback = app
        .config
        .public_url
        .join("/twitch/eventsub")
        .expect("valid path")
        .to_string();
    let ids = Ids {
        broadcaster_id: broadcaster_id.clone(),
        user_id: broadcaster_id,
        client_id: app.config.twitch.client_id.clone().unwrap_or_default(),
    };
    let (wanted, skipped) = desired(&app.config.eventsub_types, &ids);
    let existing: Vec<Value> = twitch
        .helix
        .list_subscriptions(TokenKind::App)
        .await?
        .into_iter()
        .filter(|s| s["transport"]["method"] == "webhook")
        .collect();

    let mut report = Report::default();
    let mut satisfied = vec![false; wanted.len()];
    for sub in &existing {
        let ours = callback_of(sub) == callback;
        let live = !DEAD.contains(&sub["status"].as_str().unwrap_or_default());
        let wanted_index = wanted.iter().position(|w| w.matches(sub));
        let keep = match wanted_index {
            Some(i) if ours && live && !satisfied[i] => {
                satisfied[i] = true;
                true
            }
            // Wanted but dead or at an old callback: replace it.
            Some(_) => false,
            // Unwanted: ours to delete only if it points at us.
            None => !ours,
        };
        if keep {
            report.kept += usize::from(wanted_index.is_some());
            continue;
        }
        let id = sub["id"].as_str().unwrap_or_default();
        tracing::info!(id, kind = %sub["type"], status = %sub["status"], "deleting stale webhook subscription");
        twitch.helix.delete_subscription(id, TokenKind::App).await?;
        report.deleted += 1;
    }
    let transport =
        serde_json::json!({"method": "webhook", "callback": callback, "secret": secret});
    let mut failures: Vec<Option<String>> = vec![None; wanted.len()];
    for (i, want) in wanted.iter().enumerate().filter(|(i, _)| !satisfied[*i]) {
        match twitch
            .helix
            .create_subscription(&want.request(transport.clone()), TokenKind::App)
            .await
        {
            Ok(_) => report.created += 1,
            Err(err) => {
                report.failed += 1;
                tracing::warn!(kind = %want.kind, error = %err, "webhook subscription not created");
                let hint = match &err {
                    TwitchError::Status { status: 403, .. } => {
                        " (the broadcaster has not authorized these scopes: open /twitch/authorize from the dashboard)"
                    }
                    _ => "",
                };
                failures[i] = Some(format!("failed: {err}{hint}"));
            }
        }
    }
    if report.created > 0 {
        wait_for_verification(twitch, &callback).await;
    }
    publish_status(twitch, &wanted, &failures, &callback, skipped).await?;
    Ok(report)
}

/// Waits (briefly) until no subscription of ours is pending verification.
async fn wait_for_verification(twitch: &Arc<Twitch>, callback: &str) {
    let deadline = tokio::time::Instant::now() + VERIFY_WAIT;
    while tokio::time::Instant::now() < deadline {
        let Ok(all) = twitch.helix.list_subscriptions(TokenKind::App).await else {
            return;
        };
        let pending = all
            .iter()
            .filter(|s| callback_of(s) == callback)
            .any(|s| s["status"] == "webhook_callback_verification_pending");
        if !pending {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Shows every wanted subscription with Twitch's status for it (or why it is missing).
async fn publish_status(
    twitch: &Arc<Twitch>,
    wanted: &[Desired],
    failures: &[Option<String>],
    callback: &str,
    skipped: Vec<(String, String)>,
) -> Result<(), TwitchError> {
    let existing = twitch.helix.list_subscriptions(TokenKind::App).await?;
    let statuses: Vec<SubscriptionStatus> = wanted
        .iter()
        .zip(failures)
        .map(|(want, failure)| {
            let found = existing
                .iter()
                .find(|s| want.matches(s) && callback_of(s) == callback);
            let status = match (found.and_then(|s| s["status"].as_str()), failure) {
                (Some(status), _) => status.to_string(),
                (None, Some(failure)) => failure.clone(),
                (None, None) => "missing".to_string(),
            };
            SubscriptionStatus {
                id: found
                    .and_then(|s| s["id"].as_str())
                    .unwrap_or_default()
                    .into(),
                kind: want.kind.clone(),
                version: want.version.clone(),
                status,
            }
        })
        .collect();
    let all_enabled = statuses.iter().all(|s| s.status == "enabled");
    twitch.update(|s| {
        s.state = if all_enabled {
            "subscribed".into()
        } else {
            "partially_subscribed".into()
        };
        s.subscriptions = statuses;
        s.skipped = skipped
            .iter()
            .map(|(k, why)| format!("{k}: {why}"))
            .collect();
        s.last_error = None;
    });
    Ok(())
}
