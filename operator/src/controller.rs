//! Wiring the kube-runtime Controller: what triggers a reconcile.
//!
//! Every watch below covers the namespaces the operator serves
//! ([`crate::scope`]: one watcher per namespace, or one cluster-wide).
//! - `TwitchChannel` changes pass a generation + finalizers predicate, so
//!   the operator's own status writes do not trigger it again (no hot
//!   loop), while spec edits, deletion and the finalizer being added do.
//!   Managed fields are stripped before the reflector caches objects.
//! - Children (selected by the managed-by label, so the operator does not
//!   cache every Secret in the cluster) trigger their owner: a deleted or
//!   edited child is put back, and the Deployment's readiness reaches status.
//! - The user's Secrets a relay reads (credentials, database and Redis
//!   URLs), watched by metadata only (the operator
//!   never caches Secret values), trigger the channels that name them: a
//!   rotated client secret rolls the relays at once (the pod template's
//!   inputs checksum changes), and a Secret created after its channel is
//!   noticed without waiting for a backoff.

use std::future::Future;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{predicates, reflector, watcher, Controller, Predicate, WatchStreamExt};
use kube::ResourceExt;

use crate::build::MANAGED_SELECTOR;
use crate::context::Context;
use crate::crd::TwitchChannel;
use crate::reconcile::{error_policy, reconcile};
use crate::scope;

/// The channels whose relays read `secret` (credentials, database or Redis URL).
fn channels_naming(
    channels: &reflector::Store<TwitchChannel>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<TwitchChannel>> {
    let (ns, name) = (secret.namespace(), secret.name_any());
    channels
        .state()
        .iter()
        .filter(|tc| tc.namespace() == ns && tc.secret_inputs().iter().any(|i| i.name == name))
        .map(|tc| ObjectRef::from_obj(tc.as_ref()))
        .collect()
}

/// Runs the controller until `shutdown` completes, then drains in-flight reconciles.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let scope = ctx.config.scope();
    tracing::info!(%scope, "serving TwitchChannels");
    let (reader, writer) = reflector::store();
    let strip_managed_fields = |tc: &mut TwitchChannel| tc.managed_fields_mut().clear();
    let channels = scope::reflect(
        &client,
        &scope,
        &watcher::Config::default(),
        writer,
        strip_managed_fields,
    )
    .applied_objects()
    .predicate_filter(
        predicates::generation.combine(predicates::finalizers),
        Default::default(),
    );
    let children = watcher::Config::default().labels(MANAGED_SELECTOR);
    let credentials = scope::watch::<Secret>(&client, &scope, &watcher::Config::default())
        .touched_objects()
        .predicate_filter(predicates::resource_version, Default::default());
    let channels_store = reader.clone();
    let naming = move |secret: PartialObjectMeta<Secret>| channels_naming(&channels_store, &secret);
    Controller::for_stream(channels, reader)
        .watches_stream(credentials, naming)
        .owns_stream(scope::watch::<Deployment>(&client, &scope, &children).touched_objects())
        .owns_stream(scope::watch::<Secret>(&client, &scope, &children).touched_objects())
        .owns_stream(scope::watch::<Service>(&client, &scope, &children).touched_objects())
        .owns_stream(scope::watch::<Ingress>(&client, &scope, &children).touched_objects())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(channel = %obj.name, "reconciled"),
                Err(err) => tracing::debug!(%err, "reconcile did not complete"),
            }
        })
        .await;
}
