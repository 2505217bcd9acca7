//! A webhook channel's watched streamers at the (fake) Twitch: their
//! `stream.online`/`offline` subscriptions are created next to the
//! channel's own and deleted, by the ids the status recorded, when a
//! streamer leaves `spec.streamers` (Helix lists by one user id, so an
//! unwatched streamer's subscriptions are no longer listed).

use std::collections::HashSet;

use tau_fake_twitch::FakeTwitch;

use super::{fake, mock, Mock};
use crate::catalog;
use crate::fixtures::channel;
use crate::status::TwitchState;
use crate::twitch::Webhooks;

const SECRET: &str = "0123456789abcdef";

fn present(state: &TwitchState) -> Vec<(String, String)> {
    match state {
        TwitchState::Synced { present, .. } => present
            .iter()
            .map(|s| (s.kind.clone(), s.id.clone()))
            .collect(),
        other => panic!("not synced: {other:?}"),
    }
}

#[tokio::test]
async fn watched_streamers_are_subscribed_and_unsubscribed_with_the_channel() {
    let twitch = fake().await;
    let Mock { ctx, handle: _h } = mock(Some(&twitch));
    let creds = tau_twitch::Credentials {
        client_id: FakeTwitch::CLIENT_ID.into(),
        client_secret: FakeTwitch::CLIENT_SECRET.into(),
    };
    let tc = channel("a");
    let callback = crate::build::webhook_callback(&tc);
    let broadcaster = FakeTwitch::BROADCASTER_ID;
    let own = catalog::wanted(&[("channel.update".into(), "2".into())], broadcaster, "cid");
    let watched_ids = vec!["5001".to_string(), "5002".to_string()];
    let mut wanted = own.clone();
    wanted.extend(catalog::watched(&watched_ids, broadcaster));

    let known = HashSet::new();
    let webhooks = Webhooks {
        callback: &callback,
        broadcaster_id: broadcaster,
        known_ids: &known,
        watched_ids: &watched_ids,
    };
    let (state, changes) = webhooks.sync(&ctx, &creds, &wanted, SECRET).await.unwrap();
    assert_eq!(changes.created, 5, "{state:?}");
    let first = present(&state);
    assert_eq!(first.len(), 5);
    let conditions: HashSet<String> = twitch
        .subscriptions()
        .iter()
        .map(|s| {
            s.condition["broadcaster_user_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        conditions,
        HashSet::from(["5001".into(), "5002".into(), broadcaster.to_string()])
    );

    // Synced again unchanged: listed under each user id, nothing to do.
    let known: HashSet<String> = first.iter().map(|(_, id)| id.clone()).collect();
    let webhooks = Webhooks {
        known_ids: &known,
        ..webhooks
    };
    let (_, changes) = webhooks.sync(&ctx, &creds, &wanted, SECRET).await.unwrap();
    assert_eq!((changes.created, changes.deleted), (0, 0));

    // 5002 leaves the list: its two subscriptions go, by id.
    let still = vec!["5001".to_string()];
    let mut wanted = own.clone();
    wanted.extend(catalog::watched(&still, broadcaster));
    let webhooks = Webhooks {
        watched_ids: &still,
        ..webhooks
    };
    let (state, changes) = webhooks.sync(&ctx, &creds, &wanted, SECRET).await.unwrap();
    assert_eq!((changes.created, changes.deleted), (0, 2), "{state:?}");
    assert_eq!(present(&state).len(), 3);
    assert!(
        twitch
            .subscriptions()
            .iter()
            .all(|s| s.condition["broadcaster_user_id"] != "5002"),
        "{:?}",
        twitch.subscriptions()
    );

    // Deleting the channel takes the rest, the watched ones included, by
    // the ids in its status.
    let known: HashSet<String> = present(&state).into_iter().map(|(_, id)| id).collect();
    let webhooks = Webhooks {
        known_ids: &known,
        watched_ids: &[],
        ..webhooks
    };
    assert_eq!(webhooks.delete_all(&ctx, &creds).await.unwrap(), 3);
    assert!(
        twitch.subscriptions().is_empty(),
        "{:?}",
        twitch.subscriptions()
    );
}
