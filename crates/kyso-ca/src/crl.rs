//! v2 CRLs assembled from x509-cert's TBSCertList types, not its `CrlBuilder`: that one reads the
//! wall clock and copies the issuer certificate's own AKI (the root's key, for an issuing CA) into
//! the CRL. Here the CRL's authorityKeyIdentifier is the signing CA's own subject key identifier.

use std::time::SystemTime;

use der::Encode;
use der::asn1::{OctetString, Uint};
use x509_cert::certificate::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber};
use x509_cert::serial_number::SerialNumber;

pub use kyso_asn1::{RevocationReason, UnknownReason};

use crate::error::CaError;
use crate::issue::{Issuer, sign_checked, to_time};
use crate::oids;

/// One revoked (or suspended) certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    pub serial: SerialNumber,
    pub revoked_at: SystemTime,
    pub reason: RevocationReason,
}

/// What a CRL says besides its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlParams {
    /// Monotonic CRL number (allocated by the store).
    pub number: u64,
    /// thisUpdate, from the clock.
    pub this_update: SystemTime,
    /// nextUpdate: when the next CRL will be out at the latest.
    pub next_update: SystemTime,
}

fn extension(
    oid: der::asn1::ObjectIdentifier,
    value: &impl Encode,
    what: &'static str,
) -> Result<Extension, CaError> {
    Ok(Extension {
        extn_id: oid,
        critical: false,
        extn_value: OctetString::new(value.to_der().map_err(CaError::encoding(what))?)
            .map_err(CaError::encoding(what))?,
    })
}

