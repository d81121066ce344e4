//! Row shapes and SQL shared by both backends. Both accept `$N` placeholders and `RETURNING`, and the
//! two schemas use the same column names, so only locking and transaction start differ per backend.

use crate::error::StoreError;
use crate::records::{
    ApiClientRecord, AuditRecord, AuthorisationEpoch, CaRecord, CaRole, CertificateRecord,
    CertificateStatusRecord, CrlRecord, KeyGrantAndStatus, KeyLocation, RevocationReason,
    RevokedEntry, SigningAuthorisation, StaffFields, StaffRecord, TimestampRecord,
    VerificationRecord,
};

/// Columns of `cas`, in [`CaRow`] order.
macro_rules! ca_columns {
    () => {
        "name, role, key_token, key_label, certificate_der, parent, created_at"
    };
}
pub(crate) use ca_columns;

/// Columns of `certificates`, in [`CertificateRow`] order.
macro_rules! cert_columns {
    () => {
        "serial, ca, profile, subject, staff_id, key_token, key_label, not_before, not_after, der, status, \
         revoked_at, revocation_reason, replaces, replaced_by, created_at"
    };
}
pub(crate) use cert_columns;

/// Columns of `certificates` in [`CertificateRow`] order, with `der` left out (a NULL in its place):
/// for statements whose caller already holds the DER, so it does not travel back.
macro_rules! cert_columns_without_der {
    () => {
        "serial, ca, profile, subject, staff_id, key_token, key_label, not_before, not_after, \
         CAST(NULL AS BYTEA) AS der, status, revoked_at, revocation_reason, replaces, replaced_by, created_at"
    };
}
pub(crate) use cert_columns_without_der;

/// Columns of `crls`, in [`CrlRow`] order.
macro_rules! crl_columns {
    () => {
        "ca, number, this_update, next_update, der, created_at"
    };
}
pub(crate) use crl_columns;

/// Columns of `staff`, in [`StaffRow`] order.
macro_rules! staff_columns {
    () => {
        "id, full_name, agency, unit, title, email, province, locality, identity_numbers, token_label, active, \
         created_at, updated_at"
    };
}
pub(crate) use staff_columns;

/// Columns of `api_clients`, in [`ApiClientRow`] order.
macro_rules! client_columns {
    () => {
        "id, name, role, key_hash, key_prefix, created_at, disabled_at, last_used_at"
    };
}
pub(crate) use client_columns;

/// Columns of `timestamps`, in [`TimestampRow`] order.
macro_rules! timestamp_columns {
    () => {
        "serial, gen_time_micros, policy, hash_algorithm, message_imprint, nonce, token_sha256, tsa_key, \
         created_at"
    };
}
pub(crate) use timestamp_columns;

/// Columns of `verifications`, in [`VerificationRow`] order.
macro_rules! verification_columns {
    () => {
        "id, created_at, client_id, indication, report_json, receipt_der"
    };
}
pub(crate) use verification_columns;

/// Columns of `audit_log`, in [`AuditRow`] order.
macro_rules! audit_columns {
    () => {
        "seq, at, actor, action, target, outcome, details, prev_hash, hash"
    };
}
pub(crate) use audit_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct CaRow {
    name: String,
    role: String,
    key_token: String,
    key_label: String,
    certificate_der: Vec<u8>,
    parent: Option<String>,
    created_at: i64,
}

impl CaRow {
    pub(crate) fn into_record(self) -> Result<CaRecord, StoreError> {
        let role = match self.role.as_str() {
            "root" => CaRole::Root,
            "issuing" => CaRole::Issuing,
            other => {
                return Err(StoreError::Corrupt {
                    what: "CA role",
                    detail: other.to_owned(),
                });
            }
        };
        Ok(CaRecord {
            name: self.name,
            role,
            key: KeyLocation {
                token: self.key_token,
                label: self.key_label,
            },
            certificate_der: self.certificate_der,
            parent: self.parent,
            created_at: self.created_at,
        })
    }
}

