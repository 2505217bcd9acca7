//! The Twitch application's client id and secret, now: the environment's
//! (`TWITCH_CLIENT_ID` / `TWITCH_CLIENT_SECRET`) if set, else the ones a
//! streamer entered in the dashboard (`PUT /api/v1/twitch/app`).
//!
//! Why a handle and not the configuration: credentials entered in the
//! browser arrive while the relay runs, on any replica. [`Credentials`] is
//! the one place that answers; every reader (tokens, Helix's client-id
//! header, OAuth links, subscription conditions, status) asks it. The
//! stored pair lives in the shared `settings` table, the secret sealed
//! with the relay's [`SecretKey`] like the user tokens. The replica that
//! stores a pair applies it at once; the others see the [`REVISION`] move
//! within [`POLL`] (see [`crate::poll`]) and read it again.
//!
//! The environment wins: while it sets both variables, storing or
//! forgetting is refused (an operator-managed relay's Secret decides).

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, OnceCell};
use tokio_util::sync::CancellationToken;

use crate::{
    config::TwitchConfig,
    poll::Revision,
    secret::SecretKey,
    store::{Store, StoreError},
};

/// A Twitch application's client id and secret (`Debug` hides the secret).
pub type AppCredentials = tau_twitch::Credentials;

/// The setting holding the dashboard's pair: JSON with the client id in
/// clear and the secret sealed.
pub const SETTING: &str = "twitch_app";
/// The setting every store or forget rewrites (see [`Revision`]).
pub const REVISION: &str = "twitch_app_revision";
/// How often each replica looks for a pair stored elsewhere ("within seconds").
pub const POLL: Duration = Duration::from_secs(2);
/// Longest client id or secret accepted (Twitch's are 30 characters).
pub const MAX_LEN: usize = 100;

/// Where the effective credentials come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `TWITCH_CLIENT_ID` / `TWITCH_CLIENT_SECRET`.
    Environment,
    /// Entered in the dashboard (`PUT /api/v1/twitch/app`).
    Dashboard,
}

/// The effective pair and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    /// Client id and secret.
    pub credentials: AppCredentials,
    /// Where they come from.
    pub source: Source,
}

/// Why a pair was not stored or forgotten.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The environment sets them; it wins.
    #[error(
        "the Twitch application is set by the environment (TWITCH_CLIENT_ID and \
         TWITCH_CLIENT_SECRET), which wins over the dashboard: change those variables instead"
    )]
    FromEnvironment,
    /// A field is empty, too long or malformed.
    #[error("{field}: {reason}")]
    Invalid {
        /// `client_id` or `client_secret`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The stored form.
#[derive(Serialize, Deserialize)]
struct Stored {
    client_id: String,
    /// The secret, sealed with the relay's key.
    client_secret: String,
}

/// Checks a pair's shape before anyone asks Twitch about it.
pub fn validate(client_id: &str, client_secret: &str) -> Result<(), CredentialsError> {
    let invalid = |field: &'static str, reason: &'static str| {
        Err(CredentialsError::Invalid { field, reason })
    };
    for (field, value) in [("client_id", client_id), ("client_secret", client_secret)] {
        if value.trim().is_empty() {
            return invalid(field, "must not be empty");
        }
        if value.chars().count() > MAX_LEN {
            return invalid(field, "must be at most 100 characters");
        }
    }
    if !client_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return invalid("client_id", "must be letters and digits only");
    }
    Ok(())
}

/// The live credentials; cheap to clone.
#[derive(Clone)]
pub struct Credentials {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    key: SecretKey,
    /// The environment's pair, when it sets both.
    environment: Option<AppCredentials>,
    tx: watch::Sender<Option<Effective>>,
    /// Set once the store was read (the first async reader waits for it).
    loaded: OnceCell<()>,
    /// Stores and forgets made anywhere in the fleet.
    revision: Revision,
    /// Serializes reads and writes of the setting on this replica.
    lock: tokio::sync::Mutex<()>,
}

