//! Changing the watch list: adding (the login resolved at Twitch),
//! disabling, removing, and following `TAU_STREAMERS`.
//!
//! Rules, where the original TAU was silent:
//! - A login is what Twitch allows (`[A-Za-z0-9_]{1,25}`), kept lower case.
//! - Adding or enabling past the transport's cap is refused before Twitch
//!   is asked ([`super::over_cap`] says why and what to do).
//! - `spec` streamers (from `TAU_STREAMERS`) belong to the TwitchChannel:
//!   REST cannot delete them (its `spec.streamers` decides), but may
//!   disable and enable them, a reversible local choice that a restart
//!   keeps (e.g. to stay under the websocket cap).
//! - With `TAU_MANAGE_SUBSCRIPTIONS=false` the operator makes the
//!   subscriptions, so a streamer added here would never be subscribed:
//!   adding is refused and `spec.streamers` is the way.

use std::time::Duration;

use super::Streamers;
use crate::{
    config::is_valid_login,
    store::{Store, StoreError, Streamer, StreamerSource},
    twitch::TwitchError,
};

/// Why a change of the list was refused.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// Not a Twitch login.
    #[error("{0:?} is not a Twitch login (1-25 letters, digits, _)")]
    BadLogin(String),
    /// Twitch knows no such user.
    #[error("Twitch has no user {0:?}")]
    UnknownUser(String),
    /// The transport's cap is reached.
    #[error("{0}")]
    OverCap(String),
    /// Already on the list.
    #[error("{0:?} is already a watched streamer")]
    AlreadyWatched(String),
    /// No such streamer on the list.
    #[error("no watched streamer {0:?}")]
    NotFound(String),
    /// The TwitchChannel's `spec.streamers` owns it.
    #[error(
        "{0:?} comes from the TwitchChannel's spec.streamers (TAU_STREAMERS): \
         remove it there (it may be disabled here)"
    )]
    OwnedBySpec(String),
    /// The operator makes this relay's subscriptions.
    #[error(
        "the subscriptions are managed by the operator (TAU_MANAGE_SUBSCRIPTIONS=false): \
         add the streamer to the TwitchChannel's spec.streamers"
    )]
    ManagedElsewhere,
    /// Twitch could not be asked (not configured, down, refusing).
    #[error("cannot look {login:?} up at Twitch: {source}")]
    Twitch {
        /// The login being looked up.
        login: String,
        /// What failed.
        #[source]
        source: TwitchError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// First wait before retrying `TAU_STREAMERS` when Twitch failed.
const SYNC_RETRY: Duration = Duration::from_secs(5);
/// Longest wait between retries.
const SYNC_RETRY_MAX: Duration = Duration::from_secs(300);

impl Streamers {
    /// Every watched streamer, newest first.
    pub async fn list(&self) -> Result<Vec<Streamer>, StoreError> {
        self.store.streamers().await
    }

    /// The streamer whose TAU id or login is `key`.
    pub async fn get(&self, key: &str) -> Result<Streamer, WatchError> {
        self.store
            .streamer(key)
            .await?
            .ok_or_else(|| WatchError::NotFound(key.to_string()))
    }

    /// Refuses one more enabled streamer past the cap.
    async fn check_room(&self) -> Result<(), WatchError> {
        let (watched, _) = self.store.streamer_counts().await?;
        if watched >= self.cap() as i64 {
            return Err(WatchError::OverCap(super::over_cap(self.transport)));
        }
        Ok(())
    }

    /// Adds `login` (resolved at Twitch) as an `api` streamer.
    pub async fn add(&self, login: &str) -> Result<Streamer, WatchError> {
        let login = login.trim();
        if !is_valid_login(login) {
            return Err(WatchError::BadLogin(login.to_string()));
        }
        let login = login.to_ascii_lowercase();
        if !self.manage_subscriptions {
            return Err(WatchError::ManagedElsewhere);
        }
        if self.store.streamer(&login).await?.is_some() {
            return Err(WatchError::AlreadyWatched(login));
        }
        self.check_room().await?;
        let user = self.resolve(&login).await?;
        let added = match self
            .store
            .insert_streamer(&user.login, &user.id, StreamerSource::Api)
            .await
        {
            Err(StoreError::Duplicate(_)) => return Err(WatchError::AlreadyWatched(login)),
            other => other?,
        };
        tracing::info!(login = %added.twitch_username, twitch_id = %added.twitch_id, "watching a streamer");
        self.changed().await?;
        Ok(added)
    }

    /// Disables or enables the streamer `key`; its subscriptions follow.
    pub async fn set_disabled(&self, key: &str, disabled: bool) -> Result<Streamer, WatchError> {
        let streamer = self.get(key).await?;
        if streamer.disabled == disabled {
            return Ok(streamer);
        }
        if !disabled {
            self.check_room().await?;
        }
        let updated = self
            .store
            .set_streamer_disabled(&streamer.id, disabled)
            .await?
            .ok_or_else(|| WatchError::NotFound(key.to_string()))?;
        tracing::info!(login = %updated.twitch_username, disabled, "watched streamer changed");
        self.changed().await?;
        Ok(updated)
    }

    /// Removes the `api` streamer `key` with its streams; its subscriptions go.
    pub async fn remove(&self, key: &str) -> Result<(), WatchError> {
        let streamer = self.get(key).await?;
        if streamer.source == StreamerSource::Spec {
            return Err(WatchError::OwnedBySpec(streamer.twitch_username));
        }
        if self.store.delete_streamer(&streamer.id).await? {
            tracing::info!(login = %streamer.twitch_username, "no longer watching a streamer");
            self.changed().await?;
        }
        Ok(())
    }

    /// The Twitch user `login`, or why not.
    async fn resolve(&self, login: &str) -> Result<tau_twitch::User, WatchError> {
        self.twitch
            .helix
            .user_by_login(login, self.twitch.lookup_token())
            .await
            .map_err(|source| WatchError::Twitch {
                login: login.to_string(),
                source,
            })?
            .ok_or_else(|| WatchError::UnknownUser(login.to_string()))
    }

    /// Makes the `spec` streamers exactly `TAU_STREAMERS`: each login
    /// resolved and added (or taken over from REST), those no longer
    /// listed removed. Idempotent (replicas starting together agree);
    /// true if the list changed.
    pub async fn sync_spec(&self) -> Result<bool, WatchError> {
        let mut keep = Vec::new();
        let mut changed = false;
        for login in self.spec.iter() {
            match self.resolve(login).await {
                Ok(user) => {
                    changed |= self
                        .store
                        .upsert_spec_streamer(&user.login, &user.id)
                        .await?;
                    keep.push(user.id);
                }
                Err(WatchError::UnknownUser(_)) => {
                    tracing::warn!(
                        login,
                        "TAU_STREAMERS names a login Twitch does not know; skipped"
                    );
                }
                Err(err) => return Err(err),
            }
        }
        changed |= remove_departed(&self.store, &keep).await?;
        if changed {
            tracing::info!(streamers = ?self.spec, "watched streamers follow TAU_STREAMERS");
            self.changed().await?;
        }
        Ok(changed)
    }

    /// Runs [`Streamers::sync_spec`] until it succeeds (Twitch may be down
    /// at start), backing off, or until `shutdown`.
    pub fn spawn_spec_sync(&self, shutdown: tokio_util::sync::CancellationToken) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut wait = SYNC_RETRY;
            loop {
                match this.sync_spec().await {
                    Ok(_) => return,
                    Err(err) => {
                        tracing::warn!(error = %err, retry_in = ?wait, "following TAU_STREAMERS failed")
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(SYNC_RETRY_MAX);
            }
        });
    }
}

/// Removes the `spec` streamers whose Twitch id is not in `keep`; true if any.
async fn remove_departed(store: &Store, keep: &[String]) -> Result<bool, StoreError> {
    let mut removed = false;
    for streamer in store.streamers().await? {
        if streamer.source == StreamerSource::Spec && !keep.contains(&streamer.twitch_id) {
            tracing::info!(login = %streamer.twitch_username, "left TAU_STREAMERS: no longer watched");
            removed |= store.delete_streamer(&streamer.id).await?;
        }
    }
    Ok(removed)
}
