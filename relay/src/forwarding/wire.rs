//! What a webhook target receives, exactly as Twitch would send it, so an
//! existing EventSub webhook handler verifies it unchanged: Twitch's
//! headers, `sha256=` + hex HMAC-SHA256(secret, id + timestamp + body),
//! and the body `{"subscription", "event"}` (serialized by
//! [`frames::notification_body`], the socket's payload) with the event
//! byte for byte.
//!
//! Ids are derived, not random, so they survive retries and restarts: the
//! message id from (target, event) — a retried event carries the same id,
//! which is how a receiver drops the duplicate of an at-least-once
//! delivery — and the subscription id from (target, type).

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{value::RawValue, Map, Value};
use sha2::{Digest, Sha256};

use crate::{eventsub_server::frames, store::WebhookTarget};

/// Twitch's header names.
pub mod header {
    /// The message id (stable across retries).
    pub const MESSAGE_ID: &str = "Twitch-Eventsub-Message-Id";
    /// How many times this message was tried before.
    pub const MESSAGE_RETRY: &str = "Twitch-Eventsub-Message-Retry";
    /// `notification` or `webhook_callback_verification`.
    pub const MESSAGE_TYPE: &str = "Twitch-Eventsub-Message-Type";
    /// `sha256=<hex>`.
    pub const MESSAGE_SIGNATURE: &str = "Twitch-Eventsub-Message-Signature";
    /// When this attempt was sent (RFC 3339, nanoseconds).
    pub const MESSAGE_TIMESTAMP: &str = "Twitch-Eventsub-Message-Timestamp";
    /// EventSub type.
    pub const SUBSCRIPTION_TYPE: &str = "Twitch-Eventsub-Subscription-Type";
    /// Its version.
    pub const SUBSCRIPTION_VERSION: &str = "Twitch-Eventsub-Subscription-Version";
}

/// A UUID-shaped id (version 8, custom) derived from `parts`.
fn derived_id(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let bytes: [u8; 16] = hash.finalize()[..16].try_into().expect("16 bytes");
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The message id of `event_id` at `target_id`: the same on every retry.
pub fn message_id(target_id: &str, event_id: &str) -> String {
    derived_id(&["tau-forward-message", target_id, event_id])
}

/// The subscription id a target's events of `kind` carry.
pub fn subscription_id(target_id: &str, kind: &str) -> String {
    derived_id(&["tau-forward-subscription", target_id, kind])
}

/// `"sha256=" + hex(HMAC-SHA256(secret, id + timestamp + body))`.
pub fn signature(secret: &str, message_id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(message_id.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `transport` of a webhook subscription (the secret is never shown).
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct WebhookTransport {
    /// Always `webhook`.
    #[schema(example = "webhook")]
    pub method: String,
    /// The target's URL.
    pub callback: String,
}

/// Twitch's subscription object with the webhook transport.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookSubscription {
    /// Stable per target and type.
    pub id: String,
    /// `enabled`, or `webhook_callback_verification_pending` in a challenge.
    #[schema(example = "enabled")]
    pub status: String,
    /// EventSub type.
    #[serde(rename = "type")]
    #[schema(example = "channel.follow")]
    pub kind: String,
    /// Its version.
    #[schema(example = "2")]
    pub version: String,
    /// The target's condition filter.
    #[schema(value_type = Object)]
    pub condition: Map<String, Value>,
    /// Where it delivers.
    pub transport: WebhookTransport,
    /// When the target was added.
    pub created_at: String,
    /// Always 0.
    pub cost: u32,
}

impl WebhookSubscription {
    /// The subscription `target`'s events of `kind@version` are sent under.
    pub fn of(target: &WebhookTarget, kind: &str, version: &str, status: &str) -> Self {
        let created =
            chrono::DateTime::from_timestamp_micros(target.created_us).unwrap_or_default();
        WebhookSubscription {
            id: subscription_id(&target.id, kind),
            status: status.into(),
            kind: kind.into(),
            version: version.into(),
            condition: target.conditions.clone(),
            transport: WebhookTransport {
                method: "webhook".into(),
                callback: target.url.clone(),
            },
            created_at: frames::timestamp(created),
            cost: 0,
        }
    }
}

/// One message ready to send: its body is signed per attempt (the
/// timestamp changes), its id and body never do.
#[derive(Debug, Clone)]
pub struct Message {
    /// `notification` or `webhook_callback_verification`.
    pub kind: &'static str,
    /// Stable id.
    pub id: String,
    /// EventSub type and version (headers).
    pub subscription_type: String,
    /// Its version.
    pub subscription_version: String,
    /// The exact body.
    pub body: String,
}

impl Message {
    /// A notification of `event` (verbatim) for `target`.
    pub fn notification(
        target: &WebhookTarget,
        event_id: &str,
        kind: &str,
        version: &str,
        event: &RawValue,
    ) -> Message {
        let subscription = WebhookSubscription::of(target, kind, version, "enabled");
        Message {
            kind: "notification",
            id: message_id(&target.id, event_id),
            subscription_type: kind.into(),
            subscription_version: version.into(),
            body: frames::notification_body(&subscription, event),
        }
    }

    /// Twitch's `webhook_callback_verification` with a fresh `challenge`.
    pub fn challenge(subscription: &WebhookSubscription, challenge: &str) -> Message {
        #[derive(Serialize)]
        struct Body<'a> {
            challenge: &'a str,
            subscription: &'a WebhookSubscription,
        }
        Message {
            kind: "webhook_callback_verification",
            id: uuid::Uuid::new_v4().to_string(),
            subscription_type: subscription.kind.clone(),
            subscription_version: subscription.version.clone(),
            body: serde_json::to_string(&Body {
                challenge,
                subscription,
            })
            .expect("challenge serializes"),
        }
    }

    /// Twitch's headers for attempt number `retry` sent at `timestamp`.
    pub fn headers(
        &self,
        secret: &str,
        retry: u32,
        timestamp: &str,
    ) -> Vec<(&'static str, String)> {
        vec![
            (header::MESSAGE_ID, self.id.clone()),
            (header::MESSAGE_RETRY, retry.to_string()),
            (header::MESSAGE_TYPE, self.kind.to_string()),
            (
                header::MESSAGE_SIGNATURE,
                signature(secret, &self.id, timestamp, self.body.as_bytes()),
            ),
            (header::MESSAGE_TIMESTAMP, timestamp.to_string()),
            (header::SUBSCRIPTION_TYPE, self.subscription_type.clone()),
            (
                header::SUBSCRIPTION_VERSION,
                self.subscription_version.clone(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twitch's documented recipe, computed independently of [`signature`].
    #[test]
    fn signature_is_twitchs_recipe_and_ids_are_stable() {
        let sig = signature("s3cre7-s3cre7", "id-1", "2023-01-01T00:00:00Z", b"{}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cre7-s3cre7").unwrap();
        mac.update(b"id-12023-01-01T00:00:00Z{}");
        assert_eq!(
            sig,
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
        assert_eq!(message_id("t", "e"), message_id("t", "e"));
        assert_ne!(message_id("t", "e"), message_id("t2", "e"));
        assert_ne!(subscription_id("t", "a"), subscription_id("t", "b"));
        assert!(uuid::Uuid::parse_str(&message_id("t", "e")).is_ok());
    }
}
