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

use crate::crd::TwitchChannel;

/// Pod-template annotation holding the checksum of the relay's Secret inputs.
pub const INPUTS_ANNOTATION: &str = "tau.dev/inputs-checksum";

/// What the user's Secrets hold, by Secret name (`None`: no such Secret).
pub type UserSecrets = BTreeMap<String, Option<BTreeMap<String, ByteString>>>;

/// Checksum of the values the relay reads from the user's Secrets (the
/// channel's [`TwitchChannel::secret_inputs`], looked up in `secrets`) and
/// from its own generated Secret (`own`).
pub fn inputs_checksum(
    tc: &TwitchChannel,
    secrets: &UserSecrets,
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
    for input in tc.secret_inputs() {
        let data = secrets.get(&input.name).and_then(Option::as_ref);
        field(
            &input.name,
            &input.key,
            data.and_then(|d| d.get(&input.key)),
        );
    }
    for (key, value) in own {
        field("", key, Some(value));
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

    fn secrets(pairs: &[(&str, &[(&str, &str)])]) -> UserSecrets {
        pairs
            .iter()
            .map(|(name, d)| (name.to_string(), Some(data(d))))
            .collect()
    }

    #[test]
    fn the_checksum_follows_every_input_and_nothing_else() {
        let tc = channel("a");
        let creds = secrets(&[(
            "twitch-app",
            &[("client-id", "id"), ("client-secret", "one")],
        )]);
        let own = data(&[("api-token", "tau_x"), ("secret-key", "00")]);
        let base = inputs_checksum(&tc, &creds, &own);
        assert_eq!(base.len(), 32);
        assert_eq!(base, inputs_checksum(&tc, &creds, &own), "stable");

        let rotated = secrets(&[(
            "twitch-app",
            &[("client-id", "id"), ("client-secret", "two")],
        )]);
        assert_ne!(base, inputs_checksum(&tc, &rotated, &own));
        let gone: UserSecrets = [("twitch-app".to_string(), None)].into();
        assert_ne!(base, inputs_checksum(&tc, &gone, &own), "a missing Secret");
        let other_own = data(&[("api-token", "tau_y"), ("secret-key", "00")]);
        assert_ne!(base, inputs_checksum(&tc, &creds, &other_own));

        let unrelated = secrets(&[
            (
                "twitch-app",
                &[("client-id", "id"), ("client-secret", "one"), ("note", "x")],
            ),
            ("elsewhere", &[("url", "postgres://x")]),
        ]);
        assert_eq!(
            base,
            inputs_checksum(&tc, &unrelated, &own),
            "keys and Secrets the relay does not read do not roll it"
        );
        // Moving bytes between key and value changes the hash.
        let a = secrets(&[("twitch-app", &[("client-id", "ab"), ("client-secret", "")])]);
        let b = secrets(&[("twitch-app", &[("client-id", "a"), ("client-secret", "b")])]);
        assert_ne!(
            inputs_checksum(&tc, &a, &own),
            inputs_checksum(&tc, &b, &own)
        );
        assert!(!base.contains("one") && !base.contains("tau_x"));
    }

    #[test]
    fn a_database_url_secret_is_an_input() {
        let mut tc = channel("a");
        tc.spec.database_url_secret = Some(crate::crd::SecretKeyRef {
            name: "db".into(),
            key: "url".into(),
        });
        let own = data(&[]);
        let one = secrets(&[("twitch-app", &[]), ("db", &[("url", "postgres://a")])]);
        let two = secrets(&[("twitch-app", &[]), ("db", &[("url", "postgres://b")])]);
        assert_ne!(
            inputs_checksum(&tc, &one, &own),
            inputs_checksum(&tc, &two, &own)
        );
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
