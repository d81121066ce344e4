//! The one table of every route the server serves. The router is built from the same paths, and a
//! test checks each entry is served and documented in `api/openapi.yaml`.

/// One route: its method, the axum path it is registered under, and the path the OpenAPI document
/// names (they differ where a parameter carries a file suffix, which axum cannot match).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: &'static str,
    pub axum_path: &'static str,
    pub openapi_path: &'static str,
}

const fn route(method: &'static str, path: &'static str) -> RouteSpec {
    RouteSpec {
        method,
        axum_path: path,
        openapi_path: path,
    }
}

pub const HEALTHZ: &str = "/healthz";
pub const METRICS: &str = "/metrics";
pub const OPENAPI: &str = "/openapi.yaml";
pub const CA_CERT: &str = "/ca/{file}";
pub const CRL: &str = "/crl/{file}";
pub const OCSP_POST: &str = "/ocsp";
pub const OCSP_GET: &str = "/ocsp/{*request}";
pub const STAFF: &str = "/v1/staff";
pub const STAFF_ONE: &str = "/v1/staff/{id}";
pub const STAFF_ENROLL: &str = "/v1/staff/{id}/enroll";
pub const CERTIFICATES: &str = "/v1/ca/certificates";
pub const CERTIFICATE: &str = "/v1/ca/certificates/{serial}";
pub const CERT_REVOKE: &str = "/v1/ca/certificates/{serial}/revoke";
pub const CERT_SUSPEND: &str = "/v1/ca/certificates/{serial}/suspend";
pub const CERT_RESUME: &str = "/v1/ca/certificates/{serial}/resume";
pub const CERT_RENEW: &str = "/v1/ca/certificates/{serial}/renew";
pub const CERT_REKEY: &str = "/v1/ca/certificates/{serial}/rekey";
pub const CLIENTS: &str = "/v1/clients";
pub const CLIENT: &str = "/v1/clients/{id}";
pub const CLIENT_DISABLE: &str = "/v1/clients/{id}/disable";
pub const CLIENT_GRANTS: &str = "/v1/clients/{id}/grants";
pub const CLIENT_GRANT: &str = "/v1/clients/{id}/grants/{key}";
pub const AUDIT: &str = "/v1/audit";
pub const TSA: &str = "/tsa";
pub const SIGN_CMS: &str = "/v1/sign/cms";
pub const VERIFY: &str = "/v1/verify";
pub const VERIFICATION: &str = "/v1/verifications/{id}";

/// Every route, in the order the OpenAPI document lists them.
pub const ROUTES: &[RouteSpec] = &[
    route("GET", HEALTHZ),
    route("GET", METRICS),
    route("GET", OPENAPI),
    RouteSpec {
        method: "GET",
        axum_path: CA_CERT,
        openapi_path: "/ca/{ca}.crt",
    },
    RouteSpec {
        method: "GET",
        axum_path: CRL,
        openapi_path: "/crl/{ca}.crl",
    },
    route("POST", OCSP_POST),
    RouteSpec {
        method: "GET",
        axum_path: OCSP_GET,
        openapi_path: "/ocsp/{request}",
    },
    route("POST", STAFF),
    route("GET", STAFF),
    route("GET", STAFF_ONE),
    route("PATCH", STAFF_ONE),
    route("POST", STAFF_ENROLL),
    route("POST", CERTIFICATES),
    route("GET", CERTIFICATES),
    route("GET", CERTIFICATE),
    route("POST", CERT_REVOKE),
    route("POST", CERT_SUSPEND),
    route("POST", CERT_RESUME),
    route("POST", CERT_RENEW),
    route("POST", CERT_REKEY),
    route("POST", CLIENTS),
    route("GET", CLIENTS),
    route("GET", CLIENT),
    route("POST", CLIENT_DISABLE),
    route("GET", CLIENT_GRANTS),
    route("PUT", CLIENT_GRANT),
    route("DELETE", CLIENT_GRANT),
    route("GET", AUDIT),
    route("POST", TSA),
    route("POST", SIGN_CMS),
    route("POST", VERIFY),
    route("GET", VERIFICATION),
];
