//! One EventSub WebSocket session: connect → welcome → bind → read.
//!
//! The read loop never waits for the store (events go to the pipeline), so
//! it keeps answering Twitch's pings. Its watchdog counts only EventSub
//! messages: the session is dead once none arrived for the announced
//! keepalive window plus `keepalive_slack`, however many pings did.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::{net::TcpStream, time::Instant};
use tokio_tungstenite::{
    tungstenite::{protocol::WebSocketConfig, Message},
    MaybeTlsStream, WebSocketStream,
};

use super::{
    close_reason, handover,
    message::{self, Incoming},
    pipeline::Item,
    Binding, SocketIngest,
};
use crate::{timings::Timings, twitch::TwitchError};

/// An EventSub WebSocket connection.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest message accepted (Twitch's are a few KiB).
const MAX_MESSAGE: usize = 1024 * 1024;
/// After this side sends Close: how long it keeps reading for Twitch's.
const CLOSE_DRAIN: Duration = Duration::from_secs(2);

/// What `session_welcome` said.
#[derive(Debug, Clone)]
pub struct Welcome {
    /// Session id (subscriptions and shards point at it).
    pub session_id: String,
    /// Twitch's keepalive window.
    pub keepalive: Duration,
}

fn socket_error(message: impl Into<String>) -> TwitchError {
    TwitchError::Socket(message.into())
}

/// Opens `url` within `connect_timeout` (TCP, TLS and upgrade together).
pub async fn connect(url: &str, timings: &Timings) -> Result<Socket, TwitchError> {
    let config = WebSocketConfig::default()
        .read_buffer_size(64 * 1024)
        .max_message_size(Some(MAX_MESSAGE));
    let opening = tokio_tungstenite::connect_async_with_config(url, Some(config), false);
    match tokio::time::timeout(timings.connect_timeout, opening).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(socket_error(format!("connect to {url}: {e}"))),
        Err(_) => Err(socket_error(format!(
            "connect to {url}: no answer within {:?}",
            timings.connect_timeout
        ))),
    }
}

/// Waits for `session_welcome` (up to `welcome_timeout`).
pub async fn read_welcome(socket: &mut Socket, timings: &Timings) -> Result<Welcome, TwitchError> {
    let deadline = Instant::now() + timings.welcome_timeout;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .map_err(|_| {
                socket_error(format!("no welcome within {:?}", timings.welcome_timeout))
            })?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                if let Ok(Incoming::Welcome {
                    session_id,
                    keepalive,
                }) = message::parse(&text)
                {
                    return Ok(Welcome {
                        session_id,
                        keepalive,
                    });
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                return Err(socket_error(format!(
                    "closed before welcome: {code} {}",
                    close_reason(code)
                )));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(socket_error(e.to_string())),
            None => return Err(socket_error("closed before welcome")),
        }
    }
}

/// Connects and reads the welcome.
pub async fn open(url: &str, timings: &Timings) -> Result<(Socket, Welcome), TwitchError> {
    let mut socket = connect(url, timings).await?;
    let welcome = read_welcome(&mut socket, timings).await?;
    Ok((socket, welcome))
}

