//! Which EventSub types the relay subscribes to, now: the dashboard's
//! choice (stored in the shared `settings` table, so every replica and
//! every restart sees it) or else `TAU_EVENTSUB_TYPES`.
//!
//! [`EventTypes`] is the one place that answers; every reader (the
//! transports' subscriptions, the OAuth scopes, the status) asks it
//! instead of the configuration. The replica that changes the choice
//! updates its view at once; every replica also re-reads the one setting
//! every [`POLL`] and, when it moved, asks its transport to resubscribe
//! (the same mechanism as `POST /api/v1/twitch/resubscribe`).
//!
//! With `TAU_MANAGE_SUBSCRIPTIONS=false` something else (the operator,
//! from the TwitchChannel's `spec.events`) owns the subscriptions: the
//! environment's list stands and changing it here is refused.

use std::{sync::Arc, time::Duration};

use serde::Serialize;
use tokio::sync::{watch, OnceCell};
use tokio_util::sync::CancellationToken;

use crate::{catalog::Catalog, config::Config, event::tau_event_type, store::Store};

/// The setting holding the dashboard's choice: a JSON array of
/// `type@version` strings.
pub const SETTING: &str = "eventsub_types";

/// How often each replica re-reads the stored choice ("within seconds").
pub const POLL: Duration = Duration::from_secs(2);

/// Where the effective list comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `TAU_EVENTSUB_TYPES` (no choice stored).
    Environment,
    /// Chosen in the dashboard (or `PUT /api/v1/twitch/event-types`).
    Dashboard,
    /// The operator manages the subscriptions (`TAU_MANAGE_SUBSCRIPTIONS=false`).
    Operator,
}

/// The effective list and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Sorted, unique `(type, version)` pairs.
    pub types: Arc<Vec<(String, String)>>,
    /// Where they come from.
    pub source: Source,
}

/// Why a choice was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChoiceError {
    /// Names the catalog does not know.
    #[error("unknown EventSub type{}: {}", if .0.len() == 1 { "" } else { "s" }, .0.join(", "))]
    Unknown(Vec<String>),
    /// Nothing chosen.
    #[error("choose at least one event type (or reset to TAU_EVENTSUB_TYPES)")]
    Empty,
    /// The operator owns the list.
    #[error(
        "the subscriptions are managed by the operator (TAU_MANAGE_SUBSCRIPTIONS=false): \
         the TwitchChannel's spec.events decides which event types this relay receives"
    )]
    ManagedElsewhere,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The live list; cheap to clone.
#[derive(Clone)]
pub struct EventTypes {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    environment: Arc<Vec<(String, String)>>,
    managed_elsewhere: bool,
    tx: watch::Sender<Choice>,
    /// Set once the store was read (the first reader waits for it).
    loaded: OnceCell<()>,
    /// Serializes reads and writes of the setting on this replica.
    lock: tokio::sync::Mutex<()>,
}

/// `(type, version)` as stored: `channel.follow@2`.
fn stored_name((kind, version): &(String, String)) -> String {
    format!("{kind}@{version}")
}

/// Resolves names (either spelling, `@version`, `default`) against the
/// catalog, like `TAU_EVENTSUB_TYPES`.
pub fn resolve<S: AsRef<str>>(names: &[S]) -> Result<Vec<(String, String)>, ChoiceError> {
    let (types, unknown) = tau_eventsub::subscriptions::resolve(names);
    if !unknown.is_empty() {
        return Err(ChoiceError::Unknown(unknown));
    }
    if types.is_empty() {
        return Err(ChoiceError::Empty);
    }
    Ok(types)
}

/// TAU's names for `types` (`channel-follow`), with `@version` where the
/// version is not the newest, so the list resolves back to the same pairs.
pub fn tau_names(types: &[(String, String)]) -> Vec<String> {
    let catalog = Catalog::get();
    types
        .iter()
        .map(|(kind, version)| {
            let tau = tau_event_type(kind);
            match catalog.latest(kind) {
                Some(latest) if latest.version != *version => format!("{tau}@{version}"),
                _ => tau,
            }
        })
        .collect()
}

