//! Plain record types: what callers put into the store and what they get back.
//!
//! Times are whole seconds since the Unix epoch (`i64`), as `kyso_clock::Clock::now_unix` gives them.
//! Serials, hashes and DER are raw bytes; in JSON, serials and hashes are lowercase hex and DER is
//! standard base64.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Shared with kyso-ca (CRLs, OCSP); the store keeps its numeric code.
pub use kyso_asn1::RevocationReason;

use crate::error::StoreError;

/// Largest serial number accepted, in bytes (RFC 5280 section 4.1.2.2: at most 20 octets).
pub const MAX_SERIAL_LEN: usize = 20;
/// Largest DER object (certificate or CRL) accepted, in bytes.
pub const MAX_DER_LEN: usize = 16 * 1024 * 1024;
/// Largest short text field (names, labels, subjects, actors...) accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 4096;
/// Largest audit `details` JSON text accepted, in bytes.
pub const MAX_AUDIT_DETAILS_LEN: usize = 64 * 1024;
/// Largest page any `list_*` call returns; bigger limits are clamped to this.
pub const MAX_PAGE: u32 = 1000;
/// Largest timestamp message imprint accepted, in bytes (a SHA-512 digest is 64).
pub const MAX_IMPRINT_LEN: usize = 64;
/// Largest timestamp request nonce accepted, in bytes.
pub const MAX_NONCE_LEN: usize = 64;
/// Longest verification report id accepted, in bytes (ids appear in URLs).
pub const MAX_VERIFICATION_ID_LEN: usize = 64;
/// Largest verification report JSON accepted, in bytes.
pub const MAX_VERIFICATION_REPORT_LEN: usize = 4 * 1024 * 1024;

/// Role of a certificate authority in the hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaRole {
    /// Self-signed root.
    Root,
    /// Issues end-entity certificates; signed by its parent.
    Issuing,
}

/// Where a private key lives: a token label and a key label on that token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyLocation {
    /// PKCS#11 token label.
    pub token: String,
    /// Key (CKA_LABEL) on that token.
    pub label: String,
}

/// A CA to record (`Store::insert_ca`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCa {
    /// Unique name, used in URLs (`/crl/{name}.crl`), e.g. "kyso-issuing".
    pub name: String,
    /// Root or issuing.
    pub role: CaRole,
    /// The CA's signing key in the HSM.
    pub key: KeyLocation,
    /// The CA certificate, DER.
    #[serde(with = "b64")]
    pub certificate_der: Vec<u8>,
    /// Name of the CA that signed this one (`None` for a root).
    pub parent: Option<String>,
}

/// A stored CA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaRecord {
    /// Unique name.
    pub name: String,
    /// Root or issuing.
    pub role: CaRole,
    /// The CA's signing key in the HSM.
    pub key: KeyLocation,
    /// The CA certificate, DER.
    #[serde(with = "b64")]
    pub certificate_der: Vec<u8>,
    /// Name of the parent CA (`None` for a root).
    pub parent: Option<String>,
    /// When the record was created.
    pub created_at: i64,
}

/// Revocation state of a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertStatus {
    /// Not revoked, not on hold.
    Good,
    /// Revoked for good (see the reason).
    Revoked,
    /// Suspended (certificateHold); can be released back to good or revoked.
    Hold,
}

impl CertStatus {
    /// The stable text stored in the database and shown in APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Good => "good",
            CertStatus::Revoked => "revoked",
            CertStatus::Hold => "hold",
        }
    }
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CertStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "good" => Ok(CertStatus::Good),
            "revoked" => Ok(CertStatus::Revoked),
            "hold" => Ok(CertStatus::Hold),
            other => Err(StoreError::Corrupt {
                what: "certificate status",
                detail: other.to_owned(),
            }),
        }
    }
}

/// A certificate serial reserved before signing (`Store::reserve_certificate`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateReservation {
    /// Serial number bytes (1..=20 bytes; unique across the whole database).
    #[serde(with = "hexbytes")]
    pub serial: Vec<u8>,
    /// Name of the issuing CA (must exist).
    pub ca: String,
    /// Certificate profile name, e.g. "staff-signing".
    pub profile: String,
    /// Subject as a display string.
    pub subject: String,
    /// The staff member the certificate is for, if any (must exist).
    pub staff_id: Option<i64>,
    /// Where the subject's key was generated, when it was generated on a token.
    pub key_location: Option<KeyLocation>,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// The certificate this one renews or re-keys, if any: when this one is completed, the old one's
    /// `replaced_by` is set to this serial in the same transaction.
    #[serde(with = "hexbytes_opt")]
    pub replaces: Option<Vec<u8>>,
}

