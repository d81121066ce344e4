//! Vietnamese certificate subjects (see `shared/design/VIETNAM.md`).
//!
//! [`VnSubject`] is the input form (JSON from a key officer); [`VnSubject::to_name`] validates,
//! NFC-normalises and encodes it: `C=VN` as PrintableString, `E` as IA5String, everything else as
//! UTF8String, identity numbers as `UID` (0.9.2342.19200300.100.1.1) values `PREFIX:number`.
//! [`read_name`] turns a parsed [`Name`] back into fields, reading the structure, never a DN string.

use std::fmt;
use std::str::FromStr;

use der::asn1::{Any, Ia5StringRef, PrintableStringRef, Utf8StringRef};
use der::{Decode, Encode, Tag, Tagged};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::oids;

/// The passport-number rule for `HC:`: one uppercase ASCII letter followed by exactly 7 digits
/// (Vietnamese passports, e.g. `C1234567`). Written as a regular expression for documentation; the
/// check itself is [`is_passport_number`].
pub const PASSPORT_PATTERN: &str = "^[A-Z][0-9]{7}$";

/// Upper bounds (in characters) from RFC 5280 Appendix A (`ub-*`), so names fit every parser.
const MAX_COMMON_NAME: usize = 64;
const MAX_ORGANISATION: usize = 64;
const MAX_UNIT: usize = 64;
const MAX_LOCALITY: usize = 128;
const MAX_PROVINCE: usize = 128;
const MAX_TITLE: usize = 64;
const MAX_EMAIL: usize = 255;
/// At most this many identity numbers in one subject: real subjects carry one to three.
pub const MAX_IDENTITIES: usize = 8;

/// Errors about subjects and identity numbers. Stable codes via [`SubjectError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    #[error("subject field {field} is required")]
    MissingField { field: &'static str },
    #[error("subject field {field} is empty")]
    EmptyField { field: &'static str },
    #[error("subject field {field} is {chars} characters long, at most {max} allowed")]
    FieldTooLong {
        field: &'static str,
        chars: usize,
        max: usize,
    },
    #[error("subject field {field} contains a control character")]
    ControlCharacter { field: &'static str },
    #[error("email address {value:?} is not a plain ASCII address like name@agency.gov.vn")]
    BadEmail { value: String },
    #[error("identity number {value:?} has no PREFIX: (expected e.g. CCCD:079212345645)")]
    IdentityMissingPrefix { value: String },
    #[error("identity prefix {prefix:?} is unknown (allowed: CCCD, CMND, HC, MST, MNS, BHXH)")]
    IdentityUnknownPrefix { prefix: String },
    #[error("{kind} number {number:?} is invalid: expected {expected}")]
    IdentityBadNumber {
        kind: IdentityKind,
        number: String,
        expected: &'static str,
    },
    #[error("at most {max} identity numbers are allowed, got {count}")]
    TooManyIdentities { count: usize, max: usize },
    #[error("identity number {value} appears twice")]
    DuplicateIdentity { value: String },
    #[error("name attribute {oid} could not be decoded: {reason}")]
    UndecodableAttribute { oid: String, reason: String },
    #[error("subject could not be encoded: {reason}")]
    Encoding { reason: String },
}

impl SubjectError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            SubjectError::MissingField { .. } => "subject_field_missing",
            SubjectError::EmptyField { .. } => "subject_field_empty",
            SubjectError::FieldTooLong { .. } => "subject_field_too_long",
            SubjectError::ControlCharacter { .. } => "subject_control_character",
            SubjectError::BadEmail { .. } => "subject_bad_email",
            SubjectError::IdentityMissingPrefix { .. } => "identity_missing_prefix",
            SubjectError::IdentityUnknownPrefix { .. } => "identity_unknown_prefix",
            SubjectError::IdentityBadNumber { kind, .. } => kind.error_code(),
            SubjectError::TooManyIdentities { .. } => "identity_too_many",
            SubjectError::DuplicateIdentity { .. } => "identity_duplicate",
            SubjectError::UndecodableAttribute { .. } => "subject_undecodable_attribute",
            SubjectError::Encoding { .. } => "subject_encoding",
        }
    }
}

