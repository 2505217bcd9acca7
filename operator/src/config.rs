//! The operator's own configuration: flags or environment variables, typed
//! by clap at parse time (addresses, URLs, durations), so a mistake stops
//! the process at start with one message naming the variable.
//!
//! The chart sets these; the defaults for a channel's database and Redis
//! live here (the chart knows what it installed), and the Twitch base URLs
//! are here so tests point the operator at a fake Twitch.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use url::Url;

use crate::scope::Scope;

/// A namespace name as Kubernetes accepts it (an RFC 1123 label), so a typo
/// in `TAU_NAMESPACES` stops the operator at start instead of leaving it
/// waiting on a namespace that cannot exist.
fn namespace_name(value: &str) -> Result<String, String> {
    let name = value.trim();
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ends_alphanumeric = !name.starts_with('-') && !name.ends_with('-');
    if name.is_empty() {
        Err(
            "empty namespace name (a stray comma? unset TAU_NAMESPACES to serve every namespace)"
                .into(),
        )
    } else if name.len() > 63 || !valid_chars || !ends_alphanumeric {
        Err(format!(
            "`{name}` is not a namespace name (lowercase letters, digits and '-', \
             starting and ending with a letter or digit, at most 63)"
        ))
    } else {
        Ok(name.to_string())
    }
}

/// Operator settings.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of the admin server (`/metrics`, `/healthz`, `/readyz`).
    #[arg(long, env = "TAU_OPERATOR_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Namespaces whose TwitchChannels the operator serves, comma-separated
    /// (default: every namespace, which needs cluster-wide RBAC).
    #[arg(long, env = "TAU_NAMESPACES", value_delimiter = ',', value_parser = namespace_name)]
    pub namespaces: Vec<String>,
    /// Deprecated: one namespace, the same as `--namespaces <NAME>`.
    #[arg(long, env = "TAU_WATCH_NAMESPACE", value_parser = namespace_name, conflicts_with = "namespaces")]
    pub watch_namespace: Option<String>,
    /// Relay image used when a channel does not name one.
    #[arg(
        long,
        env = "TAU_RELAY_IMAGE",
        default_value = concat!("ghcr.io/tau-dev/tau:", env!("CARGO_PKG_VERSION"))
    )]
    pub relay_image: String,
    /// Secrets for pulling the relay image, comma-separated names (the
    /// chart's `imagePullSecrets`); given to every relay pod.
    #[arg(long, env = "TAU_RELAY_IMAGE_PULL_SECRETS", value_delimiter = ',')]
    pub relay_image_pull_secrets: Vec<String>,
    /// Database URL given to relays whose channel sets none (default: SQLite in the pod).
    #[arg(long, env = "TAU_DEFAULT_DATABASE_URL", hide_env_values = true)]
    pub default_database_url: Option<String>,
    /// Redis URL given to relays whose channel sets none.
    #[arg(long, env = "TAU_DEFAULT_REDIS_URL", hide_env_values = true)]
    pub default_redis_url: Option<String>,
    /// Helix base URL (also given to the relays).
    #[arg(
        long,
        env = "TWITCH_API_URL",
        default_value = "https://api.twitch.tv/helix"
    )]
    pub twitch_api_url: Url,
    /// OAuth base URL (also given to the relays).
    #[arg(
        long,
        env = "TWITCH_AUTH_URL",
        default_value = "https://id.twitch.tv/oauth2"
    )]
    pub twitch_auth_url: Url,
    /// EventSub WebSocket URL given to the relays (websocket transport).
    #[arg(
        long,
        env = "TWITCH_EVENTSUB_WS_URL",
        default_value = "wss://eventsub.wss.twitch.tv/ws"
    )]
    pub twitch_eventsub_ws_url: Url,
    /// Size of the volume claimed for a relay that keeps its state in the pod
    /// (SQLite: no database configured), so history, API tokens and the
    /// Twitch authorization survive pod restarts.
    #[arg(long, env = "TAU_RELAY_STORAGE_SIZE", default_value = "1Gi")]
    pub relay_storage_size: String,
    /// StorageClass of those claims (default: the cluster's default class).
    #[arg(long, env = "TAU_RELAY_STORAGE_CLASS")]
    pub relay_storage_class: Option<String>,
    /// Take a Lease before reconciling, so only one replica writes.
    #[arg(long, env = "TAU_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "TAU_LEASE_NAME", default_value = "tau-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// This replica's identity in the Lease and in Events.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How often a healthy channel is checked again (Twitch side and drift).
    #[arg(long, env = "TAU_RESYNC", default_value = "10m", value_parser = humantime::parse_duration)]
    pub resync: Duration,
    /// First wait after Twitch says the broadcaster has not authorized
    /// (doubles on each repeat, up to `max_backoff`).
    #[arg(long, env = "TAU_AUTH_RETRY", default_value = "60s", value_parser = humantime::parse_duration)]
    pub auth_retry: Duration,
    /// First wait before a websocket or conduit channel that is not Ready is
    /// checked again (doubles on each repeat, up to `resync`), so its status
    /// follows the relay soon after the broadcaster authorizes.
    #[arg(long, env = "TAU_RELAY_POLL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub relay_poll: Duration,
    /// First wait after a failed reconcile (doubles per failure of that object).
    #[arg(long, env = "TAU_ERROR_BACKOFF", default_value = "5s", value_parser = humantime::parse_duration)]
    pub error_backoff: Duration,
    /// Longest wait between retries of one object.
    #[arg(long, env = "TAU_MAX_BACKOFF", default_value = "10m", value_parser = humantime::parse_duration)]
    pub max_backoff: Duration,
}

