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
    access::{needs, Grant, Role},
    catalog::Catalog,
    event::tau_event_type,
    store::{ApiToken, Store},
};

/// How long a client has to send its first frame.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Deserialize)]
struct RawHello {
    token: Option<String>,
    events: Option<Vec<String>>,
    since: Option<String>,
}

/// The first frame, parsed and checked for form (nothing looked up yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The TAU token (never empty).
    pub token: String,
    /// Event types asked for, as the client named them (EventSub or TAU).
    pub events: Option<Vec<String>>,
    /// The event id to resume after.
    pub since: Option<Uuid>,
}

/// Parses the first frame. `Err` is the message sent to the client.
pub fn parse(text: &str) -> Result<Hello, String> {
    let hello: RawHello = serde_json::from_str(text)
        .map_err(|_| r#"first message must be JSON: {"token": "<TAU token>"}"#.to_string())?;
    let token = hello
        .token
        .filter(|t| !t.is_empty())
        .ok_or("missing token")?;
    let since = hello
        .since
        .map(|id| {
            Uuid::parse_str(&id).map_err(|_| "\"since\" must be an event id (UUID)".to_string())
        })
        .transpose()?;
    Ok(Hello {
        token,
        events: hello.events,
        since,
    })
}

/// The TAU types a client with `grant` receives: those it asked for (each
/// known to `catalog` and visible to the grant), else a restricted grant's
/// own list, else `None` (everything).
pub fn wanted_types(
    events: Option<Vec<String>>,
    catalog: &Catalog,
    grant: &Grant,
) -> Result<Option<HashSet<String>>, String> {
    let types = match events {
        None => None,
        Some(list) => {
            let mut types = HashSet::new();
            for name in list {
                let tau = tau_event_type(&name);
                if !catalog.has_tau_type(&tau) {
                    return Err(format!("unknown event type {name:?} in \"events\""));
                }
                if !grant.sees(&tau) {
                    return Err(format!("this token may not receive {name:?}"));
                }
                types.insert(tau);
            }
            Some(types)
        }
    };
    // A restricted token without its own list gets exactly its types.
    Ok(types.or_else(|| {
        grant
            .event_types
            .as_ref()
            .map(|t| t.iter().cloned().collect())
    }))
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
    let hello = parse(text)?;
    let token = hello.token;
    let record = match store.authenticate(&token).await {
        Ok(Some(record)) if record.role.covers(need) => record,
        Ok(Some(record)) => return Err(needs(need, record.role)),
        Ok(None) => return Err("invalid token".into()),
        Err(err) => {
            tracing::error!(error = %err, "token check failed");
            return Err("server error while checking the token; try again".into());
        }
    };
    let types = wanted_types(hello.events, catalog, &record.grant())?;
    let (since_seq, since_id) = match hello.since {
        None => (None, None),
        Some(uuid) => match store.seq_of(uuid).await {
            Ok(Some(seq)) => (Some(seq), Some(uuid)),
            Ok(None) => {
                return Err(format!(
                    "unknown \"since\" event {uuid}: never stored here, or deleted longer \
                         ago than the retention period; reconnect without \"since\""
                ))
            }
            Err(err) => {
                tracing::error!(error = %err, "since lookup failed");
                return Err("server error while looking up \"since\"; try again".into());
            }
        },
    };
    Ok(Accepted {
        types,
        since_seq,
        token: record,
        since_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_frame_is_checked_for_form() {
        let hello = parse(r#"{"token":"t","events":["channel.follow"],"since":"0190a6f2-7d3c-7c8e-8d1b-6a8f0e8b9c11"}"#)
            .unwrap();
        assert_eq!(hello.token, "t");
        assert_eq!(
            hello.events.as_deref(),
            Some(&["channel.follow".to_string()][..])
        );
        assert!(hello.since.is_some());
        assert_eq!(parse(r#"{"token":""}"#), Err("missing token".into()));
        assert!(parse("token")
            .unwrap_err()
            .starts_with("first message must be JSON"));
        assert!(parse(r#"{"token":"t","since":"42"}"#)
            .unwrap_err()
            .contains("UUID"));
    }

    #[test]
    fn a_client_gets_the_types_it_asks_for_within_its_grant() {
        let catalog = Catalog::get();
        let all = Grant::role(Role::Overlay);
        assert_eq!(wanted_types(None, catalog, &all), Ok(None));
        let asked = Some(vec!["channel.follow".to_string()]);
        assert_eq!(
            wanted_types(asked.clone(), catalog, &all),
            Ok(Some(HashSet::from(["channel-follow".to_string()])))
        );
        let raids = Grant {
            role: Role::Overlay,
            event_types: Some(vec!["channel-raid".into()]),
        };
        assert!(wanted_types(asked, catalog, &raids).is_err());
        assert_eq!(
            wanted_types(None, catalog, &raids),
            Ok(Some(HashSet::from(["channel-raid".to_string()])))
        );
        assert!(wanted_types(Some(vec!["no.such".into()]), catalog, &all).is_err());
    }
}