/// A stored certificate (reserved or issued).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// Serial number bytes.
    #[serde(with = "hexbytes")]
    pub serial: Vec<u8>,
    /// Issuing CA name.
    pub ca: String,
    /// Profile name.
    pub profile: String,
    /// Subject display string.
    pub subject: String,
    /// Staff member, if any.
    pub staff_id: Option<i64>,
    /// Token and key label when the key was generated on a token.
    pub key_location: Option<KeyLocation>,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// The certificate DER; `None` while only reserved (signing not yet recorded).
    #[serde(with = "b64_opt")]
    pub der: Option<Vec<u8>>,
    /// Good, revoked or hold.
    pub status: CertStatus,
    /// When it was revoked or put on hold.
    pub revoked_at: Option<i64>,
    /// Why (certificateHold while on hold).
    pub revocation_reason: Option<RevocationReason>,
    /// The certificate this one renewed or re-keyed.
    #[serde(with = "hexbytes_opt")]
    pub replaces: Option<Vec<u8>>,
    /// The certificate that renewed or re-keyed this one.
    #[serde(with = "hexbytes_opt")]
    pub replaced_by: Option<Vec<u8>>,
    /// When the serial was reserved.
    pub created_at: i64,
}

impl CertificateRecord {
    /// Whether the certificate has been completed with its DER (issued), not just reserved.
    pub fn is_issued(&self) -> bool {
        self.der.is_some()
    }
}

/// What OCSP needs about a serial: one indexed lookup (`Store::certificate_status`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateStatusRecord {
    /// Issuing CA name (OCSP must check it matches the CertID's issuer).
    pub ca: String,
    /// Good, revoked or hold.
    pub status: CertStatus,
    /// When revoked or put on hold.
    pub revoked_at: Option<i64>,
    /// Why.
    pub revocation_reason: Option<RevocationReason>,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// False while only reserved: the serial is known, but the signed certificate was never recorded
    /// (possibly a crash between signing and storing; treat as issued).
    pub issued: bool,
}

/// Whether a client may use a signing key, and the status of that key's certificate, read
/// together (part of [`SigningAuthorisation`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyGrantAndStatus {
    /// The client holds a grant of the key.
    pub granted: bool,
    /// The certificate's status; `None` if its serial is unknown.
    pub certificate: Option<CertificateStatusRecord>,
}

/// The authenticated client, its grant of a signing key and that key's certificate status, read
/// together (`Store::authorise_signing`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningAuthorisation {
    /// The active client holding the presented API key.
    pub client: ApiClientRecord,
    pub grant: KeyGrantAndStatus,
    /// The authorisation epoch these were read at: a signature made on this authorisation is
    /// released through `Store::append_audit_authorised` with it.
    pub epoch: AuthorisationEpoch,
}

/// How many withdrawals of signing authority the database has seen: a client disabled, re-keyed,
/// re-roled or removed, a key grant withdrawn, a good certificate revoked or put on hold (by any
/// process or node). An authorisation read at one epoch still holds while the epoch is unchanged;
/// additions (a new client, grant or certificate) leave it alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuthorisationEpoch(pub i64);

/// One entry for a CRL (`Store::list_revoked`): revoked or on hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedEntry {
    /// Serial number bytes.
    #[serde(with = "hexbytes")]
    pub serial: Vec<u8>,
    /// When revoked or put on hold.
    pub revoked_at: i64,
    /// Why (certificateHold for a held certificate).
    pub reason: RevocationReason,
    /// notAfter, so callers may drop long-expired entries.
    pub not_after: i64,
}

/// Which certificates `Store::list_certificates` returns, ordered by creation time then serial.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateQuery {
    /// Only this CA's.
    pub ca: Option<String>,
    /// Only this staff member's.
    pub staff_id: Option<i64>,
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return (clamped to 1..=[`MAX_PAGE`]).
    pub limit: u32,
}

/// A signed CRL to record (`Store::store_crl`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCrl {
    /// CA name.
    pub ca: String,
    /// CRL number, from `Store::allocate_crl_number`; must exceed every stored number for this CA.
    pub number: i64,
    /// thisUpdate, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
    /// The CRL, DER.
    #[serde(with = "b64")]
    pub der: Vec<u8>,
}

