//! The relay Deployment.
//!
//! Hardened the way a public-facing service should be: non-root (65534),
//! read-only root filesystem, no privilege escalation, every capability
//! dropped, the runtime's default seccomp profile, no service-account token
//! (the relay never calls the Kubernetes API). The only writable paths are
//! `/var/lib/tau` (SQLite, generated key file: the channel's
//! PersistentVolumeClaim when the relay keeps its state in the pod, see
//! `storage.rs`, else an emptyDir) and `/tmp` (an emptyDir). A relay on its
//! claim is replaced with the Recreate strategy: one SQLite writer, and a
//! ReadWriteOnce volume is never mounted by two pods.
//! Configuration is env: plain values for what is public, `secretKeyRef`s
//! into the channel's Secret and the user's credentials Secret for the rest.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, LocalObjectReference, PersistentVolumeClaimVolumeSource, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use kube::ResourceExt;

use super::secret::{
    redis_url, KEY_API_TOKEN, KEY_DATABASE_URL, KEY_REDIS_URL, KEY_SECRET_KEY, KEY_WEBHOOK_SECRET,
};
use super::storage::keeps_state_in_pod;
use super::{child_meta, child_name, labels, relay_url, selector_labels};
use crate::catalog;
use crate::config::Config;
use crate::crd::{TransportMode, TwitchChannel};

/// Port the relay listens on inside the pod.
pub const PORT: i32 = 8000;
/// The unprivileged `nobody` user distroless images run as.
const NOBODY: i64 = 65534;

fn plain(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// The relay's environment, in a stable order.
fn env(tc: &TwitchChannel, config: &Config) -> Vec<EnvVar> {
    let own = child_name(&tc.name_any());
    let creds = &tc.spec.credentials;
    let (types, _unknown) = catalog::resolve(&tc.spec.events);
    let types: Vec<String> = types.iter().map(|(k, v)| format!("{k}@{v}")).collect();
    let mut env = vec![
        plain("TAU_LISTEN", format!("0.0.0.0:{PORT}")),
        plain("TAU_PUBLIC_URL", relay_url(tc)),
        plain("TAU_TRANSPORT", tc.effective_transport().as_str()),
        plain(
            "TAU_INSTANCE",
            super::instance_name(&tc.namespace().unwrap_or_default(), &tc.name_any()),
        ),
        plain("TAU_RETENTION", tc.spec.retention.clone()),
        plain("TAU_SECRET_KEY_FILE", "/var/lib/tau/secret.key"),
        plain("TAU_LOG_FORMAT", "json"),
        plain("TWITCH_BROADCASTER", tc.spec.broadcaster.clone()),
        plain("TWITCH_API_URL", config.helix_base()),
        plain("TWITCH_AUTH_URL", config.oauth_base()),
        plain("TWITCH_EVENTSUB_WS_URL", config.eventsub_ws_url()),
        match &tc.spec.database_url_secret {
            Some(url) => from_secret("TAU_DATABASE_URL", &url.name, &url.key),
            None => from_secret("TAU_DATABASE_URL", &own, KEY_DATABASE_URL),
        },
        from_secret("TAU_SECRET_KEY", &own, KEY_SECRET_KEY),
        from_secret("TAU_API_TOKEN", &own, KEY_API_TOKEN),
        from_secret("TWITCH_WEBHOOK_SECRET", &own, KEY_WEBHOOK_SECRET),
        from_secret("TWITCH_CLIENT_ID", &creds.secret_name, &creds.client_id_key),
        from_secret(
            "TWITCH_CLIENT_SECRET",
            &creds.secret_name,
            &creds.client_secret_key,
        ),
    ];
    if matches!(
        tc.effective_transport(),
        TransportMode::Websocket | TransportMode::Conduit
    ) {
        // The relay subscribes itself (its session, or its conduit): it needs
        // the list, which spec.events decides (not the relay's dashboard).
        env.push(plain("TAU_EVENTSUB_TYPES", types.join(",")));
        env.push(plain("TAU_EVENTSUB_TYPES_FIXED", "true"));
    } else {
        // The operator owns the subscriptions; the Deployment (and so the
        // pods) stay unchanged when spec.events changes.
        env.push(plain("TAU_MANAGE_SUBSCRIPTIONS", "false"));
    }
    if !tc.spec.streamers.is_empty() {
        // The relay records the watched streamers' streams (and, for the
        // transports it subscribes itself, subscribes to them).
        env.push(plain("TAU_STREAMERS", tc.spec.streamers.join(",")));
    }
    if let Some(url) = &tc.spec.redis_url_secret {
        env.push(from_secret("TAU_REDIS_URL", &url.name, &url.key));
    } else if redis_url(tc, config).is_some() {
        env.push(from_secret("TAU_REDIS_URL", &own, KEY_REDIS_URL));
    }
    env
}

fn probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// Requests and limits when the channel sets none: the relay is small.
fn default_resources() -> ResourceRequirements {
    let q = |s: &str| Quantity(s.into());
    ResourceRequirements {
        requests: Some([("cpu".into(), q("50m")), ("memory".into(), q("64Mi"))].into()),
        limits: Some([("memory".into(), q("256Mi"))].into()),
        ..ResourceRequirements::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// `/var/lib/tau`: the channel's claim when the state lives in the pod.
fn data_volume(tc: &TwitchChannel, config: &Config) -> Volume {
    if !keeps_state_in_pod(tc, config) {
        return empty_dir("data");
    }
    Volume {
        name: "data".into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: child_name(&tc.name_any()),
            read_only: None,
        }),
        ..Volume::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..VolumeMount::default()
    }
}

fn container(tc: &TwitchChannel, config: &Config) -> Container {
    Container {
        name: "relay".into(),
        image: Some(
            tc.spec
                .relay
                .image
                .clone()
                .unwrap_or_else(|| config.relay_image.clone()),
        ),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: Some(env(tc, config)),
        liveness_probe: Some(probe("/healthz", 10, 3)),
        readiness_probe: Some(probe("/readyz", 5, 2)),
        resources: Some(
            tc.spec
                .relay
                .resources
                .clone()
                .unwrap_or_else(default_resources),
        ),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(NOBODY),
            run_as_group: Some(NOBODY),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![mount("data", "/var/lib/tau"), mount("tmp", "/tmp")]),
        ..Container::default()
    }
}

