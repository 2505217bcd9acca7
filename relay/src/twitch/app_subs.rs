//! Subscriptions made with the app token, for the webhook and conduit
//! transports: keep Twitch's set equal to the wanted set.
//!
//! List what exists and follow the shared plan ([`tau_twitch::plan`], the
//! same rules as the operator's webhook sync): keep what matches (type,
//! version, condition, our [`Target`], a healthy status), delete what is
//! stale (ours but unwanted, or wanted but failed / aimed at an old
//! target: this relay owns its application's subscriptions of its
//! transport), create what is missing (409 = already there). Webhook subscriptions then get Twitch's
//! verification challenge, answered by the webhook route; a second listing
//! shows `webhook_callback_verification_pending` become `enabled`.

use std::{collections::HashSet, sync::Arc, time::Duration};

use serde_json::Value;
use tau_twitch::plan::{self, Destination, Ours};

use super::{
    helix::TokenKind,
    subscriptions::{desired, Desired, Ids},
    SubscriptionStatus, Twitch, TwitchError,
};
use crate::app::AppState;

/// How often the webhook reconciler runs again (repairs revocations).
const RECHECK: Duration = Duration::from_secs(600);
/// How long to wait for pending verifications after creating.
const VERIFY_WAIT: Duration = Duration::from_secs(10);
/// Where app-token subscriptions deliver.
#[derive(Clone)]
pub enum Target {
    /// Signed POSTs to this relay's webhook route.
    Webhook {
        /// `TAU_PUBLIC_URL/twitch/eventsub`.
        callback: String,
        /// `TWITCH_WEBHOOK_SECRET`.
        secret: String,
    },
    /// A conduit whose shards are the replicas' WebSocket sessions.
    Conduit {
        /// The conduit's id.
        conduit_id: String,
    },
}

impl std::fmt::Debug for Target {
    // Hand-written so the webhook secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.destination().fmt(f)
    }
}

impl Target {
    /// Where this target's subscriptions deliver, for the shared plan.
    fn destination(&self) -> Destination {
        match self {
            Target::Webhook { callback, .. } => Destination::Webhook {
                callback: callback.clone(),
            },
            Target::Conduit { conduit_id } => Destination::Conduit {
                conduit_id: conduit_id.clone(),
            },
        }
    }

    fn transport(&self) -> Value {
        match self {
            Target::Webhook { callback, secret } => {
                serde_json::json!({"method": "webhook", "callback": callback, "secret": secret})
            }
            Target::Conduit { conduit_id } => {
                serde_json::json!({"method": "conduit", "conduit_id": conduit_id})
            }
        }
    }

    /// True if `existing` delivers to this target.
    fn is_ours(&self, existing: &Value) -> bool {
        self.destination().delivers(existing)
    }
}

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

/// The webhook target from configuration.
pub fn webhook_target(app: &AppState) -> Result<Target, TwitchError> {
    let secret = app.config.twitch.webhook_secret.clone().ok_or_else(|| {
        TwitchError::Socket("webhook transport needs TWITCH_WEBHOOK_SECRET".into())
    })?;
    Ok(Target::Webhook {
        callback: webhook_callback(app),
        secret,
    })
}

/// Where Twitch delivers this relay's webhooks: `TAU_PUBLIC_URL/twitch/eventsub`.
pub fn webhook_callback(app: &AppState) -> String {
    app.config
        .public_url
        .join("/twitch/eventsub")
        .expect("valid path")
        .to_string()
}

/// Starts the webhook reconciler loop: a pass now, then every
/// [`RECHECK`] or at once on a resubscribe request.
pub fn spawn_webhook(app: AppState) {
    tokio::spawn(async move {
        let mut resubscribe = app.twitch.resubscribe_requests();
        loop {
            let outcome = match webhook_target(&app) {
                Ok(target) => reconcile(&app, &target).await,
                Err(err) => Err(err),
            };
            report(&app, outcome);
            tokio::select! {
                _ = app.shutdown.cancelled() => return,
                _ = tokio::time::sleep(RECHECK) => {}
                Ok(()) = resubscribe.changed() => {
                    tracing::info!("resubscribe requested: reconciling webhook subscriptions now");
                }
            }
        }
    });
}

/// Logs a pass and shows failures in the status.
pub fn report(app: &AppState, outcome: Result<Report, TwitchError>) {
    match outcome {
        Ok(report) => tracing::info!(?report, "app-token subscriptions reconciled"),
        Err(err) => {
            tracing::warn!(error = %err, "subscription reconcile failed");
            app.twitch.update(|s| {
                s.state = "error".into();
                s.last_error = Some(err.to_string());
            });
        }
    }
}

