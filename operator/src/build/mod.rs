//! Desired children of a `TwitchChannel`, built by pure functions.
//!
//! Nothing here talks to the API server: each builder takes the channel,
//! the operator config (and, for the Secret, what already exists) and
//! returns the object to server-side apply. That keeps the interesting
//! decisions (names, labels, env, security settings) in plain unit tests,
//! and leaves `apply` with only the mechanics.
//!
//! Every child is named `tau-<channel>`, carries the `app.kubernetes.io/*`
//! labels plus `tau.dev/channel=<channel>` (how orphans are found), and an
//! owner reference to the channel (how the garbage collector cleans up).

mod deployment;
mod inputs;
mod network;
mod secret;
mod storage;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::crd::TwitchChannel;

pub use deployment::{deployment, PORT};
pub use inputs::{inputs_checksum, key_id, stamp_inputs, UserSecrets, INPUTS_ANNOTATION};
pub use network::{ingress, service, SERVICE_PORT};
pub use secret::{
    secret, KEY_API_TOKEN, KEY_DATABASE_URL, KEY_REDIS_URL, KEY_SECRET_KEY, KEY_WEBHOOK_SECRET,
};
pub use storage::{channel_config, keeps_state_in_pod, volume_claim};

/// Label naming the channel a child belongs to; the orphan selector.
pub const CHANNEL_LABEL: &str = "tau.dev/channel";
/// `app.kubernetes.io/managed-by` value; the operator's watches select on it.
pub const MANAGER: &str = "tau-operator";
/// Label selector matching every child this operator manages.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=tau-operator";

/// Name of every child of channel `channel`.
pub fn child_name(channel: &str) -> String {
    format!("tau-{channel}")
}

/// The relay fleet's instance name (`TAU_INSTANCE`): its Postgres schema and
/// Redis channel prefix, so channels sharing the default Postgres and Redis
/// never see each other's events, tokens or leases. Unique per namespace and
/// name, within Postgres's 63-byte identifier limit.
pub fn instance_name(namespace: &str, channel: &str) -> String {
    // A readable part for people, and a hash of the exact namespace/name:
    // cleaning alone would map `a-b/c` and `a/b-c` to the same name.
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    let hash = format!("{namespace}/{channel}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let mut readable = format!("{}_{}", clean(namespace), clean(channel));
    readable.truncate(63 - "tc_".len() - 1 - 16);
    format!("tc_{readable}_{hash:016x}")
}

/// Labels every child carries.
pub fn labels(tc: &TwitchChannel) -> BTreeMap<String, String> {
    let name = tc.name_any();
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "tau-relay".into()),
        ("app.kubernetes.io/instance".into(), name.clone()),
        ("app.kubernetes.io/component".into(), "relay".into()),
        ("app.kubernetes.io/part-of".into(), "tau".into()),
        ("app.kubernetes.io/managed-by".into(), MANAGER.into()),
        (CHANNEL_LABEL.into(), name),
    ])
}

/// Labels that select the relay pods (a subset of [`labels`]; immutable once applied).
pub fn selector_labels(tc: &TwitchChannel) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "tau-relay".into()),
        (CHANNEL_LABEL.into(), tc.name_any()),
    ])
}

/// Selector listing every child of `channel` (used for orphan removal).
pub fn channel_selector(channel: &str) -> String {
    format!("{MANAGED_SELECTOR},{CHANNEL_LABEL}={channel}")
}

/// Controller owner reference to the channel.
pub fn owner(tc: &TwitchChannel) -> OwnerReference {
    tc.controller_owner_ref(&())
        .expect("a channel read from the API server has a name and uid")
}

/// Metadata of a child: name, namespace, labels, owner.
pub fn child_meta(tc: &TwitchChannel) -> ObjectMeta {
    ObjectMeta {
        name: Some(child_name(&tc.name_any())),
        namespace: tc.namespace(),
        labels: Some(labels(tc)),
        owner_references: Some(vec![owner(tc)]),
        ..ObjectMeta::default()
    }
}

/// The relay's URL: `https://<host>` behind the ingress, else the Service's DNS name.
pub fn relay_url(tc: &TwitchChannel) -> String {
    if let Some(url) = &tc.spec.public_url {
        return url.trim_end_matches('/').to_string();
    }
    match &tc.spec.ingress {
        Some(ingress) => format!("https://{}", ingress.host),
        None => format!(
            "http://{}.{}.svc",
            child_name(&tc.name_any()),
            tc.namespace().unwrap_or_else(|| "default".into())
        ),
    }
}

/// Where Twitch POSTs webhook notifications for this channel.
pub fn webhook_callback(tc: &TwitchChannel) -> String {
    format!("{}/twitch/eventsub", relay_url(tc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::channel;

    #[test]
    fn names_labels_and_owner() {
        let tc = channel("demo");
        let meta = child_meta(&tc);
        assert_eq!(meta.name.as_deref(), Some("tau-demo"));
        assert_eq!(meta.namespace.as_deref(), Some("ns"));
        let labels = meta.labels.unwrap();
        assert_eq!(labels[CHANNEL_LABEL], "demo");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "tau-operator");
        let owner = &meta.owner_references.unwrap()[0];
        assert_eq!(owner.kind, "TwitchChannel");
        assert_eq!(owner.api_version, "tau.dev/v1alpha1");
        assert_eq!(owner.uid, "uid-demo");
        assert_eq!(owner.controller, Some(true));
        assert!(selector_labels(&tc)
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v)));
    }

    #[test]
    fn urls_follow_the_ingress() {
        let mut tc = channel("demo");
        assert_eq!(relay_url(&tc), "https://demo.tau.example.com");
        assert_eq!(
            webhook_callback(&tc),
            "https://demo.tau.example.com/twitch/eventsub"
        );
        tc.spec.ingress = None;
        assert_eq!(relay_url(&tc), "http://tau-demo.ns.svc");
        assert_eq!(
            channel_selector("demo"),
            "app.kubernetes.io/managed-by=tau-operator,tau.dev/channel=demo"
        );
    }
}

#[cfg(test)]
mod instance_tests {
    use super::instance_name;

    #[test]
    fn instance_names_are_valid_unique_identifiers() {
        assert!(instance_name("streams", "my-channel").starts_with("tc_streams_my_channel_"));
        assert_eq!(
            instance_name("streams", "my-channel"),
            instance_name("streams", "my-channel"),
            "stable"
        );
        let long = instance_name(&"n".repeat(63), &"c".repeat(50));
        assert!(long.len() <= 63, "{long}");
        assert_ne!(long, instance_name(&"n".repeat(63), &"c".repeat(49)));
        for name in [instance_name("a-b", "c"), instance_name("a", "b-c"), long] {
            assert!(name.starts_with("tc_"));
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
        assert_ne!(
            instance_name("a-b", "c"),
            instance_name("a", "b-c"),
            "namespace/name boundary kept apart"
        );
    }
}

#[cfg(test)]
mod public_url_tests {
    use super::relay_url;
    use crate::crd::TwitchChannel;

    #[test]
    fn public_url_overrides_the_service_address() {
        let mut tc: TwitchChannel = crate::fixtures::channel("demo");
        assert_eq!(
            relay_url(&tc),
            "https://demo.tau.example.com",
            "the ingress by default"
        );
        tc.spec.ingress = None;
        assert_eq!(
            relay_url(&tc),
            "http://tau-demo.ns.svc",
            "else the Service address"
        );
        tc.spec.public_url = Some("http://localhost:8000/".into());
        assert_eq!(relay_url(&tc), "http://localhost:8000");
    }
}
