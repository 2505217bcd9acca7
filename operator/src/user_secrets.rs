//! The user's Secrets a relay reads: the Twitch app's credentials and,
//! optionally, its database and Redis URLs. Read by name on every
//! reconcile (their values feed the relay's inputs checksum); never cached.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::Api;
use kube::ResourceExt;
use std::collections::BTreeMap;

use crate::build;
use crate::context::Context;
use crate::crd::TwitchChannel;
use crate::{Error, Result};
use tau_twitch::Credentials;

/// The user's Secrets the relay reads (credentials, database and Redis URLs),
/// by name; `None` for one that does not exist.
pub(crate) async fn user_secrets(tc: &TwitchChannel, ctx: &Context) -> Result<build::UserSecrets> {
    let ns = tc.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let mut found = build::UserSecrets::new();
    for input in tc.secret_inputs() {
        if let std::collections::btree_map::Entry::Vacant(slot) = found.entry(input.name) {
            let secret = api.get_opt(slot.key()).await?;
            slot.insert(secret.map(|s| s.data.unwrap_or_default()));
        }
    }
    Ok(found)
}

/// The app credentials in that data.
pub(crate) fn parse_credentials(
    tc: &TwitchChannel,
    data: &BTreeMap<String, ByteString>,
) -> Result<Credentials> {
    let refs = &tc.spec.credentials;
    let read = |key: &str| {
        data.get(key)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::Credentials {
                secret: format!(
                    "{}/{}",
                    tc.namespace().unwrap_or_default(),
                    refs.secret_name
                ),
                reason: format!("key {key:?} is missing or empty"),
            })
    };
    Ok(Credentials {
        client_id: read(&refs.client_id_key)?,
        client_secret: read(&refs.client_secret_key)?,
    })
}

/// Reads the app credentials from the user's Secret.
pub(crate) async fn credentials(tc: &TwitchChannel, ctx: &Context) -> Result<Option<Credentials>> {
    let ns = tc.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    match api.get_opt(&tc.spec.credentials.secret_name).await? {
        Some(secret) => parse_credentials(tc, &secret.data.unwrap_or_default()).map(Some),
        None => Ok(None),
    }
}
