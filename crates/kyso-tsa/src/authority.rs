//! The timestamp authority: query in, TimeStampResp out.

use std::sync::Arc;
use std::time::Duration;

use der::asn1::{Int, ObjectIdentifier};
use der::{Encode, Header, Length, Tag};
use kyso_asn1::HashAlgorithm;
use kyso_asn1::oids::ID_CT_TST_INFO;
use kyso_asn1::rfc3161::{
    Accuracy, PkiStatus, PkiStatusInfo, TimeStampReq, TimeStampResp, TstGeneralizedTime, TstInfo,
};
use kyso_cades::{CadesSigner, Content, Level, SignOptions};
use kyso_clock::SharedClock;
use sha2::Digest;
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;

use crate::error::TsaError;
use crate::ledger::{LedgerError, SerialLedger, TimestampRecord};
use crate::trust::ClockTrust;

/// How many fresh serials to try when the ledger reports a duplicate (with 64 random bits per
/// microsecond a second attempt is already astronomically unlikely; more means something is
/// wrong).
const MAX_SERIAL_ATTEMPTS: u32 = 4;

/// A TimeStampResp for systemFailure, used only if encoding a response itself fails.
const SYSTEM_FAILURE_RESPONSE: [u8; 14] = [
    0x30, 0x0c, 0x30, 0x0a, 0x02, 0x01, 0x02, 0x03, 0x05, 0x06, 0x00, 0x00, 0x00, 0x40,
];

/// What the TSA issues and accepts.
#[derive(Clone, Debug)]
pub struct TsaConfig {
    /// The policy put in tokens when the query names none.
    pub policy: ObjectIdentifier,
    /// Further policies a query may ask for (besides `policy`).
    pub accepted_policies: Vec<ObjectIdentifier>,
    /// The accuracy stated in tokens (`None`: no Accuracy field).
    pub accuracy: Option<Duration>,
    /// Refuse with timeNotAvailable while the [`ClockTrust`] says no.
    pub require_synchronised_clock: bool,
    /// Message-imprint hashes accepted (a subset of SHA-256/384/512).
    pub hashes: Vec<HashAlgorithm>,
    /// Put the TSA certificate's subject in TSTInfo.tsa.
    pub include_tsa_name: bool,
    /// Fraction digits of genTime (0 = whole seconds, 3 = milliseconds, at most 6).
    pub gen_time_digits: u8,
}

impl TsaConfig {
    /// Defaults: accuracy 1 s, clock check on, SHA-256/384/512, no TSA name, milliseconds.
    pub fn new(policy: ObjectIdentifier) -> Self {
        Self {
            policy,
            accepted_policies: Vec::new(),
            accuracy: Some(Duration::from_secs(1)),
            require_synchronised_clock: true,
            hashes: HashAlgorithm::ALL.to_vec(),
            include_tsa_name: false,
            gen_time_digits: 3,
        }
    }

    fn accepts_policy(&self, policy: &ObjectIdentifier) -> bool {
        *policy == self.policy || self.accepted_policies.contains(policy)
    }
}

/// A timestamp that was issued and recorded.
#[derive(Clone, Debug)]
pub struct IssuedTimestamp {
    /// The TimeStampToken: ContentInfo(SignedData) DER.
    pub token_der: Vec<u8>,
    pub tst_info: TstInfo,
    /// What the ledger holds for it.
    pub record: TimestampRecord,
}

/// A TimeStampResp and its PKIStatus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampReply {
    /// TimeStampResp DER.
    pub der: Vec<u8>,
    pub status: PkiStatus,
}

/// An RFC 3161 timestamp authority.
pub struct TimestampAuthority {
    signer: CadesSigner,
    config: TsaConfig,
    clock: SharedClock,
    ledger: Arc<dyn SerialLedger>,
    trust: Arc<dyn ClockTrust>,
    tsa_name: Option<GeneralName>,
}

impl std::fmt::Debug for TimestampAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimestampAuthority")
            .field("key", &self.signer.key().label())
            .field("config", &self.config)
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

impl TimestampAuthority {
    pub fn new(
        signer: CadesSigner,
        config: TsaConfig,
        clock: SharedClock,
        ledger: Arc<dyn SerialLedger>,
        trust: Arc<dyn ClockTrust>,
    ) -> Self {
        let tsa_name = config.include_tsa_name.then(|| {
            GeneralName::DirectoryName(signer.certificate().tbs_certificate().subject().clone())
        });
        Self {
            signer,
            config,
            clock,
            ledger,
            trust,
            tsa_name,
        }
    }

    pub fn config(&self) -> &TsaConfig {
        &self.config
    }

