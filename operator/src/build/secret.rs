//! The per-channel Secret: the relay's generated credentials plus the
//! connection URLs (which may hold passwords, so they stay out of the
//! Deployment's plain env).
//!
//! Generated values (webhook secret, secret key, first API token) are made
//! once: the builder is handed the live Secret's data and only fills keys
//! that are missing, so a reconcile never rotates them (rotating the secret
//! key would make the relay's stored tokens unreadable).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use rand::distributions::Alphanumeric;
use rand::Rng;

use super::child_meta;
use crate::config::Config;
use crate::crd::TwitchChannel;

/// Key: secret shared with Twitch to sign webhooks (relay `TWITCH_WEBHOOK_SECRET`).
pub const KEY_WEBHOOK_SECRET: &str = "webhook-secret";
/// Key: the relay's token-encryption key, 64 hex chars (relay `TAU_SECRET_KEY`).
pub const KEY_SECRET_KEY: &str = "secret-key";
/// Key: the relay's initial **admin** API token (relay `TAU_API_TOKEN`);
/// bots and overlays get their own, weaker tokens from it.
pub const KEY_API_TOKEN: &str = "api-token";
/// Key: the database URL (relay `TAU_DATABASE_URL`).
pub const KEY_DATABASE_URL: &str = "database-url";
/// Key: the Redis URL, present only when one is configured (relay `TAU_REDIS_URL`).
pub const KEY_REDIS_URL: &str = "redis-url";

/// Length of the webhook secret: Twitch accepts 10-100; 48 is well clear of guessing.
const WEBHOOK_SECRET_LEN: usize = 48;
/// Random part of the API token.
const API_TOKEN_LEN: usize = 40;
/// SQLite file in the pod's writable emptyDir, used when no database is configured.
pub const SQLITE_URL: &str = "sqlite:///var/lib/tau/tau.db";

fn random_alnum(rng: &mut impl Rng, len: usize) -> String {
    rng.sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn random_hex(rng: &mut impl Rng, bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rng.gen()).collect();
    hex::encode(raw)
}

/// The database URL for a channel: its own, else the operator default, else SQLite.
pub fn database_url(tc: &TwitchChannel, config: &Config) -> String {
    tc.spec
        .database_url
        .clone()
        .or_else(|| config.default_database_url.clone())
        .unwrap_or_else(|| SQLITE_URL.into())
}

/// The Redis URL for a channel, if any.
pub fn redis_url(tc: &TwitchChannel, config: &Config) -> Option<String> {
    tc.spec
        .redis_url
        .clone()
        .or_else(|| config.default_redis_url.clone())
}

