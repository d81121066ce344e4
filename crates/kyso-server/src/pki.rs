//! The service's own PKI at run time: the CA token, the two CAs, the OCSP signer and the TSA key;
//! issuance in the durable order, CRL regeneration and OCSP answers.

use std::str::FromStr;
use std::time::Duration;

use der::{Decode, Encode};
use kyso_ca::ocsp::CertStatusInfo;
use kyso_ca::{
    CaError, CertStatusSource, CertificateOrder, CrlParams, Issuer, OcspAuthority, OcspResponder,
    ProfileKind, ProfileSettings, StatusLookupError,
};
use kyso_clock::{Clock, ManualClock, SharedClock};
use kyso_hsm::{HsmError, HsmKey, Token};
use kyso_store::{
    CertStatus, CertificateRecord, CertificateReservation, KeyLocation, NewAuditEvent, NewCrl,
    RevocationReason, Store, StoreError,
};
use x509_cert::certificate::Certificate;
use x509_cert::serial_number::SerialNumber;

use crate::config::{Config, KeySpec};
use crate::error::AppError;
use crate::metrics::Metrics;

/// Why the server cannot start (or `kyso init` cannot finish).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("HSM: {0}")]
    Hsm(HsmError),
    #[error(
        "the {role} key {label:?} is missing from token {token:?}: restore it, or run `kyso init` \
         on a new deployment"
    )]
    KeyMissing {
        role: &'static str,
        label: String,
        token: String,
    },
    #[error("{what} is not set up yet: run `kyso init` first")]
    NotInitialised { what: String },
    #[error("the {what} on token {token:?} is not usable: {reason}")]
    BadCertificate {
        what: String,
        token: String,
        reason: String,
    },
    #[error("CA setup failed: {0}")]
    Ca(#[from] CaError),
    #[error("OCSP responder setup failed: {0}")]
    Ocsp(#[from] kyso_ca::OcspError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl StartupError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            StartupError::Config(e) => e.code(),
            StartupError::Store(e) => e.code(),
            StartupError::Hsm(e) => e.code(),
            StartupError::KeyMissing { .. } => "ca_key_missing",
            StartupError::NotInitialised { .. } => "not_initialised",
            StartupError::BadCertificate { .. } => "bad_service_certificate",
            StartupError::Ca(e) => e.code(),
            StartupError::Ocsp(e) => e.code(),
            StartupError::Io { .. } => "io",
        }
    }
}

/// Finds a service key on the CA token; a missing key names itself and the token.
pub async fn find_service_key(
    token: &Token,
    role: &'static str,
    spec: &KeySpec,
) -> Result<HsmKey, StartupError> {
    match token.find_key(&spec.label).await {
        Ok(key) => Ok(key),
        Err(HsmError::KeyNotFound { token, label }) => {
            Err(StartupError::KeyMissing { role, label, token })
        }
        Err(e) => Err(StartupError::Hsm(e)),
    }
}

/// Reads a certificate stored on the token beside `key` (the TSA and OCSP-signer certificates).
pub async fn certificate_on_token(
    token: &Token,
    key: &HsmKey,
    what: &str,
) -> Result<Certificate, StartupError> {
    let der = token
        .find_certificate(key)
        .await
        .map_err(StartupError::Hsm)?
        .ok_or_else(|| StartupError::NotInitialised {
            what: format!("the {what} certificate (beside key {:?})", key.label()),
        })?;
    Certificate::from_der(&der).map_err(|e| StartupError::BadCertificate {
        what: format!("{what} certificate"),
        token: token.label().to_owned(),
        reason: e.to_string(),
    })
}

/// The CA token, the CAs and the OCSP responder.
#[derive(Debug)]
pub struct Pki {
    token: Token,
    settings: ProfileSettings,
    root: Issuer,
    issuing: Issuer,
    responder: OcspResponder,
    ocsp_key_label: String,
    tsa_key: HsmKey,
    tsa_certificate: Certificate,
}

