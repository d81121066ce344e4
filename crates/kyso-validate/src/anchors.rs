//! Trust anchors (pinned by SHA-256 fingerprint) and known intermediate CA certificates, parsed
//! once and shared by every validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use certval::{PDVCertificate, PDVTrustAnchorChoice, hex_skid_from_ta};
use const_oid::ObjectIdentifier;
use der::Decode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::ext::pkix::BasicConstraints;

use crate::error::AnchorError;
use crate::indication::Message;

/// Certificates bigger than this are not read (real CA certificates are a few KiB).
pub const MAX_CERTIFICATE_FILE_BYTES: usize = 1024 * 1024;
/// At most this many anchors and intermediates each.
pub const MAX_CERTIFICATES: usize = 10_000;

/// Signature algorithms that hash with SHA-1 (or worse): accepted only under anchors flagged
/// `allow_sha1`.
const WEAK_SIGNATURE_ALGORITHMS: &[ObjectIdentifier] = &[
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5"), // sha1WithRSAEncryption
    ObjectIdentifier::new_unwrap("1.3.14.3.2.29"),        // sha1WithRSASignature (OIW)
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.1"),    // ecdsa-with-SHA1
    ObjectIdentifier::new_unwrap("1.2.840.10040.4.3"),    // dsa-with-sha1
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.4"), // md5WithRSAEncryption
];

/// Whether a signature algorithm hashes with SHA-1 or MD5.
pub(crate) fn is_weak_signature_algorithm(oid: &ObjectIdentifier) -> bool {
    WEAK_SIGNATURE_ALGORITHMS.contains(oid)
}

/// SHA-256 of `der`, uppercase hex (the form the vn-pki README and `openssl -fingerprint` print).
pub fn sha256_fingerprint(der: &[u8]) -> String {
    hex::encode_upper(Sha256::digest(der))
}

/// Normalises a configured fingerprint: hex, any case, colons or spaces allowed.
fn normalise_fingerprint(source_name: &str, value: &str) -> Result<String, AnchorError> {
    let cleaned: String = value
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if cleaned.len() == 64 && cleaned.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(cleaned)
    } else {
        Err(AnchorError::BadFingerprint {
            source_name: source_name.to_owned(),
            value: value.chars().take(80).collect(),
        })
    }
}

/// One trust anchor file in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorFile {
    pub path: PathBuf,
    /// Expected SHA-256 fingerprint of the certificate; loading fails on a mismatch.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Accept this anchor although it (or certificates under it) is signed with SHA-1.
    #[serde(default)]
    pub allow_sha1: bool,
}

/// A folder of trust anchors (`*.der`, `*.cer`, `*.crt`, `*.pem`; subfolders are not read, so
/// a `test/` folder beside real roots is never trusted by accident).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorFolder {
    pub path: PathBuf,
    /// File name -> expected SHA-256 fingerprint.
    #[serde(default)]
    pub pins: BTreeMap<String, String>,
    /// Refuse files that have no pin.
    #[serde(default)]
    pub require_pins: bool,
    /// Fingerprints of the anchors in this folder that may be SHA-1 signed.
    #[serde(default)]
    pub allow_sha1: Vec<String>,
}

/// A loaded anchor as reported to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnchorInfo {
    /// Where it came from (file name or caller-given label).
    pub label: String,
    pub sha256: String,
    pub subject_common_name: Option<String>,
    /// The anchor may anchor SHA-1-signed chains.
    pub allow_sha1: bool,
    /// The anchor's own signature uses SHA-1.
    pub sha1_signed: bool,
}

pub(crate) struct AnchorEntry {
    pub info: AnchorInfo,
    pub pdv: PDVTrustAnchorChoice,
    pub hex_skid: String,
}

pub(crate) struct IntermediateEntry {
    pub label: String,
    pub fingerprint: [u8; 32],
    pub pdv: PDVCertificate,
}

/// The trust store: anchors and known intermediates (for path building when a signature does not
/// carry its chain). Build it once and hand it to [`crate::PathValidator::new`].
#[derive(Default)]
pub struct TrustAnchors {
    pub(crate) anchors: Vec<Arc<AnchorEntry>>,
    pub(crate) intermediates: Vec<Arc<IntermediateEntry>>,
    warnings: Vec<Message>,
}

