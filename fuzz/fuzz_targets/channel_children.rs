//! The operator's `TwitchChannel` spec → children builders (`build::*`):
//! a channel decoded from JSON (its spec as the API server would hand it
//! over, anything that deserializes, CEL rules not assumed), one of the
//! operator's default set-ups, and the live generated Secret's data, run
//! through what a reconcile builds: `channel_config`, `validate::problems`,
//! `secret`, `deployment` + `inputs_checksum`/`stamp_inputs`, `service`,
//! `ingress`, `volume_claim`, `relay_url`, `instance_name`.
//!
//! Input: `{"name", "namespace", "spec", "defaults", "existing"}`; `name`
//! and `namespace` must be what the API server allows (DNS labels, a
//! channel name of at most 50 characters, per the CRD), anything else is
//! skipped.
//!
//! Asserts: every child is `tau-<name>` in the channel's namespace, owned
//! by the channel and labelled with it; the Secret keeps each non-empty
//! generated value it already had and makes well-formed new ones (48
//! alphanumerics, 64 hex digits, `tau_` + 40); no generated secret, and no
//! database or Redis URL, appears in the Deployment; every secret env var
//! comes from a Secret; env names are unique; the pod runs as non-root
//! whatever the spec says; the pod template carries the selector's labels
//! and the inputs checksum; a claim exists exactly when state lives in the
//! pod; an ingress exactly when `spec.ingress` is set; the instance name is
//! a valid Postgres identifier; building twice (same randomness) gives the
//! same objects, and every child survives a JSON round trip.
#![no_main]

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use libfuzzer_sys::fuzz_target;
use rand::{rngs::StdRng, SeedableRng};
use serde::Deserialize;
use tau_operator::{
    build::{
        self, KEY_API_TOKEN, KEY_DATABASE_URL, KEY_REDIS_URL, KEY_SECRET_KEY, KEY_WEBHOOK_SECRET,
    },
    config::Config,
    crd::{TwitchChannel, TwitchChannelSpec},
    validate,
};

#[derive(Deserialize)]
struct Input {
    name: String,
    namespace: String,
    spec: TwitchChannelSpec,
    #[serde(default)]
    defaults: u8,
    #[serde(default)]
    existing: Option<BTreeMap<String, String>>,
}

/// A DNS-1123 label of at most `max` characters.
fn dns_label(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn config(defaults: u8) -> Config {
    let mut config =
        Config::for_tests("https://api.twitch.tv/helix", "https://id.twitch.tv/oauth2");
    if defaults & 1 != 0 {
        config.default_database_url = Some("postgres://tau:pw-db-default@postgres/tau".into());
    }
    if defaults & 2 != 0 {
        config.default_redis_url = Some("redis://:pw-redis-default@redis:6379".into());
    }
    if defaults & 4 != 0 {
        config.relay_image_pull_secrets = vec!["registry".into(), String::new()];
    }
    if defaults & 8 != 0 {
        config.relay_storage_class = Some("fast".into());
    }
    config
}

fn round_trip<T>(object: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_string(object).expect("a child serializes");
    let back: T = serde_json::from_str(&json).expect("a child deserializes");
    assert_eq!(&back, object, "{json}");
}

fn check_meta(meta: &ObjectMeta, tc: &TwitchChannel) {
    let name = tc.metadata.name.as_deref().unwrap();
    assert_eq!(meta.name.as_deref(), Some(format!("tau-{name}").as_str()));
    assert_eq!(meta.namespace, tc.metadata.namespace);
    assert_eq!(meta.labels.as_ref().unwrap()[build::CHANNEL_LABEL], name);
    let owners = meta.owner_references.as_ref().unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].uid, "uid-fuzz");
    assert_eq!(owners[0].controller, Some(true));
}

