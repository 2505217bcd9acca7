//! One reconcile of one `TwitchChannel`.
//!
//! Apply: check the spec, build the children, apply what drifted, delete
//! orphans, make Twitch match (webhook transport, once a relay can answer
//! Twitch's verification challenge), write status only if it
//! changed. The finalizer is added only while the channel owns something at
//! Twitch (`guard.rs`).
//! Delete: `cleanup.rs`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use serde_json::json;

use crate::apply::{ensure, list, named, remove_orphans};
use crate::build::{self, KEY_SECRET_KEY, KEY_WEBHOOK_SECRET, MANAGER};
use crate::config::Config;
use crate::context::Context;
use crate::crd::{TransportMode, TwitchChannel};
use crate::status::{is_ready, status, Observed, TwitchState};
use crate::user_secrets::{parse_credentials, user_secrets};
use crate::{catalog, cleanup, guard, twitch, validate, Error, Result};

pub use crate::guard::FINALIZER;

/// Annotation acknowledging a lost secret key: set it to the lost key's id
/// (`status.secretKeyId`) to have a new key generated.
pub const RESET_SECRET_KEY: &str = "tau.dev/reset-secret-key";

fn key(tc: &TwitchChannel) -> String {
    format!("{}/{}", tc.namespace().unwrap_or_default(), tc.name_any())
}

/// Entry point for the controller.
#[tracing::instrument(skip(tc, ctx), fields(channel = %key(&tc)))]
pub async fn reconcile(tc: Arc<TwitchChannel>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let result = if tc.metadata.deletion_timestamp.is_some() {
        cleanup::delete(&tc, &ctx).await
    } else {
        apply(&tc, &ctx).await
    };
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

/// Errors the user must fix become a status; the rest are retried as errors.
pub(crate) fn as_state(err: Error) -> Result<TwitchState> {
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
    creds: Option<&BTreeMap<String, ByteString>>,
) -> Result<(TwitchState, Option<String>)> {
    let ns = tc.namespace().unwrap_or_default();
    let Some(creds) = creds.map(|data| parse_credentials(tc, data)).transpose()? else {
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
        None => {
            let login = &tc.spec.broadcaster;
            ctx.twitch
                .user_by_login(&ctx.app(&creds), login)
                .await?
                .ok_or_else(|| Error::UnknownBroadcaster(login.clone()))?
                .id
        }
    };
    let (types, _) = catalog::resolve(&tc.spec.events);
    let mut wanted = catalog::wanted(&types, &broadcaster_id, &creds.client_id);
    let watched_ids = watched_streamers(tc, ctx, &creds).await?;
    wanted.extend(catalog::watched(&watched_ids, &broadcaster_id));
    let known: HashSet<String> = old.subscriptions.iter().map(|s| s.id.clone()).collect();
    let callback = build::webhook_callback(tc);
    let webhooks = twitch::Webhooks {
        callback: &callback,
        broadcaster_id: &broadcaster_id,
        known_ids: &known,
        watched_ids: &watched_ids,
    };
    let (state, changes) = webhooks.sync(ctx, &creds, &wanted, webhook_secret).await?;
    if changes.created + changes.deleted > 0 {
        let note = format!(
            "created {} and deleted {} EventSub subscriptions",
            changes.created, changes.deleted
        );
        ctx.event(tc, false, "SubscriptionsChanged", note).await;
    }
    Ok((state, Some(broadcaster_id)))
}

/// The user ids of `spec.streamers`. A login Twitch does not know is
/// left out with a warning Event naming it (the others are still watched).
async fn watched_streamers(
    tc: &TwitchChannel,
    ctx: &Context,
    creds: &tau_twitch::Credentials,
) -> Result<Vec<String>> {
    if tc.spec.streamers.is_empty() {
        return Ok(Vec::new());
    }
    let users = ctx
        .twitch
        .users_by_logins(&ctx.app(creds), &tc.spec.streamers)
        .await?;
    let unknown: Vec<&str> = tc
        .spec
        .streamers
        .iter()
        .filter(|login| !users.iter().any(|u| u.login.eq_ignore_ascii_case(login)))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let note = format!(
            "spec.streamers: Twitch has no user {}; the others are watched",
            unknown.join(", ")
        );
        ctx.event(tc, true, "UnknownStreamer", note).await;
    }
    Ok(users.into_iter().map(|u| u.id).collect())
}

