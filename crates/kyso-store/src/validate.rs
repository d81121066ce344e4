//! Bounds on caller-supplied values, checked before any query runs.

use crate::error::StoreError;
use crate::records::{
    CertificateReservation, MAX_AUDIT_DETAILS_LEN, MAX_DER_LEN, MAX_IMPRINT_LEN, MAX_NONCE_LEN,
    MAX_PAGE, MAX_SERIAL_LEN, MAX_TEXT_LEN, MAX_VERIFICATION_ID_LEN, MAX_VERIFICATION_REPORT_LEN,
    NewApiClient, NewAuditEvent, NewCa, NewCrl, NewTimestamp, NewVerification, StaffFields,
};

pub(crate) fn serial(serial: &[u8]) -> Result<(), StoreError> {
    if serial.is_empty() || serial.len() > MAX_SERIAL_LEN {
        return Err(StoreError::InvalidInput {
            field: "serial",
            reason: format!("must be 1 to {MAX_SERIAL_LEN} bytes, got {}", serial.len()),
        });
    }
    Ok(())
}

pub(crate) fn text(field: &'static str, value: &str) -> Result<(), StoreError> {
    if value.len() > MAX_TEXT_LEN {
        return Err(StoreError::InvalidInput {
            field,
            reason: format!("longer than {MAX_TEXT_LEN} bytes"),
        });
    }
    Ok(())
}

pub(crate) fn non_empty(field: &'static str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        return Err(StoreError::InvalidInput {
            field,
            reason: "must not be empty".into(),
        });
    }
    text(field, value)
}

pub(crate) fn der(field: &'static str, der: &[u8]) -> Result<(), StoreError> {
    if der.is_empty() || der.len() > MAX_DER_LEN {
        return Err(StoreError::InvalidInput {
            field,
            reason: format!("must be 1 to {MAX_DER_LEN} bytes"),
        });
    }
    Ok(())
}

pub(crate) fn limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE))
}