/// The operator's pull secrets, then the channel's, without repeats.
fn pull_secrets(tc: &TwitchChannel, config: &Config) -> Option<Vec<LocalObjectReference>> {
    let mut names: Vec<String> = config.relay_image_pull_secrets.clone();
    for own in &tc.spec.relay.image_pull_secrets {
        if !names.contains(&own.name) {
            names.push(own.name.clone());
        }
    }
    names.retain(|n| !n.is_empty());
    (!names.is_empty()).then(|| {
        names
            .into_iter()
            .map(|name| LocalObjectReference { name })
            .collect()
    })
}

/// The desired relay Deployment.
pub fn deployment(tc: &TwitchChannel, config: &Config) -> Deployment {
    let relay = &tc.spec.relay;
    Deployment {
        metadata: child_meta(tc),
        spec: Some(DeploymentSpec {
            replicas: Some(tc.spec.relay.replicas),
            strategy: keeps_state_in_pod(tc, config).then(|| DeploymentStrategy {
                type_: Some("Recreate".into()),
                rolling_update: None,
            }),
            selector: LabelSelector {
                match_labels: Some(selector_labels(tc)),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(tc)),
                    annotations: (!relay.pod_annotations.is_empty())
                        .then(|| relay.pod_annotations.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    image_pull_secrets: pull_secrets(tc, config),
                    node_selector: (!relay.node_selector.is_empty())
                        .then(|| relay.node_selector.clone()),
                    tolerations: (!relay.tolerations.is_empty()).then(|| relay.tolerations.clone()),
                    priority_class_name: relay.priority_class_name.clone(),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(NOBODY),
                        run_as_group: Some(NOBODY),
                        fs_group: Some(NOBODY),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container(tc, config)],
                    volumes: Some(vec![data_volume(tc, config), empty_dir("tmp")]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::channel;

    fn config() -> Config {
        Config::for_tests("http://fake/helix", "http://fake/oauth2")
    }

    fn env_of(d: &Deployment) -> Vec<EnvVar> {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .env
            .clone()
            .unwrap()
    }

    #[test]
    fn replicas_image_probes_and_resources() {
        let mut tc = channel("a");
        tc.spec.relay.replicas = 3;
        let d = deployment(&tc, &config());
        let spec = d.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        let c = &spec.template.spec.as_ref().unwrap().containers[0];
        assert_eq!(c.image.as_deref(), Some("tau-relay:test"));
        let live = c
            .liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(live.path.as_deref(), Some("/healthz"));
        let ready = c
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(ready.path.as_deref(), Some("/readyz"));
        assert!(c.resources.as_ref().unwrap().requests.is_some());
        tc.spec.relay.image = Some("mine:1".into());
        let d = deployment(&tc, &config());
        let c = &d.spec.unwrap().template.spec.unwrap().containers[0];
        assert_eq!(c.image.as_deref(), Some("mine:1"));
    }

    #[test]
    fn urls_from_the_users_secret_are_read_from_there() {
        let mut tc = channel("a");
        tc.spec.database_url_secret = Some(crate::crd::SecretKeyRef {
            name: "db".into(),
            key: "url".into(),
        });
        tc.spec.redis_url_secret = Some(crate::crd::SecretKeyRef {
            name: "cache".into(),
            key: "url".into(),
        });
        let d = deployment(&tc, &config());
        let env = env_of(&d);
        let from = |name: &str| {
            let r = env
                .iter()
                .find(|e| e.name == name)
                .and_then(|e| e.value_from.clone())
                .and_then(|v| v.secret_key_ref)
                .unwrap();
            (r.name, r.key)
        };
        assert_eq!(from("TAU_DATABASE_URL"), ("db".into(), "url".into()));
        assert_eq!(from("TAU_REDIS_URL"), ("cache".into(), "url".into()));
        let pod = d.spec.unwrap().template.spec.unwrap();
        let data = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "data")
            .unwrap();
        assert!(data.empty_dir.is_some(), "a shared database: no claim");
    }

    #[test]
    fn scheduling_pull_secrets_and_pod_annotations_reach_the_pods() {
        let mut config = config();
        config.relay_image_pull_secrets = vec!["registry".into()];
        let mut tc = channel("a");
        let plain = deployment(&tc, &config).spec.unwrap().template;
        assert!(plain.metadata.unwrap().annotations.is_none());
        let pod = plain.spec.unwrap();
        assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "registry");
        assert!(pod.node_selector.is_none() && pod.tolerations.is_none());

        let relay = &mut tc.spec.relay;
        relay.pod_annotations = [("mesh/inject".to_string(), "false".to_string())].into();
        relay.node_selector = [("pool".to_string(), "bots".to_string())].into();
        relay.tolerations = vec![k8s_openapi::api::core::v1::Toleration {
            key: Some("dedicated".into()),
            operator: Some("Exists".into()),
            ..Default::default()
        }];
        relay.image_pull_secrets = vec![
            LocalObjectReference {
                name: "registry".into(),
            },
            LocalObjectReference { name: "own".into() },
        ];
        relay.priority_class_name = Some("streams".into());
        let template = deployment(&tc, &config).spec.unwrap().template;
        assert_eq!(
            template.metadata.unwrap().annotations.unwrap()["mesh/inject"],
            "false"
        );
        let pod = template.spec.unwrap();
        let pulls: Vec<String> = pod
            .image_pull_secrets
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(pulls, ["registry", "own"], "no repeats, operator's first");
        assert_eq!(pod.node_selector.unwrap()["pool"], "bots");
        assert_eq!(
            pod.tolerations.unwrap()[0].key.as_deref(),
            Some("dedicated")
        );
        assert_eq!(pod.priority_class_name.as_deref(), Some("streams"));
    }

    #[test]
    fn pods_are_hardened_and_only_their_volumes_are_writable() {
        let mut config = config();
        config.default_database_url = Some("postgres://chart/tau".into());
        let d = deployment(&channel("a"), &config);
        let pod = d.spec.unwrap().template.spec.unwrap();
        let psc = pod.security_context.unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.run_as_user, Some(65534));
        assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let c = &pod.containers[0];
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..])
        );
        assert_eq!(pod.automount_service_account_token, Some(false));
        let volumes = pod.volumes.unwrap();
        assert!(
            volumes.iter().all(|v| v.empty_dir.is_some()),
            "with a database nothing in the pod is durable"
        );
        let mounts = c.volume_mounts.as_ref().unwrap();
        assert!(mounts.iter().any(|m| m.mount_path == "/var/lib/tau"));
    }

    #[test]
    fn state_in_the_pod_lives_on_the_channels_claim_and_pods_are_recreated() {
        let d = deployment(&channel("a"), &config());
        let spec = d.spec.unwrap();
        assert_eq!(
            spec.strategy.unwrap().type_.as_deref(),
            Some("Recreate"),
            "never two pods on one SQLite file"
        );
        let pod = spec.template.spec.unwrap();
        let data = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "data")
            .unwrap();
        assert_eq!(data.persistent_volume_claim.unwrap().claim_name, "tau-a");
        let mount = pod.containers[0]
            .volume_mounts
            .clone()
            .unwrap()
            .into_iter()
            .find(|m| m.name == "data")
            .unwrap();
        assert_eq!(mount.mount_path, "/var/lib/tau");
        let env = pod.containers[0].env.clone().unwrap();
        let get = |n: &str| {
            env.iter()
                .find(|e| e.name == n)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(
            get("TAU_DATABASE_URL"),
            None,
            "the URL is a Secret reference"
        );
        assert_eq!(
            get("TAU_SECRET_KEY_FILE").as_deref(),
            Some("/var/lib/tau/secret.key")
        );
        let mut config = config();
        config.default_database_url = Some("postgres://chart/tau".into());
        let d = deployment(&channel("a"), &config);
        assert!(
            d.spec.unwrap().strategy.is_none(),
            "rolling updates with a database"
        );
    }

    #[test]
    fn env_configures_the_relay_with_secrets_by_reference() {
        let env = env_of(&deployment(&channel("a"), &config()));
        let get = |n: &str| env.iter().find(|e| e.name == n).cloned();
        assert_eq!(
            get("TAU_LISTEN").unwrap().value.as_deref(),
            Some("0.0.0.0:8000")
        );
        assert_eq!(
            get("TAU_PUBLIC_URL").unwrap().value.as_deref(),
            Some("https://a.tau.example.com")
        );
        assert_eq!(
            get("TAU_TRANSPORT").unwrap().value.as_deref(),
            Some("webhook")
        );
        assert!(
            get("TAU_EVENTSUB_TYPES").is_none(),
            "webhook: the operator subscribes"
        );
        assert_eq!(
            get("TAU_MANAGE_SUBSCRIPTIONS").unwrap().value.as_deref(),
            Some("false")
        );
        assert_eq!(
            get("TWITCH_API_URL").unwrap().value.as_deref(),
            Some("http://fake/helix")
        );
        assert_eq!(
            get("TWITCH_EVENTSUB_WS_URL").unwrap().value.as_deref(),
            Some("ws://127.0.0.1:1/ws")
        );
        for (name, secret, key) in [
            ("TAU_SECRET_KEY", "tau-a", "secret-key"),
            ("TAU_API_TOKEN", "tau-a", "api-token"),
            ("TAU_DATABASE_URL", "tau-a", "database-url"),
            ("TWITCH_WEBHOOK_SECRET", "tau-a", "webhook-secret"),
            ("TWITCH_CLIENT_ID", "twitch-app", "client-id"),
            ("TWITCH_CLIENT_SECRET", "twitch-app", "client-secret"),
        ] {
            let var = get(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(var.value.is_none(), "{name} must not be plain");
            let r = var.value_from.unwrap().secret_key_ref.unwrap();
            assert_eq!((r.name.as_str(), r.key.as_str()), (secret, key), "{name}");
        }
        assert!(get("TAU_REDIS_URL").is_none());
        let mut tc = channel("a");
        tc.spec.ingress = None;
        let env = env_of(&deployment(&tc, &config()));
        let types = env.iter().find(|e| e.name == "TAU_EVENTSUB_TYPES").unwrap();
        assert_eq!(
            types.value.as_deref(),
            Some("channel.follow@2,stream.online@1")
        );
        let fixed = env.iter().find(|e| e.name == "TAU_EVENTSUB_TYPES_FIXED");
        assert_eq!(
            fixed.and_then(|e| e.value.as_deref()),
            Some("true"),
            "spec.events decides, not the dashboard"
        );
        let mut config = config();
        config.default_redis_url = Some("redis://r".into());
        let env = env_of(&deployment(&channel("a"), &config));
        assert!(env.iter().any(|e| e.name == "TAU_REDIS_URL"));
    }

    #[test]
    fn watched_streamers_reach_the_relay_only_when_listed() {
        let env = env_of(&deployment(&channel("a"), &config()));
        assert!(env.iter().all(|e| e.name != "TAU_STREAMERS"));
        let mut tc = channel("a");
        tc.spec.streamers = vec!["shroud".into(), "pokimane".into()];
        let env = env_of(&deployment(&tc, &config()));
        let streamers = env.iter().find(|e| e.name == "TAU_STREAMERS").unwrap();
        assert_eq!(streamers.value.as_deref(), Some("shroud,pokimane"));
    }
}