/// Why the channel cannot be served as specified, if it cannot.
fn blocked(
    tc: &TwitchChannel,
    config: &Config,
    live_secret: Option<&BTreeMap<String, ByteString>>,
) -> Option<TwitchState> {
    let problems = validate::problems(tc, config);
    if !problems.is_empty() {
        return Some(TwitchState::Failed {
            reason: "InvalidSpec".into(),
            message: problems.join("; "),
        });
    }
    // The generated Secret (or its key) is gone but a key existed: the
    // relay's stored Twitch tokens are encrypted with it. A new key is made
    // only when the user says so, naming the lost key.
    let recorded = recorded_key(tc)?;
    let acknowledged = tc.annotations().get(RESET_SECRET_KEY).map(String::as_str) == Some(recorded);
    (key_missing(live_secret) && !acknowledged).then(|| TwitchState::Failed {
        reason: "SecretKeyLost".into(),
        message: format!(
            "the generated Secret {} or its key {KEY_SECRET_KEY} was deleted; the relay's stored Twitch \
             authorization is encrypted with that key (id {recorded}). Restore the Secret from a backup, or run \
             `kubectl annotate twitchchannel {} {RESET_SECRET_KEY}={recorded}` to generate a new key \
             (the broadcaster then connects Twitch again)",
            build::child_name(&tc.name_any()),
            tc.name_any()
        ),
    })
}

/// The id of the secret key the status recorded, if one was ever made.
fn recorded_key(tc: &TwitchChannel) -> Option<&str> {
    tc.status.as_ref()?.secret_key_id.as_deref()
}

/// Whether the generated Secret (or its key) is absent.
fn key_missing(live_secret: Option<&BTreeMap<String, ByteString>>) -> bool {
    live_secret
        .and_then(|d| d.get(KEY_SECRET_KEY))
        .is_none_or(|v| v.0.is_empty())
}

