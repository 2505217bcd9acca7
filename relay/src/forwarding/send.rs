//! One HTTP attempt at a target: Twitch's headers, a time limit, no
//! redirects (Twitch follows none), and at most [`MAX_READ`] bytes of the
//! answer read (a target cannot make TAU buffer an endless body). Failures
//! are described in words an operator can act on; they never contain the
//! secret or the signature, and URLs are left out of transport errors.

use std::time::Duration;

use reqwest::{redirect, Client, StatusCode};

use super::wire::Message;

/// Most bytes of an answer read (enough for a challenge and an error line).
const MAX_READ: usize = 4096;

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The target answered with a status outside 2xx.
    #[error("the target answered {status}{}", snippet(.body))]
    Status {
        /// Its status.
        status: StatusCode,
        /// The start of its body.
        body: String,
    },
    /// No answer within the time limit.
    #[error("no answer within {0:?} (timeout)")]
    Timeout(Duration),
    /// No connection (refused, unreachable, DNS, TLS).
    #[error("connection failed: {0}")]
    Connect(String),
}

fn snippet(body: &str) -> String {
    let line = body.trim();
    if line.is_empty() {
        String::new()
    } else {
        format!(": {}", line.chars().take(200).collect::<String>())
    }
}

/// Sends messages to targets; cheap to clone.
#[derive(Clone, Debug)]
pub struct Sender {
    client: Client,
    timeout: Duration,
}

/// A 2xx answer: its status and the start of its body.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// Up to [`MAX_READ`] bytes of the body, lossily decoded.
    pub body: String,
}

impl Sender {
    /// A sender whose attempts give up after `timeout`.
    pub fn new(timeout: Duration) -> Sender {
        let client = Client::builder()
            .redirect(redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent("TAU-Eventsub-Forwarder")
            .build()
            .expect("the HTTP client builds");
        Sender { client, timeout }
    }

    /// POSTs `message` to `url` signed with `secret` as attempt `retry`.
    pub async fn send(
        &self,
        url: &str,
        message: &Message,
        secret: &str,
        retry: u32,
    ) -> Result<Answer, SendError> {
        let timestamp = crate::eventsub_server::frames::timestamp(chrono::Utc::now());
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(message.body.clone());
        for (name, value) in message.headers(secret, retry, &timestamp) {
            request = request.header(name, value);
        }
        let attempt = async {
            let mut response = request.send().await.map_err(|e| self.transport(e))?;
            let status = response.status();
            let mut body = Vec::new();
            while body.len() < MAX_READ {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) => break,
                    Err(err) => return Err(self.transport(err)),
                }
            }
            body.truncate(MAX_READ);
            Ok((status, String::from_utf8_lossy(&body).into_owned()))
        };
        let (status, body) = tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| SendError::Timeout(self.timeout))??;
        if status.is_success() {
            Ok(Answer { status, body })
        } else {
            Err(SendError::Status { status, body })
        }
    }

    fn transport(&self, err: reqwest::Error) -> SendError {
        if err.is_timeout() {
            return SendError::Timeout(self.timeout);
        }
        let err = err.without_url();
        let mut text = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        SendError::Connect(text)
    }
}
