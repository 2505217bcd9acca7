//! One typed configuration for the relay.
//!
//! Raw values come from flags or environment variables (clap), then
//! [`RawConfig::validate`] turns them into a [`Config`] whose fields are typed
//! (`SocketAddr`, `Url`, `Duration`). Every mistake is reported as one
//! [`ConfigError`] naming the variable, so `main` can print a single line and
//! exit with code 2. Tests build a `Config` directly with [`Config::for_tests`].

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Args;
use url::Url;

/// A configuration mistake: which variable, and why it was rejected.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault, e.g. `TAU_LISTEN`.
    pub var: &'static str,
    /// What is wrong with its value, in words a person can act on.
    pub reason: String,
}

/// Shortest `TAU_API_TOKEN` accepted: 32 characters of a random value
/// carry well over 128 bits, out of reach of guessing.
pub const MIN_SEEDED_TOKEN: usize = 32;

fn bad(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

/// Settings as given: strings straight from flags or the environment.
#[derive(Debug, Clone, Args)]
pub struct RawConfig {
    /// Address the HTTP and websocket server binds to.
    #[arg(long, env = "TAU_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// Database URL: `sqlite://FILE` (embedded) or `postgres://...`.
    #[arg(long, env = "TAU_DATABASE_URL", default_value = "sqlite://tau.db")]
    pub database_url: String,
    /// Redis URL; set it to run several replicas that share one event stream.
    #[arg(long, env = "TAU_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Name of this relay fleet (one channel): its Postgres schema and Redis
    /// channel prefix, so several channels can share one Postgres and Redis.
    #[arg(long, env = "TAU_INSTANCE", default_value = "tau")]
    pub instance: String,
    /// This replica's name among its peers (default: the host name, else random).
    #[arg(long, env = "TAU_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// URL people and Twitch reach this relay at (default: http://TAU_LISTEN).
    #[arg(long, env = "TAU_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Key that encrypts stored Twitch tokens (64 hex chars). Generated on first start if unset.
    #[arg(long, env = "TAU_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// File the generated secret key is kept in when TAU_SECRET_KEY is unset.
    #[arg(long, env = "TAU_SECRET_KEY_FILE", default_value = "tau-secret.key")]
    pub secret_key_file: PathBuf,
    /// An admin API token to accept (seeded, hashed, on start; at least 32
    /// characters); for non-interactive setups.
    #[arg(long, env = "TAU_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// How long events are kept (e.g. `30d`, `12h`; `0` keeps them forever).
    #[arg(long, env = "TAU_RETENTION", default_value = "30d")]
    pub retention: String,
    /// Events a websocket client may fall behind before it is disconnected as too slow.
    #[arg(long, env = "TAU_CLIENT_QUEUE", default_value = "1024")]
    pub client_queue: String,
    /// Interval of websocket protocol pings; a client silent for two intervals is dropped.
    #[arg(long, env = "TAU_WS_PING_INTERVAL", default_value = "20s")]
    pub ws_ping_interval: String,
    /// Longest a request may take before it is answered 503 (websockets
    /// are not bounded by it once upgraded).
    #[arg(long, env = "TAU_REQUEST_TIMEOUT", default_value = "30s")]
    pub request_timeout: String,
    /// Browser origins allowed to call the REST API cross-origin (overlay
    /// pages served elsewhere), comma-separated, e.g.
    /// `https://overlay.example.com,http://localhost:3000`. Unset: none.
    #[arg(long, env = "TAU_CORS_ORIGINS")]
    pub cors_origins: Option<String>,
    /// How Twitch delivers events: `websocket`, `webhook` or `conduit` (default: webhook
    /// when TAU_PUBLIC_URL is https, else websocket).
    #[arg(long, env = "TAU_TRANSPORT")]
    pub transport: Option<String>,
    /// `false` when something else (the operator) owns the webhook
    /// subscriptions at Twitch; the relay then only receives.
    #[arg(long, env = "TAU_MANAGE_SUBSCRIPTIONS", default_value = "true")]
    pub manage_subscriptions: String,
    /// EventSub types to subscribe to, comma separated (`channel.follow`,
    /// `channel.follow@2`, or `default` for the streamer-bot set).
    #[arg(long, env = "TAU_EVENTSUB_TYPES", default_value = "default")]
    pub eventsub_types: String,
    /// `true` when the list above is decided elsewhere (the operator, from
    /// the TwitchChannel's spec.events): the dashboard shows it read-only.
    #[arg(long, env = "TAU_EVENTSUB_TYPES_FIXED", default_value = "false")]
    pub eventsub_types_fixed: String,
    /// Other channels to watch (their going live and offline), logins comma
    /// separated; set by the operator from the TwitchChannel's
    /// `spec.streamers`. More can be added through `/api/v1/streamers`.
    #[arg(long, env = "TAU_STREAMERS")]
    pub streamers: Option<String>,
    /// Log format: `text` or `json`. The filter comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "TAU_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Twitch application client id.
    #[arg(long, env = "TWITCH_CLIENT_ID")]
    pub twitch_client_id: Option<String>,
    /// Twitch application client secret.
    #[arg(long, env = "TWITCH_CLIENT_SECRET", hide_env_values = true)]
    pub twitch_client_secret: Option<String>,
    /// Secret shared with Twitch to sign EventSub webhooks (10-100 ASCII characters).
    #[arg(long, env = "TWITCH_WEBHOOK_SECRET", hide_env_values = true)]
    pub twitch_webhook_secret: Option<String>,
    /// Login of the channel this relay serves.
    #[arg(long, env = "TWITCH_BROADCASTER")]
    pub twitch_broadcaster: Option<String>,
    /// Helix base URL.
    #[arg(
        long,
        env = "TWITCH_API_URL",
        default_value = "https://api.twitch.tv/helix"
    )]
    pub twitch_api_url: String,
    /// OAuth base URL.
    #[arg(
        long,
        env = "TWITCH_AUTH_URL",
        default_value = "https://id.twitch.tv/oauth2"
    )]
    pub twitch_auth_url: String,
    /// EventSub WebSocket URL.
    #[arg(
        long,
        env = "TWITCH_EVENTSUB_WS_URL",
        default_value = "wss://eventsub.wss.twitch.tv/ws"
    )]
    pub twitch_eventsub_ws_url: String,
    /// Overrides of fault-handling timings, `key=duration` comma separated
    /// (`lease_ttl=6s,lease_renew=2s,...`; see `timings.rs` for every key).
    #[arg(long, env = "TAU_TIMINGS", default_value = "")]
    pub timings: String,
}