/// Ends a session from this side as RFC 6455 has it: sends Close, then
/// keeps reading until Twitch's Close (or the connection ends), for at most
/// [`CLOSE_DRAIN`]. Notifications Twitch sent before it saw our Close are
/// still queued for the store: a socket has no acknowledgements, so one
/// dropped here would be gone for good (Twitch routes a conduit's events to
/// another shard only once this session is closed).
async fn close_and_drain(ctx: &SocketIngest, socket: &mut Socket) {
    if socket.close(None).await.is_err() {
        return;
    }
    let deadline = Instant::now() + CLOSE_DRAIN;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            // Events only: a reconnect URL no longer matters.
            Ok(Some(Ok(Message::Text(text)))) => {
                let _ = handle(ctx, &text);
            }
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) | Err(_) => return,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Acts on one text frame: queues events, shows revocations, and returns
/// the reconnect URL of a `session_reconnect`. `false` in the flag: not an
/// EventSub message (no sign of life).
pub fn handle(ctx: &SocketIngest, text: &str) -> (bool, Option<String>) {
    match message::parse(text) {
        Err(err) => {
            tracing::warn!(error = %err, "unexpected WebSocket text ignored");
            (false, None)
        }
        Ok(Incoming::Items(items)) => {
            items.into_iter().for_each(|item| ctx.pipeline.push(item));
            (true, None)
        }
        Ok(Incoming::Revoked { id, subscription }) => {
            ctx.connection.update(|s| {
                for known in s
                    .subscriptions
                    .iter_mut()
                    .filter(|k| k.id == subscription.id)
                {
                    known.status = subscription.status.clone();
                }
            });
            let subscription = *subscription;
            ctx.pipeline.push(Item::Revocation { id, subscription });
            (true, None)
        }
        Ok(Incoming::Reconnect(url)) => (true, Some(url)),
        Ok(Incoming::Malformed(why)) => {
            tracing::warn!("EventSub message ignored: {why}");
            (true, None)
        }
        Ok(Incoming::Welcome { .. } | Incoming::Quiet) => (true, None),
    }
}