/// The kinds of Vietnamese identity numbers carried in `UID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum IdentityKind {
    /// Căn cước công dân: citizen identity card, 12 digits.
    Cccd,
    /// Chứng minh nhân dân: old identity card, 9 or 12 digits.
    Cmnd,
    /// Hộ chiếu: passport, [`PASSPORT_PATTERN`].
    Hc,
    /// Mã số thuế: tax code, 10 digits, or 10 digits + `-` + 3 digits for a branch.
    Mst,
    /// Mã đơn vị có quan hệ với ngân sách: budget-unit code, 7 digits.
    Mns,
    /// Bảo hiểm xã hội: social-insurance number, 10 digits.
    Bhxh,
}

impl IdentityKind {
    /// Every kind, in display order.
    pub const ALL: [IdentityKind; 6] = [
        IdentityKind::Cccd,
        IdentityKind::Cmnd,
        IdentityKind::Hc,
        IdentityKind::Mst,
        IdentityKind::Mns,
        IdentityKind::Bhxh,
    ];

    /// The prefix written before the colon.
    pub fn prefix(self) -> &'static str {
        match self {
            IdentityKind::Cccd => "CCCD",
            IdentityKind::Cmnd => "CMND",
            IdentityKind::Hc => "HC",
            IdentityKind::Mst => "MST",
            IdentityKind::Mns => "MNS",
            IdentityKind::Bhxh => "BHXH",
        }
    }

    /// What a valid number looks like, for error messages.
    pub fn expected_format(self) -> &'static str {
        match self {
            IdentityKind::Cccd => "12 digits",
            IdentityKind::Cmnd => "9 or 12 digits",
            IdentityKind::Hc => "one uppercase letter and 7 digits (^[A-Z][0-9]{7}$)",
            IdentityKind::Mst => "10 digits, or 10 digits, '-' and 3 digits",
            IdentityKind::Mns => "7 digits",
            IdentityKind::Bhxh => "10 digits",
        }
    }

    fn error_code(self) -> &'static str {
        match self {
            IdentityKind::Cccd => "identity_cccd_invalid",
            IdentityKind::Cmnd => "identity_cmnd_invalid",
            IdentityKind::Hc => "identity_hc_invalid",
            IdentityKind::Mst => "identity_mst_invalid",
            IdentityKind::Mns => "identity_mns_invalid",
            IdentityKind::Bhxh => "identity_bhxh_invalid",
        }
    }

    fn from_prefix(prefix: &str) -> Option<IdentityKind> {
        IdentityKind::ALL.into_iter().find(|k| k.prefix() == prefix)
    }

    /// Whether `number` (the part after the colon) is valid for this kind.
    pub fn accepts(self, number: &str) -> bool {
        match self {
            IdentityKind::Cccd => all_digits(number, 12),
            IdentityKind::Cmnd => all_digits(number, 9) || all_digits(number, 12),
            IdentityKind::Hc => is_passport_number(number),
            IdentityKind::Mst => match number.split_once('-') {
                None => all_digits(number, 10),
                Some((main, branch)) => all_digits(main, 10) && all_digits(branch, 3),
            },
            IdentityKind::Mns => all_digits(number, 7),
            IdentityKind::Bhxh => all_digits(number, 10),
        }
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

fn all_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

/// Checks `number` against [`PASSPORT_PATTERN`].
pub fn is_passport_number(number: &str) -> bool {
    let bytes = number.as_bytes();
    bytes.len() == 8 && bytes[0].is_ascii_uppercase() && bytes[1..].iter().all(u8::is_ascii_digit)
}

/// A validated identity number, written `PREFIX:number` (serde too).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdentityNumber {
    kind: IdentityKind,
    number: String,
}

