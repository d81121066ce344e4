//! The RFC 3161 Time-Stamp Protocol types, written from RFC 3161 section 2.4 (no der-0.8 crate has
//! them). The ASN.1 module is `DEFINITIONS IMPLICIT TAGS`; the only tagged CHOICE (`tsa [0]
//! GeneralName`) is therefore explicitly tagged, as X.680 requires for a CHOICE.
//!
//! ```text
//! TimeStampReq ::= SEQUENCE {
//!    version        INTEGER { v1(1) },
//!    messageImprint MessageImprint,
//!    reqPolicy      TSAPolicyId              OPTIONAL,
//!    nonce          INTEGER                  OPTIONAL,
//!    certReq        BOOLEAN                  DEFAULT FALSE,
//!    extensions     [0] IMPLICIT Extensions  OPTIONAL }
//! MessageImprint ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }
//! TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken TimeStampToken OPTIONAL }
//! PKIStatusInfo ::= SEQUENCE { status PKIStatus, statusString PKIFreeText OPTIONAL,
//!                              failInfo PKIFailureInfo OPTIONAL }
//! TSTInfo ::= SEQUENCE {
//!    version        INTEGER { v1(1) },
//!    policy         TSAPolicyId,
//!    messageImprint MessageImprint,
//!    serialNumber   INTEGER,
//!    genTime        GeneralizedTime,
//!    accuracy       Accuracy                 OPTIONAL,
//!    ordering       BOOLEAN                  DEFAULT FALSE,
//!    nonce          INTEGER                  OPTIONAL,
//!    tsa            [0] GeneralName          OPTIONAL,
//!    extensions     [1] IMPLICIT Extensions  OPTIONAL }
//! Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL, millis [0] INTEGER (1..999) OPTIONAL,
//!                         micros [1] INTEGER (1..999) OPTIONAL }
//! ```

use cms::content_info::CmsVersion;
use cms::content_info::ContentInfo;
use cms::signed_data::{
    CertificateSet, DigestAlgorithmIdentifiers, EncapsulatedContentInfo, SignedData, SignerInfos,
};
use der::asn1::{BitString, Int, ObjectIdentifier, OctetString};
use der::{
    Decode, DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Sequence, Tag, Writer,
};
use spki::AlgorithmIdentifierOwned;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::name::GeneralName;

use crate::oids::{HashAlgorithm, ID_CT_TST_INFO, ID_SIGNED_DATA};

/// Largest timestamp query kyso parses. Real queries are ~100 bytes; extensions could add a little.
pub const MAX_QUERY_LEN: usize = 64 * 1024;
/// Largest timestamp response or token kyso parses (tokens carry certificate chains).
pub const MAX_RESPONSE_LEN: usize = 1024 * 1024;

/// Why RFC 3161 bytes could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rfc3161Error {
    #[error("{what} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("malformed {what}: {source}")]
    Malformed {
        what: &'static str,
        #[source]
        source: der::Error,
    },
    #[error("the token's content type is {found}, not signedData")]
    NotSignedData { found: ObjectIdentifier },
    #[error("the token encapsulates {found}, not id-ct-TSTInfo")]
    NotTstInfo { found: ObjectIdentifier },
    #[error("the token carries no encapsulated TSTInfo")]
    MissingTstInfo,
}

impl Rfc3161Error {
    pub fn code(&self) -> &'static str {
        match self {
            Rfc3161Error::TooLarge { .. } => "tsp_too_large",
            Rfc3161Error::Malformed { .. } => "tsp_malformed",
            Rfc3161Error::NotSignedData { .. } => "tsp_not_signed_data",
            Rfc3161Error::NotTstInfo { .. } => "tsp_not_tst_info",
            Rfc3161Error::MissingTstInfo => "tsp_missing_tst_info",
        }
    }
}

fn bounded<'a, T: Decode<'a, Error = der::Error>>(
    bytes: &'a [u8],
    what: &'static str,
    max: usize,
) -> Result<T, Rfc3161Error> {
    if bytes.len() > max {
        return Err(Rfc3161Error::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    T::from_der(bytes).map_err(|source| Rfc3161Error::Malformed { what, source })
}

/// MessageImprint (RFC 3161 2.4.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct MessageImprint {
    pub hash_algorithm: AlgorithmIdentifierOwned,
    pub hashed_message: OctetString,
}

impl MessageImprint {
    /// An imprint of an already computed digest (absent algorithm parameters).
    pub fn new(hash: HashAlgorithm, digest: &[u8]) -> der::Result<Self> {
        Ok(Self {
            hash_algorithm: hash.algorithm_identifier(),
            hashed_message: OctetString::new(digest)?,
        })
    }

    /// The hash algorithm, if it is one kyso accepts.
    pub fn hash(&self) -> Option<HashAlgorithm> {
        HashAlgorithm::from_oid(&self.hash_algorithm.oid)
    }
}

/// TimeStampReq (RFC 3161 2.4.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TimeStampReq {
    /// Only v1 (1) exists; the TSA checks it.
    pub version: u8,
    pub message_imprint: MessageImprint,
    #[asn1(optional = "true")]
    pub req_policy: Option<ObjectIdentifier>,
    #[asn1(optional = "true")]
    pub nonce: Option<Int>,
    #[asn1(default = "Default::default")]
    pub cert_req: bool,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}

