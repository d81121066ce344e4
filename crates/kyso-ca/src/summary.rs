//! A JSON-friendly description of a certificate, for API responses and public pages.

use der::Encode;
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::BasicConstraints;

use crate::error::CaError;
use crate::issue::serial_hex;
use crate::keys::{self, PublicKeyKind};
use crate::subject::{NameFields, read_name};

/// What people and API clients want to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateSummary {
    /// Lowercase hex, as in URLs.
    pub serial: String,
    pub subject: NameFields,
    pub issuer: NameFields,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// `None` for keys outside kyso's policy (foreign certificates).
    pub key: Option<PublicKeyKind>,
    pub is_ca: bool,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256_fingerprint: String,
}

impl CertificateSummary {
    /// The same with every identity number masked (`CCCD:0792******45`), for public pages.
    pub fn masked(mut self) -> CertificateSummary {
        self.subject.mask_identities();
        self.issuer.mask_identities();
        self
    }
}

/// Describes `cert`.
pub fn summarize(cert: &Certificate) -> Result<CertificateSummary, CaError> {
    let tbs = cert.tbs_certificate();
    let der = cert.to_der().map_err(CaError::encoding("certificate"))?;
    let is_ca = tbs
        .get_extension::<BasicConstraints>()
        .map_err(CaError::encoding("basic constraints"))?
        .is_some_and(|(_, bc)| bc.ca);
    Ok(CertificateSummary {
        serial: serial_hex(tbs.serial_number()),
        subject: read_name(tbs.subject())?,
        issuer: read_name(tbs.issuer())?,
        not_before: kyso_clock::unix_seconds(tbs.validity().not_before.to_system_time()),
        not_after: kyso_clock::unix_seconds(tbs.validity().not_after.to_system_time()),
        key: keys::check_public_key(tbs.subject_public_key_info()).ok(),
        is_ca,
        sha256_fingerprint: hex::encode(Sha256::digest(&der)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileKind;
    use crate::test_pki::{TestPki, openssl_ok, staff_subject};

    #[tokio::test]
    async fn summary_matches_openssl_and_serialises_to_json() {
        let pki = TestPki::new("ca-summary").await;
        let (leaf, _) = pki
            .issue("leaf", ProfileKind::StaffSigning, staff_subject())
            .await;
        pki.write_pem("leaf.pem", &leaf);
        let summary = summarize(&leaf).unwrap();
        let openssl = openssl_ok(
            pki.dir.path(),
            &[
                "x509",
                "-in",
                "leaf.pem",
                "-noout",
                "-serial",
                "-fingerprint",
                "-sha256",
            ],
        );
        let openssl = openssl.to_lowercase().replace(':', "");
        assert!(
            openssl.contains(&format!("serial={}", summary.serial)),
            "{openssl}"
        );
        assert!(openssl.contains(&summary.sha256_fingerprint), "{openssl}");
        assert_eq!(
            summary.subject.common_name.as_deref(),
            Some("Nguyễn Văn An")
        );
        assert_eq!(
            summary.issuer.common_name.as_deref(),
            Some("kyso Test Issuing CA")
        );
        assert_eq!(summary.key, Some(PublicKeyKind::P256));
        assert!(!summary.is_ca);
        assert!(summarize(pki.issuing.certificate()).unwrap().is_ca);
        assert_eq!(summary.not_before, kyso_clock::Clock::now_unix(&pki.clock));
        assert_eq!(
            summary.subject.identities[0].to_string(),
            "CCCD:079212345645"
        );
        let json = serde_json::to_value(summary.masked()).unwrap();
        assert!(json["subject"].get("identities").is_none(), "{json}");
        assert_eq!(json["subject"]["masked_identities"][0], "CCCD:0792******45");
        assert!(!json.to_string().contains("079212345645"), "{json}");
        assert_eq!(json["key"], "p256");
    }
}
