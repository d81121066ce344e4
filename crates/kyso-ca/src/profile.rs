//! Certificate profiles as a pipeline: **modify** (fill defaults: validity, extensions), then
//! **validate** (input rules: key algorithm and size, subject fields per profile), then — on the
//! built TBSCertificate — **enforce** (final checks: no CA flag on end entities, validity inside the
//! issuer's, critical EKU for the TSA, and so on).
//!
//! [`plan_certificate`] runs modify + validate and returns a [`CertificatePlan`]; `issue` turns the
//! plan into a TBSCertificate with x509-cert's builder and calls [`enforce`] before signing.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use der::asn1::{Ia5String, Null, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::{Certificate, TbsCertificate};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::name::Name;

use crate::keys::{self, KeyError};
use crate::oids;
use crate::subject::{IdentityKind, SubjectError, VnSubject};

const DAY: u64 = 86_400;

/// Why a certificate may not be issued as asked. Stable codes via [`ProfileError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    #[error("unknown certificate profile {name:?} (known: {known})")]
    UnknownProfile { name: String, known: &'static str },
    #[error("subject refused: {0}")]
    Subject(#[from] SubjectError),
    #[error("public key refused: {0}")]
    PublicKey(#[source] KeyError),
    #[error("profile {profile} requires subject field {field}")]
    SubjectFieldRequired {
        profile: ProfileKind,
        field: &'static str,
    },
    #[error("profile {profile} requires an identity number of kind {kinds}")]
    IdentityRequired {
        profile: ProfileKind,
        kinds: &'static str,
    },
    #[error(
        "requested validity of {days} days exceeds the {max_days} days profile {profile} allows"
    )]
    ValidityTooLong {
        profile: ProfileKind,
        days: u32,
        max_days: u32,
    },
    #[error("requested validity must be at least one day")]
    ValidityZero,
    #[error(
        "validity {not_before}..{not_after} is outside the issuer's {issuer_not_before}..{issuer_not_after}"
    )]
    ValidityOutsideIssuer {
        not_before: i64,
        not_after: i64,
        issuer_not_before: i64,
        issuer_not_after: i64,
    },
    #[error("profile {profile} must be self-signed (no issuer) / issued by a CA; got the other")]
    WrongIssuerKind { profile: ProfileKind },
    #[error("issuer {issuer:?} is not a CA certificate able to sign certificates")]
    IssuerNotCa { issuer: String },
    #[error("issuer certificate has no subject key identifier")]
    IssuerWithoutKeyIdentifier { issuer: String },
    #[error(
        "CA name {name:?} must be 1 to 64 characters of a-z, 0-9, '-' or '_' (it appears in URLs)"
    )]
    BadCaName { name: String },
    #[error("public base URL {url:?} must be an absolute http(s) URL without spaces")]
    BadBaseUrl { url: String },
    #[error("profile rule broken in the built certificate: {rule}")]
    Enforcement { rule: String },
    #[error("extension could not be encoded: {reason}")]
    Encoding { reason: String },
}

impl ProfileError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ProfileError::UnknownProfile { .. } => "profile_unknown",
            ProfileError::Subject(e) => e.code(),
            ProfileError::PublicKey(e) => e.code(),
            ProfileError::SubjectFieldRequired { .. } => "profile_subject_field_required",
            ProfileError::IdentityRequired { .. } => "profile_identity_required",
            ProfileError::ValidityTooLong { .. } => "profile_validity_too_long",
            ProfileError::ValidityZero => "profile_validity_zero",
            ProfileError::ValidityOutsideIssuer { .. } => "profile_validity_outside_issuer",
            ProfileError::WrongIssuerKind { .. } => "profile_wrong_issuer_kind",
            ProfileError::IssuerNotCa { .. } => "profile_issuer_not_ca",
            ProfileError::IssuerWithoutKeyIdentifier { .. } => "profile_issuer_without_ski",
            ProfileError::BadCaName { .. } => "profile_bad_ca_name",
            ProfileError::BadBaseUrl { .. } => "profile_bad_base_url",
            ProfileError::Enforcement { .. } => "profile_enforcement",
            ProfileError::Encoding { .. } => "profile_encoding",
        }
    }
}

