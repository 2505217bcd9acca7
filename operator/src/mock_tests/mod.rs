//! Reconcile against a mocked API server (tower-test): every request the
//! operator makes is checked in order and answered, so these tests pin down
//! exactly which reads and writes each path does: finalizer, create,
//! no-op update, delete (with and without credentials) and errors. The
//! Twitch side, where needed, is the in-process fake Twitch.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use k8s_openapi::jiff::Timestamp;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::Client;
use serde_json::{json, Value};
use tau_fake_twitch::{FakeTwitch, Options};
use tower_test::mock::Handle;

use crate::config::Config;
use crate::context::Context;
use crate::crd::{TransportMode, TwitchChannel};
use crate::fixtures::channel;
use crate::metrics::Metrics;
use crate::reconcile::{reconcile, FINALIZER};

/// How the mock answers one expected request.
pub(crate) enum Reply {
    /// Answer with this JSON (status 200).
    Json(Value),
    /// Echo the request body back (what server-side apply returns, near enough).
    Echo,
    /// Answer with a Kubernetes `Status` error.
    Status(u16),
}

pub(crate) fn status_body(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "mock", "reason": if code == 404 { "NotFound" } else { "Mock" }, "code": code})
}

fn list(kind: &str) -> Reply {
    Reply::Json(json!({"apiVersion": "v1", "kind": kind, "metadata": {}, "items": []}))
}

/// Serves `script` in order, asserting method and path; returns the bodies received.
pub(crate) async fn serve(
    mut handle: Handle<Request<Body>, Response<Body>>,
    script: Vec<(Method, &str, Reply)>,
) -> Vec<Value> {
    let mut bodies = Vec::new();
    for (method, path, reply) in script {
        let (request, send) = handle
            .next_request()
            .await
            .expect("the operator made a request");
        assert_eq!(request.method(), method, "{}", request.uri());
        assert_eq!(request.uri().path(), path);
        let bytes = request.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        bodies.push(body.clone());
        let (code, reply) = match reply {
            Reply::Json(v) => (200, v),
            Reply::Echo => (200, body),
            Reply::Status(code) => (code, status_body(code)),
        };
        let response = Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap();
        send.send_response(response);
    }
    bodies
}

pub(crate) struct Mock {
    pub(crate) ctx: Arc<Context>,
    pub(crate) handle: Handle<Request<Body>, Response<Body>>,
}

pub(crate) fn mock(twitch: Option<&FakeTwitch>) -> Mock {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "ns");
    let config = match twitch {
        Some(t) => Config::for_tests(&t.api_url(), &t.auth_url()),
        None => Config::for_tests("http://127.0.0.1:9/helix", "http://127.0.0.1:9/oauth2"),
    };
    Mock {
        ctx: Arc::new(Context::new(client, config, Arc::new(Metrics::default()))),
        handle,
    }
}

pub(crate) async fn fake() -> FakeTwitch {
    FakeTwitch::start_with(Options {
        auto_verify_webhooks: false,
        ..Options::default()
    })
    .await
}

pub(crate) fn finalized(mut tc: TwitchChannel) -> TwitchChannel {
    tc.metadata.finalizers = Some(vec![FINALIZER.into()]);
    tc
}

pub(crate) fn websocket(mut tc: TwitchChannel) -> TwitchChannel {
    tc.spec.transport = TransportMode::Websocket;
    tc.spec.ingress = None;
    tc
}

pub(crate) const TC: &str = "/apis/tau.dev/v1alpha1/namespaces/ns/twitchchannels/a";
pub(crate) const TC_STATUS: &str = "/apis/tau.dev/v1alpha1/namespaces/ns/twitchchannels/a/status";
pub(crate) const SECRETS: &str = "/api/v1/namespaces/ns/secrets";
pub(crate) const CREDENTIALS: &str = "/api/v1/namespaces/ns/secrets/twitch-app";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/ns/deployments";
const SERVICES: &str = "/api/v1/namespaces/ns/services";
const INGRESSES: &str = "/apis/networking.k8s.io/v1/namespaces/ns/ingresses";
const CLAIMS: &str = "/api/v1/namespaces/ns/persistentvolumeclaims";
pub(crate) const CLAIM: &str = "/api/v1/namespaces/ns/persistentvolumeclaims/tau-a";
pub(crate) const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ns/events";