/// The channel's ids for conditions, looked up with the app token.
async fn ids(app: &AppState) -> Result<Ids, TwitchError> {
    let login = app.config.twitch.broadcaster.clone().ok_or_else(|| {
        TwitchError::Socket("app-token transports need TWITCH_BROADCASTER".into())
    })?;
    let broadcaster_id = app
        .twitch
        .helix
        .user_by_login(&login, TokenKind::App)
        .await?
        .ok_or_else(|| {
            TwitchError::Socket(format!("Twitch has no user {login:?} (TWITCH_BROADCASTER)"))
        })?
        .id;
    app.store
        .set_setting("broadcaster_id", &broadcaster_id)
        .await?;
    Ok(Ids {
        broadcaster_id: broadcaster_id.clone(),
        user_id: broadcaster_id,
        client_id: app.twitch.credentials.client_id().unwrap_or_default(),
    })
}

/// One pass: converge Twitch's subscriptions for `target` on the wanted set.
pub async fn reconcile(app: &AppState, target: &Target) -> Result<Report, TwitchError> {
    let twitch = &app.twitch;
    let ids = ids(app).await?;
    let types = twitch.event_types.current().await;
    let (mut wanted, skipped) = desired(&types, &ids);
    app.streamers.add_wanted(&mut wanted).await?;
    app.chat_bots.add_wanted(&mut wanted).await?;
    if let Target::Conduit { conduit_id } = target {
        // Hear about shards Twitch disabled.
        let mut condition = serde_json::Map::new();
        condition.insert("client_id".into(), ids.client_id.clone().into());
        condition.insert("conduit_id".into(), conduit_id.clone().into());
        wanted.push(Desired {
            kind: "conduit.shard.disabled".into(),
            version: "1".into(),
            condition,
        });
    }
    let existing = twitch.helix.list_subscriptions(TokenKind::App).await?;
    let destination = target.destination();
    let ours = Ours {
        destination: &destination,
        known_ids: &HashSet::new(),
        claim_wanted: true,
    };
    let plan = plan::plan(&wanted, &existing, ours);
    let mut report = Report {
        kept: plan.keep.len(),
        ..Report::default()
    };
    for id in &plan.delete {
        let sub = existing.iter().find(|s| s["id"] == id.as_str());
        let (kind, status) =
            sub.map_or((&Value::Null, &Value::Null), |s| (&s["type"], &s["status"]));
        tracing::info!(id, %kind, %status, "deleting stale subscription");
        twitch.helix.delete_subscription(id, TokenKind::App).await?;
        report.deleted += 1;
    }
    let mut failures: Vec<Option<String>> = vec![None; wanted.len()];
    for (i, want) in wanted
        .iter()
        .enumerate()
        .filter(|(_, w)| plan.create.contains(w))
    {
        match twitch
            .helix
            .create_subscription(&want.request(target.transport()), TokenKind::App)
            .await
        {
            Ok(_) => report.created += 1,
            Err(err) => {
                report.failed += 1;
                tracing::warn!(kind = %want.kind, error = %err, "subscription not created");
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
    if report.created > 0 && matches!(target, Target::Webhook { .. }) {
        wait_for_verification(twitch, target).await;
    }
    app.chat_bots.note_app_results(&wanted, &failures).await;
    publish_status(twitch, &wanted, &failures, target, skipped).await?;
    Ok(report)
}

/// Waits (briefly) until no subscription of ours is pending verification.
async fn wait_for_verification(twitch: &Arc<Twitch>, target: &Target) {
    let deadline = tokio::time::Instant::now() + VERIFY_WAIT;
    while tokio::time::Instant::now() < deadline {
        let Ok(all) = twitch.helix.list_subscriptions(TokenKind::App).await else {
            return;
        };
        let pending = all
            .iter()
            .filter(|s| target.is_ours(s))
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
    target: &Target,
    skipped: Vec<(String, String)>,
) -> Result<(), TwitchError> {
    let existing = twitch.helix.list_subscriptions(TokenKind::App).await?;
    let statuses: Vec<SubscriptionStatus> = wanted
        .iter()
        .zip(failures)
        .map(|(want, failure)| {
            let found = existing
                .iter()
                .find(|s| want.matches(s) && target.is_ours(s));
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
                condition: want.condition.clone(),
                status,
            }
        })
        .collect();
    let all_enabled = statuses.iter().all(|s| s.status == "enabled");
    twitch.update(|s| {
        if matches!(target, Target::Webhook { .. }) {
            s.state = if all_enabled {
                "subscribed".into()
            } else {
                "partially_subscribed".into()
            };
        }
        s.subscriptions = statuses;
        s.skipped = skipped
            .iter()
            .map(|(k, why)| format!("{k}: {why}"))
            .collect();
        s.last_error = None;
    });
    Ok(())
}
