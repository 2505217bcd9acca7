//! What a target is allowed to be, which events it wants, and the
//! challenge that proves a URL belongs to someone holding the secret
//! before anything is sent there (Twitch's `webhook_callback_verification`).

use serde_json::{Map, Value};

use super::{
    send::{SendError, Sender},
    wire::{Message, WebhookSubscription},
    ForwardError,
};
use crate::{
    catalog::Catalog,
    event::eventsub_type,
    eventsub_server::condition_matches,
    store::{Store, StoredRow, WebhookTarget},
};

/// Twitch's bounds on a webhook secret's length.
const SECRET_LEN: std::ops::RangeInclusive<usize> = 10..=100;
/// Bounds on a target's name.
const NAME_LEN: std::ops::RangeInclusive<usize> = 1..=100;
/// Events read per page when counting a backlog.
const BACKLOG_PAGE: i64 = 500;
/// A backlog is counted up to this many events (then shown as this).
pub const BACKLOG_CAP: i64 = 10_000;

fn invalid(field: &'static str, reason: impl Into<String>) -> ForwardError {
    ForwardError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A name: 1 to 100 characters, not only spaces.
pub fn check_name(name: &str) -> Result<(), ForwardError> {
    if !NAME_LEN.contains(&name.chars().count()) || name.trim().is_empty() {
        return Err(invalid("name", "must be 1 to 100 characters, not blank"));
    }
    Ok(())
}

/// An http(s) URL with a host.
pub fn check_url(url: &str) -> Result<(), ForwardError> {
    let parsed = url::Url::parse(url).map_err(|e| invalid("url", format!("not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("url", "must be http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("url", "must name a host"));
    }
    Ok(())
}

/// Twitch's rule: 10 to 100 ASCII characters.
pub fn check_secret(secret: &str) -> Result<(), ForwardError> {
    if !secret.is_ascii() || !SECRET_LEN.contains(&secret.len()) {
        return Err(invalid("secret", "must be 10 to 100 ASCII characters"));
    }
    Ok(())
}

/// Known EventSub types (TAU's names are accepted too), as EventSub
/// names, sorted, once each.
pub fn check_event_types(types: &[String]) -> Result<Vec<String>, ForwardError> {
    let catalog = Catalog::get();
    let mut kinds = types
        .iter()
        .map(|name| {
            catalog
                .latest(name)
                .map(|entry| entry.kind.clone())
                .ok_or_else(|| invalid("event_types", format!("unknown event type {name:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// Condition values are strings (as in Twitch's conditions).
pub fn check_conditions(conditions: &Map<String, Value>) -> Result<(), ForwardError> {
    match conditions.iter().find(|(_, v)| !v.is_string()) {
        Some((field, _)) => Err(invalid("conditions", format!("{field:?} must be a string"))),
        None => Ok(()),
    }
}

/// True if `target` forwards `row`: its type is wanted and every condition
/// field the event carries has the condition's value.
pub fn wants(target: &WebhookTarget, row: &StoredRow) -> bool {
    let kind = eventsub_type(&row.event.event_type);
    if !target.event_types.is_empty() && !target.event_types.contains(&kind) {
        return false;
    }
    if target.conditions.is_empty() {
        return true;
    }
    let event: Option<Map<String, Value>> = serde_json::from_str(row.event.event_data.get()).ok();
    condition_matches(&target.conditions, event.as_ref())
}

/// Events after the target's cursor that it wants, counted up to
/// [`BACKLOG_CAP`] events read.
pub async fn backlog(store: &Store, target: &WebhookTarget) -> Result<i64, ForwardError> {
    let (mut after, mut read, mut count) = (target.cursor, 0, 0);
    loop {
        let rows = store.events_after(after, BACKLOG_PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        read += rows.len() as i64;
        count += rows.iter().filter(|row| wants(target, row)).count() as i64;
        if (rows.len() as i64) < BACKLOG_PAGE || read >= BACKLOG_CAP {
            break;
        }
    }
    Ok(count)
}

/// Sends Twitch's challenge for `target` (its first type stands for all,
/// `*` for every type) to `url` signed with `secret`; the target must
/// answer 200 with the challenge as its body. The error says why not.
pub async fn verify(
    sender: &Sender,
    target: &WebhookTarget,
    secret: &str,
) -> Result<(), ForwardError> {
    let kind = target.event_types.first().map_or("*", String::as_str);
    let version = Catalog::get()
        .latest(kind)
        .map_or("1", |entry| entry.version.as_str());
    let subscription = WebhookSubscription::of(
        target,
        kind,
        version,
        "webhook_callback_verification_pending",
    );
    let challenge = hex::encode(rand::random::<[u8; 24]>());
    let message = Message::challenge(&subscription, &challenge);
    let failed = |why: String| ForwardError::Unverified(format!("challenge failed: {why}"));
    match sender.send(&target.url, &message, secret, 0).await {
        Ok(answer) if answer.status != reqwest::StatusCode::OK => Err(failed(format!(
            "the target answered {} (expected 200 with the challenge)",
            answer.status
        ))),
        Ok(answer) if answer.body.trim() != challenge => Err(failed(
            "the target answered 200, but its body is not the challenge (body mismatch)".into(),
        )),
        Ok(_) => Ok(()),
        Err(err @ SendError::Status { .. }) => {
            Err(failed(format!("{err} (expected 200 with the challenge)")))
        }
        Err(err) => Err(failed(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_rules_name_the_field() {
        assert!(check_url("https://example.com/hook").is_ok());
        assert!(check_url("http://127.0.0.1:9/x").is_ok());
        for bad in ["ftp://example.com", "not a url", "http://"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_secret("0123456789").is_ok());
        assert!(check_secret("short").is_err());
        assert!(check_secret(&"x".repeat(101)).is_err());
        assert!(check_secret("ünicode-secret").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("   ").is_err());
        assert_eq!(
            check_event_types(&["channel-follow".into(), "channel.follow".into()]).unwrap(),
            ["channel.follow"]
        );
        let err = check_event_types(&["channel.nope".into()]).unwrap_err();
        assert!(err.to_string().contains("event_types"), "{err}");
    }
}
