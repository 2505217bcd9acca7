//! A channel's life around its Secrets and its finalizer, against a real
//! kube-apiserver (`.ci/operator-tier.sh`) and the fake Twitch:
//!
//! - rotating the credentials Secret rolls the relays (inputs checksum),
//!   noticed through the Secret watch, not a resync;
//! - a spec the operator cannot serve is reported and creates nothing;
//! - a deleted generated Secret is not silently replaced (its key encrypts
//!   the stored Twitch tokens) until the user names the lost key;
//! - a websocket channel carries no finalizer, so it is deleted with the
//!   operator gone; a conduit channel's conduit is deleted at Twitch, after
//!   its relays have stopped.
//!
//! There is no controller-manager here: the test plays the garbage
//! collector where a foreground deletion needs one.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::{json, Value};
use support::{available, eventually, wait_gone, World};
use tau_fake_twitch::FakeTwitch;
use tau_operator::build::{key_id, INPUTS_ANNOTATION};
use tau_operator::crd::TwitchChannel;
use tau_operator::guard::FINALIZER;
use tau_operator::reconcile::RESET_SECRET_KEY;

const WAIT: Duration = Duration::from_secs(30);

/// Applies channel `name` with `spec` merged over a websocket channel's.
async fn apply(w: &World, name: &str, spec: Value) -> TwitchChannel {
    let mut full = json!({
        "broadcaster": FakeTwitch::BROADCASTER_LOGIN,
        "credentials": {"secretName": "twitch-app"},
        "events": ["channel.follow"],
        "transport": "websocket",
    });
    for (k, v) in spec.as_object().expect("spec object") {
        full[k] = v.clone();
    }
    w.apply_spec(name, full).await
}

async fn checksum(w: &World, deployment: &str) -> Option<String> {
    let d = w.api::<Deployment>().get_opt(deployment).await.ok()??;
    d.spec?
        .template
        .metadata?
        .annotations?
        .get(INPUTS_ANNOTATION)
        .cloned()
}

