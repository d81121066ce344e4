//! Public-key policy (RSA >= 2048, P-256, P-384) and signature verification for the algorithms
//! kyso accepts: RSA PKCS#1 v1.5 and PSS with SHA-256/384/512, ECDSA P-256/P-384 with SHA-256/384/512.
//!
//! x509-cert verifies nothing, so CSR proof of possession (and the self-checks in tests) go
//! through [`verify_signature`].

use der::asn1::{ObjectIdentifier, UintRef};
use der::{Decode, Encode};
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use sha2::{Digest, Sha256, Sha384, Sha512};
use signature::Verifier;
use signature::hazmat::PrehashVerifier;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::oids;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: u32 = 2048;
/// The largest RSA modulus accepted, in bits (the `rsa` crate's own limit).
pub const MAX_RSA_BITS: u32 = 8192;

/// A public key kyso accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PublicKeyKind {
    Rsa { bits: u32 },
    P256,
    P384,
}

impl std::fmt::Display for PublicKeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublicKeyKind::Rsa { bits } => write!(f, "rsa{bits}"),
            PublicKeyKind::P256 => f.write_str("p256"),
            PublicKeyKind::P384 => f.write_str("p384"),
        }
    }
}

/// A hash used inside a signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureHash {
    Sha256,
    Sha384,
    Sha512,
}

/// A signature algorithm kyso verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureScheme {
    RsaPkcs1v15(SignatureHash),
    RsaPss(SignatureHash),
    Ecdsa(SignatureHash),
}

/// Why a key or a signature was refused. Stable codes via [`KeyError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("public key algorithm {oid} is not supported (RSA, EC P-256 and P-384 are)")]
    UnsupportedKeyAlgorithm { oid: String },
    #[error("elliptic curve {curve} is not supported (P-256 and P-384 are)")]
    UnsupportedCurve { curve: String },
    #[error("RSA key of {bits} bits is too weak: at least {min} bits are required")]
    WeakRsaKey { bits: u32, min: u32 },
    #[error("RSA key of {bits} bits is larger than the {max} bits accepted")]
    RsaKeyTooLarge { bits: u32, max: u32 },
    #[error("public key is malformed: {reason}")]
    MalformedPublicKey { reason: String },
    #[error("signature algorithm uses SHA-1 ({oid}), which is not accepted for new signatures")]
    Sha1Signature { oid: String },
    #[error("signature algorithm {oid} is not supported")]
    UnsupportedSignatureAlgorithm { oid: String },
    #[error("RSASSA-PSS parameters are not acceptable: {reason}")]
    BadPssParameters { reason: String },
    #[error("signature algorithm {scheme:?} does not fit a {key} key")]
    AlgorithmKeyMismatch {
        scheme: SignatureScheme,
        key: PublicKeyKind,
    },
    #[error("signature value is malformed: {reason}")]
    MalformedSignature { reason: String },
    #[error("signature does not verify")]
    BadSignature,
}

impl KeyError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::UnsupportedKeyAlgorithm { .. } => "key_unsupported_algorithm",
            KeyError::UnsupportedCurve { .. } => "key_unsupported_curve",
            KeyError::WeakRsaKey { .. } => "key_too_weak",
            KeyError::RsaKeyTooLarge { .. } => "key_too_large",
            KeyError::MalformedPublicKey { .. } => "key_malformed",
            KeyError::Sha1Signature { .. } => "signature_sha1_refused",
            KeyError::UnsupportedSignatureAlgorithm { .. } => "signature_unsupported_algorithm",
            KeyError::BadPssParameters { .. } => "signature_bad_pss_parameters",
            KeyError::AlgorithmKeyMismatch { .. } => "signature_algorithm_key_mismatch",
            KeyError::MalformedSignature { .. } => "signature_malformed",
            KeyError::BadSignature => "signature_invalid",
        }
    }
}

fn malformed_key(e: impl std::fmt::Display) -> KeyError {
    KeyError::MalformedPublicKey {
        reason: e.to_string(),
    }
}

