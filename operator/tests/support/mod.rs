//! Shared setup for the real-apiserver tests: one fresh namespace, one fake
//! Twitch and one operator (in-process, watching only that namespace) per
//! test, against the control plane named by `KUBECONFIG`.
//!
//! Without `KUBECONFIG` the tests print why and pass, unless
//! `TAU_REQUIRE_SERVICES=1`, which turns the skip into a failure.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::ByteString;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, CustomResourceExt};
use serde_json::json;
use tau_fake_twitch::{FakeTwitch, Options};
use tau_operator::config::Config;
use tau_operator::crd::TwitchChannel;
use tau_operator::metrics::Metrics;
use tokio_util::sync::CancellationToken;

/// One test's world.
pub struct World {
    /// A client for the test's own actions (not counted).
    pub client: Client,
    /// The test's namespace.
    pub ns: String,
    /// The fake Twitch the operator talks to.
    pub twitch: FakeTwitch,
    /// The operator's metrics (its own API and Helix calls).
    pub metrics: Arc<Metrics>,
    stop: CancellationToken,
    operator: tokio::task::JoinHandle<()>,
}

/// `Some(kubeconfig)` when a control plane is available; prints the skip reason otherwise.
pub fn available(test: &str) -> bool {
    if std::env::var_os("KUBECONFIG").is_some() {
        return true;
    }
    let reason = "KUBECONFIG is not set (run .ci/operator-tier.sh for a real kube-apiserver)";
    if std::env::var("TAU_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{test}: TAU_REQUIRE_SERVICES=1 but {reason}");
    }
    eprintln!("SKIPPED {test}: {reason}");
    false
}

/// Seconds from an environment variable, or a default.
pub fn env_secs(var: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `api` has no object `name`.
pub async fn wait_gone<K>(api: &Api<K>, name: &str, timeout: Duration)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let what = format!("{name} gone");
    eventually(timeout, &what, || async {
        api.get_opt(name).await.unwrap().is_none().then_some(())
    })
    .await;
}

