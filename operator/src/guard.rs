//! The finalizer `tau.dev/subscriptions`: on a channel only while the
//! operator owns something at Twitch for it.
//!
//! A finalizer makes `kubectl delete` wait for the operator. That is worth
//! it when there is something to clean up at Twitch (webhook subscriptions
//! the operator made, a conduit the relay fleet made: Twitch allows an app
//! only five), and a needless hang otherwise: a websocket channel's
//! subscriptions die with its session, so it carries no finalizer and is
//! deleted at once even with the operator gone.
//!
//! - Webhook transport: added right before the first subscription is made,
//!   kept while the channel stays webhook.
//!   Switched to another transport, the reconcile first deletes those
//!   webhook subscriptions at Twitch (`cleanup::remove_switched_webhooks`);
//!   only then is the status rewritten and the finalizer let go.
//! - Conduit transport: added before the relay Deployment exists (the fleet
//!   creates the conduit as soon as it runs).
//! - A conduit id in the status keeps it, whatever the transport is now.
//!   (Subscriptions listed in the status are the operator's own only for the
//!   webhook transport; a websocket channel's are its relay's session's.)
//!
//! Changes are merge patches carrying the `resourceVersion` read, so a
//! concurrent edit of the list makes the write fail (and retry) instead of
//! being overwritten.

use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

use crate::crd::{TransportMode, TwitchChannel, TwitchChannelStatus};
use crate::Result;

/// Finalizer guarding what the channel owns at Twitch.
pub const FINALIZER: &str = "tau.dev/subscriptions";

/// True when the channel carries our finalizer.
pub fn present(tc: &TwitchChannel) -> bool {
    tc.finalizers().iter().any(|f| f == FINALIZER)
}

/// Whether the channel needs the finalizer, given the status just observed
/// and whether it carries the finalizer now.
pub fn wanted(tc: &TwitchChannel, status: &TwitchChannelStatus, guarded: bool) -> bool {
    match tc.effective_transport() {
        TransportMode::Conduit => true,
        TransportMode::Webhook => guarded || !status.subscriptions.is_empty(),
        TransportMode::Websocket | TransportMode::Auto => status.conduit_id.is_some(),
    }
}

/// Adds (`on`) or removes our finalizer; does nothing when already so.
pub async fn set(api: &Api<TwitchChannel>, tc: &TwitchChannel, on: bool) -> Result<()> {
    if present(tc) == on {
        return Ok(());
    }
    let mut finalizers: Vec<String> = tc
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if on {
        finalizers.push(FINALIZER.into());
    }
    let patch = json!({
        "metadata": {"finalizers": finalizers, "resourceVersion": tc.resource_version()}
    });
    api.patch(
        &tc.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::SubscriptionStatus;
    use crate::fixtures::channel;

    fn with(transport: TransportMode) -> TwitchChannel {
        let mut tc = channel("a");
        tc.spec.transport = transport;
        tc
    }

    #[test]
    fn only_channels_owning_something_at_twitch_are_guarded() {
        let none = TwitchChannelStatus::default();
        assert!(!wanted(&with(TransportMode::Websocket), &none, false));
        assert!(
            !wanted(&with(TransportMode::Websocket), &none, true),
            "an old operator's finalizer on a websocket channel goes"
        );
        assert!(wanted(&with(TransportMode::Conduit), &none, false));
        assert!(
            !wanted(&with(TransportMode::Webhook), &none, false),
            "nothing made yet"
        );
        assert!(
            wanted(&with(TransportMode::Webhook), &none, true),
            "kept once a sync may have made something"
        );
        let owning = TwitchChannelStatus {
            subscriptions: vec![SubscriptionStatus {
                kind: "stream.online".into(),
                version: "1".into(),
                id: "s".into(),
                status: "enabled".into(),
            }],
            ..TwitchChannelStatus::default()
        };
        assert!(
            wanted(&with(TransportMode::Webhook), &owning, false),
            "the operator's webhook subscriptions"
        );
        assert!(
            !wanted(&with(TransportMode::Websocket), &owning, true),
            "a websocket channel's subscriptions are its relay session's: nothing to clean up"
        );
        let conduit = TwitchChannelStatus {
            conduit_id: Some("c".into()),
            ..TwitchChannelStatus::default()
        };
        assert!(wanted(&with(TransportMode::Websocket), &conduit, false));
    }
}