impl Pki {
    /// Loads everything from an initialised token and store. A missing key stops here with its
    /// label and the token's.
    pub async fn load(
        config: &Config,
        store: &dyn Store,
        token: Token,
    ) -> Result<Pki, StartupError> {
        let keys = &config.keys;
        let root_key = find_service_key(&token, "root CA", &keys.root_ca).await?;
        let issuing_key = find_service_key(&token, "issuing CA", &keys.issuing_ca).await?;
        let tsa_key = find_service_key(&token, "TSA", &keys.tsa).await?;
        let ocsp_key = find_service_key(&token, "OCSP signer", &keys.ocsp).await?;
        let root = load_issuer(store, &config.ca.root_name, root_key).await?;
        let issuing = load_issuer(store, &config.ca.issuing_name, issuing_key).await?;
        let ocsp_certificate = certificate_on_token(&token, &ocsp_key, "OCSP signer").await?;
        let tsa_certificate = certificate_on_token(&token, &tsa_key, "TSA").await?;
        let ocsp_key_label = ocsp_key.label().to_owned();
        let authority = OcspAuthority::new(
            issuing.name(),
            issuing.certificate(),
            ocsp_certificate,
            ocsp_key,
        )?;
        let responder = OcspResponder::new(
            vec![authority],
            Duration::from_secs(config.ocsp.response_validity_secs),
        );
        let settings = profile_settings(config)?;
        Ok(Pki {
            token,
            settings,
            root,
            issuing,
            responder,
            ocsp_key_label,
            tsa_key,
            tsa_certificate,
        })
    }

    /// The CA token.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// URLs put into certificates.
    pub fn settings(&self) -> &ProfileSettings {
        &self.settings
    }

    pub fn root(&self) -> &Issuer {
        &self.root
    }

    /// The CA that issues end-entity certificates.
    pub fn issuing(&self) -> &Issuer {
        &self.issuing
    }

    /// A CA by its short name.
    pub fn issuer(&self, name: &str) -> Option<&Issuer> {
        [&self.root, &self.issuing]
            .into_iter()
            .find(|i| i.name() == name)
    }

    pub fn responder(&self) -> &OcspResponder {
        &self.responder
    }

    pub fn ocsp_key_label(&self) -> &str {
        &self.ocsp_key_label
    }

    /// The TSA key and certificate (used by the timestamp service of a later issue).
    pub fn tsa(&self) -> (&HsmKey, &Certificate) {
        (&self.tsa_key, &self.tsa_certificate)
    }

    /// DER of the chain above end-entity certificates: issuing CA, then root.
    pub fn chain_pem(&self) -> Result<String, AppError> {
        let mut pem = String::new();
        for issuer in [&self.issuing, &self.root] {
            pem.push_str(&certificate_pem(&issuer.certificate_der()?)?);
        }
        Ok(pem)
    }
}

/// The profile settings from the configuration.
pub fn profile_settings(config: &Config) -> Result<ProfileSettings, CaError> {
    ProfileSettings::new(&config.public_url, None).map_err(CaError::from)
}

async fn load_issuer(store: &dyn Store, name: &str, key: HsmKey) -> Result<Issuer, StartupError> {
    let record = store
        .get_ca(name)
        .await?
        .ok_or_else(|| StartupError::NotInitialised {
            what: format!("CA {name:?}"),
        })?;
    let certificate = Certificate::from_der(&record.certificate_der).map_err(|e| {
        StartupError::BadCertificate {
            what: format!("certificate of CA {name:?}"),
            token: key.token_label().to_owned(),
            reason: e.to_string(),
        }
    })?;
    Ok(Issuer::new(name, certificate, key)?)
}

/// PEM of a DER certificate.
pub fn certificate_pem(der: &[u8]) -> Result<String, AppError> {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der)
        .map_err(|e| AppError::internal(format!("PEM encoding: {e}")))
}

/// A subject error as an application error (422 with the subject's own code).
pub fn subject_error(e: kyso_ca::SubjectError) -> AppError {
    AppError::Ca(CaError::Subject(e))
}

/// A store serial as an X.509 serial.
pub fn serial_number(bytes: &[u8]) -> Result<SerialNumber, AppError> {
    SerialNumber::new(bytes).map_err(|e| AppError::internal(format!("serial encoding: {e}")))
}

