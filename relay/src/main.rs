//! `tau-relay`: run the relay, or manage API tokens.
//!
//! Thin by design: parse and validate configuration (exit 2 with one line
//! naming the variable on a mistake), then hand over to the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tau_relay::{
    access::{Grant, Role},
    app,
    config::{Config, LogFormat, RawConfig},
    secret::SecretKey,
    startup,
    store::Store,
};

/// Rust allocations go to mimalloc, not the C library's malloc (the
/// bundled SQLite still uses the latter): see the README's "Performance".
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tau-relay",
    version,
    about = "TAU: every Twitch event of a channel over one websocket"
)]
struct Cli {
    #[command(flatten)]
    config: RawConfig,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay (the default).
    Serve,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (shown only this once).
    Create {
        /// A label to recognise it by (unique).
        #[arg(long)]
        name: String,
        /// admin, bot or overlay (required unless this is the first token,
        /// which is admin).
        #[arg(long)]
        role: Option<String>,
        /// Overlay tokens only: the event types it may receive, comma
        /// separated (default: all).
        #[arg(long, value_delimiter = ',')]
        event_types: Option<Vec<String>>,
    },
    /// List tokens (never their values).
    List,
    /// Revoke tokens by id, name or hint.
    Revoke {
        /// Id, name or hint of the token.
        which: String,
    },
}

/// Parses `--role` and `--event-types` as the REST API does; the first
/// token may omit the role (it is admin).
fn grant(
    role: Option<String>,
    event_types: Option<Vec<String>>,
    first: bool,
) -> anyhow::Result<Grant> {
    let role = match role {
        None if first => "admin".to_string(),
        None => anyhow::bail!("--role is required: admin, bot or overlay"),
        Some(role) => role,
    };
    Grant::requested(Some(&role), event_types, tau_relay::catalog::Catalog::get())
        .map_err(anyhow::Error::msg)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.config.validate() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("tau-relay: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Token(command) => token(config, command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("tau-relay: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Colours only for people: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let key = SecretKey::load_or_create(config.secret_key.as_deref(), &config.secret_key_file)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (TAU_LISTEN)", config.listen))?;
    // Signals are watched from here on: a relay still waiting for its
    // database stops at once.
    let stop = tokio_util::sync::CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            stop.cancel();
        });
    }
    // Until the store opens, a duplicate of the socket answers the probes
    // (/healthz 200, /readyz 503): a Postgres that is still starting is
    // waited for, not a reason to exit (startup.rs).
    let listener = listener.into_std()?;
    let waiting = tokio::net::TcpListener::from_std(listener.try_clone()?)?;
    let built = startup::build_when_reachable(
        config,
        key,
        waiting,
        startup::Backoff::default(),
        stop.clone(),
    )
    .await
    .context("cannot start")?;
    let Some(state) = built else {
        tracing::info!("stopped before the database was reachable");
        return Ok(());
    };
    let listener = tokio::net::TcpListener::from_std(listener)?;
    if let Some(token) = &state.config.api_token {
        let admin = Grant::role(Role::Admin);
        state
            .store
            .seed_token("TAU_API_TOKEN", token, &admin)
            .await?;
    }
    let dashboard = state.config.public_url.clone();
    if state.store.count_tokens().await? == 0 {
        let created = state
            .store
            .create_token("first-start", &Grant::role(Role::Admin))
            .await;
        let new = match created {
            // Another replica starting at the same moment made it (and printed it).
            Err(tau_relay::store::StoreError::Duplicate(_)) => None,
            other => Some(other?),
        };
        if let Some(new) = new {
            println!(
            "TAU created your first API token (shown only once; keep it safe):\n\n    {}\n\nDashboard login link: {}#token={}\n",
            new.token, dashboard, new.token
        );
        }
    }
    println!(
        "TAU relay listening on http://{}  dashboard: {dashboard}",
        listener.local_addr()?
    );
    tracing::info!(listen = %listener.local_addr()?, database = ?state.store.kind(), "relay started");
    app::spawn_retention(&state);
    let socket_drained = app::spawn_twitch(&state);
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        tracing::info!("shutting down: closing client sockets");
        shutdown.cancel();
    });
    let store = state.store.clone();
    app::serve(listener, state).await?;
    if let Some(drained) = socket_drained {
        // Events read from a Twitch socket exist only in memory until stored.
        let limit = std::time::Duration::from_secs(10);
        if tokio::time::timeout(limit, drained.cancelled())
            .await
            .is_err()
        {
            tracing::warn!("socket events still being written at exit");
        }
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn token(config: Config, command: TokenCommand) -> anyhow::Result<()> {
    let store = Store::open_instance(
        &config.database_url,
        config.database.clone(),
        &config.instance,
    )
    .await
    .context("cannot open the database (TAU_DATABASE_URL)")?;
    match command {
        TokenCommand::Create {
            name,
            role,
            event_types,
        } => {
            let first = store.count_tokens().await? == 0;
            let grant = grant(role, event_types, first)?;
            let new = store.create_token(name.trim(), &grant).await?;
            println!("{}", new.token);
        }
        TokenCommand::List => {
            for t in store.list_tokens().await? {
                let created =
                    chrono::DateTime::from_timestamp_micros(t.created_us).unwrap_or_default();
                let types = t
                    .event_types
                    .map(|types| format!("  events {}", types.join(",")))
                    .unwrap_or_default();
                println!(
                    "{}  {:<20} {:<7} hash {}  created {}{types}",
                    t.id,
                    t.name,
                    t.role,
                    t.hint,
                    created.format("%Y-%m-%d %H:%M")
                );
            }
        }
        TokenCommand::Revoke { which } => match store.revoke_token(&which).await? {
            0 => anyhow::bail!("no token matches {which:?}"),
            n => println!("revoked {n} token(s)"),
        },
    }
    store.close().await;
    Ok(())
}
