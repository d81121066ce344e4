//! Prometheus metrics, served as text at `GET /metrics`.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use kyso_clock::Stopwatch;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProfileLabels {
    profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CaLabels {
    ca: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~3.3 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Every metric the server keeps. Cheap to clone (shared counters).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    issued: Family<ProfileLabels, Counter>,
    status_changes: Family<ActionLabels, Counter>,
    ocsp_responses: Family<StatusLabels, Counter>,
    hsm_sign_errors: Family<KeyLabels, Counter>,
    crls_generated: Family<CaLabels, Counter>,
    timestamps: Family<StatusLabels, Counter>,
    signatures: Family<OutcomeLabels, Counter>,
    verifications: Family<StatusLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    level: String,
    outcome: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every kyso metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kyso");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let issued = Family::<ProfileLabels, Counter>::default();
        let status_changes = Family::<ActionLabels, Counter>::default();
        let ocsp_responses = Family::<StatusLabels, Counter>::default();
        let hsm_sign_errors = Family::<KeyLabels, Counter>::default();
        let crls_generated = Family::<CaLabels, Counter>::default();
        let timestamps = Family::<StatusLabels, Counter>::default();
        let signatures = Family::<OutcomeLabels, Counter>::default();
        let verifications = Family::<StatusLabels, Counter>::default();
        registry.register(
            "timestamp_replies",
            "RFC 3161 replies by PKIStatus (granted, rejection, ...)",
            timestamps.clone(),
        );
        registry.register(
            "cms_signatures",
            "CMS/CAdES documents signed for API clients, by level and outcome",
            signatures.clone(),
        );
        registry.register(
            "verifications",
            "Signatures verified, by ETSI EN 319 102-1 indication",
            verifications.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route template",
            latency.clone(),
        );
        registry.register(
            "certificates_issued",
            "Certificates issued, by profile",
            issued.clone(),
        );
        registry.register(
            "certificate_status_changes",
            "Revocations, suspensions and resumptions",
            status_changes.clone(),
        );
        registry.register(
            "ocsp_responses",
            "OCSP responses by certificate status or error",
            ocsp_responses.clone(),
        );
        registry.register(
            "hsm_sign_errors",
            "Failed HSM signing operations, by key label",
            hsm_sign_errors.clone(),
        );
        registry.register(
            "crls_generated",
            "CRLs signed, by CA",
            crls_generated.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            issued,
            status_changes,
            ocsp_responses,
            hsm_sign_errors,
            crls_generated,
            timestamps,
            signatures,
            verifications,
        }
    }

    /// Counts a timestamp reply by its PKIStatus ("granted", "rejection", ...), as the TSA
    /// states it beside the reply (no parsing of the reply again).
    pub fn timestamp_status(&self, status: kyso_asn1::rfc3161::PkiStatus) {
        let status = format!("{status:?}").to_lowercase();
        self.timestamps
            .get_or_create(&StatusLabels { status })
            .inc();
    }

    /// Counts one document signed ("ok") or refused (its error code) at `level`.
    pub fn cms_signature(&self, level: &str, outcome: &str) {
        self.signatures
            .get_or_create(&OutcomeLabels {
                level: level.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts one verified signature by its main indication.
    pub fn verification(&self, indication: &str) {
        self.verifications
            .get_or_create(&StatusLabels {
                status: indication.to_owned(),
            })
            .inc();
    }

    /// Counts one finished HTTP request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts one issued certificate.
    pub fn certificate_issued(&self, profile: &str) {
        self.issued
            .get_or_create(&ProfileLabels {
                profile: profile.to_owned(),
            })
            .inc();
    }

    /// Counts a revocation ("revoke"), suspension ("suspend") or resumption ("resume").
    pub fn status_changed(&self, action: &str) {
        self.status_changes
            .get_or_create(&ActionLabels {
                action: action.to_owned(),
            })
            .inc();
    }

    /// Counts an OCSP response: "good", "revoked", "unknown", or an error status.
    pub fn ocsp_response(&self, status: &str) {
        self.ocsp_responses
            .get_or_create(&StatusLabels {
                status: status.to_owned(),
            })
            .inc();
    }

    /// Counts a failed HSM signature.
    pub fn hsm_sign_error(&self, key_label: &str) {
        self.hsm_sign_errors
            .get_or_create(&KeyLabels {
                key: key_label.to_owned(),
            })
            .inc();
    }

    /// Counts a signed CRL.
    pub fn crl_generated(&self, ca: &str) {
        self.crls_generated
            .get_or_create(&CaLabels { ca: ca.to_owned() })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        text
    }
}

/// Middleware: counts every request by its route template (not the raw path, which would let
/// clients create unbounded label values) and measures its latency.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let stopwatch = Stopwatch::start();
    let response = next.run(request).await;
    state.metrics().observe_request(
        &route,
        &method,
        response.status().as_u16(),
        stopwatch.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_text_has_every_family_and_counts() {
        let metrics = Metrics::new();
        metrics.observe_request("/v1/staff", "GET", 200, 0.002);
        metrics.observe_request("/v1/staff", "GET", 200, 0.004);
        metrics.certificate_issued("staff-signing");
        metrics.status_changed("revoke");
        metrics.ocsp_response("good");
        metrics.hsm_sign_error("kyso-issuing-ca");
        metrics.crl_generated("kyso-issuing");
        metrics.timestamp_status(kyso_asn1::rfc3161::PkiStatus::Granted);
        metrics.timestamp_status(kyso_asn1::rfc3161::PkiStatus::Rejection);
        let text = metrics.render();
        assert!(
            text.contains(
                "kyso_http_requests_total{route=\"/v1/staff\",method=\"GET\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("kyso_http_request_duration_seconds_count{route=\"/v1/staff\"} 2"));
        assert!(text.contains("kyso_certificates_issued_total{profile=\"staff-signing\"} 1"));
        assert!(text.contains("kyso_certificate_status_changes_total{action=\"revoke\"} 1"));
        assert!(text.contains("kyso_ocsp_responses_total{status=\"good\"} 1"));
        assert!(text.contains("kyso_hsm_sign_errors_total{key=\"kyso-issuing-ca\"} 1"));
        assert!(text.contains("kyso_crls_generated_total{ca=\"kyso-issuing\"} 1"));
        assert!(text.contains("kyso_timestamp_replies_total{status=\"granted\"} 1"));
        assert!(text.contains("kyso_timestamp_replies_total{status=\"rejection\"} 1"));
    }
}