async fn apply(tc: &TwitchChannel, ctx: &Context) -> Result<Action> {
    let ns = tc.namespace().unwrap_or_default();
    let name = build::child_name(&tc.name_any());
    let selector = build::channel_selector(&tc.name_any());
    let c = &ctx.client;
    let (channels, secrets, deployments, services, ingresses) = (
        Api::<TwitchChannel>::namespaced(c.clone(), &ns),
        Api::<Secret>::namespaced(c.clone(), &ns),
        Api::<Deployment>::namespaced(c.clone(), &ns),
        Api::<Service>::namespaced(c.clone(), &ns),
        Api::<Ingress>::namespaced(c.clone(), &ns),
    );
    let live_secrets = list(&secrets, &selector).await?;
    let existing = named(&live_secrets, &name).and_then(|s| s.data.as_ref());
    // The cache may not have seen the status that recorded the key yet (it
    // and the Secret's deletion come on different watches). A key is never
    // generated from a stale copy: with none live and none recorded, this
    // reconcile works on the channel as the API server has it.
    let fresh;
    let tc = if key_missing(existing) && recorded_key(tc).is_none() {
        fresh = channels.get(&tc.name_any()).await?;
        &fresh
    } else {
        tc
    };
    let live_deployments = list(&deployments, &selector).await?;
    let live_services = list(&services, &selector).await?;
    let live_ingresses = list(&ingresses, &selector).await?;
    // The relay's durable state (SQLite): created once, then left alone (a
    // claim's spec is immutable) and never removed as an orphan: deleting it
    // would lose the channel's history and tokens. It goes with the channel.
    // A relay on its claim stays there when a default database appears.
    let config = build::channel_config(tc, &ctx.config, existing);
    let claims = Api::<PersistentVolumeClaim>::namespaced(c.clone(), &ns);
    let live_claims = match build::volume_claim(tc, &config) {
        Some(_) => list(&claims, &selector).await?,
        None => Vec::new(),
    };
    let user_secrets = user_secrets(tc, ctx).await?;
    let creds = user_secrets
        .get(&tc.spec.credentials.secret_name)
        .cloned()
        .flatten();
    let transport = tc.effective_transport();
    let mut guarded = guard::present(tc);

    let blocked = blocked(tc, &config, existing);
    let mut secret_key_id = None;
    let mut webhook_secret = String::new();
    if blocked.is_none() {
        if transport == TransportMode::Conduit && !guarded {
            // Before the relays exist: they create the conduit.
            guard::set(&channels, tc, true).await?;
            guarded = true;
        }
        let secret = build::secret(tc, &config, existing, &mut rand::thread_rng());
        let data = secret.data.clone().unwrap_or_default();
        let value = |key: &str| data.get(key).map(|v| v.0.clone()).unwrap_or_default();
        secret_key_id = Some(build::key_id(&value(KEY_SECRET_KEY)));
        webhook_secret = String::from_utf8_lossy(&value(KEY_WEBHOOK_SECRET)).into_owned();
        let mut deployment = build::deployment(tc, &config);
        let checksum = build::inputs_checksum(tc, &user_secrets, &data);
        build::stamp_inputs(&mut deployment, &checksum);
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
    }

    let relay = named(&live_deployments, &name).map(|d| {
        let ready = d
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        (ready, tc.spec.relay.replicas)
    });
    let relay_answers = relay.is_some_and(|(ready, _)| ready > 0);
    let subscribed_before = tc
        .status
        .as_ref()
        .is_some_and(|s| !s.subscriptions.is_empty());
    if cleanup::switched_from_webhook(tc) {
        let creds = creds.as_ref().map(|d| parse_credentials(tc, d)).transpose();
        // Unreadable credentials are as good as none for a cleanup.
        cleanup::remove_switched_webhooks(tc, ctx, creds.ok().flatten()).await?;
    }
    let (twitch_state, broadcaster_id) = match (blocked, transport) {
        (Some(state), _) => (state, None),
        // WebSocket: the relay holds the user-token session. Conduit: every
        // relay replica is a shard and the relay fleet manages the conduit
        // and its subscriptions with the app credentials it is given. Either
        // way the relay knows the truth: ask it (with the generated API token).
        (None, TransportMode::Websocket | TransportMode::Auto | TransportMode::Conduit) => (
            TwitchState::Relay(ctx.relays.observe(tc, existing, relay).await),
            None,
        ),
        (None, TransportMode::Webhook)
            if tc.spec.ingress.is_none() && tc.spec.public_url.is_none() =>
        {
            (
                TwitchState::Failed {
                    reason: "NoPublicUrl".into(),
                    message:
                        "the webhook transport needs a public HTTPS URL: set spec.ingress.host"
                            .into(),
                },
                None,
            )
        }
        // Twitch sends its verification challenge the moment a webhook
        // subscription is made: with no relay to answer it, the subscription
        // fails and would be made again and again. The first ones wait for a
        // ready relay (a change of the Deployment's readiness wakes us).
        (None, TransportMode::Webhook) if !relay_answers && !subscribed_before => (
            TwitchState::Failed {
                reason: "WaitingForRelay".into(),
                message: "webhook subscriptions are made once a relay pod is ready to answer \
                          Twitch's verification challenge"
                    .into(),
            },
            None,
        ),
        (None, TransportMode::Webhook) => {
            if !guarded {
                // Before anything is made at Twitch.
                guard::set(&channels, tc, true).await?;
            }
            match sync_twitch(tc, ctx, &webhook_secret, creds.as_ref()).await {
                Ok(done) => done,
                Err(err) => (as_state(err)?, None),
            }
        }
    };
    let (_, unknown_events) = catalog::resolve(&tc.spec.events);
    let observed = Observed {
        broadcaster_id,
        relay_url: build::relay_url(tc),
        relay,
        twitch: twitch_state.clone(),
        unknown_events,
        secret_key_id,
    };
    let new_status = status(tc, &observed, Timestamp::now());
    if guard::present(tc) && !guard::wanted(tc, &new_status, true) {
        guard::set(&channels, tc, false).await?;
    }
    if tc.status.as_ref() != Some(&new_status) {
        let patch = json!({"apiVersion": "tau.dev/v1alpha1", "kind": "TwitchChannel", "status": new_status});
        channels
            .patch_status(
                &tc.name_any(),
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
    }

    let cfg = &ctx.config;
    let auth_key = format!("{}#auth", key(tc));
    let fail_key = format!("{}#user", key(tc));
    let poll_key = format!("{}#relay", key(tc));
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
        // Look again soon: the broadcaster may be authorizing right now.
        TwitchState::Relay(_) if !is_ready(&new_status) => {
            Action::requeue(ctx.backoff.next(&poll_key, cfg.relay_poll, cfg.resync))
        }
        _ => {
            ctx.backoff.reset(&auth_key);
            ctx.backoff.reset(&fail_key);
            ctx.backoff.reset(&poll_key);
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
