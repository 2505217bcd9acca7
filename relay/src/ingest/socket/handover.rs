//! `session_reconnect`: move to the new URL without losing a message.
//!
//! Twitch keeps delivering on the old socket until the new one is
//! welcomed, and closes the old one 30 s after the reconnect message. So
//! the new socket is opened (bounded by `connect_timeout` and
//! `welcome_timeout`) while the old one is still read; the switch happens
//! on the new welcome. If the new socket cannot be opened in time, the old
//! one is kept until Twitch closes it, and the caller then starts a fresh
//! session (subscriptions are created again there).

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::{
    session::{self, Socket, Welcome},
    SocketIngest,
};
use crate::twitch::TwitchError;

/// Opens `url` while `old` keeps delivering. `Some`: the new socket and
/// its welcome (the old socket is closed). `None`: the new one failed but
/// the old one is still open. `Err`: both failed.
pub async fn run(
    ctx: &SocketIngest,
    old: &mut Socket,
    url: &str,
) -> Result<Option<(Socket, Welcome)>, TwitchError> {
    tracing::info!("EventSub asked to reconnect; opening the new session");
    ctx.connection.update(|s| s.state = "reconnecting".into());
    let mut new = Box::pin(session::open(url, &ctx.timings));
    let mut old_open = true;
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return Ok(None),
            result = &mut new => return match result {
                Ok((socket, welcome)) => {
                    if old_open {
                        let _ = old.close(None).await;
                    }
                    tracing::info!(session_id = %welcome.session_id, "EventSub reconnect complete");
                    ctx.connection.update(|s| {
                        s.state = "connected".into();
                        s.session_id = Some(welcome.session_id.clone());
                    });
                    Ok(Some((socket, welcome)))
                }
                Err(err) if old_open => {
                    tracing::warn!(error = %err, "reconnect failed; staying on the old socket until Twitch closes it");
                    ctx.connection.update(|s| {
                        s.state = "connected".into();
                        s.last_error = Some(format!("reconnect failed: {err}"));
                    });
                    Ok(None)
                }
                Err(err) => Err(err),
            },
            frame = old.next(), if old_open => match frame {
                Some(Ok(Message::Text(text))) => {
                    session::handle(ctx, &text);
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => old_open = false,
                Some(Ok(_)) => {}
            },
        }
    }
}