/// Where the relay keeps its events and tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseKind {
    /// Embedded SQLite file (single process).
    Sqlite,
    /// Shared Postgres (several replicas).
    Postgres,
}

/// How Twitch delivers events to this relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// EventSub WebSocket with a user token: no public URL needed.
    WebSocket,
    /// EventSub webhooks to `TAU_PUBLIC_URL/twitch/eventsub` (app token).
    Webhook,
    /// A conduit whose shards are every replica's WebSocket session (app token).
    Conduit,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Credentials and endpoints for talking to Twitch.
#[derive(Clone)]
pub struct TwitchConfig {
    /// Application client id from the environment. Never read directly:
    /// ask [`crate::twitch::credentials::Credentials`], which falls back on
    /// a pair entered in the dashboard (absent both: no Twitch connection,
    /// the relay is still useful).
    pub client_id: Option<String>,
    /// Application client secret from the environment (same rule).
    pub client_secret: Option<String>,
    /// EventSub webhook signing secret.
    pub webhook_secret: Option<String>,
    /// Broadcaster login.
    pub broadcaster: Option<String>,
    /// Helix base URL, without a trailing slash.
    pub api_url: Url,
    /// OAuth base URL, without a trailing slash.
    pub auth_url: Url,
    /// EventSub WebSocket URL.
    pub eventsub_ws_url: Url,
}

impl std::fmt::Debug for TwitchConfig {
    // Hand-written so secrets never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwitchConfig")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<set>"),
            )
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<set>"),
            )
            .field("broadcaster", &self.broadcaster)
            .field("api_url", &self.api_url.as_str())
            .field("auth_url", &self.auth_url.as_str())
            .field("eventsub_ws_url", &self.eventsub_ws_url.as_str())
            .finish()
    }
}

