//! Digest and signature algorithms a CMS verifier meets: RSA PKCS#1 v1.5 (signatureAlgorithm
//! `rsaEncryption` or `shaNWithRSAEncryption`), RSASSA-PSS, ECDSA P-256/P-384. SHA-1 is
//! recognised (allowed with a warning by the caller); MD2/MD4/MD5 are recognised and refused.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5911, rfc5912};
use der::{Decode, Encode};
use kyso_ca::P256VerifyingTable;
use serde::Serialize;
use sha2::Digest as _;
use signature::hazmat::PrehashVerifier;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// A digest algorithm identified in a CMS structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestAlgorithm {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

const MD2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.2");
const MD4: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.4");
const MD5: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.5");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");

/// Why a digest algorithm was not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestRefusal {
    /// Known and broken (MD2, MD4, MD5).
    Weak(&'static str),
    Unknown(ObjectIdentifier),
}

impl DigestAlgorithm {
    pub fn from_oid(oid: &ObjectIdentifier) -> Result<DigestAlgorithm, DigestRefusal> {
        Ok(match *oid {
            rfc5912::ID_SHA_1 => DigestAlgorithm::Sha1,
            rfc5912::ID_SHA_224 => DigestAlgorithm::Sha224,
            rfc5912::ID_SHA_256 => DigestAlgorithm::Sha256,
            rfc5912::ID_SHA_384 => DigestAlgorithm::Sha384,
            rfc5912::ID_SHA_512 => DigestAlgorithm::Sha512,
            MD2 => return Err(DigestRefusal::Weak("md2")),
            MD4 => return Err(DigestRefusal::Weak("md4")),
            MD5 => return Err(DigestRefusal::Weak("md5")),
            other => return Err(DigestRefusal::Unknown(other)),
        })
    }

    pub fn from_hsm(hash: kyso_hsm::HashAlgorithm) -> DigestAlgorithm {
        match hash {
            kyso_hsm::HashAlgorithm::Sha256 => DigestAlgorithm::Sha256,
            kyso_hsm::HashAlgorithm::Sha384 => DigestAlgorithm::Sha384,
            kyso_hsm::HashAlgorithm::Sha512 => DigestAlgorithm::Sha512,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha1 => "sha1",
            DigestAlgorithm::Sha224 => "sha224",
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    pub fn output_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha1 => 20,
            DigestAlgorithm::Sha224 => 28,
            DigestAlgorithm::Sha256 => 32,
            DigestAlgorithm::Sha384 => 48,
            DigestAlgorithm::Sha512 => 64,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            DigestAlgorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
            DigestAlgorithm::Sha224 => sha2::Sha224::digest(data).to_vec(),
            DigestAlgorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
            DigestAlgorithm::Sha384 => sha2::Sha384::digest(data).to_vec(),
            DigestAlgorithm::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// What a signature was checked as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureScheme {
    RsaPkcs1v15,
    RsaPss,
    EcdsaP256,
    EcdsaP384,
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureFailure {
    /// The algorithm (or key type) is not one we verify.
    Unsupported(String),
    /// The key or the parameters could not be decoded.
    Malformed(String),
    /// The signature is wrong.
    Invalid,
}

/// Precomputed tables kept at most for this many P-256 keys (about 20 KiB each).
pub const MAX_P256_TABLES: usize = 64;
/// P-256 keys remembered as seen once (a table is built on the second sighting) at most.
pub const MAX_P256_SEEN: usize = 4096;

/// P-256 public keys met before, with precomputed multiples ([`P256VerifyingTable`]): a TSA's
/// key is in every timestamp and a signer signs many documents, and a verification with the
/// table costs less than half of a generic one. A key gets its table on its second sighting, so
/// one-off keys do not pay for building it. Bounded: when either set is full it is cleared
/// (the hot keys come back on their next two sightings).
pub struct P256KeyCache {
    keys: Mutex<P256Keys>,
    max_tables: usize,
    max_seen: usize,
}

impl Default for P256KeyCache {
    fn default() -> P256KeyCache {
        P256KeyCache::with_capacity(MAX_P256_TABLES, MAX_P256_SEEN)
    }
}

#[derive(Default)]
struct P256Keys {
    /// SEC 1 encodings seen once.
    seen: HashSet<Vec<u8>>,
    tables: HashMap<Vec<u8>, Arc<P256VerifyingTable>>,
}

impl std::fmt::Debug for P256KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (seen, tables) = self.sizes();
        f.debug_struct("P256KeyCache")
            .field("seen", &seen)
            .field("tables", &tables)
            .finish()
    }
}

impl P256KeyCache {
    pub fn new() -> P256KeyCache {
        P256KeyCache::default()
    }