fn encoding(e: der::Error) -> ProfileError {
    ProfileError::Encoding {
        reason: e.to_string(),
    }
}

/// The certificate profiles kyso issues. Serde and `FromStr` use the snake_case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKind {
    /// A staff member's signing certificate: KU digitalSignature + nonRepudiation, EKU
    /// emailProtection (+ clientAuth on request).
    StaffSigning,
    /// An organisation's digital seal: as staff signing; subject needs O and an MST or MNS.
    OrganisationSeal,
    /// The timestamp authority: KU digitalSignature, EKU timeStamping only, critical.
    Tsa,
    /// The delegated OCSP signer: KU digitalSignature, EKU OCSPSigning, id-pkix-ocsp-nocheck.
    OcspSigner,
    /// An issuing CA under the root: basicConstraints CA pathLen 0, KU keyCertSign + cRLSign.
    SubCa,
    /// A self-signed root: basicConstraints CA, KU keyCertSign + cRLSign.
    Root,
}

const KNOWN_PROFILES: &str = "staff_signing, organisation_seal, tsa, ocsp_signer, sub_ca, root";

impl ProfileKind {
    /// Every profile.
    pub const ALL: [ProfileKind; 6] = [
        ProfileKind::StaffSigning,
        ProfileKind::OrganisationSeal,
        ProfileKind::Tsa,
        ProfileKind::OcspSigner,
        ProfileKind::SubCa,
        ProfileKind::Root,
    ];

    /// The snake_case name (as in JSON).
    pub fn name(self) -> &'static str {
        match self {
            ProfileKind::StaffSigning => "staff_signing",
            ProfileKind::OrganisationSeal => "organisation_seal",
            ProfileKind::Tsa => "tsa",
            ProfileKind::OcspSigner => "ocsp_signer",
            ProfileKind::SubCa => "sub_ca",
            ProfileKind::Root => "root",
        }
    }

    /// Whether certificates of this profile are CA certificates.
    pub fn is_ca(self) -> bool {
        matches!(self, ProfileKind::SubCa | ProfileKind::Root)
    }

    /// Validity used when the order does not say.
    pub fn default_validity_days(self) -> u32 {
        match self {
            ProfileKind::StaffSigning => 730,
            ProfileKind::OrganisationSeal => 1095,
            ProfileKind::Tsa => 1825,
            // Responses signed with a no-check certificate cannot be revoked: keep it short.
            ProfileKind::OcspSigner => 365,
            ProfileKind::SubCa => 3650,
            ProfileKind::Root => 7300,
        }
    }

    /// The longest validity an order may ask for.
    pub fn max_validity_days(self) -> u32 {
        match self {
            ProfileKind::StaffSigning | ProfileKind::OrganisationSeal => 1825,
            ProfileKind::Tsa => 3650,
            ProfileKind::OcspSigner => 730,
            ProfileKind::SubCa => 5475,
            ProfileKind::Root => 9125,
        }
    }
}

impl fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProfileKind {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProfileKind::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| ProfileError::UnknownProfile {
                name: s.chars().take(40).collect(),
                known: KNOWN_PROFILES,
            })
    }
}

/// Deployment settings every profile uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSettings {
    /// Public base URL (e.g. `https://ca.example.gov.vn`): CRL DP `{base}/crl/{ca}.crl`, AIA OCSP
    /// `{base}/ocsp`, AIA caIssuers `{base}/ca/{ca}.crt`.
    pub base_url: String,
    /// An optional certificate-policy OID put in every non-root certificate.
    pub certificate_policy: Option<ObjectIdentifier>,
}

impl ProfileSettings {
    /// Checks and normalises (no trailing slash) the settings.
    pub fn new(
        base_url: &str,
        certificate_policy: Option<ObjectIdentifier>,
    ) -> Result<ProfileSettings, ProfileError> {
        let url = base_url.trim_end_matches('/');
        let bad = || ProfileError::BadBaseUrl {
            url: base_url.chars().take(200).collect(),
        };
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(bad)?;
        if rest.is_empty() || !url.bytes().all(|b| b.is_ascii_graphic()) || url.len() > 200 {
            return Err(bad());
        }
        Ok(ProfileSettings {
            base_url: url.to_owned(),
            certificate_policy,
        })
    }