impl TimeStampReq {
    /// Parses a DER TimeStampReq from outside, refusing anything over [`MAX_QUERY_LEN`] before
    /// looking at it. (Shadows `der::Decode::from_der` on purpose.)
    pub fn from_der(bytes: &[u8]) -> Result<Self, Rfc3161Error> {
        bounded(bytes, "timestamp query", MAX_QUERY_LEN)
    }
}

/// PKIStatus (RFC 3161 2.4.2, from RFC 2510).
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum PkiStatus {
    Granted,
    GrantedWithMods,
    Rejection,
    Waiting,
    RevocationWarning,
    RevocationNotification,
}

impl PkiStatus {
    pub fn value(self) -> u8 {
        match self {
            PkiStatus::Granted => 0,
            PkiStatus::GrantedWithMods => 1,
            PkiStatus::Rejection => 2,
            PkiStatus::Waiting => 3,
            PkiStatus::RevocationWarning => 4,
            PkiStatus::RevocationNotification => 5,
        }
    }

    pub fn from_value(value: u8) -> Option<Self> {
        Some(match value {
            0 => PkiStatus::Granted,
            1 => PkiStatus::GrantedWithMods,
            2 => PkiStatus::Rejection,
            3 => PkiStatus::Waiting,
            4 => PkiStatus::RevocationWarning,
            5 => PkiStatus::RevocationNotification,
            _ => return None,
        })
    }

    /// Whether a token comes with this status (RFC 3161 2.4.2: granted or grantedWithMods).
    pub fn is_granted(self) -> bool {
        matches!(self, PkiStatus::Granted | PkiStatus::GrantedWithMods)
    }
}

impl FixedTag for PkiStatus {
    const TAG: Tag = Tag::Integer;
}

impl EncodeValue for PkiStatus {
    fn value_len(&self) -> der::Result<Length> {
        self.value().value_len()
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.value().encode_value(writer)
    }
}

impl<'a> DecodeValue<'a> for PkiStatus {
    type Error = der::Error;
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let value = u8::decode_value(reader, header)?;
        PkiStatus::from_value(value).ok_or_else(|| reader.error(Tag::Integer.value_error()))
    }
}

/// PKIFailureInfo (RFC 3161 2.4.2), a named BIT STRING kept as a bit mask (bit n = `1 << n`).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, Hash)]
pub struct PkiFailureInfo(u32);

impl PkiFailureInfo {
    /// Unrecognized or unsupported algorithm identifier.
    pub const BAD_ALG: PkiFailureInfo = PkiFailureInfo(1 << 0);
    /// Transaction not permitted or supported.
    pub const BAD_REQUEST: PkiFailureInfo = PkiFailureInfo(1 << 2);
    /// The data submitted has the wrong format.
    pub const BAD_DATA_FORMAT: PkiFailureInfo = PkiFailureInfo(1 << 5);
    /// The TSA's time source is not available.
    pub const TIME_NOT_AVAILABLE: PkiFailureInfo = PkiFailureInfo(1 << 14);
    /// The requested TSA policy is not supported by the TSA.
    pub const UNACCEPTED_POLICY: PkiFailureInfo = PkiFailureInfo(1 << 15);
    /// The requested extension is not supported by the TSA.
    pub const UNACCEPTED_EXTENSION: PkiFailureInfo = PkiFailureInfo(1 << 16);
    /// The additional information requested could not be understood or is not available.
    pub const ADD_INFO_NOT_AVAILABLE: PkiFailureInfo = PkiFailureInfo(1 << 17);
    /// The request cannot be handled due to system failure.
    pub const SYSTEM_FAILURE: PkiFailureInfo = PkiFailureInfo(1 << 25);

