//! `kyso init`: sets up a deployment, idempotently. Creates what is missing (the service keys on
//! the CA token, the root and issuing CA certificates, the OCSP-signer, TSA and validation-service
//! certificates, the first CRLs, the first admin API key) and leaves what exists alone; a second run
//! changes nothing and says so.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use der::{Decode, Encode};
use kyso_ca::{CertificateOrder, Issuer, ProfileKind, ProfileSettings, VnSubject};
use kyso_clock::{ManualClock, SharedClock};
use kyso_hsm::{HsmError, HsmKey, Token};
use kyso_store::{
    AuditOutcome, CaRole, CertificateRecord, CertificateReservation, ClientRole, KeyLocation,
    NewAuditEvent, NewCa, Store,
};
use x509_cert::certificate::Certificate;

use crate::config::{Config, KeySpec};
use crate::metrics::Metrics;
use crate::pki::{StartupError, profile_settings};

/// Audit actor of everything `kyso init` does.
pub const INIT_ACTOR: &str = "kyso-init";

/// What `kyso init` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// Things created in this run, e.g. "key kyso-root-ca (p384) on token kyso-ca".
    pub created: Vec<String>,
    /// Things that were already there.
    pub existing: Vec<String>,
    /// Where the first admin key was written, when it was created in this run.
    pub admin_key_file: Option<PathBuf>,
}

impl InitReport {
    /// Whether this run changed anything.
    pub fn changed(&self) -> bool {
        !self.created.is_empty()
    }
}

impl fmt::Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.changed() {
            writeln!(f, "kyso is already initialised; nothing was changed.")?;
        }
        for item in &self.created {
            writeln!(f, "created: {item}")?;
        }
        for item in &self.existing {
            writeln!(f, "exists:  {item}")?;
        }
        if let Some(path) = &self.admin_key_file {
            writeln!(
                f,
                "The first admin API key is in {} (readable by its owner only).",
                path.display()
            )?;
        }
        Ok(())
    }
}

/// `kyso init` with the configured database, module, token and PIN.
pub async fn init(config: &Config, clock: SharedClock) -> Result<InitReport, StartupError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartupError::Io {
        what: format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        ),
        source,
    })?;
    let store = kyso_store::open_with_clock(&config.database_url(), clock.clone()).await?;
    let (_module, token) = crate::app::open_ca_token(config).await?;
    init_with(config, store, &token, clock).await
}

/// `kyso init` on already opened parts (tests pass a SoftHSM token).
pub async fn init_with(
    config: &Config,
    store: Arc<dyn Store>,
    token: &Token,
    clock: SharedClock,
) -> Result<InitReport, StartupError> {
    let mut report = InitReport::default();
    let settings = profile_settings(config)?;
    let store = store.as_ref();
    let keys = &config.keys;
    let root_key = ensure_key(store, token, &keys.root_ca, &mut report).await?;
    let issuing_key = ensure_key(store, token, &keys.issuing_ca, &mut report).await?;
    let tsa_key = ensure_key(store, token, &keys.tsa, &mut report).await?;
    let ocsp_key = ensure_key(store, token, &keys.ocsp, &mut report).await?;
    let validation_key = ensure_key(store, token, &keys.validation, &mut report).await?;

    let subject = |common_name: &str| VnSubject {
        common_name: common_name.to_owned(),
        organisation: Some(config.ca.organization.clone()),
        province: config.ca.province.clone(),
        ..VnSubject::default()
    };
    let root = ensure_root(
        config,
        store,
        &settings,
        &clock,
        root_key,
        &subject,
        &mut report,
    )
    .await?;
    let issuing = ensure_issuing(
        config,
        store,
        &settings,
        &clock,
        &root,
        issuing_key,
        &subject,
        &mut report,
    )
    .await?;
    let service = [
        (
            ProfileKind::OcspSigner,
            ocsp_key,
            &config.ca.ocsp_common_name,
            config.validity.ocsp_signer_days,
        ),
        (
            ProfileKind::Tsa,
            tsa_key,
            &config.ca.tsa_common_name,
            config.validity.tsa_days,
        ),
        // The validation service signs receipts like a staff member signs documents.
        (
            ProfileKind::StaffSigning,
            validation_key,
            &config.ca.validation_common_name,
            config.validity.validation_days,
        ),
    ];
    for (profile, key, common_name, days) in service {
        ensure_service_certificate(
            store,
            token,
            &settings,
            &clock,
            &issuing,
            BootstrapCert {
                profile,
                key: &key,
                subject: subject(common_name),
                days,
            },
            &mut report,
        )
        .await?;
    }
    let metrics = Metrics::new();
    for issuer in [&root, &issuing] {
        if store.latest_crl(issuer.name()).await?.is_some() {
            report.existing.push(format!("CRL of {}", issuer.name()));
            continue;
        }
        crate::pki::regenerate_crl(
            issuer,
            store,
            clock.as_ref(),
            config.crl.next_update_secs,
            &metrics,
        )
        .await
        .map_err(|e| StartupError::Io {
            what: format!("first CRL of {}", issuer.name()),
            source: std::io::Error::other(format!("{}: {e}", e.code())),
        })?;
        report
            .created
            .push(format!("first CRL of {}", issuer.name()));
    }
    ensure_admin_key(config, store, &mut report).await?;
    Ok(report)
}