/// A fresh random serial's bytes and its X.509 form.
pub fn fresh_serial() -> Result<(Vec<u8>, SerialNumber), AppError> {
    let serial = kyso_ca::issue::try_random_serial()?;
    Ok((serial.as_bytes().to_vec(), serial))
}

/// What an issuance needs besides the order.
#[derive(Debug, Clone)]
pub struct IssueContext {
    pub staff_id: Option<i64>,
    pub key_location: Option<KeyLocation>,
    pub replaces: Option<Vec<u8>>,
}

/// Issues in the order that never loses a certificate: plan and validate, reserve the serial
/// (durable), sign in the HSM, complete the record (durable). Audit and response are the caller's
/// (see [`issue_audited`] for the completion and its audit record in one transaction).
/// `serial` is the caller's so it can name things (a token key label) after it.
#[allow(clippy::too_many_arguments)] // the issuer, its environment and the order: no natural grouping
pub async fn issue(
    issuer: &Issuer,
    settings: &ProfileSettings,
    store: &dyn Store,
    clock: &SharedClock,
    metrics: &Metrics,
    order: &CertificateOrder,
    serial: (Vec<u8>, SerialNumber),
    context: IssueContext,
) -> Result<(CertificateRecord, Certificate), AppError> {
    let signed = reserve_and_sign(
        issuer, settings, store, clock, metrics, order, serial, context,
    )
    .await?;
    let record = store
        .complete_certificate(&signed.reserved.serial, &signed.der)
        .await?;
    metrics.certificate_issued(order.profile.name());
    Ok((record, signed.certificate))
}

/// [`issue`] whose completion and success audit record are written in one transaction (both or
/// neither, one durable wait instead of two): reserve the serial (durable), sign in the HSM, then
/// complete + audit (durable) before anything is answered. `success_event` builds the audit
/// record from the reservation. A failure is not audited here: the caller records it.
#[allow(clippy::too_many_arguments)] // as `issue`, plus the audit record
pub async fn issue_audited(
    issuer: &Issuer,
    settings: &ProfileSettings,
    store: &dyn Store,
    clock: &SharedClock,
    metrics: &Metrics,
    order: &CertificateOrder,
    serial: (Vec<u8>, SerialNumber),
    context: IssueContext,
    success_event: impl FnOnce(&CertificateRecord) -> NewAuditEvent,
) -> Result<(CertificateRecord, Certificate), AppError> {
    let signed = reserve_and_sign(
        issuer, settings, store, clock, metrics, order, serial, context,
    )
    .await?;
    let event = success_event(&signed.reserved);
    let (record, _audit) = store
        .complete_certificate_audited(&signed.reserved.serial, &signed.der, &event)
        .await
        .inspect_err(|e| {
            tracing::error!(
                action = %event.action,
                target = %event.target,
                error = %e,
                "certificate completion with its audit record failed"
            );
        })?;
    metrics.certificate_issued(order.profile.name());
    Ok((record, signed.certificate))
}

/// A certificate signed for a durable reservation, not yet completed in the store.
struct SignedCertificate {
    reserved: CertificateRecord,
    certificate: Certificate,
    der: Vec<u8>,
}