impl EventTypes {
    /// The environment's list for `config`; the stored choice is read on
    /// first use.
    pub fn new(config: &Config, store: Store) -> EventTypes {
        let environment = Arc::new(config.eventsub_types.clone());
        let managed_elsewhere = !config.manage_subscriptions || config.eventsub_types_fixed;
        let tx = watch::Sender::new(Choice {
            types: environment.clone(),
            source: if managed_elsewhere {
                Source::Operator
            } else {
                Source::Environment
            },
        });
        EventTypes {
            inner: Arc::new(Inner {
                store,
                environment,
                managed_elsewhere,
                tx,
                loaded: OnceCell::new(),
                lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The effective choice (reads the store once, on first use).
    pub async fn choice(&self) -> Choice {
        self.inner
            .loaded
            .get_or_init(|| async {
                if let Err(err) = self.reload().await {
                    tracing::warn!(error = %err, "reading the chosen event types failed; using TAU_EVENTSUB_TYPES until the next try");
                }
            })
            .await;
        self.inner.tx.borrow().clone()
    }

    /// The effective `(type, version)` pairs.
    pub async fn current(&self) -> Arc<Vec<(String, String)>> {
        self.choice().await.types
    }

    /// Wakes when the effective choice changes on this replica.
    pub fn watch(&self) -> watch::Receiver<Choice> {
        self.inner.tx.subscribe()
    }

    /// What the stored value means (`None`: the environment's list).
    fn parse_stored(&self, value: Option<String>) -> Choice {
        let environment = Choice {
            types: self.inner.environment.clone(),
            source: Source::Environment,
        };
        let Some(value) = value else {
            return environment;
        };
        let names: Vec<String> = match serde_json::from_str(&value) {
            Ok(names) => names,
            Err(err) => {
                tracing::warn!(error = %err, "the stored event types are not a JSON list; using TAU_EVENTSUB_TYPES");
                return environment;
            }
        };
        let (types, unknown) = tau_eventsub::subscriptions::resolve(&names);
        if !unknown.is_empty() {
            tracing::warn!(
                ?unknown,
                "stored event types no longer in the catalog are ignored"
            );
        }
        if types.is_empty() {
            return environment;
        }
        Choice {
            types: Arc::new(types),
            source: Source::Dashboard,
        }
    }

    /// Reads the stored choice; true if the effective list changed.
    pub async fn reload(&self) -> Result<bool, crate::store::StoreError> {
        if self.inner.managed_elsewhere {
            return Ok(false);
        }
        let _guard = self.inner.lock.lock().await;
        let stored = self.inner.store.setting(SETTING).await?;
        let choice = self.parse_stored(stored);
        Ok(self.publish(choice))
    }

    /// Shows `choice`; true if the list (not only its source) changed.
    fn publish(&self, choice: Choice) -> bool {
        let mut changed = false;
        self.inner.tx.send_if_modified(|current| {
            if *current == choice {
                return false;
            }
            changed = current.types != choice.types;
            *current = choice;
            true
        });
        changed
    }

    /// Shows the types of the subscriptions the operator made for this
    /// relay (webhook relays it manages: their environment carries no list,
    /// so the defaults would show). Ignored unless managed elsewhere; true
    /// if the list changed.
    pub fn observed(&self, mut types: Vec<(String, String)>) -> bool {
        if !self.inner.managed_elsewhere {
            return false;
        }
        types.sort();
        types.dedup();
        let _ = self.inner.loaded.set(());
        self.publish(Choice {
            types: Arc::new(types),
            source: Source::Operator,
        })
    }

    /// Stores `names` (resolved like `TAU_EVENTSUB_TYPES`) as the choice of
    /// every replica; `Ok(true)` if the effective list changed.
    pub async fn set<S: AsRef<str>>(&self, names: &[S]) -> Result<bool, ChoiceError> {
        if self.inner.managed_elsewhere {
            return Err(ChoiceError::ManagedElsewhere);
        }
        let types = resolve(names)?;
        let value = serde_json::to_string(&types.iter().map(stored_name).collect::<Vec<_>>())
            .expect("a list of strings serializes");
        let _guard = self.inner.lock.lock().await;
        self.inner.store.set_setting(SETTING, &value).await?;
        let _ = self.inner.loaded.set(());
        Ok(self.publish(Choice {
            types: Arc::new(types),
            source: Source::Dashboard,
        }))
    }

    /// Forgets the stored choice: `TAU_EVENTSUB_TYPES` again, everywhere;
    /// `Ok(true)` if the effective list changed.
    pub async fn reset(&self) -> Result<bool, ChoiceError> {
        if self.inner.managed_elsewhere {
            return Err(ChoiceError::ManagedElsewhere);
        }
        let _guard = self.inner.lock.lock().await;
        self.inner.store.delete_setting(SETTING).await?;
        let _ = self.inner.loaded.set(());
        Ok(self.publish(Choice {
            types: self.inner.environment.clone(),
            source: Source::Environment,
        }))
    }

    /// Re-reads the stored choice every [`POLL`] until `shutdown`, calling
    /// `changed` whenever another replica changed the list.
    pub fn spawn(&self, shutdown: CancellationToken, changed: impl Fn() + Send + Sync + 'static) {
        if self.inner.managed_elsewhere {
            return;
        }
        let this = self.clone();
        let changed = Arc::new(changed);
        crate::poll::spawn_every(POLL, shutdown, move || {
            let (this, changed) = (this.clone(), changed.clone());
            async move {
                // The first read (if nobody asked yet) is not a change.
                let first = this.inner.loaded.get().is_none();
                match this.reload().await {
                    Ok(moved) => {
                        let _ = this.inner.loaded.set(());
                        if moved && !first {
                            tracing::info!(
                                types = ?tau_names(&this.inner.tx.borrow().types),
                                "the chosen event types changed; resubscribing"
                            );
                            changed();
                        }
                    }
                    Err(err) => {
                        tracing::debug!(error = %err, "reading the chosen event types failed")
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut config = Config::for_tests();
        config.eventsub_types = vec![("channel.cheer".into(), "1".into())];
        config
    }

    #[tokio::test]
    async fn a_choice_is_stored_shared_and_reset() {
        let store = Store::in_memory().await;
        let one = EventTypes::new(&config(), store.clone());
        let other = EventTypes::new(&config(), store.clone());
        assert_eq!(one.choice().await.source, Source::Environment);
        assert_eq!(
            *other.current().await,
            [("channel.cheer".to_string(), "1".to_string())]
        );

        assert!(one
            .set(&["stream-online", "channel.moderate@1"])
            .await
            .unwrap());
        let chosen = one.choice().await;
        assert_eq!(chosen.source, Source::Dashboard);
        assert_eq!(
            tau_names(&chosen.types),
            ["channel-moderate@1", "stream-online"]
        );
        // The same again changes nothing.
        assert!(!one
            .set(&["stream.online", "channel-moderate@1"])
            .await
            .unwrap());

        // Another replica sees it when it reads the store.
        assert!(other.reload().await.unwrap());
        assert_eq!(other.choice().await, chosen);
        // A fresh one (a restart) reads it on first use.
        let restarted = EventTypes::new(&config(), store.clone());
        assert_eq!(restarted.choice().await, chosen);

        assert!(one.reset().await.unwrap());
        assert_eq!(one.choice().await.source, Source::Environment);
        assert!(other.reload().await.unwrap());
        assert_eq!(other.choice().await.source, Source::Environment);
    }

    #[tokio::test]
    async fn bad_choices_are_refused_and_unknown_stored_names_ignored() {
        let store = Store::in_memory().await;
        let types = EventTypes::new(&config(), store.clone());
        let err = types
            .set(&["channel.follow", "channel.nope", "nah"])
            .await
            .unwrap_err();
        assert!(matches!(&err, ChoiceError::Unknown(u) if u == &["channel.nope", "nah"]));
        assert!(err.to_string().contains("channel.nope, nah"), "{err}");
        assert!(matches!(
            types.set::<&str>(&[]).await,
            Err(ChoiceError::Empty)
        ));
        assert!(matches!(types.set(&[" "]).await, Err(ChoiceError::Empty)));
        assert_eq!(store.setting(SETTING).await.unwrap(), None);

        // A stored name the catalog lost is skipped; nothing left: environment.
        store
            .set_setting(SETTING, r#"["channel.gone@1","stream.online@1"]"#)
            .await
            .unwrap();
        types.reload().await.unwrap();
        assert_eq!(tau_names(&types.current().await), ["stream-online"]);
        store
            .set_setting(SETTING, r#"["channel.gone@1"]"#)
            .await
            .unwrap();
        types.reload().await.unwrap();
        assert_eq!(types.choice().await.source, Source::Environment);
    }

    #[tokio::test]
    async fn the_operators_list_cannot_be_changed() {
        // Webhook: the operator subscribes. WebSocket and conduit: the relay
        // subscribes, but to the list the operator gives it (spec.events).
        for (manage_subscriptions, fixed) in [(false, false), (true, true)] {
            let mut config = config();
            config.manage_subscriptions = manage_subscriptions;
            config.eventsub_types_fixed = fixed;
            let store = Store::in_memory().await;
            store
                .set_setting(SETTING, r#"["stream.online@1"]"#)
                .await
                .unwrap();
            let types = EventTypes::new(&config, store);
            assert_eq!(types.choice().await.source, Source::Operator);
            assert_eq!(tau_names(&types.current().await), ["channel-cheer"]);
            assert!(matches!(
                types.set(&["stream.online"]).await,
                Err(ChoiceError::ManagedElsewhere)
            ));
            assert!(matches!(
                types.reset().await,
                Err(ChoiceError::ManagedElsewhere)
            ));
        }
    }
}