    pub fn crl_url(&self, ca: &str) -> String {
        format!("{}/crl/{ca}.crl", self.base_url)
    }

    pub fn ca_certificate_url(&self, ca: &str) -> String {
        format!("{}/ca/{ca}.crt", self.base_url)
    }

    pub fn ocsp_url(&self) -> String {
        format!("{}/ocsp", self.base_url)
    }
}

/// Checks a CA name used in URLs and file names.
pub fn check_ca_name(name: &str) -> Result<(), ProfileError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ProfileError::BadCaName {
            name: name.chars().take(64).collect(),
        })
    }
}

/// What a caller orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateOrder {
    pub profile: ProfileKind,
    pub subject: VnSubject,
    /// The key to certify: from a verified CSR or from a key generated on a token.
    pub public_key: SubjectPublicKeyInfoOwned,
    /// Validity in days; `None`: the profile's default, shortened to the issuer's end.
    pub validity_days: Option<u32>,
    /// Add EKU clientAuth (staff signing and organisation seal only; ignored elsewhere).
    pub client_auth: bool,
}

/// The facts about the issuing CA that profiles need, read from its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerView {
    /// The CA's short name (URL slug): `{base}/crl/{name}.crl`.
    pub name: String,
    pub subject: Name,
    /// The issuer's own subject key identifier (becomes our AKI).
    pub key_identifier: Vec<u8>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub public_key: SubjectPublicKeyInfoOwned,
}

impl IssuerView {
    /// Reads a CA certificate: it must have basicConstraints cA, KU keyCertSign (when KU is
    /// present) and a subject key identifier.
    pub fn from_certificate(name: &str, cert: &Certificate) -> Result<IssuerView, ProfileError> {
        check_ca_name(name)?;
        let tbs = cert.tbs_certificate();
        let not_ca = || ProfileError::IssuerNotCa {
            issuer: name.to_owned(),
        };
        let bc = tbs.get_extension::<BasicConstraints>().map_err(encoding)?;
        if !matches!(bc, Some((_, BasicConstraints { ca: true, .. }))) {
            return Err(not_ca());
        }
        if let Some((_, ku)) = tbs.get_extension::<KeyUsage>().map_err(encoding)?
            && !ku.key_cert_sign()
        {
            return Err(not_ca());
        }
        let ski = tbs
            .get_extension::<SubjectKeyIdentifier>()
            .map_err(encoding)?
            .ok_or_else(|| ProfileError::IssuerWithoutKeyIdentifier {
                issuer: name.to_owned(),
            })?
            .1;
        Ok(IssuerView {
            name: name.to_owned(),
            subject: tbs.subject().clone(),
            key_identifier: ski.0.as_bytes().to_vec(),
            not_before: tbs.validity().not_before.to_system_time(),
            not_after: tbs.validity().not_after.to_system_time(),
            public_key: tbs.subject_public_key_info().clone(),
        })
    }
}

/// Everything decided about a certificate before it is built: the output of modify + validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePlan {
    pub profile: ProfileKind,
    /// The normalised subject.
    pub subject: VnSubject,
    pub subject_name: Name,
    pub issuer_name: Name,
    pub public_key: SubjectPublicKeyInfoOwned,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// The subject key identifier put in the certificate.
    pub key_identifier: Vec<u8>,
    /// The authority key identifier (the issuer's SKI; our own for a root).
    pub authority_key_identifier: Vec<u8>,
    /// Extensions in the order they will appear.
    pub extensions: Vec<Extension>,
}

/// Runs modify and validate. `issuer` is `None` exactly for [`ProfileKind::Root`];
/// `now` comes from the injected clock and becomes notBefore (whole seconds).
pub fn plan_certificate(
    order: &CertificateOrder,
    issuer: Option<&IssuerView>,
    settings: &ProfileSettings,
    now: SystemTime,
) -> Result<CertificatePlan, ProfileError> {
    let plan = modify(order, issuer, settings, now)?;
    validate(order, &plan, issuer)?;
    Ok(plan)
}