async fn status_of(w: &World, name: &str) -> tau_operator::crd::TwitchChannelStatus {
    w.api::<TwitchChannel>()
        .get(name)
        .await
        .unwrap()
        .status
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_credentials_secret_rolls_the_relays() {
    if !available("rotate") {
        return;
    }
    // A resync far beyond the test: only the Secret watch can notice.
    let w = World::start("rotate", |c| c.resync = Duration::from_secs(3600)).await;
    apply(&w, "demo", json!({})).await;
    let before = eventually(WAIT, "Deployment with an inputs checksum", || {
        checksum(&w, "tau-demo")
    })
    .await;
    let rotated =
        json!({"data": {"client-secret": k8s_openapi::ByteString(b"rotated-secret".to_vec())}});
    w.api::<Secret>()
        .patch(
            "twitch-app",
            &PatchParams::default(),
            &Patch::Merge(&rotated),
        )
        .await
        .unwrap();
    let after = eventually(WAIT, "a new inputs checksum", || async {
        checksum(&w, "tau-demo").await.filter(|c| *c != before)
    })
    .await;
    assert_ne!(before, after);
    // An unrelated key in the same Secret rolls nothing.
    let unrelated = json!({"data": {"note": ByteString(b"hello".to_vec())}});
    w.api::<Secret>()
        .patch(
            "twitch-app",
            &PatchParams::default(),
            &Patch::Merge(&unrelated),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(checksum(&w, "tau-demo").await, Some(after));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_url_from_a_secret_is_read_there_and_its_rotation_rolls_the_relays() {
    if !available("db-secret") {
        return;
    }
    let w = World::start("db-secret", |c| c.resync = Duration::from_secs(3600)).await;
    let secrets = w.api::<Secret>();
    let db = |url: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
        "stringData": {"url": url}})
    };
    secrets
        .patch(
            "db",
            &PatchParams::apply("tau-tests"),
            &Patch::Apply(db("postgres://tau:one@db/tau")),
        )
        .await
        .unwrap();
    apply(
        &w,
        "demo",
        json!({"databaseUrlSecret": {"name": "db", "key": "url"}, "relay": {"replicas": 2}}),
    )
    .await;
    let before = eventually(WAIT, "Deployment with an inputs checksum", || {
        checksum(&w, "tau-demo")
    })
    .await;
    let deployment = w.api::<Deployment>().get("tau-demo").await.unwrap();
    let env = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    let database = env.iter().find(|e| e.name == "TAU_DATABASE_URL").unwrap();
    let from = database
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!((from.name.as_str(), from.key.as_str()), ("db", "url"));
    let own = secrets.get("tau-demo").await.unwrap().data.unwrap();
    assert!(
        !own.contains_key("database-url"),
        "the URL is not copied into the generated Secret"
    );
    secrets
        .patch(
            "db",
            &PatchParams::apply("tau-tests"),
            &Patch::Apply(db("postgres://tau:two@db/tau")),
        )
        .await
        .unwrap();
    eventually(
        WAIT,
        "a new inputs checksum after the password changed",
        || async { checksum(&w, "tau-demo").await.filter(|c| *c != before) },
    )
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_that_cannot_be_served_is_reported_and_creates_nothing() {
    if !available("invalid") {
        return;
    }
    let w = World::start("invalid", |_| {}).await;
    apply(&w, "demo", json!({"relay": {"replicas": 3}})).await;
    let ready = w.wait_condition("demo", "Ready", "False").await;
    assert_eq!(ready.reason, "InvalidSpec", "{}", ready.message);
    assert!(
        ready.message.contains("relay.replicas is 3"),
        "{}",
        ready.message
    );
    assert!(w
        .api::<Deployment>()
        .get_opt("tau-demo")
        .await
        .unwrap()
        .is_none());
    // Watched streamers: the API server refuses what is not a login, and
    // duplicates; the operator refuses more than the websocket can carry.
    for (bad, why) in [
        (json!(["Not A Login"]), "should match"),
        (json!(["same", "same"]), "duplicate"),
    ] {
        let body = json!({"apiVersion": "tau.dev/v1alpha1", "kind": "TwitchChannel",
            "metadata": {"name": "bad-streamers"},
            "spec": {"broadcaster": "x", "credentials": {"secretName": "twitch-app"}, "streamers": bad}});
        let err = w
            .api::<TwitchChannel>()
            .patch(
                "bad-streamers",
                &PatchParams::apply("tau-tests").force(),
                &Patch::Apply(&body),
            )
            .await
            .expect_err("refused by the schema");
        assert!(err.to_string().to_lowercase().contains(why), "{why}: {err}");
    }
    let six: Vec<String> = (0..6).map(|i| format!("streamer{i}")).collect();
    apply(
        &w,
        "demo",
        json!({"relay": {"replicas": 1}, "streamers": six}),
    )
    .await;
    eventually(WAIT, "InvalidSpec naming the websocket limit", || async {
        let status = status_of(&w, "demo").await;
        status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready" && c.message.contains("at most 5"))
            .cloned()
    })
    .await;
    // Fixing the spec lets it through.
    apply(
        &w,
        "demo",
        json!({"relay": {"replicas": 1}, "streamers": []}),
    )
    .await;
    eventually(WAIT, "the Deployment after the fix", || async {
        w.api::<Deployment>().get_opt("tau-demo").await.unwrap()
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_generated_secret_is_not_silently_replaced() {
    if !available("secret-key") {
        return;
    }
    let w = World::start("secret-key", |_| {}).await;
    apply(&w, "demo", json!({})).await;
    let lost_id = eventually(WAIT, "status.secretKeyId", || async {
        status_of(&w, "demo").await.secret_key_id
    })
    .await;
    let secrets = w.api::<Secret>();
    let ready = eventually(
        Duration::from_secs(60),
        "Ready=False SecretKeyLost",
        || async {
            // A reconcile that listed the Secret just before it went may apply
            // it again as it was (the same key, from memory): delete it again.
            // A different key is never acceptable.
            if let Some(secret) = secrets.get_opt("tau-demo").await.unwrap() {
                let data = secret.data.unwrap_or_default();
                let key = data
                    .get("secret-key")
                    .map(|v| v.0.clone())
                    .unwrap_or_default();
                assert_eq!(key_id(&key), lost_id, "a new key was generated");
                let _ = secrets.delete("tau-demo", &DeleteParams::default()).await;
            }
            w.condition("demo", "Ready")
                .await
                .filter(|c| c.reason == "SecretKeyLost")
        },
    )
    .await;
    assert!(ready.message.contains(&lost_id), "{}", ready.message);
    assert!(
        ready.message.contains(RESET_SECRET_KEY),
        "{}",
        ready.message
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        secrets.get_opt("tau-demo").await.unwrap().is_none(),
        "a new key was generated without being asked"
    );
    // The user names the lost key: a new one is generated.
    let ack = json!({"metadata": {"annotations": {RESET_SECRET_KEY: lost_id}}});
    w.api::<TwitchChannel>()
        .patch("demo", &PatchParams::default(), &Patch::Merge(&ack))
        .await
        .unwrap();
    eventually(WAIT, "a new generated Secret", || async {
        secrets.get_opt("tau-demo").await.unwrap()
    })
    .await;
    let new_id = eventually(WAIT, "a new secretKeyId", || async {
        status_of(&w, "demo")
            .await
            .secret_key_id
            .filter(|id| *id != lost_id)
    })
    .await;
    assert_ne!(new_id, lost_id);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_channel_is_deleted_even_with_the_operator_gone() {
    if !available("no-finalizer") {
        return;
    }
    let w = World::start("no-finalizer", |_| {}).await;
    apply(&w, "demo", json!({})).await;
    eventually(WAIT, "the Deployment", || async {
        w.api::<Deployment>().get_opt("tau-demo").await.unwrap()
    })
    .await;
    let channels = w.api::<TwitchChannel>();
    assert!(
        !channels
            .get("demo")
            .await
            .unwrap()
            .finalizers()
            .iter()
            .any(|f| f == FINALIZER),
        "nothing at Twitch to clean up: no finalizer"
    );
    w.stop().await;
    channels
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&channels, "demo", Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_conduit_channel_stops_its_relays_then_deletes_the_conduit() {
    if !available("conduit-delete") {
        return;
    }
    let w = World::start("conduit-delete", |_| {}).await;
    let spec = json!({"transport": "conduit", "databaseUrl": "postgres://db.invalid/tau"});
    apply(&w, "demo", spec).await;
    let channels = w.api::<TwitchChannel>();
    eventually(WAIT, "the finalizer and the Deployment", || async {
        let guarded = channels
            .get("demo")
            .await
            .ok()?
            .finalizers()
            .iter()
            .any(|f| f == FINALIZER);
        let deployment = w.api::<Deployment>().get_opt("tau-demo").await.ok()?;
        (guarded && deployment.is_some()).then_some(())
    })
    .await;
    // What the relay fleet would have done: a conduit, reported in the status.
    let other = w.twitch.conduits().len();
    let conduit = reqwest::Client::new()
        .post(format!("{}/eventsub/conduits", w.twitch.api_url()))
        .bearer_auth(app_token(&w).await)
        .header("Client-Id", FakeTwitch::CLIENT_ID)
        .json(&json!({"shard_count": 1}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = json!({"status": {"conduitId": conduit}});
    channels
        .patch_status("demo", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    eventually(WAIT, "the status shows the conduit", || async {
        (status_of(&w, "demo").await.conduit_id.as_deref() == Some(conduit.as_str())).then_some(())
    })
    .await;
    channels
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    // The operator stops the relays first (foreground deletion of the Deployment) ...
    let deployments = w.api::<Deployment>();
    eventually(WAIT, "the Deployment being deleted", || async {
        deployments
            .get("tau-demo")
            .await
            .ok()?
            .metadata
            .deletion_timestamp
            .map(|_| ())
    })
    .await;
    assert!(
        w.twitch.conduits().iter().any(|c| c.id == conduit),
        "the conduit is kept while relays may still run"
    );
    // ... (the test plays the garbage collector) ...
    deployments
        .patch(
            "tau-demo",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    // ... then deletes the conduit and lets the channel go.
    wait_gone(&channels, "demo", WAIT).await;
    assert!(
        !w.twitch.conduits().iter().any(|c| c.id == conduit),
        "the conduit is still at Twitch"
    );
    assert_eq!(w.twitch.conduits().len(), other);
    w.stop().await;
}

/// An app access token from the fake (client credentials).
async fn app_token(w: &World) -> String {
    let form = [
        ("client_id", FakeTwitch::CLIENT_ID),
        ("client_secret", FakeTwitch::CLIENT_SECRET),
        ("grant_type", "client_credentials"),
    ];
    reqwest::Client::new()
        .post(format!("{}/token", w.twitch.auth_url()))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}
