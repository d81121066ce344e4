//! kyso-server: the axum application behind `kyso serve`, and the library functions the `kyso`
//! command line calls.
//!
//! - [`config`]: one TOML file plus `KYSO_*` environment overrides.
//! - [`error`]: the one application error type and its JSON shape.
//! - [`auth`]: API keys (`Authorization: Bearer kyso_...`) and roles.
//! - [`state`] / [`app`]: shared state, the router, [`serve`], [`serve_on`].
//! - [`init`]: `kyso init` (keys, CA certificates, first CRLs, first admin key), idempotent.
//! - [`pki`]: issuance in the durable order, CRL regeneration, OCSP status.
//! - [`trust_services`]: the timestamp authority, client signing keys, trust store, receipt signer.
//! - [`tools`]: `kyso audit verify` and `kyso hsm doctor`.
//! - [`routes`]: the table of every route, checked against `api/openapi.yaml`.

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod init;
pub mod metrics;
pub mod ocsp_cache;
pub mod pki;
pub mod routes;
pub mod signing;
pub mod state;
pub mod tools;
pub mod trust_services;
pub mod verification;

pub use app::{
    load_state, open_ca_token, regenerate_due_crls, router, serve, serve_on, state_from_parts,
    state_from_parts_with,
};
pub use config::Config;
pub use error::AppError;
pub use init::{InitReport, init, init_with};
pub use pki::StartupError;
pub use state::AppState;
pub use tools::{AuditVerifyReport, hsm_doctor, verify_audit, verify_audit_store};

/// The OpenAPI document, served at `GET /openapi.yaml`.
pub const OPENAPI_YAML: &str = include_str!("../../../api/openapi.yaml");