/// Step 1, modify: fills the defaults (validity, extensions).
fn modify(
    order: &CertificateOrder,
    issuer: Option<&IssuerView>,
    settings: &ProfileSettings,
    now: SystemTime,
) -> Result<CertificatePlan, ProfileError> {
    let profile = order.profile;
    if (profile == ProfileKind::Root) != issuer.is_none() {
        return Err(ProfileError::WrongIssuerKind { profile });
    }
    let subject = order.subject.normalised()?;
    let subject_name = subject.to_name()?;

    let not_before = whole_seconds(now);
    let days = order
        .validity_days
        .unwrap_or(profile.default_validity_days());
    let mut not_after = not_before + Duration::from_secs(u64::from(days) * DAY);
    if order.validity_days.is_none()
        && let Some(issuer) = issuer
        && not_after > issuer.not_after
    {
        // A default validity is shortened to fit the issuer; an explicit one is refused later.
        not_after = issuer.not_after;
    }

    let key_identifier = key_identifier(&order.public_key)?;
    let (issuer_name, authority_key_identifier) = match issuer {
        Some(i) => (i.subject.clone(), i.key_identifier.clone()),
        None => (subject_name.clone(), key_identifier.clone()),
    };
    let extensions = profile_extensions(
        order,
        issuer.map(|i| i.name.as_str()),
        settings,
        &key_identifier,
        &authority_key_identifier,
    )?;
    Ok(CertificatePlan {
        profile,
        subject,
        subject_name,
        issuer_name,
        public_key: order.public_key.clone(),
        not_before,
        not_after,
        key_identifier,
        authority_key_identifier,
        extensions,
    })
}

/// Step 2, validate: the input rules of each profile.
fn validate(
    order: &CertificateOrder,
    plan: &CertificatePlan,
    issuer: Option<&IssuerView>,
) -> Result<(), ProfileError> {
    let profile = order.profile;
    keys::check_public_key(&order.public_key).map_err(ProfileError::PublicKey)?;
    if let Some(days) = order.validity_days {
        if days == 0 {
            return Err(ProfileError::ValidityZero);
        }
        if days > profile.max_validity_days() {
            return Err(ProfileError::ValidityTooLong {
                profile,
                days,
                max_days: profile.max_validity_days(),
            });
        }
    }
    let required = |field: &'static str, present: bool| {
        if present {
            Ok(())
        } else {
            Err(ProfileError::SubjectFieldRequired { profile, field })
        }
    };
    let s = &plan.subject;
    match profile {
        ProfileKind::StaffSigning
        | ProfileKind::OrganisationSeal
        | ProfileKind::Tsa
        | ProfileKind::SubCa
        | ProfileKind::Root => required("O", s.organisation.is_some())?,
        ProfileKind::OcspSigner => {}
    }
    if profile == ProfileKind::OrganisationSeal
        && s.identity(IdentityKind::Mst).is_none()
        && s.identity(IdentityKind::Mns).is_none()
    {
        return Err(ProfileError::IdentityRequired {
            profile,
            kinds: "MST or MNS",
        });
    }
    if let Some(issuer) = issuer {
        check_inside_issuer(plan.not_before, plan.not_after, issuer)?;
    }
    Ok(())
}

fn check_inside_issuer(
    not_before: SystemTime,
    not_after: SystemTime,
    issuer: &IssuerView,
) -> Result<(), ProfileError> {
    if not_before < issuer.not_before || not_after > issuer.not_after {
        return Err(ProfileError::ValidityOutsideIssuer {
            not_before: kyso_clock::unix_seconds(not_before),
            not_after: kyso_clock::unix_seconds(not_after),
            issuer_not_before: kyso_clock::unix_seconds(issuer.not_before),
            issuer_not_after: kyso_clock::unix_seconds(issuer.not_after),
        });
    }
    Ok(())
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    kyso_clock::from_unix_seconds(kyso_clock::unix_seconds(t))
}

/// RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Result<Vec<u8>, ProfileError> {
    use der::referenced::OwnedToRef;
    let ski = SubjectKeyIdentifier::try_from(spki.owned_to_ref()).map_err(encoding)?;
    Ok(ski.0.as_bytes().to_vec())
}

fn extension(
    oid: ObjectIdentifier,
    critical: bool,
    value: &impl Encode,
) -> Result<Extension, ProfileError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(encoding)?).map_err(encoding)?,
    })
}

fn uri(url: String) -> Result<GeneralName, ProfileError> {
    Ok(GeneralName::UniformResourceIdentifier(
        Ia5String::new(&url).map_err(encoding)?,
    ))
}

