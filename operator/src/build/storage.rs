//! Durable state for a relay that keeps it in the pod.
//!
//! With no database configured (neither `spec.databaseUrl` nor the
//! operator's default) the relay uses an SQLite file under `/var/lib/tau`,
//! which holds the channel's events, its API tokens and the broadcaster's
//! encrypted Twitch tokens. That directory is a PersistentVolumeClaim named
//! like every child, so the state survives any pod restart (rollout, drain,
//! `kubectl delete pod`, `helm upgrade`); it goes with the channel (owner
//! reference). A relay with a database URL keeps nothing in the pod and gets
//! an emptyDir instead.
//!
//! A relay that keeps its state in the pod keeps doing so when a default
//! database appears later ([`channel_config`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use k8s_openapi::ByteString;

use super::child_meta;
use super::secret::{database_url, KEY_DATABASE_URL};
use crate::config::Config;
use crate::crd::TwitchChannel;

/// The operator's settings as they apply to one channel, given its live
/// Secret's data (`existing`). A channel that names no database and whose
/// relay already keeps its state on its claim (the Secret says SQLite)
/// keeps it there when the operator gains a default database or Redis
/// later (`helm upgrade --set postgresql.enabled=true`): following the new
/// default would restart it on an empty database, leaving its events, API
/// tokens and Twitch authorization behind on the claim. New channels get
/// the defaults; to move an old one, set its `spec.databaseUrl[Secret]`.
pub fn channel_config<'a>(
    tc: &TwitchChannel,
    config: &'a Config,
    existing: Option<&BTreeMap<String, ByteString>>,
) -> Cow<'a, Config> {
    let on_claim = existing
        .and_then(|d| d.get(KEY_DATABASE_URL))
        .is_some_and(|url| url.0.starts_with(b"sqlite:"));
    let has_defaults = config.default_database_url.is_some() || config.default_redis_url.is_some();
    let names_one = tc.spec.database_url.is_some() || tc.spec.database_url_secret.is_some();
    if !names_one && on_claim && has_defaults {
        let mut own = config.clone();
        own.default_database_url = None;
        own.default_redis_url = None;
        Cow::Owned(own)
    } else {
        Cow::Borrowed(config)
    }
}

/// True when the relay's state lives in the pod (an SQLite database URL;
/// a URL from the user's Secret is taken to be a shared database).
pub fn keeps_state_in_pod(tc: &TwitchChannel, config: &Config) -> bool {
    tc.spec.database_url_secret.is_none() && database_url(tc, config).starts_with("sqlite:")
}

/// The claim for the relay's `/var/lib/tau`, when its state lives in the pod.
pub fn volume_claim(tc: &TwitchChannel, config: &Config) -> Option<PersistentVolumeClaim> {
    if !keeps_state_in_pod(tc, config) {
        return None;
    }
    Some(PersistentVolumeClaim {
        metadata: child_meta(tc),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: config.relay_storage_class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".into(),
                    Quantity(config.relay_storage_size.clone()),
                )])),
                limits: None,
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::channel;

    fn config() -> Config {
        Config::for_tests("http://fake/helix", "http://fake/oauth2")
    }

    #[test]
    fn sqlite_relays_get_a_claim_named_like_their_children() {
        let mut config = config();
        let pvc = volume_claim(&channel("a"), &config).expect("no database: a claim");
        assert_eq!(pvc.metadata.name.as_deref(), Some("tau-a"));
        assert_eq!(
            pvc.metadata.owner_references.as_ref().unwrap()[0].uid,
            "uid-a"
        );
        let spec = pvc.spec.unwrap();
        assert_eq!(spec.access_modes.unwrap(), vec!["ReadWriteOnce"]);
        assert_eq!(spec.storage_class_name, None, "the cluster's default class");
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"],
            Quantity("1Gi".into())
        );
        config.relay_storage_class = Some("fast".into());
        config.relay_storage_size = "5Gi".into();
        let spec = volume_claim(&channel("a"), &config).unwrap().spec.unwrap();
        assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"],
            Quantity("5Gi".into())
        );
    }

    #[test]
    fn relays_with_a_database_keep_nothing_in_the_pod() {
        let mut config = config();
        let mut tc = channel("a");
        tc.spec.database_url = Some("postgres://own/db".into());
        assert!(volume_claim(&tc, &config).is_none());
        tc.spec.database_url = Some("sqlite:///var/lib/tau/other.db".into());
        assert!(
            volume_claim(&tc, &config).is_some(),
            "an explicit SQLite file"
        );
        config.default_database_url = Some("postgres://chart/tau".into());
        assert!(volume_claim(&channel("a"), &config).is_none());
    }

    fn secret_data(database_url: &str) -> BTreeMap<String, ByteString> {
        BTreeMap::from([(
            KEY_DATABASE_URL.to_string(),
            ByteString(database_url.as_bytes().to_vec()),
        )])
    }

    #[test]
    fn a_channel_on_its_claim_stays_there_when_a_default_database_appears() {
        let mut config = config();
        config.default_database_url = Some("postgres://chart/tau".into());
        config.default_redis_url = Some("redis://chart".into());
        let on_claim = secret_data("sqlite:///var/lib/tau/tau.db");
        let tc = channel("a");
        let own = channel_config(&tc, &config, Some(&on_claim));
        assert_eq!(own.default_database_url, None);
        assert_eq!(
            own.default_redis_url, None,
            "nor gains a bus it never needed"
        );
        assert!(volume_claim(&tc, &own).is_some(), "its claim stays mounted");
        assert_eq!(database_url(&tc, &own), "sqlite:///var/lib/tau/tau.db");

        // New channels (no Secret yet) and ones already on a database follow the defaults.
        assert!(matches!(
            channel_config(&tc, &config, None),
            Cow::Borrowed(_)
        ));
        let on_postgres = secret_data("postgres://old/tau");
        assert!(matches!(
            channel_config(&tc, &config, Some(&on_postgres)),
            Cow::Borrowed(_)
        ));
        // A database named in the spec always wins.
        let mut named = channel("a");
        named.spec.database_url = Some("postgres://own/db".into());
        let cfg = channel_config(&named, &config, Some(&on_claim));
        assert_eq!(database_url(&named, &cfg), "postgres://own/db");
    }
}
