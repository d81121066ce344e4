//! kyso's durable storage.
//!
//! One trait, [`Store`], with two implementations chosen from the URL by [`open`]: SQLite (the
//! single-node default, a file under the data directory) and PostgreSQL (many nodes sharing one
//! database). Each backend embeds its own migrations and runs them on open.
//!
//! Durability: every method returns only after its transaction has committed (SQLite in WAL mode with
//! `synchronous=FULL`; PostgreSQL with its default synchronous commit), so a caller may answer its
//! client as soon as a call returns. On SQLite, concurrent writes share transactions (group commit,
//! see [`sqlite`]), so one fsync covers many callers.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use kyso_clock::ManualClock;
//! use kyso_store::{AuditOutcome, NewAuditEvent, open_with_clock, verify_chain};
//!
//! let store = open_with_clock("sqlite::memory:", ManualClock::at_unix(1_780_000_000).shared()).await?;
//! store
//!     .append_audit(&NewAuditEvent {
//!         actor: "cli".into(),
//!         action: "ca.init".into(),
//!         target: "kyso-root".into(),
//!         outcome: AuditOutcome::Success,
//!         details: serde_json::json!({}),
//!     })
//!     .await?;
//! let records = store.list_audit(1, 100).await?;
//! assert_eq!(records[0].seq, 1);
//! assert!(verify_chain(&records).is_ok());
//! # Ok::<(), kyso_store::StoreError>(())
//! # }).unwrap();
//! ```

pub mod audit;
pub mod error;
pub mod postgres;
pub mod records;
mod rows;
mod shared_impl;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

mod validate;

use std::sync::Arc;

use async_trait::async_trait;
use kyso_clock::{SharedClock, SystemClock};

pub use audit::{ChainBreak, ChainBreakReason, ChainVerifier, verify_chain};
pub use error::StoreError;
pub use records::*;