/// Checks a public key against kyso's policy and says what it is.
pub fn check_public_key(spki: &SubjectPublicKeyInfoOwned) -> Result<PublicKeyKind, KeyError> {
    let oid = spki.algorithm.oid;
    if oid == oids::RSA_ENCRYPTION {
        let bits = rsa_modulus_bits(spki)?;
        if bits < MIN_RSA_BITS {
            return Err(KeyError::WeakRsaKey {
                bits,
                min: MIN_RSA_BITS,
            });
        }
        if bits > MAX_RSA_BITS {
            return Err(KeyError::RsaKeyTooLarge {
                bits,
                max: MAX_RSA_BITS,
            });
        }
        // Full structural check (odd modulus, sane exponent).
        rsa_public_key(spki)?;
        Ok(PublicKeyKind::Rsa { bits })
    } else if oid == oids::EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .ok_or_else(|| malformed_key("EC key without curve parameters"))?
            .decode_as::<ObjectIdentifier>()
            .map_err(|_| KeyError::UnsupportedCurve {
                curve: "explicit or unnamed".into(),
            })?;
        let point = spki.subject_public_key.raw_bytes();
        if curve == oids::SECP256R1 {
            p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(malformed_key)?;
            Ok(PublicKeyKind::P256)
        } else if curve == oids::SECP384R1 {
            p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(malformed_key)?;
            Ok(PublicKeyKind::P384)
        } else {
            Err(KeyError::UnsupportedCurve {
                curve: curve.to_string(),
            })
        }
    } else {
        Err(KeyError::UnsupportedKeyAlgorithm {
            oid: oid.to_string(),
        })
    }
}

fn rsa_modulus_bits(spki: &SubjectPublicKeyInfoOwned) -> Result<u32, KeyError> {
    let key = pkcs1::RsaPublicKey::<UintRef<'_>>::from_der(spki.subject_public_key.raw_bytes())
        .map_err(malformed_key)?;
    let bytes = key.modulus.as_bytes();
    let Some(first) = bytes.iter().position(|&b| b != 0) else {
        return Err(malformed_key("zero modulus"));
    };
    let significant = u32::try_from(bytes.len() - first).map_err(malformed_key)?;
    Ok(significant * 8 - bytes[first].leading_zeros())
}

fn rsa_public_key(spki: &SubjectPublicKeyInfoOwned) -> Result<rsa::RsaPublicKey, KeyError> {
    let der = spki.to_der().map_err(malformed_key)?;
    let spki_ref = spki::SubjectPublicKeyInfoRef::from_der(&der).map_err(malformed_key)?;
    rsa::RsaPublicKey::try_from(spki_ref).map_err(malformed_key)
}

fn hash_from_oid(oid: ObjectIdentifier) -> Result<SignatureHash, KeyError> {
    match oid {
        o if o == oids::SHA256 => Ok(SignatureHash::Sha256),
        o if o == oids::SHA384 => Ok(SignatureHash::Sha384),
        o if o == oids::SHA512 => Ok(SignatureHash::Sha512),
        o if o == oids::SHA1 => Err(KeyError::Sha1Signature { oid: o.to_string() }),
        o => Err(KeyError::UnsupportedSignatureAlgorithm { oid: o.to_string() }),
    }
}

impl SignatureHash {
    /// The digest of `message`.
    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            SignatureHash::Sha256 => Sha256::digest(message).to_vec(),
            SignatureHash::Sha384 => Sha384::digest(message).to_vec(),
            SignatureHash::Sha512 => Sha512::digest(message).to_vec(),
        }
    }
}

/// Reads a signature AlgorithmIdentifier; refuses SHA-1, MD5 and anything unknown.
pub fn signature_scheme(alg: &AlgorithmIdentifierOwned) -> Result<SignatureScheme, KeyError> {
    use SignatureHash::*;
    let oid = alg.oid;
    let scheme = match oid {
        o if o == oids::SHA256_WITH_RSA => SignatureScheme::RsaPkcs1v15(Sha256),
        o if o == oids::SHA384_WITH_RSA => SignatureScheme::RsaPkcs1v15(Sha384),
        o if o == oids::SHA512_WITH_RSA => SignatureScheme::RsaPkcs1v15(Sha512),
        o if o == oids::ECDSA_WITH_SHA256 => SignatureScheme::Ecdsa(Sha256),
        o if o == oids::ECDSA_WITH_SHA384 => SignatureScheme::Ecdsa(Sha384),
        o if o == oids::ECDSA_WITH_SHA512 => SignatureScheme::Ecdsa(Sha512),
        o if o == oids::RSASSA_PSS => {
            return pss_parameters(alg).map(|(hash, _)| SignatureScheme::RsaPss(hash));
        }
        o if o == oids::SHA1_WITH_RSA || o == oids::ECDSA_WITH_SHA1 => {
            return Err(KeyError::Sha1Signature { oid: o.to_string() });
        }
        o => return Err(KeyError::UnsupportedSignatureAlgorithm { oid: o.to_string() }),
    };
    Ok(scheme)
}

