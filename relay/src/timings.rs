//! Every timing the relay's fault handling depends on, in one typed struct.
//!
//! Lease lifetimes, keepalive slack, catch-up intervals, client patience and
//! retry budgets decide how fast TAU notices a failure and how long it holds
//! on through one. They live here (not as scattered constants) so tests can
//! inject short ones instead of sleeping through production values, and so
//! an operator can tune them with one variable, `TAU_TIMINGS`
//! (`lease_ttl=3s,lease_renew=1s`), whose mistakes name it and exit 2.

use std::time::Duration;

/// Timings with production defaults; see each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timings {
    /// Lifetime of a lease (EventSub socket holder, conduit manager, shard):
    /// a dead holder is replaced within this plus one renewal.
    pub lease_ttl: Duration,
    /// How often a holder renews its lease (and a standby retries).
    pub lease_renew: Duration,
    /// Limit on opening an outbound socket (TCP + TLS + websocket upgrade).
    pub connect_timeout: Duration,
    /// How long Twitch's `session_welcome` may take after connecting.
    pub welcome_timeout: Duration,
    /// Silence tolerated beyond Twitch's announced keepalive window.
    pub keepalive_slack: Duration,
    /// Shortest wait before a new EventSub session after a failure.
    pub session_backoff_min: Duration,
    /// Longest wait between EventSub session attempts.
    pub session_backoff_max: Duration,
    /// How long events received over a socket (no acknowledgements) are
    /// held and retried while the store is down, before being logged as lost.
    pub socket_ingest_patience: Duration,
    /// How often the sequencer checks the store for events no bus delivered.
    pub catch_up_interval: Duration,
    /// How long the sequencer waits for events missing below one it has
    /// (another replica's, usually still on their way through Redis)
    /// before reading them from the store. The catch-up read fills gaps
    /// too, so a grace beyond `catch_up_interval` changes nothing.
    pub sequencer_gap_grace: Duration,
    /// First wait after a failed store read or write that will be retried.
    pub store_retry_min: Duration,
    /// Longest wait between store retries.
    pub store_retry_max: Duration,
    /// A client write that cannot complete in this time marks the client stuck.
    pub client_write_timeout: Duration,
    /// Limit on one HTTP request to Twitch.
    pub http_timeout: Duration,
    /// How long a webhook waits for its event to be stored before answering
    /// 503 (Twitch wants an answer within a second or two, and retries; a
    /// retry of an event stored meanwhile is acknowledged as a duplicate).
    pub webhook_ack_deadline: Duration,
    /// How often chat sockets get `{"event": "keep_alive"}` (the original
    /// TAU's chat keep-alive; clients may time out without it).
    pub chat_keepalive: Duration,
    /// How long an EventSub client (`/eventsub/ws`) has after its welcome
    /// to subscribe before it is closed 4003 "connection unused" (Twitch's
    /// 10 s).
    pub eventsub_unused: Duration,
    /// First wait before retrying a webhook target's failed event (doubled
    /// per failure, with jitter).
    pub forward_backoff_min: Duration,
    /// Longest wait between a webhook target's retries.
    pub forward_backoff_max: Duration,
    /// A webhook target failing for this long without a success is paused
    /// (`failing`) until resumed by hand.
    pub forward_pause_after: Duration,
    /// Limit on one webhook delivery or challenge (Twitch's 10 s).
    pub forward_timeout: Duration,
}

impl Default for Timings {
    fn default() -> Timings {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        Timings {
            lease_ttl: s(6),
            lease_renew: s(2),
            connect_timeout: s(10),
            welcome_timeout: s(10),
            keepalive_slack: s(5),
            session_backoff_min: s(1),
            session_backoff_max: s(120),
            socket_ingest_patience: s(120),
            catch_up_interval: s(1),
            sequencer_gap_grace: ms(5),
            store_retry_min: ms(100),
            store_retry_max: s(2),
            client_write_timeout: s(10),
            http_timeout: s(15),
            webhook_ack_deadline: s(2),
            chat_keepalive: s(30),
            eventsub_unused: s(10),
            forward_backoff_min: s(1),
            forward_backoff_max: s(300),
            forward_pause_after: s(6 * 3600),
            forward_timeout: s(10),
        }
    }
}

impl Timings {
    /// Applies `key=duration` overrides separated by commas (`TAU_TIMINGS`).
    pub fn with_overrides(mut self, spec: &str) -> Result<Timings, String> {
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not key=duration"))?;
            let value = humantime::parse_duration(value.trim())
                .map_err(|e| format!("{key}: {value:?} is not a duration ({e})"))?;
            let field = match key.trim() {
                "lease_ttl" => &mut self.lease_ttl,
                "lease_renew" => &mut self.lease_renew,
                "connect_timeout" => &mut self.connect_timeout,
                "welcome_timeout" => &mut self.welcome_timeout,
                "keepalive_slack" => &mut self.keepalive_slack,
                "session_backoff_min" => &mut self.session_backoff_min,
                "session_backoff_max" => &mut self.session_backoff_max,
                "socket_ingest_patience" => &mut self.socket_ingest_patience,
                "catch_up_interval" => &mut self.catch_up_interval,
                "sequencer_gap_grace" => &mut self.sequencer_gap_grace,
                "store_retry_min" => &mut self.store_retry_min,
                "store_retry_max" => &mut self.store_retry_max,
                "client_write_timeout" => &mut self.client_write_timeout,
                "http_timeout" => &mut self.http_timeout,
                "webhook_ack_deadline" => &mut self.webhook_ack_deadline,
                "chat_keepalive" => &mut self.chat_keepalive,
                "eventsub_unused" => &mut self.eventsub_unused,
                "forward_backoff_min" => &mut self.forward_backoff_min,
                "forward_backoff_max" => &mut self.forward_backoff_max,
                "forward_pause_after" => &mut self.forward_pause_after,
                "forward_timeout" => &mut self.forward_timeout,
                other => return Err(format!("unknown timing {other:?}")),
            };
            *field = value;
        }
        if self.lease_renew * 2 > self.lease_ttl {
            return Err("lease_renew must be at most half of lease_ttl".into());
        }
        if self.store_retry_min.is_zero() || self.store_retry_min > self.store_retry_max {
            return Err("store_retry_min must be above zero and at most store_retry_max".into());
        }
        if self.session_backoff_min.is_zero() || self.session_backoff_min > self.session_backoff_max
        {
            return Err(
                "session_backoff_min must be above zero and at most session_backoff_max".into(),
            );
        }
        if self.forward_backoff_min.is_zero() || self.forward_backoff_min > self.forward_backoff_max
        {
            return Err(
                "forward_backoff_min must be above zero and at most forward_backoff_max".into(),
            );
        }
        if self.catch_up_interval.is_zero()
            || self.lease_renew.is_zero()
            || self.chat_keepalive.is_zero()
        {
            return Err(
                "catch_up_interval, lease_renew and chat_keepalive must be above zero".into(),
            );
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_mistakes_are_named() {
        let t = Timings::default()
            .with_overrides("lease_ttl=3s, lease_renew=500ms")
            .unwrap();
        assert_eq!(t.lease_ttl, Duration::from_secs(3));
        assert_eq!(t.lease_renew, Duration::from_millis(500));
        assert_eq!(t.catch_up_interval, Timings::default().catch_up_interval);
        for bad in [
            "nope",
            "lease_ttl=soon",
            "warp_speed=1s",
            "lease_renew=5s",
            "store_retry_min=0s",
        ] {
            assert!(Timings::default().with_overrides(bad).is_err(), "{bad}");
        }
    }
}
