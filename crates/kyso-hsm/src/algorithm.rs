//! Key, hash and padding choices, the AlgorithmIdentifiers they map to, and the software side of
//! signing: hashing, DigestInfo, public-key encoding and signature verification.

use crate::HsmError;
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::asn1::{Any, BitString, OctetString};
use der::{Decode, Encode, Sequence};
use sha2::Digest;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::fmt;
use std::str::FromStr;

/// The key types kyso generates and signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum KeyAlgorithm {
    #[serde(rename = "p256")]
    EcP256,
    #[serde(rename = "p384")]
    EcP384,
    #[serde(rename = "rsa2048")]
    Rsa2048,
    #[serde(rename = "rsa3072")]
    Rsa3072,
    #[serde(rename = "rsa4096")]
    Rsa4096,
}

impl KeyAlgorithm {
    pub const ALL: [KeyAlgorithm; 5] = [
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcP256 => "p256",
            KeyAlgorithm::EcP384 => "p384",
            KeyAlgorithm::Rsa2048 => "rsa2048",
            KeyAlgorithm::Rsa3072 => "rsa3072",
            KeyAlgorithm::Rsa4096 => "rsa4096",
        }
    }

    pub fn is_rsa(self) -> bool {
        self.rsa_bits().is_some()
    }

    pub fn rsa_bits(self) -> Option<u64> {
        match self {
            KeyAlgorithm::Rsa2048 => Some(2048),
            KeyAlgorithm::Rsa3072 => Some(3072),
            KeyAlgorithm::Rsa4096 => Some(4096),
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => None,
        }
    }

    pub(crate) fn from_rsa_bits(bits: usize) -> Option<KeyAlgorithm> {
        match bits {
            2048 => Some(KeyAlgorithm::Rsa2048),
            3072 => Some(KeyAlgorithm::Rsa3072),
            4096 => Some(KeyAlgorithm::Rsa4096),
            _ => None,
        }
    }

    /// The named-curve OID of an EC key.
    pub fn curve_oid(self) -> Option<ObjectIdentifier> {
        match self {
            KeyAlgorithm::EcP256 => Some(rfc5912::SECP_256_R_1),
            KeyAlgorithm::EcP384 => Some(rfc5912::SECP_384_R_1),
            _ => None,
        }
    }

    pub(crate) fn from_curve_oid(oid: ObjectIdentifier) -> Option<KeyAlgorithm> {
        if oid == rfc5912::SECP_256_R_1 {
            Some(KeyAlgorithm::EcP256)
        } else if oid == rfc5912::SECP_384_R_1 {
            Some(KeyAlgorithm::EcP384)
        } else {
            None
        }
    }

    /// Bytes of one coordinate (and of r and s) for EC keys.
    pub(crate) fn ec_field_bytes(self) -> Option<usize> {
        match self {
            KeyAlgorithm::EcP256 => Some(32),
            KeyAlgorithm::EcP384 => Some(48),
            _ => None,
        }
    }

    /// SHA-384 for P-384 (matching strength), SHA-256 otherwise.
    pub fn default_hash(self) -> HashAlgorithm {
        match self {
            KeyAlgorithm::EcP384 => HashAlgorithm::Sha384,
            _ => HashAlgorithm::Sha256,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error of parsing a [`KeyAlgorithm`], [`HashAlgorithm`] or [`RsaPadding`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {given:?} (expected one of: {expected})")]
pub struct ParseAlgorithmError {
    pub kind: &'static str,
    pub given: String,
    pub expected: &'static str,
}

impl ParseAlgorithmError {
    pub fn code(&self) -> &'static str {
        "hsm_unknown_algorithm"
    }
}

impl FromStr for KeyAlgorithm {
    type Err = ParseAlgorithmError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseAlgorithmError {
                kind: "key algorithm",
                given: s.to_owned(),
                expected: "p256, p384, rsa2048, rsa3072, rsa4096",
            })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    pub fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlgorithm::Sha256 => rfc5912::ID_SHA_256,
            HashAlgorithm::Sha384 => rfc5912::ID_SHA_384,
            HashAlgorithm::Sha512 => rfc5912::ID_SHA_512,
        }
    }

    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha256 => sha2::Sha256::digest(message).to_vec(),
            HashAlgorithm::Sha384 => sha2::Sha384::digest(message).to_vec(),
            HashAlgorithm::Sha512 => sha2::Sha512::digest(message).to_vec(),
        }
    }

    /// The AlgorithmIdentifier with NULL parameters, as DigestInfo and PSS parameters carry it.
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: Some(Any::null()),
        }
    }

    pub(crate) fn check_digest(self, digest: &[u8]) -> Result<(), HsmError> {
        if digest.len() == self.output_len() {
            Ok(())
        } else {
            Err(HsmError::BadDigest {
                hash: self.name(),
                expected: self.output_len(),
                actual: digest.len(),
            })
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgorithm {
    type Err = ParseAlgorithmError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ]
        .into_iter()
        .find(|h| h.name().eq_ignore_ascii_case(s))
        .ok_or_else(|| ParseAlgorithmError {
            kind: "hash algorithm",
            given: s.to_owned(),
            expected: "sha256, sha384, sha512",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RsaPadding {
    Pkcs1v15,
    Pss,
}

impl RsaPadding {
    pub fn name(self) -> &'static str {
        match self {
            RsaPadding::Pkcs1v15 => "pkcs1v15",
            RsaPadding::Pss => "pss",
        }
    }
}

impl fmt::Display for RsaPadding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RsaPadding {
    type Err = ParseAlgorithmError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [RsaPadding::Pkcs1v15, RsaPadding::Pss]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseAlgorithmError {
                kind: "RSA padding",
                given: s.to_owned(),
                expected: "pkcs1v15, pss",
            })
    }
}

/// RFC 8017 DigestInfo, the input of a PKCS#1 v1.5 signature made with the raw `CKM_RSA_PKCS`.
#[derive(Sequence)]
struct DigestInfo {
    digest_algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

pub(crate) fn digest_info(hash: HashAlgorithm, digest: &[u8]) -> Result<Vec<u8>, HsmError> {
    hash.check_digest(digest)?;
    let info = DigestInfo {
        digest_algorithm: hash.algorithm_identifier(),
        digest: OctetString::new(digest).map_err(HsmError::internal)?,
    };
    info.to_der().map_err(HsmError::internal)
}

/// The signatureAlgorithm for a key, hash and padding (RFC 5758, RFC 4055).
pub fn signature_algorithm(
    algorithm: KeyAlgorithm,
    hash: HashAlgorithm,
    padding: RsaPadding,
) -> AlgorithmIdentifierOwned {
    let oid = match (algorithm.is_rsa(), padding, hash) {
        (false, _, HashAlgorithm::Sha256) => rfc5912::ECDSA_WITH_SHA_256,
        (false, _, HashAlgorithm::Sha384) => rfc5912::ECDSA_WITH_SHA_384,
        (false, _, HashAlgorithm::Sha512) => rfc5912::ECDSA_WITH_SHA_512,
        (true, RsaPadding::Pss, _) => {
            return AlgorithmIdentifierOwned {
                oid: rfc5912::ID_RSASSA_PSS,
                parameters: Some(pss_parameters(hash)),
            };
        }
        (true, RsaPadding::Pkcs1v15, HashAlgorithm::Sha256) => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
        (true, RsaPadding::Pkcs1v15, HashAlgorithm::Sha384) => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
        (true, RsaPadding::Pkcs1v15, HashAlgorithm::Sha512) => rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
    };
    let parameters = if algorithm.is_rsa() {
        Some(Any::null())
    } else {
        // RFC 5758 3.2: the parameters of ecdsa-with-SHA* MUST be absent.
        None
    };
    AlgorithmIdentifierOwned { oid, parameters }
}

/// RSASSA-PSS-params: the hash, MGF1 with the same hash, salt as long as the hash.
fn pss_parameters(hash: HashAlgorithm) -> Any {
    // Built only from our three fixed hash choices: no input reaches the encoder.
    let params = match hash {
        HashAlgorithm::Sha256 => pkcs1::RsaPssParamsRef::new::<sha2::Sha256>(32),
        HashAlgorithm::Sha384 => pkcs1::RsaPssParamsRef::new::<sha2::Sha384>(48),
        HashAlgorithm::Sha512 => pkcs1::RsaPssParamsRef::new::<sha2::Sha512>(64),
    };
    Any::encode_from(&params).expect("RSASSA-PSS parameters of a fixed hash always encode")
}

/// SubjectPublicKeyInfo of an EC key from the curve and the uncompressed point.
pub(crate) fn ec_spki(
    algorithm: KeyAlgorithm,
    point: &[u8],
) -> Result<SubjectPublicKeyInfoOwned, HsmError> {
    let curve = algorithm
        .curve_oid()
        .ok_or_else(|| HsmError::internal("ec_spki called for an RSA key"))?;
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: rfc5912::ID_EC_PUBLIC_KEY,
            parameters: Some(Any::encode_from(&curve).map_err(HsmError::internal)?),
        },
        subject_public_key: BitString::from_bytes(point).map_err(HsmError::internal)?,
    })
}