pub(crate) fn ca_role_str(role: CaRole) -> &'static str {
    match role {
        CaRole::Root => "root",
        CaRole::Issuing => "issuing",
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CertificateRow {
    serial: Vec<u8>,
    ca: String,
    profile: String,
    subject: String,
    staff_id: Option<i64>,
    key_token: Option<String>,
    key_label: Option<String>,
    not_before: i64,
    not_after: i64,
    der: Option<Vec<u8>>,
    status: String,
    revoked_at: Option<i64>,
    revocation_reason: Option<i32>,
    replaces: Option<Vec<u8>>,
    replaced_by: Option<Vec<u8>>,
    created_at: i64,
}

pub(crate) fn reason_from_db(code: Option<i32>) -> Result<Option<RevocationReason>, StoreError> {
    code.map(|c| {
        u8::try_from(c)
            .ok()
            .and_then(RevocationReason::from_code)
            .ok_or_else(|| StoreError::Corrupt {
                what: "revocation reason",
                detail: c.to_string(),
            })
    })
    .transpose()
}

impl CertificateRow {
    pub(crate) fn into_record(self) -> Result<CertificateRecord, StoreError> {
        let key_location = match (self.key_token, self.key_label) {
            (Some(token), Some(label)) => Some(KeyLocation { token, label }),
            _ => None,
        };
        Ok(CertificateRecord {
            serial: self.serial,
            ca: self.ca,
            profile: self.profile,
            subject: self.subject,
            staff_id: self.staff_id,
            key_location,
            not_before: self.not_before,
            not_after: self.not_after,
            der: self.der,
            status: self.status.parse()?,
            revoked_at: self.revoked_at,
            revocation_reason: reason_from_db(self.revocation_reason)?,
            replaces: self.replaces,
            replaced_by: self.replaced_by,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct StatusRow {
    ca: String,
    status: String,
    revoked_at: Option<i64>,
    revocation_reason: Option<i32>,
    not_after: i64,
    issued: bool,
}

impl StatusRow {
    pub(crate) fn into_record(self) -> Result<CertificateStatusRecord, StoreError> {
        Ok(CertificateStatusRecord {
            ca: self.ca,
            status: self.status.parse()?,
            revoked_at: self.revoked_at,
            revocation_reason: reason_from_db(self.revocation_reason)?,
            not_after: self.not_after,
            issued: self.issued,
        })
    }
}

/// A grant and a certificate status read together (in [`SELECT_SIGNING_AUTHORISATION`]): the
/// status columns are NULL when the serial is unknown.
#[derive(sqlx::FromRow)]
pub(crate) struct GrantAndStatusRow {
    granted: bool,
    ca: Option<String>,
    status: Option<String>,
    revoked_at: Option<i64>,
    revocation_reason: Option<i32>,
    not_after: Option<i64>,
    issued: bool,
}

impl GrantAndStatusRow {
    pub(crate) fn into_record(self) -> Result<KeyGrantAndStatus, StoreError> {
        let certificate = match (self.ca, self.status, self.not_after) {
            (Some(ca), Some(status), Some(not_after)) => Some(
                StatusRow {
                    ca,
                    status,
                    revoked_at: self.revoked_at,
                    revocation_reason: self.revocation_reason,
                    not_after,
                    issued: self.issued,
                }
                .into_record()?,
            ),
            _ => None,
        };
        Ok(KeyGrantAndStatus {
            granted: self.granted,
            certificate,
        })
    }
}

/// A row of [`SELECT_SIGNING_AUTHORISATION`].
#[derive(sqlx::FromRow)]
pub(crate) struct SigningAuthorisationRow {
    #[sqlx(flatten)]
    client: ApiClientRow,
    #[sqlx(flatten)]
    grant: GrantAndStatusRow,
    epoch: i64,
}

impl SigningAuthorisationRow {
    pub(crate) fn into_record(self) -> Result<SigningAuthorisation, StoreError> {
        Ok(SigningAuthorisation {
            client: self.client.into_record()?,
            grant: self.grant.into_record()?,
            epoch: AuthorisationEpoch(self.epoch),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RevokedRow {
    serial: Vec<u8>,
    revoked_at: Option<i64>,
    revocation_reason: Option<i32>,
    not_after: i64,
}

impl RevokedRow {
    pub(crate) fn into_entry(self) -> Result<RevokedEntry, StoreError> {
        let corrupt = || StoreError::Corrupt {
            what: "revoked certificate",
            detail: hex::encode(&self.serial),
        };
        let revoked_at = self.revoked_at.ok_or_else(corrupt)?;
        let reason = reason_from_db(self.revocation_reason)?.ok_or_else(corrupt)?;
        Ok(RevokedEntry {
            serial: self.serial,
            revoked_at,
            reason,
            not_after: self.not_after,
        })
    }
}

/// The status lookup: one primary-key read.
pub(crate) const SELECT_STATUS: &str = "SELECT ca, status, revoked_at, revocation_reason, not_after, \
     (der IS NOT NULL) AS issued FROM certificates WHERE serial = $1";

/// A client's grant of a key ($1, $2) and a certificate's status ($3) in one read: both are
/// indexed lookups; the one-row probe keeps a row when the serial is unknown.
/// [`SigningAuthorisationRow`]: the active client with key hash $1, its grant of key $2, and the
/// status of certificate $3 (NULL columns when the serial is unknown).
pub(crate) const SELECT_SIGNING_AUTHORISATION: &str = "SELECT \
     a.id, a.name, a.role, a.key_hash, a.key_prefix, a.created_at, a.disabled_at, a.last_used_at, \
     EXISTS (SELECT 1 FROM api_key_grants g WHERE g.client_id = a.id AND g.key_name = $2) AS granted, \
     c.ca, c.status, c.revoked_at, c.revocation_reason, c.not_after, (c.der IS NOT NULL) AS issued, \
     (SELECT value FROM authorisation_epoch WHERE id = 1) AS epoch \
     FROM api_clients a LEFT JOIN certificates c ON c.serial = $3 \
     WHERE a.key_hash = $1 AND a.disabled_at IS NULL";

pub(crate) const SELECT_REVOKED: &str = "SELECT serial, revoked_at, revocation_reason, not_after \
     FROM certificates WHERE ca = $1 AND status <> 'good' ORDER BY serial";

#[derive(sqlx::FromRow)]
pub(crate) struct CrlRow {
    ca: String,
    number: i64,
    this_update: i64,
    next_update: i64,
    der: Vec<u8>,
    created_at: i64,
}

impl CrlRow {
    pub(crate) fn into_record(self) -> CrlRecord {
        CrlRecord {
            ca: self.ca,
            number: self.number,
            this_update: self.this_update,
            next_update: self.next_update,
            der: self.der,
            created_at: self.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct StaffRow {
    id: i64,
    full_name: String,
    agency: String,
    unit: Option<String>,
    title: Option<String>,
    email: Option<String>,
    province: Option<String>,
    locality: Option<String>,
    identity_numbers: String,
    token_label: Option<String>,
    active: bool,
    created_at: i64,
    updated_at: i64,
}

impl StaffRow {
    pub(crate) fn into_record(self) -> Result<StaffRecord, StoreError> {
        let identity_numbers: Vec<String> =
            serde_json::from_str(&self.identity_numbers).map_err(|e| StoreError::Corrupt {
                what: "staff identity numbers",
                detail: e.to_string(),
            })?;
        Ok(StaffRecord {
            id: self.id,
            fields: StaffFields {
                full_name: self.full_name,
                agency: self.agency,
                unit: self.unit,
                title: self.title,
                email: self.email,
                province: self.province,
                locality: self.locality,
                identity_numbers,
                token_label: self.token_label,
            },
            active: self.active,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(crate) fn identity_numbers_json(fields: &StaffFields) -> String {
    // Serialising a Vec<String> cannot fail; fall back to an empty list rather than panic.
    serde_json::to_string(&fields.identity_numbers).unwrap_or_else(|_| "[]".to_owned())
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiClientRow {
    id: i64,
    name: String,
    role: String,
    key_hash: Vec<u8>,
    key_prefix: String,
    created_at: i64,
    disabled_at: Option<i64>,
    last_used_at: Option<i64>,
}

impl ApiClientRow {
    pub(crate) fn into_record(self) -> Result<ApiClientRecord, StoreError> {
        Ok(ApiClientRecord {
            id: self.id,
            name: self.name,
            role: self.role.parse()?,
            key_hash: self.key_hash,
            key_prefix: self.key_prefix,
            created_at: self.created_at,
            disabled_at: self.disabled_at,
            last_used_at: self.last_used_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    seq: i64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    outcome: String,
    details: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl AuditRow {
    pub(crate) fn into_record(self) -> Result<AuditRecord, StoreError> {
        Ok(AuditRecord {
            seq: self.seq,
            at: self.at,
            actor: self.actor,
            action: self.action,
            target: self.target,
            outcome: self.outcome.parse()?,
            details: self.details,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TimestampRow {
    serial: Vec<u8>,
    gen_time_micros: i64,
    policy: String,
    hash_algorithm: String,
    message_imprint: Vec<u8>,
    nonce: Option<Vec<u8>>,
    token_sha256: Vec<u8>,
    tsa_key: String,
    created_at: i64,
}

impl TimestampRow {
    pub(crate) fn into_record(self) -> TimestampRecord {
        TimestampRecord {
            serial: self.serial,
            gen_time_micros: self.gen_time_micros,
            policy: self.policy,
            hash_algorithm: self.hash_algorithm,
            message_imprint: self.message_imprint,
            nonce: self.nonce,
            token_sha256: self.token_sha256,
            tsa_key: self.tsa_key,
            created_at: self.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct VerificationRow {
    id: String,
    created_at: i64,
    client_id: Option<i64>,
    indication: String,
    report_json: String,
    receipt_der: Vec<u8>,
}

impl VerificationRow {
    pub(crate) fn into_record(self) -> VerificationRecord {
        VerificationRecord {
            id: self.id,
            created_at: self.created_at,
            client_id: self.client_id,
            indication: self.indication,
            report_json: self.report_json,
            receipt_der: self.receipt_der,
        }
    }
}

/// Whether `e` is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Whether `e` is a foreign-key violation.
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}