impl Credentials {
    /// The environment's pair from `config`; a stored one is read on first
    /// use ([`Credentials::load`]) and by [`Credentials::spawn_poll`].
    pub fn new(config: &TwitchConfig, store: Store, key: SecretKey) -> Credentials {
        let environment = match (&config.client_id, &config.client_secret) {
            (Some(id), Some(secret)) => Some(AppCredentials {
                client_id: id.clone(),
                client_secret: secret.clone(),
            }),
            _ => None,
        };
        let tx = watch::Sender::new(environment.clone().map(|credentials| Effective {
            credentials,
            source: Source::Environment,
        }));
        Credentials {
            inner: Arc::new(Inner {
                revision: Revision::new(store.clone(), REVISION),
                store,
                key,
                environment,
                tx,
                loaded: OnceCell::new(),
                lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// What this replica knows now, without waiting for the first read of
    /// the store (for synchronous readers such as the Helix client-id
    /// header). The store is read at startup by the poll's first tick and
    /// by the first async reader ([`Credentials::load`]).
    pub fn current(&self) -> Option<AppCredentials> {
        self.inner
            .tx
            .borrow()
            .as_ref()
            .map(|e| e.credentials.clone())
    }

    /// The effective client id, now.
    pub fn client_id(&self) -> Option<String> {
        self.inner
            .tx
            .borrow()
            .as_ref()
            .map(|e| e.credentials.client_id.clone())
    }

    /// Where the effective pair comes from (`None`: not configured).
    pub fn source(&self) -> Option<Source> {
        self.inner.tx.borrow().as_ref().map(|e| e.source)
    }

    /// True when the environment sets the pair (storing is refused).
    pub fn from_environment(&self) -> bool {
        self.inner.environment.is_some()
    }

    /// The effective pair, reading the store first if it was never read.
    pub async fn load(&self) -> Option<AppCredentials> {
        self.inner
            .loaded
            .get_or_init(|| async {
                if let Err(err) = self.reload().await {
                    tracing::warn!(error = %err, "reading the stored Twitch application failed; trying again shortly");
                }
            })
            .await;
        self.current()
    }

    /// Wakes when the effective pair changes on this replica.
    pub fn watch(&self) -> watch::Receiver<Option<Effective>> {
        self.inner.tx.subscribe()
    }

    /// Waits until there is a pair; `None` on shutdown.
    pub async fn wait(&self, shutdown: &CancellationToken) -> Option<AppCredentials> {
        self.load().await;
        let mut rx = self.watch();
        tokio::select! {
            _ = shutdown.cancelled() => None,
            found = rx.wait_for(Option::is_some) => {
                found.ok().and_then(|e| e.as_ref().map(|e| e.credentials.clone()))
            }
        }
    }

    /// Reads the stored pair again; true if the effective pair changed.
    pub async fn reload(&self) -> Result<bool, StoreError> {
        let _guard = self.inner.lock.lock().await;
        if self.inner.environment.is_some() {
            return Ok(false);
        }
        let stored = self.inner.store.setting(SETTING).await?;
        let effective = stored.and_then(|value| self.open(&value));
        Ok(self.inner.tx.send_if_modified(|now| {
            let changed = *now != effective;
            *now = effective;
            changed
        }))
    }

    /// A stored value, opened (`None`, logged, if it cannot be).
    fn open(&self, value: &str) -> Option<Effective> {
        let stored: Stored = match serde_json::from_str(value) {
            Ok(stored) => stored,
            Err(err) => {
                tracing::warn!(error = %err, "the stored Twitch application is unreadable; ignoring it");
                return None;
            }
        };
        match self.inner.key.open(&stored.client_secret) {
            Ok(client_secret) => Some(Effective {
                credentials: AppCredentials {
                    client_id: stored.client_id,
                    client_secret,
                },
                source: Source::Dashboard,
            }),
            Err(err) => {
                tracing::warn!(error = %err, "the stored Twitch client secret cannot be opened; enter it again in the dashboard");
                None
            }
        }
    }

    /// Stores `credentials` (already checked with Twitch) for every replica
    /// and applies them here at once.
    pub async fn store(&self, credentials: AppCredentials) -> Result<(), CredentialsError> {
        if self.from_environment() {
            return Err(CredentialsError::FromEnvironment);
        }
        validate(&credentials.client_id, &credentials.client_secret)?;
        let _guard = self.inner.lock.lock().await;
        let stored = Stored {
            client_id: credentials.client_id.clone(),
            client_secret: self.inner.key.seal(&credentials.client_secret),
        };
        let value = serde_json::to_string(&stored).expect("credentials serialize");
        self.inner.store.set_setting(SETTING, &value).await?;
        self.inner.revision.bump().await?;
        tracing::info!(client_id = %credentials.client_id, "Twitch application stored from the dashboard");
        self.inner.tx.send_replace(Some(Effective {
            credentials,
            source: Source::Dashboard,
        }));
        Ok(())
    }

    /// Forgets the stored pair, everywhere.
    pub async fn forget(&self) -> Result<(), CredentialsError> {
        if self.from_environment() {
            return Err(CredentialsError::FromEnvironment);
        }
        let _guard = self.inner.lock.lock().await;
        self.inner.store.delete_setting(SETTING).await?;
        self.inner.revision.bump().await?;
        tracing::info!("stored Twitch application forgotten");
        self.inner.tx.send_replace(None);
        Ok(())
    }

    /// Follows pairs stored or forgotten on other replicas until `shutdown`.
    pub fn spawn_poll(&self, shutdown: CancellationToken) {
        if self.from_environment() {
            return;
        }
        let this = self.clone();
        crate::poll::spawn_every(POLL, shutdown, move || {
            let this = this.clone();
            async move {
                // The first tick learns the revision and reads the pair.
                let first = this.inner.loaded.get().is_none();
                let moved = match this.inner.revision.moved().await {
                    Ok(moved) => moved,
                    Err(err) => {
                        tracing::debug!(error = %err, "reading the Twitch application revision failed");
                        return;
                    }
                };
                if first {
                    this.load().await;
                } else if moved {
                    match this.reload().await {
                        Ok(true) => {
                            tracing::info!("another replica changed the Twitch application")
                        }
                        Ok(false) => {}
                        Err(err) => {
                            tracing::debug!(error = %err, "reading the Twitch application failed")
                        }
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(id: &str, secret: &str) -> AppCredentials {
        AppCredentials {
            client_id: id.into(),
            client_secret: secret.into(),
        }
    }

    fn config() -> TwitchConfig {
        crate::config::Config::for_tests().twitch
    }

    #[test]
    fn validation_names_the_field() {
        let field = |id: &str, secret: &str| match validate(id, secret) {
            Err(CredentialsError::Invalid { field, .. }) => Some(field),
            _ => None,
        };
        assert_eq!(field("abc123", "s3cret"), None);
        assert_eq!(field("", "s"), Some("client_id"));
        assert_eq!(field("abc", " "), Some("client_secret"));
        assert_eq!(field("ab-c", "s"), Some("client_id"));
        assert_eq!(field("a", &"x".repeat(101)), Some("client_secret"));
        assert_eq!(field(&"a".repeat(101), "s"), Some("client_id"));
    }

    #[tokio::test]
    async fn a_stored_pair_is_sealed_and_reaches_another_replica() {
        let store = Store::in_memory().await;
        let key = SecretKey::generate();
        let here = Credentials::new(&config(), store.clone(), key.clone());
        let there = Credentials::new(&config(), store.clone(), key);
        assert_eq!(here.load().await, None);
        assert_eq!(there.load().await, None);
        here.store(pair("abc123", "very-secret")).await.unwrap();
        assert_eq!(here.source(), Some(Source::Dashboard));
        let raw = store.setting(SETTING).await.unwrap().unwrap();
        assert!(
            raw.contains("abc123") && !raw.contains("very-secret"),
            "{raw}"
        );
        assert!(there.reload().await.unwrap(), "the peer sees it");
        assert_eq!(there.current(), Some(pair("abc123", "very-secret")));
        there.forget().await.unwrap();
        assert!(here.reload().await.unwrap());
        assert_eq!(here.current(), None);
    }

    #[tokio::test]
    async fn the_environment_wins() {
        let mut twitch = config();
        twitch.client_id = Some("envid".into());
        twitch.client_secret = Some("envsecret".into());
        let store = Store::in_memory().await;
        let creds = Credentials::new(&twitch, store, SecretKey::generate());
        assert_eq!(creds.source(), Some(Source::Environment));
        assert!(matches!(
            creds.store(pair("abc", "def")).await,
            Err(CredentialsError::FromEnvironment)
        ));
        assert!(matches!(
            creds.forget().await,
            Err(CredentialsError::FromEnvironment)
        ));
        assert_eq!(creds.current(), Some(pair("envid", "envsecret")));
    }
}