/// SubjectPublicKeyInfo of an RSA key from modulus and public exponent (big-endian bytes).
pub(crate) fn rsa_spki(
    modulus: &[u8],
    exponent: &[u8],
) -> Result<SubjectPublicKeyInfoOwned, HsmError> {
    let key = pkcs1::RsaPublicKeyRef {
        modulus: der::asn1::UintRef::new(modulus).map_err(HsmError::internal)?,
        public_exponent: der::asn1::UintRef::new(exponent).map_err(HsmError::internal)?,
    };
    let der = key.to_der().map_err(HsmError::internal)?;
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: rfc5912::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        subject_public_key: BitString::from_bytes(&der).map_err(HsmError::internal)?,
    })
}

/// The point inside CKA_EC_POINT: PKCS#11 says a DER OCTET STRING, some tokens give the raw point.
pub(crate) fn ec_point_from_attribute(
    algorithm: KeyAlgorithm,
    value: &[u8],
) -> Result<Vec<u8>, HsmError> {
    let field = algorithm
        .ec_field_bytes()
        .ok_or_else(|| HsmError::internal("EC point for an RSA key"))?;
    let raw_len = 2 * field + 1;
    let point = if value.len() == raw_len {
        value.to_vec()
    } else {
        OctetString::from_der(value)
            .map_err(|e| HsmError::internal(format!("CKA_EC_POINT is not an OCTET STRING: {e}")))?
            .into_bytes()
            .into_vec()
    };
    if point.len() != raw_len || point.first() != Some(&0x04) {
        return Err(HsmError::internal(format!(
            "CKA_EC_POINT is not an uncompressed {algorithm} point ({} bytes)",
            point.len()
        )));
    }
    Ok(point)
}

