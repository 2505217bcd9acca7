//! The `TwitchChannel` custom resource (`tau.dev/v1alpha1`).
//!
//! One object per Twitch channel: who the broadcaster is, where the Twitch
//! app's credentials live, which EventSub types to deliver and how, and how
//! to run the relay. Validation that the apiserver can do on its own is
//! declared here as CEL rules (login format, replica range, immutable
//! broadcaster, name short enough for child names) so a bad object is
//! rejected at `kubectl apply` time instead of failing a reconcile later.
//! The YAML in `crds/` is generated from these types by the `crdgen` binary.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group owned by this project.
pub const GROUP: &str = "tau.dev";

/// Desired state of one Twitch channel's relay and subscriptions.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tau.dev",
    version = "v1alpha1",
    kind = "TwitchChannel",
    namespaced,
    shortname = "tc",
    status = "TwitchChannelStatus",
    derive = "PartialEq",
    doc = "A Twitch channel served by a TAU relay, with its EventSub subscriptions.",
    validation = Rule::new("size(self.metadata.name) <= 50").message("metadata.name must be at most 50 characters (child objects are named tau-<name>)"),
    printcolumn(name = "Broadcaster", type_ = "string", json_path = ".spec.broadcaster"),
    printcolumn(name = "Transport", type_ = "string", json_path = ".status.transport"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Subscriptions", type_ = "string", json_path = ".status.subscriptionsReady"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct TwitchChannelSpec {
    /// The broadcaster's Twitch login (lowercase). Immutable: a relay's stored
    /// events and tokens belong to one channel.
    #[x_kube(
        validation = Rule::new("self.matches('^[a-z0-9_]{1,25}$')").message("broadcaster must be a Twitch login: 1-25 of a-z, 0-9, _"),
        validation = Rule::new("self == oldSelf").message("broadcaster is immutable: create a new TwitchChannel instead")
    )]
    #[schemars(length(max = 25))]
    pub broadcaster: String,
    /// The Secret holding the Twitch application's client id and secret.
    pub credentials: CredentialsRef,
    /// EventSub types to deliver: `channel.follow`, `channel.follow@2`, or
    /// `default` for the streamer-bot set.
    #[serde(default = "default_events")]
    #[schemars(length(max = 100))]
    pub events: Vec<String>,
    /// Other channels to watch (Twitch logins): their `stream.online` and
    /// `stream.offline` events are delivered with the channel's own, and
    /// the relay keeps a record of their streams. These need no
    /// authorization from the watched channels. The websocket transport
    /// can watch at most 5 (Twitch's cost limit for EventSub WebSocket).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 1000),
        inner(length(min = 1, max = 25), regex(pattern = "^[a-z0-9_]+$"))
    )]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub streamers: Vec<String>,
    /// How Twitch delivers events.
    #[serde(default)]
    pub transport: TransportMode,
    /// The relay Deployment.
    #[serde(default)]
    pub relay: RelaySpec,
    /// Public HTTPS ingress; required for webhook delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
    /// URL a browser reaches the relay at, when it is not the ingress (e.g.
    /// `http://localhost:8000` through a port-forward on kind). The OAuth
    /// redirect goes here, so it must match the Twitch app's redirect URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/?#]+$')").message("publicUrl must be a scheme and host, like http://localhost:8000"))]
    #[schemars(length(max = 253))]
    pub public_url: Option<String>,
    /// Database URL for the relay (default: the operator's `--default-database-url`,
    /// else an SQLite file in the pod). Only for URLs without a password:
    /// anyone who can read the channel reads it; use `databaseUrlSecret` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// The database URL from a key of a Secret in the channel's namespace
    /// (instead of `databaseUrl`). Rotating it rolls the relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url_secret: Option<SecretKeyRef>,
    /// Redis URL for the relay's bus (default: the operator's `--default-redis-url`).
    /// Only for URLs without a password; use `redisUrlSecret` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// The Redis URL from a key of a Secret in the channel's namespace
    /// (instead of `redisUrl`). Rotating it rolls the relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_url_secret: Option<SecretKeyRef>,
    /// How long the relay keeps events (`30d`, `12h`, `0` = forever).
    #[serde(default = "default_retention")]
    #[x_kube(validation = Rule::new("self.matches('^(0|[0-9]+(s|m|h|d))$')").message("retention must look like 30d, 12h, 90m or 0"))]
    #[schemars(length(max = 16))]
    pub retention: String,
}

/// One key of a Secret in the channel's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key in it.
    pub key: String,
}

/// Where the Twitch application's credentials are.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRef {
    /// Name of a Secret in the channel's namespace.
    pub secret_name: String,
    /// Key holding the client id.
    #[serde(default = "default_client_id_key")]
    pub client_id_key: String,
    /// Key holding the client secret.
    #[serde(default = "default_client_secret_key")]
    pub client_secret_key: String,
}

/// How Twitch delivers events to the relay.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransportMode {
    /// Webhook when an ingress host is set, else WebSocket.
    #[default]
    Auto,
    /// Signed POSTs to the ingress host (app token; subscriptions made by the operator).
    Webhook,
    /// EventSub WebSocket held by the relay pod (user token; no public URL needed).
    Websocket,
    /// A conduit whose shards are the relay replicas' sessions (app token).
    Conduit,
}

/// Settings of the relay Deployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RelaySpec {
    /// Number of relay pods (more than one needs a shared database).
    #[serde(default = "default_replicas")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 10").message("replicas must be between 1 and 10"))]
    pub replicas: i32,
    /// Relay image (default: the operator's `--relay-image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Resource requests and limits of the relay container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Annotations on the relay pods (a service mesh, a log shipper, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
    /// Node labels the relay pods must run on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the relay pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Secrets for pulling the relay image, besides the operator's
    /// (the chart's `imagePullSecrets`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// PriorityClass of the relay pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

