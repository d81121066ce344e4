//! Issuance: a [`CertificateOrder`] through the profile pipeline, the TBSCertificate built with
//! x509-cert's builder, signed by the issuing CA's key in the HSM.
//!
//! Signing is split in three (finalize, HSM sign, assemble) instead of `build_async`, because the
//! builder turns any signer error into a bare "Failed"; this way the HSM error (token, key, CKR_*)
//! reaches the caller.

use std::sync::Arc;
use std::time::SystemTime;

use der::asn1::BitString;
use der::{Decode, Encode};
use kyso_clock::Clock;
use kyso_hsm::HsmKey;
use spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::{Certificate, TbsCertificate};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::error::CaError;
use crate::prepared::PreparedKey;
use crate::profile::{
    self, CertificateOrder, CertificatePlan, IssuerView, ProfileKind, ProfileSettings,
};
use crate::subject::VnSubject;

/// Length of generated serial numbers, in bytes (RFC 5280 allows up to 20; CA/B asks for 64+ bits).
pub const SERIAL_BYTES: usize = 16;

/// A fresh serial: 16 bytes from the OS random number generator, top bit cleared so the INTEGER
/// is positive and encodes in exactly 16 octets, first byte non-zero. Uniqueness is finally
/// guaranteed by the store's constraint.
///
/// Panics only if the operating system cannot provide random bytes, in which case no CA can
/// safely run; see [`try_random_serial`] for the fallible form.
pub fn random_serial() -> SerialNumber {
    #[allow(clippy::expect_used)]
    // OS RNG failure is not reachable from input and is fatal for a CA
    try_random_serial().expect("the operating system's random number generator failed")
}

/// A serial as lowercase hex without separators (`4fa0…`), the form used in URLs and the store;
/// the DER sign octet is left out, as openssl prints it.
pub fn serial_hex(serial: &SerialNumber) -> String {
    let bytes = serial.as_bytes();
    let significant = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    hex::encode(&bytes[significant..])
}

/// Parses [`serial_hex`]'s form (either case; colons as openssl prints them are accepted).
pub fn parse_serial_hex(text: &str) -> Result<SerialNumber, CaError> {
    let bad = || CaError::BadSerial {
        value: text.chars().take(64).collect(),
    };
    let digits: String = text.trim().chars().filter(|&c| c != ':').collect();
    if digits.is_empty() || digits.len() > 42 {
        return Err(bad());
    }
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits
    };
    let bytes = hex::decode(padded).map_err(|_| bad())?;
    // Leading zero octets are padding, not part of the value.
    let first = bytes.iter().position(|&b| b != 0).ok_or_else(bad)?;
    SerialNumber::new(&bytes[first..]).map_err(|_| bad())
}

/// [`random_serial`] that reports an OS RNG failure instead of panicking.
pub fn try_random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; SERIAL_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| CaError::Encoding {
        what: "serial number",
        reason: format!("OS RNG: {e}"),
    })?;
    bytes[0] &= 0x7f;
    if bytes[0] == 0 {
        bytes[0] = 0x01;
    }
    SerialNumber::new(&bytes).map_err(CaError::encoding("serial number"))
}

/// A CA that signs: its short name (used in URLs), its certificate and its key on the HSM.
#[derive(Debug, Clone)]
pub struct Issuer {
    name: String,
    certificate: Certificate,
    key: HsmKey,
    view: IssuerView,
    /// The CA's public key with its precomputed multiples, for the self-check of every
    /// signature its HSM key makes (shared by clones).
    checker: Arc<PreparedKey>,
}

