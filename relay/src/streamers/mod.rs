//! Watched streamers: other channels whose going live and offline TAU
//! follows, as the original TAU's `streamers` app did.
//!
//! - The list lives in the shared store ([`crate::store::Streamer`]), so
//!   every replica and every restart sees it. Streamers come from REST
//!   (`source: api`, see [`crate::api`]'s `/api/v1/streamers`) or from
//!   `TAU_STREAMERS` (`source: spec`: the operator sets it from the
//!   TwitchChannel's `spec.streamers`); see [`watch`].
//! - Every streamer not disabled adds `stream.online` v1 and
//!   `stream.offline` v1 with condition `broadcaster_user_id = <its id>` to
//!   the wanted subscriptions of whichever transport runs, through one
//!   function ([`Streamers::add_wanted`]). The webhook and conduit
//!   reconciles then delete what a removed or disabled streamer left at
//!   Twitch (ours, no longer wanted); the WebSocket transport makes a new
//!   session with exactly the wanted set.
//! - A change takes effect without a restart on every replica: it is a
//!   fleet-wide resubscribe ([`crate::twitch::Twitch::request_fleet_resubscribe`]):
//!   this replica's transport at once, the others within seconds.
//! - Their events are ordinary events (stored, replayable, fanned out on
//!   `/ws/twitch-events/` as `stream-online` / `stream-offline`); once one
//!   is durably stored, the [`tracker`] (on the replica that ingested it)
//!   sets `streaming` and records the stream with `GET /helix/streams`.
//!
//! # Limits (never silent partial coverage)
//! Twitch's EventSub WebSocket allows a `max_total_cost` of 10 per user
//! token, and `stream.online`/`stream.offline` of a channel that has not
//! authorized the application cost 1 each: at most [`WEBSOCKET_CAP`]
//! streamers on the websocket transport. (Watching the broadcaster itself
//! costs nothing, as it authorized the app; the cap ignores that
//! subtlety.) Webhooks and conduits share the app's `max_total_cost` of
//! 10,000 with everything else it subscribes to: [`APP_CAP`] streamers
//! (2,000 cost) leaves ample room. Adding or enabling past the cap is
//! refused with a reason; a list that exceeds it anyway (a transport
//! switched to websocket) is subscribed as a whole, and Twitch's 429 shows
//! per subscription in the status.

pub mod tracker;
pub mod watch;

use std::sync::Arc;

use serde_json::Map;
use tau_eventsub::subscriptions::Desired;

use crate::{
    config::{Config, Transport},
    store::{Store, StoreError},
    twitch::Twitch,
};

pub use watch::WatchError;

/// Streamers the websocket transport can watch: Twitch's `max_total_cost`
/// of 10 per user token, at 2 (online + offline) per streamer.
pub const WEBSOCKET_CAP: usize = 5;
/// Streamers the webhook and conduit transports watch at most: 2,000 of
/// the application's `max_total_cost` of 10,000, leaving the rest for the
/// channel's own subscriptions and anything else the app runs.
pub const APP_CAP: usize = 1_000;
/// The EventSub types a watched streamer adds, at their versions.
pub const TYPES: [(&str, &str); 2] = [("stream.online", "1"), ("stream.offline", "1")];

/// How many streamers `transport` can watch.
pub fn cap(transport: Transport) -> usize {
    match transport {
        Transport::WebSocket => WEBSOCKET_CAP,
        Transport::Webhook | Transport::Conduit => APP_CAP,
    }
}

/// Why the list is full, and what to do about it.
pub fn over_cap(transport: Transport) -> String {
    match transport {
        Transport::WebSocket => format!(
            "at most {WEBSOCKET_CAP} watched streamers on the websocket transport \
             (Twitch's max_total_cost of 10 per user token, 2 per streamer); \
             disable or remove one, or use the webhook or conduit transport (up to {APP_CAP})"
        ),
        Transport::Webhook | Transport::Conduit => format!(
            "at most {APP_CAP} watched streamers on the {} transport; disable or remove one",
            if transport == Transport::Webhook {
                "webhook"
            } else {
                "conduit"
            }
        ),
    }
}

/// The subscriptions that watch `twitch_ids` (online and offline each).
pub fn subscriptions(twitch_ids: &[String]) -> Vec<Desired> {
    twitch_ids
        .iter()
        .flat_map(|id| {
            TYPES.iter().map(move |(kind, version)| {
                let mut condition = Map::new();
                condition.insert("broadcaster_user_id".into(), id.clone().into());
                Desired {
                    kind: (*kind).into(),
                    version: (*version).into(),
                    condition,
                }
            })
        })
        .collect()
}