/// The desired Secret, keeping every generated value `existing` already has.
pub fn secret(
    tc: &TwitchChannel,
    config: &Config,
    existing: Option<&BTreeMap<String, ByteString>>,
    rng: &mut impl Rng,
) -> Secret {
    let keep = |key: &str| {
        existing
            .and_then(|d| d.get(key))
            .filter(|v| !v.0.is_empty())
    };
    let mut data = BTreeMap::new();
    let mut generated = |key: &str, make: &mut dyn FnMut() -> String| {
        let value = keep(key)
            .cloned()
            .unwrap_or_else(|| ByteString(make().into_bytes()));
        data.insert(key.to_string(), value);
    };
    generated(KEY_WEBHOOK_SECRET, &mut || {
        random_alnum(rng, WEBHOOK_SECRET_LEN)
    });
    generated(KEY_SECRET_KEY, &mut || random_hex(rng, 32));
    generated(KEY_API_TOKEN, &mut || {
        format!("tau_{}", random_alnum(rng, API_TOKEN_LEN))
    });
    // URLs the channel takes from its own Secret are read from there, not copied.
    if tc.spec.database_url_secret.is_none() {
        data.insert(
            KEY_DATABASE_URL.into(),
            ByteString(database_url(tc, config).into_bytes()),
        );
    }
    if let Some(url) = redis_url(tc, config).filter(|_| tc.spec.redis_url_secret.is_none()) {
        data.insert(KEY_REDIS_URL.into(), ByteString(url.into_bytes()));
    }
    Secret {
        metadata: child_meta(tc),
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::channel;

    fn text(secret: &Secret, key: &str) -> String {
        String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
    }

    fn config() -> Config {
        Config::for_tests("http://127.0.0.1:1/helix", "http://127.0.0.1:1/oauth2")
    }

    #[test]
    fn fresh_secret_has_strong_generated_values() {
        let s = secret(&channel("a"), &config(), None, &mut rand::thread_rng());
        let webhook = text(&s, KEY_WEBHOOK_SECRET);
        assert!(webhook.len() >= 32 && webhook.chars().all(|c| c.is_ascii_alphanumeric()));
        let key = text(&s, KEY_SECRET_KEY);
        assert_eq!(key.len(), 64);
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(text(&s, KEY_API_TOKEN).starts_with("tau_"));
        assert_eq!(text(&s, KEY_DATABASE_URL), SQLITE_URL);
        assert!(!s.data.as_ref().unwrap().contains_key(KEY_REDIS_URL));
        assert_eq!(s.metadata.name.as_deref(), Some("tau-a"));
        // Two fresh secrets differ.
        let t = secret(&channel("a"), &config(), None, &mut rand::thread_rng());
        assert_ne!(text(&s, KEY_SECRET_KEY), text(&t, KEY_SECRET_KEY));
    }

    #[test]
    fn generated_values_are_never_rotated_and_missing_ones_are_filled() {
        let first = secret(&channel("a"), &config(), None, &mut rand::thread_rng());
        let mut existing = first.data.clone().unwrap();
        existing.remove(KEY_API_TOKEN);
        let again = secret(
            &channel("a"),
            &config(),
            Some(&existing),
            &mut rand::thread_rng(),
        );
        assert_eq!(
            text(&again, KEY_WEBHOOK_SECRET),
            text(&first, KEY_WEBHOOK_SECRET)
        );
        assert_eq!(text(&again, KEY_SECRET_KEY), text(&first, KEY_SECRET_KEY));
        assert!(text(&again, KEY_API_TOKEN).starts_with("tau_"));
        assert_ne!(text(&again, KEY_API_TOKEN), text(&first, KEY_API_TOKEN));
    }

    #[test]
    fn urls_from_the_users_secret_are_not_copied() {
        let mut tc = channel("a");
        tc.spec.database_url_secret = Some(crate::crd::SecretKeyRef {
            name: "db".into(),
            key: "url".into(),
        });
        tc.spec.redis_url_secret = Some(crate::crd::SecretKeyRef {
            name: "db".into(),
            key: "redis".into(),
        });
        let mut config = config();
        config.default_redis_url = Some("redis://chart:6379".into());
        let s = secret(&tc, &config, None, &mut rand::thread_rng());
        let data = s.data.unwrap();
        assert!(!data.contains_key(KEY_DATABASE_URL));
        assert!(!data.contains_key(KEY_REDIS_URL));
    }

    #[test]
    fn urls_come_from_the_channel_then_the_operator_defaults() {
        let mut config = config();
        config.default_database_url = Some("postgres://chart/tau".into());
        config.default_redis_url = Some("redis://chart:6379".into());
        let mut tc = channel("a");
        let s = secret(&tc, &config, None, &mut rand::thread_rng());
        assert_eq!(text(&s, KEY_DATABASE_URL), "postgres://chart/tau");
        assert_eq!(text(&s, KEY_REDIS_URL), "redis://chart:6379");
        tc.spec.database_url = Some("postgres://own/db".into());
        let s = secret(&tc, &config, None, &mut rand::thread_rng());
        assert_eq!(text(&s, KEY_DATABASE_URL), "postgres://own/db");
    }
}
