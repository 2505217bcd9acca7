//! The operator's one error type.
//!
//! Each variant says which dependency failed (the API server, Twitch, the
//! user's credentials Secret, ...) and carries its source. `metric_label()`
//! gives a small fixed label set for the failure counter, and
//! `retry_after()` lets the error policy honour a server's own wait (Twitch
//! rate limits) instead of the generic backoff.

use std::time::Duration;

/// Everything that can fail in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    /// The credentials Secret is missing or lacks a key.
    #[error("credentials Secret {secret}: {reason}")]
    Credentials {
        /// `namespace/name` of the Secret.
        secret: String,
        /// What is wrong, in words a person can act on.
        reason: String,
    },
    /// The request to Twitch did not get an answer.
    #[error("request to Twitch failed: {0}")]
    TwitchHttp(#[source] reqwest::Error),
    /// Twitch answered with an error status.
    #[error("Twitch answered {status} to {what}: {message}")]
    Twitch {
        /// What was asked (e.g. `POST /eventsub/subscriptions`).
        what: String,
        /// HTTP status.
        status: u16,
        /// Twitch's message.
        message: String,
    },
    /// Twitch's rate limit is used up until the given wait has passed.
    #[error("Twitch rate limit reached; retrying in {0:?}")]
    RateLimited(Duration),
    /// Twitch does not know the broadcaster login.
    #[error("Twitch has no user with login {0:?}")]
    UnknownBroadcaster(String),
    /// The spec asks for something the operator cannot do.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
}

/// Result alias of the operator.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kube(e)
    }
}

impl From<tau_twitch::Error> for Error {
    fn from(e: tau_twitch::Error) -> Self {
        use tau_twitch::Error as Twitch;
        match e {
            Twitch::Http(source) => Error::TwitchHttp(source),
            Twitch::Status {
                what,
                status,
                message,
            } => Error::Twitch {
                what,
                status,
                message,
            },
            Twitch::RateLimited { wait, .. } => Error::RateLimited(wait),
            // A 2xx Twitch did not mean, or a base URL that cannot work:
            // neither gets better by itself; shown like Twitch's own errors.
            other
            @ (Twitch::BadResponse { .. } | Twitch::BadBaseUrl(_) | Twitch::BadSegment(_)) => {
                Error::Twitch {
                    what: "Twitch API".into(),
                    status: 0,
                    message: other.to_string(),
                }
            }
        }
    }
}

impl Error {
    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Credentials { .. } => "credentials",
            Error::TwitchHttp(_) => "twitch_http",
            Error::Twitch { .. } => "twitch",
            Error::RateLimited(_) => "rate_limited",
            Error::UnknownBroadcaster(_) => "unknown_broadcaster",
            Error::InvalidSpec(_) => "invalid_spec",
        }
    }

    /// A wait the failing server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited(wait) => Some(*wait),
            _ => None,
        }
    }

    /// True when the Kubernetes API answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(s)) if s.code == 404)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_server_waits() {
        let limited = Error::RateLimited(Duration::from_secs(7));
        assert_eq!(limited.metric_label(), "rate_limited");
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            Error::InvalidSpec("x".into()).metric_label(),
            "invalid_spec"
        );
        assert_eq!(Error::InvalidSpec("x".into()).retry_after(), None);
    }
}