impl IdentityNumber {
    /// Validates `number` for `kind`.
    pub fn new(kind: IdentityKind, number: &str) -> Result<IdentityNumber, SubjectError> {
        if kind.accepts(number) {
            Ok(IdentityNumber {
                kind,
                number: number.to_owned(),
            })
        } else {
            Err(SubjectError::IdentityBadNumber {
                kind,
                number: truncate_for_error(number),
                expected: kind.expected_format(),
            })
        }
    }

    pub fn kind(&self) -> IdentityKind {
        self.kind
    }

    pub fn number(&self) -> &str {
        &self.number
    }

    /// The masked form for public pages, e.g. `CCCD:0792******45` (see [`mask_identity`]).
    pub fn masked(&self) -> String {
        format!("{}:{}", self.kind.prefix(), mask_digits(&self.number))
    }
}

impl FromStr for IdentityNumber {
    type Err = SubjectError;

    /// Parses `PREFIX:number`; surrounding whitespace is ignored, the prefix is case-sensitive.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        let Some((prefix, number)) = value.split_once(':') else {
            return Err(SubjectError::IdentityMissingPrefix {
                value: truncate_for_error(value),
            });
        };
        let Some(kind) = IdentityKind::from_prefix(prefix) else {
            return Err(SubjectError::IdentityUnknownPrefix {
                prefix: truncate_for_error(prefix),
            });
        };
        IdentityNumber::new(kind, number)
    }
}

impl TryFrom<String> for IdentityNumber {
    type Error = SubjectError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<IdentityNumber> for String {
    fn from(value: IdentityNumber) -> String {
        value.to_string()
    }
}

impl fmt::Display for IdentityNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.prefix(), self.number)
    }
}

/// Errors echo at most this much of the offending input.
fn truncate_for_error(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Masks an identity number for public pages: `CCCD:079212345645` -> `CCCD:0792******45`.
///
/// The prefix stays; of the number, the first 4 and last 2 characters stay when it has at least
/// 8, only the last 2 when it has 5 to 7, none when shorter. Anything without a colon is masked
/// whole. Works on any string, valid or not, and never reveals more than those characters.
pub fn mask_identity(value: &str) -> String {
    match value.split_once(':') {
        Some((prefix, number)) => format!("{prefix}:{}", mask_digits(number)),
        None => mask_digits(value),
    }
}

fn mask_digits(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let n = chars.len();
    let (head, tail) = match n {
        8.. => (4, 2),
        5..=7 => (0, 2),
        _ => (0, 0),
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { *c } else { '*' })
        .collect()
}

/// A Vietnamese subject as a key officer enters it. The country is always `VN`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VnSubject {
    /// CN: full name with diacritics (staff) or the unit's name (seal, TSA, CA).
    pub common_name: String,
    /// ST: province or centrally-run city (tỉnh / thành phố).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    /// L: locality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// O: the agency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// OU: the unit inside the agency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisational_unit: Option<String>,
    /// T: job title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// E: email address (ASCII, IA5String).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// UID values, e.g. `["CCCD:079212345645"]` or `["MST:0400260612", "MNS:1047665"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<IdentityNumber>,
}

impl VnSubject {
    /// A subject with only a common name (more fields are public).
    pub fn new(common_name: impl Into<String>) -> VnSubject {
        VnSubject {
            common_name: common_name.into(),
            ..VnSubject::default()
        }
    }