/// A stored CRL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrlRecord {
    /// CA name.
    pub ca: String,
    /// CRL number.
    pub number: i64,
    /// thisUpdate, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
    /// The CRL, DER.
    #[serde(with = "b64")]
    pub der: Vec<u8>,
    /// When it was stored.
    pub created_at: i64,
}

/// The editable fields of a staff member (create and update).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffFields {
    /// Full name with diacritics (CN).
    pub full_name: String,
    /// Agency (O).
    pub agency: String,
    /// Unit (OU).
    pub unit: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Province or city (ST).
    pub province: Option<String>,
    /// Locality (L).
    pub locality: Option<String>,
    /// Identity numbers like "CCCD:079123456789" (validated by the caller).
    pub identity_numbers: Vec<String>,
    /// Label of the staff member's PKCS#11 token, if they have one.
    pub token_label: Option<String>,
}

/// A stored staff member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffRecord {
    /// Database-assigned id.
    pub id: i64,
    /// The editable fields.
    #[serde(flatten)]
    pub fields: StaffFields,
    /// Active (deactivated staff are kept for history).
    pub active: bool,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Last updated, unix seconds.
    pub updated_at: i64,
}

/// Role of an API client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientRole {
    /// Everything, including API-client management.
    Admin,
    /// Key officer: staff, enrollment, revocation.
    Officer,
    /// A system that signs with granted keys.
    Client,
    /// Reads the audit log.
    Auditor,
}

impl ClientRole {
    /// The stable text stored in the database and shown in APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientRole::Admin => "admin",
            ClientRole::Officer => "officer",
            ClientRole::Client => "client",
            ClientRole::Auditor => "auditor",
        }
    }
}

impl fmt::Display for ClientRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientRole {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "admin" => Ok(ClientRole::Admin),
            "officer" => Ok(ClientRole::Officer),
            "client" => Ok(ClientRole::Client),
            "auditor" => Ok(ClientRole::Auditor),
            other => Err(StoreError::Corrupt {
                what: "client role",
                detail: other.to_owned(),
            }),
        }
    }
}

/// An API client to create (`Store::create_api_client`). The key itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiClient {
    /// Display name.
    pub name: String,
    /// Role.
    pub role: ClientRole,
    /// SHA-256 of the API key (32 bytes; unique).
    #[serde(with = "hexbytes")]
    pub key_hash: Vec<u8>,
    /// First characters of the key, for display.
    pub key_prefix: String,
}

/// A stored API client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiClientRecord {
    /// Database-assigned id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: ClientRole,
    /// SHA-256 of the key.
    #[serde(with = "hexbytes")]
    pub key_hash: Vec<u8>,
    /// First characters of the key.
    pub key_prefix: String,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Disabled, unix seconds (a disabled client cannot authenticate).
    pub disabled_at: Option<i64>,
    /// Last recorded use (`Store::touch_api_client`).
    pub last_used_at: Option<i64>,
}

/// Outcome of an audited action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It happened.
    Success,
    /// It was refused or failed.
    Failure,
}

impl AuditOutcome {
    /// The stable text stored and hashed.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Failure => "failure",
        }
    }
}

impl FromStr for AuditOutcome {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "success" => Ok(AuditOutcome::Success),
            "failure" => Ok(AuditOutcome::Failure),
            other => Err(StoreError::Corrupt {
                what: "audit outcome",
                detail: other.to_owned(),
            }),
        }
    }
}

/// An audit event to append (`Store::append_audit`); the store assigns seq, time and hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAuditEvent {
    /// Who: e.g. "client:3", "cli", "anonymous".
    pub actor: String,
    /// What: e.g. "certificate.issue".
    pub action: String,
    /// On what: e.g. a serial in hex, "staff:12".
    pub target: String,
    /// Success or failure.
    pub outcome: AuditOutcome,
    /// Free-form details (stored as compact JSON text, which is what the hash covers).
    pub details: serde_json::Value,
}

/// A stored, hash-chained audit record. See [`crate::audit`] for the hash encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1, 2, 3 ... without gaps.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// Success or failure.
    pub outcome: AuditOutcome,
    /// Details as the exact JSON text stored (and hashed).
    pub details: String,
    /// Hash of the previous record (32 zero bytes for seq 1).
    #[serde(with = "hexbytes")]
    pub prev_hash: Vec<u8>,
    /// SHA-256 of this record's canonical encoding.
    #[serde(with = "hexbytes")]
    pub hash: Vec<u8>,
}