/// The reads of a channel with no generated Secret yet. With no key live
/// and none recorded in the cached status, the channel is read again from
/// the API server (`cached` is what it answers) before a key is generated.
pub(crate) fn lists(cached: &TwitchChannel) -> Vec<(Method, &'static str, Reply)> {
    vec![
        (Method::GET, SECRETS, list("SecretList")),
        (
            Method::GET,
            TC,
            Reply::Json(serde_json::to_value(cached).unwrap()),
        ),
        (Method::GET, DEPLOYMENTS, list("DeploymentList")),
        (Method::GET, SERVICES, list("ServiceList")),
        (Method::GET, INGRESSES, list("IngressList")),
        // No database configured: the relay's SQLite state needs its claim.
        (Method::GET, CLAIMS, list("PersistentVolumeClaimList")),
    ]
}

/// Server-side applies of a websocket channel's children on SQLite: its
/// Secret, claim, Deployment and Service.
pub(crate) fn applies() -> Vec<(Method, &'static str, Reply)> {
    vec![
        (
            Method::PATCH,
            "/api/v1/namespaces/ns/secrets/tau-a",
            Reply::Echo,
        ),
        (Method::PATCH, CLAIM, Reply::Echo),
        (
            Method::PATCH,
            "/apis/apps/v1/namespaces/ns/deployments/tau-a",
            Reply::Echo,
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/ns/services/tau-a",
            Reply::Echo,
        ),
    ]
}

#[tokio::test]
async fn a_conduit_channel_is_guarded_before_its_relays_exist() {
    let Mock { ctx, handle } = mock(None);
    let mut tc = channel("a");
    tc.spec.transport = TransportMode::Conduit;
    tc.spec.database_url = Some("postgres://db/tau".into());
    let mut script = lists(&tc);
    script.pop(); // a shared database: no claim
    script.extend([
        (Method::GET, CREDENTIALS, Reply::Status(404)),
        (
            Method::PATCH,
            TC,
            Reply::Json(serde_json::to_value(finalized(channel("a"))).unwrap()),
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/ns/secrets/tau-a",
            Reply::Echo,
        ),
        (
            Method::PATCH,
            "/apis/apps/v1/namespaces/ns/deployments/tau-a",
            Reply::Echo,
        ),
    ]);
    let server = tokio::spawn(serve(handle, script));
    // The script ends at the Deployment: the rest of the reconcile is not answered.
    let _ = tokio::time::timeout(Duration::from_secs(2), reconcile(Arc::new(tc), ctx)).await;
    let bodies = server.await.unwrap();
    assert_eq!(
        bodies[6]["metadata"]["finalizers"],
        json!([FINALIZER]),
        "{}",
        bodies[6]
    );
    assert_eq!(bodies[8]["kind"], "Deployment", "after the finalizer");
}

#[tokio::test]
async fn a_websocket_channel_loses_an_old_operators_finalizer() {
    let Mock { ctx, handle } = mock(None);
    let tc = finalized(websocket(channel("a")));
    let mut script = lists(&tc);
    script.extend([(Method::GET, CREDENTIALS, Reply::Status(404))]);
    script.extend(applies());
    script.extend([
        (Method::POST, EVENTS, Reply::Echo),
        (
            Method::PATCH,
            TC,
            Reply::Json(serde_json::to_value(websocket(channel("a"))).unwrap()),
        ),
        (
            Method::PATCH,
            TC_STATUS,
            Reply::Json(serde_json::to_value(channel("a")).unwrap()),
        ),
    ]);
    let server = tokio::spawn(serve(handle, script));
    reconcile(Arc::new(tc), ctx).await.unwrap();
    let bodies = server.await.unwrap();
    assert_eq!(
        bodies[12]["metadata"]["finalizers"],
        json!([]),
        "{}",
        bodies[12]
    );
}