    /// Trims, NFC-normalises and validates every field. Idempotent.
    pub fn normalised(&self) -> Result<VnSubject, SubjectError> {
        let common_name = text_field("CN", &self.common_name, MAX_COMMON_NAME)?;
        let email = match &self.email {
            Some(e) => Some(email_field(e)?),
            None => None,
        };
        if self.identities.len() > MAX_IDENTITIES {
            return Err(SubjectError::TooManyIdentities {
                count: self.identities.len(),
                max: MAX_IDENTITIES,
            });
        }
        for (i, id) in self.identities.iter().enumerate() {
            if self.identities[..i].contains(id) {
                return Err(SubjectError::DuplicateIdentity { value: id.masked() });
            }
        }
        Ok(VnSubject {
            common_name,
            province: optional_text("ST", &self.province, MAX_PROVINCE)?,
            locality: optional_text("L", &self.locality, MAX_LOCALITY)?,
            organisation: optional_text("O", &self.organisation, MAX_ORGANISATION)?,
            organisational_unit: optional_text("OU", &self.organisational_unit, MAX_UNIT)?,
            title: optional_text("T", &self.title, MAX_TITLE)?,
            email,
            identities: self.identities.clone(),
        })
    }

    /// The first identity number of `kind`, if any.
    pub fn identity(&self, kind: IdentityKind) -> Option<&IdentityNumber> {
        self.identities.iter().find(|id| id.kind == kind)
    }

    /// Validates, normalises and encodes the subject as an X.509 name, in the order
    /// C, ST, L, O, OU, T, CN, UID…, E (one attribute per RDN).
    pub fn to_name(&self) -> Result<Name, SubjectError> {
        let s = self.normalised()?;
        let mut rdns = RdnSequence::default();
        push_atv(&mut rdns, oids::COUNTRY, printable("VN")?)?;
        for (oid, value) in [
            (oids::PROVINCE, &s.province),
            (oids::LOCALITY, &s.locality),
            (oids::ORGANISATION, &s.organisation),
            (oids::ORGANISATIONAL_UNIT, &s.organisational_unit),
            (oids::TITLE, &s.title),
        ] {
            if let Some(value) = value {
                push_atv(&mut rdns, oid, utf8(value)?)?;
            }
        }
        push_atv(&mut rdns, oids::COMMON_NAME, utf8(&s.common_name)?)?;
        for id in &s.identities {
            push_atv(&mut rdns, oids::USER_ID, utf8(&id.to_string())?)?;
        }
        if let Some(email) = &s.email {
            push_atv(&mut rdns, oids::EMAIL_ADDRESS, ia5(email)?)?;
        }
        let der = rdns.to_der().map_err(encoding)?;
        Name::from_der(&der).map_err(encoding)
    }
}

fn encoding(e: der::Error) -> SubjectError {
    SubjectError::Encoding {
        reason: e.to_string(),
    }
}

fn utf8(value: &str) -> Result<Any, SubjectError> {
    Any::encode_from(&Utf8StringRef::new(value).map_err(encoding)?).map_err(encoding)
}

fn printable(value: &str) -> Result<Any, SubjectError> {
    Any::encode_from(&PrintableStringRef::new(value).map_err(encoding)?).map_err(encoding)
}

fn ia5(value: &str) -> Result<Any, SubjectError> {
    Any::encode_from(&Ia5StringRef::new(value).map_err(encoding)?).map_err(encoding)
}

fn push_atv(
    rdns: &mut RdnSequence,
    oid: der::asn1::ObjectIdentifier,
    value: Any,
) -> Result<(), SubjectError> {
    let mut rdn = RelativeDistinguishedName::default();
    rdn.insert(AttributeTypeAndValue { oid, value })
        .map_err(encoding)?;
    rdns.push(rdn);
    Ok(())
}

fn text_field(field: &'static str, value: &str, max: usize) -> Result<String, SubjectError> {
    let value: String = value.trim().nfc().collect();
    if value.is_empty() {
        return Err(SubjectError::EmptyField { field });
    }
    if value.chars().any(char::is_control) {
        return Err(SubjectError::ControlCharacter { field });
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(SubjectError::FieldTooLong { field, chars, max });
    }
    Ok(value)
}

