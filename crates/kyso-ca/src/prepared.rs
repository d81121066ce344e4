//! A CA's own public key prepared for checking the many signatures its HSM makes.
//!
//! Every certificate and CRL the HSM signs is verified before it is released (a wrong key or a
//! misbehaving token must not produce an unverifiable certificate). The CA's key never changes,
//! so for P-256 the multiples of it are computed once, in the layout p256 uses for its generator
//! (`primeorder`'s basepoint table), kept as affine points, and so are the generator's:
//! ECDSA verification then computes `u1·G + u2·Q` as two table look-ups with about 100 mixed
//! point additions (33 for `G`, whose table holds signed radix-256 digits, and about 64 for `Q`)
//! and four doublings, where the generic path needs about 256 doublings and 100 additions. Everything else is RustCrypto's: the point and scalar arithmetic and the batch
//! normalisation (`p256`), the signed-digit recoding (`primeorder`), the DER parsing and range
//! checks of the signature (`ecdsa`). The verification equation mirrors
//! `ecdsa::hazmat::verify_prehashed`; the tests compare the two on valid and invalid signatures.
//!
//! Other keys (P-384, RSA) use [`keys::verify_signature`] unchanged.
//!
//! [`P256VerifyingTable`] is the same precomputation without kyso's key policy, for verifiers of
//! outside signatures (CMS, timestamps) that meet the same keys again and again.

use p256::elliptic_curve::PrimeField;
use p256::elliptic_curve::group::{Curve, Group};
use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::scalar::IsHigh;
use p256::{AffinePoint, NistP256, ProjectivePoint, Scalar, U256};
use primeorder::{Radix16Decomposition, Radix16Digits};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::keys::{self, KeyError, PublicKeyKind, SignatureScheme};

/// Bytes of a P-256 scalar.
const P256_BYTES: usize = 32;
/// Tables of `[1..8]·256^i·Q` for i in 0..=32: one per pair of radix-16 digits, plus the carry
/// digit (the layout of `primeorder::BasepointTable`).
const P256_TABLES: usize = P256_BYTES + 1;

/// A public key ready for repeated signature checks.
pub struct PreparedKey {
    spki: SubjectPublicKeyInfoOwned,
    kind: PublicKeyKind,
    p256: Option<Box<P256Multiples>>,
}

impl std::fmt::Debug for PreparedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedKey")
            .field("kind", &self.kind)
            .field("precomputed", &self.p256.is_some())
            .finish_non_exhaustive()
    }
}

impl PreparedKey {
    /// Checks the key against kyso's policy (as [`keys::check_public_key`]) and, for P-256,
    /// precomputes its multiples (about 20 KiB, a few hundred microseconds).
    pub fn new(spki: &SubjectPublicKeyInfoOwned) -> Result<PreparedKey, KeyError> {
        let kind = keys::check_public_key(spki)?;
        let p256 = match kind {
            PublicKeyKind::P256 => {
                let key =
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
                        .map_err(|e| KeyError::MalformedPublicKey {
                            reason: e.to_string(),
                        })?;
                Some(Box::new(P256Multiples::new(ProjectivePoint::from(
                    *key.as_affine(),
                ))))
            }
            _ => None,
        };
        Ok(PreparedKey {
            spki: spki.clone(),
            kind,
            p256,
        })
    }

    pub fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    pub fn kind(&self) -> PublicKeyKind {
        self.kind
    }

    /// [`keys::verify_signature`] with this key: the same algorithm policy, the same errors.
    pub fn verify(
        &self,
        alg: &AlgorithmIdentifierOwned,
        message: &[u8],
        signature: &[u8],
    ) -> Result<SignatureScheme, KeyError> {
        let scheme = keys::signature_scheme(alg)?;
        match (scheme, &self.p256) {
            (SignatureScheme::Ecdsa(hash), Some(multiples)) => {
                let signature = p256::ecdsa::Signature::from_der(signature).map_err(|e| {
                    KeyError::MalformedSignature {
                        reason: e.to_string(),
                    }
                })?;
                if multiples.verify_prehash(&hash.digest(message), &signature) {
                    Ok(scheme)
                } else {
                    Err(KeyError::BadSignature)
                }
            }
            _ => keys::verify_signature(&self.spki, alg, message, signature),
        }
    }
}

/// Precomputed multiples of one P-256 public key, for repeated ECDSA verification by any P-256
/// key (no policy is applied: the caller decides which keys it accepts). About 20 KiB; building
/// it costs about one or two generic verifications, each verification with it a little under half
/// of one.
pub struct P256VerifyingTable {
    multiples: P256Multiples,
}

