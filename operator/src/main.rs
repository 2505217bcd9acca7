//! `tau-operator`: parse the configuration, build the client, run until SIGTERM.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use tau_operator::config::Config;
use tau_operator::metrics::Metrics;
use tokio_util::sync::CancellationToken;

/// Longest graceful drain after SIGTERM.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(25);

/// Reconciles TwitchChannel resources into TAU relays and EventSub subscriptions.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

async fn terminated() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Cli::parse().config;
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        // Colours only for people; log collectors get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    let metrics = Arc::new(Metrics::default());
    let client = tau_operator::run::client(metrics.clone())
        .await
        .context("no Kubernetes configuration (KUBECONFIG or in-cluster)")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (TAU_OPERATOR_LISTEN)", config.listen))?;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        terminated().await;
        tracing::info!("shutting down: draining reconciles");
        trigger.cancel();
        // Drain budget, under Kubernetes' default 30 s grace period: a
        // reconcile stuck on an unreachable Twitch must not hold the pod.
        tokio::time::sleep(DRAIN_TIMEOUT).await;
        tracing::warn!(timeout = ?DRAIN_TIMEOUT, "drain timed out; exiting");
        std::process::exit(1);
    });
    tau_operator::run::run(config, client, metrics, listener, shutdown).await?;
    Ok(())
}