fn text(data: &BTreeMap<String, ByteString>, key: &str) -> String {
    String::from_utf8(data[key].0.clone()).expect("generated values are text")
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Input>(data) else {
        return;
    };
    if !dns_label(&input.name, 50) || !dns_label(&input.namespace, 63) {
        return;
    }
    let tc = TwitchChannel {
        metadata: ObjectMeta {
            name: Some(input.name.clone()),
            namespace: Some(input.namespace.clone()),
            uid: Some("uid-fuzz".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: input.spec,
        status: None,
    };
    let operator = config(input.defaults);
    let existing: Option<BTreeMap<String, ByteString>> = input.existing.map(|m| {
        m.into_iter()
            .map(|(k, v)| (k, ByteString(v.into_bytes())))
            .collect()
    });
    let config = build::channel_config(&tc, &operator, existing.as_ref());
    let _ = validate::problems(&tc, &config);

    // The Secret: generated values kept or well-formed.
    let secret = build::secret(
        &tc,
        &config,
        existing.as_ref(),
        &mut StdRng::seed_from_u64(7),
    );
    check_meta(&secret.metadata, &tc);
    let again = build::secret(
        &tc,
        &config,
        existing.as_ref(),
        &mut StdRng::seed_from_u64(7),
    );
    assert_eq!(secret, again, "the Secret is deterministic");
    round_trip(&secret);
    let data = secret.data.as_ref().unwrap();
    for key in [KEY_WEBHOOK_SECRET, KEY_SECRET_KEY, KEY_API_TOKEN] {
        match existing
            .as_ref()
            .and_then(|e| e.get(key))
            .filter(|v| !v.0.is_empty())
        {
            Some(kept) => assert_eq!(&data[key], kept, "{key} rotated"),
            None => {
                let value = text(data, key);
                let ok = match key {
                    KEY_WEBHOOK_SECRET => {
                        value.len() == 48 && value.bytes().all(|b| b.is_ascii_alphanumeric())
                    }
                    KEY_SECRET_KEY => {
                        value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
                    }
                    _ => {
                        value.len() == 44
                            && value.starts_with("tau_")
                            && value[4..].bytes().all(|b| b.is_ascii_alphanumeric())
                    }
                };
                assert!(ok, "{key} = {value:?}");
            }
        }
    }
    assert_eq!(
        data.contains_key(KEY_DATABASE_URL),
        tc.spec.database_url_secret.is_none()
    );
    if tc.spec.redis_url_secret.is_some() {
        assert!(!data.contains_key(KEY_REDIS_URL));
    }

    // The Deployment: no secret in it, secrets from Secrets, non-root.
    let mut deployment = build::deployment(&tc, &config);
    check_meta(&deployment.metadata, &tc);
    assert_eq!(
        deployment,
        build::deployment(&tc, &config),
        "the Deployment is deterministic"
    );
    let checksum = build::inputs_checksum(&tc, &BTreeMap::new(), data);
    build::stamp_inputs(&mut deployment, &checksum);
    round_trip(&deployment);
    let spec = deployment.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(tc.spec.relay.replicas));
    let template_meta = spec.template.metadata.as_ref().unwrap();
    assert_eq!(
        template_meta.annotations.as_ref().unwrap()[build::INPUTS_ANNOTATION],
        checksum
    );
    let template_labels = template_meta.labels.as_ref().unwrap();
    for (k, v) in spec.selector.match_labels.as_ref().unwrap() {
        assert_eq!(
            template_labels.get(k),
            Some(v),
            "the selector misses the pods"
        );
    }
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(
        pod.security_context.as_ref().unwrap().run_as_non_root,
        Some(true)
    );
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.containers.len(), 1);
    let container = &pod.containers[0];
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.privileged, Some(false));
    let env = container.env.as_ref().unwrap();
    let mut names = HashSet::new();
    for var in env {
        assert!(names.insert(var.name.as_str()), "env {} twice", var.name);
        let secret_var = matches!(
            var.name.as_str(),
            "TAU_DATABASE_URL"
                | "TAU_REDIS_URL"
                | "TAU_SECRET_KEY"
                | "TAU_API_TOKEN"
                | "TWITCH_WEBHOOK_SECRET"
                | "TWITCH_CLIENT_ID"
                | "TWITCH_CLIENT_SECRET"
        );
        if secret_var {
            assert!(
                var.value.is_none() && var.value_from.is_some(),
                "{} in plain env",
                var.name
            );
        }
    }
    // Values the spec itself holds may appear (an annotation, say).
    let rendered = serde_json::to_string(&deployment).unwrap();
    let spec_json = serde_json::to_string(&tc.spec).unwrap();
    let leaks = |value: &str| rendered.contains(value) && !spec_json.contains(value);
    for key in [KEY_WEBHOOK_SECRET, KEY_SECRET_KEY, KEY_API_TOKEN] {
        let generated = existing
            .as_ref()
            .and_then(|e| e.get(key))
            .is_none_or(|v| v.0.is_empty());
        assert!(
            !(generated && leaks(&text(data, key))),
            "{key} leaked into the Deployment"
        );
    }
    for url in [&operator.default_database_url, &operator.default_redis_url]
        .into_iter()
        .flatten()
    {
        assert!(!leaks(url), "a default URL leaked into the Deployment");
    }

    // Service, Ingress, claim.
    let service = build::service(&tc);
    check_meta(&service.metadata, &tc);
    round_trip(&service);
    let ingress = build::ingress(&tc);
    assert_eq!(ingress.is_some(), tc.spec.ingress.is_some());
    if let Some(ingress) = &ingress {
        check_meta(&ingress.metadata, &tc);
        round_trip(ingress);
    }
    let claim = build::volume_claim(&tc, &config);
    assert_eq!(claim.is_some(), build::keeps_state_in_pod(&tc, &config));
    if let Some(claim) = &claim {
        check_meta(&claim.metadata, &tc);
        round_trip(claim);
    }

    // Names and URLs.
    let instance = build::instance_name(&input.namespace, &input.name);
    assert!(
        instance.len() <= 63 && instance.starts_with("tc_"),
        "{instance}"
    );
    assert!(instance
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    assert!(build::webhook_callback(&tc).ends_with("/twitch/eventsub"));
    let _ = build::relay_url(&tc);
});
