//! What every HTTP request passes through, whatever route it reaches.
//!
//! From the outside in:
//! - **Trailing slashes** are trimmed before routing (`/api/v1/status/` is
//!   `/api/v1/status`): clients of the original TAU use both forms, and
//!   every route is registered, and access-checked, once.
//! - **Tracing**: one span per request with its method and path only.
//!   Never the query (the OAuth callback carries `code` and `state`
//!   there) and never a header (tokens). Responses are logged at debug,
//!   server errors at warn.
//! - [`crate::hygiene`] headers, on every response including the ones the
//!   layers below make up.
//! - **Panic backstop**: a handler that panics answers 500 in TAU's error
//!   shape and the server keeps serving.
//! - **Timeout**: a request not answered within `TAU_REQUEST_TIMEOUT` gets
//!   503 (Twitch retries a webhook answered so; a client may retry). A
//!   websocket is answered at once with its upgrade, so it is not bounded.
//! - **CORS**: closed unless `TAU_CORS_ORIGINS` lists origins (an overlay
//!   page served from another origin that calls the REST API). Tokens
//!   travel in `Authorization`, never cookies, so no credentials mode.
//!
//! Below all of it, every connection the relay accepts (here, and while
//! it waits for its database: `startup`) gets `TCP_NODELAY`
//! ([`accepting`]): a websocket pushes small frames unprompted, and with
//! Nagle's algorithm on, a frame written while an earlier one (an event, a
//! ping) still waited for the client's delayed ACK was held back until
//! that ACK came: 20-30 ms added to the event after every ping, measured
//! with `tau-bench`.

use std::time::Duration;

use axum::{
    extract::Request,
    http::{header, HeaderValue, Method, StatusCode},
    serve::{ListenerExt, TapIo},
    Router,
};
use tokio::net::{TcpListener, TcpStream};
use tower::Layer;
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
    normalize_path::{NormalizePath, NormalizePathLayer},
    timeout::TimeoutLayer,
    trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer},
};
use tracing::Level;

use crate::config::Config;

/// The relay's routes inside the stack, ready to serve.
pub type Service = NormalizePath<Router>;

/// Wraps `routes` (state applied) in the stack described above.
pub fn wrap(routes: Router, config: &Config) -> Service {
    let mut inner = routes;
    if !config.cors_origins.is_empty() {
        inner = inner.layer(cors(&config.cors_origins));
    }
    let layered = inner
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(crate::hygiene::headers))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    tracing::debug_span!("http", method = %req.method(), path = %req.uri().path())
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                .on_failure(DefaultOnFailure::new().level(Level::WARN)),
        );
    NormalizePathLayer::trim_trailing_slash().layer(layered)
}

/// `listener`, handing out connections with Nagle's algorithm off (see
/// the module docs).
pub fn accepting(listener: TcpListener) -> TapIo<TcpListener, fn(&mut TcpStream)> {
    listener.tap_io(no_delay)
}

fn no_delay(stream: &mut TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "cannot set TCP_NODELAY on an accepted connection");
    }
}

/// CORS for exactly `origins`: the REST API's methods, and the headers a
/// token-carrying JSON call needs.
fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

/// The backstop for a bug: a handler that panics answers 500 with TAU's
/// error shape and a log line.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    crate::error::ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, routing::get, serve::Listener};
    use tower::ServiceExt;

    use super::*;

    fn stack(adjust: impl FnOnce(&mut Config)) -> Service {
        let mut config = Config::for_tests();
        adjust(&mut config);
        let routes = Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route(
                "/boom",
                get(|| async {
                    panic!("bug");
                    #[allow(unreachable_code)]
                    ""
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "late"
                }),
            );
        wrap(routes, &config)
    }

    async fn call(service: Service, req: Request) -> axum::response::Response {
        service.oneshot(req).await.unwrap()
    }

    fn get_req(path: &str) -> Request {
        Request::get(path).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn accepted_connections_do_not_wait_for_acks_before_sending() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut listener = accepting(listener);
        let _client = TcpStream::connect(address).await.unwrap();
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY is set");
    }

    #[tokio::test]
    async fn a_trailing_slash_reaches_the_same_route() {
        let response = call(stack(|_| {}), get_req("/ok/")).await;
        assert_eq!(response.status(), 200);
        let response = call(stack(|_| {}), get_req("/ok?x=1")).await;
        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_taus_error_shape_with_the_headers() {
        let response = call(stack(|_| {}), get_req("/boom")).await;
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"detail":"internal error"}"#);
    }

    #[tokio::test]
    async fn a_request_past_the_timeout_answers_503() {
        let short = |c: &mut Config| c.request_timeout = Duration::from_millis(50);
        let response = call(stack(short), get_req("/slow")).await;
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }

    fn preflight(origin: &str) -> Request {
        Request::options("/ok")
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn cors_is_closed_by_default() {
        let response = call(stack(|_| {}), preflight("https://overlay.example.com")).await;
        assert!(response
            .headers()
            .get("access-control-allow-origin")
            .is_none());
        let mut req = get_req("/ok");
        req.headers_mut().insert(
            "origin",
            HeaderValue::from_static("https://overlay.example.com"),
        );
        let response = call(stack(|_| {}), req).await;
        assert!(response
            .headers()
            .get("access-control-allow-origin")
            .is_none());
    }

    #[tokio::test]
    async fn cors_opens_for_listed_origins_only() {
        let open = |c: &mut Config| c.cors_origins = vec!["https://overlay.example.com".into()];
        let response = call(stack(open), preflight("https://overlay.example.com")).await;
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "https://overlay.example.com"
        );
        let allowed = response.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(allowed.contains("authorization"), "{allowed}");
        assert!(response
            .headers()
            .get("access-control-allow-credentials")
            .is_none());
        let response = call(stack(open), preflight("https://evil.example.com")).await;
        assert!(response
            .headers()
            .get("access-control-allow-origin")
            .is_none());
    }
}