#[tokio::test]
async fn create_applies_children_subscribes_and_writes_status() {
    let twitch = fake().await;
    let Mock { ctx, handle } = mock(Some(&twitch));
    let creds = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "twitch-app"},
        "data": {"client-id": base64(FakeTwitch::CLIENT_ID), "client-secret": base64(FakeTwitch::CLIENT_SECRET)}});
    let mut script = lists(&finalized(channel("a")));
    // A relay is ready to answer Twitch's verification challenge.
    let mut ready = crate::build::deployment(&channel("a"), &ctx.config);
    ready.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus {
        ready_replicas: Some(1),
        ..Default::default()
    });
    script[2].2 =
        Reply::Json(json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": [ready]}));
    script.extend([(Method::GET, CREDENTIALS, Reply::Json(creds))]);
    script.extend(applies());
    script.extend([
        (
            Method::PATCH,
            "/apis/networking.k8s.io/v1/namespaces/ns/ingresses/tau-a",
            Reply::Echo,
        ),
        (Method::POST, EVENTS, Reply::Echo),
        (Method::POST, EVENTS, Reply::Echo),
        (
            Method::PATCH,
            TC_STATUS,
            Reply::Json(serde_json::to_value(channel("a")).unwrap()),
        ),
    ]);
    let server = tokio::spawn(serve(handle, script));
    let action = reconcile(Arc::new(finalized(channel("a"))), ctx)
        .await
        .unwrap();
    assert_ne!(
        action,
        Action::await_change(),
        "a healthy channel is resynced"
    );
    let bodies = server.await.unwrap();
    let status = &bodies.last().unwrap()["status"];
    assert_eq!(status["subscriptionsReady"], "2/2");
    assert_eq!(status["broadcasterId"], FakeTwitch::BROADCASTER_ID);
    let authorized = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Authorized")
        .unwrap();
    assert_eq!(authorized["status"], "True");
    assert_eq!(twitch.subscriptions().len(), 2);
    let claim = &bodies[8];
    assert_eq!(claim["kind"], "PersistentVolumeClaim");
    assert_eq!(claim["metadata"]["ownerReferences"][0]["uid"], "uid-a");
    let deployment = &bodies[9];
    assert!(
        deployment["spec"]["template"]["metadata"]["annotations"][crate::build::INPUTS_ANNOTATION]
            .is_string(),
        "the pod template carries the inputs checksum"
    );
    assert_eq!(deployment["metadata"]["ownerReferences"][0]["uid"], "uid-a");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "tau-a"
    );
}