async fn audit(
    store: &dyn Store,
    action: &str,
    target: String,
    details: serde_json::Value,
) -> Result<(), StartupError> {
    store
        .append_audit(&NewAuditEvent {
            actor: INIT_ACTOR.to_owned(),
            action: action.to_owned(),
            target,
            outcome: AuditOutcome::Success,
            details,
        })
        .await?;
    Ok(())
}

async fn ensure_key(
    store: &dyn Store,
    token: &Token,
    spec: &KeySpec,
    report: &mut InitReport,
) -> Result<HsmKey, StartupError> {
    match token.find_key(&spec.label).await {
        Ok(key) => {
            if key.algorithm() != spec.algorithm {
                return Err(StartupError::BadCertificate {
                    what: format!("key {:?}", spec.label),
                    token: token.label().to_owned(),
                    reason: format!(
                        "it is {}, the configuration says {}",
                        key.algorithm(),
                        spec.algorithm
                    ),
                });
            }
            report.existing.push(format!(
                "key {} ({}) on token {}",
                spec.label,
                spec.algorithm,
                token.label()
            ));
            Ok(key)
        }
        Err(HsmError::KeyNotFound { .. }) => {
            let key = token
                .generate_key(&spec.label, spec.algorithm)
                .await
                .map_err(StartupError::Hsm)?;
            audit(
                store,
                "key.generate",
                format!("{}/{}", token.label(), spec.label),
                serde_json::json!({ "token": token.label(), "key_label": spec.label, "algorithm": spec.algorithm.to_string() }),
            )
            .await?;
            report.created.push(format!(
                "key {} ({}) on token {}",
                spec.label,
                spec.algorithm,
                token.label()
            ));
            Ok(key)
        }
        Err(e) => Err(StartupError::Hsm(e)),
    }
}

fn location(key: &HsmKey) -> KeyLocation {
    KeyLocation {
        token: key.token_label().to_owned(),
        label: key.label().to_owned(),
    }
}

fn encode(certificate: &Certificate) -> Result<Vec<u8>, StartupError> {
    certificate.to_der().map_err(|e| StartupError::Io {
        what: "certificate encoding".to_owned(),
        source: std::io::Error::other(e.to_string()),
    })
}

fn parse(der: &[u8], what: &str, token: &str) -> Result<Certificate, StartupError> {
    Certificate::from_der(der).map_err(|e| StartupError::BadCertificate {
        what: what.to_owned(),
        token: token.to_owned(),
        reason: e.to_string(),
    })
}