impl Issuer {
    /// Checks that `certificate` is a CA certificate with a subject key identifier and that `key`
    /// is its key (same SubjectPublicKeyInfo).
    pub fn new(name: &str, certificate: Certificate, key: HsmKey) -> Result<Issuer, CaError> {
        let view = IssuerView::from_certificate(name, &certificate)?;
        if key.public_key_info() != certificate.tbs_certificate().subject_public_key_info() {
            return Err(CaError::IssuerKeyMismatch {
                ca: name.to_owned(),
                token: key.token_label().to_owned(),
                key_label: key.label().to_owned(),
            });
        }
        let checker =
            PreparedKey::new(&view.public_key).map_err(|source| CaError::IssuerKeyRefused {
                ca: name.to_owned(),
                source,
            })?;
        Ok(Issuer {
            name: name.to_owned(),
            certificate,
            key,
            view,
            checker: Arc::new(checker),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn key(&self) -> &HsmKey {
        &self.key
    }

    /// What profiles need to know about this CA.
    pub fn view(&self) -> &IssuerView {
        &self.view
    }

    /// The CA's public key prepared for checking its signatures.
    pub fn prepared_key(&self) -> &PreparedKey {
        &self.checker
    }

    /// This CA's own subject key identifier (the AKI of everything it signs, CRLs included).
    pub fn key_identifier(&self) -> &[u8] {
        &self.view.key_identifier
    }

    /// The CA certificate's DER.
    pub fn certificate_der(&self) -> Result<Vec<u8>, CaError> {
        self.certificate
            .to_der()
            .map_err(CaError::encoding("CA certificate"))
    }
}

/// Signs `message` with `key`, keeping the HSM error and checking the result against
/// `public_key` before it is returned (a wrong key or a misbehaving token must not produce an
/// unverifiable certificate).
pub(crate) async fn sign_checked(
    key: &HsmKey,
    public_key: &PreparedKey,
    ca: &str,
    what: &'static str,
    message: &[u8],
) -> Result<BitString, CaError> {
    let signature = key.sign(message).await.map_err(|source| CaError::Hsm {
        what,
        ca: ca.to_owned(),
        source: Box::new(source),
    })?;
    public_key
        .verify(&key.signature_algorithm(), message, &signature)
        .map_err(|source| CaError::SignatureSelfCheck {
            what,
            ca: ca.to_owned(),
            source,
        })?;
    BitString::from_bytes(&signature).map_err(CaError::encoding(what))
}

pub(crate) fn to_time(t: SystemTime, what: &'static str) -> Result<Time, CaError> {
    Time::try_from(t).map_err(|_| CaError::BadTime {
        what,
        unix: kyso_clock::unix_seconds(t),
    })
}

/// The x509-cert builder profile for one planned certificate: everything was decided by the plan.
struct PlannedProfile {
    subject: Name,
    issuer: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for PlannedProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

/// Builds, enforces and signs one planned certificate; `checker` is the signer's public key.
async fn build_and_sign(
    plan: CertificatePlan,
    serial: SerialNumber,
    signer: &HsmKey,
    signer_name: &str,
    issuer: Option<&IssuerView>,
    checker: &PreparedKey,
) -> Result<Certificate, CaError> {
    let validity = Validity::new(
        to_time(plan.not_before, "certificate notBefore")?,
        to_time(plan.not_after, "certificate notAfter")?,
    );
    let builder_profile = PlannedProfile {
        subject: plan.subject_name.clone(),
        issuer: plan.issuer_name.clone(),
        extensions: plan.extensions.clone(),
    };
    let build_err = |e: x509_cert::builder::Error| CaError::Encoding {
        what: "TBSCertificate",
        reason: e.to_string(),
    };
    let mut builder =
        CertificateBuilder::new(builder_profile, serial, validity, plan.public_key.clone())
            .map_err(build_err)?;
    let tbs_der = Builder::finalize(&mut builder, signer).map_err(build_err)?;
    let tbs = TbsCertificate::from_der(&tbs_der).map_err(CaError::encoding("TBSCertificate"))?;
    profile::enforce(&tbs, plan.profile, issuer)?;
    let signature = sign_checked(signer, checker, signer_name, "certificate", &tbs_der).await?;
    Builder::assemble(builder, signature, signer).map_err(build_err)
}

/// Issues a certificate for `order` (any profile except [`ProfileKind::Root`]): notBefore is the
/// clock's now, the serial is the caller's (see [`random_serial`]; store it first).
pub async fn issue_certificate(
    issuer: &Issuer,
    order: &CertificateOrder,
    settings: &ProfileSettings,
    serial: SerialNumber,
    clock: &dyn Clock,
) -> Result<Certificate, CaError> {
    let plan = profile::plan_certificate(order, Some(issuer.view()), settings, clock.now())?;
    build_and_sign(
        plan,
        serial,
        &issuer.key,
        &issuer.name,
        Some(issuer.view()),
        issuer.prepared_key(),
    )
    .await
}

/// Signs a plan made by [`plan_issue`] for this `issuer` (the server plans first to reserve the
/// serial with the plan's subject and validity, then signs the same plan instead of planning
/// again). Enforcement still runs on the finished TBSCertificate, against this issuer.
pub async fn issue_planned(
    issuer: &Issuer,
    plan: CertificatePlan,
    serial: SerialNumber,
) -> Result<Certificate, CaError> {
    build_and_sign(
        plan,
        serial,
        &issuer.key,
        &issuer.name,
        Some(issuer.view()),
        issuer.prepared_key(),
    )
    .await
}

/// Plans without signing (modify + validate): for a dry run or to show what would be issued.
pub fn plan_issue(
    issuer: &Issuer,
    order: &CertificateOrder,
    settings: &ProfileSettings,
    clock: &dyn Clock,
) -> Result<CertificatePlan, CaError> {
    Ok(profile::plan_certificate(
        order,
        Some(issuer.view()),
        settings,
        clock.now(),
    )?)
}

/// Bootstrap: a self-signed root certificate for `key` (profile [`ProfileKind::Root`]).
/// `name` is the root's short name (for its CRL URL when it later signs sub-CAs).
pub async fn self_signed_root(
    name: &str,
    key: &HsmKey,
    subject: &VnSubject,
    validity_days: Option<u32>,
    settings: &ProfileSettings,
    serial: SerialNumber,
    clock: &dyn Clock,
) -> Result<Certificate, CaError> {
    profile::check_ca_name(name)?;
    let order = CertificateOrder {
        profile: ProfileKind::Root,
        subject: subject.clone(),
        public_key: key.public_key_info().clone(),
        validity_days,
        client_auth: false,
    };
    let plan = profile::plan_certificate(&order, None, settings, clock.now())?;
    // Self-signed: the key checks its own signature.
    let checker =
        PreparedKey::new(&plan.public_key).map_err(|source| CaError::IssuerKeyRefused {
            ca: name.to_owned(),
            source,
        })?;
    build_and_sign(plan, serial, key, name, None, &checker).await
}

/// Bootstrap: an issuing CA certificate (profile [`ProfileKind::SubCa`]) for `public_key`
/// (usually another key on the same token), signed by `root`.
pub async fn issue_sub_ca(
    root: &Issuer,
    subject: &VnSubject,
    public_key: &SubjectPublicKeyInfoOwned,
    validity_days: Option<u32>,
    settings: &ProfileSettings,
    serial: SerialNumber,
    clock: &dyn Clock,
) -> Result<Certificate, CaError> {
    let order = CertificateOrder {
        profile: ProfileKind::SubCa,
        subject: subject.clone(),
        public_key: public_key.clone(),
        validity_days,
        client_auth: false,
    };
    issue_certificate(root, &order, settings, serial, clock).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use der::Decode;
    use kyso_hsm::KeyAlgorithm;
    use x509_cert::ext::pkix::{
        AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints,
        KeyUsage, SubjectKeyIdentifier,
    };

    use super::*;
    use crate::oids;
    use crate::test_pki::{TestPki, openssl, openssl_ok, org_subject, staff_subject};

    fn ext(cert: &Certificate, oid: der::asn1::ObjectIdentifier) -> Option<&Extension> {
        cert.tbs_certificate()
            .extensions()?
            .iter()
            .find(|e| e.extn_id == oid)
    }

    fn eku(cert: &Certificate) -> Option<(Vec<der::asn1::ObjectIdentifier>, bool)> {
        let e = ext(cert, oids::CE_EXT_KEY_USAGE)?;
        let usages =
            x509_cert::ext::pkix::ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).unwrap();
        Some((usages.0, e.critical))
    }

    fn key_usage(cert: &Certificate) -> (KeyUsage, bool) {
        let e = ext(cert, oids::CE_KEY_USAGE).unwrap();
        (
            KeyUsage::from_der(e.extn_value.as_bytes()).unwrap(),
            e.critical,
        )
    }

    fn basic_constraints(cert: &Certificate) -> (BasicConstraints, bool) {
        let e = ext(cert, oids::CE_BASIC_CONSTRAINTS).unwrap();
        (
            BasicConstraints::from_der(e.extn_value.as_bytes()).unwrap(),
            e.critical,
        )
    }

    #[test]
    fn random_serial_is_16_positive_bytes_with_nonzero_first_byte() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let serial = random_serial();
            let bytes = serial.as_bytes();
            assert_eq!(bytes.len(), SERIAL_BYTES);
            assert_ne!(bytes[0], 0);
            assert!(bytes[0] < 0x80, "positive without a 0x00 pad");
            // DER INTEGER: tag, length 16, 16 content octets.
            assert_eq!(serial.to_der().unwrap().len(), 18);
            assert!(seen.insert(bytes.to_vec()));
        }
    }

    #[test]
    fn serial_hex_round_trips_and_rejects_bad_input() {
        for _ in 0..20 {
            let serial = random_serial();
            let text = serial_hex(&serial);
            assert_eq!(text.len(), 32);
            assert_eq!(parse_serial_hex(&text).unwrap(), serial);
            assert_eq!(parse_serial_hex(&text.to_uppercase()).unwrap(), serial);
            assert_eq!(
                parse_serial_hex(&serial.to_string()).unwrap(),
                serial,
                "openssl's colon form"
            );
        }
        assert_eq!(serial_hex(&parse_serial_hex("00ff").unwrap()), "ff");
        assert_eq!(serial_hex(&parse_serial_hex("abc").unwrap()), "0abc");
        for bad in ["", "0", "00", "xyz", "12 34", &"f".repeat(43)] {
            assert_eq!(
                parse_serial_hex(bad).unwrap_err().code(),
                "ca_bad_serial",
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn chain_from_softhsm_keys_verifies_with_openssl() {
        let pki = TestPki::new("ca-chain").await;
        let (leaf, _) = pki
            .issue("staff", ProfileKind::StaffSigning, staff_subject())
            .await;
        pki.write_pem("leaf.pem", &leaf);
        let out = openssl_ok(
            pki.dir.path(),
            &[
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "issuing.pem",
                "leaf.pem",
            ],
        );
        assert!(out.contains("leaf.pem: OK"), "{out}");
        // Without the issuing CA the chain cannot be built: the check is real.
        let (ok, out) = openssl(
            pki.dir.path(),
            &["verify", "-CAfile", "root.pem", "leaf.pem"],
        );
        assert!(!ok, "{out}");
        // The UTF8String subject with diacritics reads back in openssl.
        let subject = openssl_ok(
            pki.dir.path(),
            &[
                "x509",
                "-in",
                "leaf.pem",
                "-noout",
                "-subject",
                "-nameopt",
                "utf8,sep_comma_plus",
            ],
        );
        assert!(subject.contains("CN=Nguyễn Văn An"), "{subject}");
        assert!(subject.contains("UID=CCCD:079212345645"), "{subject}");
        assert!(
            subject.contains("emailAddress=annv@quangngai.gov.vn"),
            "{subject}"
        );
    }

    /// openssl arguments that check `file` chains to the test root for time-stamping.
    fn verify_timestampsign(file: &str) -> [&str; 8] {
        [
            "verify",
            "-purpose",
            "timestampsign",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "issuing.pem",
            file,
        ]
    }

    #[tokio::test]
    async fn tsa_certificate_has_critical_timestamping_eku_and_openssl_accepts_it() {
        let pki = TestPki::new("ca-tsa").await;
        let (tsa, _) = pki
            .issue("tsa", ProfileKind::Tsa, org_subject("kyso TSA"))
            .await;
        assert_eq!(eku(&tsa), Some((vec![oids::KP_TIME_STAMPING], true)));
        let (ku, critical) = key_usage(&tsa);
        assert!(critical && ku.digital_signature() && !ku.non_repudiation() && !ku.key_cert_sign());
        pki.write_pem("tsa.pem", &tsa);
        let out = openssl_ok(pki.dir.path(), &verify_timestampsign("tsa.pem"));
        assert!(out.contains("tsa.pem: OK"), "{out}");
        // A staff certificate is not a TSA certificate for openssl either.
        let (staff, _) = pki
            .issue("staff", ProfileKind::StaffSigning, staff_subject())
            .await;
        pki.write_pem("staff.pem", &staff);
        let (ok, _) = openssl(pki.dir.path(), &verify_timestampsign("staff.pem"));
        assert!(!ok);
    }

    #[tokio::test]
    async fn profile_extensions_have_the_right_bits_and_criticality() {
        let pki = TestPki::new("ca-profiles").await;
        let issuing_ski = pki.issuing.key_identifier().to_vec();

        let (staff, staff_key) = pki
            .issue("staff", ProfileKind::StaffSigning, staff_subject())
            .await;
        let (ku, critical) = key_usage(&staff);
        assert!(critical && ku.digital_signature() && ku.non_repudiation());
        assert!(!ku.key_cert_sign() && !ku.crl_sign() && !ku.key_encipherment());
        assert_eq!(eku(&staff), Some((vec![oids::KP_EMAIL_PROTECTION], false)));
        let (bc, bc_critical) = basic_constraints(&staff);
        assert!(!bc.ca && bc_critical);
        assert!(ext(&staff, oids::PKIX_OCSP_NOCHECK).is_none());

        // SKI is the leaf key's, AKI the issuing CA's own SKI.
        let ski = SubjectKeyIdentifier::from_der(
            ext(&staff, oids::CE_SUBJECT_KEY_IDENTIFIER)
                .unwrap()
                .extn_value
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            ski.0.as_bytes(),
            crate::profile::key_identifier(staff_key.public_key_info()).unwrap()
        );
        let aki = AuthorityKeyIdentifier::from_der(
            ext(&staff, oids::CE_AUTHORITY_KEY_IDENTIFIER)
                .unwrap()
                .extn_value
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(aki.key_identifier.unwrap().as_bytes(), issuing_ski);

        // CRL DP and AIA from the base URL.
        let cdp = CrlDistributionPoints::from_der(
            ext(&staff, oids::CE_CRL_DISTRIBUTION_POINTS)
                .unwrap()
                .extn_value
                .as_bytes(),
        )
        .unwrap();
        assert!(format!("{cdp:?}").contains("http://127.0.0.1:8080/crl/issuing.crl"));
        let aia = AuthorityInfoAccessSyntax::from_der(
            ext(&staff, oids::PE_AUTHORITY_INFO_ACCESS)
                .unwrap()
                .extn_value
                .as_bytes(),
        )
        .unwrap();
        let aia_text = format!("{aia:?}");
        assert!(
            aia_text.contains("http://127.0.0.1:8080/ocsp"),
            "{aia_text}"
        );
        assert!(
            aia_text.contains("http://127.0.0.1:8080/ca/issuing.crt"),
            "{aia_text}"
        );

        let (seal, _) = pki
            .issue(
                "seal",
                ProfileKind::OrganisationSeal,
                org_subject("SỞ Y TẾ"),
            )
            .await;
        let (ku, _) = key_usage(&seal);
        assert!(ku.digital_signature() && ku.non_repudiation());

        let (ocsp, _) = pki
            .issue("ocsp", ProfileKind::OcspSigner, VnSubject::new("kyso OCSP"))
            .await;
        assert_eq!(eku(&ocsp), Some((vec![oids::KP_OCSP_SIGNING], false)));
        let nocheck = ext(&ocsp, oids::PKIX_OCSP_NOCHECK).unwrap();
        assert!(!nocheck.critical);
        assert_eq!(nocheck.extn_value.as_bytes(), &[0x05, 0x00], "NULL");
        let (ku, _) = key_usage(&ocsp);
        assert!(ku.digital_signature() && !ku.non_repudiation());

        // Sub-CA: CA, pathLen 0, keyCertSign + cRLSign, critical; no OCSP URL (CRL only).
        let (bc, critical) = basic_constraints(pki.issuing.certificate());
        assert!(bc.ca && critical);
        assert_eq!(bc.path_len_constraint, Some(0));
        let (ku, critical) = key_usage(pki.issuing.certificate());
        assert!(critical && ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
        let aia = ext(pki.issuing.certificate(), oids::PE_AUTHORITY_INFO_ACCESS).unwrap();
        let aia_text = format!(
            "{:?}",
            AuthorityInfoAccessSyntax::from_der(aia.extn_value.as_bytes()).unwrap()
        );
        assert!(
            !aia_text.contains("/ocsp") && aia_text.contains("/ca/root.crt"),
            "{aia_text}"
        );

        // Root: self-signed, AKI = its own SKI, no CRL DP.
        let root = pki.root.certificate();
        assert_eq!(
            root.tbs_certificate().issuer(),
            root.tbs_certificate().subject()
        );
        let aki = AuthorityKeyIdentifier::from_der(
            ext(root, oids::CE_AUTHORITY_KEY_IDENTIFIER)
                .unwrap()
                .extn_value
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            aki.key_identifier.unwrap().as_bytes(),
            pki.root.key_identifier()
        );
        assert!(ext(root, oids::CE_CRL_DISTRIBUTION_POINTS).is_none());
        let (bc, _) = basic_constraints(root);
        assert!(bc.ca && bc.path_len_constraint.is_none());
    }

    #[tokio::test]
    async fn client_auth_and_certificate_policy_are_added_on_request() {
        let mut pki = TestPki::new("ca-policy").await;
        pki.settings.certificate_policy = Some(der::asn1::ObjectIdentifier::new_unwrap(
            "1.3.6.1.4.1.99999.1.2",
        ));
        let key = pki.key("staff", KeyAlgorithm::EcP384).await;
        let order = CertificateOrder {
            profile: ProfileKind::StaffSigning,
            subject: staff_subject(),
            public_key: key.public_key_info().clone(),
            validity_days: Some(365),
            client_auth: true,
        };
        let cert = issue_certificate(
            &pki.issuing,
            &order,
            &pki.settings,
            random_serial(),
            &pki.clock,
        )
        .await
        .unwrap();
        assert_eq!(
            eku(&cert),
            Some((vec![oids::KP_EMAIL_PROTECTION, oids::KP_CLIENT_AUTH], false))
        );
        pki.write_pem("leaf.pem", &cert);
        let text = openssl_ok(
            pki.dir.path(),
            &["x509", "-in", "leaf.pem", "-noout", "-text"],
        );
        assert!(text.contains("Policy: 1.3.6.1.4.1.99999.1.2"), "{text}");
        assert!(text.contains("TLS Web Client Authentication"), "{text}");
        let validity = cert.tbs_certificate().validity();
        let days = validity.not_after.to_unix_duration() - validity.not_before.to_unix_duration();
        assert_eq!(days, Duration::from_secs(365 * 86_400));
        assert_eq!(
            validity.not_before.to_system_time(),
            kyso_clock::from_unix_seconds(pki.clock.now_unix())
        );
    }

    #[tokio::test]
    async fn csr_from_openssl_is_issued_and_verifies() {
        let pki = TestPki::new("ca-csr").await;
        openssl_ok(
            pki.dir.path(),
            &[
                "req",
                "-new",
                "-nodes",
                "-newkey",
                "rsa:2048",
                "-keyout",
                "k.pem",
                "-out",
                "r.csr",
                "-subj",
                "/CN=ignored",
            ],
        );
        let csr = crate::csr::verify_csr(&std::fs::read(pki.path("r.csr")).unwrap()).unwrap();
        let order = CertificateOrder {
            profile: ProfileKind::StaffSigning,
            subject: staff_subject(),
            public_key: csr.public_key().clone(),
            validity_days: None,
            client_auth: false,
        };
        let cert = issue_certificate(
            &pki.issuing,
            &order,
            &pki.settings,
            random_serial(),
            &pki.clock,
        )
        .await
        .unwrap();
        pki.write_pem("leaf.pem", &cert);
        openssl_ok(
            pki.dir.path(),
            &[
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "issuing.pem",
                "leaf.pem",
            ],
        );
        // The certificate certifies the CSR's key: openssl agrees the private key matches.
        let cert_key = openssl_ok(
            pki.dir.path(),
            &["x509", "-in", "leaf.pem", "-noout", "-pubkey"],
        );
        let csr_key = openssl_ok(pki.dir.path(), &["pkey", "-in", "k.pem", "-pubout"]);
        assert_eq!(cert_key, csr_key);
    }

    #[tokio::test]
    async fn rsa_issuing_ca_with_pss_signs_verifiable_certificates() {
        let pki = TestPki::new("ca-rsa").await;
        let key = pki
            .key("rsa-ca", KeyAlgorithm::Rsa2048)
            .await
            .with_rsa_padding(kyso_hsm::RsaPadding::Pss);
        let cert = issue_sub_ca(
            &pki.root,
            &org_subject("kyso RSA CA"),
            key.public_key_info(),
            None,
            &pki.settings,
            random_serial(),
            &pki.clock,
        )
        .await
        .unwrap();
        let rsa_ca = Issuer::new("rsa-ca", cert, key).unwrap();
        let leaf_key = pki.key("leaf", KeyAlgorithm::EcP256).await;
        let order = CertificateOrder {
            profile: ProfileKind::OrganisationSeal,
            subject: org_subject("SỞ Y TẾ"),
            public_key: leaf_key.public_key_info().clone(),
            validity_days: None,
            client_auth: false,
        };
        let leaf = issue_certificate(&rsa_ca, &order, &pki.settings, random_serial(), &pki.clock)
            .await
            .unwrap();
        assert_eq!(leaf.signature_algorithm().oid, oids::RSASSA_PSS);
        pki.write_pem("rsa-ca.pem", rsa_ca.certificate());
        pki.write_pem("leaf.pem", &leaf);
        openssl_ok(
            pki.dir.path(),
            &[
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "rsa-ca.pem",
                "leaf.pem",
            ],
        );
    }

    #[tokio::test]
    async fn a_signature_that_does_not_verify_is_never_released() {
        let pki = TestPki::new("ca-self-check").await;
        let tbs = b"to be signed".as_slice();
        let signature = sign_checked(
            pki.issuing.key(),
            pki.issuing.prepared_key(),
            "issuing",
            "certificate",
            tbs,
        )
        .await
        .expect("the CA's own key checks out");
        assert!(pki.issuing.key().verify(tbs, signature.raw_bytes()).is_ok());
        // Checked against another key (as if the token had signed with the wrong one): refused,
        // for the P-256 issuing CA (precomputed path) and the P-384 root (generic path).
        for (issuer, algorithm) in [
            (&pki.issuing, KeyAlgorithm::EcP256),
            (&pki.root, KeyAlgorithm::EcP384),
        ] {
            let other = pki.key(&format!("other-{algorithm}"), algorithm).await;
            let wrong = PreparedKey::new(other.public_key_info()).unwrap();
            let err = sign_checked(issuer.key(), &wrong, issuer.name(), "certificate", tbs)
                .await
                .unwrap_err();
            assert_eq!(err.code(), "ca_signature_self_check", "{algorithm}");
        }
    }

    #[tokio::test]
    async fn a_plan_is_signed_as_planned_and_only_by_its_issuer() {
        let pki = TestPki::new("ca-planned").await;
        let key = pki.key("leaf", KeyAlgorithm::EcP256).await;
        let order = CertificateOrder {
            profile: ProfileKind::StaffSigning,
            subject: staff_subject(),
            public_key: key.public_key_info().clone(),
            validity_days: Some(30),
            client_auth: false,
        };
        let plan = plan_issue(&pki.issuing, &order, &pki.settings, &pki.clock).unwrap();
        let serial = random_serial();
        let cert = issue_planned(&pki.issuing, plan.clone(), serial.clone())
            .await
            .unwrap();
        let tbs = cert.tbs_certificate();
        assert_eq!(tbs.serial_number(), &serial);
        assert_eq!(tbs.subject(), &plan.subject_name);
        assert_eq!(tbs.validity().not_before.to_system_time(), plan.not_before);
        assert_eq!(tbs.validity().not_after.to_system_time(), plan.not_after);
        pki.issuing
            .prepared_key()
            .verify(
                cert.signature_algorithm(),
                &tbs.to_der().unwrap(),
                cert.signature().raw_bytes(),
            )
            .unwrap();
        // The issuing CA's plan handed to the root: enforcement refuses it before any signature.
        let err = issue_planned(&pki.root, plan, random_serial())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "profile_enforcement", "{err}");
    }

    #[tokio::test]
    async fn issuer_refuses_a_key_that_is_not_the_certificates() {
        let pki = TestPki::new("ca-mismatch").await;
        let other = pki.key("other", KeyAlgorithm::EcP256).await;
        let err = Issuer::new("issuing", pki.issuing.certificate().clone(), other).unwrap_err();
        assert_eq!(err.code(), "ca_issuer_key_mismatch");
        // A leaf is not a CA.
        let (leaf, leaf_key) = pki
            .issue("leaf", ProfileKind::StaffSigning, staff_subject())
            .await;
        assert_eq!(
            Issuer::new("leaf", leaf, leaf_key).unwrap_err().code(),
            "profile_issuer_not_ca"
        );
    }

    #[tokio::test]
    async fn profile_rules_refuse_bad_orders_with_codes() {
        let pki = TestPki::new("ca-rules").await;
        let key = pki.key("k", KeyAlgorithm::EcP256).await;
        let order = |profile, subject: VnSubject, validity_days| CertificateOrder {
            profile,
            subject,
            public_key: key.public_key_info().clone(),
            validity_days,
            client_auth: false,
        };
        let code = |o: CertificateOrder| {
            plan_issue(&pki.issuing, &o, &pki.settings, &pki.clock)
                .map(|_| ())
                .unwrap_err()
                .code()
        };
        let mut no_tax = org_subject("SỞ Y TẾ");
        no_tax.identities = vec!["CCCD:079212345645".parse().unwrap()];
        assert_eq!(
            code(order(ProfileKind::OrganisationSeal, no_tax, None)),
            "profile_identity_required"
        );
        assert_eq!(
            code(order(ProfileKind::StaffSigning, VnSubject::new("An"), None)),
            "profile_subject_field_required"
        );
        assert_eq!(
            code(order(ProfileKind::StaffSigning, staff_subject(), Some(0))),
            "profile_validity_zero"
        );
        assert_eq!(
            code(order(
                ProfileKind::StaffSigning,
                staff_subject(),
                Some(1826)
            )),
            "profile_validity_too_long"
        );
        assert_eq!(
            code(order(ProfileKind::Root, staff_subject(), None)),
            "profile_wrong_issuer_kind"
        );
        assert_eq!(
            "web_server".parse::<ProfileKind>().unwrap_err().code(),
            "profile_unknown"
        );
        // A 1024-bit RSA key (made by openssl) is refused by the validate step.
        openssl_ok(
            pki.dir.path(),
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1024",
                "-out",
                "weak.pem",
            ],
        );
        openssl_ok(
            pki.dir.path(),
            &[
                "pkey", "-in", "weak.pem", "-pubout", "-outform", "DER", "-out", "weak.der",
            ],
        );
        let weak =
            SubjectPublicKeyInfoOwned::from_der(&std::fs::read(pki.path("weak.der")).unwrap())
                .unwrap();
        let mut weak_order = order(ProfileKind::StaffSigning, staff_subject(), None);
        weak_order.public_key = weak;
        assert_eq!(code(weak_order), "key_too_weak");
        // The issuing CA ends in 10 years: an explicit 5-year certificate later than that is refused,
        // while a default validity is shortened to fit.
        pki.clock.advance(Duration::from_secs(9 * 365 * 86_400));
        assert_eq!(
            code(order(
                ProfileKind::StaffSigning,
                staff_subject(),
                Some(1825)
            )),
            "profile_validity_outside_issuer"
        );
        let plan = plan_issue(
            &pki.issuing,
            &order(ProfileKind::StaffSigning, staff_subject(), None),
            &pki.settings,
            &pki.clock,
        )
        .unwrap();
        assert_eq!(plan.not_after, pki.issuing.view().not_after);
    }

    #[tokio::test]
    async fn enforce_catches_a_ca_flag_on_an_end_entity_and_a_wrong_aki() {
        let pki = TestPki::new("ca-enforce").await;
        // The issuing CA's own TBS, checked as if it were a staff certificate: CA flag refused.
        let tbs = pki.issuing.certificate().tbs_certificate();
        let err = crate::profile::enforce(tbs, ProfileKind::StaffSigning, Some(pki.root.view()))
            .unwrap_err();
        assert_eq!(err.code(), "profile_enforcement");
        assert!(err.to_string().contains("end-entity"), "{err}");
        // Checked against the wrong issuer (itself): issuer name / AKI mismatch.
        let err =
            crate::profile::enforce(tbs, ProfileKind::SubCa, Some(pki.issuing.view())).unwrap_err();
        assert_eq!(err.code(), "profile_enforcement");
        // And the right way round it passes.
        crate::profile::enforce(tbs, ProfileKind::SubCa, Some(pki.root.view())).unwrap();
    }
}