    /// At most `max_tables` tables and `max_seen` keys seen once.
    pub fn with_capacity(max_tables: usize, max_seen: usize) -> P256KeyCache {
        P256KeyCache {
            keys: Mutex::default(),
            max_tables,
            max_seen,
        }
    }

    /// Keys seen once, keys with a table.
    pub fn sizes(&self) -> (usize, usize) {
        self.keys
            .lock()
            .map(|k| (k.seen.len(), k.tables.len()))
            .unwrap_or_default()
    }

    /// The table for the key encoded as `point`, if it has one; otherwise notes the sighting and,
    /// on the second, builds the table from `key` (the same point, already decoded).
    fn table(
        &self,
        point: &[u8],
        key: &p256::ecdsa::VerifyingKey,
    ) -> Option<Arc<P256VerifyingTable>> {
        {
            // A poisoned lock only means another thread panicked mid-update of a cache: verify
            // without it.
            let mut keys = self.keys.lock().ok()?;
            if let Some(table) = keys.tables.get(point) {
                return Some(Arc::clone(table));
            }
            if !keys.seen.remove(point) {
                if keys.seen.len() >= self.max_seen {
                    keys.seen.clear();
                }
                keys.seen.insert(point.to_vec());
                return None;
            }
        }
        // Built outside the lock (a few hundred microseconds).
        let table = Arc::new(P256VerifyingTable::new(key));
        if let Ok(mut keys) = self.keys.lock() {
            if keys.tables.len() >= self.max_tables {
                keys.tables.clear();
            }
            keys.tables.insert(point.to_vec(), Arc::clone(&table));
        }
        Some(table)
    }
}

/// Checks `signature` over `message` by `spki`, with CMS's algorithm conventions:
/// `signatureAlgorithm` may name only the key type, the hash then being `digest`.
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    signature_algorithm: &AlgorithmIdentifierOwned,
    digest: DigestAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<SignatureScheme, SignatureFailure> {
    verify_signature_with(None, spki, signature_algorithm, digest, message, signature)
}

/// [`verify_signature`], with P-256 keys seen before verified through `keys`' tables (the same
/// answers, faster).
pub fn verify_signature_with(
    keys: Option<&P256KeyCache>,
    spki: &SubjectPublicKeyInfoOwned,
    signature_algorithm: &AlgorithmIdentifierOwned,
    digest: DigestAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<SignatureScheme, SignatureFailure> {
    let sig_oid = signature_algorithm.oid;
    let rsa_hash = match sig_oid {
        RSA_ENCRYPTION => Some(digest),
        rfc5912::SHA_1_WITH_RSA_ENCRYPTION => Some(DigestAlgorithm::Sha1),
        rfc5912::SHA_224_WITH_RSA_ENCRYPTION => Some(DigestAlgorithm::Sha224),
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION => Some(DigestAlgorithm::Sha256),
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION => Some(DigestAlgorithm::Sha384),
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION => Some(DigestAlgorithm::Sha512),
        _ => None,
    };
    if let Some(hash) = rsa_hash {
        let key = rsa_key(spki)?;
        let hashed = hash.digest(message);
        let padding = match hash {
            DigestAlgorithm::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
            DigestAlgorithm::Sha224 => rsa::Pkcs1v15Sign::new::<sha2::Sha224>(),
            DigestAlgorithm::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            DigestAlgorithm::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
            DigestAlgorithm::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        };
        return key
            .verify(padding, &hashed, signature)
            .map(|()| SignatureScheme::RsaPkcs1v15)
            .map_err(|_| SignatureFailure::Invalid);
    }
    if sig_oid == rfc5912::ID_RSASSA_PSS {
        return verify_pss(spki, signature_algorithm, message, signature);
    }
    let ec_hash = match sig_oid {
        ID_EC_PUBLIC_KEY => Some(digest),
        rfc5912::ECDSA_WITH_SHA_224 => Some(DigestAlgorithm::Sha224),
        rfc5912::ECDSA_WITH_SHA_256 => Some(DigestAlgorithm::Sha256),
        rfc5912::ECDSA_WITH_SHA_384 => Some(DigestAlgorithm::Sha384),
        rfc5912::ECDSA_WITH_SHA_512 => Some(DigestAlgorithm::Sha512),
        _ => None,
    };
    // ecdsa-with-SHA1 (1.2.840.10045.4.1) carries the hash in the OID too.
    let ec_hash = ec_hash.or_else(|| {
        (sig_oid == ObjectIdentifier::new_unwrap("1.2.840.10045.4.1"))
            .then_some(DigestAlgorithm::Sha1)
    });
    if let Some(hash) = ec_hash {
        return verify_ecdsa(keys, spki, hash, message, signature);
    }
    Err(SignatureFailure::Unsupported(
        const_oid::db::DB
            .by_oid(&sig_oid)
            .map_or_else(|| sig_oid.to_string(), str::to_owned),
    ))
}

fn rsa_key(spki: &SubjectPublicKeyInfoOwned) -> Result<rsa::RsaPublicKey, SignatureFailure> {
    if spki.algorithm.oid != RSA_ENCRYPTION && spki.algorithm.oid != rfc5912::ID_RSASSA_PSS {
        return Err(SignatureFailure::Malformed(
            "an RSA signature by a non-RSA key".into(),
        ));
    }
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| SignatureFailure::Malformed("public key bit string".into()))?;
    use rsa::pkcs1::DecodeRsaPublicKey;
    rsa::RsaPublicKey::from_pkcs1_der(bits)
        .map_err(|e| SignatureFailure::Malformed(format!("RSA public key: {e}")))
}

fn verify_pss(
    spki: &SubjectPublicKeyInfoOwned,
    signature_algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<SignatureScheme, SignatureFailure> {
    let params_der = signature_algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| SignatureFailure::Malformed("RSASSA-PSS without parameters".into()))?
        .to_der()
        .map_err(|e| SignatureFailure::Malformed(e.to_string()))?;
    let params = pkcs1::RsaPssParamsOwned::from_der(&params_der)
        .map_err(|e| SignatureFailure::Malformed(format!("RSASSA-PSS parameters: {e}")))?;
    let hash = DigestAlgorithm::from_oid(&params.hash.oid)
        .map_err(|_| SignatureFailure::Unsupported(format!("PSS hash {}", params.hash.oid)))?;
    // rsa's PSS always masks with MGF1 over the same hash: refuse anything else rather than
    // verify under parameters the signer did not state.
    let mgf_hash = params.mask_gen.parameters.as_ref().map(|p| p.oid);
    if params.mask_gen.oid != ID_MGF1 || mgf_hash != Some(params.hash.oid) {
        return Err(SignatureFailure::Unsupported(
            "PSS mask generation other than MGF1 with the message hash".into(),
        ));
    }
    let key = rsa_key(spki)?;
    let salt = usize::from(params.salt_len);
    let hashed = hash.digest(message);
    let result = match hash {
        DigestAlgorithm::Sha1 => key.verify(
            rsa::Pss::<sha1::Sha1>::new_with_salt(salt),
            &hashed,
            signature,
        ),
        DigestAlgorithm::Sha224 => key.verify(
            rsa::Pss::<sha2::Sha224>::new_with_salt(salt),
            &hashed,
            signature,
        ),
        DigestAlgorithm::Sha256 => key.verify(
            rsa::Pss::<sha2::Sha256>::new_with_salt(salt),
            &hashed,
            signature,
        ),
        DigestAlgorithm::Sha384 => key.verify(
            rsa::Pss::<sha2::Sha384>::new_with_salt(salt),
            &hashed,
            signature,
        ),
        DigestAlgorithm::Sha512 => key.verify(
            rsa::Pss::<sha2::Sha512>::new_with_salt(salt),
            &hashed,
            signature,
        ),
    };
    result
        .map(|()| SignatureScheme::RsaPss)
        .map_err(|_| SignatureFailure::Invalid)
}

fn verify_ecdsa(
    keys: Option<&P256KeyCache>,
    spki: &SubjectPublicKeyInfoOwned,
    hash: DigestAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<SignatureScheme, SignatureFailure> {
    if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
        return Err(SignatureFailure::Malformed(
            "an ECDSA signature by a non-EC key".into(),
        ));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
        .ok_or_else(|| SignatureFailure::Malformed("EC key without a named curve".into()))?;
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| SignatureFailure::Malformed("public key bit string".into()))?;
    let prehash = hash.digest(message);
    match curve {
        SECP256R1 => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| SignatureFailure::Malformed("P-256 point".into()))?;
            let sig = p256::ecdsa::Signature::from_der(signature)
                .map_err(|_| SignatureFailure::Invalid)?;
            let valid = match keys.and_then(|k| k.table(point, &key)) {
                Some(table) => table.verify_prehash(&prehash, &sig),
                None => key.verify_prehash(&prehash, &sig).is_ok(),
            };
            if valid {
                Ok(SignatureScheme::EcdsaP256)
            } else {
                Err(SignatureFailure::Invalid)
            }
        }
        SECP384R1 => {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| SignatureFailure::Malformed("P-384 point".into()))?;
            let sig = p384::ecdsa::Signature::from_der(signature)
                .map_err(|_| SignatureFailure::Invalid)?;
            key.verify_prehash(&prehash, &sig)
                .map(|()| SignatureScheme::EcdsaP384)
                .map_err(|_| SignatureFailure::Invalid)
        }
        other => Err(SignatureFailure::Unsupported(format!("EC curve {other}"))),
    }
}