fn optional_text(
    field: &'static str,
    value: &Option<String>,
    max: usize,
) -> Result<Option<String>, SubjectError> {
    value
        .as_deref()
        .map(|v| text_field(field, v, max))
        .transpose()
}

fn email_field(value: &str) -> Result<String, SubjectError> {
    let value = text_field("E", value, MAX_EMAIL)?;
    let bad = || SubjectError::BadEmail {
        value: truncate_for_error(&value),
    };
    let (local, domain) = value.split_once('@').ok_or_else(bad)?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'@' && b != b',')
    };
    if !plain(local) || !plain(domain) || !domain.contains('.') || domain.starts_with('.') {
        return Err(bad());
    }
    Ok(value)
}

/// A name attribute kyso does not model, kept so nothing is silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtherAttribute {
    /// Dotted OID.
    pub oid: String,
    /// The value when it is a string type, else `None`.
    pub value: Option<String>,
}

/// The fields of a parsed X.509 name, read structurally. Lenient: foreign and old certificates
/// (other countries, several OUs, odd UID values) are read, not rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NameFields {
    pub country: Option<String>,
    pub province: Option<String>,
    pub locality: Option<String>,
    pub organisation: Option<String>,
    pub organisational_units: Vec<String>,
    pub common_name: Option<String>,
    pub title: Option<String>,
    pub email: Option<String>,
    /// UID values that follow our identity rules (emptied by [`NameFields::mask_identities`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<IdentityNumber>,
    /// UID values that do not (kept verbatim; masked by [`NameFields::mask_identities`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_uids: Vec<String>,
    /// Every UID value masked, filled by [`NameFields::mask_identities`] for public pages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub masked_identities: Vec<String>,
    /// Repeated single-valued attributes and attributes we do not model.
    pub other: Vec<OtherAttribute>,
}

impl NameFields {
    /// Replaces `identities` and `other_uids` by their masked forms in `masked_identities`.
    pub fn mask_identities(&mut self) {
        let identities = std::mem::take(&mut self.identities);
        let others = std::mem::take(&mut self.other_uids);
        self.masked_identities
            .extend(identities.iter().map(IdentityNumber::masked));
        self.masked_identities
            .extend(others.iter().map(|u| mask_identity(u)));
    }

    /// The subject for re-issuing (renewal): fails when the name does not meet today's input rules.
    pub fn to_subject(&self) -> Result<VnSubject, SubjectError> {
        let subject = VnSubject {
            common_name: self
                .common_name
                .clone()
                .ok_or(SubjectError::MissingField { field: "CN" })?,
            province: self.province.clone(),
            locality: self.locality.clone(),
            organisation: self.organisation.clone(),
            organisational_unit: self.organisational_units.first().cloned(),
            title: self.title.clone(),
            email: self.email.clone(),
            identities: self.identities.clone(),
        };
        subject.normalised()
    }
}

/// Reads a parsed name into [`NameFields`]. Fails only on attribute values that are not valid
/// encodings of their string type.
pub fn read_name(name: &Name) -> Result<NameFields, SubjectError> {
    let mut fields = NameFields::default();
    for atv in name.iter() {
        let text = decode_directory_string(&atv.value);
        let oid = atv.oid;
        let slot = match oid {
            o if o == oids::COUNTRY => Some(&mut fields.country),
            o if o == oids::PROVINCE => Some(&mut fields.province),
            o if o == oids::LOCALITY => Some(&mut fields.locality),
            o if o == oids::ORGANISATION => Some(&mut fields.organisation),
            o if o == oids::COMMON_NAME => Some(&mut fields.common_name),
            o if o == oids::TITLE => Some(&mut fields.title),
            o if o == oids::EMAIL_ADDRESS => Some(&mut fields.email),
            _ => None,
        };
        let text = match text {
            Ok(t) => t,
            Err(DecodeFailure::NotAString) => {
                fields.other.push(OtherAttribute {
                    oid: oid.to_string(),
                    value: None,
                });
                continue;
            }
            Err(DecodeFailure::Invalid(reason)) => {
                return Err(SubjectError::UndecodableAttribute {
                    oid: oid.to_string(),
                    reason,
                });
            }
        };
        match slot {
            Some(slot @ None) => *slot = Some(text),
            Some(Some(_)) => fields.other.push(OtherAttribute {
                oid: oid.to_string(),
                value: Some(text),
            }),
            None if oid == oids::ORGANISATIONAL_UNIT => fields.organisational_units.push(text),
            None if oid == oids::USER_ID => match text.parse::<IdentityNumber>() {
                Ok(id) => fields.identities.push(id),
                Err(_) => fields.other_uids.push(text),
            },
            None => fields.other.push(OtherAttribute {
                oid: oid.to_string(),
                value: Some(text),
            }),
        }
    }
    Ok(fields)
}