    /// Bits 0..=31 only; RFC 3161 names none above 25.
    pub fn from_bits(bits: u32) -> Self {
        PkiFailureInfo(bits)
    }
    pub fn bits(self) -> u32 {
        self.0
    }
    pub fn contains(self, other: PkiFailureInfo) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The RFC names of the bits set, e.g. `["badAlg"]`.
    pub fn names(self) -> Vec<&'static str> {
        const NAMES: [(PkiFailureInfo, &str); 8] = [
            (PkiFailureInfo::BAD_ALG, "badAlg"),
            (PkiFailureInfo::BAD_REQUEST, "badRequest"),
            (PkiFailureInfo::BAD_DATA_FORMAT, "badDataFormat"),
            (PkiFailureInfo::TIME_NOT_AVAILABLE, "timeNotAvailable"),
            (PkiFailureInfo::UNACCEPTED_POLICY, "unacceptedPolicy"),
            (PkiFailureInfo::UNACCEPTED_EXTENSION, "unacceptedExtension"),
            (
                PkiFailureInfo::ADD_INFO_NOT_AVAILABLE,
                "addInfoNotAvailable",
            ),
            (PkiFailureInfo::SYSTEM_FAILURE, "systemFailure"),
        ];
        NAMES
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect()
    }

    /// DER named-bit-list encoding: trailing zero bits removed (X.690 11.2.2).
    fn to_bit_string(self) -> der::Result<BitString> {
        if self.0 == 0 {
            return BitString::new(0, Vec::new());
        }
        let highest = 31 - self.0.leading_zeros(); // bit number of the last set bit
        let byte_len = highest as usize / 8 + 1;
        let mut bytes = vec![0u8; byte_len];
        for bit in 0..=highest {
            if self.0 & (1 << bit) != 0 {
                bytes[bit as usize / 8] |= 0x80 >> (bit % 8);
            }
        }
        let unused = u8::try_from(7 - highest % 8).map_err(|_| Tag::BitString.value_error())?;
        BitString::new(unused, bytes)
    }

    fn from_bit_string(bits: &BitString) -> Self {
        let mut value = 0u32;
        for (position, set) in bits.bits().enumerate().take(32) {
            if set {
                value |= 1 << position;
            }
        }
        PkiFailureInfo(value)
    }
}

impl std::ops::BitOr for PkiFailureInfo {
    type Output = PkiFailureInfo;
    fn bitor(self, rhs: Self) -> Self {
        PkiFailureInfo(self.0 | rhs.0)
    }
}

impl FixedTag for PkiFailureInfo {
    const TAG: Tag = Tag::BitString;
}

impl EncodeValue for PkiFailureInfo {
    fn value_len(&self) -> der::Result<Length> {
        self.to_bit_string()?.value_len()
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.to_bit_string()?.encode_value(writer)
    }
}

impl<'a> DecodeValue<'a> for PkiFailureInfo {
    type Error = der::Error;
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let bits = BitString::decode_value(reader, header)?;
        Ok(PkiFailureInfo::from_bit_string(&bits))
    }
}

/// PKIStatusInfo (RFC 3161 2.4.2).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PkiStatusInfo {
    pub status: PkiStatus,
    /// PKIFreeText: SEQUENCE SIZE (1..MAX) OF UTF8String.
    #[asn1(optional = "true")]
    pub status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    pub fail_info: Option<PkiFailureInfo>,
}

impl PkiStatusInfo {
    pub fn granted() -> Self {
        Self {
            status: PkiStatus::Granted,
            status_string: None,
            fail_info: None,
        }
    }

    /// A rejection with its reason and a human-readable explanation.
    pub fn rejection(fail_info: PkiFailureInfo, text: impl Into<String>) -> Self {
        Self {
            status: PkiStatus::Rejection,
            status_string: Some(vec![text.into()]),
            fail_info: Some(fail_info),
        }
    }
}

/// TimeStampResp (RFC 3161 2.4.2). The token is a ContentInfo holding SignedData over a TSTInfo.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TimeStampResp {
    pub status: PkiStatusInfo,
    #[asn1(optional = "true")]
    pub time_stamp_token: Option<ContentInfo>,
}

impl TimeStampResp {
    /// Parses a DER TimeStampResp, refusing anything over [`MAX_RESPONSE_LEN`].
    pub fn from_der(bytes: &[u8]) -> Result<Self, Rfc3161Error> {
        bounded(bytes, "timestamp response", MAX_RESPONSE_LEN)
    }
}

/// A TimeStampToken taken apart: the SignedData and the TSTInfo it encapsulates.
#[derive(Clone, Debug)]
pub struct ParsedToken {
    /// The SignedData. When `unparsed_crls` is set, its `crls` is `None` (see there).
    pub signed_data: SignedData,
    /// The raw `crls [1]` contents when the cms crate cannot decode them: cms 0.3.0-rc.0 types
    /// OtherRevocationInfoFormat's OID as an AlgorithmIdentifier, so tokens carrying OCSP
    /// responses as other revocation info (RFC 5940) fail there. The signature does not cover
    /// this field, so the token stays verifiable.
    pub unparsed_crls: Option<Vec<u8>>,
    pub tst_info: TstInfo,
    /// The DER of the TSTInfo exactly as signed (the eContent octets).
    pub tst_info_der: Vec<u8>,
}

/// Parses a TimeStampToken (ContentInfo DER), refusing anything over [`MAX_RESPONSE_LEN`].
pub fn parse_token_der(bytes: &[u8]) -> Result<ParsedToken, Rfc3161Error> {
    let content_info: ContentInfo = bounded(bytes, "timestamp token", MAX_RESPONSE_LEN)?;
    parse_token(&content_info)
}