    /// The TSA certificate.
    pub fn certificate(&self) -> &Certificate {
        self.signer.certificate()
    }

    /// Answers a DER TimeStampReq with a DER TimeStampResp: a token, or a rejection whose
    /// PKIFailureInfo says why. Never fails.
    pub async fn respond(&self, query_der: &[u8]) -> Vec<u8> {
        self.reply(query_der).await.der
    }

    /// [`respond`](Self::respond), with the reply's PKIStatus beside it (so a caller counting
    /// replies need not parse the reply again).
    pub async fn reply(&self, query_der: &[u8]) -> TimestampReply {
        let result = match TimeStampReq::from_der(query_der) {
            Ok(req) => self.issue(&req).await,
            Err(source) => Err(TsaError::MalformedQuery { source }),
        };
        let response = match result {
            Ok(issued) => granted_response(&issued.token_der).map(|der| TimestampReply {
                der,
                status: PkiStatus::Granted,
            }),
            Err(error) => {
                if error.is_server_side() {
                    tracing::warn!(code = error.code(), %error, "timestamp not issued");
                } else {
                    tracing::debug!(code = error.code(), %error, "timestamp query rejected");
                }
                rejection_response(&error).map(|der| TimestampReply {
                    der,
                    status: PkiStatus::Rejection,
                })
            }
        };
        response.unwrap_or_else(|error| {
            tracing::error!(%error, "encoding a timestamp response failed");
            TimestampReply {
                der: SYSTEM_FAILURE_RESPONSE.to_vec(),
                status: PkiStatus::Rejection,
            }
        })
    }

    /// Checks `req`, then issues, signs and records a timestamp for it.
    pub async fn issue(&self, req: &TimeStampReq) -> Result<IssuedTimestamp, TsaError> {
        let policy = self.check_query(req)?;
        if self.config.require_synchronised_clock {
            self.trust
                .check()
                .map_err(|e| TsaError::ClockUntrusted { reason: e.reason })?;
        }
        for attempt in 1..=MAX_SERIAL_ATTEMPTS {
            let issued = self.sign_once(req, policy).await?;
            match self.ledger.record(&issued.record).await {
                Ok(()) => return Ok(issued),
                Err(LedgerError::DuplicateSerial { serial_hex }) => {
                    tracing::warn!(attempt, serial = %serial_hex, "timestamp serial collision, retrying");
                }
                Err(source) => return Err(TsaError::Ledger { source }),
            }
        }
        Err(TsaError::SerialsExhausted {
            attempts: MAX_SERIAL_ATTEMPTS,
        })
    }

    /// The RFC 3161 checks on a query; gives the policy to use.
    fn check_query(&self, req: &TimeStampReq) -> Result<ObjectIdentifier, TsaError> {
        if req.version != 1 {
            return Err(TsaError::UnsupportedVersion {
                version: req.version,
            });
        }
        let imprint = &req.message_imprint;
        let hash = imprint
            .hash()
            .filter(|h| self.config.hashes.contains(h))
            .ok_or(TsaError::UnsupportedHash {
                oid: imprint.hash_algorithm.oid,
            })?;
        // Absent or NULL parameters only: anything else is not plain SHA-2.
        if imprint
            .hash_algorithm
            .parameters
            .as_ref()
            .is_some_and(|p| !p.is_null())
        {
            return Err(TsaError::UnsupportedHash {
                oid: imprint.hash_algorithm.oid,
            });
        }
        let actual = imprint.hashed_message.as_bytes().len();
        if actual != hash.output_len() {
            return Err(TsaError::ImprintLength {
                hash: hash.name(),
                expected: hash.output_len(),
                actual,
            });
        }
        let policy = match req.req_policy {
            Some(policy) if self.config.accepts_policy(&policy) => policy,
            Some(policy) => return Err(TsaError::UnacceptedPolicy { policy }),
            None => self.config.policy,
        };
        if let Some(extension) = req.extensions.as_ref().and_then(|e| e.first()) {
            return Err(TsaError::UnacceptedExtension {
                oid: extension.extn_id,
            });
        }
        Ok(policy)
    }

