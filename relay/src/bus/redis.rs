//! The Redis bus: one PUBLISH per event, whatever is queued sent as one
//! pipeline (one write, one read of the replies), one subscriber
//! connection per replica, fan-out to clients stays local.
//!
//! A replica hands its own events to its sequencer directly (so its clients
//! keep receiving during a Redis outage) and publishes them for the others;
//! it ignores its own messages coming back. Frames are
//! `replica \n seq \n id \n event_type \n payload`: the payload bytes are the
//! client frame, encoded once by the writer.

use std::{sync::Arc, time::Duration};

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{sequencer::Sequencer, Bus};
use crate::{event::EncodedEvent, hub::Hub, store::Store, timings::Timings};

/// The Redis channel of a fleet: every replica publishes to and subscribes on it.
pub fn channel(instance: &str) -> String {
    format!("{instance}:events")
}
/// Events waiting to be published; overflow is recovered from the store.
const PUBLISH_QUEUE: usize = 8192;
/// Most PUBLISH commands sent as one pipeline.
const PUBLISH_BATCH: usize = 256;
/// Wait between reconnect attempts.
const RETRY: Duration = Duration::from_millis(500);

/// The bus of a replica in a fleet.
pub struct RedisBus {
    sequencer: Sequencer,
    outbox: mpsc::Sender<Arc<EncodedEvent>>,
}

impl RedisBus {
    /// Starts the publisher and subscriber tasks.
    pub async fn start(
        url: &str,
        instance: &str,
        replica: String,
        store: Store,
        hub: Hub,
        timings: &Timings,
        shutdown: CancellationToken,
    ) -> Result<RedisBus, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let sequencer = Sequencer::start(store, hub, timings, shutdown.clone());
        let (outbox, rx) = mpsc::channel(PUBLISH_QUEUE);
        // A frozen or unreachable Redis must not hang a loop: every connect
        // and command is bounded (events it misses come from the database).
        let patience = timings.connect_timeout;
        tokio::spawn(publish_loop(
            client.clone(),
            channel(instance),
            replica.clone(),
            rx,
            patience,
            shutdown.clone(),
        ));
        tokio::spawn(subscribe_loop(
            client,
            channel(instance),
            replica,
            sequencer.clone(),
            patience,
            shutdown,
        ));
        Ok(RedisBus { sequencer, outbox })
    }
}

impl Bus for RedisBus {
    fn publish(&self, event: Arc<EncodedEvent>) {
        self.sequencer.offer(event.clone());
        if self.outbox.try_send(event).is_err() {
            tracing::warn!("Redis publish queue full; other replicas will catch up stored events from the database");
        }
    }
}

/// The error for a Redis call that did not answer in time.
fn timed_out(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::IoError,
        "Redis did not answer in time",
        what.to_string(),
    ))
}

/// Encodes a bus frame.
pub fn encode(replica: &str, event: &EncodedEvent) -> Vec<u8> {
    let seq = event.seq.map(|s| s.to_string()).unwrap_or_default();
    let id = event.id.map(|i| i.to_string()).unwrap_or_default();
    format!(
        "{replica}\n{seq}\n{id}\n{}\n{}",
        event.event_type,
        event.payload.as_str()
    )
    .into_bytes()
}

/// Decodes a bus frame: `(replica, event)`.
pub fn decode(frame: &[u8]) -> Option<(String, EncodedEvent)> {
    let text = std::str::from_utf8(frame).ok()?;
    let mut parts = text.splitn(5, '\n');
    let replica = parts.next()?.to_string();
    let seq = parts.next()?;
    let id = parts.next()?;
    let event_type = parts.next()?.to_string();
    let payload = parts.next()?;
    Some((
        replica,
        EncodedEvent {
            seq: if seq.is_empty() {
                None
            } else {
                Some(seq.parse().ok()?)
            },
            id: if id.is_empty() {
                None
            } else {
                Some(id.parse().ok()?)
            },
            event_type,
            payload: Utf8Bytes::from(payload.to_string()),
        },
    ))
}

