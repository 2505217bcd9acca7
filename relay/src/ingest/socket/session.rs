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

/// One session, from connect to its end: `Ok` on shutdown, else why it ended.
pub async fn run(
    ctx: &SocketIngest,
    binding: &mut impl Binding,
    backoff: &mut Duration,
) -> Result<(), TwitchError> {
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
                let _ = socket.close(None).await;
                return Ok(());
            }
            _ = lost.cancelled() => {
                let _ = socket.close(None).await;
                return Err(socket_error("another replica took this session's lease"));
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