/// The algorithm of a SubjectPublicKeyInfo, if kyso supports it.
pub fn key_algorithm_of(spki: &SubjectPublicKeyInfoOwned) -> Option<KeyAlgorithm> {
    if spki.algorithm.oid == rfc5912::ID_EC_PUBLIC_KEY {
        let curve: ObjectIdentifier = spki.algorithm.parameters.as_ref()?.decode_as().ok()?;
        KeyAlgorithm::from_curve_oid(curve)
    } else if spki.algorithm.oid == rfc5912::RSA_ENCRYPTION {
        let key = pkcs1::RsaPublicKeyRef::from_der(spki.subject_public_key.as_bytes()?).ok()?;
        let modulus = key.modulus.as_bytes();
        let lead = modulus.first().map_or(0, |b| b.leading_zeros() as usize);
        KeyAlgorithm::from_rsa_bits(modulus.len() * 8 - lead)
    } else {
        None
    }
}

/// Converts a raw PKCS#11 ECDSA signature (r || s) to a DER ECDSA-Sig-Value (RFC 5480 2.2.3,
/// RFC 3279 2.2.3), refusing halves of the wrong length or outside [1, n - 1].
///
/// Why not `p256::ecdsa::Signature::from_slice(..).to_der()`: that turns r and s into field
/// scalars (Montgomery form and back) only to write them out again, about 1 % of a P-256 signing
/// request's CPU in `perf`; the range check needs only a comparison of big-endian bytes, and the
/// INTEGER encoding (leading zeros dropped, a 0x00 before a high bit) is der's `UintRef`.
pub(crate) fn ecdsa_raw_to_der(algorithm: KeyAlgorithm, raw: &[u8]) -> Result<Vec<u8>, HsmError> {
    use p256::elliptic_curve::Curve;
    use p256::elliptic_curve::bigint::ArrayEncoding;

    #[derive(Sequence)]
    struct EcdsaSigValue<'a> {
        r: der::asn1::UintRef<'a>,
        s: der::asn1::UintRef<'a>,
    }

    let order = match algorithm {
        KeyAlgorithm::EcP256 => p256::NistP256::ORDER.get().to_be_byte_array().to_vec(),
        KeyAlgorithm::EcP384 => p384::NistP384::ORDER.get().to_be_byte_array().to_vec(),
        _ => return Err(HsmError::internal("ECDSA conversion for an RSA key")),
    };
    let bad =
        |what: &str| HsmError::internal(format!("token returned a bad ECDSA signature: {what}"));
    if raw.len() != 2 * order.len() {
        return Err(bad(&format!(
            "{} bytes, expected {}",
            raw.len(),
            2 * order.len()
        )));
    }
    let (r, s) = raw.split_at(order.len());
    for half in [r, s] {
        // Equal lengths: byte order is numeric order.
        if half.iter().all(|b| *b == 0) || half >= order.as_slice() {
            return Err(bad("r or s outside [1, n - 1]"));
        }
    }
    let value = EcdsaSigValue {
        r: der::asn1::UintRef::new(r).map_err(|e| bad(&e.to_string()))?,
        s: der::asn1::UintRef::new(s).map_err(|e| bad(&e.to_string()))?,
    };
    value.to_der().map_err(|e| bad(&e.to_string()))
}

