//! Deleting a channel: clean up what it owns at Twitch, then let it go.
//! Also the webhook subscriptions a channel leaves behind when its
//! transport is switched from webhook to websocket or conduit
//! ([`switched_from_webhook`]): they would otherwise stay at Twitch, and
//! keep delivering to the relay, until someone deletes them by hand.
//!
//! Stop the relays first if they own a conduit (a running relay makes a new
//! conduit when its own disappears), delete the conduit and the operator's
//! webhook subscriptions at Twitch, then drop the finalizer. A credentials
//! Secret that is already gone, or Twitch refusing the credentials, counts
//! as done so deletion never gets stuck; children go with the owner
//! references.

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;

use crate::apply::{list, named};
use crate::build;
use crate::context::Context;
use crate::crd::{TransportMode, TwitchChannel};
use crate::reconcile::as_state;
use crate::status::TwitchState;
use crate::user_secrets::credentials;
use crate::{guard, twitch, Error, Result};

/// How often deletion checks whether the relays have stopped.
const STOP_POLL: Duration = Duration::from_secs(2);

/// Deletion: clean up at Twitch, then let the channel go.
pub async fn delete(tc: &TwitchChannel, ctx: &Context) -> Result<Action> {
    if !guard::present(tc) {
        return Ok(Action::await_change());
    }
    if let Some(wait) = cleanup(tc, ctx).await? {
        return Ok(Action::requeue(wait));
    }
    let ns = tc.namespace().unwrap_or_default();
    guard::set(&Api::namespaced(ctx.client.clone(), &ns), tc, false).await?;
    Ok(Action::await_change())
}

/// Deletes the relay Deployment and waits until it is gone (foreground
/// deletion: its pods first). `Some(wait)` while it is still there.
async fn stop_relays(tc: &TwitchChannel, ctx: &Context) -> Result<Option<Duration>> {
    let ns = tc.namespace().unwrap_or_default();
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let name = build::child_name(&tc.name_any());
    // Listed (a verb the operator has anyway), not read by name.
    let live = list(&deployments, &build::channel_selector(&tc.name_any())).await?;
    let Some(live) = named(&live, &name) else {
        return Ok(None);
    };
    if live.metadata.deletion_timestamp.is_none() {
        deployments
            .delete(&name, &DeleteParams::foreground())
            .await?;
        let note = "stopping the relays before deleting their conduit at Twitch".to_string();
        ctx.event(tc, false, "StoppingRelays", note).await;
    }
    Ok(Some(STOP_POLL))
}

/// True when the status was written for the webhook transport but the
/// channel is now on another: the operator's webhook subscriptions may
/// still be at Twitch. (The status says `transport: webhook` until a
/// reconcile on the new transport succeeds, so a failed removal is
/// tried again.)
pub(crate) fn switched_from_webhook(tc: &TwitchChannel) -> bool {
    tc.effective_transport() != TransportMode::Webhook
        && tc
            .status
            .as_ref()
            .is_some_and(|s| s.transport.as_deref() == Some(TransportMode::Webhook.as_str()))
}

/// The channel's webhook subscriptions: its callback (after a switch away
/// from webhook, the one the last webhook status had: the relay URL may
/// have changed with the transport) and the ids its status lists.
fn webhooks_of(tc: &TwitchChannel) -> (String, HashSet<String>) {
    let status = tc.status.clone().unwrap_or_default();
    let callback = match &status.relay_url {
        Some(url) if switched_from_webhook(tc) => {
            format!("{}/twitch/eventsub", url.trim_end_matches('/'))
        }
        _ => build::webhook_callback(tc),
    };
    let known = status.subscriptions.iter().map(|s| s.id.clone()).collect();
    (callback, known)
}

/// Deletes the channel's webhook subscriptions ([`webhooks_of`]) at Twitch;
/// returns how many.
async fn delete_webhooks(
    ctx: &Context,
    tc: &TwitchChannel,
    creds: &tau_twitch::Credentials,
    broadcaster_id: &str,
) -> Result<usize> {
    let (callback, known) = webhooks_of(tc);
    let webhooks = twitch::Webhooks {
        callback: &callback,
        broadcaster_id,
        known_ids: &known,
        // Watched streamers' subscriptions are in the status (known ids).
        watched_ids: &[],
    };
    webhooks.delete_all(ctx, creds).await
}