/// Everything kyso keeps. Use it as `Arc<dyn Store>`; every method is one committed transaction.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;

    /// Checks the database answers (`SELECT 1`), for health checks.
    async fn ping(&self) -> Result<(), StoreError>;

    // ---- CAs ----

    /// Records a CA. `AlreadyExists` if the name is taken; `UnknownReference` if `parent` is unknown.
    async fn insert_ca(&self, ca: &NewCa) -> Result<CaRecord, StoreError>;
    /// A CA by name.
    async fn get_ca(&self, name: &str) -> Result<Option<CaRecord>, StoreError>;
    /// All CAs, by name.
    async fn list_cas(&self) -> Result<Vec<CaRecord>, StoreError>;

    // ---- Certificates ----

    /// Reserves a serial before signing: inserts a row without DER, status good.
    /// `DuplicateSerial` if the serial exists; `UnknownReference` for an unknown CA, staff id or
    /// replaced certificate.
    async fn reserve_certificate(
        &self,
        reservation: &CertificateReservation,
    ) -> Result<CertificateRecord, StoreError>;
    /// Completes a reserved serial with the signed certificate DER; when the reservation named a
    /// certificate it `replaces`, that one's `replaced_by` is set in the same transaction.
    /// `NotFound`, `AlreadyCompleted`.
    async fn complete_certificate(
        &self,
        serial: &[u8],
        der: &[u8],
    ) -> Result<CertificateRecord, StoreError>;
    /// [`complete_certificate`](Store::complete_certificate) and
    /// [`append_audit`](Store::append_audit) in one transaction: both are stored or neither is, and
    /// the caller waits for one commit instead of two. When the completion is refused (`NotFound`,
    /// `AlreadyCompleted`) no audit record is added; an invalid event (`InvalidInput`) is refused
    /// before anything runs. A retried completion with the same DER succeeds again and appends the
    /// event again (every call is audited).
    async fn complete_certificate_audited(
        &self,
        serial: &[u8],
        der: &[u8],
        event: &NewAuditEvent,
    ) -> Result<(CertificateRecord, AuditRecord), StoreError>;
    /// A certificate (reserved or issued) by serial.
    async fn get_certificate(&self, serial: &[u8])
    -> Result<Option<CertificateRecord>, StoreError>;
    /// A page of certificates, filtered by CA and/or staff, ordered by `created_at`, then serial.
    async fn list_certificates(
        &self,
        query: &CertificateQuery,
    ) -> Result<Vec<CertificateRecord>, StoreError>;
    /// The OCSP hot path: status of a serial in one indexed query; `None` if unknown.
    async fn certificate_status(
        &self,
        serial: &[u8],
    ) -> Result<Option<CertificateStatusRecord>, StoreError>;
    /// Revokes (from good or hold). `reason` must satisfy [`RevocationReason::is_revocation`]
    /// (`InvalidInput` otherwise). `NotFound`, `AlreadyRevoked`.
    async fn revoke_certificate(
        &self,
        serial: &[u8],
        reason: RevocationReason,
    ) -> Result<CertificateRecord, StoreError>;
    /// Puts a good certificate on hold (reason certificateHold). `NotFound`, `AlreadyRevoked`,
    /// `AlreadyOnHold`.
    async fn hold_certificate(&self, serial: &[u8]) -> Result<CertificateRecord, StoreError>;
    /// Releases a hold (back to good, revocation time and reason cleared). `NotFound`, `NotOnHold`.
    async fn release_hold(&self, serial: &[u8]) -> Result<CertificateRecord, StoreError>;
    /// Every revoked or held certificate of a CA, for its CRL, ordered by serial.
    async fn list_revoked(&self, ca: &str) -> Result<Vec<RevokedEntry>, StoreError>;

    // ---- CRLs ----

    /// Allocates the CA's next CRL number (1, 2, 3 ...; never the same twice, even across nodes).
    /// `UnknownReference` for an unknown CA.
    async fn allocate_crl_number(&self, ca: &str) -> Result<i64, StoreError>;
    /// Records a signed CRL; its number must exceed every stored number for that CA
    /// (`CrlNumberNotIncreasing`: a newer CRL is already there, keep serving it).
    async fn store_crl(&self, crl: &NewCrl) -> Result<CrlRecord, StoreError>;
    /// The CA's latest stored CRL (highest number).
    async fn latest_crl(&self, ca: &str) -> Result<Option<CrlRecord>, StoreError>;

    // ---- Staff ----

    /// Registers a staff member (active).
    async fn create_staff(&self, fields: &StaffFields) -> Result<StaffRecord, StoreError>;
    /// A staff member by id.
    async fn get_staff(&self, id: i64) -> Result<Option<StaffRecord>, StoreError>;
    /// A page of staff, by id.
    async fn list_staff(&self, offset: u64, limit: u32) -> Result<Vec<StaffRecord>, StoreError>;
    /// Replaces the editable fields. `NotFound`.
    async fn update_staff(&self, id: i64, fields: &StaffFields) -> Result<StaffRecord, StoreError>;
    /// Activates or deactivates. `NotFound`.
    async fn set_staff_active(&self, id: i64, active: bool) -> Result<StaffRecord, StoreError>;

    // ---- API clients ----

    /// Creates an API client. `AlreadyExists` if the key hash is taken; `InvalidInput` if the hash is
    /// not 32 bytes.
    async fn create_api_client(&self, client: &NewApiClient)
    -> Result<ApiClientRecord, StoreError>;
    /// The client with this key hash if it is not disabled (the authentication lookup; no write).
    async fn find_active_api_client(
        &self,
        key_hash: &[u8],
    ) -> Result<Option<ApiClientRecord>, StoreError>;
    /// A client by id (disabled or not).
    async fn get_api_client(&self, id: i64) -> Result<Option<ApiClientRecord>, StoreError>;
    /// All clients, by id.
    async fn list_api_clients(&self) -> Result<Vec<ApiClientRecord>, StoreError>;
    /// Disables a client (idempotent: the first `disabled_at` is kept). `NotFound`.
    async fn disable_api_client(&self, id: i64) -> Result<ApiClientRecord, StoreError>;
    /// Records a use now (`last_used_at`). `NotFound`.
    async fn touch_api_client(&self, id: i64) -> Result<(), StoreError>;
    /// Allows a client to use a signing key (idempotent). `UnknownReference` for an unknown client.
    async fn grant_key(&self, client_id: i64, key_name: &str) -> Result<(), StoreError>;
    /// Withdraws a grant; returns whether there was one.
    async fn revoke_key_grant(&self, client_id: i64, key_name: &str) -> Result<bool, StoreError>;
    /// The signing keys a client may use, by name.
    async fn list_key_grants(&self, client_id: i64) -> Result<Vec<String>, StoreError>;
    /// Whether a client may use a signing key (one indexed query).
    async fn has_key_grant(&self, client_id: i64, key_name: &str) -> Result<bool, StoreError>;
    /// The signing hot path's one read: [`find_active_api_client`](Store::find_active_api_client)
    /// of `key_hash`, that client's [`has_key_grant`](Store::has_key_grant) of `key_name`, and
    /// [`certificate_status`](Store::certificate_status) of `serial`; `None` when no active client
    /// has that key. All is read from the database (one round trip instead of three), with the
    /// [`AuthorisationEpoch`] they were read at. `InvalidInput` for a malformed serial.
    async fn authorise_signing(
        &self,
        key_hash: &[u8],
        key_name: &str,
        serial: &[u8],
    ) -> Result<Option<SigningAuthorisation>, StoreError>;

    // ---- Time-stamp ledger ----

    /// Records an issued time-stamp token; durable when this returns, so call it before the response
    /// goes out. `DuplicateSerial` if the serial is already recorded (by any node sharing the
    /// database): draw a new serial and sign again.
    async fn record_timestamp(&self, ts: &NewTimestamp) -> Result<TimestampRecord, StoreError>;
    /// A recorded time-stamp token by serial.
    async fn get_timestamp(&self, serial: &[u8]) -> Result<Option<TimestampRecord>, StoreError>;
    /// How many time-stamp tokens are recorded.
    async fn count_timestamps(&self) -> Result<i64, StoreError>;

    // ---- Verification reports ----

    /// Keeps a verification report and its signed receipt. `AlreadyExists` if the id is taken;
    /// `UnknownReference` for an unknown client; `InvalidInput` for a malformed id or report.
    async fn insert_verification(
        &self,
        v: &NewVerification,
    ) -> Result<VerificationRecord, StoreError>;
    /// A verification report by id (`InvalidInput` for a malformed id).
    async fn get_verification(&self, id: &str) -> Result<Option<VerificationRecord>, StoreError>;

    // ---- Audit ----

    /// Appends an event to the hash chain, atomically and serialised across all handles and nodes;
    /// returns the stored record (seq, time, hashes).
    async fn append_audit(&self, event: &NewAuditEvent) -> Result<AuditRecord, StoreError>;
    /// [`append_audit`](Store::append_audit), only if the authorisation epoch is still `epoch`
    /// when the record is written: checked in the writing statement or under the write lock on
    /// SQLite, and under a share lock on the epoch's row on PostgreSQL, so a withdrawal committed
    /// by any process or node before the record is refused (`AuthorisationChanged`, nothing
    /// written) and one committed after it follows it. A signature made on an authorisation kept
    /// from an earlier read is released with this.
    async fn append_audit_authorised(
        &self,
        event: &NewAuditEvent,
        epoch: AuthorisationEpoch,
    ) -> Result<AuditRecord, StoreError>;
    /// Up to `limit` records with `seq >= from_seq`, ascending.
    async fn list_audit(&self, from_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;
}

/// Opens a store using the system clock. See [`open_with_clock`].
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with_clock(url, SystemClock::shared()).await
}

/// Opens the store at `url` and runs its migrations. `sqlite://path?mode=rwc`, `sqlite:path`
/// (created if missing) or `sqlite::memory:`; `postgres://...` / `postgresql://...`.
/// Every stored time (created_at, revoked_at, audit `at`...) is read from `clock`.
/// Call it inside a tokio runtime: the SQLite store spawns its writer task there.
pub async fn open_with_clock(url: &str, clock: SharedClock) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url, clock).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStore::open(url, clock).await?))
    } else {
        Err(StoreError::BadUrl {
            reason: "expected a sqlite: or postgres:// URL".into(),
        })
    }
}
