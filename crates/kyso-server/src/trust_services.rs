//! The trust services at run time: the RFC 3161 timestamp authority, the keys API clients sign
//! with, the trust store of the verifier, and the validation service's receipt signer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use der::{Decode, Encode};
use kyso_cades::{
    CadesSigner, SignatureValidator, TimestampSource, ValidationData, ValidationDataError,
};
use kyso_clock::SharedClock;
use kyso_hsm::{HashAlgorithm, HsmError, Token};
use kyso_store::{CertStatus, CertificateStatusRecord, NewTimestamp, Store, StoreError};
use kyso_tsa::{
    AlwaysTrusted, ClockTrust, HttpTimestampSource, LedgerError, LocalTimestampSource,
    SerialLedger, SystemClockTrust, TimestampAuthority, TimestampRecord, TsaConfig,
};
use kyso_validate::{
    PathValidator, RevocationData, RevocationSource, RevocationSourceError, TrustAnchors,
    ValidationPolicy,
};
use x509_cert::Certificate;

use crate::config::Config;
use crate::error::AppError;
use crate::pki::{Pki, StartupError, certificate_on_token, find_service_key};

/// How long an external TSA may take to answer.
const EXTERNAL_TSA_TIMEOUT: Duration = Duration::from_secs(10);

/// The timestamp authority, the signing keys, the trust store and the receipt signer.
pub struct TrustServices {
    tsa: Arc<TimestampAuthority>,
    timestamps: Arc<dyn TimestampSource>,
    signing: SigningKeys,
    own_ca: Arc<OwnCaData>,
    validator: Arc<SignatureValidator>,
    receipt_signer: CadesSigner,
}

impl std::fmt::Debug for TrustServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustServices")
            .field("tsa", &self.tsa)
            .field("signing_token", &self.signing.token.label())
            .field("validator", &self.validator)
            .finish_non_exhaustive()
    }
}

impl TrustServices {
    /// Builds the services over a loaded [`Pki`]. `signing_token`: the token client keys live on
    /// (`None`: the CA token). `clock_trust`: overrides the configured clock check (tests).
    pub async fn load(
        config: &Config,
        store: Arc<dyn Store>,
        clock: SharedClock,
        pki: &Pki,
        signing_token: Option<Token>,
        clock_trust: Option<Arc<dyn ClockTrust>>,
    ) -> Result<TrustServices, StartupError> {
        let chain = vec![
            pki.issuing().certificate().clone(),
            pki.root().certificate().clone(),
        ];
        let (tsa_key, tsa_certificate) = pki.tsa();
        let tsa_signer = CadesSigner::new(tsa_key.clone(), tsa_certificate.clone(), chain.clone())
            .map_err(|e| bad_certificate("TSA certificate", pki, e))?;
        let trust = clock_trust.unwrap_or_else(|| {
            if config.tsa.require_synchronised_clock {
                Arc::new(SystemClockTrust::new(Duration::from_millis(
                    config.tsa.max_clock_error_millis,
                )))
            } else {
                Arc::new(AlwaysTrusted)
            }
        });
        let ledger = Arc::new(StoreLedger {
            store: store.clone(),
            tsa_key: tsa_key.label().to_owned(),
        });
        let tsa = Arc::new(TimestampAuthority::new(
            tsa_signer,
            tsa_config(config)?,
            clock.clone(),
            ledger,
            trust,
        ));
        let timestamps: Arc<dyn TimestampSource> = match &config.tsa.external_url {
            Some(url) => Arc::new(
                HttpTimestampSource::new(url.clone(), None, EXTERNAL_TSA_TIMEOUT).map_err(|e| {
                    StartupError::Io {
                        what: format!("external TSA {url}"),
                        source: std::io::Error::other(e.to_string()),
                    }
                })?,
            ),
            None => Arc::new(LocalTimestampSource::new(tsa.clone())),
        };

        let validation_key =
            find_service_key(pki.token(), "validation service", &config.keys.validation).await?;
        let validation_certificate =
            certificate_on_token(pki.token(), &validation_key, "validation service").await?;
        let receipt_signer = CadesSigner::new(validation_key, validation_certificate, chain)
            .map_err(|e| bad_certificate("validation-service certificate", pki, e))?;

        let own_ca = Arc::new(OwnCaData {
            store: store.clone(),
            cas: [pki.issuing(), pki.root()]
                .iter()
                .map(|i| (i.name().to_owned(), i.certificate().clone()))
                .collect(),
        });
        let anchors = load_trust_anchors(config, pki)?;
        let policy = ValidationPolicy {
            require_revocation_for_end_entity: config.validation.require_revocation,
            mask_identities: config.validation.mask_identities,
            ..ValidationPolicy::default()
        };
        let validator = Arc::new(
            SignatureValidator::new(Arc::new(PathValidator::new(anchors)), policy)
                .with_revocation_source(own_ca.clone()),
        );
        let signing = SigningKeys {
            token: signing_token.unwrap_or_else(|| pki.token().clone()),
            issuing: pki.issuing().certificate().clone(),
            root: pki.root().certificate().clone(),
            cache_for: config.signing.key_cache_secs,
            cache: Mutex::new(HashMap::new()),
        };
        Ok(TrustServices {
            tsa,
            timestamps,
            signing,
            own_ca,
            validator,
            receipt_signer,
        })
    }

