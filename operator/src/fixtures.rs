//! Test fixtures: a ready-made `TwitchChannel` and operator config, so unit
//! tests across modules start from the same realistic object.

use kube::api::ObjectMeta;

use crate::crd::{
    CredentialsRef, IngressSpec, RelaySpec, TransportMode, TwitchChannel, TwitchChannelSpec,
};

/// A channel `name` in namespace `ns` with an ingress host (webhook transport).
pub fn channel(name: &str) -> TwitchChannel {
    TwitchChannel {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(format!("uid-{name}")),
            generation: Some(1),
            ..ObjectMeta::default()
        },
        spec: TwitchChannelSpec {
            broadcaster: "cooler_user".into(),
            credentials: CredentialsRef {
                secret_name: "twitch-app".into(),
                client_id_key: "client-id".into(),
                client_secret_key: "client-secret".into(),
            },
            events: vec!["stream.online".into(), "channel.follow".into()],
            streamers: vec![],
            transport: TransportMode::Auto,
            relay: RelaySpec::default(),
            ingress: Some(IngressSpec {
                host: format!("{name}.tau.example.com"),
                class_name: Some("nginx".into()),
                tls_secret_name: Some(format!("{name}-tls")),
                annotations: Default::default(),
            }),
            public_url: None,
            database_url: None,
            database_url_secret: None,
            redis_url: None,
            redis_url_secret: None,
            retention: "30d".into(),
        },
        status: None,
    }
}

/// The real relay's status document, websocket transport, authorized and
/// subscribed (relay/tests/status_contract.rs keeps these fixtures true).
pub const RELAY_WEBSOCKET: &str = include_str!("../tests/fixtures/relay-status-websocket.json");
/// The same before the broadcaster authorized.
pub const RELAY_UNAUTHORIZED: &str =
    include_str!("../tests/fixtures/relay-status-websocket-unauthorized.json");
/// The real relay's status document, conduit transport, subscribed.
pub const RELAY_CONDUIT: &str = include_str!("../tests/fixtures/relay-status-conduit.json");
