//! ETSI EN 319 102-1 validation results (clause 5.1.3): the main indication, the
//! sub-indication, and human messages in Vietnamese and English.

use serde::{Deserialize, Serialize};

/// The main status indication (EN 319 102-1, table 4), in the standard's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Indication {
    #[serde(rename = "TOTAL-PASSED")]
    TotalPassed,
    #[serde(rename = "TOTAL-FAILED")]
    TotalFailed,
    #[serde(rename = "INDETERMINATE")]
    Indeterminate,
}

impl Indication {
    /// The ETSI spelling (`TOTAL-PASSED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Indication::TotalPassed => "TOTAL-PASSED",
            Indication::TotalFailed => "TOTAL-FAILED",
            Indication::Indeterminate => "INDETERMINATE",
        }
    }

    /// What a citizen reads: "hợp lệ", "không hợp lệ", "chưa xác định".
    pub fn message(self) -> Message {
        match self {
            Indication::TotalPassed => Message::new("Hợp lệ", "Valid"),
            Indication::TotalFailed => Message::new("Không hợp lệ", "Invalid"),
            Indication::Indeterminate => Message::new("Chưa xác định", "Indeterminate"),
        }
    }
}

/// A human message in Vietnamese (first, with diacritics) and English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub vi: String,
    pub en: String,
}

impl Message {
    pub fn new(vi: impl Into<String>, en: impl Into<String>) -> Message {
        Message {
            vi: vi.into(),
            en: en.into(),
        }
    }
}

macro_rules! sub_indications {
    ($($variant:ident => $spelling:literal, $indication:ident, $vi:literal, $en:literal;)*) => {
        /// Sub-indications (EN 319 102-1, tables 5 and 6), serialized in the standard's spelling.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum SubIndication {
            $(#[serde(rename = $spelling)] $variant,)*
        }

        impl SubIndication {
            /// Every sub-indication, in declaration order.
            pub const ALL: &'static [SubIndication] = &[$(SubIndication::$variant,)*];

            /// The ETSI spelling (`REVOKED_NO_POE`, ...).
            pub fn as_str(self) -> &'static str {
                match self { $(SubIndication::$variant => $spelling,)* }
            }

            /// The main indication this sub-indication belongs to in the standard.
            pub fn indication(self) -> Indication {
                match self { $(SubIndication::$variant => Indication::$indication,)* }
            }

            /// A short explanation in Vietnamese and English.
            pub fn message(self) -> Message {
                match self { $(SubIndication::$variant => Message::new($vi, $en),)* }
            }
        }
    };
}