async fn publish_loop(
    client: redis::Client,
    channel: String,
    replica: String,
    mut rx: mpsc::Receiver<Arc<EncodedEvent>>,
    patience: Duration,
    shutdown: CancellationToken,
) {
    let mut connection: Option<redis::aio::MultiplexedConnection> = None;
    let mut events = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        // Everything queued goes out together: under load one round trip
        // (and one wake-up of each subscriber) carries many events.
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            n = rx.recv_many(&mut events, PUBLISH_BATCH) => n,
        };
        if received == 0 {
            return;
        }
        if connection.is_none() {
            let connected =
                tokio::time::timeout(patience, client.get_multiplexed_async_connection()).await;
            match connected.unwrap_or_else(|_| Err(timed_out("connect"))) {
                Ok(c) => connection = Some(c),
                Err(err) => {
                    tracing::warn!(error = %err, events = events.len(), "Redis unavailable; events not published (stored events are caught up from the database)");
                    events.clear();
                    continue;
                }
            }
        }
        let published = events.len();
        let mut pipeline = redis::pipe();
        for event in events.drain(..) {
            pipeline
                .cmd("PUBLISH")
                .arg(&channel)
                .arg(encode(&replica, &event))
                .ignore();
        }
        let conn = connection.as_mut().expect("connected above");
        let sent = tokio::time::timeout(patience, pipeline.query_async::<()>(conn))
            .await
            .unwrap_or_else(|_| Err(timed_out("PUBLISH")));
        if let Err(err) = sent {
            tracing::warn!(error = %err, events = published, "Redis publish failed; reconnecting (stored events are caught up from the database)");
            connection = None;
        }
    }
}

async fn subscribe_loop(
    client: redis::Client,
    channel: String,
    replica: String,
    sequencer: Sequencer,
    patience: Duration,
    shutdown: CancellationToken,
) {
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let connected = tokio::time::timeout(patience, client.get_async_pubsub())
            .await
            .unwrap_or_else(|_| Err(timed_out("connect")));
        match connected {
            Ok(mut pubsub) => match tokio::time::timeout(patience, pubsub.subscribe(&channel))
                .await
                .unwrap_or_else(|_| Err(timed_out("SUBSCRIBE")))
            {
                Ok(()) => {
                    tracing::info!("subscribed to the Redis event bus");
                    let mut messages = pubsub.on_message();
                    loop {
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            message = messages.next() => match message {
                                Some(message) => {
                                    if let Some((from, event)) = decode(message.get_payload_bytes()) {
                                        if from != replica {
                                            sequencer.offer(Arc::new(event));
                                        }
                                    }
                                }
                                None => break,
                            },
                        }
                    }
                    tracing::warn!("Redis subscription lost; reconnecting (missed events come from the database)");
                }
                Err(err) => tracing::warn!(error = %err, "Redis SUBSCRIBE failed"),
            },
            Err(err) => tracing::debug!(error = %err, "Redis unavailable"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_and_without_positions() {
        let stored = EncodedEvent {
            seq: Some(42),
            id: Some(uuid::Uuid::new_v4()),
            event_type: "channel-follow".into(),
            payload: Utf8Bytes::from(r#"{"a":"line\nbreak"}"#),
        };
        let (replica, back) = decode(&encode("r1", &stored)).unwrap();
        assert_eq!(replica, "r1");
        assert_eq!(
            (back.seq, back.id, back.event_type.as_str()),
            (stored.seq, stored.id, "channel-follow")
        );
        assert_eq!(back.payload.as_str(), stored.payload.as_str());
        let test = EncodedEvent {
            seq: None,
            id: None,
            event_type: "x".into(),
            payload: Utf8Bytes::from("{}"),
        };
        let (_, back) = decode(&encode("r2", &test)).unwrap();
        assert_eq!((back.seq, back.id), (None, None));
        assert!(decode(b"garbage").is_none());
    }
}
