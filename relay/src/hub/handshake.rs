//! The client's first frame: `{"token": "...", "events": [...], "since": "<id>"}`.
//!
//! `token` is the original TAU protocol; `events` and `since` are our
//! extensions that old clients never send. The token must have the role
//! the socket's route needs; an overlay token limited to some event types
//! receives only those (asking for others is refused).

use std::collections::HashSet;

use serde::Deserialize;
use uuid::Uuid;

use crate::{
    access::{needs, Role},
    catalog::Catalog,
    event::tau_event_type,
    store::{ApiToken, Store},
};

/// How long a client has to send its first frame.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Deserialize)]
struct Hello {
    token: Option<String>,
    events: Option<Vec<String>>,
    since: Option<String>,
}

/// An authenticated client's wishes.
#[derive(Debug)]
pub struct Accepted {
    /// Only these TAU types, if given.
    pub types: Option<HashSet<String>>,
    /// Resume after this stored position, if given.
    pub since_seq: Option<i64>,
    /// The token's record at the handshake (its grant is watched after).
    pub token: ApiToken,
    /// The TAU id the client resumes after: its resume point until a newer
    /// event is sent, so a 1013 close before that still names it.
    pub since_id: Option<Uuid>,
}

/// Validates the first frame. `Err` is the message sent to the client.
pub async fn accept(
    text: &str,
    store: &Store,
    catalog: &Catalog,
    need: Role,
) -> Result<Accepted, String> {
    let hello: Hello = serde_json::from_str(text)
        .map_err(|_| r#"first message must be JSON: {"token": "<TAU token>"}"#.to_string())?;
    let token = hello
        .token
        .filter(|t| !t.is_empty())
        .ok_or("missing token")?;
    let record = match store.authenticate(&token).await {
        Ok(Some(record)) if record.role.covers(need) => record,
        Ok(Some(record)) => return Err(needs(need, record.role)),
        Ok(None) => return Err("invalid token".into()),
        Err(err) => {
            tracing::error!(error = %err, "token check failed");
            return Err("server error while checking the token; try again".into());
        }
    };
    let types = match hello.events {
        None => None,
        Some(list) => {
            let mut types = HashSet::new();
            for name in list {
                let tau = tau_event_type(&name);
                if !catalog.has_tau_type(&tau) {
                    return Err(format!("unknown event type {name:?} in \"events\""));
                }
                if !record.grant().sees(&tau) {
                    return Err(format!("this token may not receive {name:?}"));
                }
                types.insert(tau);
            }
            Some(types)
        }
    };
    // A restricted token without its own list gets exactly its types.
    let types = types.or_else(|| {
        record
            .event_types
            .as_ref()
            .map(|t| t.iter().cloned().collect())
    });
    let (since_seq, since_id) = match hello.since {
        None => (None, None),
        Some(id) => {
            let uuid = Uuid::parse_str(&id)
                .map_err(|_| "\"since\" must be an event id (UUID)".to_string())?;
            match store.seq_of(uuid).await {
                Ok(Some(seq)) => (Some(seq), Some(uuid)),
                Ok(None) => {
                    return Err(format!(
                        "unknown \"since\" event {id}: never stored here, or deleted longer \
                         ago than the retention period; reconnect without \"since\""
                    ))
                }
                Err(err) => {
                    tracing::error!(error = %err, "since lookup failed");
                    return Err("server error while looking up \"since\"; try again".into());
                }
            }
        }
    };
    Ok(Accepted {
        types,
        since_seq,
        token: record,
        since_id,
    })
}
