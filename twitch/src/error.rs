//! What can go wrong talking to Twitch. Each caller maps this into its own
//! error type (`From`), so the relay and the operator keep their variants
//! and metric labels.

use std::time::Duration;

/// Errors of the Twitch client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request got no answer (network, timeout, TLS).
    #[error("request to Twitch failed: {0}")]
    Http(#[from] reqwest::Error),
    /// Twitch answered with an error status.
    #[error("Twitch answered {status} to {what}: {message}")]
    Status {
        /// What was asked (e.g. `POST /eventsub/subscriptions`).
        what: String,
        /// HTTP status.
        status: u16,
        /// Twitch's message.
        message: String,
    },
    /// Twitch's rate limit is used up until `wait` has passed.
    #[error("Twitch rate limit reached on {what}; retrying in {wait:?}")]
    RateLimited {
        /// What was asked.
        what: String,
        /// How long until Twitch's bucket refills (`Ratelimit-Reset`).
        wait: Duration,
    },
    /// Twitch answered 2xx with a body that is not what its API says.
    #[error("unexpected answer from Twitch to {what}: {reason}")]
    BadResponse {
        /// What was asked.
        what: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The configured base URL cannot take a path (e.g. `mailto:`).
    #[error("Twitch base URL {0} cannot have a path")]
    BadBaseUrl(String),
    /// A path segment that no URL can carry as a name (`.` or `..`).
    #[error("{0:?} cannot be a path segment")]
    BadSegment(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status Twitch answered, if it answered one (429 for a rate limit).
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            Error::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}

/// Twitch's message in an error body: Helix says `{"error", "status",
/// "message"}`, the OAuth server `{"status", "message"}`; anything else is
/// quoted (shortened).
pub(crate) fn message_of(text: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    json["message"]
        .as_str()
        .or_else(|| json["error"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| match text.trim() {
            "" => "no message".into(),
            other => other.chars().take(200).collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_either_error_shape() {
        assert_eq!(
            message_of(r#"{"error":"Unauthorized","message":"bad"}"#),
            "bad"
        );
        assert_eq!(message_of(r#"{"error":"Unauthorized"}"#), "Unauthorized");
        assert_eq!(message_of(""), "no message");
        assert_eq!(message_of(&"x".repeat(500)).len(), 200);
    }
}
