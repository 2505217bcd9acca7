//! The user-token EventSub WebSocket transport, Twitch side.
//!
//! Twitch allows 3 connections per user token and every session needs its
//! own subscriptions, so exactly one replica holds the socket: the holder
//! of the `eventsub-websocket` lease. This binding waits for the
//! broadcaster's authorization and the lease, and creates the
//! subscriptions for each new session, after proving (fencing number)
//! that it still holds the lease. The socket itself is run by
//! [`crate::ingest::socket`].

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::{lease::HeldLease, subscriptions, TwitchError};
use crate::{
    app::AppState,
    ingest::socket::{self, Binding, Pipeline, SocketIngest, Welcome},
};

/// The lease that makes exactly one replica hold the socket.
pub const SOCKET_LEASE: &str = "eventsub-websocket";

/// The socket-side handles for `app`: URL, timings, a pipeline into the
/// store (one per transport, outliving its sessions), status, shutdown.
pub fn socket_ingest(app: &AppState) -> SocketIngest {
    let timings = app.config.timings.clone();
    SocketIngest {
        url: app.config.twitch.eventsub_ws_url.to_string(),
        pipeline: Pipeline::spawn(app.ingest(), &timings, app.shutdown.clone(), "websocket"),
        timings,
        connection: app.twitch.clone(),
        shutdown: app.shutdown.clone(),
    }
}

/// Starts the user-token WebSocket transport; it runs until shutdown.
/// Returns the token that fires once its pipeline is drained.
pub fn spawn(app: AppState) -> CancellationToken {
    let ctx = socket_ingest(&app);
    let drained = ctx.pipeline.drained();
    tokio::spawn(socket::run(ctx, UserSocket { app, lease: None }));
    drained
}

/// Binding of the user-token transport: authorization, lease, subscriptions.
struct UserSocket {
    app: AppState,
    lease: Option<HeldLease>,
}

impl UserSocket {
    /// Waits for a user token and the socket lease; `false` on shutdown.
    async fn wait_for_turn(&mut self) -> bool {
        let (app, twitch) = (&self.app, &self.app.twitch);
        let leases = app.leases();
        // Why it last said it waits: said once, again only when it changes
        // (the check repeats every lease renewal, a few seconds).
        let mut told: Option<String> = None;
        loop {
            if app.shutdown.is_cancelled() {
                return false;
            }
            if let Err(err) = twitch.tokens.user_token().await {
                let reason = err.to_string();
                twitch.update(|s| {
                    s.state = "waiting_for_authorization".into();
                    s.last_error = Some(reason.clone());
                });
                if told.as_deref() != Some(reason.as_str()) {
                    tracing::info!("EventSub WebSocket waits for authorization: {reason}");
                    told = Some(reason);
                }
                tokio::select! {
                    _ = app.shutdown.cancelled() => return false,
                    _ = twitch.authorized.notified() => {}
                    // The token lives in the shared store: another replica may receive it.
                    _ = tokio::time::sleep(leases.renew_every()) => {}
                }
                continue;
            }
            if let Some(lease) = leases.take(SOCKET_LEASE).await {
                self.lease = Some(lease);
                return true;
            }
            twitch.update(|s| {
                s.state = "standby".into();
                s.session_id = None;
                s.last_error = Some("another replica holds the EventSub socket".into());
            });
            tokio::select! {
                _ = app.shutdown.cancelled() => return false,
                _ = tokio::time::sleep(leases.renew_every()) => {}
            }
        }
    }
}

impl Binding for UserSocket {
    fn name(&self) -> &'static str {
        "EventSub WebSocket"
    }

    fn acquire(&mut self) -> BoxFuture<'_, bool> {
        Box::pin(self.wait_for_turn())
    }

    fn bind<'a>(&'a mut self, welcome: &'a Welcome) -> BoxFuture<'a, Result<(), TwitchError>> {
        Box::pin(async move {
            let lease = self
                .lease
                .as_ref()
                .ok_or_else(|| TwitchError::Socket("no EventSub socket lease held".into()))?;
            lease.verify().await?;
            subscriptions::subscribe_session(&self.app, &welcome.session_id, welcome.keepalive)
                .await
        })
    }

    fn rebind<'a>(&'a mut self, _welcome: &'a Welcome) -> BoxFuture<'a, Result<(), TwitchError>> {
        // Subscriptions carry over to the reconnect URL's session.
        Box::pin(async { Ok(()) })
    }

    fn lost(&self) -> CancellationToken {
        self.lease
            .as_ref()
            .map(|l| l.lost.clone())
            .unwrap_or_default()
    }

    fn restart(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.app.twitch.resubscribe_requests())
    }

    fn release(&mut self, expire: bool) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(lease) = self.lease.take() {
                lease.release(expire).await;
            }
            self.app.twitch.update(|s| {
                for sub in &mut s.subscriptions {
                    sub.status = "websocket_disconnected".into();
                }
            });
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tau_fake_twitch::FakeTwitch;

    use super::*;
    use crate::twitch::lease::LeaseError;

    /// A replica that lost the socket lease creates no subscriptions for
    /// its session: the fencing check refuses first.
    #[tokio::test]
    async fn a_stale_socket_holder_subscribes_nothing() {
        let fake = FakeTwitch::start().await;
        let app = crate::twitch::test_app(&fake).await;
        let lease = app.leases().take(SOCKET_LEASE).await.unwrap();
        let mut binding = UserSocket {
            app: app.clone(),
            lease: Some(lease),
        };
        app.store
            .take_over_lease(SOCKET_LEASE, "another-replica")
            .await
            .unwrap();
        let welcome = Welcome {
            session_id: "session-1".into(),
            keepalive: Duration::from_secs(10),
        };
        let err = binding.bind(&welcome).await.unwrap_err();
        assert!(
            matches!(err, TwitchError::Lease(LeaseError::Lost(_))),
            "{err}"
        );
        assert!(binding.lost().is_cancelled());
        assert!(fake.requests().is_empty(), "nothing sent to Twitch");
    }
}