/// A time-stamp token to record in the ledger (`Store::record_timestamp`) before it is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTimestamp {
    /// TSTInfo serialNumber bytes (1..=20 bytes; unique across the whole database).
    #[serde(with = "hexbytes")]
    pub serial: Vec<u8>,
    /// TSTInfo genTime in unix microseconds (genTime may carry fractions of a second).
    pub gen_time_micros: i64,
    /// The TSA policy the token was issued under, dotted OID text.
    pub policy: String,
    /// Hash algorithm of the message imprint, e.g. "sha256" or its dotted OID.
    pub hash_algorithm: String,
    /// The hashed message (1..=[`MAX_IMPRINT_LEN`] bytes).
    #[serde(with = "hexbytes")]
    pub message_imprint: Vec<u8>,
    /// The request nonce, if any (at most [`MAX_NONCE_LEN`] bytes).
    #[serde(with = "hexbytes_opt")]
    pub nonce: Option<Vec<u8>>,
    /// SHA-256 of the whole TimeStampToken DER (32 bytes).
    #[serde(with = "hexbytes")]
    pub token_sha256: Vec<u8>,
    /// Name of the TSA key that signed it.
    pub tsa_key: String,
}

/// A recorded time-stamp token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimestampRecord {
    /// TSTInfo serialNumber bytes.
    #[serde(with = "hexbytes")]
    pub serial: Vec<u8>,
    /// genTime, unix microseconds.
    pub gen_time_micros: i64,
    /// TSA policy, dotted OID text.
    pub policy: String,
    /// Hash algorithm of the message imprint.
    pub hash_algorithm: String,
    /// The hashed message.
    #[serde(with = "hexbytes")]
    pub message_imprint: Vec<u8>,
    /// The request nonce, if any.
    #[serde(with = "hexbytes_opt")]
    pub nonce: Option<Vec<u8>>,
    /// SHA-256 of the TimeStampToken DER.
    #[serde(with = "hexbytes")]
    pub token_sha256: Vec<u8>,
    /// Name of the signing TSA key.
    pub tsa_key: String,
    /// When it was recorded, unix seconds (the store's clock).
    pub created_at: i64,
}

impl NewTimestamp {
    /// The ledger's record of this timestamp, stored at `created_at`.
    pub fn recorded(self, created_at: i64) -> TimestampRecord {
        TimestampRecord {
            serial: self.serial,
            gen_time_micros: self.gen_time_micros,
            policy: self.policy,
            hash_algorithm: self.hash_algorithm,
            message_imprint: self.message_imprint,
            nonce: self.nonce,
            token_sha256: self.token_sha256,
            tsa_key: self.tsa_key,
            created_at,
        }
    }
}

/// A verification report to keep (`Store::insert_verification`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVerification {
    /// Report id chosen by the caller (uuid-like; 1..=[`MAX_VERIFICATION_ID_LEN`] bytes of ASCII
    /// letters, digits, `-` and `_`).
    pub id: String,
    /// When the verification ran, unix seconds (as stated in the report and its receipt).
    pub created_at: i64,
    /// The API client that asked, if any (must exist).
    pub client_id: Option<i64>,
    /// ETSI EN 319 102-1 main indication, e.g. "TOTAL-PASSED" (kept in its own column for statistics).
    pub indication: String,
    /// The report as JSON text (must be JSON; at most [`MAX_VERIFICATION_REPORT_LEN`] bytes).
    pub report_json: String,
    /// The signed receipt (e.g. a CMS SignedData over the report), DER.
    #[serde(with = "b64")]
    pub receipt_der: Vec<u8>,
}

/// A stored verification report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRecord {
    /// Report id.
    pub id: String,
    /// When the verification ran, unix seconds.
    pub created_at: i64,
    /// The API client that asked, if any.
    pub client_id: Option<i64>,
    /// Main indication.
    pub indication: String,
    /// The report, JSON text exactly as given.
    pub report_json: String,
    /// The signed receipt, DER.
    #[serde(with = "b64")]
    pub receipt_der: Vec<u8>,
}

mod hexbytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

mod hexbytes_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&hex::encode(v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

mod b64_opt {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&STANDARD.encode(v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| STANDARD.decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}