sub_indications! {
    FormatFailure => "FORMAT_FAILURE", TotalFailed,
        "Dữ liệu chữ ký hoặc chứng thư số không đúng định dạng.",
        "The signature or certificate data is not well formed.";
    HashFailure => "HASH_FAILURE", TotalFailed,
        "Giá trị băm của dữ liệu đã ký không khớp: tài liệu đã bị thay đổi sau khi ký.",
        "The hash of the signed data does not match: the document was changed after signing.";
    SigCryptoFailure => "SIG_CRYPTO_FAILURE", TotalFailed,
        "Giá trị chữ ký không hợp lệ với khóa công khai của người ký.",
        "The signature value does not verify with the signer's public key.";
    Revoked => "REVOKED", TotalFailed,
        "Chứng thư số của người ký đã bị thu hồi trước thời điểm ký.",
        "The signer's certificate was revoked before the signing time.";
    Expired => "EXPIRED", TotalFailed,
        "Chứng thư số đã hết hạn trước thời điểm ký đã được chứng minh.",
        "The certificate had expired before the proven signing time.";
    NotYetValid => "NOT_YET_VALID", TotalFailed,
        "Chứng thư số chưa có hiệu lực tại thời điểm ký.",
        "The certificate was not yet valid at the signing time.";
    SigConstraintsFailure => "SIG_CONSTRAINTS_FAILURE", Indeterminate,
        "Chữ ký không đáp ứng các ràng buộc của chính sách kiểm tra.",
        "The signature does not meet the constraints of the validation policy.";
    ChainConstraintsFailure => "CHAIN_CONSTRAINTS_FAILURE", Indeterminate,
        "Chuỗi chứng thư số vi phạm ràng buộc (phạm vi sử dụng, chính sách, giới hạn tên hoặc độ dài chuỗi).",
        "The certificate chain violates a constraint (usage, policy, name constraints or path length).";
    CertificateChainGeneralFailure => "CERTIFICATE_CHAIN_GENERAL_FAILURE", Indeterminate,
        "Không kiểm tra được chuỗi chứng thư số (chữ ký trên chứng thư số không hợp lệ hoặc lỗi khác).",
        "The certificate chain could not be validated (a certificate signature is invalid, or another error).";
    CryptoConstraintsFailure => "CRYPTO_CONSTRAINTS_FAILURE", Indeterminate,
        "Thuật toán hoặc độ dài khóa không còn được chấp nhận.",
        "An algorithm or key size is no longer accepted.";
    CryptoConstraintsFailureNoPoe => "CRYPTO_CONSTRAINTS_FAILURE_NO_POE", Indeterminate,
        "Thuật toán hoặc độ dài khóa không được chấp nhận và không có bằng chứng tồn tại trước khi nó bị coi là yếu.",
        "An algorithm or key size is not accepted and there is no proof of existence from before it was considered weak.";
    PolicyProcessingError => "POLICY_PROCESSING_ERROR", Indeterminate,
        "Không xử lý được chính sách kiểm tra.",
        "The validation policy could not be processed.";
    NoSigningCertificateFound => "NO_SIGNING_CERTIFICATE_FOUND", Indeterminate,
        "Không tìm thấy chứng thư số của người ký.",
        "The signer's certificate was not found.";
    NoCertificateChainFound => "NO_CERTIFICATE_CHAIN_FOUND", Indeterminate,
        "Không tìm được chuỗi chứng thư số đến một chứng thư số gốc tin cậy.",
        "No certificate chain to a trusted root was found.";
    RevokedNoPoe => "REVOKED_NO_POE", Indeterminate,
        "Chứng thư số của người ký đã bị thu hồi và không có bằng chứng chữ ký tồn tại trước thời điểm thu hồi.",
        "The signer's certificate is revoked and there is no proof the signature existed before the revocation.";
    RevokedCaNoPoe => "REVOKED_CA_NO_POE", Indeterminate,
        "Một chứng thư số CA trong chuỗi đã bị thu hồi và không có bằng chứng chữ ký tồn tại trước thời điểm thu hồi.",
        "A CA certificate in the chain is revoked and there is no proof the signature existed before the revocation.";
    OutOfBoundsNoPoe => "OUT_OF_BOUNDS_NO_POE", Indeterminate,
        "Chứng thư số không còn hiệu lực tại thời điểm kiểm tra và không có bằng chứng chữ ký tồn tại trong thời hạn hiệu lực.",
        "The certificate is outside its validity at the validation time and there is no proof the signature existed within it.";
    OutOfBoundsNotRevoked => "OUT_OF_BOUNDS_NOT_REVOKED", Indeterminate,
        "Chứng thư số đã hết hạn nhưng không bị thu hồi trong thời hạn hiệu lực.",
        "The certificate has expired but was not revoked during its validity.";
    SignedDataNotFound => "SIGNED_DATA_NOT_FOUND", Indeterminate,
        "Không có dữ liệu đã ký để kiểm tra: chữ ký tách rời cần tài liệu gốc (hoặc giá trị băm đúng thuật toán).",
        "The signed data is not available: a detached signature needs the original document (or its digest with the right algorithm).";
    TryLater => "TRY_LATER", Indeterminate,
        "Không kiểm tra được tình trạng thu hồi của chứng thư số: chưa có dữ liệu thu hồi (CRL hoặc OCSP) phù hợp.",
        "The revocation status could not be checked: no suitable revocation data (CRL or OCSP) is available.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_indications_serialize_in_etsi_spelling() {
        for sub in SubIndication::ALL {
            let json = serde_json::to_string(sub).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", sub.as_str()));
            let back: SubIndication =
                serde_json::from_str(&json).unwrap_or(SubIndication::FormatFailure);
            assert_eq!(back, *sub);
        }
        assert_eq!(
            serde_json::to_string(&Indication::TotalPassed).unwrap_or_default(),
            "\"TOTAL-PASSED\""
        );
    }

    #[test]
    fn every_sub_indication_has_both_messages_with_vietnamese_diacritics() {
        assert!(SubIndication::ALL.len() >= 19);
        for sub in SubIndication::ALL {
            let m = sub.message();
            assert!(!m.en.is_empty(), "{sub:?}");
            assert!(!m.vi.is_ascii(), "{sub:?} has no diacritics");
            assert_ne!(sub.indication(), Indication::TotalPassed);
        }
    }
}