impl Config {
    /// A configuration for tests: no leader election, the given Twitch URLs.
    pub fn for_tests(twitch_api_url: &str, twitch_auth_url: &str) -> Config {
        Config {
            listen: "127.0.0.1:0".parse().expect("address"),
            namespaces: Vec::new(),
            watch_namespace: None,
            relay_image: "tau-relay:test".into(),
            relay_image_pull_secrets: Vec::new(),
            default_database_url: None,
            default_redis_url: None,
            twitch_api_url: Url::parse(twitch_api_url).expect("helix url"),
            twitch_auth_url: Url::parse(twitch_auth_url).expect("oauth url"),
            twitch_eventsub_ws_url: Url::parse("ws://127.0.0.1:1/ws").expect("ws url"),
            relay_storage_size: "1Gi".into(),
            relay_storage_class: None,
            leader_election: false,
            lease_name: "tau-operator".into(),
            lease_namespace: "default".into(),
            identity: Some("test".into()),
            resync: Duration::from_secs(600),
            auth_retry: Duration::from_secs(60),
            relay_poll: Duration::from_secs(10),
            error_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
        }
    }

    /// Where the operator serves TwitchChannels: the listed namespaces (the
    /// deprecated single one counts as a list of one), else every namespace.
    pub fn scope(&self) -> Scope {
        let mut namespaces: Vec<String> = self
            .namespaces
            .iter()
            .chain(&self.watch_namespace)
            .cloned()
            .collect();
        namespaces.sort();
        namespaces.dedup();
        if namespaces.is_empty() {
            Scope::Cluster
        } else {
            Scope::Namespaces(namespaces)
        }
    }

    /// Helix base without a trailing slash.
    pub fn helix_base(&self) -> String {
        self.twitch_api_url
            .as_str()
            .trim_end_matches('/')
            .to_string()
    }

    /// EventSub WebSocket URL as given.
    pub fn eventsub_ws_url(&self) -> String {
        self.twitch_eventsub_ws_url.as_str().to_string()
    }

    /// OAuth base without a trailing slash.
    pub fn oauth_base(&self) -> String {
        self.twitch_auth_url
            .as_str()
            .trim_end_matches('/')
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn defaults_parse_and_durations_are_typed() {
        let cli = Cli::try_parse_from(["tau-operator", "--auth-retry", "2m"]).unwrap();
        assert_eq!(cli.config.auth_retry, Duration::from_secs(120));
        assert!(cli.config.leader_election);
        assert_eq!(cli.config.helix_base(), "https://api.twitch.tv/helix");
    }

    #[test]
    fn a_bad_value_is_rejected_at_parse_time() {
        assert!(Cli::try_parse_from(["tau-operator", "--resync", "soon"]).is_err());
        assert!(Cli::try_parse_from(["tau-operator", "--twitch-api-url", "nope"]).is_err());
    }

    fn scope(args: &[&str]) -> Result<Scope, clap::Error> {
        let argv = std::iter::once("tau-operator").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|cli| cli.config.scope())
    }

    fn listed(names: &[&str]) -> Scope {
        Scope::Namespaces(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn no_namespace_list_serves_the_whole_cluster() {
        assert_eq!(scope(&[]).unwrap(), Scope::Cluster);
    }

    #[test]
    fn a_namespace_list_is_comma_separated_sorted_and_distinct() {
        assert_eq!(
            scope(&["--namespaces", "b,a"]).unwrap(),
            listed(&["a", "b"])
        );
        assert_eq!(
            scope(&["--namespaces", "tau, bots,tau"]).unwrap(),
            listed(&["bots", "tau"])
        );
        assert_eq!(
            scope(&["--namespaces", "a", "--namespaces", "b"]).unwrap(),
            listed(&["a", "b"])
        );
    }

    #[test]
    fn the_deprecated_single_namespace_is_a_list_of_one() {
        assert_eq!(
            scope(&["--watch-namespace", "tau"]).unwrap(),
            listed(&["tau"])
        );
    }

    #[test]
    fn both_namespace_options_at_once_are_refused() {
        let err = scope(&["--namespaces", "a", "--watch-namespace", "b"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn a_namespace_typo_is_refused_with_its_reason() {
        for (bad, reason) in [
            ("Tau", "is not a namespace name"),
            ("tau_channels", "is not a namespace name"),
            ("tau-", "is not a namespace name"),
            ("tau,", "empty namespace name"),
            (&*"a".repeat(64), "is not a namespace name"),
        ] {
            let err = scope(&["--namespaces", bad]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
            assert!(err.to_string().contains(reason), "{bad}: {err}");
        }
        assert!(scope(&["--namespaces", &"a".repeat(63)]).is_ok());
    }
}