impl Default for RelaySpec {
    fn default() -> Self {
        RelaySpec {
            replicas: default_replicas(),
            image: None,
            resources: None,
            pod_annotations: BTreeMap::new(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            image_pull_secrets: Vec::new(),
            priority_class_name: None,
        }
    }
}

/// Public ingress for the relay.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Public host name; the relay's URL becomes `https://<host>`.
    pub host: String,
    /// IngressClass to use (default: the cluster's default class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Secret with the TLS certificate for `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_name: Option<String>,
    /// Annotations on the Ingress: cert-manager's issuer, the controller's
    /// websocket timeouts (bots keep one socket open for hours), ...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What the operator observed and did.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TwitchChannelStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Twitch user id of the broadcaster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcaster_id: Option<String>,
    /// URL the relay is reached at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_url: Option<String>,
    /// The transport in effect (`auto` resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// Conduit id, for the conduit transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conduit_id: Option<String>,
    /// Fingerprint of the relay's generated secret key (a hash, not the
    /// key): remembers that stored Twitch tokens depend on it, so a deleted
    /// generated Secret is reported instead of silently replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_id: Option<String>,
    /// `present/desired` subscriptions at Twitch, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriptions_ready: Option<String>,
    /// The channel's subscriptions at Twitch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<SubscriptionStatus>,
    /// Ready, Authorized, SubscriptionsReady, RelayReady.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// One EventSub subscription at Twitch.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStatus {
    /// EventSub type.
    #[serde(rename = "type")]
    pub kind: String,
    /// EventSub version.
    pub version: String,
    /// Twitch's subscription id.
    pub id: String,
    /// Twitch's status (`enabled`, `webhook_callback_verification_pending`, ...).
    pub status: String,
}

fn default_events() -> Vec<String> {
    vec!["default".into()]
}

fn default_retention() -> String {
    "30d".into()
}

fn default_replicas() -> i32 {
    1
}

fn default_client_id_key() -> String {
    "client-id".into()
}

fn default_client_secret_key() -> String {
    "client-secret".into()
}

impl TwitchChannel {
    /// Every `(Secret, key)` of the user's that the relay reads at start
    /// (credentials, database and Redis URLs), in a stable order.
    pub fn secret_inputs(&self) -> Vec<SecretKeyRef> {
        let creds = &self.spec.credentials;
        let mut inputs: Vec<SecretKeyRef> = [&creds.client_id_key, &creds.client_secret_key]
            .into_iter()
            .map(|key| SecretKeyRef {
                name: creds.secret_name.clone(),
                key: key.clone(),
            })
            .collect();
        inputs.extend(self.spec.database_url_secret.clone());
        inputs.extend(self.spec.redis_url_secret.clone());
        inputs
    }

    /// The transport after resolving `auto`: webhook needs a public host.
    pub fn effective_transport(&self) -> TransportMode {
        match self.spec.transport {
            TransportMode::Auto if self.spec.ingress.is_some() => TransportMode::Webhook,
            TransportMode::Auto => TransportMode::Websocket,
            other => other,
        }
    }
}

impl TransportMode {
    /// The lowercase name, as in the spec and the relay's `TAU_TRANSPORT`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportMode::Auto => "auto",
            TransportMode::Webhook => "webhook",
            TransportMode::Websocket => "websocket",
            TransportMode::Conduit => "conduit",
        }
    }
}

/// The CRD as the YAML committed in `crds/` (with a generated-file header).
pub fn crd_yaml(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Result<String, serde_yaml::Error> {
    Ok(format!(
        "# Generated by `cargo run -p tau-operator --bin crdgen -- crds/twitchchannel.yaml`; do not edit.\n{}",
        serde_yaml::to_string(crd)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn defaults_fill_a_minimal_spec() {
        let spec: TwitchChannelSpec = serde_json::from_value(serde_json::json!({
            "broadcaster": "cooler_user",
            "credentials": {"secretName": "twitch-app"}
        }))
        .unwrap();
        assert_eq!(spec.events, ["default"]);
        assert_eq!(spec.transport, TransportMode::Auto);
        assert_eq!(spec.relay.replicas, 1);
        assert_eq!(spec.credentials.client_id_key, "client-id");
        assert_eq!(spec.retention, "30d");
    }

    #[test]
    fn auto_transport_follows_the_ingress() {
        let mut tc = crate::fixtures::channel("a");
        assert_eq!(tc.effective_transport(), TransportMode::Webhook);
        tc.spec.ingress = None;
        assert_eq!(tc.effective_transport(), TransportMode::Websocket);
        tc.spec.transport = TransportMode::Conduit;
        assert_eq!(tc.effective_transport(), TransportMode::Conduit);
    }

    #[test]
    fn committed_crd_yaml_matches_the_rust_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/twitchchannel.yaml");
        let generated = crd_yaml(&TwitchChannel::crd()).unwrap();
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "crds/twitchchannel.yaml is stale: run `cargo run -p tau-operator --bin crdgen -- crds/twitchchannel.yaml`"
        );
    }

    #[test]
    fn schema_carries_cel_rules_and_the_conditions_list_map() {
        let crd = serde_json::to_string(&TwitchChannel::crd()).unwrap();
        for needle in [
            "self == oldSelf",
            "^[a-z0-9_]{1,25}$",
            "self >= 1 && self <= 10",
            r#""x-kubernetes-list-type":"map""#,
            r#""x-kubernetes-list-map-keys":["type"]"#,
            r#""shortNames":["tc"]"#,
            r#""status":{}"#,
        ] {
            assert!(crd.contains(needle), "CRD lacks {needle}");
        }
    }
}
