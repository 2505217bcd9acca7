//! `/api/v1/twitch/app`: the Twitch application's client id and secret,
//! entered in the dashboard so a streamer sets TAU up entirely from the
//! browser. Twitch checks a pair before it is stored; the environment
//! (`TWITCH_CLIENT_ID` / `TWITCH_CLIENT_SECRET`) wins when set. The secret
//! is never answered or logged. See [`crate::twitch::credentials`].

use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{extract::JsonBody, openapi::AuthErrors, Authenticated};
use crate::{
    app::AppState,
    error::{ApiError, ErrorBody},
    twitch::{
        credentials::{validate, AppCredentials, CredentialsError, Source},
        TwitchError,
    },
};

/// Which Twitch application the relay uses (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct TwitchAppDocument {
    /// The client id (`null`: not configured).
    #[schema(example = "abcdefghijklmnopqrstuvwxyz0123")]
    client_id: Option<String>,
    /// `environment` (the variables, which win), `dashboard` (stored
    /// here), or `null` when not configured.
    source: Option<Source>,
}

/// Body of `PUT /api/v1/twitch/app`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TwitchAppCredentials {
    /// The application's client id (letters and digits, at most 100).
    #[schema(example = "abcdefghijklmnopqrstuvwxyz0123")]
    client_id: String,
    /// The application's client secret (at most 100 characters).
    #[schema(example = "0123456789abcdefghijklmnopqrst")]
    client_secret: String,
}

impl From<CredentialsError> for ApiError {
    fn from(err: CredentialsError) -> ApiError {
        match err {
            CredentialsError::FromEnvironment => ApiError::Conflict(err.to_string()),
            CredentialsError::Invalid { .. } => ApiError::BadRequest(err.to_string()),
            CredentialsError::Store(err) => err.into(),
        }
    }
}

fn document(app: &AppState) -> TwitchAppDocument {
    TwitchAppDocument {
        client_id: app.twitch.credentials.client_id(),
        source: app.twitch.credentials.source(),
    }
}

/// `GET /api/v1/twitch/app`.
#[utoipa::path(
    get,
    path = "/api/v1/twitch/app",
    tag = "twitch",
    security(("token" = [])),
    responses(
        (status = 200, description = "The Twitch application in use and where it comes from (never the secret)", body = TwitchAppDocument),
        AuthErrors,
    )
)]
pub async fn get(_: Authenticated, State(app): State<AppState>) -> Json<TwitchAppDocument> {
    app.twitch.credentials.load().await;
    Json(document(&app))
}

/// `PUT /api/v1/twitch/app`: checks the pair with Twitch (a client
/// credentials grant), then stores it for every replica; the Twitch side
/// starts or switches to it without a restart.
#[utoipa::path(
    put,
    path = "/api/v1/twitch/app",
    tag = "twitch",
    security(("token" = [])),
    request_body = TwitchAppCredentials,
    responses(
        (status = 200, description = "Twitch accepted the pair; stored and in effect", body = TwitchAppDocument),
        (status = 400, description = "A field is empty, too long or malformed (named in `detail`), or Twitch refused the pair (its message in `detail`); nothing stored", body = ErrorBody),
        (status = 409, description = "TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET are set: the environment wins", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 503, description = "Twitch could not be reached to check the pair; nothing stored", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn put(
    _: Authenticated,
    State(app): State<AppState>,
    JsonBody(body): JsonBody<TwitchAppCredentials>,
) -> Result<Json<TwitchAppDocument>, ApiError> {
    if app.twitch.credentials.from_environment() {
        return Err(CredentialsError::FromEnvironment.into());
    }
    let credentials = AppCredentials {
        client_id: body.client_id.trim().to_string(),
        client_secret: body.client_secret.trim().to_string(),
    };
    validate(&credentials.client_id, &credentials.client_secret)?;
    match app.twitch.tokens.check_app(&credentials).await {
        Ok(()) => {}
        Err(TwitchError::Status { status, message })
            if (400..500).contains(&status) && status != 429 =>
        {
            return Err(ApiError::BadRequest(format!(
                "Twitch refused this client id and secret ({message}): copy both again from the application's page in the Twitch developer console"
            )));
        }
        Err(err) => {
            tracing::warn!(error = %err, "checking a Twitch application with Twitch failed");
            return Err(ApiError::Unavailable(format!(
                "could not check the client id and secret with Twitch ({err}); nothing stored, try again"
            )));
        }
    }
    app.twitch.credentials.store(credentials).await?;
    Ok(Json(document(&app)))
}

/// `DELETE /api/v1/twitch/app`: forgets the stored pair on every replica.
#[utoipa::path(
    delete,
    path = "/api/v1/twitch/app",
    tag = "twitch",
    security(("token" = [])),
    responses(
        (status = 204, description = "Forgotten (or none was stored); Twitch requests fail until a new pair is entered"),
        (status = 409, description = "TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET are set: the environment wins", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn forget(_: Authenticated, State(app): State<AppState>) -> Result<StatusCode, ApiError> {
    app.twitch.credentials.forget().await?;
    Ok(StatusCode::NO_CONTENT)
}