/// The watch list's handle; cheap to clone.
#[derive(Clone)]
pub struct Streamers {
    /// Where the list lives.
    store: Store,
    /// Helix (user lookups) and the transports' resubscribe switch.
    twitch: Arc<Twitch>,
    /// `TAU_STREAMERS`.
    spec: Arc<Vec<String>>,
    /// The running transport (its cap).
    transport: Transport,
    /// False when the operator owns the webhook subscriptions.
    manage_subscriptions: bool,
    /// Follows their broadcasts (see [`tracker`]).
    tracker: tracker::Tracker,
}

impl Streamers {
    /// The list for `config`, in `store`, subscribed through `twitch`.
    pub fn new(config: &Config, store: Store, twitch: Arc<Twitch>) -> Streamers {
        Streamers {
            tracker: tracker::Tracker::spawn(store.clone(), twitch.clone()),
            store,
            twitch,
            spec: Arc::new(config.streamers.clone()),
            transport: config.transport,
            manage_subscriptions: config.manage_subscriptions,
        }
    }

    /// What ingest tells about stored stream events.
    pub fn tracker(&self) -> Arc<dyn crate::ingest::AfterStore> {
        Arc::new(self.tracker.clone())
    }

    /// `(watched, live)`: streamers not disabled, and the live ones among them.
    pub async fn counts(&self) -> Result<(i64, i64), StoreError> {
        self.store.streamer_counts().await
    }

    /// How many streamers this replica's transport can watch.
    pub fn cap(&self) -> usize {
        cap(self.transport)
    }

    /// Appends the subscriptions of every streamer not disabled to
    /// `wanted` (skipping any already there, e.g. the channel's own
    /// `stream.online` when it watches itself). The one place transports
    /// learn about watched streamers. An error fails the transport's pass:
    /// subscribing without them would delete theirs at Twitch.
    pub async fn add_wanted(&self, wanted: &mut Vec<Desired>) -> Result<(), StoreError> {
        let ids = self.store.enabled_streamer_ids().await?;
        for want in subscriptions(&ids) {
            if !wanted.contains(&want) {
                wanted.push(want);
            }
        }
        Ok(())
    }

    /// Makes a change of the list effective: this replica's transport
    /// subscribes anew now, every other replica's within seconds.
    async fn changed(&self) -> Result<(), StoreError> {
        self.twitch.request_fleet_resubscribe().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_streamer_wants_online_and_offline_on_its_id() {
        let wanted = subscriptions(&["7".into(), "8".into()]);
        let shown: Vec<_> = wanted
            .iter()
            .map(|w| {
                format!(
                    "{}@{} {}",
                    w.kind, w.version, w.condition["broadcaster_user_id"]
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                "stream.online@1 \"7\"",
                "stream.offline@1 \"7\"",
                "stream.online@1 \"8\"",
                "stream.offline@1 \"8\"",
            ]
        );
        assert_eq!(wanted[0].condition.len(), 1);
    }

    #[test]
    fn the_cap_follows_the_transport_and_says_what_to_do() {
        assert_eq!(cap(Transport::WebSocket), 5);
        assert_eq!(cap(Transport::Conduit), APP_CAP);
        let why = over_cap(Transport::WebSocket);
        assert!(
            why.contains("websocket") && why.contains("webhook or conduit"),
            "{why}"
        );
        assert!(over_cap(Transport::Webhook).contains("1000 watched streamers on the webhook"));
    }

    #[tokio::test]
    async fn wanted_gets_the_enabled_streamers_once() {
        let fake = tau_fake_twitch::FakeTwitch::start().await;
        let app = crate::twitch::test_app(&fake).await;
        let store = &app.store;
        store
            .insert_streamer("a", "7", crate::store::StreamerSource::Api)
            .await
            .unwrap();
        let off = store
            .insert_streamer("b", "8", crate::store::StreamerSource::Api)
            .await
            .unwrap();
        store.set_streamer_disabled(&off.id, true).await.unwrap();
        // The channel's own stream.online of "7" is already wanted.
        let mut wanted = subscriptions(&["7".into()])[..1].to_vec();
        app.streamers.add_wanted(&mut wanted).await.unwrap();
        assert_eq!(wanted, subscriptions(&["7".into()]));
    }
}
