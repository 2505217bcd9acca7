//! Each replica's live view of the API tokens, so revoking or demoting a
//! token closes its open sockets within a second, on every replica.
//!
//! Why polling: a socket authenticated once, at its handshake; afterwards
//! only this view can tell it that its token lost power. Every replica
//! reads one cheap value, the `api_tokens_revision` setting that every
//! token change bumps in its own transaction, once per [`POLL`], and
//! reloads the (small) token table only when it moved. The replica that
//! made the change reloads at once ([`TokenWatch::refresh`]). This needs
//! nothing but the store every replica already shares, and survives a bus
//! outage.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::sync::{watch, Mutex};
use tokio_util::sync::CancellationToken;

use crate::store::{ApiToken, Store};

/// How often each replica checks the token revision ("within a second").
pub const POLL: Duration = Duration::from_millis(500);

/// Why a socket is being closed: its token is gone, or its value was
/// rotated (the value the socket proved is no longer valid).
pub const REVOKED: &str = "token revoked";
/// Why a socket is being closed: its token's role or event types changed.
pub const CHANGED: &str = "token permissions changed; reconnect";

/// Which tokens exist, as last read from the store.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// False until the first read: nothing is judged before it.
    loaded: bool,
    /// Token id → its record.
    tokens: HashMap<String, ApiToken>,
}

/// Why a socket that authenticated as `held` must close, given the token's
/// record `now` (`None`: it no longer exists). The hint (from the hash)
/// tells a rotated value apart from the one the socket proved.
fn judge(now: Option<&ApiToken>, held: &ApiToken) -> Option<&'static str> {
    match now {
        None => Some(REVOKED),
        Some(now) if now.hint != held.hint => Some(REVOKED),
        Some(now) if now.grant() != held.grant() => Some(CHANGED),
        Some(_) => None,
    }
}

impl Snapshot {
    /// Why a socket that authenticated as `held` must close now, if it must.
    pub fn verdict(&self, held: &ApiToken) -> Option<&'static str> {
        if !self.loaded {
            return None;
        }
        judge(self.tokens.get(&held.id), held)
    }
}

/// The live view; cheap to clone.
#[derive(Clone)]
pub struct TokenWatch {
    store: Store,
    tx: Arc<watch::Sender<Arc<Snapshot>>>,
    /// The revision the current snapshot was loaded at (`None`: never loaded).
    seen: Arc<Mutex<Option<Option<String>>>>,
}

impl TokenWatch {
    /// A view of `store`'s tokens; empty until [`TokenWatch::spawn`] or
    /// [`TokenWatch::refresh`] reads them.
    pub fn new(store: Store) -> TokenWatch {
        let (tx, _) = watch::channel(Arc::new(Snapshot::default()));
        TokenWatch {
            store,
            tx: Arc::new(tx),
            seen: Arc::new(Mutex::new(None)),
        }
    }

    /// Reads the tokens now (after a change made here) and tells every socket.
    pub async fn refresh(&self) {
        let mut seen = self.seen.lock().await;
        let revision = match self.store.tokens_revision().await {
            Ok(revision) => revision,
            Err(err) => {
                tracing::warn!(error = %err, "reading the token revision failed");
                return;
            }
        };
        self.load(&mut seen, revision).await;
    }

    async fn load(&self, seen: &mut Option<Option<String>>, revision: Option<String>) {
        match self.store.list_tokens().await {
            Ok(tokens) => {
                let tokens = tokens.into_iter().map(|t| (t.id.clone(), t)).collect();
                self.tx.send_replace(Arc::new(Snapshot {
                    loaded: true,
                    tokens,
                }));
                *seen = Some(revision);
            }
            Err(err) => tracing::warn!(error = %err, "reading API tokens failed"),
        }
    }

    /// Reloads if the stored revision moved since the last load.
    async fn poll(&self) {
        let revision = match self.store.tokens_revision().await {
            Ok(revision) => revision,
            Err(err) => {
                tracing::debug!(error = %err, "reading the token revision failed");
                return;
            }
        };
        let mut seen = self.seen.lock().await;
        if seen.as_ref() != Some(&revision) {
            self.load(&mut seen, revision).await;
        }
    }

    /// Polls every [`POLL`] until `shutdown`.
    pub fn spawn(&self, shutdown: CancellationToken) {
        let this = self.clone();
        crate::poll::spawn_every(POLL, shutdown, move || {
            let this = this.clone();
            async move { this.poll().await }
        });
    }

    /// Resolves (with the close reason) once the token a socket
    /// authenticated as (`held`) is revoked, rotated or given another
    /// grant; never resolves while it stands.
    ///
    /// The watching runs in its own task: a socket polls this future only
    /// between its other work, and a store query suspended there would hold
    /// a pooled connection that the socket's own queries then wait for.
    /// Dropping the future stops the task.
    pub fn lost(
        &self,
        held: ApiToken,
    ) -> impl std::future::Future<Output = &'static str> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let this = self.clone();
        let task = tokio::spawn(async move {
            let _ = tx.send(this.watch(held).await);
        });
        let stop = AbortOnDrop(task.abort_handle());
        async move {
            let _stop = stop;
            match rx.await {
                Ok(why) => why,
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// [`TokenWatch::lost`]'s task. A snapshot older than the token (loaded
    /// before it was created) could look like a revocation, so every
    /// verdict is confirmed against the store first.
    async fn watch(&self, held: ApiToken) -> &'static str {
        let mut rx = self.tx.subscribe();
        loop {
            let verdict = rx.borrow_and_update().verdict(&held);
            if verdict.is_some() {
                match self.store.token_by_id(&held.id).await {
                    Ok(now) => {
                        if let Some(why) = judge(now.as_ref(), &held) {
                            return why;
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "confirming a token change failed"),
                }
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::access::{Grant, Role};

    #[tokio::test]
    async fn revoking_demoting_or_rotating_resolves_lost() {
        let store = Store::in_memory().await;
        let watch = TokenWatch::new(store.clone());
        let admin = Grant::role(Role::Admin);
        let mut held = Vec::new();
        for name in ["a", "b", "c", "d"] {
            held.push(store.create_token(name, &admin).await.unwrap().record);
        }
        watch.refresh().await;
        let losses: Vec<_> = held
            .iter()
            .map(|t| tokio::spawn(watch.lost(t.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(losses.iter().all(|l| !l.is_finished()));
        store.revoke_token("a").await.unwrap();
        store
            .set_grant(&held[1].id, &Grant::role(Role::Overlay))
            .await
            .unwrap();
        store.rotate_token(&held[2].id).await.unwrap();
        // The poller (not a local refresh) notices every change.
        let shutdown = CancellationToken::new();
        watch.spawn(shutdown.clone());
        let within = Duration::from_secs(1);
        let mut losses = losses.into_iter();
        for expected in [REVOKED, CHANGED, REVOKED] {
            let lost = losses.next().unwrap();
            assert_eq!(
                tokio::time::timeout(within, lost).await.unwrap().unwrap(),
                expected
            );
        }
        let untouched = losses.next().unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(!untouched.is_finished(), "d stands");
        shutdown.cancel();
    }
}
