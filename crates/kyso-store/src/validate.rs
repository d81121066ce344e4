//! Bounds on caller-supplied values, checked before any query runs.

use crate::error::StoreError;
use crate::records::{
    CertificateReservation, MAX_AUDIT_DETAILS_LEN, MAX_DER_LEN, MAX_PAGE, MAX_SERIAL_LEN,
    MAX_TEXT_LEN, NewApiClient, NewCa, NewCrl, StaffFields,
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