/// Builds and signs a full v2 CRL for `issuer`, with cRLNumber and authorityKeyIdentifier (the
/// issuer's own SKI), one entry per revoked certificate with its revocationDate and a reasonCode
/// entry extension (omitted for `unspecified`, as RFC 5280 5.3.1 asks).
pub async fn build_crl(
    issuer: &Issuer,
    params: CrlParams,
    revoked: &[RevokedEntry],
) -> Result<CertificateList, CaError> {
    if params.next_update <= params.this_update {
        return Err(CaError::CrlTimes {
            this_update: kyso_clock::unix_seconds(params.this_update),
            next_update: kyso_clock::unix_seconds(params.next_update),
        });
    }
    let mut entries = Vec::with_capacity(revoked.len());
    for entry in revoked {
        let crl_entry_extensions = match entry.reason {
            RevocationReason::Unspecified => None,
            reason => Some(vec![extension(
                oids::CE_CRL_REASON,
                &reason.to_crl_reason(),
                "CRL reason",
            )?]),
        };
        entries.push(RevokedCert {
            serial_number: entry.serial.clone(),
            revocation_date: to_time(entry.revoked_at, "CRL revocationDate")?,
            crl_entry_extensions,
        });
    }
    let number =
        Uint::new(&params.number.to_be_bytes()).map_err(CaError::encoding("CRL number"))?;
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(
            OctetString::new(issuer.key_identifier()).map_err(CaError::encoding("CRL AKI"))?,
        ),
        ..Default::default()
    };
    let crl_extensions = vec![
        extension(oids::CE_AUTHORITY_KEY_IDENTIFIER, &aki, "CRL AKI")?,
        extension(oids::CE_CRL_NUMBER, &CrlNumber(number), "CRL number")?,
    ];
    let signature = issuer.key().signature_algorithm();
    let tbs = TbsCertList {
        version: Version::V2,
        signature: signature.clone(),
        issuer: issuer.certificate().tbs_certificate().subject().clone(),
        this_update: to_time(params.this_update, "CRL thisUpdate")?,
        next_update: Some(to_time(params.next_update, "CRL nextUpdate")?),
        revoked_certificates: if entries.is_empty() {
            None
        } else {
            Some(entries)
        },
        crl_extensions: Some(crl_extensions),
    };
    let tbs_der = tbs.to_der().map_err(CaError::encoding("TBSCertList"))?;
    let signature_value = sign_checked(
        issuer.key(),
        issuer.prepared_key(),
        issuer.name(),
        "CRL",
        &tbs_der,
    )
    .await?;
    Ok(CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: signature,
        signature: signature_value,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kyso_clock::Clock;

    use super::*;
    use crate::issue::random_serial;
    use crate::profile::ProfileKind;
    use crate::test_pki::{TestPki, openssl, openssl_ok, staff_subject};

    fn colon_hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    #[tokio::test]
    async fn crl_verifies_in_openssl_with_number_reasons_and_the_signing_cas_aki() {
        let pki = TestPki::new("crl-openssl").await;
        let (good, _) = pki
            .issue("good", ProfileKind::StaffSigning, staff_subject())
            .await;
        let (compromised, _) = pki
            .issue("bad", ProfileKind::StaffSigning, staff_subject())
            .await;
        let (held, _) = pki
            .issue("held", ProfileKind::StaffSigning, staff_subject())
            .await;
        let now = pki.clock.now();
        let entries = vec![
            RevokedEntry {
                serial: compromised.tbs_certificate().serial_number().clone(),
                revoked_at: now,
                reason: RevocationReason::KeyCompromise,
            },
            RevokedEntry {
                serial: held.tbs_certificate().serial_number().clone(),
                revoked_at: now,
                reason: RevocationReason::CertificateHold,
            },
            RevokedEntry {
                serial: random_serial(),
                revoked_at: now,
                reason: RevocationReason::Unspecified,
            },
        ];
        let params = CrlParams {
            number: 7,
            this_update: now,
            next_update: now + Duration::from_secs(86_400),
        };
        let crl = build_crl(&pki.issuing, params, &entries).await.unwrap();
        pki.write_der("issuing.crl", &crl);
        let root_crl = build_crl(
            &pki.root,
            CrlParams {
                number: 1,
                ..params
            },
            &[],
        )
        .await
        .unwrap();
        assert!(root_crl.tbs_cert_list.revoked_certificates.is_none());
        pki.write_der("root.crl", &root_crl);
        std::fs::write(
            pki.path("chain.pem"),
            [
                std::fs::read(pki.path("root.pem")).unwrap(),
                std::fs::read(pki.path("issuing.pem")).unwrap(),
            ]
            .concat(),
        )
        .unwrap();

        let out = openssl_ok(
            pki.dir.path(),
            &[
                "crl",
                "-in",
                "issuing.crl",
                "-inform",
                "DER",
                "-CAfile",
                "chain.pem",
                "-noout",
            ],
        );
        assert!(out.contains("verify OK"), "{out}");
        // The root's key did not sign it.
        let (ok, out) = openssl(
            pki.dir.path(),
            &[
                "crl",
                "-in",
                "issuing.crl",
                "-inform",
                "DER",
                "-CAfile",
                "root.pem",
                "-noout",
            ],
        );
        assert!(!ok || !out.contains("verify OK"), "{out}");

        let text = openssl_ok(
            pki.dir.path(),
            &[
                "crl",
                "-in",
                "issuing.crl",
                "-inform",
                "DER",
                "-noout",
                "-text",
            ],
        );
        assert!(text.contains("CRL Number: \n                7"), "{text}");
        assert!(text.contains("Version 2"), "{text}");
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(text.contains("Certificate Hold"), "{text}");
        assert_eq!(text.matches("Serial Number:").count(), 3, "{text}");
        assert_eq!(
            text.matches("CRL Reason Code").count(),
            2,
            "unspecified carries no reason: {text}"
        );
        let issuing_ski = colon_hex(pki.issuing.key_identifier());
        let root_ski = colon_hex(pki.root.key_identifier());
        assert!(
            text.contains(&issuing_ski),
            "AKI must be the issuing CA's SKI {issuing_ski}:\n{text}"
        );
        assert!(!text.contains(&root_ski), "not the root's:\n{text}");

        // openssl's revocation checking uses it: the compromised and held certificates are refused,
        // the good one passes with full CRL checking.
        for (cert, file) in [
            (&good, "good.pem"),
            (&compromised, "bad.pem"),
            (&held, "held.pem"),
        ] {
            pki.write_pem(file, cert);
        }
        let verify = |file: &str| {
            openssl(
                pki.dir.path(),
                &[
                    "verify",
                    "-crl_check_all",
                    "-CRLfile",
                    "issuing.crl",
                    "-CRLfile",
                    "root.crl",
                    "-CAfile",
                    "root.pem",
                    "-untrusted",
                    "issuing.pem",
                    file,
                ],
            )
        };
        let (ok, out) = verify("good.pem");
        assert!(ok && out.contains("good.pem: OK"), "{out}");
        let (ok, out) = verify("bad.pem");
        assert!(!ok && out.contains("certificate revoked"), "{out}");
        let (ok, out) = verify("held.pem");
        assert!(!ok && out.contains("certificate revoked"), "{out}");
    }

    #[tokio::test]
    async fn crl_refuses_next_update_not_after_this_update() {
        let pki = TestPki::new("crl-times").await;
        let now = pki.clock.now();
        let err = build_crl(
            &pki.issuing,
            CrlParams {
                number: 1,
                this_update: now,
                next_update: now,
            },
            &[],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "crl_bad_times");
    }
}
