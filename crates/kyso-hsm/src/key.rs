//! A private key on a token and signing with it, including the RustCrypto traits that let the
//! x509-cert and cms builders sign through the HSM.

use crate::HsmError;
use crate::algorithm::{self, HashAlgorithm, KeyAlgorithm, RsaPadding, VerifyError};
use crate::placement::CallLatency;
use crate::token::{OpError, Token, ensure_logged_in};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use der::asn1::BitString;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

#[cfg(test)]
mod tests;

/// A private key on a token (it never leaves it) plus its public key. Cheap to clone.
#[derive(Clone)]
pub struct HsmKey {
    inner: Arc<KeyInner>,
    hash: HashAlgorithm,
    padding: RsaPadding,
}

struct KeyInner {
    token: Token,
    label: String,
    id: Vec<u8>,
    algorithm: KeyAlgorithm,
    spki: SubjectPublicKeyInfoOwned,
    /// Object handles stay valid across the application's sessions; re-found when the token
    /// says otherwise (after a logout or re-insertion).
    handle: Mutex<Option<ObjectHandle>>,
    /// How long this key's signatures take, which decides where the next one runs.
    latency: CallLatency,
}

impl std::fmt::Debug for HsmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmKey")
            .field("token", &self.inner.token.label())
            .field("label", &self.inner.label)
            .field("id", &hex::encode(&self.inner.id))
            .field("algorithm", &self.inner.algorithm)
            .field("hash", &self.hash)
            .field("padding", &self.padding)
            .finish()
    }
}

/// The mechanism a signature is made with, and what it is fed.
#[derive(Clone, Copy, Debug)]
enum SignMechanism {
    /// CKM_ECDSA over a digest.
    Ecdsa,
    /// CKM_RSA_PKCS over a DigestInfo.
    RsaPkcs,
    /// CKM_RSA_PKCS_PSS over a digest.
    RsaPkcsPss(HashAlgorithm),
    /// CKM_SHA*_RSA_PKCS over the message.
    HashRsaPkcs(HashAlgorithm),
    /// CKM_SHA*_RSA_PKCS_PSS over the message.
    HashRsaPkcsPss(HashAlgorithm),
}

fn pss_params(hash: HashAlgorithm) -> PkcsPssParams {
    let (hash_alg, mgf) = match hash {
        HashAlgorithm::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        HashAlgorithm::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        HashAlgorithm::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    };
    PkcsPssParams {
        hash_alg,
        mgf,
        s_len: (hash.output_len() as u64).into(),
    }
}

fn hash_rsa_pkcs_type(hash: HashAlgorithm) -> MechanismType {
    match hash {
        HashAlgorithm::Sha256 => MechanismType::SHA256_RSA_PKCS,
        HashAlgorithm::Sha384 => MechanismType::SHA384_RSA_PKCS,
        HashAlgorithm::Sha512 => MechanismType::SHA512_RSA_PKCS,
    }
}

fn hash_rsa_pss_type(hash: HashAlgorithm) -> MechanismType {
    match hash {
        HashAlgorithm::Sha256 => MechanismType::SHA256_RSA_PKCS_PSS,
        HashAlgorithm::Sha384 => MechanismType::SHA384_RSA_PKCS_PSS,
        HashAlgorithm::Sha512 => MechanismType::SHA512_RSA_PKCS_PSS,
    }
}

