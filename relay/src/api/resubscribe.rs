//! `POST /api/v1/twitch/resubscribe`: make the Twitch subscriptions anew,
//! now, instead of at the transport's next pass.
//!
//! What "anew" means follows the transport:
//! - WebSocket: the current EventSub session is closed and a new one is
//!   opened; its subscriptions are created again (they belong to a
//!   session). Only the replica holding the socket lease has a session; a
//!   request reaching a standby is passed on through the database (every
//!   replica looks every 2 s), so the holder restarts its session.
//! - Webhook and conduit: the reconcile loop runs at once; it deletes what
//!   Twitch reports failed or revoked (or aimed elsewhere) and creates what
//!   is missing. Every webhook replica runs that loop; for a conduit only
//!   the manager does, and it passes every few seconds anyway, so a request
//!   reaching another replica is served by the manager's next pass.

use axum::{extract::State, http::StatusCode, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::{openapi::AuthErrors, Authenticated};
use crate::{
    app::AppState,
    config::Transport,
    error::{ApiError, ErrorBody},
};

/// What a resubscribe request set going.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResubscribeStarted {
    /// What happens now, in words.
    #[schema(example = "closing the EventSub session; a new one creates the subscriptions again")]
    detail: String,
}

/// `POST /api/v1/twitch/resubscribe`: 202 once the transport was asked to
/// make its subscriptions anew; 409 when there is nothing to restart here.
#[utoipa::path(
    post,
    path = "/api/v1/twitch/resubscribe",
    tag = "twitch",
    security(("token" = [])),
    responses(
        (status = 202, description = "The transport makes its subscriptions anew; watch `/api/v1/status`", body = ResubscribeStarted),
        (status = 409, description = "Twitch is not configured, the subscriptions are managed elsewhere, or the broadcaster has not authorized TAU", body = ErrorBody),
        (status = 503, description = "The database could not record the request for the other replicas", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn resubscribe(
    _: Authenticated,
    State(app): State<AppState>,
) -> Result<(StatusCode, Json<ResubscribeStarted>), ApiError> {
    let detail = what_happens(&app)?;
    app.twitch.request_fleet_resubscribe().await?;
    tracing::info!("resubscribe requested: {detail}");
    Ok((
        StatusCode::ACCEPTED,
        Json(ResubscribeStarted {
            detail: detail.into(),
        }),
    ))
}

/// What a request does on this replica, or why it cannot do anything.
fn what_happens(app: &AppState) -> Result<&'static str, ApiError> {
    if app.twitch.credentials.current().is_none() {
        return Err(ApiError::Conflict(
            crate::twitch::TwitchError::NotConfigured.to_string(),
        ));
    }
    match app.config.transport {
        Transport::WebSocket => match app.twitch.connection().state.as_str() {
            "waiting_for_authorization" => Err(ApiError::Conflict(
                "no subscriptions to make yet: the broadcaster has not authorized TAU (connect Twitch first)".into(),
            )),
            "standby" => Ok("another replica holds the EventSub socket; it closes its session within seconds and a new one creates the subscriptions again"),
            "connected" => Ok("closing the EventSub session; a new one creates the subscriptions again"),
            _ => Ok("a new EventSub session is starting; it creates the subscriptions again"),
        },
        Transport::Webhook if !app.config.manage_subscriptions => Err(ApiError::Conflict(
            "webhook subscriptions are managed elsewhere (TAU_MANAGE_SUBSCRIPTIONS=false)".into(),
        )),
        Transport::Webhook => Ok("reconciling the webhook subscriptions now: failed or revoked ones are deleted and created again"),
        Transport::Conduit => Ok("reconciling the conduit's subscriptions now: failed or revoked ones are deleted and created again"),
    }
}