pub(crate) fn offset(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

pub(crate) fn ca(ca: &NewCa) -> Result<(), StoreError> {
    non_empty("ca.name", &ca.name)?;
    non_empty("ca.key.token", &ca.key.token)?;
    non_empty("ca.key.label", &ca.key.label)?;
    der("ca.certificate_der", &ca.certificate_der)?;
    if let Some(parent) = &ca.parent {
        text("ca.parent", parent)?;
    }
    Ok(())
}

pub(crate) fn reservation(r: &CertificateReservation) -> Result<(), StoreError> {
    serial(&r.serial)?;
    non_empty("certificate.ca", &r.ca)?;
    non_empty("certificate.profile", &r.profile)?;
    text("certificate.subject", &r.subject)?;
    if let Some(loc) = &r.key_location {
        non_empty("certificate.key_location.token", &loc.token)?;
        non_empty("certificate.key_location.label", &loc.label)?;
    }
    if let Some(old) = &r.replaces {
        serial(old)?;
        if old == &r.serial {
            return Err(StoreError::InvalidInput {
                field: "certificate.replaces",
                reason: "cannot replace itself".into(),
            });
        }
    }
    if r.not_after < r.not_before {
        return Err(StoreError::InvalidInput {
            field: "certificate.not_after",
            reason: "before not_before".into(),
        });
    }
    Ok(())
}

pub(crate) fn crl(crl: &NewCrl) -> Result<(), StoreError> {
    non_empty("crl.ca", &crl.ca)?;
    der("crl.der", &crl.der)?;
    if crl.number < 1 {
        return Err(StoreError::InvalidInput {
            field: "crl.number",
            reason: "must be positive".into(),
        });
    }
    if crl.next_update < crl.this_update {
        return Err(StoreError::InvalidInput {
            field: "crl.next_update",
            reason: "before this_update".into(),
        });
    }
    Ok(())
}

/// Staff identity numbers are stored as one JSON array; this bounds them.
pub(crate) fn staff(f: &StaffFields) -> Result<(), StoreError> {
    non_empty("staff.full_name", &f.full_name)?;
    non_empty("staff.agency", &f.agency)?;
    for (field, v) in [
        ("staff.unit", &f.unit),
        ("staff.title", &f.title),
        ("staff.email", &f.email),
        ("staff.province", &f.province),
        ("staff.locality", &f.locality),
        ("staff.token_label", &f.token_label),
    ] {
        if let Some(v) = v {
            text(field, v)?;
        }
    }
    if f.identity_numbers.len() > 16 {
        return Err(StoreError::InvalidInput {
            field: "staff.identity_numbers",
            reason: "more than 16".into(),
        });
    }
    for n in &f.identity_numbers {
        non_empty("staff.identity_numbers", n)?;
    }
    Ok(())
}

pub(crate) fn api_client(c: &NewApiClient) -> Result<(), StoreError> {
    non_empty("api_client.name", &c.name)?;
    key_hash(&c.key_hash)?;
    text("api_client.key_prefix", &c.key_prefix)
}

pub(crate) fn key_hash(hash: &[u8]) -> Result<(), StoreError> {
    if hash.len() != 32 {
        return Err(StoreError::InvalidInput {
            field: "key_hash",
            reason: "must be a 32-byte SHA-256".into(),
        });
    }
    Ok(())
}

pub(crate) fn audit_details(details: &str) -> Result<(), StoreError> {
    if details.len() > MAX_AUDIT_DETAILS_LEN {
        return Err(StoreError::InvalidInput {
            field: "audit.details",
            reason: format!("longer than {MAX_AUDIT_DETAILS_LEN} bytes"),
        });
    }
    Ok(())
}

/// Checks an audit event and returns its details as the compact JSON text that is stored and hashed.
pub(crate) fn audit_event(event: &NewAuditEvent) -> Result<String, StoreError> {
    text("audit.actor", &event.actor)?;
    non_empty("audit.action", &event.action)?;
    text("audit.target", &event.target)?;
    let details = serde_json::to_string(&event.details).map_err(|e| StoreError::InvalidInput {
        field: "audit.details",
        reason: e.to_string(),
    })?;
    audit_details(&details)?;
    Ok(details)
}

fn bytes(field: &'static str, value: &[u8], min: usize, max: usize) -> Result<(), StoreError> {
    if value.len() < min || value.len() > max {
        return Err(StoreError::InvalidInput {
            field,
            reason: format!("must be {min} to {max} bytes, got {}", value.len()),
        });
    }
    Ok(())
}

/// A dotted OID: at least two arcs, each a run of ASCII digits.
fn dotted_oid(field: &'static str, value: &str) -> Result<(), StoreError> {
    text(field, value)?;
    let arcs: Vec<&str> = value.split('.').collect();
    if arcs.len() < 2
        || arcs
            .iter()
            .any(|arc| arc.is_empty() || !arc.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(StoreError::InvalidInput {
            field,
            reason: "must be a dotted OID such as 1.2.3".into(),
        });
    }
    Ok(())
}

pub(crate) fn timestamp(ts: &NewTimestamp) -> Result<(), StoreError> {
    bytes("timestamp.serial", &ts.serial, 1, MAX_SERIAL_LEN)?;
    dotted_oid("timestamp.policy", &ts.policy)?;
    non_empty("timestamp.hash_algorithm", &ts.hash_algorithm)?;
    bytes(
        "timestamp.message_imprint",
        &ts.message_imprint,
        1,
        MAX_IMPRINT_LEN,
    )?;
    if let Some(nonce) = &ts.nonce {
        bytes("timestamp.nonce", nonce, 1, MAX_NONCE_LEN)?;
    }
    bytes("timestamp.token_sha256", &ts.token_sha256, 32, 32)?;
    non_empty("timestamp.tsa_key", &ts.tsa_key)
}

pub(crate) fn verification_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty()
        || id.len() > MAX_VERIFICATION_ID_LEN
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(StoreError::InvalidInput {
            field: "verification.id",
            reason: format!(
                "must be 1 to {MAX_VERIFICATION_ID_LEN} ASCII letters, digits, '-' or '_'"
            ),
        });
    }
    Ok(())
}

pub(crate) fn verification(v: &NewVerification) -> Result<(), StoreError> {
    verification_id(&v.id)?;
    non_empty("verification.indication", &v.indication)?;
    if v.report_json.len() > MAX_VERIFICATION_REPORT_LEN {
        return Err(StoreError::InvalidInput {
            field: "verification.report_json",
            reason: format!("longer than {MAX_VERIFICATION_REPORT_LEN} bytes"),
        });
    }
    // Syntax check only (nothing is built): the stored text is served back as JSON.
    serde_json::from_str::<serde::de::IgnoredAny>(&v.report_json).map_err(|e| {
        StoreError::InvalidInput {
            field: "verification.report_json",
            reason: format!("not JSON: {e}"),
        }
    })?;
    der("verification.receipt_der", &v.receipt_der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_dotted_oid_shapes() {
        for good in ["1.2", "1.3.6.1.4.1.99999.1", "2.16.840.1.101.3.4.2.1"] {
            assert!(dotted_oid("policy", good).is_ok(), "{good}");
        }
        for bad in ["", "1", "1.", ".1", "1..2", "1.2a", "1.-2", "１.２"] {
            assert!(dotted_oid("policy", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validate_verification_id_bounds_and_charset() {
        assert!(verification_id("01J9ZQ4X7K3M5N8P2R6T0V1W3Y").is_ok());
        assert!(verification_id("5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f").is_ok());
        assert!(verification_id(&"a".repeat(MAX_VERIFICATION_ID_LEN)).is_ok());
        for bad in [
            String::new(),
            "a".repeat(MAX_VERIFICATION_ID_LEN + 1),
            "a/b".into(),
            "a b".into(),
            "mã-số".into(),
        ] {
            let err = verification_id(&bad).expect_err("refused");
            assert_eq!(err.code(), "invalid_input", "{bad:?}");
        }
    }
}