async fn ensure_root(
    config: &Config,
    store: &dyn Store,
    settings: &ProfileSettings,
    clock: &SharedClock,
    key: HsmKey,
    subject: &impl Fn(&str) -> VnSubject,
    report: &mut InitReport,
) -> Result<Issuer, StartupError> {
    let name = &config.ca.root_name;
    if let Some(certificate) = recorded_ca(store, name, "root CA", &key, report).await? {
        return Ok(Issuer::new(name, certificate, key)?);
    }
    // The root has no CA to reserve its serial under before signing: it is signed first and then
    // recorded; nothing has left the machine in between, and a rerun starts it over.
    let frozen = ManualClock::new(clock.now());
    let serial = kyso_ca::issue::try_random_serial()?;
    let certificate = kyso_ca::self_signed_root(
        name,
        &key,
        &subject(&config.ca.root_common_name),
        Some(config.validity.root_ca_days),
        settings,
        serial.clone(),
        &frozen,
    )
    .await?;
    let der = encode(&certificate)?;
    store
        .insert_ca(&NewCa {
            name: name.clone(),
            role: CaRole::Root,
            key: location(&key),
            certificate_der: der.clone(),
            parent: None,
        })
        .await?;
    let validity = certificate.tbs_certificate().validity();
    store
        .reserve_certificate(&CertificateReservation {
            serial: serial.as_bytes().to_vec(),
            ca: name.clone(),
            profile: ProfileKind::Root.name().to_owned(),
            subject: config.ca.root_common_name.clone(),
            staff_id: None,
            key_location: Some(location(&key)),
            not_before: kyso_clock::unix_seconds(validity.not_before.to_system_time()),
            not_after: kyso_clock::unix_seconds(validity.not_after.to_system_time()),
            replaces: None,
        })
        .await?;
    store.complete_certificate(serial.as_bytes(), &der).await?;
    audit(
        store,
        "certificate.issue",
        hex::encode(serial.as_bytes()),
        serde_json::json!({ "profile": "root", "ca": name }),
    )
    .await?;
    report.created.push(format!(
        "root CA {name} (self-signed, {} days)",
        config.validity.root_ca_days
    ));
    Ok(Issuer::new(name, certificate, key)?)
}

#[allow(clippy::too_many_arguments)] // the bootstrap's facts, each needed once
async fn ensure_issuing(
    config: &Config,
    store: &dyn Store,
    settings: &ProfileSettings,
    clock: &SharedClock,
    root: &Issuer,
    key: HsmKey,
    subject: &impl Fn(&str) -> VnSubject,
    report: &mut InitReport,
) -> Result<Issuer, StartupError> {
    let name = &config.ca.issuing_name;
    if let Some(certificate) = recorded_ca(store, name, "issuing CA", &key, report).await? {
        return Ok(Issuer::new(name, certificate, key)?);
    }
    let (record, certificate) = issue_bootstrap(
        root,
        settings,
        store,
        clock,
        BootstrapCert {
            profile: ProfileKind::SubCa,
            key: &key,
            subject: subject(&config.ca.issuing_common_name),
            days: config.validity.issuing_ca_days,
        },
    )
    .await?;
    store
        .insert_ca(&NewCa {
            name: name.clone(),
            role: CaRole::Issuing,
            key: location(&key),
            certificate_der: encode(&certificate)?,
            parent: Some(root.name().to_owned()),
        })
        .await?;
    audit(
        store,
        "certificate.issue",
        hex::encode(&record.serial),
        serde_json::json!({ "profile": "sub_ca", "ca": root.name(), "subject": record.subject }),
    )
    .await?;
    report
        .created
        .push(format!("issuing CA {name} (signed by {})", root.name()));
    Ok(Issuer::new(name, certificate, key)?)
}

/// The CA certificate an earlier run recorded under `name` (`what` is "root CA" or "issuing CA").
async fn recorded_ca(
    store: &dyn Store,
    name: &str,
    what: &str,
    key: &HsmKey,
    report: &mut InitReport,
) -> Result<Option<Certificate>, StartupError> {
    let Some(record) = store.get_ca(name).await? else {
        return Ok(None);
    };
    report.existing.push(format!("{what} {name}"));
    parse(
        &record.certificate_der,
        &format!("{what} certificate"),
        key.token_label(),
    )
    .map(Some)
}

/// A certificate `kyso init` issues for one of its own keys (issuing CA, OCSP signer, TSA).
struct BootstrapCert<'a> {
    profile: ProfileKind,
    key: &'a HsmKey,
    subject: VnSubject,
    days: u32,
}