impl std::fmt::Debug for P256VerifyingTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P256VerifyingTable").finish_non_exhaustive()
    }
}

impl P256VerifyingTable {
    pub fn new(key: &p256::ecdsa::VerifyingKey) -> P256VerifyingTable {
        P256VerifyingTable {
            multiples: P256Multiples::new(ProjectivePoint::from(*key.as_affine())),
        }
    }

    /// Whether `signature` is valid over `prehash` (a message digest, cut or padded to 256 bits
    /// as p256 does): the answer of `p256::ecdsa::VerifyingKey::verify_prehash` for this key.
    pub fn verify_prehash(&self, prehash: &[u8], signature: &p256::ecdsa::Signature) -> bool {
        self.multiples.verify_prehash(prehash, signature)
    }
}

/// The generator's multiples in the same affine layout (p256's own table for `G` is projective),
/// built on first use.
fn generator_multiples() -> &'static GeneratorMultiples {
    static GENERATOR: std::sync::LazyLock<GeneratorMultiples> =
        std::sync::LazyLock::new(GeneratorMultiples::new);
    &GENERATOR
}

/// Multiples of a signed radix-256 digit per table: `[1..128]·256^i·G`.
const G_ENTRIES: usize = 128;

/// The generator's multiples for signed radix-256 digits: `[1..128]·256^i·G` for i in 0..32, and
/// `256^32·G` for the carry, affine. A product `k·G` is then at most 33 mixed additions and no
/// doubling, where a table of radix-16 digits ([`P256Multiples`]) takes about 64 and four
/// doublings. It is built once for the one point every verification uses (about 290 KiB, a few
/// milliseconds on first use); a key's own table stays the small radix-16 one, built per key.
struct GeneratorMultiples {
    /// Table `i` at `[i * G_ENTRIES ..][.. G_ENTRIES]`, entry `j` holding `(j + 1)·256^i·G`.
    points: Vec<AffinePoint>,
    carry: AffinePoint,
}

impl GeneratorMultiples {
    fn new() -> GeneratorMultiples {
        let mut projective = Vec::with_capacity(P256_BYTES * G_ENTRIES + 1);
        let mut base = ProjectivePoint::GENERATOR;
        for _ in 0..P256_BYTES {
            let mut multiple = base;
            for _ in 0..G_ENTRIES {
                projective.push(multiple);
                multiple += &base;
            }
            for _ in 0..8 {
                base = base.double();
            }
        }
        projective.push(base);
        // One inversion for all of them; none is the identity (each is k·G with 0 < k < n).
        let mut points = vec![AffinePoint::IDENTITY; projective.len()];
        ProjectivePoint::batch_normalize(&projective, &mut points);
        let carry = points.pop().unwrap_or(AffinePoint::IDENTITY);
        GeneratorMultiples { points, carry }
    }

    /// `k·G` in variable time (public inputs only: verification). The little-endian bytes of `k`
    /// become signed digits in [-128, 127] with a final carry; zero digits are skipped.
    fn mul_vartime(&self, k: &Scalar) -> ProjectivePoint {
        let bytes = k.to_repr();
        let mut sum = ProjectivePoint::IDENTITY;
        let mut carry = 0i16;
        for i in 0..P256_BYTES {
            let value = i16::from(bytes[P256_BYTES - 1 - i]) + carry;
            let digit = if value >= 128 {
                carry = 1;
                value - 256
            } else {
                carry = 0;
                value
            };
            if digit != 0 {
                let point = self.points[i * G_ENTRIES + usize::from(digit.unsigned_abs()) - 1];
                sum += &(if digit < 0 { -point } else { point });
            }
        }
        if carry != 0 {
            sum += &self.carry;
        }
        sum
    }
}

/// Precomputed multiples of one P-256 point `Q`, in affine form: `[1..8]·256^i·Q` for i in
/// 0..=32 (the layout of `primeorder::BasepointTable`). Affine points make each step a mixed
/// addition, cheaper than the projective one.
struct P256Multiples {
    tables: Box<[[AffinePoint; 8]; P256_TABLES]>,
}