/// RSASSA-PSS parameters: the hash must be SHA-2 and MGF1 must use the same hash, trailer field 1.
/// Any salt length is verified as declared (signers use the hash length or the maximum).
fn pss_parameters(alg: &AlgorithmIdentifierOwned) -> Result<(SignatureHash, usize), KeyError> {
    let bad = |reason: &str| KeyError::BadPssParameters {
        reason: reason.into(),
    };
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| bad("parameters absent (SHA-1 defaults)"))?;
    let der = params.to_der().map_err(|e| bad(&e.to_string()))?;
    let params =
        pkcs1::RsaPssParams::<der::Any>::from_der(&der).map_err(|e| bad(&e.to_string()))?;
    let hash = hash_from_oid(params.hash.oid)?;
    if params.mask_gen.oid != oids::MGF1 {
        return Err(bad("mask generation function is not MGF1"));
    }
    let mgf_hash = params
        .mask_gen
        .parameters
        .as_ref()
        .ok_or_else(|| bad("MGF1 hash absent"))?;
    if hash_from_oid(mgf_hash.oid)? != hash {
        return Err(bad("MGF1 hash differs from the message hash"));
    }
    Ok((hash, usize::from(params.salt_len)))
}

/// Verifies `signature` over `message` with the key in `spki`, using algorithm `alg`.
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<SignatureScheme, KeyError> {
    let key = check_public_key(spki)?;
    let scheme = signature_scheme(alg)?;
    let mismatch = || KeyError::AlgorithmKeyMismatch { scheme, key };
    let malformed = |e: signature::Error| KeyError::MalformedSignature {
        reason: e.to_string(),
    };
    match scheme {
        SignatureScheme::RsaPkcs1v15(hash) | SignatureScheme::RsaPss(hash) => {
            if !matches!(key, PublicKeyKind::Rsa { .. }) {
                return Err(mismatch());
            }
            let public = rsa_public_key(spki)?;
            if signature.len() != public.size() {
                return Err(KeyError::MalformedSignature {
                    reason: format!(
                        "{} bytes for a {}-byte modulus",
                        signature.len(),
                        public.size()
                    ),
                });
            }
            let ok = if let SignatureScheme::RsaPss(_) = scheme {
                let sig = rsa::pss::Signature::try_from(signature).map_err(malformed)?;
                let (_, salt) = pss_parameters(alg)?;
                match hash {
                    SignatureHash::Sha256 => {
                        rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(public, salt)
                            .verify(message, &sig)
                    }
                    SignatureHash::Sha384 => {
                        rsa::pss::VerifyingKey::<Sha384>::new_with_salt_len(public, salt)
                            .verify(message, &sig)
                    }
                    SignatureHash::Sha512 => {
                        rsa::pss::VerifyingKey::<Sha512>::new_with_salt_len(public, salt)
                            .verify(message, &sig)
                    }
                }
            } else {
                let sig = rsa::pkcs1v15::Signature::try_from(signature).map_err(malformed)?;
                match hash {
                    SignatureHash::Sha256 => {
                        rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public).verify(message, &sig)
                    }
                    SignatureHash::Sha384 => {
                        rsa::pkcs1v15::VerifyingKey::<Sha384>::new(public).verify(message, &sig)
                    }
                    SignatureHash::Sha512 => {
                        rsa::pkcs1v15::VerifyingKey::<Sha512>::new(public).verify(message, &sig)
                    }
                }
            };
            ok.map_err(|_| KeyError::BadSignature)?;
        }
        SignatureScheme::Ecdsa(hash) => {
            let digest = hash.digest(message);
            let point = spki.subject_public_key.raw_bytes();
            match key {
                PublicKeyKind::P256 => {
                    let vk =
                        p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(malformed_key)?;
                    let sig = p256::ecdsa::Signature::from_der(signature).map_err(malformed)?;
                    vk.verify_prehash(&digest, &sig)
                        .map_err(|_| KeyError::BadSignature)?;
                }
                PublicKeyKind::P384 => {
                    let vk =
                        p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(malformed_key)?;
                    let sig = p384::ecdsa::Signature::from_der(signature).map_err(malformed)?;
                    vk.verify_prehash(&digest, &sig)
                        .map_err(|_| KeyError::BadSignature)?;
                }
                PublicKeyKind::Rsa { .. } => return Err(mismatch()),
            }
        }
    }
    Ok(scheme)
}
