//! The relay's Service (always) and Ingress (only when `spec.ingress` is set:
//! webhooks need a public HTTPS URL, WebSocket and conduit transports do not).

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{child_meta, child_name, selector_labels};
use crate::crd::TwitchChannel;

/// The Service's port (to the pods' `http` port); the operator reads relay status through it.
pub const SERVICE_PORT: i32 = 80;

/// The ClusterIP Service in front of the relay pods, port [`SERVICE_PORT`] → `http`.
pub fn service(tc: &TwitchChannel) -> Service {
    Service {
        metadata: child_meta(tc),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(tc)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: SERVICE_PORT,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The Ingress routing `https://<host>/` to the Service, if a host is set.
pub fn ingress(tc: &TwitchChannel) -> Option<Ingress> {
    let spec = tc.spec.ingress.as_ref()?;
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: child_name(&tc.name_any()),
            port: Some(ServiceBackendPort {
                name: Some("http".into()),
                number: None,
            }),
        }),
        resource: None,
    };
    let mut metadata = child_meta(tc);
    metadata.annotations = (!spec.annotations.is_empty()).then(|| spec.annotations.clone());
    Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            tls: spec.tls_secret_name.as_ref().map(|secret| {
                vec![IngressTLS {
                    hosts: Some(vec![spec.host.clone()]),
                    secret_name: Some(secret.clone()),
                }]
            }),
            rules: Some(vec![IngressRule {
                host: Some(spec.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend,
                    }],
                }),
            }]),
            default_backend: None,
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::channel;

    #[test]
    fn service_selects_the_relay_pods_by_port_name() {
        let svc = service(&channel("a"));
        assert_eq!(svc.metadata.name.as_deref(), Some("tau-a"));
        let spec = svc.spec.unwrap();
        assert_eq!(spec.selector.unwrap()["tau.dev/channel"], "a");
        let port = &spec.ports.unwrap()[0];
        assert_eq!(port.port, 80);
        assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
    }

    #[test]
    fn ingress_only_with_a_host_and_carries_class_and_tls() {
        let mut tc = channel("a");
        let ing = ingress(&tc).unwrap();
        let spec = ing.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        assert_eq!(spec.tls.unwrap()[0].secret_name.as_deref(), Some("a-tls"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host.as_deref(), Some("a.tau.example.com"));
        let backend = &rule.http.as_ref().unwrap().paths[0].backend;
        assert_eq!(backend.service.as_ref().unwrap().name, "tau-a");
        assert!(ing.metadata.annotations.is_none());
        tc.spec.ingress.as_mut().unwrap().annotations = [(
            "cert-manager.io/cluster-issuer".to_string(),
            "letsencrypt".to_string(),
        )]
        .into();
        let annotated = ingress(&tc).unwrap().metadata.annotations.unwrap();
        assert_eq!(annotated["cert-manager.io/cluster-issuer"], "letsencrypt");
        tc.spec.ingress = None;
        assert!(ingress(&tc).is_none());
    }
}