impl P256Multiples {
    fn new(point: ProjectivePoint) -> P256Multiples {
        let mut projective = Vec::with_capacity(P256_TABLES * 8);
        let mut base = point;
        for _ in 0..P256_TABLES {
            let mut multiple = base;
            for _ in 0..8 {
                projective.push(multiple);
                multiple += &base;
            }
            for _ in 0..8 {
                base = base.double();
            }
        }
        // One inversion for all 264 points. None is the identity: Q has prime order n and
        // every multiple is k·Q with 0 < k < n.
        let mut affine = vec![AffinePoint::IDENTITY; projective.len()];
        ProjectivePoint::batch_normalize(&projective, &mut affine);
        let mut tables = Box::new([[AffinePoint::IDENTITY; 8]; P256_TABLES]);
        for (table, points) in tables.iter_mut().zip(affine.chunks_exact(8)) {
            table.copy_from_slice(points);
        }
        P256Multiples { tables }
    }

    /// `d·256^i·Q` for a nonzero signed digit `d` in [-8, 8].
    fn select(&self, i: usize, d: i8) -> AffinePoint {
        let point = self.tables[i][usize::from(d.unsigned_abs()) - 1];
        if d < 0 { -point } else { point }
    }

    /// `k·Q` in variable time (public inputs only: verification), as
    /// `primeorder::BasepointTable::mul_vartime` computes `k·G`. A zero digit would add the
    /// identity: it is skipped (about one digit in sixteen).
    fn mul_vartime(&self, k: &Scalar) -> ProjectivePoint {
        let digits = Radix16Decomposition::<Radix16Digits<NistP256>>::new(k);
        let carry = digits[P256_BYTES * 2];
        let mut even = if carry == 0 {
            ProjectivePoint::IDENTITY
        } else {
            ProjectivePoint::from(self.select(P256_BYTES, carry))
        };
        let mut odd = ProjectivePoint::IDENTITY;
        for i in (0..P256_BYTES).rev() {
            let (high, low) = (digits[i * 2 + 1], digits[i * 2]);
            if high != 0 {
                odd += &self.select(i, high);
            }
            if low != 0 {
                even += &self.select(i, low);
            }
        }
        for _ in 0..4 {
            odd = odd.double();
        }
        even + odd
    }

    /// ECDSA verification of a signature over a digest (SEC 1 4.1.4), as
    /// `ecdsa::hazmat::verify_prehashed` does it: `r` and `s` are already in `[1, n-1]` (the
    /// `Signature` type guarantees it).
    fn verify_prehash(&self, digest: &[u8], signature: &p256::ecdsa::Signature) -> bool {
        let (r, s) = signature.split_scalars();
        if <NistP256 as ecdsa::EcdsaCurve>::NORMALIZE_S && bool::from(s.is_high()) {
            return false;
        }
        let z = digest_scalar(digest);
        let s_inv = *s.invert_vartime();
        let u1 = z * s_inv;
        let u2 = *r * s_inv;
        let point = generator_multiples().mul_vartime(&u1) + self.mul_vartime(&u2);
        // The point at infinity has x = 0 here, which no valid r equals.
        let x = point.to_affine().x();
        *r == <Scalar as Reduce<p256::FieldBytes>>::reduce(&x)
    }
}

