//! One reconcile of one `TwitchChannel`, wrapped in kube's finalizer helper.
//!
//! Apply: build the children, apply what drifted, delete orphans, make
//! Twitch match (webhook transport), write status only if it changed.
//! Cleanup: delete our subscriptions at Twitch; a credentials Secret that
//! is already gone, or Twitch refusing the credentials, counts as done so
//! deletion never gets stuck (children go with the owner references).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::ResourceExt;
use serde_json::json;

use crate::apply::{ensure, list, named, remove_orphans};
use crate::build::{self, KEY_WEBHOOK_SECRET, MANAGER};
use crate::context::Context;
use crate::crd::{TransportMode, TwitchChannel};
use crate::helix::Credentials;
use crate::status::{status, Observed, TwitchState};
use crate::{catalog, twitch, Error, Result};

/// Finalizer guarding the subscriptions at Twitch.
pub const FINALIZER: &str = "tau.dev/subscriptions";

fn key(tc: &TwitchChannel) -> String {
    format!("{}/{}", tc.namespace().unwrap_or_default(), tc.name_any())
}

/// Entry point for the controller.
#[tracing::instrument(skip(tc, ctx), fields(channel = %key(&tc)))]
pub async fn reconcile(tc: Arc<TwitchChannel>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let ns = tc.namespace().unwrap_or_default();
    let api: Api<TwitchChannel> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, tc.clone(), |event| async {
        match event {
            Finalizer::Apply(tc) => apply(&tc, &ctx).await,
            Finalizer::Cleanup(tc) => cleanup(&tc, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconciled(started.elapsed());
    match &result {
        Ok(_) => ctx.backoff.reset(&key(&tc)),
        Err(err) => {
            ctx.metrics.failed(err);
            tracing::warn!(%err, "reconcile failed");
            ctx.event(&tc, true, "ReconcileFailed", err.to_string())
                .await;
        }
    }
    result
}

/// Error policy: the server's own wait if it gave one, else per-object exponential backoff.
pub fn error_policy(tc: Arc<TwitchChannel>, err: &Error, ctx: Arc<Context>) -> Action {
    let wait = err.retry_after().unwrap_or_else(|| {
        let c = &ctx.config;
        ctx.backoff.next(&key(&tc), c.error_backoff, c.max_backoff)
    });
    Action::requeue(wait)
}

/// Reads the app credentials from the user's Secret.
async fn credentials(tc: &TwitchChannel, ctx: &Context) -> Result<Option<Credentials>> {
    let ns = tc.namespace().unwrap_or_default();
    let refs = &tc.spec.credentials;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(secret) = api.get_opt(&refs.secret_name).await? else {
        return Ok(None);
    };
    let data = secret.data.unwrap_or_default();
    let read = |key: &str| {
        data.get(key)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::Credentials {
                secret: format!("{ns}/{}", refs.secret_name),
                reason: format!("key {key:?} is missing or empty"),
            })
    };
    Ok(Some(Credentials {
        client_id: read(&refs.client_id_key)?,
        client_secret: read(&refs.client_secret_key)?,
    }))
}

/// Errors the user must fix become a status; the rest are retried as errors.
fn as_state(err: Error) -> Result<TwitchState> {
    let (reason, message) = match &err {
        Error::Credentials { .. } => ("CredentialsInvalid", err.to_string()),
        Error::UnknownBroadcaster(_) => ("UnknownBroadcaster", err.to_string()),
        Error::InvalidSpec(_) => ("InvalidSpec", err.to_string()),
        Error::Twitch { status, .. } if (400..500).contains(status) && *status != 429 => (
            "TwitchRejected",
            format!("{err}; check the client id and secret"),
        ),
        _ => return Err(err),
    };
    Ok(TwitchState::Failed {
        reason: reason.into(),
        message,
    })
}

/// The Twitch side for the webhook transport.
async fn sync_twitch(
    tc: &TwitchChannel,
    ctx: &Context,
    webhook_secret: &str,
) -> Result<(TwitchState, Option<String>)> {
    let ns = tc.namespace().unwrap_or_default();
    let Some(creds) = credentials(tc, ctx).await? else {
        let message = format!(
            "credentials Secret {ns}/{} not found: create it with keys {} and {}",
            tc.spec.credentials.secret_name,
            tc.spec.credentials.client_id_key,
            tc.spec.credentials.client_secret_key
        );
        return Ok((
            TwitchState::Failed {
                reason: "CredentialsMissing".into(),
                message,
            },
            None,
        ));
    };
    let old = tc.status.clone().unwrap_or_default();
    let broadcaster_id = match old.broadcaster_id {
        Some(id) => id,
        None => ctx.helix.user_id(&creds, &tc.spec.broadcaster).await?,
    };
    let (types, _) = catalog::resolve(&tc.spec.events);
    let wanted = catalog::wanted(&types, &broadcaster_id, &creds.client_id);
    let known: HashSet<String> = old.subscriptions.iter().map(|s| s.id.clone()).collect();
    let callback = build::webhook_callback(tc);
    let (state, changes) = twitch::sync_webhooks(
        &ctx.helix,
        &creds,
        &broadcaster_id,
        &wanted,
        &callback,
        webhook_secret,
        &known,
    )
    .await?;
    if changes.created + changes.deleted > 0 {
        let note = format!(
            "created {} and deleted {} EventSub subscriptions",
            changes.created, changes.deleted
        );
        ctx.event(tc, false, "SubscriptionsChanged", note).await;
    }
    Ok((state, Some(broadcaster_id)))
}

async fn apply(tc: &TwitchChannel, ctx: &Context) -> Result<Action> {
    let ns = tc.namespace().unwrap_or_default();
    let name = build::child_name(&tc.name_any());
    let selector = build::channel_selector(&tc.name_any());
    let c = &ctx.client;
    let (secrets, deployments, services, ingresses) = (
        Api::<Secret>::namespaced(c.clone(), &ns),
        Api::<Deployment>::namespaced(c.clone(), &ns),
        Api::<Service>::namespaced(c.clone(), &ns),
        Api::<Ingress>::namespaced(c.clone(), &ns),
    );
    let live_secrets = list(&secrets, &selector).await?;
    let live_deployments = list(&deployments, &selector).await?;
    let live_services = list(&services, &selector).await?;
    let live_ingresses = list(&ingresses, &selector).await?;
    // The relay's durable state (SQLite): created once, then left alone (a
    // claim's spec is immutable) and never removed as an orphan: deleting it
    // would lose the channel's history and tokens. It goes with the channel.
    let existing = named(&live_secrets, &name).and_then(|s| s.data.as_ref());
    // A relay on its claim stays there when a default database appears.
    let config = build::channel_config(tc, &ctx.config, existing);
    let claims = Api::<PersistentVolumeClaim>::namespaced(c.clone(), &ns);
    let live_claims = match build::volume_claim(tc, &config) {
        Some(_) => list(&claims, &selector).await?,
        None => Vec::new(),
    };

    let secret = build::secret(tc, &config, existing, &mut rand::thread_rng());
    let deployment = build::deployment(tc, &config);
    let ingress = build::ingress(tc);
    let mut applied = Vec::new();
    if ensure(&secrets, &secret, named(&live_secrets, &name)).await? {
        applied.push("Secret");
    }
    if let Some(claim) = build::volume_claim(tc, &config) {
        if named(&live_claims, &name).is_none() && ensure(&claims, &claim, None).await? {
            applied.push("PersistentVolumeClaim");
        }
    }
    if ensure(&deployments, &deployment, named(&live_deployments, &name)).await? {
        applied.push("Deployment");
    }
    if ensure(&services, &build::service(tc), named(&live_services, &name)).await? {
        applied.push("Service");
    }
    if let Some(ingress) = &ingress {
        if ensure(&ingresses, ingress, named(&live_ingresses, &name)).await? {
            applied.push("Ingress");
        }
    }
    let keep = Some(name.as_str());
    let removed = remove_orphans(&secrets, &live_secrets, keep).await?
        + remove_orphans(&deployments, &live_deployments, keep).await?
        + remove_orphans(&services, &live_services, keep).await?
        + remove_orphans(
            &ingresses,
            &live_ingresses,
            ingress.as_ref().map(|_| name.as_str()),
        )
        .await?;
    if !applied.is_empty() || removed > 0 {
        let note = format!(
            "applied {}; removed {removed} orphaned children",
            if applied.is_empty() {
                "nothing".into()
            } else {
                applied.join(", ")
            }
        );
        ctx.event(tc, false, "ChildrenApplied", note).await;
    }

    let relay = named(&live_deployments, &name).map(|d| {
        let ready = d
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        (ready, tc.spec.relay.replicas)
    });
    let webhook_secret = secret
        .data
        .as_ref()
        .and_then(|d| d.get(KEY_WEBHOOK_SECRET))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .unwrap_or_default();
    let (twitch_state, broadcaster_id) = match tc.effective_transport() {
        // WebSocket: the relay holds the user-token session. Conduit: every
        // relay replica is a shard and the relay fleet manages the conduit
        // and its subscriptions with the app credentials it is given.
        TransportMode::Websocket | TransportMode::Auto | TransportMode::Conduit => {
            (TwitchState::RelayManaged, None)
        }
        TransportMode::Webhook if tc.spec.ingress.is_none() => (
            TwitchState::Failed {
                reason: "NoPublicUrl".into(),
                message: "the webhook transport needs a public HTTPS URL: set spec.ingress.host"
                    .into(),
            },
            None,
        ),
        TransportMode::Webhook => match sync_twitch(tc, ctx, &webhook_secret).await {
            Ok(done) => done,
            Err(err) => (as_state(err)?, None),
        },
    };
    let (_, unknown_events) = catalog::resolve(&tc.spec.events);
    let observed = Observed {
        broadcaster_id,
        relay_url: build::relay_url(tc),
        relay,
        twitch: twitch_state.clone(),
        unknown_events,
    };
    let new_status = status(tc, &observed, Timestamp::now());
    if tc.status.as_ref() != Some(&new_status) {
        let api: Api<TwitchChannel> = Api::namespaced(c.clone(), &ns);
        let patch = json!({"apiVersion": "tau.dev/v1alpha1", "kind": "TwitchChannel", "status": new_status});
        api.patch_status(
            &tc.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }

    let cfg = &ctx.config;
    let auth_key = format!("{}#auth", key(tc));
    let fail_key = format!("{}#user", key(tc));
    Ok(match twitch_state {
        TwitchState::NotAuthorized { .. } => {
            if let TwitchState::NotAuthorized { message, .. } = &twitch_state {
                ctx.event(
                    tc,
                    true,
                    "NotAuthorized",
                    format!("broadcaster has not authorized: {message}"),
                )
                .await;
            }
            Action::requeue(ctx.backoff.next(&auth_key, cfg.auth_retry, cfg.max_backoff))
        }
        TwitchState::Failed { .. } => Action::requeue(ctx.backoff.next(
            &fail_key,
            cfg.error_backoff,
            cfg.max_backoff,
        )),
        _ => {
            ctx.backoff.reset(&auth_key);
            ctx.backoff.reset(&fail_key);
            Action::requeue(jittered(cfg.resync))
        }
    })
}

/// `d` plus up to 10% more, so channels converged together do not resync together.
fn jittered(d: Duration) -> Duration {
    use rand::Rng;
    let extra = rand::thread_rng().gen_range(0..=d.as_millis() as u64 / 10);
    d + Duration::from_millis(extra)
}

async fn cleanup(tc: &TwitchChannel, ctx: &Context) -> Result<Action> {
    let status = tc.status.clone().unwrap_or_default();
    let uses_twitch = tc.effective_transport() == TransportMode::Webhook;
    let Some(broadcaster_id) = status.broadcaster_id.filter(|_| uses_twitch) else {
        return Ok(Action::await_change());
    };
    let creds = match credentials(tc, ctx).await {
        Ok(Some(creds)) => creds,
        Ok(None) | Err(Error::Credentials { .. }) => {
            let note = "credentials Secret is gone: subscriptions at Twitch were left for Twitch to expire".to_string();
            ctx.event(tc, true, "CleanupSkipped", note).await;
            return Ok(Action::await_change());
        }
        Err(err) => return Err(err),
    };
    let known: HashSet<String> = status.subscriptions.iter().map(|s| s.id.clone()).collect();
    let callback = build::webhook_callback(tc);
    match twitch::delete_all(&ctx.helix, &creds, &broadcaster_id, &callback, &known).await {
        Ok(n) => {
            tracing::info!(deleted = n, "deleted subscriptions at Twitch");
        }
        Err(err) => {
            // Twitch refusing our credentials will not get better by waiting.
            as_state(err)?;
            let note =
                "Twitch refused the credentials: subscriptions were left for Twitch to expire"
                    .to_string();
            ctx.event(tc, true, "CleanupSkipped", note).await;
        }
    }
    Ok(Action::await_change())
}
