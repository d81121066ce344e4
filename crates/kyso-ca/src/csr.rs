//! PKCS#10 certification requests: parsing (DER or PEM, bounded) and the proof-of-possession check
//! that x509-cert does not do.

use der::{Encode, Reader};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::name::Name;
use x509_cert::request::CertReq;

use crate::keys::{self, KeyError, PublicKeyKind, SignatureScheme};

/// The largest request accepted, DER or PEM, in bytes.
pub const MAX_CSR_BYTES: usize = 64 * 1024;

/// Why a request was refused. Stable codes via [`CsrError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    #[error("certification request is empty")]
    Empty,
    #[error("certification request is {len} bytes, at most {max} accepted")]
    TooLarge { len: usize, max: usize },
    #[error("certification request PEM is malformed: {reason}")]
    BadPem { reason: String },
    #[error("PEM label is {label:?}, expected \"CERTIFICATE REQUEST\"")]
    WrongPemLabel { label: String },
    #[error("certification request DER is malformed: {reason}")]
    Malformed { reason: String },
    #[error("{extra} bytes follow the certification request")]
    TrailingData { extra: usize },
    #[error("certification request version is not v1")]
    BadVersion,
    #[error("certification request public key refused: {0}")]
    PublicKey(#[source] KeyError),
    #[error("certification request signature refused: {0}")]
    Signature(#[source] KeyError),
}

impl CsrError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CsrError::Empty => "csr_empty",
            CsrError::TooLarge { .. } => "csr_too_large",
            CsrError::BadPem { .. } => "csr_bad_pem",
            CsrError::WrongPemLabel { .. } => "csr_wrong_pem_label",
            CsrError::Malformed { .. } => "csr_malformed",
            CsrError::TrailingData { .. } => "csr_trailing_data",
            CsrError::BadVersion => "csr_bad_version",
            CsrError::PublicKey(e) => match e {
                KeyError::WeakRsaKey { .. } => "csr_weak_key",
                KeyError::RsaKeyTooLarge { .. } => "csr_key_too_large",
                KeyError::UnsupportedCurve { .. } | KeyError::UnsupportedKeyAlgorithm { .. } => {
                    "csr_unsupported_key"
                }
                _ => "csr_malformed_key",
            },
            CsrError::Signature(e) => match e {
                KeyError::Sha1Signature { .. } => "csr_sha1_signature",
                KeyError::UnsupportedSignatureAlgorithm { .. }
                | KeyError::BadPssParameters { .. } => "csr_unsupported_signature_algorithm",
                KeyError::AlgorithmKeyMismatch { .. } => "csr_algorithm_key_mismatch",
                _ => "csr_bad_signature",
            },
        }
    }
}

/// A request whose signature has been checked with its own public key.
#[derive(Debug, Clone)]
pub struct VerifiedCsr {
    /// The parsed request (attributes included, e.g. requested extensions, which kyso ignores:
    /// the profile decides the extensions).
    pub request: CertReq,
    /// What kind of key it carries.
    pub key_kind: PublicKeyKind,
    /// How it was signed.
    pub signature_scheme: SignatureScheme,
}

impl VerifiedCsr {
    /// The subject the requester asked for (kyso issues the officer's subject, not this one).
    pub fn subject(&self) -> &Name {
        &self.request.info.subject
    }

    /// The key to certify.
    pub fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.request.info.public_key
    }
}

/// Parses a PKCS#10 request from DER or PEM (`-----BEGIN CERTIFICATE REQUEST-----`, also the old
/// `NEW CERTIFICATE REQUEST` label) and verifies its signature with its own key.
pub fn verify_csr(input: &[u8]) -> Result<VerifiedCsr, CsrError> {
    if input.is_empty() {
        return Err(CsrError::Empty);
    }
    if input.len() > MAX_CSR_BYTES {
        return Err(CsrError::TooLarge {
            len: input.len(),
            max: MAX_CSR_BYTES,
        });
    }
    let der = if input.first() == Some(&0x30) {
        input.to_vec()
    } else {
        pem_to_der(input)?
    };
    let request = parse_der(&der)?;
    if request.info.version != x509_cert::request::Version::V1 {
        return Err(CsrError::BadVersion);
    }
    let key_kind = keys::check_public_key(&request.info.public_key).map_err(CsrError::PublicKey)?;
    let signed = request.info.to_der().map_err(|e| CsrError::Malformed {
        reason: e.to_string(),
    })?;
    let signature =
        request
            .signature
            .as_bytes()
            .ok_or(CsrError::Signature(KeyError::MalformedSignature {
                reason: "unused bits".into(),
            }))?;
    let signature_scheme = keys::verify_signature(
        &request.info.public_key,
        &request.algorithm,
        &signed,
        signature,
    )
    .map_err(CsrError::Signature)?;
    Ok(VerifiedCsr {
        request,
        key_kind,
        signature_scheme,
    })
}

