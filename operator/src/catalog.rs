//! Which EventSub subscriptions a channel wants, built from `spec.events`.
//!
//! Everything comes from the shared `tau-eventsub` crate (the same catalog
//! and builder the relay uses), so the operator and the relay can never
//! disagree on what `default` means or how a condition is filled. The
//! operator subscribes with the app token on behalf of the broadcaster, who
//! is also the moderator and the user in every condition. Pure: no client.

use tau_eventsub::subscriptions::{desired, Desired, Ids};

/// One subscription a channel wants at Twitch.
pub type Wanted = Desired;

/// Resolves `spec.events` to sorted, unique `(type, version)` pairs.
/// Unknown names are returned separately so status can name them.
pub fn resolve(events: &[String]) -> (Vec<(String, String)>, Vec<String>) {
    tau_eventsub::subscriptions::resolve(events)
}

/// The subscriptions for `types` on broadcaster `broadcaster_id`. Raids
/// become two subscriptions: raids in and raids out.
pub fn wanted(types: &[(String, String)], broadcaster_id: &str, client_id: &str) -> Vec<Wanted> {
    let ids = Ids {
        broadcaster_id: broadcaster_id.to_string(),
        user_id: broadcaster_id.to_string(),
        client_id: client_id.to_string(),
    };
    let (wanted, skipped) = desired(types, &ids);
    for (kind, why) in skipped {
        tracing::warn!(%kind, %why, "event type skipped");
    }
    wanted
}

/// `stream.online` and `stream.offline` for every watched streamer but the
/// broadcaster (whose own, if wanted, come from `spec.events`). These need
/// no authorization from the watched channel.
pub fn watched(streamer_ids: &[String], broadcaster_id: &str) -> Vec<Wanted> {
    let types = [
        ("stream.online".to_string(), "1".to_string()),
        ("stream.offline".to_string(), "1".to_string()),
    ];
    streamer_ids
        .iter()
        .filter(|id| *id != broadcaster_id)
        .flat_map(|id| {
            let ids = Ids {
                broadcaster_id: id.clone(),
                user_id: id.clone(),
                client_id: String::new(),
            };
            desired(&types, &ids).0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_streamer_bot_set() {
        let (types, unknown) = resolve(&["default".into()]);
        assert!(unknown.is_empty());
        assert!(types.contains(&("channel.follow".into(), "2".into())));
        assert!(types.contains(&("stream.online".into(), "1".into())));
        assert!(types.len() > 20, "{types:?}");
    }

    #[test]
    fn names_versions_and_unknowns() {
        let (types, unknown) = resolve(&[
            "channel-follow".into(),
            "stream.online@1".into(),
            "stream.online".into(),
            "no.such.type".into(),
            "stream.online@9".into(),
        ]);
        assert_eq!(
            types,
            [
                ("channel.follow".to_string(), "2".to_string()),
                ("stream.online".into(), "1".into())
            ]
        );
        assert_eq!(unknown, ["no.such.type", "stream.online@9"]);
    }

    #[test]
    fn conditions_are_filled_and_raids_go_both_ways() {
        let types = vec![
            ("channel.follow".to_string(), "2".to_string()),
            ("channel.raid".into(), "1".into()),
        ];
        let wanted = wanted(&types, "1337", "cid");
        assert_eq!(wanted.len(), 3);
        assert_eq!(wanted[0].condition["moderator_user_id"], "1337");
        assert!(wanted[1].condition.contains_key("to_broadcaster_user_id"));
        assert!(wanted[2].condition.contains_key("from_broadcaster_user_id"));
        let sub = serde_json::json!({"type": "channel.follow", "version": "2",
            "condition": {"broadcaster_user_id": "1337", "moderator_user_id": "1337"}});
        assert!(wanted[0].matches(&sub));
        assert!(!wanted[1].matches(&sub));
    }

    #[test]
    fn watched_streamers_get_online_and_offline_but_not_the_broadcaster_twice() {
        let want = watched(&["1".into(), "2".into(), "1337".into()], "1337");
        let got: Vec<_> = want
            .iter()
            .map(|w| {
                (
                    w.kind.as_str(),
                    w.condition["broadcaster_user_id"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("stream.online", "1"),
                ("stream.offline", "1"),
                ("stream.online", "2"),
                ("stream.offline", "2")
            ]
        );
    }
}