fn profile_extensions(
    order: &CertificateOrder,
    issuer_name: Option<&str>,
    settings: &ProfileSettings,
    ski: &[u8],
    aki: &[u8],
) -> Result<Vec<Extension>, ProfileError> {
    use KeyUsages::*;
    let profile = order.profile;
    let mut exts = Vec::new();

    let bc = match profile {
        ProfileKind::Root => BasicConstraints {
            ca: true,
            path_len_constraint: None,
        },
        ProfileKind::SubCa => BasicConstraints {
            ca: true,
            path_len_constraint: Some(0),
        },
        _ => BasicConstraints {
            ca: false,
            path_len_constraint: None,
        },
    };
    exts.push(extension(oids::CE_BASIC_CONSTRAINTS, true, &bc)?);

    let ku = match profile {
        ProfileKind::StaffSigning | ProfileKind::OrganisationSeal => {
            KeyUsage(DigitalSignature | NonRepudiation)
        }
        ProfileKind::Tsa | ProfileKind::OcspSigner => KeyUsage(DigitalSignature.into()),
        ProfileKind::SubCa | ProfileKind::Root => KeyUsage(KeyCertSign | CRLSign),
    };
    exts.push(extension(oids::CE_KEY_USAGE, true, &ku)?);

    // EKU built by hand: x509-cert always marks it non-critical, and the TSA needs it critical.
    let eku: Option<(Vec<ObjectIdentifier>, bool)> = match profile {
        ProfileKind::StaffSigning | ProfileKind::OrganisationSeal => {
            let mut usages = vec![oids::KP_EMAIL_PROTECTION];
            if order.client_auth {
                usages.push(oids::KP_CLIENT_AUTH);
            }
            Some((usages, false))
        }
        ProfileKind::Tsa => Some((vec![oids::KP_TIME_STAMPING], true)),
        ProfileKind::OcspSigner => Some((vec![oids::KP_OCSP_SIGNING], false)),
        ProfileKind::SubCa | ProfileKind::Root => None,
    };
    if let Some((usages, critical)) = eku {
        exts.push(extension(
            oids::CE_EXT_KEY_USAGE,
            critical,
            &ExtendedKeyUsage(usages),
        )?);
    }

    exts.push(extension(
        oids::CE_SUBJECT_KEY_IDENTIFIER,
        false,
        &SubjectKeyIdentifier(OctetString::new(ski).map_err(encoding)?),
    )?);
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(aki).map_err(encoding)?),
        ..Default::default()
    };
    exts.push(extension(oids::CE_AUTHORITY_KEY_IDENTIFIER, false, &aki)?);

    if let Some(ca) = issuer_name {
        let dp = DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(
                settings.crl_url(ca)
            )?])),
            reasons: None,
            crl_issuer: None,
        };
        exts.push(extension(
            oids::CE_CRL_DISTRIBUTION_POINTS,
            false,
            &CrlDistributionPoints(vec![dp]),
        )?);
        let mut access = Vec::new();
        // CA certificates are checked by CRL; the OCSP responder speaks for end entities.
        if !profile.is_ca() {
            access.push(AccessDescription {
                access_method: oids::AD_OCSP,
                access_location: uri(settings.ocsp_url())?,
            });
        }
        access.push(AccessDescription {
            access_method: oids::AD_CA_ISSUERS,
            access_location: uri(settings.ca_certificate_url(ca))?,
        });
        exts.push(extension(
            oids::PE_AUTHORITY_INFO_ACCESS,
            false,
            &AuthorityInfoAccessSyntax(access),
        )?);
        if let Some(policy) = settings.certificate_policy {
            let policies = CertificatePolicies(vec![PolicyInformation {
                policy_identifier: policy,
                policy_qualifiers: None,
            }]);
            exts.push(extension(oids::CE_CERTIFICATE_POLICIES, false, &policies)?);
        }
    }
    if profile == ProfileKind::OcspSigner {
        exts.push(extension(oids::PKIX_OCSP_NOCHECK, false, &Null)?);
    }
    Ok(exts)
}