/// Checks in software a signature made by a key: `digest` is the hash (of `hash`) of the signed
/// message. Used by the doctor's test signature and by the tests.
pub fn verify_digest_signature(
    spki: &SubjectPublicKeyInfoOwned,
    hash: HashAlgorithm,
    padding: RsaPadding,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    use signature::hazmat::PrehashVerifier;
    hash.check_digest(digest)
        .map_err(|e| VerifyError(e.to_string()))?;
    let spki_der = spki.to_der().map_err(|e| VerifyError(e.to_string()))?;
    let algorithm = key_algorithm_of(spki)
        .ok_or_else(|| VerifyError("unsupported public key algorithm".to_owned()))?;
    let fail = |e: signature::Error| VerifyError(e.to_string());
    match algorithm {
        KeyAlgorithm::EcP256 => {
            use spki::DecodePublicKey;
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki_der)
                .map_err(|e| VerifyError(e.to_string()))?;
            let sig = p256::ecdsa::DerSignature::from_bytes(signature).map_err(fail)?;
            key.verify_prehash(digest, &sig).map_err(fail)
        }
        KeyAlgorithm::EcP384 => {
            use spki::DecodePublicKey;
            let key = p384::ecdsa::VerifyingKey::from_public_key_der(&spki_der)
                .map_err(|e| VerifyError(e.to_string()))?;
            let sig = p384::ecdsa::DerSignature::from_bytes(signature).map_err(fail)?;
            key.verify_prehash(digest, &sig).map_err(fail)
        }
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            use rsa::pkcs8::DecodePublicKey;
            let key = rsa::RsaPublicKey::from_public_key_der(&spki_der)
                .map_err(|e| VerifyError(e.to_string()))?;
            let result = match padding {
                RsaPadding::Pkcs1v15 => {
                    let scheme = match hash {
                        HashAlgorithm::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                        HashAlgorithm::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                        HashAlgorithm::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                    };
                    key.verify(scheme, digest, signature)
                }
                RsaPadding::Pss => match hash {
                    HashAlgorithm::Sha256 => {
                        key.verify(rsa::pss::Pss::<sha2::Sha256>::new(), digest, signature)
                    }
                    HashAlgorithm::Sha384 => {
                        key.verify(rsa::pss::Pss::<sha2::Sha384>::new(), digest, signature)
                    }
                    HashAlgorithm::Sha512 => {
                        key.verify(rsa::pss::Pss::<sha2::Sha512>::new(), digest, signature)
                    }
                },
            };
            result.map_err(|e| VerifyError(e.to_string()))
        }
    }
}