    /// The RFC 3161 authority behind `POST /tsa`.
    pub fn tsa(&self) -> &TimestampAuthority {
        &self.tsa
    }

    /// Where B-T signatures get their timestamps (our TSA, or the configured external one).
    pub fn timestamps(&self) -> &dyn TimestampSource {
        self.timestamps.as_ref()
    }

    /// The keys API clients sign with.
    pub fn signing_keys(&self) -> &SigningKeys {
        &self.signing
    }

    /// Chain and revocation data from kyso's own CA (B-LT signing; verification).
    pub fn own_ca(&self) -> Arc<OwnCaData> {
        self.own_ca.clone()
    }

    /// The signature validator (trust store, policy, our CA as a revocation source).
    pub fn validator(&self) -> &SignatureValidator {
        &self.validator
    }

    /// Signs verification receipts.
    pub fn receipt_signer(&self) -> &CadesSigner {
        &self.receipt_signer
    }
}

fn bad_certificate(what: &str, pki: &Pki, e: kyso_cades::SignError) -> StartupError {
    StartupError::BadCertificate {
        what: what.to_owned(),
        token: pki.token().label().to_owned(),
        reason: e.to_string(),
    }
}

fn tsa_config(config: &Config) -> Result<TsaConfig, StartupError> {
    let oid = |text: &str| {
        der::asn1::ObjectIdentifier::new(text).map_err(|e| {
            StartupError::Config(crate::config::ConfigError::Invalid {
                field: "tsa.policy",
                message: e.to_string(),
            })
        })
    };
    let settings = &config.tsa;
    let mut tsa = TsaConfig::new(oid(&settings.policy)?);
    tsa.accepted_policies = settings
        .accepted_policies
        .iter()
        .map(|p| oid(p))
        .collect::<Result<_, _>>()?;
    tsa.accuracy =
        (settings.accuracy_millis > 0).then(|| Duration::from_millis(settings.accuracy_millis));
    tsa.require_synchronised_clock = settings.require_synchronised_clock;
    tsa.hashes = settings
        .hashes
        .iter()
        .filter_map(|h| kyso_asn1::HashAlgorithm::from_name(h))
        .collect();
    tsa.include_tsa_name = settings.include_tsa_name;
    Ok(tsa)
}