/// Validated relay configuration.
#[derive(Clone)]
pub struct Config {
    /// Bind address.
    pub listen: SocketAddr,
    /// Database URL as given (contains a password for Postgres: never log it).
    pub database_url: String,
    /// Which backend `database_url` names.
    pub database: DatabaseKind,
    /// Redis URL (contains a password: never log it), if replicas share a bus.
    pub redis_url: Option<String>,
    /// This fleet's name (Postgres schema, Redis channel prefix).
    pub instance: String,
    /// This replica's name.
    pub replica_id: String,
    /// Public base URL, without a trailing slash.
    pub public_url: Url,
    /// Secret key as given (hex), if any.
    pub secret_key: Option<String>,
    /// Where a generated secret key is persisted.
    pub secret_key_file: PathBuf,
    /// Token seeded at start, if any.
    pub api_token: Option<String>,
    /// Maximum event age; `None` keeps events forever.
    pub retention: Option<Duration>,
    /// Per-client queue bound (events).
    pub client_queue: usize,
    /// Websocket ping interval.
    pub ws_ping_interval: Duration,
    /// Bound on one HTTP request's handling.
    pub request_timeout: Duration,
    /// Origins (`scheme://host[:port]`) allowed cross-origin; empty: none.
    pub cors_origins: Vec<String>,
    /// Log output format.
    pub log_format: LogFormat,
    /// EventSub transport.
    pub transport: Transport,
    /// EventSub types and versions to subscribe to.
    pub eventsub_types: Vec<(String, String)>,
    /// Whether this relay creates and deletes webhook subscriptions itself.
    pub manage_subscriptions: bool,
    /// Whether `eventsub_types` is decided elsewhere (no dashboard choice).
    pub eventsub_types_fixed: bool,
    /// Watched streamers' logins from `TAU_STREAMERS` (lower case, unique).
    pub streamers: Vec<String>,
    /// Twitch side.
    pub twitch: TwitchConfig,
    /// Fault-handling timings (leases, keepalive slack, retries, patience).
    pub timings: crate::timings::Timings,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database", &self.database)
            .field("public_url", &self.public_url.as_str())
            .field("retention", &self.retention)
            .field("client_queue", &self.client_queue)
            .field("ws_ping_interval", &self.ws_ping_interval)
            .field("twitch", &self.twitch)
            .finish_non_exhaustive()
    }
}

/// `TAU_CORS_ORIGINS`: comma-separated origins, each `http(s)://host[:port]`
/// with nothing after it, returned as browsers send them in `Origin`.
fn parse_origins(value: &str) -> Result<Vec<String>, ConfigError> {
    const VAR: &str = "TAU_CORS_ORIGINS";
    let mut origins = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "*" {
            return Err(bad(
                VAR,
                "\"*\" would let any web page use a token it holds; list the overlay origins",
            ));
        }
        let url = Url::parse(item).map_err(|e| {
            bad(
                VAR,
                format!("{item:?} is not an origin like https://overlay.example.com ({e})"),
            )
        })?;
        let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || !bare
            || !url.username().is_empty()
        {
            return Err(bad(
                VAR,
                format!("{item:?} is not an origin: scheme://host[:port] with no path"),
            ));
        }
        origins.push(url.origin().ascii_serialization());
    }
    Ok(origins)
}

fn parse_url(var: &'static str, value: &str, schemes: &[&str]) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim_end_matches('/'))
        .map_err(|e| bad(var, format!("{value:?} is not a URL ({e})")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(bad(
            var,
            format!("scheme must be one of {}", schemes.join(", ")),
        ));
    }
    Ok(url)
}

fn parse_duration(var: &'static str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value).map_err(|e| {
        bad(
            var,
            format!("{value:?} is not a duration like 30s, 12h, 30d ({e})"),
        )
    })
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// True for a plausible Twitch login (what Twitch allows: 1-25 of a-z, 0-9, `_`).
pub fn is_valid_login(login: &str) -> bool {
    (1..=25).contains(&login.len())
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses a `true`/`false` variable (also `1`/`0`, `yes`/`no`).
fn parse_bool(var: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(bad(var, format!("{other:?} is not true or false"))),
    }
}

/// Parses `TAU_STREAMERS`: logins, lower-cased and unique, at most the
/// transport's cap (see [`crate::streamers::cap`]).
fn parse_streamers(value: &str, transport: Transport) -> Result<Vec<String>, ConfigError> {
    const VAR: &str = "TAU_STREAMERS";
    let mut logins: Vec<String> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let login = item.to_ascii_lowercase();
        if !is_valid_login(&login) {
            return Err(bad(
                VAR,
                format!("{item:?} is not a Twitch login (1-25 letters, digits, _)"),
            ));
        }
        if !logins.contains(&login) {
            logins.push(login);
        }
    }
    let cap = crate::streamers::cap(transport);
    if logins.len() > cap {
        return Err(bad(VAR, crate::streamers::over_cap(transport)));
    }
    Ok(logins)
}