impl SignMechanism {
    fn mechanism(self) -> Mechanism<'static> {
        match self {
            SignMechanism::Ecdsa => Mechanism::Ecdsa,
            SignMechanism::RsaPkcs => Mechanism::RsaPkcs,
            SignMechanism::RsaPkcsPss(h) => Mechanism::RsaPkcsPss(pss_params(h)),
            SignMechanism::HashRsaPkcs(HashAlgorithm::Sha256) => Mechanism::Sha256RsaPkcs,
            SignMechanism::HashRsaPkcs(HashAlgorithm::Sha384) => Mechanism::Sha384RsaPkcs,
            SignMechanism::HashRsaPkcs(HashAlgorithm::Sha512) => Mechanism::Sha512RsaPkcs,
            SignMechanism::HashRsaPkcsPss(h) => {
                let params = pss_params(h);
                match h {
                    HashAlgorithm::Sha256 => Mechanism::Sha256RsaPkcsPss(params),
                    HashAlgorithm::Sha384 => Mechanism::Sha384RsaPkcsPss(params),
                    HashAlgorithm::Sha512 => Mechanism::Sha512RsaPkcsPss(params),
                }
            }
        }
    }

    fn mechanism_type(self) -> MechanismType {
        match self {
            SignMechanism::Ecdsa => MechanismType::ECDSA,
            SignMechanism::RsaPkcs => MechanismType::RSA_PKCS,
            SignMechanism::RsaPkcsPss(_) => MechanismType::RSA_PKCS_PSS,
            SignMechanism::HashRsaPkcs(h) => hash_rsa_pkcs_type(h),
            SignMechanism::HashRsaPkcsPss(h) => hash_rsa_pss_type(h),
        }
    }
}

impl HsmKey {
    pub(crate) fn new(
        token: Token,
        label: String,
        id: Vec<u8>,
        algorithm: KeyAlgorithm,
        spki: SubjectPublicKeyInfoOwned,
        handle: Option<ObjectHandle>,
    ) -> HsmKey {
        HsmKey {
            inner: Arc::new(KeyInner {
                token,
                label,
                id,
                algorithm,
                spki,
                handle: Mutex::new(handle),
                latency: CallLatency::default(),
            }),
            hash: algorithm.default_hash(),
            padding: RsaPadding::Pkcs1v15,
        }
    }

    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// CKA_ID shared by the private key, the public key and the certificate.
    pub fn id(&self) -> &[u8] {
        &self.inner.id
    }

    pub fn token_label(&self) -> &str {
        self.inner.token.label()
    }

    pub fn token(&self) -> &Token {
        &self.inner.token
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.inner.algorithm
    }

    pub fn public_key_info(&self) -> &spki::SubjectPublicKeyInfoOwned {
        &self.inner.spki
    }

    /// The key as `signature::Keypair` hands it out.
    pub fn public_key(&self) -> HsmPublicKey {
        HsmPublicKey(self.inner.spki.clone())
    }

    pub fn hash(&self) -> HashAlgorithm {
        self.hash
    }

    pub fn rsa_padding(&self) -> RsaPadding {
        self.padding
    }

    pub fn with_hash(self, hash: HashAlgorithm) -> HsmKey {
        HsmKey { hash, ..self }
    }

    /// Ignored for EC keys.
    pub fn with_rsa_padding(self, padding: RsaPadding) -> HsmKey {
        HsmKey { padding, ..self }
    }

    /// ecdsa-with-SHA256/384/512 (absent params); sha256/384/512WithRSAEncryption (NULL
    /// params); id-RSASSA-PSS with RSASSA-PSS-params (hash, MGF1 with the same hash, salt length
    /// = hash length).
    pub fn signature_algorithm(&self) -> spki::AlgorithmIdentifierOwned {
        algorithm::signature_algorithm(self.inner.algorithm, self.hash, self.padding)
    }