async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("tau-operator-tests").force();
    crds.patch(
        "twitchchannels.tau.dev",
        &params,
        &Patch::Apply(TwitchChannel::crd()),
    )
    .await
    .expect("install the CRD");
    eventually(Duration::from_secs(30), "CRD Established", || async {
        let crd = crds.get("twitchchannels.tau.dev").await.ok()?;
        let conditions = crd.status?.conditions?;
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;
}

impl World {
    /// Starts a world; `tune` adjusts the operator config.
    pub async fn start(test: &str, tune: impl FnOnce(&mut Config)) -> World {
        let client = Client::try_default().await.expect("client from KUBECONFIG");
        install_crd(&client).await;
        let ns = format!("{test}-{:x}", rand::random::<u32>());
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(ns.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .expect("namespace");
        let twitch = FakeTwitch::start_with(Options {
            // Callbacks name hosts that do not exist: never POST to them.
            auto_verify_webhooks: false,
            ..Options::default()
        })
        .await;
        let world_client = client.clone();
        let mut config = Config::for_tests(&twitch.api_url(), &twitch.auth_url());
        config.namespaces = vec![ns.clone()];
        config.identity = Some(format!("test-{ns}"));
        tune(&mut config);
        let metrics = Arc::new(Metrics::default());
        // The test itself acts as admin (namespaces, CRD, /status patches);
        // the operator may run with other credentials: TAU_OPERATOR_KUBECONFIG
        // (the chart's ServiceAccount token, to prove its RBAC is enough).
        let op_client = match std::env::var_os("TAU_OPERATOR_KUBECONFIG") {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .expect("TAU_OPERATOR_KUBECONFIG readable");
                let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .expect("TAU_OPERATOR_KUBECONFIG valid");
                tau_operator::run::client_from(config, metrics.clone()).expect("operator client")
            }
            None => tau_operator::run::client(metrics.clone())
                .await
                .expect("operator client"),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stop = CancellationToken::new();
        let (m, s) = (metrics.clone(), stop.clone());
        let operator = tokio::spawn(async move {
            tau_operator::run::run(config, op_client, m, listener, s)
                .await
                .expect("operator runs");
        });
        let world = World {
            client: world_client,
            ns,
            twitch,
            metrics,
            stop,
            operator,
        };
        world.credentials("twitch-app").await;
        world
    }

    /// Creates the Twitch app credentials Secret.
    pub async fn credentials(&self, name: &str) {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(
                [
                    (
                        "client-id".to_string(),
                        ByteString(FakeTwitch::CLIENT_ID.into()),
                    ),
                    (
                        "client-secret".to_string(),
                        ByteString(FakeTwitch::CLIENT_SECRET.into()),
                    ),
                ]
                .into(),
            ),
            ..Secret::default()
        };
        self.api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await
            .expect("credentials");
    }

    /// A namespaced API in the test namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Applies a webhook channel `name` for the fake broadcaster with `events`.
    pub async fn apply_channel(&self, name: &str, events: &[&str]) -> TwitchChannel {
        let spec = json!({
            "broadcaster": FakeTwitch::BROADCASTER_LOGIN,
            "credentials": {"secretName": "twitch-app"},
            "events": events,
            "ingress": {"host": format!("{name}.{}.example.com", self.ns), "className": "test"},
        });
        self.apply_spec(name, spec).await
    }

    /// Applies channel `name` with exactly `spec` (server-side apply).
    pub async fn apply_spec(&self, name: &str, spec: serde_json::Value) -> TwitchChannel {
        let body = json!({
            "apiVersion": "tau.dev/v1alpha1", "kind": "TwitchChannel",
            "metadata": {"name": name},
            "spec": spec,
        });
        self.api::<TwitchChannel>()
            .patch(
                name,
                &PatchParams::apply("tau-tests").force(),
                &Patch::Apply(&body),
            )
            .await
            .expect("apply channel")
    }

    /// The channel's webhook callback.
    pub fn callback(&self, name: &str) -> String {
        format!("https://{name}.{}.example.com/twitch/eventsub", self.ns)
    }

    /// `type` of every subscription at the fake delivering to channel `name`, sorted.
    pub fn subscribed(&self, name: &str) -> Vec<String> {
        let callback = self.callback(name);
        let mut kinds: Vec<String> = self
            .twitch
            .subscriptions()
            .into_iter()
            .filter(|s| matches!(&s.transport, tau_fake_twitch::Transport::Webhook { callback: c, .. } if *c == callback))
            .map(|s| s.sub_type)
            .collect();
        kinds.sort();
        kinds
    }

    /// The channel's condition `type_`, once its status describes the current generation.
    pub async fn condition(&self, name: &str, type_: &str) -> Option<Condition> {
        let tc = self.api::<TwitchChannel>().get_opt(name).await.ok()??;
        let status = tc.status?;
        if status.observed_generation != tc.metadata.generation {
            return None;
        }
        status.conditions.into_iter().find(|c| c.type_ == type_)
    }

    /// Waits until condition `type_` has `status`; returns it.
    pub async fn wait_condition(&self, name: &str, type_: &str, status: &str) -> Condition {
        let what = format!("{name}: {type_}={status}");
        eventually(Duration::from_secs(60), &what, || async {
            self.condition(name, type_)
                .await
                .filter(|c| c.status == status)
        })
        .await
    }

    /// Plays kubelet and Deployment controller (there are none here): every
    /// relay Deployment in the namespace reports all its replicas ready
    /// from now on, so webhook channels get their subscriptions.
    pub fn relays_become_ready(&self) {
        let deployments: Api<Deployment> = self.api();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                for d in deployments
                    .list(&Default::default())
                    .await
                    .map(|l| l.items)
                    .unwrap_or_default()
                {
                    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    let ready = d
                        .status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0);
                    if ready != want {
                        let status = json!({"status": {"observedGeneration": d.metadata.generation,
                            "replicas": want, "readyReplicas": want, "availableReplicas": want, "updatedReplicas": want}});
                        let name = d.metadata.name.clone().unwrap_or_default();
                        let _ = deployments
                            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                            .await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
    }

    /// Stops the operator (graceful drain).
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.operator)
            .await
            .expect("operator drains within 30 s")
            .expect("operator task");
    }
}