/// bits2int then mod n (SEC 1 4.1.4 step 4): the leftmost 256 bits of the digest, shorter ones
/// zero-padded on the left, reduced modulo the group order.
fn digest_scalar(digest: &[u8]) -> Scalar {
    let digest = &digest[..digest.len().min(P256_BYTES)];
    let mut bytes = [0u8; P256_BYTES];
    bytes[P256_BYTES - digest.len()..].copy_from_slice(digest);
    <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kyso_hsm::{HashAlgorithm, KeyAlgorithm};
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::elliptic_curve::PrimeField;

    fn random_scalar() -> Scalar {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("OS RNG");
        <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(&bytes))
    }

    fn random_digest(len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        getrandom::fill(&mut bytes).expect("OS RNG");
        bytes
    }

    /// A valid signature for `q` over a digest chosen by the construction, without the private
    /// key: R = a·G + b·Q, r = x(R), s = r/b, z = a·s (then u1 = a, u2 = b).
    fn forged_valid(q: &ProjectivePoint) -> Option<(Vec<u8>, p256::ecdsa::Signature)> {
        let (a, b) = (random_scalar(), random_scalar());
        let point = ProjectivePoint::GENERATOR * a + *q * b;
        let r = <Scalar as Reduce<p256::FieldBytes>>::reduce(&point.to_affine().x());
        let s = r * Option::<Scalar>::from(b.invert())?;
        let z = a * s;
        let signature = p256::ecdsa::Signature::from_scalars(r.to_repr(), s.to_repr()).ok()?;
        Some((z.to_repr().to_vec(), signature))
    }

    fn reference(
        key: &p256::ecdsa::VerifyingKey,
        digest: &[u8],
        signature: &p256::ecdsa::Signature,
    ) -> bool {
        key.verify_prehash(digest, signature).is_ok()
    }

    fn random_key() -> (p256::ecdsa::VerifyingKey, ProjectivePoint) {
        let point = ProjectivePoint::GENERATOR * random_scalar();
        let key = p256::ecdsa::VerifyingKey::from_affine(point.to_affine()).expect("not identity");
        (key, point)
    }

    #[test]
    fn generator_table_multiplication_matches_p256() {
        let mut scalars = vec![Scalar::ZERO, Scalar::ONE, -Scalar::ONE, Scalar::from(8u64)];
        // Digits at the edges of the signed radix-256 recoding: 127, 128 (a carry), 255 and
        // 256 (a carry out of a byte that was 255 plus one), in low, middle and top bytes.
        for value in [127u64, 128, 255, 256, 0x80ff, 0xffff, 0x8080_8080_8080_8080] {
            scalars.push(Scalar::from(value));
            scalars.push(-Scalar::from(value));
        }
        let mut top = [0u8; 32];
        for byte in [0x7f, 0x80, 0xff] {
            top[0] = byte;
            let k = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(&top));
            scalars.push(k);
            scalars.push(-k);
        }
        scalars.extend((0..200).map(|_| random_scalar()));
        for k in scalars {
            assert_eq!(
                generator_multiples().mul_vartime(&k),
                ProjectivePoint::GENERATOR * k,
                "k = {k:?}"
            );
        }
    }

    #[test]
    fn table_multiplication_matches_plain_multiplication() {
        let (_, q) = random_key();
        let multiples = P256Multiples::new(q);
        let mut scalars = vec![Scalar::ZERO, Scalar::ONE, -Scalar::ONE, Scalar::from(8u64)];
        scalars.extend((0..50).map(|_| random_scalar()));
        for k in scalars {
            assert_eq!(multiples.mul_vartime(&k), q * k, "k = {k:?}");
        }
    }

    #[test]
    fn agrees_with_p256_on_valid_and_altered_signatures() {
        for _ in 0..8 {
            let (key, q) = random_key();
            let (other_key, _) = random_key();
            let multiples = P256Multiples::new(q);
            let other = P256Multiples::new(ProjectivePoint::from(*other_key.as_affine()));
            for _ in 0..16 {
                let Some((digest, signature)) = forged_valid(&q) else {
                    continue;
                };
                assert!(reference(&key, &digest, &signature), "construction");
                assert!(multiples.verify_prehash(&digest, &signature));
                // The same with s negated (P-256 ECDSA accepts high s).
                let (r, s) = signature.split_scalars();
                let negated =
                    p256::ecdsa::Signature::from_scalars(r.to_repr(), (-*s).to_repr()).unwrap();
                assert_eq!(
                    multiples.verify_prehash(&digest, &negated),
                    reference(&key, &digest, &negated)
                );
                // Another key, another digest, another r or s: refused by both.
                assert!(!other.verify_prehash(&digest, &signature));
                let mut altered = digest.clone();
                altered[31] ^= 1;
                assert!(!multiples.verify_prehash(&altered, &signature));
                assert!(!reference(&key, &altered, &signature));
                let bumped_r =
                    p256::ecdsa::Signature::from_scalars((*r + Scalar::ONE).to_repr(), s.to_repr())
                        .unwrap();
                assert!(!multiples.verify_prehash(&digest, &bumped_r));
                assert!(!reference(&key, &digest, &bumped_r));
                let bumped_s =
                    p256::ecdsa::Signature::from_scalars(r.to_repr(), (*s + Scalar::ONE).to_repr())
                        .unwrap();
                assert!(!multiples.verify_prehash(&digest, &bumped_s));
                assert!(!reference(&key, &digest, &bumped_s));
            }
            // Random (r, s): both refuse (a random pair verifies with probability ~2^-256).
            for _ in 0..16 {
                let signature = p256::ecdsa::Signature::from_scalars(
                    random_scalar().to_repr(),
                    random_scalar().to_repr(),
                )
                .unwrap();
                let digest = random_digest(32);
                assert!(!multiples.verify_prehash(&digest, &signature));
                assert!(!reference(&key, &digest, &signature));
            }
        }
    }

    #[test]
    fn long_digests_are_cut_to_their_leftmost_bits_as_p256_does() {
        let (key, q) = random_key();
        let multiples = P256Multiples::new(q);
        for len in [32, 48, 64] {
            for _ in 0..8 {
                let (digest, signature) = forged_valid(&q).expect("construction");
                // A digest whose leftmost 32 bytes are the signed value verifies whatever follows.
                let mut input = random_digest(len);
                input[..32].copy_from_slice(&digest);
                assert!(reference(&key, &input, &signature), "digest of {len} bytes");
                assert!(multiples.verify_prehash(&input, &signature));
                input[len - 1] ^= 1;
                assert_eq!(
                    multiples.verify_prehash(&input, &signature),
                    reference(&key, &input, &signature),
                    "only the leftmost 32 bytes count ({len})"
                );
            }
        }
        // A short input is the same integer padded on the left.
        assert_eq!(digest_scalar(&[0x01, 0x02]), Scalar::from(0x0102u64));
    }

    #[test]
    fn public_table_agrees_with_p256_including_short_digests() {
        let (key, q) = random_key();
        let table = P256VerifyingTable::new(&key);
        for _ in 0..8 {
            let (digest, signature) = forged_valid(&q).expect("construction");
            assert!(table.verify_prehash(&digest, &signature));
            // SHA-1 and SHA-224 sized digests (left-padded by both).
            for len in [20, 28] {
                let short = &digest[..len];
                assert_eq!(
                    table.verify_prehash(short, &signature),
                    reference(&key, short, &signature)
                );
            }
            let mut altered = digest.clone();
            altered[0] ^= 1;
            assert!(!table.verify_prehash(&altered, &signature));
            assert!(!reference(&key, &altered, &signature));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_hsm_signatures_as_verify_signature_does() {
        let token = kyso_hsm::testing::fresh_token("prepared-key");
        let ec = token
            .generate_key("ec", KeyAlgorithm::EcP256)
            .await
            .expect("generate");
        let rsa = token
            .generate_key("rsa", KeyAlgorithm::Rsa2048)
            .await
            .expect("generate");
        let prepared = PreparedKey::new(ec.public_key_info()).expect("prepare");
        assert_eq!(prepared.kind(), PublicKeyKind::P256);
        assert!(prepared.p256.is_some());
        for hash in [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ] {
            let key = ec.clone().with_hash(hash);
            let alg = key.signature_algorithm();
            for i in 0..10u8 {
                let message = vec![i; 100 + usize::from(i)];
                let signature = key.sign(&message).await.expect("sign");
                assert_eq!(
                    prepared.verify(&alg, &message, &signature),
                    keys::verify_signature(ec.public_key_info(), &alg, &message, &signature),
                );
                assert!(prepared.verify(&alg, &message, &signature).is_ok());
                let mut altered = message.clone();
                altered[0] ^= 0x80;
                assert_eq!(
                    prepared.verify(&alg, &altered, &signature),
                    Err(KeyError::BadSignature)
                );
            }
        }
        // Malformed DER, an RSA algorithm for an EC key, and an RSA key (generic path) give the
        // errors of verify_signature.
        let alg = ec.signature_algorithm();
        let message = b"tbs".to_vec();
        let signature = ec.sign(&message).await.expect("sign");
        let truncated = &signature[..signature.len() - 1];
        assert_eq!(
            prepared.verify(&alg, &message, truncated),
            keys::verify_signature(ec.public_key_info(), &alg, &message, truncated)
        );
        assert_eq!(
            prepared
                .verify(&alg, &message, truncated)
                .unwrap_err()
                .code(),
            "signature_malformed"
        );
        let rsa_alg = rsa.signature_algorithm();
        assert_eq!(
            prepared
                .verify(&rsa_alg, &message, &signature)
                .unwrap_err()
                .code(),
            "signature_algorithm_key_mismatch"
        );
        let prepared_rsa = PreparedKey::new(rsa.public_key_info()).expect("prepare RSA");
        assert!(prepared_rsa.p256.is_none());
        let rsa_signature = rsa.sign(&message).await.expect("sign");
        assert!(
            prepared_rsa
                .verify(&rsa_alg, &message, &rsa_signature)
                .is_ok()
        );
        assert_eq!(
            prepared_rsa.verify(&rsa_alg, b"other", &rsa_signature),
            Err(KeyError::BadSignature)
        );
        // A key kyso refuses is refused here too.
        let mut bad = ec.public_key_info().clone();
        bad.algorithm.parameters = Some(
            der::Any::encode_from(&der::asn1::ObjectIdentifier::new_unwrap("1.3.132.0.10"))
                .unwrap(),
        );
        assert_eq!(
            PreparedKey::new(&bad).unwrap_err(),
            keys::check_public_key(&bad).unwrap_err()
        );
        assert_eq!(
            PreparedKey::new(&bad).unwrap_err().code(),
            "key_unsupported_curve"
        );
    }
}