    /// Signs `message`: hashed in software where the mechanism needs it. Runs in place when this
    /// key has been answering within the token's inline budget or computes in this process (see
    /// `placement`), else off the async worker.
    pub async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        let latency = &self.inner.latency;
        if let Some(_permit) = self.inner.token.inline_permit(latency).await {
            return latency.time(|| self.sign_blocking(message));
        }
        let key = self.clone();
        let message = message.to_vec();
        self.inner
            .token
            .offload(move || key.inner.latency.time(|| key.sign_blocking(&message)))
            .await
    }

    /// The recent average time of this key's signatures (`None` before the first).
    pub fn average_signing_time(&self) -> Option<std::time::Duration> {
        self.inner.latency.average()
    }

    /// [`HsmKey::sign`] on the calling thread (for the synchronous builder traits).
    pub fn sign_blocking(&self, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        let token = &self.inner.token;
        let hash = self.hash;
        let (mechanism, data): (SignMechanism, Cow<'_, [u8]>) = if self.inner.algorithm.is_rsa() {
            match self.padding {
                RsaPadding::Pkcs1v15 if token.has_mechanism(hash_rsa_pkcs_type(hash))? => {
                    (SignMechanism::HashRsaPkcs(hash), Cow::Borrowed(message))
                }
                RsaPadding::Pss if token.has_mechanism(hash_rsa_pss_type(hash))? => {
                    (SignMechanism::HashRsaPkcsPss(hash), Cow::Borrowed(message))
                }
                _ => self.digest_plan(&hash.digest(message))?,
            }
        } else {
            self.digest_plan(&hash.digest(message))?
        };
        self.sign_with(mechanism, &data)
    }

    /// Signs a digest of `self.hash()` computed elsewhere (CMS over a client-supplied digest).
    pub async fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, HsmError> {
        self.hash.check_digest(digest)?;
        let latency = &self.inner.latency;
        if let Some(_permit) = self.inner.token.inline_permit(latency).await {
            return latency.time(|| self.sign_digest_blocking(digest));
        }
        let key = self.clone();
        let digest = digest.to_vec();
        self.inner
            .token
            .offload(move || key.inner.latency.time(|| key.sign_digest_blocking(&digest)))
            .await
    }

    pub fn sign_digest_blocking(&self, digest: &[u8]) -> Result<Vec<u8>, HsmError> {
        let (mechanism, data) = self.digest_plan(digest)?;
        self.sign_with(mechanism, &data)
    }

    /// Mechanism and input for signing a digest with the raw (non-hashing) mechanisms.
    fn digest_plan(&self, digest: &[u8]) -> Result<(SignMechanism, Cow<'static, [u8]>), HsmError> {
        let hash = self.hash;
        hash.check_digest(digest)?;
        Ok(
            match (self.inner.algorithm.ec_field_bytes(), self.padding) {
                (Some(field), _) => {
                    // bits2int (SEC 1 4.1.3): a digest longer than the group order is cut to its
                    // leftmost bits; P-256 and P-384 orders are whole bytes.
                    let len = digest.len().min(field);
                    (SignMechanism::Ecdsa, Cow::Owned(digest[..len].to_vec()))
                }
                (None, RsaPadding::Pkcs1v15) => (
                    SignMechanism::RsaPkcs,
                    Cow::Owned(algorithm::digest_info(hash, digest)?),
                ),
                (None, RsaPadding::Pss) => {
                    (SignMechanism::RsaPkcsPss(hash), Cow::Owned(digest.to_vec()))
                }
            },
        )
    }

    fn sign_with(&self, mechanism: SignMechanism, data: &[u8]) -> Result<Vec<u8>, HsmError> {
        let token = &self.inner.token;
        if !token.has_mechanism(mechanism.mechanism_type())? {
            return Err(HsmError::MechanismUnsupported {
                token: token.label().to_owned(),
                mechanism: mechanism.mechanism_type().to_string(),
                purpose: format!(
                    "signing with key {:?} ({}, {}{})",
                    self.inner.label,
                    self.inner.algorithm,
                    self.hash,
                    if self.inner.algorithm.is_rsa() {
                        format!(", {}", self.padding)
                    } else {
                        String::new()
                    }
                ),
            });
        }
        let raw = token.run_blocking("sign", Some(&self.inner.label), |s| {
            self.sign_in_session(s, mechanism, data)
        })?;
        if self.inner.algorithm.is_rsa() {
            Ok(raw)
        } else {
            algorithm::ecdsa_raw_to_der(self.inner.algorithm, &raw)
        }
    }

    fn sign_in_session(
        &self,
        s: &Session,
        mechanism: SignMechanism,
        data: &[u8],
    ) -> Result<Vec<u8>, OpError> {
        let handle = self.private_handle(s)?;
        match s.sign(&mechanism.mechanism(), handle, data) {
            Ok(sig) => Ok(sig),
            Err(CkError::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _)) => {
                self.forget_handle();
                ensure_logged_in(s)?;
                let handle = self.private_handle(s)?;
                Ok(s.sign(&mechanism.mechanism(), handle, data)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn private_handle(&self, s: &Session) -> Result<ObjectHandle, OpError> {
        let cached = *self
            .inner
            .handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = cached {
            return Ok(h);
        }
        let h = self
            .inner
            .token
            .find_private_handle(s, &self.inner.id, &self.inner.label)?;
        *self
            .inner
            .handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(h);
        Ok(h)
    }

    fn forget_handle(&self) {
        *self
            .inner
            .handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Checks in software that `signature` is this key's signature over `message` with the
    /// key's hash and padding.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        self.verify_digest(&self.hash.digest(message), signature)
    }

    /// Checks in software a signature over a digest of `self.hash()`.
    pub fn verify_digest(&self, digest: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        algorithm::verify_digest_signature(
            &self.inner.spki,
            self.hash,
            self.padding,
            digest,
            signature,
        )
    }
}

/// The public half of an [`HsmKey`], as `signature::Keypair::verifying_key` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HsmPublicKey(pub SubjectPublicKeyInfoOwned);

impl spki::EncodePublicKey for HsmPublicKey {
    fn to_public_key_der(&self) -> spki::Result<spki::Document> {
        Ok(spki::Document::encode_msg(&self.0)?)
    }
}

/// A finished signature: DER ECDSA-Sig-Value or the RSA signature bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HsmSignature(pub Vec<u8>);

impl HsmSignature {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl AsRef<[u8]> for HsmSignature {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl spki::SignatureBitStringEncoding for HsmSignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

impl signature::Keypair for HsmKey {
    type VerifyingKey = HsmPublicKey;

    fn verifying_key(&self) -> HsmPublicKey {
        self.public_key()
    }
}

impl spki::DynSignatureAlgorithmIdentifier for HsmKey {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.signature_algorithm())
    }
}

/// Blocks the calling thread on the HSM; inside tokio prefer the `AsyncSigner`
/// (`build_async`) or call it from `spawn_blocking`.
impl signature::Signer<HsmSignature> for HsmKey {
    fn try_sign(&self, msg: &[u8]) -> Result<HsmSignature, signature::Error> {
        self.sign_blocking(msg)
            .map(HsmSignature)
            .map_err(signature::Error::from_source)
    }
}

/// An [`HsmKey`] whose only signing trait is `signature::AsyncSigner`, signing on tokio's
/// blocking pool: give it to `build_async` / `add_signer_info_async`. (`HsmKey` itself gets
/// `AsyncSigner` from signature's blanket impl over `Signer`, which blocks the calling task.)
#[derive(Clone, Debug)]
pub struct AsyncHsmSigner(pub HsmKey);

impl HsmKey {
    /// This key as a non-blocking `AsyncSigner` for the builders' async paths.
    pub fn async_signer(&self) -> AsyncHsmSigner {
        AsyncHsmSigner(self.clone())
    }
}

impl signature::Keypair for AsyncHsmSigner {
    type VerifyingKey = HsmPublicKey;

    fn verifying_key(&self) -> HsmPublicKey {
        self.0.public_key()
    }
}

impl spki::DynSignatureAlgorithmIdentifier for AsyncHsmSigner {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.0.signature_algorithm())
    }
}

impl signature::AsyncSigner<HsmSignature> for AsyncHsmSigner {
    async fn sign_async(&self, msg: &[u8]) -> Result<HsmSignature, signature::Error> {
        self.0
            .sign(msg)
            .await
            .map(HsmSignature)
            .map_err(signature::Error::from_source)
    }
}