/// Parses `TAU_EVENTSUB_TYPES` against the catalog.
fn parse_types(value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let names: Vec<&str> = value.split(',').collect();
    match tau_eventsub::subscriptions::resolve(&names) {
        (types, unknown) if unknown.is_empty() => Ok(types),
        (_, unknown) => Err(bad(
            "TAU_EVENTSUB_TYPES",
            format!("unknown EventSub type {:?}", unknown[0]),
        )),
    }
}

impl RawConfig {
    /// Checks every value and builds the typed [`Config`].
    pub fn validate(self) -> Result<Config, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            bad(
                "TAU_LISTEN",
                format!("{:?} is not an address like 127.0.0.1:8000", self.listen),
            )
        })?;
        let database = if self.database_url.starts_with("sqlite:") {
            DatabaseKind::Sqlite
        } else if self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://")
        {
            DatabaseKind::Postgres
        } else {
            return Err(bad(
                "TAU_DATABASE_URL",
                "must start with sqlite: or postgres://",
            ));
        };
        let redis_url = non_empty(self.redis_url);
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(bad(
                    "TAU_REDIS_URL",
                    "must start with redis:// or rediss://",
                ));
            }
        }
        let instance = self.instance.trim().to_string();
        let valid_instance = instance.len() <= 63
            && instance.starts_with(|c: char| c.is_ascii_lowercase())
            && instance
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid_instance {
            return Err(bad(
                "TAU_INSTANCE",
                format!("{instance:?} must be 1-63 of a-z, 0-9, _ starting with a letter"),
            ));
        }
        let replica_id = non_empty(self.replica_id)
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let public_url = match non_empty(self.public_url) {
            Some(url) => parse_url("TAU_PUBLIC_URL", &url, &["http", "https"])?,
            None => Url::parse(&format!("http://{listen}")).expect("socket address forms a URL"),
        };
        let secret_key = non_empty(self.secret_key);
        if let Some(key) = &secret_key {
            crate::secret::SecretKey::from_hex(key)
                .map_err(|reason| bad("TAU_SECRET_KEY", reason))?;
        }
        let retention = match self.retention.trim() {
            "0" | "forever" | "" => None,
            value => Some(parse_duration("TAU_RETENTION", value)?),
        };
        let client_queue = self
            .client_queue
            .parse::<usize>()
            .ok()
            .filter(|n| (16..=1_000_000).contains(n))
            .ok_or_else(|| bad("TAU_CLIENT_QUEUE", "must be a number from 16 to 1000000"))?;
        let ws_ping_interval = parse_duration("TAU_WS_PING_INTERVAL", &self.ws_ping_interval)?;
        if ws_ping_interval < Duration::from_secs(1) {
            return Err(bad("TAU_WS_PING_INTERVAL", "must be at least 1s"));
        }
        let request_timeout = parse_duration("TAU_REQUEST_TIMEOUT", &self.request_timeout)?;
        if request_timeout < Duration::from_secs(1) {
            return Err(bad("TAU_REQUEST_TIMEOUT", "must be at least 1s"));
        }
        let cors_origins = parse_origins(self.cors_origins.as_deref().unwrap_or_default())?;
        let log_format = match self.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(bad(
                    "TAU_LOG_FORMAT",
                    format!("{other:?} is not text or json"),
                ))
            }
        };
        let transport = match self.transport.as_deref().map(str::trim) {
            None | Some("") if public_url.scheme() == "https" => Transport::Webhook,
            None | Some("") => Transport::WebSocket,
            Some("websocket") => Transport::WebSocket,
            Some("webhook") => Transport::Webhook,
            Some("conduit") => Transport::Conduit,
            Some(other) => {
                return Err(bad(
                    "TAU_TRANSPORT",
                    format!("{other:?} is not websocket, webhook or conduit"),
                ))
            }
        };
        let eventsub_types = parse_types(&self.eventsub_types)?;
        let streamers = parse_streamers(self.streamers.as_deref().unwrap_or_default(), transport)?;
        let manage_subscriptions =
            parse_bool("TAU_MANAGE_SUBSCRIPTIONS", &self.manage_subscriptions)?;
        let eventsub_types_fixed =
            parse_bool("TAU_EVENTSUB_TYPES_FIXED", &self.eventsub_types_fixed)?;
        let webhook_secret = non_empty(self.twitch_webhook_secret);
        if let Some(secret) = &webhook_secret {
            if !(10..=100).contains(&secret.len()) || !secret.is_ascii() {
                return Err(bad(
                    "TWITCH_WEBHOOK_SECRET",
                    "must be 10 to 100 ASCII characters (Twitch's rule)",
                ));
            }
        }
        let broadcaster = non_empty(self.twitch_broadcaster).map(|b| b.to_ascii_lowercase());
        if let Some(login) = &broadcaster {
            if !is_valid_login(login) {
                return Err(bad(
                    "TWITCH_BROADCASTER",
                    format!("{login:?} is not a Twitch login (1-25 letters, digits, _)"),
                ));
            }
        }
        let twitch = TwitchConfig {
            client_id: non_empty(self.twitch_client_id),
            client_secret: non_empty(self.twitch_client_secret),
            webhook_secret,
            broadcaster,
            api_url: parse_url("TWITCH_API_URL", &self.twitch_api_url, &["http", "https"])?,
            auth_url: parse_url("TWITCH_AUTH_URL", &self.twitch_auth_url, &["http", "https"])?,
            eventsub_ws_url: parse_url(
                "TWITCH_EVENTSUB_WS_URL",
                &self.twitch_eventsub_ws_url,
                &["ws", "wss"],
            )?,
        };
        let api_token = non_empty(self.api_token);
        if let Some(token) = &api_token {
            // Stored as an unsalted SHA-256 (see store::tokens): safe only
            // for a token too long to guess or look up in a dictionary.
            if token.chars().count() < MIN_SEEDED_TOKEN {
                return Err(bad(
                    "TAU_API_TOKEN",
                    format!(
                        "must be at least {MIN_SEEDED_TOKEN} characters (use `tau-relay token create` or a random value)"
                    ),
                ));
            }
        }
        let timings = crate::timings::Timings::default()
            .with_overrides(&self.timings)
            .map_err(|reason| bad("TAU_TIMINGS", reason))?;
        Ok(Config {
            timings,
            listen,
            database_url: self.database_url,
            database,
            redis_url,
            instance,
            replica_id,
            public_url,
            secret_key,
            secret_key_file: self.secret_key_file,
            api_token,
            retention,
            client_queue,
            ws_ping_interval,
            request_timeout,
            cors_origins,
            log_format,
            transport,
            eventsub_types,
            manage_subscriptions,
            eventsub_types_fixed,
            streamers,
            twitch,
        })
    }
}