fn pem_to_der(input: &[u8]) -> Result<Vec<u8>, CsrError> {
    let text = std::str::from_utf8(input).map_err(|_| CsrError::BadPem {
        reason: "not UTF-8 and not DER".into(),
    })?;
    let text = text.trim();
    let (label, der) = der::pem::decode_vec(text.as_bytes()).map_err(|e| CsrError::BadPem {
        reason: e.to_string(),
    })?;
    if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
        return Err(CsrError::WrongPemLabel {
            label: label.chars().take(40).collect(),
        });
    }
    Ok(der)
}

fn parse_der(der: &[u8]) -> Result<CertReq, CsrError> {
    // Decode with a reader so bytes after the request are reported, not ignored.
    let mut reader = der::SliceReader::new(der).map_err(|e| CsrError::Malformed {
        reason: e.to_string(),
    })?;
    let request =
        <CertReq as der::Decode>::decode(&mut reader).map_err(|e| CsrError::Malformed {
            reason: e.to_string(),
        })?;
    let extra = usize::try_from(reader.remaining_len()).unwrap_or(usize::MAX);
    if extra != 0 {
        return Err(CsrError::TrailingData { extra });
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn openssl(args: &[&str], dir: &Path) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn make_csr(dir: &Path, name: &str, newkey: &[&str], extra: &[&str]) -> Vec<u8> {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let mut args = vec![
            "req", "-new", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
        ];
        args.push("/C=VN/O=ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI/CN=Nguyễn Văn An");
        args.push("-utf8");
        args.extend_from_slice(newkey);
        args.extend_from_slice(extra);
        openssl(&args, dir);
        std::fs::read(dir.join(csr)).unwrap()
    }

    #[test]
    fn csr_openssl_ec_p256_and_p384_verify_in_pem_and_der() {
        let dir = tempfile::tempdir().unwrap();
        for (curve, kind) in [
            ("prime256v1", PublicKeyKind::P256),
            ("secp384r1", PublicKeyKind::P384),
        ] {
            let param = format!("ec_paramgen_curve:{curve}");
            let pem = make_csr(
                dir.path(),
                curve,
                &["-newkey", "ec", "-pkeyopt", &param],
                &[],
            );
            let v = verify_csr(&pem).unwrap();
            assert_eq!(v.key_kind, kind);
            let fields = crate::subject::read_name(v.subject()).unwrap();
            assert_eq!(fields.common_name.as_deref(), Some("Nguyễn Văn An"));
            let der = v.request.to_der().unwrap();
            assert_eq!(verify_csr(&der).unwrap().key_kind, kind);
        }
    }

    #[test]
    fn csr_openssl_rsa_pkcs1_and_pss_verify() {
        let dir = tempfile::tempdir().unwrap();
        let pem = make_csr(dir.path(), "rsa", &["-newkey", "rsa:2048"], &["-sha384"]);
        let v = verify_csr(&pem).unwrap();
        assert_eq!(v.key_kind, PublicKeyKind::Rsa { bits: 2048 });
        assert_eq!(
            v.signature_scheme,
            SignatureScheme::RsaPkcs1v15(keys::SignatureHash::Sha384)
        );
        let pem = make_csr(
            dir.path(),
            "pss",
            &["-newkey", "rsa:2048"],
            &[
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
            ],
        );
        let v = verify_csr(&pem).unwrap();
        assert_eq!(
            v.signature_scheme,
            SignatureScheme::RsaPss(keys::SignatureHash::Sha256)
        );
        // openssl's default PSS salt is the maximum length: verified as declared.
        let pem = make_csr(
            dir.path(),
            "pss-max",
            &["-newkey", "rsa:2048"],
            &["-sha512", "-sigopt", "rsa_padding_mode:pss"],
        );
        let v = verify_csr(&pem).unwrap();
        assert_eq!(
            v.signature_scheme,
            SignatureScheme::RsaPss(keys::SignatureHash::Sha512)
        );
    }

    #[test]
    fn csr_tampered_signature_fails() {
        let dir = tempfile::tempdir().unwrap();
        let pem = make_csr(
            dir.path(),
            "t",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            &[],
        );
        let mut der = verify_csr(&pem).unwrap().request.to_der().unwrap();
        // Change C=VN to C=VM: still well-formed, no longer what was signed.
        let pos = der.windows(2).position(|w| w == b"VN").unwrap();
        der[pos + 1] = b'M';
        let err = verify_csr(&der).unwrap_err();
        assert_eq!(err.code(), "csr_bad_signature", "{err}");
    }

    #[test]
    fn csr_rsa_1024_is_refused_as_weak() {
        let dir = tempfile::tempdir().unwrap();
        let pem = make_csr(dir.path(), "weak", &["-newkey", "rsa:1024"], &[]);
        let err = verify_csr(&pem).unwrap_err();
        assert_eq!(err.code(), "csr_weak_key", "{err}");
        assert!(err.to_string().contains("1024"));
    }

    #[test]
    fn csr_sha1_signature_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pem = make_csr(dir.path(), "sha1", &["-newkey", "rsa:2048"], &["-sha1"]);
        assert_eq!(verify_csr(&pem).unwrap_err().code(), "csr_sha1_signature");
    }

    #[test]
    fn csr_unsupported_curve_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pem = make_csr(
            dir.path(),
            "k",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
            &[],
        );
        assert_eq!(verify_csr(&pem).unwrap_err().code(), "csr_unsupported_key");
    }

    #[test]
    fn csr_ed25519_is_refused_as_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let pem = make_csr(dir.path(), "ed", &["-newkey", "ed25519"], &[]);
        assert_eq!(verify_csr(&pem).unwrap_err().code(), "csr_unsupported_key");
    }

    #[test]
    fn csr_bad_framing_has_distinct_codes() {
        let dir = tempfile::tempdir().unwrap();
        let pem = make_csr(
            dir.path(),
            "f",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            &[],
        );
        let der = verify_csr(&pem).unwrap().request.to_der().unwrap();
        let mut trailing = der.clone();
        trailing.extend_from_slice(b"garbage");
        assert_eq!(
            verify_csr(&trailing).unwrap_err().code(),
            "csr_trailing_data"
        );
        assert_eq!(
            verify_csr(&der[..der.len() - 5]).unwrap_err().code(),
            "csr_malformed"
        );
        assert_eq!(verify_csr(b"").unwrap_err().code(), "csr_empty");
        assert_eq!(
            verify_csr(&vec![0x30; MAX_CSR_BYTES + 1])
                .unwrap_err()
                .code(),
            "csr_too_large"
        );
        assert_eq!(verify_csr(b"hello").unwrap_err().code(), "csr_bad_pem");
        let cert_label = String::from_utf8(pem.clone())
            .unwrap()
            .replace("CERTIFICATE REQUEST", "CERTIFICATE");
        assert_eq!(
            verify_csr(cert_label.as_bytes()).unwrap_err().code(),
            "csr_wrong_pem_label"
        );
    }
}

#[cfg(test)]
mod algorithm_tests {
    use super::*;
    use crate::oids;

    #[test]
    fn csr_algorithm_that_does_not_fit_the_key_or_is_unknown_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-new",
                "-nodes",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-keyout", "k.pem", "-out", "r.csr", "-subj", "/CN=x"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        let pem = std::fs::read(dir.path().join("r.csr")).unwrap();
        let request = verify_csr(&pem).unwrap().request;
        for (oid, code) in [
            (oids::SHA256_WITH_RSA, "csr_algorithm_key_mismatch"),
            (oids::MD5_WITH_RSA, "csr_unsupported_signature_algorithm"),
            (oids::ECDSA_WITH_SHA1, "csr_sha1_signature"),
            (
                der::asn1::ObjectIdentifier::new_unwrap("1.2.3.4"),
                "csr_unsupported_signature_algorithm",
            ),
        ] {
            let mut changed = request.clone();
            changed.algorithm.oid = oid;
            let err = verify_csr(&changed.to_der().unwrap()).unwrap_err();
            assert_eq!(err.code(), code, "{oid}: {err}");
        }
    }
}