/// The first half of [`issue`]: plan and validate, reserve the serial (durable), sign in the HSM
/// (the signature is checked before the certificate is returned) and encode.
#[allow(clippy::too_many_arguments)] // as `issue`
async fn reserve_and_sign(
    issuer: &Issuer,
    settings: &ProfileSettings,
    store: &dyn Store,
    clock: &SharedClock,
    metrics: &Metrics,
    order: &CertificateOrder,
    serial: (Vec<u8>, SerialNumber),
    context: IssueContext,
) -> Result<SignedCertificate, AppError> {
    // One instant for the plan, the reservation and the signed certificate.
    let frozen = ManualClock::new(clock.now());
    let plan = kyso_ca::issue::plan_issue(issuer, order, settings, &frozen)?;
    let (serial_bytes, serial) = serial;
    let reserved = store
        .reserve_certificate(&CertificateReservation {
            serial: serial_bytes,
            ca: issuer.name().to_owned(),
            profile: order.profile.name().to_owned(),
            subject: display_subject(&plan.subject),
            staff_id: context.staff_id,
            key_location: context.key_location,
            not_before: kyso_clock::unix_seconds(plan.not_before),
            not_after: kyso_clock::unix_seconds(plan.not_after),
            replaces: context.replaces,
        })
        .await?;
    let certificate = match kyso_ca::issue::issue_planned(issuer, plan, serial).await {
        Ok(c) => c,
        Err(e) => {
            if matches!(e, CaError::Hsm { .. }) {
                metrics.hsm_sign_error(issuer.key().label());
            }
            return Err(e.into());
        }
    };
    let der = certificate
        .to_der()
        .map_err(|e| AppError::internal(format!("certificate encoding: {e}")))?;
    Ok(SignedCertificate {
        reserved,
        certificate,
        der,
    })
}

/// A short human-readable subject for the store and the audit log (the certificate has the real one).
pub fn display_subject(subject: &kyso_ca::VnSubject) -> String {
    let mut parts = vec![format!("CN={}", subject.common_name)];
    if let Some(o) = &subject.organisation {
        parts.push(format!("O={o}"));
    }
    if let Some(ou) = &subject.organisational_unit {
        parts.push(format!("OU={ou}"));
    }
    for id in &subject.identities {
        parts.push(format!("UID={}", id.masked()));
    }
    parts.join(", ")
}