/// Takes apart a TimeStampToken: checks it is signedData over id-ct-TSTInfo and decodes the TSTInfo.
pub fn parse_token(token: &ContentInfo) -> Result<ParsedToken, Rfc3161Error> {
    if token.content_type != ID_SIGNED_DATA {
        return Err(Rfc3161Error::NotSignedData {
            found: token.content_type,
        });
    }
    let (signed_data, unparsed_crls) = match token.content.decode_as::<SignedData>() {
        Ok(signed_data) => (signed_data, None),
        Err(source) => {
            let lenient: SignedDataRawCrls =
                token
                    .content
                    .decode_as()
                    .map_err(|_| Rfc3161Error::Malformed {
                        what: "timestamp token SignedData",
                        source,
                    })?;
            let signed_data = SignedData {
                version: lenient.version,
                digest_algorithms: lenient.digest_algorithms,
                encap_content_info: lenient.encap_content_info,
                certificates: lenient.certificates,
                crls: None,
                signer_infos: lenient.signer_infos,
            };
            (signed_data, lenient.crls.map(|raw| raw.0))
        }
    };
    let encap = &signed_data.encap_content_info;
    if encap.econtent_type != ID_CT_TST_INFO {
        return Err(Rfc3161Error::NotTstInfo {
            found: encap.econtent_type,
        });
    }
    let econtent = encap
        .econtent
        .as_ref()
        .ok_or(Rfc3161Error::MissingTstInfo)?;
    let octets: OctetString = econtent
        .decode_as()
        .map_err(|source| Rfc3161Error::Malformed {
            what: "TSTInfo eContent",
            source,
        })?;
    let tst_info_der = octets.as_bytes().to_vec();
    let tst_info = TstInfo::from_der(&tst_info_der).map_err(|source| Rfc3161Error::Malformed {
        what: "TSTInfo",
        source,
    })?;
    Ok(ParsedToken {
        signed_data,
        unparsed_crls,
        tst_info,
        tst_info_der,
    })
}

/// SignedData with `crls` kept as raw bytes (see [`ParsedToken::unparsed_crls`]).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SignedDataRawCrls {
    version: CmsVersion,
    digest_algorithms: DigestAlgorithmIdentifiers,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<CertificateSet>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    crls: Option<RawSetContents>,
    signer_infos: SignerInfos,
}

/// The contents octets of a SET, uninterpreted.
#[derive(Clone, Debug, Eq, PartialEq)]
struct RawSetContents(Vec<u8>);

impl FixedTag for RawSetContents {
    const TAG: Tag = Tag::Set;
}

impl EncodeValue for RawSetContents {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.0)
    }
}

impl<'a> DecodeValue<'a> for RawSetContents {
    type Error = der::Error;
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        Ok(RawSetContents(reader.read_slice(header.length())?.to_vec()))
    }
}

/// Accuracy (RFC 3161 2.4.2).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, Sequence)]
pub struct Accuracy {
    #[asn1(optional = "true")]
    pub seconds: Option<u32>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub millis: Option<u16>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub micros: Option<u16>,
}

impl Accuracy {
    /// The accuracy for a duration, split into seconds, millis and micros (zero parts omitted,
    /// since millis and micros must be 1..=999).
    pub fn from_duration(duration: std::time::Duration) -> Self {
        let nonzero = |v: u32| (v != 0).then_some(v);
        let micros_total = duration.subsec_micros();
        Self {
            seconds: nonzero(u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)),
            millis: nonzero(micros_total / 1000).and_then(|v| u16::try_from(v).ok()),
            micros: nonzero(micros_total % 1000).and_then(|v| u16::try_from(v).ok()),
        }
    }

    pub fn to_duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.seconds.unwrap_or(0)))
            + std::time::Duration::from_millis(u64::from(self.millis.unwrap_or(0)))
            + std::time::Duration::from_micros(u64::from(self.micros.unwrap_or(0)))
    }
}

/// TSTInfo (RFC 3161 2.4.2).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TstInfo {
    /// Only v1 (1) exists.
    pub version: u8,
    pub policy: ObjectIdentifier,
    pub message_imprint: MessageImprint,
    pub serial_number: Int,
    pub gen_time: TstGeneralizedTime,
    #[asn1(optional = "true")]
    pub accuracy: Option<Accuracy>,
    #[asn1(default = "Default::default")]
    pub ordering: bool,
    #[asn1(optional = "true")]
    pub nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub tsa: Option<GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}

/// genTime: a GeneralizedTime that may carry fractional seconds (RFC 3161 2.4.2), which
/// `der::asn1::GeneralizedTime` rejects. Always UTC ('Z'); the fraction has no trailing zeros
/// when kyso encodes it. Decoding also takes trailing zeros (some TSAs emit them) and keeps the
/// digit count so the bytes re-encode identically.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub struct TstGeneralizedTime {
    time: OffsetDateTime,
    /// Number of fraction digits on the wire (0..=9).
    digits: u8,
}

impl TstGeneralizedTime {
    /// A time to encode with as many fraction digits as needed (up to nanoseconds).
    pub fn new(time: OffsetDateTime) -> Self {
        let time = time.to_offset(time::UtcOffset::UTC);
        let mut nanos = time.nanosecond();
        let mut digits = if nanos == 0 { 0 } else { 9 };
        while digits > 0 && nanos.is_multiple_of(10) {
            nanos /= 10;
            digits -= 1;
        }
        Self { time, digits }
    }

