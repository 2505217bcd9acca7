//! Prometheus metrics, and the tower layer that counts every Kubernetes
//! API request the operator makes.
//!
//! Counting at the client (rather than trusting reconcile's own idea of
//! what it wrote) is what makes "no hot loop" measurable: a quiet cluster
//! should show the write counter standing still. Lease renewals are
//! counted in the exported family but left out of [`Metrics::kube_writes`],
//! since a leader renews its Lease on a timer by design.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of the reconcile failure counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// [`crate::Error::metric_label`].
    pub error: String,
}

/// Labels of the Kubernetes request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KubeLabels {
    /// HTTP method.
    pub method: String,
    /// Resource plural from the path (`deployments`, `twitchchannels`, ...).
    pub resource: String,
}

/// Labels of the Helix request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HelixLabels {
    /// HTTP method.
    pub method: String,
    /// Status code, or `error` when there was no answer.
    pub status: String,
}

/// The operator's metrics and their registry.
pub struct Metrics {
    /// Registry `/metrics` encodes.
    pub registry: Registry,
    reconciliations: Counter,
    failures: Family<ErrorLabels, Counter>,
    duration: Histogram,
    kube_requests: Family<KubeLabels, Counter>,
    helix_requests: Family<HelixLabels, Counter>,
    writes: AtomicU64,
    helix_total: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tau_operator");
        let reconciliations = Counter::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 12));
        let kube_requests = Family::<KubeLabels, Counter>::default();
        let helix_requests = Family::<HelixLabels, Counter>::default();
        registry.register(
            "reconciliations",
            "Reconciles started",
            reconciliations.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciles that failed, by error",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            duration.clone(),
        );
        registry.register(
            "kube_requests",
            "Kubernetes API requests",
            kube_requests.clone(),
        );
        registry.register(
            "helix_requests",
            "Twitch Helix and OAuth requests",
            helix_requests.clone(),
        );
        Metrics {
            registry,
            reconciliations,
            failures,
            duration,
            kube_requests,
            helix_requests,
            writes: AtomicU64::new(0),
            helix_total: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one reconcile and its duration.
    pub fn reconciled(&self, took: Duration) {
        self.reconciliations.inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// Counts one failed reconcile.
    pub fn failed(&self, error: &crate::Error) {
        self.failures
            .get_or_create(&ErrorLabels {
                error: error.metric_label().into(),
            })
            .inc();
    }

    /// Counts one Kubernetes API request.
    pub fn kube_request(&self, method: &http::Method, path: &str) {
        let resource = resource_of(path);
        if !matches!(*method, http::Method::GET | http::Method::HEAD) && resource != "leases" {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        self.kube_requests
            .get_or_create(&KubeLabels {
                method: method.to_string(),
                resource,
            })
            .inc();
    }

    /// Counts one Helix or OAuth request.
    pub fn helix_request(&self, method: &str, status: Option<u16>) {
        self.helix_total.fetch_add(1, Ordering::Relaxed);
        let status = status.map_or_else(|| "error".to_string(), |s| s.to_string());
        self.helix_requests
            .get_or_create(&HelixLabels {
                method: method.into(),
                status,
            })
            .inc();
    }

    /// Kubernetes writes (anything but GET) so far, Lease renewals excluded.
    pub fn kube_writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Requests to Twitch so far.
    pub fn helix_requests(&self) -> u64 {
        self.helix_total.load(Ordering::Relaxed)
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The resource plural of an API path: `/apis/apps/v1/namespaces/x/deployments/y` → `deployments`.
fn resource_of(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // Skip "api/v1" or "apis/group/version", then an optional "namespaces/<ns>".
    let rest = match parts.first() {
        Some(&"api") => parts.get(2..),
        Some(&"apis") => parts.get(3..),
        _ => None,
    }
    .unwrap_or_default();
    let rest = match rest {
        ["namespaces", _, more, ..] => std::slice::from_ref(more),
        other => other,
    };
    rest.first()
        .map_or_else(|| "other".into(), |s| s.to_string())
}

/// Tower layer counting requests into [`Metrics`]; wraps the kube client's service.
#[derive(Clone)]
pub struct CountLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for CountLayer {
    type Service = Count<S>;
    fn layer(&self, inner: S) -> Count<S> {
        Count {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// The service [`CountLayer`] makes.
#[derive(Clone)]
pub struct Count<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> tower::Service<http::Request<B>> for Count<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.metrics.kube_request(req.method(), req.uri().path());
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_resource() {
        assert_eq!(
            resource_of("/apis/apps/v1/namespaces/x/deployments/y"),
            "deployments"
        );
        assert_eq!(resource_of("/api/v1/namespaces/x/secrets"), "secrets");
        assert_eq!(resource_of("/api/v1/namespaces"), "namespaces");
        assert_eq!(
            resource_of("/apis/tau.dev/v1alpha1/twitchchannels"),
            "twitchchannels"
        );
        assert_eq!(resource_of("/version"), "other");
    }

    #[test]
    fn writes_exclude_reads_and_leases() {
        let m = Metrics::default();
        m.kube_request(&http::Method::GET, "/api/v1/namespaces/x/secrets");
        m.kube_request(
            &http::Method::PATCH,
            "/apis/coordination.k8s.io/v1/namespaces/x/leases/l",
        );
        m.kube_request(
            &http::Method::PATCH,
            "/apis/apps/v1/namespaces/x/deployments/d",
        );
        assert_eq!(m.kube_writes(), 1);
        assert!(m.encode().contains("tau_operator_kube_requests_total"));
    }
}