/// A software signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify: {0}")]
pub struct VerifyError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ecdsa_signatures_convert_as_the_curve_crates_do() {
        use p256::elliptic_curve::Curve;
        use p256::elliptic_curve::bigint::ArrayEncoding;
        use sha2::Digest;
        let order = p256::NistP256::ORDER.get().to_be_byte_array().to_vec();
        let mut below_order = order.clone();
        below_order[31] -= 1;
        let mut halves: Vec<Vec<u8>> = vec![
            [vec![0; 31], vec![1]].concat(),       // shortest INTEGER
            [vec![0; 2], vec![0x80; 30]].concat(), // leading zeros, then a high bit
            vec![0x7f; 32],                        // no 0x00 prefix
            below_order,                           // n - 1
        ];
        // And pseudo-random halves from a hash chain.
        let mut seed = sha2::Sha256::digest(b"kyso ecdsa halves").to_vec();
        for _ in 0..64 {
            seed = sha2::Sha256::digest(&seed).to_vec();
            if seed.as_slice() < order.as_slice() {
                halves.push(seed.clone());
            }
        }
        for r in &halves {
            for s in &halves {
                let raw = [r.as_slice(), s.as_slice()].concat();
                let ours = ecdsa_raw_to_der(KeyAlgorithm::EcP256, &raw).expect("converts");
                let theirs = p256::ecdsa::Signature::from_slice(&raw).expect("p256 parses");
                assert_eq!(ours, theirs.to_der().to_bytes().to_vec());
            }
        }
        let p384_raw = [vec![0u8; 47], vec![5], vec![0xc0; 48]].concat();
        assert_eq!(
            ecdsa_raw_to_der(KeyAlgorithm::EcP384, &p384_raw).expect("p384"),
            p384::ecdsa::Signature::from_slice(&p384_raw)
                .expect("p384 parses")
                .to_der()
                .to_bytes()
                .to_vec()
        );
        // Out of range or the wrong length: refused, as p256 refuses them.
        let zero = vec![0u8; 32];
        for raw in [
            [zero.as_slice(), &halves[0]].concat(),
            [&halves[0], order.as_slice()].concat(),
            [order.as_slice(), &halves[0]].concat(),
            vec![0xff; 64],
            vec![1; 63],
            vec![1; 96],
        ] {
            assert!(p256::ecdsa::Signature::from_slice(&raw).is_err());
            let err = ecdsa_raw_to_der(KeyAlgorithm::EcP256, &raw).expect_err("refused");
            assert!(err.to_string().contains("bad ECDSA signature"), "{err}");
        }
        assert!(ecdsa_raw_to_der(KeyAlgorithm::Rsa2048, &[1; 64]).is_err());
    }

    #[test]
    fn algorithm_names_round_trip_through_display_fromstr_and_serde() {
        for a in KeyAlgorithm::ALL {
            assert_eq!(a.to_string().parse::<KeyAlgorithm>(), Ok(a));
            let json = serde_json::to_string(&a).expect("serialize");
            assert_eq!(json, format!("\"{a}\""));
        }
        assert_eq!(
            serde_json::to_string(&HashAlgorithm::Sha384).expect("json"),
            "\"sha384\""
        );
        assert_eq!(
            serde_json::to_string(&RsaPadding::Pkcs1v15).expect("json"),
            "\"pkcs1v15\""
        );
        assert_eq!("PSS".parse::<RsaPadding>(), Ok(RsaPadding::Pss));
        let err = "ed25519".parse::<KeyAlgorithm>().expect_err("unknown");
        assert_eq!(err.code(), "hsm_unknown_algorithm");
    }

    #[test]
    fn digest_info_matches_the_rfc8017_prefix() {
        let digest = [0u8; 32];
        let info = digest_info(HashAlgorithm::Sha256, &digest).expect("digest info");
        let prefix = hex::decode("3031300d060960864801650304020105000420").expect("hex");
        assert_eq!(&info[..prefix.len()], &prefix[..]);
        assert_eq!(info.len(), prefix.len() + 32);
        let err = digest_info(HashAlgorithm::Sha384, &digest).expect_err("wrong length");
        assert_eq!(err.code(), "hsm_bad_digest");
    }

    #[test]
    fn signature_algorithm_parameters_follow_rfc5758_and_rfc4055() {
        let ec = signature_algorithm(KeyAlgorithm::EcP384, HashAlgorithm::Sha384, RsaPadding::Pss);
        assert_eq!(ec.oid, rfc5912::ECDSA_WITH_SHA_384);
        assert!(ec.parameters.is_none());
        let rsa = signature_algorithm(
            KeyAlgorithm::Rsa2048,
            HashAlgorithm::Sha256,
            RsaPadding::Pkcs1v15,
        );
        assert_eq!(rsa.oid, rfc5912::SHA_256_WITH_RSA_ENCRYPTION);
        assert_eq!(rsa.parameters, Some(Any::null()));
        let pss = signature_algorithm(
            KeyAlgorithm::Rsa3072,
            HashAlgorithm::Sha384,
            RsaPadding::Pss,
        );
        assert_eq!(pss.oid, rfc5912::ID_RSASSA_PSS);
        let pss_der = pss
            .parameters
            .clone()
            .expect("pss params")
            .to_der()
            .expect("der");
        let params = pkcs1::RsaPssParamsOwned::from_der(&pss_der).expect("decode");
        assert_eq!(params.hash.oid, rfc5912::ID_SHA_384);
        assert_eq!(params.mask_gen.oid, rfc5912::ID_MGF_1);
        assert_eq!(
            params.mask_gen.parameters.as_ref().map(|p| p.oid),
            Some(rfc5912::ID_SHA_384)
        );
        assert_eq!(params.salt_len, 48);
    }

    #[test]
    fn ec_point_accepts_der_and_raw_and_rejects_garbage() {
        let mut raw = vec![0x04];
        raw.extend_from_slice(&[7u8; 64]);
        let wrapped = OctetString::new(raw.clone())
            .expect("octets")
            .to_der()
            .expect("der");
        assert_eq!(
            ec_point_from_attribute(KeyAlgorithm::EcP256, &wrapped).expect("der"),
            raw
        );
        assert_eq!(
            ec_point_from_attribute(KeyAlgorithm::EcP256, &raw).expect("raw"),
            raw
        );
        assert!(ec_point_from_attribute(KeyAlgorithm::EcP384, &wrapped).is_err());
        assert!(ec_point_from_attribute(KeyAlgorithm::EcP256, &[1, 2, 3]).is_err());
    }
}
