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

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::child_meta;
use super::secret::database_url;
use crate::config::Config;
use crate::crd::TwitchChannel;

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
}