/// The RSA modulus size of `spki` in bits, if it is an RSA key.
pub fn rsa_bits(spki: &SubjectPublicKeyInfoOwned) -> Option<usize> {
    use rsa::traits::PublicKeyParts;
    rsa_key(spki).ok().map(|k| k.size() * 8)
}

/// The content-type OID `id-data`.
pub const ID_DATA: ObjectIdentifier = rfc5911::ID_DATA;

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use spki::EncodePublicKey;

    fn ecdsa_with_sha256() -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: rfc5912::ECDSA_WITH_SHA_256,
            parameters: None,
        }
    }

    /// A P-256 key from a seed (deterministic: the tests need no RNG) and its SPKI.
    fn key(seed: u8) -> (SigningKey, SubjectPublicKeyInfoOwned) {
        let secret = sha2::Sha256::digest([seed, 0x6b]);
        let signing = SigningKey::from_slice(&secret).expect("scalar in range");
        let der = signing
            .verifying_key()
            .to_public_key_der()
            .expect("SPKI DER");
        let spki = SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).expect("SPKI");
        (signing, spki)
    }

    fn sign(key: &SigningKey, message: &[u8]) -> Vec<u8> {
        let signature: p256::ecdsa::Signature = key
            .sign_prehash(&sha2::Sha256::digest(message))
            .expect("sign");
        signature.to_der().as_bytes().to_vec()
    }

    #[test]
    fn cached_p256_keys_give_the_generic_answers() {
        let keys = P256KeyCache::new();
        let (signing, spki) = key(1);
        let alg = ecdsa_with_sha256();
        let sha = DigestAlgorithm::Sha256;
        let message = b"signed attributes".to_vec();
        let good = sign(&signing, &message);
        let mut wrong_message = message.clone();
        wrong_message[0] ^= 1;
        let (other, _) = key(2);
        let by_other = sign(&other, &message);
        // s negated: still valid for P-256 (no low-s rule), under both.
        let parsed = p256::ecdsa::Signature::from_der(&good).expect("DER");
        let (r, s) = parsed.split_scalars();
        let high_s = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes())
            .expect("scalars")
            .to_der()
            .as_bytes()
            .to_vec();
        let truncated = good[..good.len() - 1].to_vec();
        let cases: [(&[u8], &[u8]); 5] = [
            (&message, &good),
            (&wrong_message, &good),
            (&message, &by_other),
            (&message, &high_s),
            (&message, &truncated),
        ];
        // First round: the key is seen once (generic path); later rounds use its table.
        for round in 0..3 {
            for (m, sig) in cases {
                assert_eq!(
                    verify_signature_with(Some(&keys), &spki, &alg, sha, m, sig),
                    verify_signature(&spki, &alg, sha, m, sig),
                    "round {round}"
                );
            }
            assert_eq!(keys.sizes(), (0, 1), "round {round}");
        }
        assert_eq!(
            verify_signature_with(Some(&keys), &spki, &alg, sha, &message, &good),
            Ok(SignatureScheme::EcdsaP256)
        );
        // A bad signature by a key with a table still fails.
        assert_eq!(
            verify_signature_with(Some(&keys), &spki, &alg, sha, &wrong_message, &good),
            Err(SignatureFailure::Invalid)
        );
        assert_eq!(
            verify_signature_with(Some(&keys), &spki, &alg, sha, &message, &by_other),
            Err(SignatureFailure::Invalid)
        );
        // The table is the key's own: another key's signature does not verify with it either
        // way, and the other key's own verification is unaffected.
        let (_, other_spki) = key(2);
        assert_eq!(
            verify_signature_with(Some(&keys), &other_spki, &alg, sha, &message, &by_other),
            Ok(SignatureScheme::EcdsaP256)
        );
        assert_eq!(
            verify_signature_with(Some(&keys), &other_spki, &alg, sha, &message, &good),
            Err(SignatureFailure::Invalid)
        );
    }

    #[test]
    fn the_p256_key_cache_stays_bounded() {
        let keys = P256KeyCache::with_capacity(3, 5);
        let alg = ecdsa_with_sha256();
        let message = b"m".to_vec();
        for seed in 0..12u8 {
            let (signing, spki) = key(seed);
            let sig = sign(&signing, &message);
            for _ in 0..2 {
                assert_eq!(
                    verify_signature_with(
                        Some(&keys),
                        &spki,
                        &alg,
                        DigestAlgorithm::Sha256,
                        &message,
                        &sig
                    ),
                    Ok(SignatureScheme::EcdsaP256)
                );
            }
            let (seen, tables) = keys.sizes();
            assert!(seen <= 5 && tables <= 3, "{seen} seen, {tables} tables");
            assert!(tables >= 1);
        }
        // Keys seen once only: the seen set is cleared when full.
        for seed in 100..120u8 {
            let (signing, spki) = key(seed);
            let sig = sign(&signing, &message);
            assert!(
                verify_signature_with(
                    Some(&keys),
                    &spki,
                    &alg,
                    DigestAlgorithm::Sha256,
                    &message,
                    &sig
                )
                .is_ok()
            );
            let (seen, tables) = keys.sizes();
            assert!(seen <= 5 && tables <= 3, "{seen} seen, {tables} tables");
        }
    }
}