/// After a switch away from webhook: deletes the operator's webhook
/// subscriptions at Twitch (those on the old callback or listed in the
/// status). Missing or refused credentials skip it with an Event; other
/// failures are errors (retried, the status still saying webhook).
pub(crate) async fn remove_switched_webhooks(
    tc: &TwitchChannel,
    ctx: &Context,
    creds: Option<tau_twitch::Credentials>,
) -> Result<()> {
    let Some(broadcaster_id) = tc.status.as_ref().and_then(|s| s.broadcaster_id.clone()) else {
        return Ok(());
    };
    let skipped = |why: &str| {
        format!("{why}: the webhook subscriptions made before the transport changed were left at Twitch")
    };
    let Some(creds) = creds else {
        let note = skipped("credentials Secret is missing");
        ctx.event(tc, true, "CleanupSkipped", note).await;
        return Ok(());
    };
    match delete_webhooks(ctx, tc, &creds, &broadcaster_id).await {
        Ok(0) => Ok(()),
        Ok(n) => {
            let transport = tc.effective_transport();
            let note = format!(
                "transport is now {}: deleted {n} webhook subscriptions at Twitch",
                transport.as_str()
            );
            ctx.event(tc, false, "SubscriptionsChanged", note).await;
            Ok(())
        }
        Err(err) => {
            let TwitchState::Failed { message, .. } = as_state(err)? else {
                unreachable!("as_state gives Failed or an error")
            };
            ctx.event(tc, true, "CleanupSkipped", skipped(&message))
                .await;
            Ok(())
        }
    }
}

/// Removes what the channel owns at Twitch; `Some(wait)` to come back later.
async fn cleanup(tc: &TwitchChannel, ctx: &Context) -> Result<Option<Duration>> {
    let status = tc.status.clone().unwrap_or_default();
    // Only the webhook transport's subscriptions are the operator's (also
    // when the channel was switched away from webhook just before).
    let webhooks = status.broadcaster_id.clone().filter(|_| {
        tc.effective_transport() == TransportMode::Webhook || switched_from_webhook(tc)
    });
    if webhooks.is_none() && status.conduit_id.is_none() {
        return Ok(None);
    }
    if status.conduit_id.is_some() {
        // A running relay would make a new conduit when its own disappears.
        if let Some(wait) = stop_relays(tc, ctx).await? {
            return Ok(Some(wait));
        }
    }
    let creds = match credentials(tc, ctx).await {
        Ok(Some(creds)) => creds,
        Ok(None) | Err(Error::Credentials { .. }) => {
            let note = "credentials Secret is gone: what the channel had at Twitch was left for Twitch to expire".to_string();
            ctx.event(tc, true, "CleanupSkipped", note).await;
            return Ok(None);
        }
        Err(err) => return Err(err),
    };
    let refused = |err: Error| -> Result<()> {
        // Twitch refusing our credentials will not get better by waiting.
        as_state(err)?;
        Ok(())
    };
    let mut skipped = false;
    if let Some(conduit) = &status.conduit_id {
        match ctx.twitch.delete_conduit(&ctx.app(&creds), conduit).await {
            Ok(()) => tracing::info!(conduit_id = %conduit, "deleted the conduit at Twitch"),
            Err(err) => {
                refused(err.into())?;
                skipped = true;
            }
        }
    }
    if let Some(broadcaster_id) = webhooks {
        match delete_webhooks(ctx, tc, &creds, &broadcaster_id).await {
            Ok(n) => tracing::info!(deleted = n, "deleted subscriptions at Twitch"),
            Err(err) => {
                refused(err)?;
                skipped = true;
            }
        }
    }
    if skipped {
        let note = "Twitch refused the credentials: what the channel had at Twitch was left for Twitch to expire"
            .to_string();
        ctx.event(tc, true, "CleanupSkipped", note).await;
    }
    Ok(None)
}
