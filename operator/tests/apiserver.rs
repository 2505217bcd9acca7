//! The operator against a real kube-apiserver (`.ci/operator-tier.sh`) and
//! the fake Twitch: the six scenarios of the operator issue.
//!
//! There is no controller-manager: nothing makes Pods or collects garbage,
//! so tests assert on objects and owner references and patch a
//! Deployment's `/status` by hand (`World::relays_become_ready` for the
//! webhook channels, whose subscriptions wait for a ready relay).

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;
use support::{available, env_secs, eventually, wait_gone, World};
use tau_operator::crd::TwitchChannel;

const EVENTS: [&str; 3] = ["stream.online", "stream.offline", "channel.follow"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_owned_children_status_and_subscriptions() {
    if !available("apply") {
        return;
    }
    let w = World::start("apply", |_| {}).await;
    w.relays_become_ready();
    let tc = w.apply_channel("demo", &EVENTS).await;
    let subs = w.wait_condition("demo", "SubscriptionsReady", "True").await;
    assert!(subs.message.contains("3/3"), "{}", subs.message);
    assert_eq!(
        w.subscribed("demo"),
        ["channel.follow", "stream.offline", "stream.online"]
    );
    let uid = tc.uid().unwrap();
    let owned = |refs: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>| {
        refs.iter()
            .any(|r| r.uid == uid && r.controller == Some(true) && r.kind == "TwitchChannel")
    };
    assert!(owned(
        w.api::<Secret>()
            .get("tau-demo")
            .await
            .unwrap()
            .owner_references()
            .to_vec()
    ));
    let deployment = w.api::<Deployment>().get("tau-demo").await.unwrap();
    assert!(owned(deployment.owner_references().to_vec()));
    assert!(owned(
        w.api::<Service>()
            .get("tau-demo")
            .await
            .unwrap()
            .owner_references()
            .to_vec()
    ));
    assert!(owned(
        w.api::<Ingress>()
            .get("tau-demo")
            .await
            .unwrap()
            .owner_references()
            .to_vec()
    ));
    let tc = w.api::<TwitchChannel>().get("demo").await.unwrap();
    assert!(tc
        .finalizers()
        .contains(&"tau.dev/subscriptions".to_string()));
    let status = tc.status.unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        status.broadcaster_id.as_deref(),
        Some(tau_fake_twitch::FakeTwitch::BROADCASTER_ID)
    );
    assert_eq!(status.subscriptions.len(), 3);
    let types: Vec<_> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        ["Ready", "Authorized", "SubscriptionsReady", "RelayReady"]
    );
    assert!(status
        .conditions
        .iter()
        .all(|c| c.observed_generation == Some(1)));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_events_converges_and_leaves_the_deployment_alone() {
    if !available("events") {
        return;
    }
    let w = World::start("events", |_| {}).await;
    w.relays_become_ready();
    w.apply_channel("demo", &EVENTS).await;
    w.wait_condition("demo", "SubscriptionsReady", "True").await;
    let before = w.api::<Deployment>().get("tau-demo").await.unwrap();
    w.apply_channel("demo", &["stream.online", "channel.update"])
        .await;
    eventually(
        Duration::from_secs(60),
        "subscriptions converge",
        || async { (w.subscribed("demo") == ["channel.update", "stream.online"]).then_some(()) },
    )
    .await;
    let cond = w.wait_condition("demo", "SubscriptionsReady", "True").await;
    assert_eq!(cond.observed_generation, Some(2));
    let after = w.api::<Deployment>().get("tau-demo").await.unwrap();
    assert_eq!(
        before.resource_version(),
        after.resource_version(),
        "Deployment was rewritten"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_deployment_makes_the_channel_ready() {
    if !available("ready") {
        return;
    }
    let w = World::start("ready", |_| {}).await;
    w.apply_channel("demo", &EVENTS).await;
    // RelayReady is False from the start ("being created"); wait until the
    // operator reports the created Deployment's replica count.
    let relay = eventually(
        Duration::from_secs(60),
        "RelayReady=False with 0/1 ready",
        || async {
            w.condition("demo", "RelayReady")
                .await
                .filter(|c| c.status == "False" && c.message.contains("0/1"))
        },
    )
    .await;
    assert!(relay.message.contains("0/1"), "{}", relay.message);
    assert_eq!(
        w.wait_condition("demo", "Ready", "False").await.reason,
        "WaitingForRelay",
        "no webhook subscription before a relay can answer Twitch's challenge"
    );
    assert!(w.subscribed("demo").is_empty());
    let deployments = w.api::<Deployment>();
    let generation = deployments
        .get("tau-demo")
        .await
        .unwrap()
        .metadata
        .generation;
    let status = json!({"status": {"observedGeneration": generation, "replicas": 1, "readyReplicas": 1,
        "availableReplicas": 1, "updatedReplicas": 1}});
    deployments
        .patch_status("tau-demo", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    w.wait_condition("demo", "RelayReady", "True").await;
    let ready = w.wait_condition("demo", "Ready", "True").await;
    assert!(ready.message.contains("https://demo."), "{}", ready.message);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthorized_broadcaster_is_reported_without_a_hot_loop() {
    if !available("unauthorized") {
        return;
    }
    let w = World::start("unauthorized", |c| c.auth_retry = Duration::from_secs(10)).await;
    w.relays_become_ready();
    w.twitch.set_authorized(false);
    w.apply_channel("demo", &["channel.follow", "channel.cheer"])
        .await;
    let auth = w.wait_condition("demo", "Authorized", "False").await;
    assert_eq!(auth.reason, "NotAuthorized");
    assert!(
        auth.message.contains(&format!(
            "open https://demo.{}.example.com/ to connect",
            w.ns
        )),
        "{}",
        auth.message
    );
    let window = env_secs("TAU_AUTH_WINDOW_SECONDS", 30);
    let before = w.twitch.requests().len();
    tokio::time::sleep(window).await;
    let calls = w.twitch.requests().len() - before;
    let per_minute = calls as f64 * 60.0 / window.as_secs_f64();
    eprintln!("unauthorized: {calls} Helix calls in {window:?} ({per_minute:.1}/min)");
    assert!(
        per_minute <= 10.0,
        "{calls} Helix calls in {window:?}: a hot loop"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_subscriptions_and_the_finalizer_even_without_credentials() {
    if !available("delete") {
        return;
    }
    let w = World::start("delete", |_| {}).await;
    w.relays_become_ready();
    w.apply_channel("one", &EVENTS).await;
    w.apply_channel("two", &["stream.online"]).await;
    w.wait_condition("one", "SubscriptionsReady", "True").await;
    w.wait_condition("two", "SubscriptionsReady", "True").await;
    let channels = w.api::<TwitchChannel>();
    channels
        .delete("one", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&channels, "one", Duration::from_secs(60)).await;
    assert!(
        w.subscribed("one").is_empty(),
        "subscriptions left at Twitch: {:?}",
        w.subscribed("one")
    );
    assert_eq!(
        w.subscribed("two"),
        ["stream.online"],
        "another channel's subscription was touched"
    );
    // The credentials Secret deleted first must not block deletion.
    w.api::<Secret>()
        .delete("twitch-app", &DeleteParams::default())
        .await
        .unwrap();
    channels
        .delete("two", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&channels, "two", Duration::from_secs(60)).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_hundred_channels_converge_then_stay_quiet() {
    if !available("scale") {
        return;
    }
    let count = env_secs("TAU_SCALE_CHANNELS", 100).as_secs() as usize;
    let quiet = env_secs("TAU_QUIET_SECONDS", 20);
    let w = World::start("scale", |_| {}).await;
    w.relays_become_ready();
    let started = Instant::now();
    for i in 0..count {
        w.apply_channel(&format!("c{i}"), &["stream.online"]).await;
    }
    let channels = w.api::<TwitchChannel>();
    eventually(
        Duration::from_secs(300),
        "every channel subscribed",
        || async {
            let list = channels.list(&Default::default()).await.ok()?;
            let done = list
                .items
                .iter()
                .filter(|tc| {
                    let s = tc.status.as_ref();
                    s.and_then(|s| s.observed_generation) == tc.metadata.generation
                        && s.is_some_and(|s| {
                            s.conditions
                                .iter()
                                .any(|c| c.type_ == "SubscriptionsReady" && c.status == "True")
                        })
                })
                .count();
            (done == count).then_some(())
        },
    )
    .await;
    eprintln!(
        "scale: {count} channels converged in {:?}",
        started.elapsed()
    );
    assert_eq!(w.twitch.subscriptions().len(), count);
    // Let the last watch events (children created) settle before measuring.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (writes, helix) = (w.metrics.kube_writes(), w.twitch.requests().len());
    tokio::time::sleep(quiet).await;
    let writes = w.metrics.kube_writes() - writes;
    let helix = w.twitch.requests().len() - helix;
    eprintln!("scale: {writes} API writes and {helix} Helix calls in a quiet {quiet:?}");
    assert!(
        writes <= 2,
        "{writes} API writes in a quiet {quiet:?}: a hot loop"
    );
    assert!(
        helix <= 2,
        "{helix} Helix calls in a quiet {quiet:?}: a hot loop"
    );
    w.stop().await;
}