/// The trust store: the deployment's own root, then the Vietnamese bundles turned on, the
/// configured anchor files and folders (every one pinned by fingerprint) and intermediate folders.
fn load_trust_anchors(config: &Config, pki: &Pki) -> Result<TrustAnchors, StartupError> {
    let anchor_error = |e: kyso_validate::AnchorError| {
        StartupError::Config(crate::config::ConfigError::Invalid {
            field: "validation",
            message: e.to_string(),
        })
    };
    let mut anchors = TrustAnchors::new();
    let root_der = pki.root().certificate_der()?;
    anchors
        .add_anchor_der(&root_der, pki.root().name(), None, false)
        .map_err(anchor_error)?;
    let issuing_der = pki.issuing().certificate_der()?;
    anchors
        .add_intermediate_der(&issuing_der, pki.issuing().name())
        .map_err(anchor_error)?;
    for name in &config.validation.bundles {
        let bundle = kyso_validate::bundles::bundle(name).ok_or_else(|| {
            StartupError::Config(crate::config::ConfigError::Invalid {
                field: "validation.bundles",
                message: format!("unknown bundle {name:?}"),
            })
        })?;
        anchors.add_bundle(bundle).map_err(anchor_error)?;
    }
    for file in &config.validation.anchor_files {
        anchors.add_anchor_file(file).map_err(anchor_error)?;
    }
    for folder in &config.validation.anchor_folders {
        let mut folder = folder.clone();
        folder.require_pins = true;
        anchors.add_anchor_folder(&folder).map_err(anchor_error)?;
    }
    for path in &config.validation.intermediate_folders {
        anchors
            .add_intermediate_folder(path)
            .map_err(anchor_error)?;
    }
    Ok(anchors)
}

/// The TSA's serial ledger in the database: a serial is durable, and unique across every node
/// sharing the database, before the reply goes out.
struct StoreLedger {
    store: Arc<dyn Store>,
    tsa_key: String,
}

#[async_trait]
impl SerialLedger for StoreLedger {
    async fn record(&self, ts: &TimestampRecord) -> Result<(), LedgerError> {
        let micros = ts.gen_time.unix_timestamp_nanos() / 1000;
        let record = NewTimestamp {
            serial: ts.serial.clone(),
            gen_time_micros: i64::try_from(micros).map_err(|_| LedgerError::Unavailable {
                reason: "genTime out of range".to_owned(),
            })?,
            policy: ts.policy.clone(),
            hash_algorithm: ts.hash_algorithm.clone(),
            message_imprint: ts.message_imprint.clone(),
            nonce: ts.nonce.clone(),
            token_sha256: ts.token_sha256.clone(),
            tsa_key: self.tsa_key.clone(),
        };
        match self.store.record_timestamp(&record).await {
            Ok(_) => Ok(()),
            Err(StoreError::DuplicateSerial { serial }) => {
                Err(LedgerError::DuplicateSerial { serial_hex: serial })
            }
            Err(e) => Err(LedgerError::Unavailable {
                reason: format!("{} ({})", e, e.code()),
            }),
        }
    }
}

/// Chain certificates and the latest CRLs of kyso's own CAs, from the store: what a B-LT
/// signature embeds, and what the verifier checks our certificates against.
#[derive(Debug)]
pub struct OwnCaData {
    store: Arc<dyn Store>,
    /// CA name and certificate, issuing CA first.
    cas: Vec<(String, Certificate)>,
}

impl OwnCaData {
    /// The name of our CA that issued `certificate`, if any.
    fn issuer_of(&self, certificate: &Certificate) -> Option<&(String, Certificate)> {
        let issuer = certificate.tbs_certificate().issuer();
        self.cas
            .iter()
            .find(|(_, ca)| ca.tbs_certificate().subject() == issuer)
    }

    /// The latest CRL of every CA of ours on the path of `certificates`, with the chain.
    async fn collect(
        &self,
        certificates: &[Certificate],
    ) -> Result<(Vec<Certificate>, Vec<Vec<u8>>), StoreError> {
        let mut chain = Vec::new();
        let mut crls = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        let mut pending: Vec<&Certificate> = certificates.iter().collect();
        while let Some(cert) = pending.pop() {
            let Some((name, ca)) = self.issuer_of(cert) else {
                continue;
            };
            if names.contains(&name.as_str()) {
                continue;
            }
            names.push(name);
            if let Some(crl) = self.store.latest_crl(name).await? {
                crls.push(crl.der);
            }
            chain.push(ca.clone());
            // The CA's own certificate is covered by its issuer's CRL (the root's, for the
            // issuing CA); a self-signed root ends the walk.
            if ca.tbs_certificate().issuer() != ca.tbs_certificate().subject() {
                pending.push(ca);
            }
        }
        Ok((chain, crls))
    }
}