pub(crate) fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn an_unchanged_channel_makes_no_writes() {
    let Mock { ctx, handle } = mock(None);
    let mut tc = websocket(channel("a"));
    let config = &ctx.config;
    let secret = crate::build::secret(&tc, config, None, &mut rand::thread_rng());
    let data = secret.data.clone().unwrap();
    let mut deployment = crate::build::deployment(&tc, config);
    let missing: crate::build::UserSecrets = [("twitch-app".to_string(), None)].into();
    let checksum = crate::build::inputs_checksum(&tc, &missing, &data);
    crate::build::stamp_inputs(&mut deployment, &checksum);
    let service = crate::build::service(&tc);
    let claim = crate::build::volume_claim(&tc, config).expect("SQLite: a claim");
    let observed = crate::status::Observed {
        broadcaster_id: None,
        relay_url: crate::build::relay_url(&tc),
        relay: Some((0, 1)),
        twitch: crate::status::TwitchState::Relay(crate::relay_probe::RelayView::NotReady),
        unknown_events: vec![],
        secret_key_id: Some(crate::build::key_id(&data[crate::build::KEY_SECRET_KEY].0)),
    };
    tc.status = Some(crate::status::status(&tc, &observed, Timestamp::UNIX_EPOCH));
    let item = |v: Value| {
        Reply::Json(json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": [v]}))
    };
    let script = vec![
        (
            Method::GET,
            SECRETS,
            item(serde_json::to_value(&secret).unwrap()),
        ),
        (
            Method::GET,
            DEPLOYMENTS,
            item(serde_json::to_value(&deployment).unwrap()),
        ),
        (
            Method::GET,
            SERVICES,
            item(serde_json::to_value(&service).unwrap()),
        ),
        (Method::GET, INGRESSES, list("IngressList")),
        // The claim exists: never applied again (its spec is immutable).
        (
            Method::GET,
            CLAIMS,
            item(serde_json::to_value(&claim).unwrap()),
        ),
        (Method::GET, CREDENTIALS, Reply::Status(404)),
    ];
    let server = tokio::spawn(serve(handle, script));
    // Any write beyond the six reads would never be answered: the reconcile would hang.
    tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(tc), ctx))
        .await
        .expect("no request beyond the six reads")
        .unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn an_orphaned_ingress_is_deleted() {
    let Mock { ctx, handle } = mock(None);
    let tc = websocket(channel("a"));
    let old = crate::build::ingress(&channel("a")).unwrap();
    let mut script = vec![
        (Method::GET, SECRETS, list("SecretList")),
        (
            Method::GET,
            TC,
            Reply::Json(serde_json::to_value(&tc).unwrap()),
        ),
        (Method::GET, DEPLOYMENTS, list("DeploymentList")),
        (Method::GET, SERVICES, list("ServiceList")),
        (
            Method::GET,
            INGRESSES,
            Reply::Json(
                json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": [old]}),
            ),
        ),
        (Method::GET, CLAIMS, list("PersistentVolumeClaimList")),
        (Method::GET, CREDENTIALS, Reply::Status(404)),
    ];
    script.extend(applies());
    script.extend([
        (
            Method::DELETE,
            "/apis/networking.k8s.io/v1/namespaces/ns/ingresses/tau-a",
            Reply::Json(status_body(200)),
        ),
        (Method::POST, EVENTS, Reply::Echo),
        (
            Method::PATCH,
            TC_STATUS,
            Reply::Json(serde_json::to_value(channel("a")).unwrap()),
        ),
    ]);
    let server = tokio::spawn(serve(handle, script));
    reconcile(Arc::new(tc), ctx).await.unwrap();
    let bodies = server.await.unwrap();
    assert!(
        bodies[12]["note"].as_str().unwrap().contains("removed 1"),
        "{}",
        bodies[12]
    );
}

#[tokio::test]
async fn a_lost_key_is_judged_by_the_api_servers_copy_not_a_stale_cache() {
    let Mock { ctx, handle } = mock(None);
    // The cache has not seen the status that recorded the key; the API
    // server has, and the generated Secret is gone.
    let cached = websocket(channel("a"));
    let mut recorded = cached.clone();
    recorded.status = Some(crate::crd::TwitchChannelStatus {
        secret_key_id: Some("0de3d04f51a077e7".into()),
        ..Default::default()
    });
    let mut script = lists(&recorded);
    script.extend([
        (Method::GET, CREDENTIALS, Reply::Status(404)),
        // No Secret, claim, Deployment or Service is applied.
        (
            Method::PATCH,
            TC_STATUS,
            Reply::Json(serde_json::to_value(&recorded).unwrap()),
        ),
    ]);
    let server = tokio::spawn(serve(handle, script));
    tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(cached), ctx))
        .await
        .expect("nothing but the status is written")
        .unwrap();
    let bodies = server.await.unwrap();
    let status = &bodies.last().unwrap()["status"];
    assert_eq!(status["secretKeyId"], "0de3d04f51a077e7", "{status}");
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["reason"], "SecretKeyLost", "{ready}");
}

mod cleanup;
mod relay;
mod streamers;