/// Signs a new CRL for `issuer` from the store's revocations, with the next CRL number, and stores
/// it. A newer CRL stored meanwhile by another node wins (the number order is the store's).
pub async fn regenerate_crl(
    issuer: &Issuer,
    store: &dyn Store,
    clock: &dyn Clock,
    next_update_secs: u64,
    metrics: &Metrics,
) -> Result<(), AppError> {
    let revoked = store.list_revoked(issuer.name()).await?;
    let number = store.allocate_crl_number(issuer.name()).await?;
    let mut entries = Vec::with_capacity(revoked.len());
    for entry in &revoked {
        entries.push(kyso_ca::RevokedEntry {
            serial: serial_number(&entry.serial)?,
            revoked_at: kyso_clock::from_unix_seconds(entry.revoked_at),
            reason: entry.reason,
        });
    }
    let this_update = kyso_clock::from_unix_seconds(clock.now_unix());
    let next_update = this_update + Duration::from_secs(next_update_secs);
    let params = CrlParams {
        number: u64::try_from(number)
            .map_err(|_| AppError::internal(format!("negative CRL number {number}")))?,
        this_update,
        next_update,
    };
    let crl = match kyso_ca::build_crl(issuer, params, &entries).await {
        Ok(crl) => crl,
        Err(e) => {
            if matches!(e, CaError::Hsm { .. }) {
                metrics.hsm_sign_error(issuer.key().label());
            }
            return Err(e.into());
        }
    };
    let der = crl
        .to_der()
        .map_err(|e| AppError::internal(format!("CRL encoding: {e}")))?;
    let stored = store
        .store_crl(&NewCrl {
            ca: issuer.name().to_owned(),
            number,
            this_update: kyso_clock::unix_seconds(this_update),
            next_update: kyso_clock::unix_seconds(next_update),
            der,
        })
        .await;
    match stored {
        Ok(_) => {
            metrics.crl_generated(issuer.name());
            Ok(())
        }
        Err(StoreError::CrlNumberNotIncreasing { ca, number, latest }) => {
            tracing::info!(%ca, number, latest, "a newer CRL was stored meanwhile; keeping it");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The store's status as OCSP's: a certificate on hold is revoked with reason certificateHold
/// (RFC 6960 2.2); a serial the store does not know, or of another CA, is unknown.
pub fn ocsp_status(
    ca: &str,
    record: Option<&kyso_store::CertificateStatusRecord>,
) -> CertStatusInfo {
    match record {
        Some(r) if r.ca == ca => match r.status {
            CertStatus::Good => CertStatusInfo::Good,
            CertStatus::Revoked | CertStatus::Hold => CertStatusInfo::Revoked {
                revoked_at: kyso_clock::from_unix_seconds(r.revoked_at.unwrap_or(0)),
                reason: r
                    .revocation_reason
                    .unwrap_or(if r.status == CertStatus::Hold {
                        RevocationReason::CertificateHold
                    } else {
                        RevocationReason::Unspecified
                    }),
            },
        },
        _ => CertStatusInfo::Unknown,
    }
}

/// OCSP's status source over the store, with one status already looked up (the cache check needs
/// it first; no second query).
pub struct StoreStatusSource<'a> {
    pub store: &'a dyn Store,
    pub prefetched: Option<(Vec<u8>, Option<kyso_store::CertificateStatusRecord>)>,
}

impl CertStatusSource for StoreStatusSource<'_> {
    async fn status(
        &self,
        ca: &str,
        serial: &SerialNumber,
    ) -> Result<CertStatusInfo, StatusLookupError> {
        let bytes = serial.as_bytes();
        if let Some((serial, record)) = &self.prefetched
            && serial.as_slice() == bytes
        {
            return Ok(ocsp_status(ca, record.as_ref()));
        }
        match self.store.certificate_status(bytes).await {
            Ok(record) => Ok(ocsp_status(ca, record.as_ref())),
            Err(e) => {
                tracing::error!(error = %e, "OCSP status lookup failed");
                Err(StatusLookupError {
                    reason: e.code().to_owned(),
                    retry: matches!(e, StoreError::Connect { .. } | StoreError::Database { .. }),
                })
            }
        }
    }
}

/// Parses a profile name from a request.
pub fn parse_profile(name: &str) -> Result<ProfileKind, AppError> {
    let profile = ProfileKind::from_str(name).map_err(CaError::from)?;
    if profile.is_ca() || matches!(profile, ProfileKind::Tsa | ProfileKind::OcspSigner) {
        return Err(AppError::unprocessable(
            "profile_not_allowed",
            format!("Không được cấp chứng thư hồ sơ {name} qua API (chỉ dùng khi khởi tạo)."),
            format!("Profile {name} cannot be issued through the API (init only)."),
        ));
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kyso_store::AuditOutcome;

    /// An initialised CA (SoftHSM token, SQLite in a temp dir) and an order for a new key.
    async fn issuing_setup(
        name: &str,
    ) -> (
        tempfile::TempDir,
        std::sync::Arc<dyn Store>,
        Pki,
        SharedClock,
        CertificateOrder,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let token = kyso_hsm::testing::fresh_token(name);
        let config = Config {
            data_dir: dir.path().to_owned(),
            hsm: crate::config::HsmConfig {
                module: kyso_hsm::testing::softhsm_module_path(),
                token_label: token.label().to_owned(),
                ..Default::default()
            },
            ..Config::default()
        };
        let clock = ManualClock::at_unix(1_767_225_600).shared();
        let store = kyso_store::open_with_clock(&config.database_url(), clock.clone())
            .await
            .unwrap();
        crate::init_with(&config, store.clone(), &token, clock.clone())
            .await
            .unwrap();
        let pki = Pki::load(&config, store.as_ref(), token.clone())
            .await
            .unwrap();
        let key = token
            .generate_key("leaf", kyso_hsm::KeyAlgorithm::EcP256)
            .await
            .unwrap();
        let order = CertificateOrder {
            profile: ProfileKind::StaffSigning,
            subject: kyso_ca::VnSubject {
                common_name: "Nguyễn Văn An".into(),
                organisation: Some("ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI".into()),
                identities: vec!["CCCD:079212345645".parse().unwrap()],
                ..Default::default()
            },
            public_key: key.public_key_info().clone(),
            validity_days: None,
            client_auth: false,
        };
        (dir, store, pki, clock, order)
    }

    fn event(target: &str, details: serde_json::Value) -> NewAuditEvent {
        NewAuditEvent {
            actor: "test".into(),
            action: "certificate.issue".into(),
            target: target.into(),
            outcome: AuditOutcome::Success,
            details,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn audited_issuance_stores_the_certificate_and_its_audit_record_together() {
        let (_dir, store, pki, clock, order) = issuing_setup("pki-audited").await;
        let context = IssueContext {
            staff_id: None,
            key_location: None,
            replaces: None,
        };
        let audit_before = store.list_audit(1, 1000).await.unwrap().len();
        let (serial_bytes, serial) = fresh_serial().unwrap();
        let target = hex::encode(&serial_bytes);
        let (record, certificate) = issue_audited(
            pki.issuing(),
            pki.settings(),
            store.as_ref(),
            &clock,
            &Metrics::new(),
            &order,
            (serial_bytes.clone(), serial.clone()),
            context.clone(),
            |reserved| event(&target, serde_json::json!({ "subject": reserved.subject })),
        )
        .await
        .unwrap();
        assert_eq!(certificate.tbs_certificate().serial_number(), &serial);
        assert_eq!(record.der, Some(certificate.to_der().unwrap()));
        assert_eq!(
            store.get_certificate(&serial_bytes).await.unwrap(),
            Some(record.clone())
        );
        let audit = store.list_audit(1, 1000).await.unwrap();
        assert_eq!(audit.len(), audit_before + 1);
        let last = audit.last().unwrap();
        assert_eq!(
            (last.action.as_str(), last.target.as_str()),
            ("certificate.issue", target.as_str())
        );
        assert!(last.details.contains(&record.subject), "{}", last.details);

        // An audit record the store refuses (details over its limit): the certificate is not
        // completed either, and the caller gets the error.
        let (serial_bytes, serial) = fresh_serial().unwrap();
        let target = hex::encode(&serial_bytes);
        let huge = "x".repeat(kyso_store::MAX_AUDIT_DETAILS_LEN + 1);
        let err = issue_audited(
            pki.issuing(),
            pki.settings(),
            store.as_ref(),
            &clock,
            &Metrics::new(),
            &order,
            (serial_bytes.clone(), serial),
            context,
            |_| event(&target, serde_json::Value::String(huge)),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "invalid_input", "{err:?}");
        let reserved = store.get_certificate(&serial_bytes).await.unwrap().unwrap();
        assert!(!reserved.is_issued(), "reserved, never completed");
        assert_eq!(
            store.list_audit(1, 1000).await.unwrap().len(),
            audit_before + 1
        );
        assert!(
            crate::verify_audit_store(store.as_ref())
                .await
                .unwrap()
                .is_intact()
        );
    }

    #[test]
    fn hold_is_revoked_with_certificate_hold_and_other_cas_are_unknown() {
        let record = kyso_store::CertificateStatusRecord {
            ca: "kyso-issuing".into(),
            status: CertStatus::Hold,
            revoked_at: Some(1_700_000_000),
            revocation_reason: Some(RevocationReason::CertificateHold),
            not_after: 1_800_000_000,
            issued: true,
        };
        assert_eq!(
            ocsp_status("kyso-issuing", Some(&record)),
            CertStatusInfo::Revoked {
                revoked_at: kyso_clock::from_unix_seconds(1_700_000_000),
                reason: RevocationReason::CertificateHold,
            }
        );
        assert_eq!(
            ocsp_status("kyso-root", Some(&record)),
            CertStatusInfo::Unknown
        );
        assert_eq!(ocsp_status("kyso-issuing", None), CertStatusInfo::Unknown);
        let good = kyso_store::CertificateStatusRecord {
            status: CertStatus::Good,
            ..record
        };
        assert_eq!(
            ocsp_status("kyso-issuing", Some(&good)),
            CertStatusInfo::Good
        );
    }

    #[test]
    fn only_end_entity_profiles_are_issued_through_the_api() {
        assert_eq!(
            parse_profile("staff_signing").unwrap(),
            ProfileKind::StaffSigning
        );
        assert_eq!(
            parse_profile("organisation_seal").unwrap(),
            ProfileKind::OrganisationSeal
        );
        assert_eq!(
            parse_profile("sub_ca").unwrap_err().code(),
            "profile_not_allowed"
        );
        assert_eq!(parse_profile("nope").unwrap_err().code(), "profile_unknown");
    }
}