impl std::fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustAnchors")
            .field(
                "anchors",
                &self.anchors.iter().map(|a| &a.info).collect::<Vec<_>>(),
            )
            .field("intermediates", &self.intermediates.len())
            .finish()
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, AnchorError> {
    let meta = std::fs::metadata(path).map_err(|e| AnchorError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if meta.len() > MAX_CERTIFICATE_FILE_BYTES as u64 {
        return Err(AnchorError::TooLarge {
            source_name: path.display().to_string(),
            limit: MAX_CERTIFICATE_FILE_BYTES,
        });
    }
    std::fs::read(path).map_err(|e| AnchorError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Splits DER or PEM bytes into certificate DERs.
pub fn parse_certificates(bytes: &[u8], source_name: &str) -> Result<Vec<Vec<u8>>, AnchorError> {
    if bytes.len() > MAX_CERTIFICATE_FILE_BYTES {
        return Err(AnchorError::TooLarge {
            source_name: source_name.to_owned(),
            limit: MAX_CERTIFICATE_FILE_BYTES,
        });
    }
    let not_cert = |reason: String| AnchorError::NotACertificate {
        source_name: source_name.to_owned(),
        reason,
    };
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let ders = if find(bytes, BEGIN).is_some() {
        // PEM, possibly with text around the blocks (as `openssl x509 -text` and bundles have).
        let mut ders = Vec::new();
        let mut rest = bytes;
        while let Some(start) = find(rest, BEGIN) {
            let block = &rest[start..];
            let end = find(block, END)
                .ok_or_else(|| not_cert("unterminated PEM block".to_owned()))?
                + END.len();
            // Lenient about line endings and lengths (real files mix CRLF and LF), strict about
            // the content: the base64 must decode to a DER certificate.
            let body: Vec<u8> = block[BEGIN.len()..end - END.len()]
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(&body)
                .map_err(|e| not_cert(format!("PEM base64: {e}")))?;
            Certificate::from_der(&der).map_err(|e| not_cert(e.to_string()))?;
            ders.push(der);
            rest = &block[end..];
        }
        ders
    } else {
        Certificate::from_der(bytes).map_err(|e| not_cert(e.to_string()))?;
        // Keep the original bytes: the fingerprint is over them.
        vec![bytes.to_vec()]
    };
    if ders.is_empty() {
        return Err(AnchorError::Empty {
            source_name: source_name.to_owned(),
        });
    }
    Ok(ders)
}

fn common_name(cert: &Certificate) -> Option<String> {
    kyso_ca::read_name(cert.tbs_certificate().subject())
        .ok()
        .and_then(|f| f.common_name)
}

impl TrustAnchors {
    pub fn new() -> TrustAnchors {
        TrustAnchors::default()
    }

    /// Adds one anchor from DER. `pin` is the expected SHA-256 fingerprint.
    pub fn add_anchor_der(
        &mut self,
        der: &[u8],
        label: &str,
        pin: Option<&str>,
        allow_sha1: bool,
    ) -> Result<AnchorInfo, AnchorError> {
        if self.anchors.len() >= MAX_CERTIFICATES {
            return Err(AnchorError::TooMany {
                limit: MAX_CERTIFICATES,
            });
        }
        let not_cert = |reason: String| AnchorError::NotACertificate {
            source_name: label.to_owned(),
            reason,
        };
        let cert = Certificate::from_der(der).map_err(|e| not_cert(e.to_string()))?;
        let sha256 = sha256_fingerprint(der);
        if let Some(pin) = pin {
            let expected = normalise_fingerprint(label, pin)?;
            if expected != sha256 {
                return Err(AnchorError::FingerprintMismatch {
                    source_name: label.to_owned(),
                    expected,
                    actual: sha256,
                });
            }
        }
        let sha1_signed = is_weak_signature_algorithm(&cert.signature_algorithm().oid);
        if sha1_signed && !allow_sha1 {
            return Err(AnchorError::Sha1NotAllowed {
                source_name: label.to_owned(),
                fingerprint: sha256,
            });
        }
        let pdv = PDVTrustAnchorChoice::try_from(der).map_err(|e| not_cert(e.to_string()))?;
        let info = AnchorInfo {
            label: label.to_owned(),
            sha256,
            subject_common_name: common_name(&cert),
            allow_sha1,
            sha1_signed,
        };
        if allow_sha1 {
            let name = info.subject_common_name.clone().unwrap_or_default();
            self.warnings.push(Message::new(
                format!(
                    "Chứng thư số gốc \"{name}\" ({label}) được phép dùng chữ ký SHA-1, thuật toán đã lỗi thời."
                ),
                format!(
                    "Trust anchor \"{name}\" ({label}) is allowed SHA-1 signatures, an obsolete algorithm."
                ),
            ));
        }
        // A second copy of the same certificate adds nothing.
        if let Some(existing) = self.anchors.iter().find(|a| a.info.sha256 == info.sha256) {
            return Ok(existing.info.clone());
        }
        let hex_skid = hex_skid_from_ta(&pdv);
        self.anchors.push(Arc::new(AnchorEntry {
            info: info.clone(),
            pdv,
            hex_skid,
        }));
        Ok(info)
    }

    /// Adds the anchor(s) in a DER or PEM file. A pinned file must hold exactly one certificate.
    pub fn add_anchor_file(&mut self, file: &AnchorFile) -> Result<Vec<AnchorInfo>, AnchorError> {
        let label = file.path.display().to_string();
        let bytes = read_limited(&file.path)?;
        let ders = parse_certificates(&bytes, &label)?;
        if file.sha256.is_some() && ders.len() != 1 {
            return Err(AnchorError::NotACertificate {
                source_name: label,
                reason: format!(
                    "a pinned file must hold exactly one certificate, it holds {}",
                    ders.len()
                ),
            });
        }
        ders.iter()
            .map(|der| self.add_anchor_der(der, &label, file.sha256.as_deref(), file.allow_sha1))
            .collect()
    }

    /// Adds every certificate file directly in a folder (sorted by name).
    pub fn add_anchor_folder(
        &mut self,
        folder: &AnchorFolder,
    ) -> Result<Vec<AnchorInfo>, AnchorError> {
        let files = certificate_files(&folder.path)?;
        for pinned in folder.pins.keys() {
            if !files.iter().any(|f| {
                f.file_name()
                    .is_some_and(|n| n.to_string_lossy() == *pinned)
            }) {
                return Err(AnchorError::PinnedFileMissing {
                    folder: folder.path.clone(),
                    file: pinned.clone(),
                });
            }
        }
        let sha1_allowed = folder
            .allow_sha1
            .iter()
            .map(|f| normalise_fingerprint(&folder.path.display().to_string(), f))
            .collect::<Result<Vec<_>, _>>()?;
        let mut loaded = Vec::new();
        for path in files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let pin = folder.pins.get(&name);
            if pin.is_none() && folder.require_pins {
                return Err(AnchorError::UnpinnedFile { path });
            }
            let label = path.display().to_string();
            let bytes = read_limited(&path)?;
            for der in parse_certificates(&bytes, &label)? {
                let allow = sha1_allowed.contains(&sha256_fingerprint(&der));
                loaded.push(self.add_anchor_der(&der, &label, pin.map(String::as_str), allow)?);
            }
        }
        Ok(loaded)
    }

    /// Adds a known intermediate CA certificate, used for path building when a signature does not
    /// carry its chain. Intermediates are not trusted by themselves.
    pub fn add_intermediate_der(&mut self, der: &[u8], label: &str) -> Result<(), AnchorError> {
        if self.intermediates.len() >= MAX_CERTIFICATES {
            return Err(AnchorError::TooMany {
                limit: MAX_CERTIFICATES,
            });
        }
        let not_cert = |reason: String| AnchorError::NotACertificate {
            source_name: label.to_owned(),
            reason,
        };
        let cert = Certificate::from_der(der).map_err(|e| not_cert(e.to_string()))?;
        let is_ca = cert
            .tbs_certificate()
            .get_extension::<BasicConstraints>()
            .ok()
            .flatten()
            .is_some_and(|(_, bc)| bc.ca);
        if !is_ca {
            return Err(AnchorError::NotACa {
                source_name: label.to_owned(),
            });
        }
        let fingerprint: [u8; 32] = Sha256::digest(der).into();
        if self
            .intermediates
            .iter()
            .any(|i| i.fingerprint == fingerprint)
        {
            return Ok(());
        }
        let pdv = PDVCertificate::try_from(der).map_err(|e| not_cert(e.to_string()))?;
        self.intermediates.push(Arc::new(IntermediateEntry {
            label: label.to_owned(),
            fingerprint,
            pdv,
        }));
        Ok(())
    }

    /// Adds every certificate file directly in a folder as an intermediate.
    pub fn add_intermediate_folder(&mut self, path: &Path) -> Result<usize, AnchorError> {
        let mut count = 0;
        for file in certificate_files(path)? {
            let label = file.display().to_string();
            let bytes = read_limited(&file)?;
            for der in parse_certificates(&bytes, &label)? {
                self.add_intermediate_der(&der, &label)?;
                count += 1;
            }
        }
        Ok(count)
    }

    /// The loaded anchors.
    pub fn anchors(&self) -> impl Iterator<Item = &AnchorInfo> {
        self.anchors.iter().map(|a| &a.info)
    }

    /// How many intermediates are known.
    pub fn intermediate_count(&self) -> usize {
        self.intermediates.len()
    }

    /// Labels of the known intermediates.
    pub fn intermediate_labels(&self) -> impl Iterator<Item = &str> {
        self.intermediates.iter().map(|i| i.label.as_str())
    }

    /// Warnings about the configuration (SHA-1 anchors).
    pub fn warnings(&self) -> &[Message] {
        &self.warnings
    }
}

/// Certificate files directly in `dir`, sorted by name.
fn certificate_files(dir: &Path) -> Result<Vec<PathBuf>, AnchorError> {
    let read_err = |e: std::io::Error| AnchorError::Read {
        path: dir.to_owned(),
        reason: e.to_string(),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        let is_cert = path.is_file()
            && path.extension().is_some_and(|e| {
                matches!(
                    e.to_string_lossy().to_ascii_lowercase().as_str(),
                    "der" | "cer" | "crt" | "pem"
                )
            });
        if is_cert {
            files.push(path);
        }
        if files.len() > MAX_CERTIFICATES {
            return Err(AnchorError::TooMany {
                limit: MAX_CERTIFICATES,
            });
        }
    }
    files.sort();
    Ok(files)
}