#[async_trait]
impl kyso_cades::ValidationDataSource for OwnCaData {
    async fn validation_data(
        &self,
        chain: &[Certificate],
    ) -> Result<ValidationData, ValidationDataError> {
        let leaf = chain.first().ok_or_else(|| ValidationDataError::Other {
            reason: "no signer certificate".to_owned(),
        })?;
        let (certificates, crls) =
            self.collect(chain)
                .await
                .map_err(|e| ValidationDataError::RevocationUnavailable {
                    subject: leaf.tbs_certificate().subject().to_string(),
                    reason: format!("{} ({})", e, e.code()),
                })?;
        if self.issuer_of(leaf).is_none() {
            return Err(ValidationDataError::Other {
                reason: "the signer certificate was not issued by this service's CA".to_owned(),
            });
        }
        Ok(ValidationData {
            certificates,
            crls,
            ocsp_responses: Vec::new(),
        })
    }
}

#[async_trait]
impl RevocationSource for OwnCaData {
    async fn revocation_data(
        &self,
        certificates: &[Certificate],
    ) -> Result<RevocationData, RevocationSourceError> {
        let (_, crls) =
            self.collect(certificates)
                .await
                .map_err(|e| RevocationSourceError::Unavailable {
                    source_name: "kyso CA store".to_owned(),
                    reason: e.code().to_owned(),
                })?;
        Ok(RevocationData {
            crls,
            ocsp_responses: Vec::new(),
        })
    }
}

/// The keys API clients sign with: keys on the signing token, each with its certificate beside it.
pub struct SigningKeys {
    token: Token,
    issuing: Certificate,
    root: Certificate,
    cache_for: u64,
    /// Shared, not copied: a signer holds its parsed certificates and pre-encoded parts.
    cache: Mutex<HashMap<String, (Arc<CadesSigner>, i64)>>,
}

impl SigningKeys {
    /// The signer for key `label`, from the cache or the token.
    pub async fn signer(&self, label: &str, now: i64) -> Result<Arc<CadesSigner>, AppError> {
        if let Some(signer) = self.cached(label, now) {
            return Ok(signer);
        }
        let key = match self.token.find_key(label).await {
            Ok(key) => key,
            Err(HsmError::KeyNotFound { .. }) => {
                return Err(AppError::NotFound {
                    what: "signing key",
                    id: label.to_owned(),
                });
            }
            Err(e) => return Err(AppError::Hsm(e)),
        };
        let der = self
            .token
            .find_certificate(&key)
            .await
            .map_err(AppError::Hsm)?
            .ok_or_else(|| {
                AppError::conflict(
                    "signing_key_without_certificate",
                    format!("Khóa ký {label} chưa có chứng thư số trên token."),
                    format!("Signing key {label} has no certificate on the token."),
                )
            })?;
        let certificate = Certificate::from_der(&der).map_err(|e| {
            AppError::internal(format!("certificate beside signing key {label}: {e}"))
        })?;
        let chain =
            if certificate.tbs_certificate().issuer() == self.issuing.tbs_certificate().subject() {
                vec![self.issuing.clone(), self.root.clone()]
            } else {
                Vec::new()
            };
        let signer = Arc::new(CadesSigner::new(key, certificate, chain).map_err(|e| {
            AppError::conflict(
                e.code(),
                format!("Khóa ký {label} không khớp với chứng thư số bên cạnh nó."),
                format!("Signing key {label}: {e}"),
            )
        })?);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(label.to_owned(), (signer.clone(), now));
        Ok(signer)
    }