    /// A time truncated to whole `precision_digits` fraction digits (0 = whole seconds).
    pub fn with_precision(time: OffsetDateTime, precision_digits: u8) -> Self {
        let precision_digits = precision_digits.min(9);
        let unit = 10u32.pow(9 - u32::from(precision_digits));
        let nanos = time.nanosecond() / unit * unit;
        let truncated = time.replace_nanosecond(nanos).unwrap_or(time);
        Self::new(truncated)
    }

    pub fn to_offset_date_time(self) -> OffsetDateTime {
        self.time
    }

    fn text(&self) -> String {
        let t = self.time;
        let mut s = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        if self.digits > 0 {
            let nanos = format!("{:09}", t.nanosecond());
            s.push('.');
            s.push_str(&nanos[..usize::from(self.digits)]);
        }
        s.push('Z');
        s
    }

    fn parse(text: &[u8]) -> Option<Self> {
        let (main, rest) = text.split_at_checked(14)?;
        if !main.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> Option<u32> {
            std::str::from_utf8(&main[range]).ok()?.parse().ok()
        };
        let year = i32::try_from(num(0..4)?).ok()?;
        let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
        let day = u8::try_from(num(6..8)?).ok()?;
        let hour = u8::try_from(num(8..10)?).ok()?;
        let minute = u8::try_from(num(10..12)?).ok()?;
        let second = u8::try_from(num(12..14)?).ok()?;
        let (fraction, zone) = match rest.split_first()? {
            (b'.', tail) => tail.split_at_checked(tail.len().checked_sub(1)?)?,
            (_, _) => (&rest[..0], rest),
        };
        if zone != b"Z" {
            return None;
        }
        // "." must be followed by 1..=9 digits.
        if rest.first() == Some(&b'.') && fraction.is_empty() {
            return None;
        }
        if fraction.len() > 9 || !fraction.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut nanos: u32 = 0;
        for (i, d) in fraction.iter().enumerate() {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - u32::try_from(i).ok()?);
        }
        let date = Date::from_calendar_date(year, month, day).ok()?;
        let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
        Some(Self {
            time: PrimitiveDateTime::new(date, time).assume_utc(),
            digits: u8::try_from(fraction.len()).ok()?,
        })
    }
}

impl From<OffsetDateTime> for TstGeneralizedTime {
    fn from(time: OffsetDateTime) -> Self {
        Self::new(time)
    }
}

impl FixedTag for TstGeneralizedTime {
    const TAG: Tag = Tag::GeneralizedTime;
}

impl EncodeValue for TstGeneralizedTime {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.text().len())
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        if !(0..=9999).contains(&self.time.year()) {
            return Err(Tag::GeneralizedTime.value_error().into());
        }
        writer.write(self.text().as_bytes())
    }
}

impl<'a> DecodeValue<'a> for TstGeneralizedTime {
    type Error = der::Error;
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        // "YYYYMMDDHHMMSS.fffffffffZ" is at most 25 bytes.
        if u32::from(header.length()) > 25 {
            return Err(reader.error(Tag::GeneralizedTime.length_error()));
        }
        let bytes = reader.read_slice(header.length())?;
        TstGeneralizedTime::parse(bytes)
            .ok_or_else(|| reader.error(Tag::GeneralizedTime.value_error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};
    use std::path::{Path, PathBuf};

    fn testdata() -> PathBuf {
        std::env::var_os("KYSO_TESTDATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
            })
    }

    fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                files_under(&path, out);
            } else {
                out.push(path);
            }
        }
    }

    /// (tag byte, header length, content length or None for indefinite) of the TLV at `bytes`.
    fn header(bytes: &[u8]) -> Option<(u8, usize, Option<usize>)> {
        let tag = *bytes.first()?;
        if tag & 0x1f == 0x1f {
            return None; // high tag numbers do not occur in these files
        }
        let first = *bytes.get(1)?;
        if first < 0x80 {
            return Some((tag, 2, Some(usize::from(first))));
        }
        if first == 0x80 {
            return Some((tag, 2, None));
        }
        let n = usize::from(first & 0x7f);
        if n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in bytes.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        Some((tag, 2 + n, Some(len)))
    }

    fn der_length(len: usize) -> Vec<u8> {
        if len < 0x80 {
            return vec![u8::try_from(len).expect("short")];
        }
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        let mut out = vec![0x80 | u8::try_from(bytes.len()).expect("len")];
        out.extend(bytes);
        out
    }

    /// Test-only BER to DER for the streaming-encoded tokens: indefinite lengths become definite
    /// and constructed OCTET STRINGs are joined. Returns the DER and the bytes consumed.
    fn ber_to_der(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
        let (tag, hlen, len) = header(bytes)?;
        let constructed = tag & 0x20 != 0;
        if !constructed {
            let len = len?;
            let end = hlen.checked_add(len)?;
            return Some((bytes.get(..end)?.to_vec(), end));
        }
        let mut children = Vec::new();
        let mut pos = hlen;
        loop {
            match len {
                Some(len) if pos >= hlen + len => break,
                None if bytes.get(pos..pos + 2)? == [0, 0] => {
                    pos += 2;
                    break;
                }
                _ => {}
            }
            let (child, used) = ber_to_der(bytes.get(pos..)?)?;
            children.push(child);
            pos += used;
        }
        let (out_tag, content) = if tag == 0x24 {
            // constructed OCTET STRING: the concatenation of its primitive segments
            let mut joined = Vec::new();
            for child in &children {
                let (_, h, _) = header(child)?;
                joined.extend_from_slice(&child[h..]);
            }
            (0x04, joined)
        } else {
            (tag, children.concat())
        };
        let mut out = vec![out_tag];
        out.extend(der_length(content.len()));
        out.extend(content);
        Some((out, pos))
    }

    /// Every TimeStampToken found anywhere inside `der` (an evidence record, a TimeStampedData, a
    /// TimeStampResp or a bare token): walks constructed elements and tries each SEQUENCE.
    fn find_tokens<'a>(der: &'a [u8], out: &mut Vec<&'a [u8]>, depth: usize) {
        let Some((tag, hlen, Some(len))) = header(der) else {
            return;
        };
        let Some(element) = der.get(..hlen + len) else {
            return;
        };
        if tag == 0x30 && parse_token_der(element).is_ok() {
            out.push(element);
            return;
        }
        if tag & 0x20 != 0 && depth < 32 {
            let mut pos = hlen;
            while pos < element.len() {
                let Some((_, h, Some(l))) = header(&element[pos..]) else {
                    return;
                };
                find_tokens(&element[pos..pos + h + l], out, depth + 1);
                pos += h + l;
            }
        }
    }

    fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count()
    }

    #[test]
    fn real_tokens_in_shared_testdata_decode_and_round_trip() {
        let mut files = Vec::new();
        files_under(&testdata().join("rfc3161"), &mut files);
        // DER of the OID id-ct-TSTInfo: each token names it twice (eContentType and the
        // content-type signed attribute), which gives an independent count to compare with.
        let tst_info_oid = ID_CT_TST_INFO.to_der().expect("oid");
        let (mut total, mut from_ber, mut responses, mut ocsp_crls) = (0, 0, 0, 0);
        for path in &files {
            let raw = std::fs::read(path).expect("read");
            let expected = occurrences(&raw, &tst_info_oid) / 2;
            if expected == 0 {
                continue;
            }
            let (der, was_ber) = match header(&raw) {
                Some((_, _, None)) => (ber_to_der(&raw).expect("BER converts").0, true),
                _ => (raw.clone(), false),
            };
            if let Ok(resp) = TimeStampResp::from_der(&der) {
                assert!(resp.status.status.is_granted(), "{}", path.display());
                assert!(resp.time_stamp_token.is_some());
                assert_eq!(resp.to_der().expect("re-encode"), der, "{}", path.display());
                responses += 1;
            }
            let mut tokens = Vec::new();
            find_tokens(&der, &mut tokens, 0);
            assert_eq!(tokens.len(), expected, "tokens in {}", path.display());
            for token in tokens {
                let parsed = parse_token_der(token).expect("token");
                let tst = &parsed.tst_info;
                ocsp_crls += usize::from(parsed.unparsed_crls.is_some());
                assert_eq!(tst.version, 1);
                assert!(tst.message_imprint.hash_algorithm.oid.as_bytes().len() > 3);
                assert!(tst.gen_time.to_offset_date_time().year() >= 2000);
                // Byte-identical re-encoding of the TSTInfo (what was signed) and the token.
                assert_eq!(tst.to_der().expect("re-encode"), parsed.tst_info_der);
                if !was_ber && parsed.unparsed_crls.is_none() {
                    let ci = ContentInfo::from_der(token).expect("content info");
                    assert_eq!(ci.to_der().expect("re-encode"), token, "{}", path.display());
                }
                total += 1;
                from_ber += usize::from(was_ber);
            }
        }
        // bc-tsp: 3 (.tsr, BER) + 3 (TimeStampedData) + evidence records; sectigo: 1.
        assert_eq!(total, 29, "tokens found in all files");
        assert_eq!(from_ber, 3, "the three streaming-encoded .tsr files");
        assert_eq!(responses, 1, "sectigo-all-zero.tsr is a TimeStampResp");
        assert!(
            ocsp_crls > 0,
            "some BSI tokens carry OCSP responses as other revocation info"
        );
        eprintln!(
            "decoded {total} real timestamp tokens ({from_ber} from BER, {ocsp_crls} with OCSP \
             revocation info), {responses} response"
        );
    }

    #[test]
    fn sectigo_response_has_the_expected_fields() {
        let path = testdata().join("rfc3161/openssl-80-test_tsa_data/sectigo-all-zero.tsr");
        let resp = TimeStampResp::from_der(&std::fs::read(path).expect("read")).expect("resp");
        let token = resp.time_stamp_token.expect("token");
        let parsed = parse_token(&token).expect("parsed");
        let tst = parsed.tst_info;
        assert_eq!(tst.message_imprint.hash(), Some(HashAlgorithm::Sha256));
        assert_eq!(tst.message_imprint.hashed_message.as_bytes(), [0u8; 32]);
        assert!(tst.serial_number.as_bytes().len() >= 8);
    }

    #[test]
    fn openssl_query_file_decodes() {
        let path = testdata().join("rfc3161/openssl-80-test_tsa_data/all-zero.tsq");
        let der = std::fs::read(path).expect("read");
        let req = TimeStampReq::from_der(&der).expect("query");
        assert_eq!(req.version, 1);
        assert_eq!(req.message_imprint.hash(), Some(HashAlgorithm::Sha256));
        assert_eq!(req.to_der().expect("re-encode"), der);
    }

    fn openssl_query(dir: &Path, args: &[&str]) -> Vec<u8> {
        let out = dir.join("q.tsq");
        let status = std::process::Command::new("openssl")
            .args(["ts", "-query"])
            .args(args)
            .arg("-out")
            .arg(&out)
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl ts -query {args:?}");
        std::fs::read(out).expect("read query")
    }

    #[test]
    fn openssl_generated_queries_decode_and_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let digest = "ab".repeat(32);
        let der = openssl_query(dir.path(), &["-sha256", "-cert", "-digest", &digest]);
        let req = TimeStampReq::from_der(&der).expect("query");
        assert_eq!(req.version, 1);
        assert!(req.cert_req);
        assert!(req.nonce.is_some(), "openssl adds a nonce by default");
        assert_eq!(req.message_imprint.hashed_message.as_bytes(), [0xab; 32]);
        assert_eq!(req.to_der().expect("re-encode"), der);

        let digest = "cd".repeat(64);
        let der = openssl_query(
            dir.path(),
            &[
                "-sha512",
                "-no_nonce",
                "-tspolicy",
                "1.2.3.4.5",
                "-digest",
                &digest,
            ],
        );
        let req = TimeStampReq::from_der(&der).expect("query");
        assert!(!req.cert_req);
        assert!(req.nonce.is_none());
        assert_eq!(req.message_imprint.hash(), Some(HashAlgorithm::Sha512));
        assert_eq!(
            req.req_policy,
            Some(ObjectIdentifier::new_unwrap("1.2.3.4.5"))
        );
        assert_eq!(req.to_der().expect("re-encode"), der);
    }

    #[test]
    fn oversized_and_garbage_queries_are_refused() {
        let big = vec![0x30; MAX_QUERY_LEN + 1];
        let err = TimeStampReq::from_der(&big).expect_err("too large");
        assert_eq!(err.code(), "tsp_too_large");
        let err = TimeStampReq::from_der(b"\x30\x03\x02\x01").expect_err("truncated");
        assert_eq!(err.code(), "tsp_malformed");
        assert!(TimeStampReq::from_der(&[]).is_err());
    }

    #[test]
    fn query_with_extensions_round_trips_with_implicit_tag() {
        use x509_cert::ext::Extension;
        let req = TimeStampReq {
            version: 1,
            message_imprint: MessageImprint::new(HashAlgorithm::Sha256, &[7; 32]).expect("mi"),
            req_policy: None,
            nonce: Some(Int::new(&[1, 2, 3]).expect("nonce")),
            cert_req: true,
            extensions: Some(vec![Extension {
                extn_id: ObjectIdentifier::new_unwrap("1.2.3.4"),
                critical: false,
                extn_value: OctetString::new(vec![5, 0]).expect("value"),
            }]),
        };
        let der = req.to_der().expect("encode");
        // [0] IMPLICIT, constructed: 0xA0 directly followed by the Extension SEQUENCE.
        let pos = der.iter().position(|b| *b == 0xa0).expect("[0] tag");
        assert_eq!(der[pos + 2], 0x30);
        let decoded = TimeStampReq::from_der(&der).expect("decode");
        assert_eq!(decoded, req);
    }

    #[test]
    fn failure_info_bits_encode_as_named_bit_lists() {
        let cases: [(PkiFailureInfo, &[u8]); 4] = [
            (PkiFailureInfo::BAD_ALG, &[0x03, 0x02, 0x07, 0x80]),
            (PkiFailureInfo::BAD_DATA_FORMAT, &[0x03, 0x02, 0x02, 0x04]),
            (
                PkiFailureInfo::TIME_NOT_AVAILABLE,
                &[0x03, 0x03, 0x01, 0x00, 0x02],
            ),
            (
                PkiFailureInfo::SYSTEM_FAILURE,
                &[0x03, 0x05, 0x06, 0, 0, 0, 0x40],
            ),
        ];
        for (info, expected) in cases {
            let der = info.to_der().expect("encode");
            assert_eq!(der, expected, "{:?}", info.names());
            assert_eq!(PkiFailureInfo::from_der(&der).expect("decode"), info);
        }
        let both = PkiFailureInfo::BAD_ALG | PkiFailureInfo::UNACCEPTED_POLICY;
        assert!(both.contains(PkiFailureInfo::BAD_ALG));
        assert!(!both.contains(PkiFailureInfo::BAD_REQUEST));
        assert_eq!(both.names(), ["badAlg", "unacceptedPolicy"]);
    }

    #[test]
    fn rejection_response_round_trips() {
        let resp = TimeStampResp {
            status: PkiStatusInfo::rejection(PkiFailureInfo::UNACCEPTED_POLICY, "policy refused"),
            time_stamp_token: None,
        };
        let der = resp.to_der().expect("encode");
        let decoded = TimeStampResp::from_der(&der).expect("decode");
        assert_eq!(decoded, resp);
        assert_eq!(decoded.status.status.value(), 2);
        assert!(TimeStampResp::from_der(&[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x09]).is_err());
    }

    fn time_der(text: &str) -> Vec<u8> {
        let mut der = vec![0x18, u8::try_from(text.len()).expect("short")];
        der.extend(text.as_bytes());
        der
    }

    #[test]
    fn generalized_time_keeps_fractions_without_trailing_zeros() {
        use time::macros::datetime;
        let t = TstGeneralizedTime::new(datetime!(2025-03-04 05:06:07.120 UTC));
        assert_eq!(t.to_der().expect("encode"), time_der("20250304050607.12Z"));
        let t = TstGeneralizedTime::new(datetime!(2025-03-04 05:06:07 UTC));
        assert_eq!(t.to_der().expect("encode"), time_der("20250304050607Z"));
        let t = TstGeneralizedTime::with_precision(datetime!(2025-03-04 05:06:07.123456789 UTC), 3);
        assert_eq!(t.to_der().expect("encode"), time_der("20250304050607.123Z"));
        for text in [
            "20250304050607.5Z",
            "20250304050607.000001Z",
            "20250304050607.120Z",
        ] {
            let der = time_der(text);
            let t = TstGeneralizedTime::from_der(&der).expect(text);
            assert_eq!(t.to_der().expect("re-encode"), der, "{text}");
        }
        let t = TstGeneralizedTime::from_der(&time_der("19991231235959.25Z")).expect("parse");
        assert_eq!(
            t.to_offset_date_time(),
            datetime!(1999-12-31 23:59:59.25 UTC)
        );
    }

    #[test]
    fn generalized_time_rejects_malformed_text() {
        for text in [
            "20250304050607",
            "20250304050607.Z",
            "20250304050607+0700",
            "20251304050607Z",
            "2025030405060Z",
            "20250304050607.1234567891Z",
            "2025030405060aZ",
            "20250230050607Z",
        ] {
            assert!(
                TstGeneralizedTime::from_der(&time_der(text)).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn accuracy_splits_durations_and_uses_implicit_tags() {
        let acc = Accuracy::from_duration(std::time::Duration::from_micros(1_250_003));
        assert_eq!(acc.seconds, Some(1));
        assert_eq!(acc.millis, Some(250));
        assert_eq!(acc.micros, Some(3));
        let der = acc.to_der().expect("encode");
        assert_eq!(
            der,
            [
                0x30, 0x0a, 0x02, 0x01, 0x01, 0x80, 0x02, 0x00, 0xfa, 0x81, 0x01, 0x03
            ]
        );
        assert_eq!(Accuracy::from_der(&der).expect("decode"), acc);
        assert_eq!(
            acc.to_duration(),
            std::time::Duration::from_micros(1_250_003)
        );
        let acc = Accuracy::from_duration(std::time::Duration::from_millis(500));
        assert_eq!(
            acc,
            Accuracy {
                seconds: None,
                millis: Some(500),
                micros: None
            }
        );
    }

    #[test]
    fn tst_info_round_trips_with_tsa_name_and_defaults() {
        use std::str::FromStr;
        use time::macros::datetime;
        let tst = TstInfo {
            version: 1,
            policy: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1.1"),
            message_imprint: MessageImprint::new(HashAlgorithm::Sha384, &[9; 48]).expect("mi"),
            serial_number: Int::new(&[0x40; 16]).expect("serial"),
            gen_time: TstGeneralizedTime::new(datetime!(2025-01-02 03:04:05.678 UTC)),
            accuracy: Some(Accuracy {
                seconds: Some(1),
                millis: None,
                micros: None,
            }),
            ordering: false,
            nonce: Some(Int::new(&[0x00, 0xff, 0x01]).expect("nonce")),
            tsa: Some(GeneralName::DirectoryName(
                x509_cert::name::Name::from_str("CN=kyso TSA").expect("name"),
            )),
            extensions: None,
        };
        let der = tst.to_der().expect("encode");
        assert_eq!(TstInfo::from_der(&der).expect("decode"), tst);
        // ordering FALSE is the DEFAULT: no BOOLEAN on the wire.
        assert!(!der.windows(3).any(|w| w == [0x01, 0x01, 0x00]));
        // tsa is [0] EXPLICIT: 0xA0 then the directoryName's own [4] tag.
        let pos = der.iter().rposition(|b| *b == 0xa0).expect("[0]");
        assert_eq!(der[pos + 2], 0xa4);
    }
}