/// Step 3, enforce: final checks on the built TBSCertificate, just before it is signed.
/// `issuer` is `None` for a root.
pub fn enforce(
    tbs: &TbsCertificate,
    profile: ProfileKind,
    issuer: Option<&IssuerView>,
) -> Result<(), ProfileError> {
    let broken = |rule: &str| {
        Err(ProfileError::Enforcement {
            rule: rule.to_owned(),
        })
    };
    let exts = tbs.extensions().map(Vec::as_slice).unwrap_or_default();
    for (i, e) in exts.iter().enumerate() {
        if exts[..i].iter().any(|p| p.extn_id == e.extn_id) {
            return broken("an extension appears twice");
        }
    }
    let find = |oid: ObjectIdentifier| exts.iter().find(|e| e.extn_id == oid);

    let serial = tbs.serial_number().as_bytes();
    if serial.is_empty() || serial.len() > 20 || serial.iter().all(|&b| b == 0) {
        return broken("serial number must be positive and at most 20 octets");
    }
    let not_before = tbs.validity().not_before.to_system_time();
    let not_after = tbs.validity().not_after.to_system_time();
    if not_after <= not_before {
        return broken("notAfter must be after notBefore");
    }

    let bc = match find(oids::CE_BASIC_CONSTRAINTS) {
        Some(e) => Some(BasicConstraints::from_der(e.extn_value.as_bytes()).map_err(encoding)?),
        None => None,
    };
    let is_ca_flag = bc.is_some_and(|b| b.ca);
    let ku = match find(oids::CE_KEY_USAGE) {
        Some(e) => KeyUsage::from_der(e.extn_value.as_bytes()).map_err(encoding)?,
        None => return broken("key usage is required"),
    };
    if profile.is_ca() {
        if !is_ca_flag || !ku.key_cert_sign() {
            return broken("a CA certificate needs basicConstraints cA and keyCertSign");
        }
    } else if is_ca_flag || ku.key_cert_sign() || ku.crl_sign() {
        return broken(
            "an end-entity certificate must not carry the CA flag or keyCertSign/cRLSign",
        );
    }

    let eku = match find(oids::CE_EXT_KEY_USAGE) {
        Some(e) => Some((
            ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
                .map_err(encoding)?
                .0,
            e.critical,
        )),
        None => None,
    };
    let ocsp_eku = Some(vec![oids::KP_OCSP_SIGNING]);
    if profile == ProfileKind::Tsa && eku != Some((vec![oids::KP_TIME_STAMPING], true)) {
        return broken("a TSA certificate needs exactly EKU timeStamping, critical");
    }
    if profile == ProfileKind::OcspSigner {
        if eku.map(|(usages, _)| usages) != ocsp_eku {
            return broken("an OCSP signer certificate needs EKU OCSPSigning");
        }
        if find(oids::PKIX_OCSP_NOCHECK).is_none() {
            return broken("an OCSP signer certificate needs id-pkix-ocsp-nocheck");
        }
    }

    let ski = find(oids::CE_SUBJECT_KEY_IDENTIFIER).ok_or(ProfileError::Enforcement {
        rule: "subject key identifier is required".into(),
    })?;
    let aki = match find(oids::CE_AUTHORITY_KEY_IDENTIFIER) {
        Some(e) => AuthorityKeyIdentifier::from_der(e.extn_value.as_bytes()).map_err(encoding)?,
        None => return broken("authority key identifier is required"),
    };
    let aki_id = aki.key_identifier.as_ref().map(|k| k.as_bytes().to_vec());
    match issuer {
        Some(issuer) => {
            if *tbs.issuer() != issuer.subject {
                return broken("issuer name must be the issuing CA's subject");
            }
            if aki_id.as_deref() != Some(issuer.key_identifier.as_slice()) {
                return broken(
                    "authority key identifier must be the issuing CA's own key identifier",
                );
            }
            check_inside_issuer(not_before, not_after, issuer)?;
        }
        None => {
            if tbs.issuer() != tbs.subject() {
                return broken("a root certificate's issuer must be its subject");
            }
            let own =
                SubjectKeyIdentifier::from_der(ski.extn_value.as_bytes()).map_err(encoding)?;
            if aki_id.as_deref() != Some(own.0.as_bytes()) {
                return broken("a root's authority key identifier must be its own key identifier");
            }
        }
    }
    Ok(())
}
