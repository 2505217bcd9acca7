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