/// Issues through the same durable order as the API (no staff member, nothing replaced).
async fn issue_bootstrap(
    issuer: &Issuer,
    settings: &ProfileSettings,
    store: &dyn Store,
    clock: &SharedClock,
    cert: BootstrapCert<'_>,
) -> Result<(CertificateRecord, Certificate), StartupError> {
    let order = CertificateOrder {
        profile: cert.profile,
        subject: cert.subject,
        public_key: cert.key.public_key_info().clone(),
        validity_days: Some(cert.days),
        client_auth: false,
    };
    let serial = crate::pki::fresh_serial().map_err(app_to_startup)?;
    crate::pki::issue(
        issuer,
        settings,
        store,
        clock,
        &Metrics::new(),
        &order,
        serial,
        crate::pki::IssueContext {
            staff_id: None,
            key_location: Some(location(cert.key)),
            replaces: None,
        },
    )
    .await
    .map_err(app_to_startup)
}

/// The OCSP-signer, TSA and validation-service certificates live on the token beside their keys (where the server
/// loads them) and in the store like every issued certificate.
async fn ensure_service_certificate(
    store: &dyn Store,
    token: &Token,
    settings: &ProfileSettings,
    clock: &SharedClock,
    issuing: &Issuer,
    cert: BootstrapCert<'_>,
    report: &mut InitReport,
) -> Result<(), StartupError> {
    let what = format!("{} certificate for key {}", cert.profile, cert.key.label());
    if let Some(der) = token
        .find_certificate(cert.key)
        .await
        .map_err(StartupError::Hsm)?
    {
        let existing = parse(&der, &what, token.label())?;
        if existing.tbs_certificate().issuer() == issuing.certificate().tbs_certificate().subject()
        {
            report.existing.push(what);
            return Ok(());
        }
    }
    let key = cert.key;
    let profile = cert.profile;
    let (record, certificate) = issue_bootstrap(issuing, settings, store, clock, cert).await?;
    token
        .store_certificate(key, &encode(&certificate)?)
        .await
        .map_err(StartupError::Hsm)?;
    audit(
        store,
        "certificate.issue",
        hex::encode(&record.serial),
        serde_json::json!({ "profile": profile.name(), "ca": issuing.name(), "subject": record.subject }),
    )
    .await?;
    report.created.push(what);
    Ok(())
}

fn app_to_startup(e: crate::error::AppError) -> StartupError {
    match e {
        crate::error::AppError::Ca(e) => StartupError::Ca(e),
        crate::error::AppError::Store(e) => StartupError::Store(e),
        other => StartupError::Io {
            what: "issuing a service certificate".to_owned(),
            source: std::io::Error::other(format!("{}: {other}", other.code())),
        },
    }
}

/// Creates the first admin key unless an admin exists, and writes it to `admin.key` in the data
/// directory, created with mode 0600 (never overwriting a file).
async fn ensure_admin_key(
    config: &Config,
    store: &dyn Store,
    report: &mut InitReport,
) -> Result<(), StartupError> {
    let admins = store
        .list_api_clients()
        .await?
        .into_iter()
        .filter(|c| c.role == ClientRole::Admin && c.disabled_at.is_none())
        .count();
    if admins > 0 {
        report.existing.push(format!("{admins} admin API key(s)"));
        return Ok(());
    }
    let path = config.admin_key_path();
    let key = crate::auth::NewApiKey::generate();
    // File first: a key that could not be written must not exist in the store.
    write_owner_only(&path, &format!("{}\n", key.key.as_str()))?;
    let record = store
        .create_api_client(&kyso_store::NewApiClient {
            name: "first admin (kyso init)".to_owned(),
            role: ClientRole::Admin,
            key_hash: key.hash.to_vec(),
            key_prefix: key.prefix.clone(),
        })
        .await?;
    audit(
        store,
        "api_key.create",
        format!("client:{}", record.id),
        serde_json::json!({ "name": record.name, "role": "admin", "key_prefix": record.key_prefix }),
    )
    .await?;
    report.created.push(format!(
        "admin API key {}... (client {})",
        record.key_prefix, record.id
    ));
    report.admin_key_file = Some(path);
    Ok(())
}

/// Writes a new file readable and writable by its owner only.
pub fn write_owner_only(path: &Path, contents: &str) -> Result<(), StartupError> {
    let io = |source| StartupError::Io {
        what: format!("cannot write {}", path.display()),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}