    /// The signer for key `label` if the cache holds it and it is still fresh at `now` (the
    /// token is not asked).
    pub fn cached(&self, label: &str, now: i64) -> Option<Arc<CadesSigner>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (signer, loaded_at) = cache.get(label)?;
        (now.saturating_sub(*loaded_at) < i64::try_from(self.cache_for).unwrap_or(i64::MAX))
            .then(|| signer.clone())
    }

    /// Refuses a signer whose certificate is outside its validity at `now`, not issued by this
    /// service's CA (its status could not be known), or revoked or on hold in the store.
    pub async fn check_status(
        &self,
        store: &dyn Store,
        signer: &CadesSigner,
        now: i64,
    ) -> Result<(), AppError> {
        self.check_validity(signer, now)?;
        let serial = signer.certificate().tbs_certificate().serial_number();
        let status = store.certificate_status(serial.as_bytes()).await?;
        Self::check_read_status(signer, status.as_ref())
    }

    /// [`check_status`](Self::check_status) with the status already read from the store (with
    /// the caller's grant, in one read): the same checks in the same order.
    pub fn check_status_read(
        &self,
        signer: &CadesSigner,
        now: i64,
        status: Option<&CertificateStatusRecord>,
    ) -> Result<(), AppError> {
        self.check_validity(signer, now)?;
        Self::check_read_status(signer, status)
    }

    /// The checks that need no store: validity at `now`, and an issuer whose status we keep.
    fn check_validity(&self, signer: &CadesSigner, now: i64) -> Result<(), AppError> {
        let tbs = signer.certificate().tbs_certificate();
        let serial = || hex::encode(tbs.serial_number().as_bytes());
        let not_before = tbs.validity().not_before.to_unix_duration().as_secs();
        let not_after = tbs.validity().not_after.to_unix_duration().as_secs();
        let now_u = u64::try_from(now).unwrap_or(0);
        if now_u < not_before {
            let serial = serial();
            return Err(AppError::conflict(
                "signing_certificate_not_yet_valid",
                format!("Chứng thư số {serial} của khóa ký chưa có hiệu lực."),
                format!("The signing key's certificate {serial} is not valid yet."),
            ));
        }
        if now_u > not_after {
            let serial = serial();
            return Err(AppError::conflict(
                "signing_certificate_expired",
                format!("Chứng thư số {serial} của khóa ký đã hết hạn."),
                format!("The signing key's certificate {serial} has expired."),
            ));
        }
        if tbs.issuer() != self.issuing.tbs_certificate().subject() {
            let serial = serial();
            return Err(AppError::conflict(
                "signing_certificate_status_unknown",
                format!(
                    "Chứng thư số {serial} không do CA của dịch vụ cấp: không kiểm tra được trạng thái thu hồi."
                ),
                format!(
                    "Certificate {serial} was not issued by this service's CA: its revocation status cannot be checked."
                ),
            ));
        }
        Ok(())
    }

    /// Good in the store, or why not.
    fn check_read_status(
        signer: &CadesSigner,
        status: Option<&CertificateStatusRecord>,
    ) -> Result<(), AppError> {
        let serial = || {
            hex::encode(
                signer
                    .certificate()
                    .tbs_certificate()
                    .serial_number()
                    .as_bytes(),
            )
        };
        match status.map(|s| s.status) {
            Some(CertStatus::Good) => Ok(()),
            Some(CertStatus::Revoked) => {
                let serial = serial();
                Err(AppError::conflict(
                    "signing_certificate_revoked",
                    format!("Chứng thư số {serial} của khóa ký đã bị thu hồi."),
                    format!("The signing key's certificate {serial} is revoked."),
                ))
            }
            Some(CertStatus::Hold) => {
                let serial = serial();
                Err(AppError::conflict(
                    "signing_certificate_on_hold",
                    format!("Chứng thư số {serial} của khóa ký đang bị tạm dừng."),
                    format!("The signing key's certificate {serial} is on hold."),
                ))
            }
            None => {
                let serial = serial();
                Err(AppError::conflict(
                    "signing_certificate_status_unknown",
                    format!("Không tìm thấy chứng thư số {serial} trong sổ cấp phát của CA."),
                    format!("Certificate {serial} is not in the CA's records."),
                ))
            }
        }
    }

    /// The hash a key signs with (what a client-supplied digest must use).
    pub fn hash_of(signer: &CadesSigner) -> HashAlgorithm {
        signer.key().hash()
    }
}

/// DER of a certificate, for responses.
pub fn certificate_der(certificate: &Certificate) -> Result<Vec<u8>, AppError> {
    certificate
        .to_der()
        .map_err(|e| AppError::internal(format!("certificate encoding: {e}")))
}
