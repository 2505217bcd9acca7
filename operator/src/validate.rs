//! Spec checks the API server cannot make: they depend on the operator's
//! defaults (is there a shared database?) or on several fields at once.
//!
//! A channel that fails them gets `Ready=False` with reason `InvalidSpec`
//! and a message saying what to change; its existing children are left
//! alone (a bad edit never tears down a running relay) and nothing new is
//! created at Twitch. The CEL rules in [`crate::crd`] cover single fields.

use crate::build::keeps_state_in_pod;
use crate::config::Config;
use crate::crd::{TransportMode, TwitchChannel};

/// Watched streamers one EventSub WebSocket user token can afford:
/// Twitch's `max_total_cost` is 10 and `stream.online` plus
/// `stream.offline` of a channel that did not authorize the app cost 1 each.
pub const MAX_WEBSOCKET_STREAMERS: usize = 5;

/// Every problem with `tc` under `config`, in words a person can act on;
/// empty when the spec can be served.
pub fn problems(tc: &TwitchChannel, config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let spec = &tc.spec;
    if spec.database_url.is_some() && spec.database_url_secret.is_some() {
        problems.push("set databaseUrl or databaseUrlSecret, not both".to_string());
    }
    if spec.redis_url.is_some() && spec.redis_url_secret.is_some() {
        problems.push("set redisUrl or redisUrlSecret, not both".to_string());
    }
    let in_pod = keeps_state_in_pod(tc, config);
    let replicas = tc.spec.relay.replicas;
    if replicas > 1 && in_pod {
        problems.push(format!(
            "relay.replicas is {replicas} but the relay keeps its state in an SQLite file in its pod: \
             set spec.databaseUrl (or install the chart with postgres.enabled) so the replicas share one database, \
             or set relay.replicas to 1"
        ));
    }
    let transport = tc.effective_transport();
    if transport == TransportMode::Conduit && in_pod {
        problems.push(
            "transport conduit needs a shared database (the conduit and its shards belong to the fleet): \
             set spec.databaseUrl or install the chart with postgres.enabled"
                .into(),
        );
    }
    let streamers = tc.spec.streamers.len();
    if transport == TransportMode::Websocket && streamers > MAX_WEBSOCKET_STREAMERS {
        problems.push(format!(
            "spec.streamers lists {streamers} channels but transport websocket can watch at most \
             {MAX_WEBSOCKET_STREAMERS} (Twitch's EventSub WebSocket cost limit is 10 and each watched \
             channel costs 2): use transport webhook or conduit, or watch fewer"
        ));
    }
    if transport == TransportMode::Webhook {
        if let Some(url) = tc.spec.public_url.as_deref() {
            if !url.starts_with("https://") {
                problems.push(format!(
                    "transport webhook needs an https publicUrl (Twitch calls only https callbacks); got {url}"
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::channel;

    fn config() -> Config {
        Config::for_tests("http://127.0.0.1:1/helix", "http://127.0.0.1:1/oauth2")
    }

    #[test]
    fn the_example_channel_is_valid() {
        assert_eq!(problems(&channel("a"), &config()), Vec::<String>::new());
    }

    #[test]
    fn replicas_need_a_shared_database() {
        let mut tc = channel("a");
        tc.spec.relay.replicas = 3;
        let found = problems(&tc, &config());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("relay.replicas is 3"), "{found:?}");
        assert!(found[0].contains("spec.databaseUrl"), "{found:?}");

        tc.spec.database_url = Some("postgres://db/tau".into());
        assert!(problems(&tc, &config()).is_empty());
        tc.spec.database_url = None;
        let mut shared = config();
        shared.default_database_url = Some("postgres://chart/tau".into());
        assert!(
            problems(&tc, &shared).is_empty(),
            "the chart's database counts"
        );
    }

    #[test]
    fn a_url_comes_from_one_place() {
        let mut tc = channel("a");
        tc.spec.database_url = Some("postgres://db/tau".into());
        tc.spec.database_url_secret = Some(crate::crd::SecretKeyRef {
            name: "db".into(),
            key: "url".into(),
        });
        let found = problems(&tc, &config());
        assert!(
            found.len() == 1 && found[0].contains("not both"),
            "{found:?}"
        );
        tc.spec.database_url = None;
        tc.spec.relay.replicas = 3;
        assert!(
            problems(&tc, &config()).is_empty(),
            "a database from a Secret is shared"
        );
    }

    #[test]
    fn conduit_needs_a_shared_database() {
        let mut tc = channel("a");
        tc.spec.transport = TransportMode::Conduit;
        let found = problems(&tc, &config());
        assert!(
            found.len() == 1 && found[0].contains("conduit"),
            "{found:?}"
        );
        tc.spec.database_url = Some("postgres://db/tau".into());
        assert!(problems(&tc, &config()).is_empty());
    }

    #[test]
    fn webhook_needs_an_https_public_url() {
        let mut tc = channel("a");
        tc.spec.transport = TransportMode::Webhook;
        tc.spec.public_url = Some("http://tau.example.com".into());
        let found = problems(&tc, &config());
        assert!(found.len() == 1 && found[0].contains("https"), "{found:?}");
        tc.spec.public_url = Some("https://tau.example.com".into());
        assert!(problems(&tc, &config()).is_empty());
        tc.spec.transport = TransportMode::Websocket;
        tc.spec.public_url = Some("http://localhost:8000".into());
        assert!(
            problems(&tc, &config()).is_empty(),
            "a websocket channel's OAuth redirect may be http (port-forward)"
        );
    }

    #[test]
    fn the_websocket_transport_watches_at_most_five_streamers() {
        let mut tc = channel("a");
        tc.spec.transport = TransportMode::Websocket;
        tc.spec.streamers = (0..5).map(|i| format!("s{i}")).collect();
        assert!(problems(&tc, &config()).is_empty());
        tc.spec.streamers.push("s5".into());
        let found = problems(&tc, &config());
        assert!(
            found.len() == 1
                && found[0].contains("at most 5")
                && found[0].contains("webhook or conduit"),
            "{found:?}"
        );
        tc.spec.transport = TransportMode::Webhook;
        assert!(problems(&tc, &config()).is_empty(), "webhook has room");
    }
}
