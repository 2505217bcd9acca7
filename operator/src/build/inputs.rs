//! What the relay reads from Secrets, fingerprinted onto its pod template.
//!
//! The relay takes its Twitch credentials and generated values from Secrets
//! as environment variables, which a running container never re-reads. So
//! the Deployment's pod template carries a checksum of those values
//! ([`INPUTS_ANNOTATION`]): rotating the client secret in the credentials
//! Secret changes the checksum, and the Deployment rolls its pods, which
//! start with the new value. The checksum is a SHA-256 over the values, so
//! it says nothing about them.
//!
//! The generated secret key gets its own short fingerprint in the status
//! ([`key_id`]): the operator remembers that a key existed, and refuses to
//! mint a new one silently when the generated Secret disappears (the relay's
//! stored Twitch tokens are encrypted with it).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::ByteString;
use sha2::{Digest, Sha256};

use crate::crd::CredentialsRef;

/// Pod-template annotation holding the checksum of the relay's Secret inputs.
pub const INPUTS_ANNOTATION: &str = "tau.dev/inputs-checksum";

/// Checksum of the values the relay reads from the credentials Secret
/// (`credentials`, `None` when it does not exist) and from its own Secret.
pub fn inputs_checksum(
    keys: &CredentialsRef,
    credentials: Option<&BTreeMap<String, ByteString>>,
    own: &BTreeMap<String, ByteString>,
) -> String {
    let mut hash = Sha256::new();
    let mut field = |scope: &str, key: &str, value: Option<&ByteString>| {
        // Length-prefixed, so no two different inputs hash the same bytes.
        for part in [scope.as_bytes(), key.as_bytes()] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        match value {
            Some(v) => {
                hash.update([1]);
                hash.update((v.0.len() as u64).to_be_bytes());
                hash.update(&v.0);
            }
            None => hash.update([0]),
        }
    };
    for key in [&keys.client_id_key, &keys.client_secret_key] {
        field("credentials", key, credentials.and_then(|d| d.get(key)));
    }
    for (key, value) in own {
        field("own", key, Some(value));
    }
    hex::encode(&hash.finalize()[..16])
}

/// Puts `checksum` on the pod template, so a change of inputs rolls the pods.
pub fn stamp_inputs(deployment: &mut Deployment, checksum: &str) {
    let Some(spec) = deployment.spec.as_mut() else {
        return;
    };
    spec.template
        .metadata
        .get_or_insert_with(Default::default)
        .annotations
        .get_or_insert_with(Default::default)
        .insert(INPUTS_ANNOTATION.into(), checksum.into());
}

/// A short, non-reversible name for a generated secret key.
pub fn key_id(secret_key: &[u8]) -> String {
    hex::encode(&Sha256::digest(secret_key)[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::channel;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn the_checksum_follows_every_input_and_nothing_else() {
        let keys = channel("a").spec.credentials;
        let creds = data(&[("client-id", "id"), ("client-secret", "one")]);
        let own = data(&[("api-token", "tau_x"), ("secret-key", "00")]);
        let base = inputs_checksum(&keys, Some(&creds), &own);
        assert_eq!(base.len(), 32);
        assert_eq!(base, inputs_checksum(&keys, Some(&creds), &own), "stable");

        let rotated = data(&[("client-id", "id"), ("client-secret", "two")]);
        assert_ne!(base, inputs_checksum(&keys, Some(&rotated), &own));
        assert_ne!(base, inputs_checksum(&keys, None, &own), "a missing Secret");
        let other_own = data(&[("api-token", "tau_y"), ("secret-key", "00")]);
        assert_ne!(base, inputs_checksum(&keys, Some(&creds), &other_own));

        let mut unrelated = creds.clone();
        unrelated.insert("note".into(), ByteString(b"not read by the relay".to_vec()));
        assert_eq!(
            base,
            inputs_checksum(&keys, Some(&unrelated), &own),
            "keys the relay does not read do not roll it"
        );
        // Moving bytes between key and value changes the hash.
        let a = data(&[("client-id", "ab"), ("client-secret", "")]);
        let b = data(&[("client-id", "a"), ("client-secret", "b")]);
        assert_ne!(
            inputs_checksum(&keys, Some(&a), &own),
            inputs_checksum(&keys, Some(&b), &own)
        );
        assert!(!base.contains("one") && !base.contains("tau_x"));
    }

    #[test]
    fn the_stamp_lands_on_the_pod_template() {
        let config =
            crate::config::Config::for_tests("http://127.0.0.1:1/helix", "http://127.0.0.1:1/o");
        let mut deployment = super::super::deployment(&channel("a"), &config);
        stamp_inputs(&mut deployment, "abc");
        let template = deployment.spec.unwrap().template.metadata.unwrap();
        assert_eq!(template.annotations.unwrap()[INPUTS_ANNOTATION], "abc");
        assert!(
            template.labels.is_some(),
            "the labels stay (they select the pods)"
        );
    }

    #[test]
    fn key_ids_are_short_and_distinct() {
        assert_eq!(key_id(b"a").len(), 16);
        assert_ne!(key_id(b"a"), key_id(b"b"));
    }
}