/// Resolves when `restart` changes; never without one (or once its sender
/// is gone).
async fn restart_requested(restart: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    if let Some(rx) = restart {
        if rx.changed().await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

/// One session, from connect to its end: `Ok` on shutdown, else why it ended.
pub async fn run(
    ctx: &SocketIngest,
    binding: &mut impl Binding,
    backoff: &mut Duration,
) -> Result<(), TwitchError> {
    // Subscribed first: a request made while connecting or binding ends
    // this session as soon as it is read.
    let mut restart = binding.restart();
    let (mut socket, mut welcome) = open(&ctx.url, &ctx.timings).await?;
    tracing::info!(session_id = %welcome.session_id, "EventSub WebSocket session welcomed");
    binding.bind(&welcome).await?;
    let lost = binding.lost();
    *backoff = ctx.timings.session_backoff_min;
    let mut window = welcome.keepalive + ctx.timings.keepalive_slack;
    let mut deadline = Instant::now() + window;
    loop {
        let frame = tokio::select! {
            _ = ctx.shutdown.cancelled() => {
                close_and_drain(ctx, &mut socket).await;
                return Ok(());
            }
            _ = lost.cancelled() => {
                close_and_drain(ctx, &mut socket).await;
                return Err(socket_error("another replica took this session's lease"));
            }
            _ = restart_requested(&mut restart) => {
                close_and_drain(ctx, &mut socket).await;
                return Err(socket_error("resubscribe requested: starting a new session"));
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(socket_error(format!("no EventSub message for {window:?} (keepalive silence)")));
            }
            frame = socket.next() => frame,
        };
        match frame {
            Some(Ok(Message::Text(text))) => {
                let (alive, reconnect) = handle(ctx, &text);
                if alive {
                    deadline = Instant::now() + window;
                }
                let Some(url) = reconnect else { continue };
                match handover::run(ctx, &mut socket, &url).await? {
                    Some((new_socket, new_welcome)) => {
                        socket = new_socket;
                        welcome = new_welcome;
                        binding.rebind(&welcome).await?;
                        window = welcome.keepalive + ctx.timings.keepalive_slack;
                        deadline = Instant::now() + window;
                    }
                    // The old socket still works: stay on it until Twitch
                    // closes it, then start a fresh session.
                    None => deadline = Instant::now() + window,
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                return Err(socket_error(format!(
                    "Twitch closed the session: {code} {}",
                    close_reason(code)
                )));
            }
            // Pings (answered by the library) and pongs are no sign of EventSub life.
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(socket_error(e.to_string())),
            None => return Err(socket_error("connection closed")),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{future::BoxFuture, SinkExt};
    use tokio::sync::oneshot;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::{config::Config, ingest::socket::Pipeline, secret::SecretKey, store::Store};

    const FRAMES: usize = 20;

    fn notification(id: &str) -> String {
        serde_json::json!({
            "metadata": {"message_id": id, "message_type": "notification",
                         "subscription_type": "channel.follow", "subscription_version": "2"},
            "payload": {"subscription": {"type": "channel.follow", "version": "2"},
                        "event": {"user_id": "1", "broadcaster_user_id": "1337"}},
        })
        .to_string()
    }

    /// Binds by asking the server to send its frames, then asking the
    /// session to stop: it meets its shutdown with those frames unread.
    struct StopAfterFrames {
        send: Option<oneshot::Sender<()>>,
        sent: Option<oneshot::Receiver<()>>,
        shutdown: CancellationToken,
    }

    impl Binding for StopAfterFrames {
        fn name(&self) -> &'static str {
            "test"
        }
        fn acquire(&mut self) -> BoxFuture<'_, bool> {
            Box::pin(async { true })
        }
        fn bind<'a>(&'a mut self, _: &'a Welcome) -> BoxFuture<'a, Result<(), TwitchError>> {
            Box::pin(async move {
                self.send.take().unwrap().send(()).unwrap();
                self.sent.take().unwrap().await.unwrap();
                self.shutdown.cancel();
                Ok(())
            })
        }
        fn rebind<'a>(&'a mut self, _: &'a Welcome) -> BoxFuture<'a, Result<(), TwitchError>> {
            Box::pin(async { Ok(()) })
        }
        fn lost(&self) -> CancellationToken {
            CancellationToken::new()
        }
        fn release(&mut self, _: bool) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    /// Frames Twitch sent before it saw this side's Close are stored: the
    /// session reads on until Twitch's Close instead of dropping them.
    #[tokio::test]
    async fn closing_on_shutdown_still_stores_the_frames_already_sent() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let (send_tx, send_rx) = oneshot::channel();
        let (sent_tx, sent_rx) = oneshot::channel();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let welcome = r#"{"metadata":{"message_id":"w","message_type":"session_welcome"},
                "payload":{"session":{"id":"S1","keepalive_timeout_seconds":10}}}"#;
            ws.send(Message::text(welcome)).await.unwrap();
            send_rx.await.unwrap();
            for i in 0..FRAMES {
                ws.send(Message::text(notification(&format!("m{i}"))))
                    .await
                    .unwrap();
            }
            sent_tx.send(()).unwrap();
            // Twitch answers the client's Close with its own.
            while let Some(Ok(frame)) = ws.next().await {
                if matches!(frame, Message::Close(_)) {
                    break;
                }
            }
            let _ = ws.close(None).await;
        });

        let app = crate::app::build_with_store(
            Config::for_tests(),
            SecretKey::generate(),
            Store::in_memory().await,
        );
        let shutdown = CancellationToken::new();
        let timings = app.config.timings.clone();
        let pipeline = Pipeline::spawn(app.ingest(), &timings, shutdown.clone(), "websocket");
        let drained = pipeline.drained();
        let ctx = SocketIngest {
            url,
            timings,
            pipeline,
            connection: app.twitch.clone(),
            shutdown: shutdown.clone(),
        };
        let mut binding = StopAfterFrames {
            send: Some(send_tx),
            sent: Some(sent_rx),
            shutdown,
        };
        let mut backoff = Duration::from_secs(1);
        run(&ctx, &mut binding, &mut backoff).await.unwrap();
        drop(ctx);
        tokio::time::timeout(Duration::from_secs(10), drained.cancelled())
            .await
            .expect("pipeline drained");
        server.await.unwrap();
        assert_eq!(app.store.count_events().await.unwrap(), FRAMES as i64);
    }
}
