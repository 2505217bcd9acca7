//! What every reconcile shares: the client, config, Twitch client, Event
//! recorder, metrics, and per-object backoff.
//!
//! kube's error policy is not told about successes, so the backoff state
//! lives here, keyed per object (and per reason), and reconcile resets it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use tau_twitch::{AppAuth, AppTokens, Credentials};

use crate::config::Config;
use crate::crd::TwitchChannel;
use crate::metrics::Metrics;
use crate::relay_probe::RelayProbe;

/// Exponential backoff per key: `base`, `2·base`, `4·base`, ... up to `max`.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Records one more failure of `key` and returns how long to wait.
    pub fn next(&self, key: &str, base: Duration, max: Duration) -> Duration {
        let mut failures = self.failures.lock().expect("lock");
        let n = failures.entry(key.to_string()).or_insert(0);
        let wait = base.saturating_mul(2u32.saturating_pow(*n)).min(max);
        *n = n.saturating_add(1);
        wait
    }

    /// Forgets the failures of `key`.
    pub fn reset(&self, key: &str) {
        self.failures.lock().expect("lock").remove(key);
    }
}

/// Shared state of all reconciles.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Operator configuration.
    pub config: Config,
    /// Twitch client (Helix and OAuth; every request is counted in `metrics`).
    pub twitch: tau_twitch::Client,
    /// App tokens, cached per client id.
    pub app_tokens: AppTokens,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Per-object backoff.
    pub backoff: Backoff,
    /// Reads relays' status (websocket and conduit transports).
    pub relays: RelayProbe,
}

impl Context {
    /// A context for `client` and `config`.
    pub fn new(client: Client, config: Config, metrics: Arc<Metrics>) -> Context {
        let reporter = Reporter {
            controller: crate::build::MANAGER.into(),
            instance: config.identity.clone(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            twitch: twitch_client(&config, metrics.clone()),
            app_tokens: AppTokens::default(),
            client,
            config,
            metrics,
            backoff: Backoff::default(),
            relays: RelayProbe::new(),
        }
    }

    /// Helix requests with the app token of `creds`.
    pub fn app<'a>(&'a self, creds: &'a Credentials) -> AppAuth<'a> {
        AppAuth::new(&self.app_tokens, creds)
    }

    /// Publishes an Event about `tc`; failures are logged, never fatal.
    pub async fn event(&self, tc: &TwitchChannel, warning: bool, reason: &str, note: String) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, &tc.object_ref(&())).await {
            tracing::warn!(%err, reason, "could not publish an Event");
        }
    }
}

/// The Twitch client for `config`'s base URLs, counting requests in `metrics`.
fn twitch_client(config: &Config, metrics: Arc<Metrics>) -> tau_twitch::Client {
    let observer: tau_twitch::Observer =
        Arc::new(move |method, status| metrics.helix_request(method.as_str(), status));
    tau_twitch::Client::new(
        config.twitch_api_url.clone(),
        config.twitch_auth_url.clone(),
    )
    .observed(observer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let b = Backoff::default();
        let (base, max) = (Duration::from_secs(5), Duration::from_secs(30));
        let waits: Vec<_> = (0..5).map(|_| b.next("k", base, max).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 30, 30]);
        assert_eq!(b.next("other", base, max).as_secs(), 5);
        b.reset("k");
        assert_eq!(b.next("k", base, max).as_secs(), 5);
    }
}