enum DecodeFailure {
    NotAString,
    Invalid(String),
}

/// Decodes the DirectoryString choices and IA5String. TeletexString is read as Latin-1, which is
/// what the old tools that emit it meant.
fn decode_directory_string(value: &Any) -> Result<String, DecodeFailure> {
    let bytes = value.value();
    let invalid = |what: &str| DecodeFailure::Invalid(format!("invalid {what}"));
    match value.tag() {
        Tag::Utf8String => std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| invalid("UTF8String")),
        Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            if bytes.is_ascii() {
                Ok(bytes.iter().map(|&b| char::from(b)).collect())
            } else {
                Err(invalid("ASCII string"))
            }
        }
        Tag::TeletexString => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return Err(invalid("BMPString"));
            }
            let units = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|_| invalid("BMPString"))
        }
        _ => Err(DecodeFailure::NotAString),
    }
}

/// Reads a name's attribute types and the ASN.1 string type of each value, in order: for tests and
/// diagnostics (e.g. checking that `C` is a PrintableString).
pub fn attribute_tags(name: &Name) -> Vec<(der::asn1::ObjectIdentifier, Tag)> {
    name.iter().map(|atv| (atv.oid, atv.value.tag())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff() -> VnSubject {
        VnSubject {
            common_name: "Nguyễn Văn An".into(),
            province: Some("Quảng Ngãi".into()),
            locality: Some("Thành phố Quảng Ngãi".into()),
            organisation: Some("ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI".into()),
            organisational_unit: Some("SỞ THÔNG TIN VÀ TRUYỀN THÔNG".into()),
            title: Some("Phó Giám đốc".into()),
            email: Some("annv@quangngai.gov.vn".into()),
            identities: vec!["CCCD:079212345645".parse().unwrap()],
        }
    }

    #[test]
    fn subject_round_trips_with_diacritics_through_der() {
        let name = staff().to_name().unwrap();
        let der = name.to_der().unwrap();
        let back = Name::from_der(&der).unwrap();
        let fields = read_name(&back).unwrap();
        assert_eq!(fields.country.as_deref(), Some("VN"));
        assert_eq!(fields.common_name.as_deref(), Some("Nguyễn Văn An"));
        assert_eq!(
            fields.organisation.as_deref(),
            Some("ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI")
        );
        assert_eq!(
            fields.organisational_units,
            vec!["SỞ THÔNG TIN VÀ TRUYỀN THÔNG".to_string()]
        );
        assert_eq!(fields.to_subject().unwrap(), staff());
    }

    #[test]
    fn subject_string_types_are_printable_utf8_and_ia5() {
        let tags = attribute_tags(&staff().to_name().unwrap());
        let tag_of = |oid| tags.iter().find(|(o, _)| *o == oid).map(|(_, t)| *t);
        assert_eq!(tag_of(oids::COUNTRY), Some(Tag::PrintableString));
        assert_eq!(tag_of(oids::COMMON_NAME), Some(Tag::Utf8String));
        assert_eq!(tag_of(oids::PROVINCE), Some(Tag::Utf8String));
        assert_eq!(tag_of(oids::TITLE), Some(Tag::Utf8String));
        assert_eq!(tag_of(oids::USER_ID), Some(Tag::Utf8String));
        assert_eq!(tag_of(oids::EMAIL_ADDRESS), Some(Tag::Ia5String));
        // One attribute per RDN, C first, E last.
        assert_eq!(tags.first().map(|t| t.0), Some(oids::COUNTRY));
        assert_eq!(tags.last().map(|t| t.0), Some(oids::EMAIL_ADDRESS));
    }

    #[test]
    fn subject_is_nfc_normalised() {
        // "Nguyễn" written with combining marks (NFD) must come out precomposed.
        let decomposed: String = "Nguyễn Văn An".nfd().collect();
        assert_ne!(decomposed, "Nguyễn Văn An");
        let mut s = VnSubject::new(format!("  {decomposed} "));
        s.organisation = Some("SỞ Y TẾ".nfd().collect());
        let n = s.normalised().unwrap();
        assert_eq!(n.common_name, "Nguyễn Văn An");
        assert_eq!(n.organisation.as_deref(), Some("SỞ Y TẾ"));
        let fields = read_name(&s.to_name().unwrap()).unwrap();
        assert_eq!(fields.common_name.as_deref(), Some("Nguyễn Văn An"));
    }

    #[test]
    fn subject_rejects_empty_long_control_and_bad_email() {
        assert_eq!(
            VnSubject::new("  ").to_name().unwrap_err().code(),
            "subject_field_empty"
        );
        assert_eq!(
            VnSubject::new("a".repeat(65)).to_name().unwrap_err().code(),
            "subject_field_too_long"
        );
        assert_eq!(
            VnSubject::new("An\u{0}").to_name().unwrap_err().code(),
            "subject_control_character"
        );
        for bad in [
            "annv",
            "an nv@x.vn",
            "annv@",
            "@x.vn",
            "annv@localhost",
            "ân@x.vn",
        ] {
            let mut s = VnSubject::new("An");
            s.email = Some(bad.into());
            assert_eq!(
                s.to_name().unwrap_err().code(),
                "subject_bad_email",
                "{bad}"
            );
        }
    }

    #[test]
    fn subject_json_input_validates_identities() {
        let ok: VnSubject = serde_json::from_str(
            r#"{"common_name":"SỞ Y TẾ","province":"Đà Nẵng","organisation":"ỦY BAN NHÂN DÂN THÀNH PHỐ ĐÀ NẴNG","identities":["MST:0400260612","MNS:1047665"]}"#,
        )
        .unwrap();
        assert_eq!(
            ok.identity(IdentityKind::Mns).map(|i| i.number()),
            Some("1047665")
        );
        let err =
            serde_json::from_str::<VnSubject>(r#"{"common_name":"A","identities":["CCCD:12"]}"#)
                .unwrap_err();
        assert!(err.to_string().contains("CCCD number"), "{err}");
        assert!(
            serde_json::from_str::<VnSubject>(r#"{"common_name":"A","country":"US"}"#).is_err()
        );
    }

    #[test]
    fn subject_rejects_duplicate_and_too_many_identities() {
        let mut s = VnSubject::new("An");
        s.identities = vec!["CCCD:079212345645".parse().unwrap(); 2];
        assert_eq!(s.to_name().unwrap_err().code(), "identity_duplicate");
        s.identities = (0..9)
            .map(|i| format!("MNS:100000{i}").parse().unwrap())
            .collect();
        assert_eq!(s.to_name().unwrap_err().code(), "identity_too_many");
    }

    #[test]
    fn identity_rules_accept_the_documented_formats() {
        for good in [
            "CCCD:079212345645",
            "CMND:123456789",
            "CMND:123456789012",
            "HC:C1234567",
            "MST:0400260612",
            "MST:0400260612-001",
            "MNS:1047665",
            "BHXH:7912345678",
        ] {
            let id: IdentityNumber = good.parse().unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(id.to_string(), good);
        }
    }

    #[test]
    fn identity_rules_reject_with_precise_codes() {
        for (bad, code) in [
            ("079212345645", "identity_missing_prefix"),
            ("CCCD079212345645", "identity_missing_prefix"),
            ("XYZ:123", "identity_unknown_prefix"),
            ("cccd:079212345645", "identity_unknown_prefix"),
            ("CCCD:07921234564", "identity_cccd_invalid"),
            ("CCCD:0792123456451", "identity_cccd_invalid"),
            ("CCCD:07921234564a", "identity_cccd_invalid"),
            ("CCCD:０７９２１２３４５６４５", "identity_cccd_invalid"),
            ("CMND:1234567890", "identity_cmnd_invalid"),
            ("CMND:12345678", "identity_cmnd_invalid"),
            ("HC:c1234567", "identity_hc_invalid"),
            ("HC:C123456", "identity_hc_invalid"),
            ("HC:CC123456", "identity_hc_invalid"),
            ("HC:C12345678", "identity_hc_invalid"),
            ("MST:040026061", "identity_mst_invalid"),
            ("MST:0400260612-01", "identity_mst_invalid"),
            ("MST:0400260612-0011", "identity_mst_invalid"),
            ("MST:0400260612_001", "identity_mst_invalid"),
            ("MST:0400260612-", "identity_mst_invalid"),
            ("MNS:104766", "identity_mns_invalid"),
            ("MNS:10476650", "identity_mns_invalid"),
            ("BHXH:791234567", "identity_bhxh_invalid"),
            ("BHXH:79123456789", "identity_bhxh_invalid"),
        ] {
            let err = bad.parse::<IdentityNumber>().unwrap_err();
            assert_eq!(err.code(), code, "{bad}: {err}");
        }
    }

    #[test]
    fn passport_pattern_constant_matches_the_check() {
        assert_eq!(PASSPORT_PATTERN, "^[A-Z][0-9]{7}$");
        assert!(is_passport_number("B7654321"));
        assert!(!is_passport_number("Ă1234567"));
    }

    #[test]
    fn masking_keeps_prefix_head_and_tail() {
        assert_eq!(mask_identity("CCCD:079212345645"), "CCCD:0792******45");
        assert_eq!(mask_identity("MST:0400260612"), "MST:0400****12");
        assert_eq!(mask_identity("MST:0400260612-001"), "MST:0400********01");
        assert_eq!(mask_identity("MNS:1047665"), "MNS:*****65");
        assert_eq!(mask_identity("HC:C1234567"), "HC:C123**67");
        assert_eq!(mask_identity("X:1234"), "X:****");
        assert_eq!(mask_identity("079212345645"), "0792******45");
        assert_eq!(mask_identity(""), "");
        let id: IdentityNumber = "CMND:123456789".parse().unwrap();
        assert_eq!(id.masked(), "CMND:1234***89");
    }

    #[test]
    fn reader_handles_foreign_names_without_failing() {
        let name: Name = "CN=Ann,OU=A,OU=B,O=X,O=Y,C=US,UID=jsmith,DC=example"
            .parse()
            .unwrap();
        let f = read_name(&name).unwrap();
        assert_eq!(f.country.as_deref(), Some("US"));
        assert_eq!(f.organisational_units.len(), 2);
        assert_eq!(f.other_uids, vec!["jsmith".to_string()]);
        assert!(
            f.other
                .iter()
                .any(|o| o.value.as_deref() == Some("X") || o.value.as_deref() == Some("Y"))
        );
        assert!(
            f.other
                .iter()
                .any(|o| o.oid == "0.9.2342.19200300.100.1.25")
        );
    }
}