    /// One TSTInfo with a fresh serial, signed; not yet recorded.
    async fn sign_once(
        &self,
        req: &TimeStampReq,
        policy: ObjectIdentifier,
    ) -> Result<IssuedTimestamp, TsaError> {
        let now = self.clock.now_utc();
        let serial = time_ordered_serial(now)?;
        let gen_time = TstGeneralizedTime::with_precision(now, self.config.gen_time_digits.min(6));
        let tst_info = TstInfo {
            version: 1,
            policy,
            message_imprint: req.message_imprint.clone(),
            serial_number: Int::new(&serial).map_err(TsaError::encoding("serialNumber"))?,
            gen_time,
            accuracy: self.config.accuracy.map(Accuracy::from_duration),
            ordering: false,
            nonce: req.nonce.clone(),
            tsa: self.tsa_name.clone(),
            extensions: None,
        };
        let tst_der = tst_info.to_der().map_err(TsaError::encoding("TSTInfo"))?;
        let token_der = self
            .sign_tst_info(&tst_der, gen_time.to_offset_date_time(), req.cert_req)
            .await?;
        let record = TimestampRecord {
            serial,
            gen_time: gen_time.to_offset_date_time(),
            policy: policy.to_string(),
            hash_algorithm: req
                .message_imprint
                .hash()
                .map(HashAlgorithm::name)
                .unwrap_or_default()
                .to_owned(),
            message_imprint: req.message_imprint.hashed_message.as_bytes().to_vec(),
            nonce: req.nonce.as_ref().map(|n| n.as_bytes().to_vec()),
            token_sha256: sha2::Sha256::digest(&token_der).to_vec(),
        };
        Ok(IssuedTimestamp {
            token_der,
            tst_info,
            record,
        })
    }

    /// Signs the TSTInfo as CMS SignedData (eContentType id-ct-TSTInfo; content-type,
    /// message-digest, signing-certificate-v2 and signing-time attributes) via kyso-cades.
    async fn sign_tst_info(
        &self,
        tst_der: &[u8],
        gen_time: time::OffsetDateTime,
        cert_req: bool,
    ) -> Result<Vec<u8>, TsaError> {
        let mut options = SignOptions::new(Level::BB, gen_time);
        options.content_type = ID_CT_TST_INFO;
        options.include_chain = true;
        // RFC 3161 2.4.1: without certReq the certificates field MUST NOT be present.
        options.include_certificates = cert_req;
        kyso_cades::sign(
            &self.signer,
            Content::Attached(tst_der),
            &options,
            None,
            None,
        )
        .await
        .map_err(|source| TsaError::Signing { source })
    }
}

/// A positive INTEGER's minimal contents, 16 bytes: `0x40` (top bit clear: positive; not zero:
/// no leading zero byte), `at` as 7 bytes of microseconds since the Unix epoch (enough until the
/// year 4254), then 64 random bits.
///
/// Why time first: the ledger's key is the serial, and serials that grow with time are inserted
/// at the end of its index, one or two pages per batch of timestamps, where random ones land on
/// a different page each, every one of them written to the WAL and checkpointed again. Serials
/// stay unique across nodes through the random half (and the ledger refuses a duplicate).
fn time_ordered_serial(at: time::OffsetDateTime) -> Result<Vec<u8>, TsaError> {
    let micros = u64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(0);
    let mut serial = vec![0u8; 16];
    serial[0] = 0x40;
    serial[1..8].copy_from_slice(&micros.to_be_bytes()[1..]);
    getrandom::fill(&mut serial[8..]).map_err(|e| TsaError::Random {
        reason: e.to_string(),
    })?;
    Ok(serial)
}

/// PKIStatusInfo `{ status granted }`: the same in every granted reply.
const GRANTED_STATUS_INFO: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x00];

/// `TimeStampResp { status granted, timeStampToken }` around the token just made: its DER is
/// copied in as it is, not parsed and encoded again.
fn granted_response(token_der: &[u8]) -> der::Result<Vec<u8>> {
    let length = Length::try_from(GRANTED_STATUS_INFO.len() + token_der.len())?;
    let header = Header::new(Tag::Sequence, length).to_der()?;
    let mut out = Vec::with_capacity(header.len() + usize::try_from(length)?);
    out.extend_from_slice(&header);
    out.extend_from_slice(&GRANTED_STATUS_INFO);
    out.extend_from_slice(token_der);
    Ok(out)
}

fn rejection_response(error: &TsaError) -> der::Result<Vec<u8>> {
    // Internal details (key labels, PKCS#11 codes) stay in the log, not in the reply.
    let text = match error.fail_info() {
        info if info == kyso_asn1::rfc3161::PkiFailureInfo::SYSTEM_FAILURE => {
            format!("system failure ({})", error.code())
        }
        _ => error.to_string(),
    };
    TimeStampResp {
        status: PkiStatusInfo::rejection(error.fail_info(), text),
        time_stamp_token: None,
    }
    .to_der()
}

#[cfg(test)]
#[path = "authority_tests.rs"]
mod tests;
