//! The operator's life: admin server up, wait for the CRD, take the Lease,
//! reconcile until told to stop (or the Lease is lost), then drain.
//!
//! Losing the Lease stops the controller and returns an error: the process
//! exits and its Deployment restarts it as a standby, which is the simple
//! way to guarantee that two replicas never write at the same time.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kube::api::ListParams;
use kube::client::ClientBuilder;
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Health};
use crate::config::Config;
use crate::context::Context;
use crate::crd::TwitchChannel;
use crate::metrics::{CountLayer, Metrics};

/// Lease duration: a dead leader is replaced after about this long.
const LEASE_SECONDS: u64 = 15;
/// Lease renewal margin before it would expire.
const LEASE_GRACE_SECONDS: u64 = 5;
/// Wait between checks for the CRD at start.
const CRD_POLL: Duration = Duration::from_secs(2);

/// Why the operator stopped other than by request.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The Lease could not be set up.
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    /// Another replica took the Lease; this one stopped writing.
    #[error("lost the leader Lease; stopped reconciling")]
    LeaseLost,
    /// The admin server failed.
    #[error("admin server: {0}")]
    Admin(#[from] std::io::Error),
}

/// A client from the kubeconfig or in-cluster config, counting every request into `metrics`.
pub async fn client(metrics: Arc<Metrics>) -> anyhow::Result<Client> {
    client_from(kube::Config::infer().await?, metrics)
}

/// A client for an explicit configuration (e.g. a ServiceAccount's kubeconfig).
pub fn client_from(config: kube::Config, metrics: Arc<Metrics>) -> anyhow::Result<Client> {
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&CountLayer(metrics))
        .build())
}

/// Runs the operator until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    client: Client,
    metrics: Arc<Metrics>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let health = Health {
        metrics: metrics.clone(),
        ..Health::default()
    };
    let (admin_stop, router) = (shutdown.clone(), admin::router(health.clone()));
    let admin = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(admin_stop.cancelled_owned())
            .await
    });
    let result = operate(config, client, health, shutdown.clone()).await;
    shutdown.cancel();
    admin.await.ok().transpose()?;
    result
}

/// Whether TwitchChannels can be listed through every one of `apis` (the
/// CRD is served and the RBAC allows it); logs the first failure.
async fn all_readable(apis: &[Api<TwitchChannel>]) -> bool {
    for channels in apis {
        if let Err(err) = channels.list(&ListParams::default().limit(1)).await {
            let namespace = channels.namespace().unwrap_or("all namespaces");
            tracing::warn!(%err, namespace, "TwitchChannels not readable yet");
            return false;
        }
    }
    true
}

async fn operate(
    config: Config,
    client: Client,
    health: Health,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    // Read the CRD where the operator will watch: with a namespace list its
    // namespaced Roles allow listing only there, never cluster-wide.
    let apis = config.scope().apis::<TwitchChannel>(&client);
    while !all_readable(&apis).await {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(CRD_POLL) => {}
        }
    }
    health.ready.store(true, Ordering::Relaxed);
    let stop = shutdown.child_token();
    let mut lease = None;
    if config.leader_election {
        let identity = config
            .identity
            .clone()
            .unwrap_or_else(|| format!("tau-operator-{}", std::process::id()));
        let manager = LeaseManagerBuilder::new(client.clone(), &config.lease_name)
            .with_namespace(&config.lease_namespace)
            .with_identity(identity)
            .with_duration(LEASE_SECONDS)
            .with_grace(LEASE_GRACE_SECONDS)
            .build()
            .await?;
        let (mut rx, task) = manager.watch().await;
        tracing::info!(lease = %config.lease_name, "waiting for the leader Lease");
        loop {
            if *rx.borrow_and_update() {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                changed = rx.changed() => if changed.is_err() { return Err(RunError::LeaseLost) },
            }
        }
        tracing::info!("holding the leader Lease");
        let (stop, mut watch) = (stop.clone(), rx.clone());
        let lost = tokio::spawn(async move {
            while watch.changed().await.is_ok() {
                if !*watch.borrow_and_update() {
                    stop.cancel();
                    return true;
                }
            }
            stop.cancel();
            true
        });
        lease = Some((rx, task, lost));
    }
    health.leader.store(true, Ordering::Relaxed);
    let ctx = Arc::new(Context::new(client, config, health.metrics.clone()));
    crate::controller::run(ctx, stop.clone().cancelled_owned()).await;
    health.leader.store(false, Ordering::Relaxed);
    if let Some((rx, task, lost)) = lease {
        let lost_lease = !shutdown.is_cancelled() && lost.is_finished();
        // The watcher task holds a receiver too: stop it, so that dropping
        // ours closes the channel and the manager releases the Lease.
        lost.abort();
        let _ = lost.await;
        drop(rx);
        let _ = task.await;
        let lost = lost_lease;
        if lost {
            return Err(RunError::LeaseLost);
        }
    }
    Ok(())
}