impl Config {
    /// A configuration for tests: in-memory SQLite, port 0, no Twitch.
    pub fn for_tests() -> Config {
        RawConfig {
            listen: "127.0.0.1:0".into(),
            database_url: "sqlite::memory:".into(),
            redis_url: None,
            instance: "tau".into(),
            replica_id: Some("test-replica".into()),
            public_url: Some("http://127.0.0.1:8000".into()),
            secret_key: Some("00".repeat(32)),
            secret_key_file: PathBuf::from("unused.key"),
            api_token: None,
            retention: "30d".into(),
            client_queue: "1024".into(),
            ws_ping_interval: "20s".into(),
            request_timeout: "30s".into(),
            cors_origins: None,
            log_format: "text".into(),
            transport: None,
            eventsub_types: "default".into(),
            manage_subscriptions: "true".into(),
            eventsub_types_fixed: "false".into(),
            streamers: None,
            twitch_client_id: None,
            twitch_client_secret: None,
            twitch_webhook_secret: Some("test-webhook-secret".into()),
            twitch_broadcaster: None,
            twitch_api_url: "https://api.twitch.tv/helix".into(),
            twitch_auth_url: "https://id.twitch.tv/oauth2".into(),
            twitch_eventsub_ws_url: "wss://eventsub.wss.twitch.tv/ws".into(),
            timings: String::new(),
        }
        .validate()
        .expect("test config is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        raw: RawConfig,
    }

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["tau-relay"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .expect("flags parse")
            .raw
            .validate()
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8000");
        assert_eq!(config.database, DatabaseKind::Sqlite);
        assert_eq!(config.public_url.as_str(), "http://127.0.0.1:8000/");
        assert_eq!(config.retention, Some(Duration::from_secs(30 * 86400)));
        assert_eq!(config.transport, Transport::WebSocket);
        assert!(config
            .eventsub_types
            .contains(&("channel.follow".into(), "2".into())));
    }

    #[test]
    fn cors_is_closed_by_default_and_opens_per_origin() {
        assert!(parse(&[]).unwrap().cors_origins.is_empty());
        let config = parse(&[
            "--cors-origins",
            " https://Overlay.example.com/ ,http://localhost:3000",
        ])
        .unwrap();
        assert_eq!(
            config.cors_origins,
            ["https://overlay.example.com", "http://localhost:3000"]
        );
        assert_eq!(config.request_timeout, Duration::from_secs(30));
    }

    #[test]
    fn https_public_url_defaults_to_webhooks_and_types_parse() {
        let config = parse(&[
            "--public-url",
            "https://tau.example.com",
            "--eventsub-types",
            "channel-follow, stream.online@1,channel.moderate@1",
        ])
        .unwrap();
        assert_eq!(config.transport, Transport::Webhook);
        assert_eq!(
            config.eventsub_types,
            [
                ("channel.follow".to_string(), "2".to_string()),
                ("channel.moderate".into(), "1".into()),
                ("stream.online".into(), "1".into())
            ]
        );
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: &[(&[&str], &str)] = &[
            (&["--listen", "nope"], "TAU_LISTEN"),
            (&["--database-url", "mysql://x"], "TAU_DATABASE_URL"),
            (&["--public-url", "ftp://x"], "TAU_PUBLIC_URL"),
            (&["--secret-key", "abc"], "TAU_SECRET_KEY"),
            (&["--retention", "soon"], "TAU_RETENTION"),
            (&["--client-queue", "3"], "TAU_CLIENT_QUEUE"),
            (&["--request-timeout", "0s"], "TAU_REQUEST_TIMEOUT"),
            (&["--cors-origins", "*"], "TAU_CORS_ORIGINS"),
            (
                &["--cors-origins", "https://a.example/page"],
                "TAU_CORS_ORIGINS",
            ),
            (&["--cors-origins", "overlay.example"], "TAU_CORS_ORIGINS"),
            (
                &["--twitch-webhook-secret", "short"],
                "TWITCH_WEBHOOK_SECRET",
            ),
            (
                &["--twitch-broadcaster", "not a login"],
                "TWITCH_BROADCASTER",
            ),
            (
                &["--twitch-eventsub-ws-url", "http://x"],
                "TWITCH_EVENTSUB_WS_URL",
            ),
            (&["--transport", "carrier-pigeon"], "TAU_TRANSPORT"),
            (
                &["--eventsub-types", "channel.follow,channel.nope"],
                "TAU_EVENTSUB_TYPES",
            ),
            (&["--redis-url", "http://x"], "TAU_REDIS_URL"),
            (
                &["--manage-subscriptions", "maybe"],
                "TAU_MANAGE_SUBSCRIPTIONS",
            ),
            (
                &["--eventsub-types-fixed", "sometimes"],
                "TAU_EVENTSUB_TYPES_FIXED",
            ),
            (&["--instance", "Has-Dash"], "TAU_INSTANCE"),
            (&["--streamers", "fine,not a login"], "TAU_STREAMERS"),
            (&["--streamers", "a,b,c,d,e,f"], "TAU_STREAMERS"),
            (&["--timings", "lease_ttl=later"], "TAU_TIMINGS"),
            (
                &["--api-token", "tau_fleet_test_token_0123456789"],
                "TAU_API_TOKEN",
            ),
        ];
        for (args, var) in cases {
            let err = parse(args).expect_err("must be rejected");
            assert_eq!(err.var, *var, "{args:?}");
            assert!(err.to_string().starts_with(var));
        }
    }

    #[test]
    fn streamers_are_logins_lower_cased_once_within_the_transports_cap() {
        assert!(parse(&[]).unwrap().streamers.is_empty());
        let config = parse(&["--streamers", " Foo, bar_1,,foo "]).unwrap();
        assert_eq!(config.streamers, ["foo", "bar_1"]);
        let err = parse(&["--streamers", "a,b,c,d,e,f"]).unwrap_err();
        assert!(err.reason.contains("5"), "{err}");
        let six = parse(&["--transport", "webhook", "--streamers", "a,b,c,d,e,f"]).unwrap();
        assert_eq!(six.streamers.len(), 6);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = parse(&[
            "--twitch-client-secret",
            "supersecretvalue",
            "--twitch-webhook-secret",
            "webhooksecretvalue",
        ])
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("supersecretvalue"));
        assert!(!shown.contains("webhooksecretvalue"));
    }
}
