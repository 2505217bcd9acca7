//! EventSub over WebSocket: the session loop shared by the user-token
//! transport and conduit shards.
//!
//! Why it is built this way:
//! - A socket has no acknowledgements: Twitch never resends what this
//!   relay failed to store. So the reader never waits for the store: it
//!   parses each message and queues its events in a bounded [`pipeline`]
//!   whose writer task stores them in arrival order and retries through a
//!   database outage (`socket_ingest_patience`). The reader keeps reading,
//!   so pongs keep flowing and Twitch keeps the session; the pipeline
//!   outlives any one session, so a session ending never drops an event.
//!   Anything dropped anyway is logged with its message id and counted.
//! - Silence is judged by EventSub messages only (welcome, keepalive,
//!   notification, reconnect, revocation): a peer that answers WebSocket
//!   pings but sends no keepalive is dead for EventSub's purposes.
//! - Every outbound connect is bounded (`connect_timeout`, then
//!   `welcome_timeout`), so a stalled TCP, TLS or upgrade never hangs a
//!   session while its lease keeps renewing.
//! - What a session is *for* (creating subscriptions with a user token, or
//!   being assigned to a conduit shard) is Twitch-side knowledge behind
//!   the [`Binding`] trait; this module only runs sockets.
//!
//! Files: [`session`] (connect, welcome, read loop, watchdog), [`handover`]
//! (`session_reconnect`), [`message`] (envelope parsing), [`pipeline`]
//! (buffer and ordered, retrying writer).

pub mod handover;
pub mod message;
pub mod pipeline;
pub mod session;

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use pipeline::Pipeline;
pub use session::Welcome;

use crate::{
    timings::Timings,
    twitch::{Twitch, TwitchError},
};

/// What Twitch's close codes mean, for the log.
pub fn close_reason(code: u16) -> &'static str {
    match code {
        4000 => "internal server error",
        4001 => "client sent inbound traffic",
        4002 => "client failed ping-pong",
        4003 => "connection unused (no subscription in time)",
        4004 => "reconnect grace time expired",
        4005 => "network timeout",
        4006 => "network error",
        4007 => "invalid reconnect",
        _ => "closed",
    }
}

/// What a session is for: the Twitch side of a socket (leases,
/// subscriptions, conduit shards).
pub trait Binding: Send {
    /// What the session is called in logs.
    fn name(&self) -> &'static str;

    /// Waits until this replica may open a session (authorized, lease
    /// held). `false`: shutting down.
    fn acquire(&mut self) -> BoxFuture<'_, bool>;

    /// Puts a freshly welcomed session to use, inside Twitch's window.
    fn bind<'a>(&'a mut self, welcome: &'a Welcome) -> BoxFuture<'a, Result<(), TwitchError>>;

    /// Points the binding at the session that replaced the old one after
    /// a `session_reconnect` (subscriptions carry over; shards do not).
    fn rebind<'a>(&'a mut self, welcome: &'a Welcome) -> BoxFuture<'a, Result<(), TwitchError>>;

    /// Fires when the session must end: another replica took its lease.
    fn lost(&self) -> CancellationToken;

    /// Changes when the session should end so that a new one makes its
    /// subscriptions anew (a resubscribe request); `None`: never.
    fn restart(&self) -> Option<watch::Receiver<u64>> {
        None
    }

    /// The session ended; `expire` (shutdown) gives leases up at once.
    fn release(&mut self, expire: bool) -> BoxFuture<'_, ()>;
}

/// What a socket session needs: cheap to clone, no application state.
#[derive(Clone)]
pub struct SocketIngest {
    /// EventSub WebSocket URL.
    pub url: String,
    /// Connect, welcome, keepalive slack and backoff timings.
    pub timings: Timings,
    /// Where parsed events go (outlives sessions).
    pub pipeline: Pipeline,
    /// The connection status board (`/api/v1/status`).
    pub connection: Arc<Twitch>,
    /// Fires once on shutdown.
    pub shutdown: CancellationToken,
}

/// Runs sessions one after another until shutdown: acquire, connect,
/// bind, read; after any end, back off exponentially and start over.
pub async fn run(ctx: SocketIngest, mut binding: impl Binding) {
    let mut backoff = ctx.timings.session_backoff_min;
    loop {
        if ctx.shutdown.is_cancelled() || !binding.acquire().await {
            return;
        }
        ctx.connection.update(|s| s.state = "connecting".into());
        let outcome = session::run(&ctx, &mut binding, &mut backoff).await;
        binding.release(ctx.shutdown.is_cancelled()).await;
        if ctx.shutdown.is_cancelled() {
            return;
        }
        let reason = match outcome {
            Ok(()) => "session ended".to_string(),
            Err(err) => err.to_string(),
        };
        tracing::warn!(retry_in = ?backoff, "{} session ended: {reason}", binding.name());
        ctx.connection.update(|s| {
            s.state = "backoff".into();
            s.session_id = None;
            s.last_error = Some(reason);
        });
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = next_backoff(backoff, &ctx.timings);
    }
}

/// Doubles `backoff` up to `session_backoff_max`.
fn next_backoff(backoff: Duration, timings: &Timings) -> Duration {
    (backoff * 2).min(timings.session_backoff_max)
}
