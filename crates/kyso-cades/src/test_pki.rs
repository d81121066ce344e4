//! Test support: a root and issuing CA on a fresh SoftHSM token (made with kyso-ca), signing
//! and TSA certificates under them, fake timestamp and validation-data sources, and openssl.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;

use async_trait::async_trait;
use der::{Encode, EncodePem};
use kyso_asn1::rfc3161::{MessageImprint, TstGeneralizedTime, TstInfo};
use kyso_ca::{
    CertificateOrder, Issuer, ProfileKind, ProfileSettings, VnSubject, issue_certificate,
    issue_sub_ca, random_serial, self_signed_root,
};
use kyso_clock::{Clock, ManualClock, SystemClock};
use kyso_hsm::{HashAlgorithm, KeyAlgorithm, RsaPadding, Token};
use x509_cert::Certificate;

use crate::{
    CadesSigner, Content, Level, SignOptions, TimestampError, TimestampSource, ValidationData,
    ValidationDataError, ValidationDataSource, sign,
};

pub(crate) struct TestPki {
    pub token: Token,
    /// Starts at the real time so openssl (which checks against its own clock) agrees.
    pub clock: ManualClock,
    pub settings: ProfileSettings,
    pub root: Issuer,
    pub issuing: Issuer,
    pub dir: tempfile::TempDir,
}

pub(crate) fn subject(cn: &str) -> VnSubject {
    VnSubject {
        common_name: cn.into(),
        province: Some("Đà Nẵng".into()),
        organisation: Some("ỦY BAN NHÂN DÂN THÀNH PHỐ ĐÀ NẴNG".into()),
        email: Some("vanthu@danang.gov.vn".into()),
        identities: vec!["CCCD:079212345645".parse().unwrap()],
        ..VnSubject::default()
    }
}

impl TestPki {
    pub async fn new(name: &str) -> TestPki {
        let token = kyso_hsm::testing::fresh_token(name);
        let clock = ManualClock::new(SystemClock.now());
        let settings = ProfileSettings::new("http://127.0.0.1:8080/", None).unwrap();
        let root_key = token
            .generate_key("root", KeyAlgorithm::EcP384)
            .await
            .unwrap();
        let root_cert = self_signed_root(
            "root",
            &root_key,
            &subject("kyso Test Root CA"),
            None,
            &settings,
            random_serial(),
            &clock,
        )
        .await
        .unwrap();
        let root = Issuer::new("root", root_cert, root_key).unwrap();
        let issuing_key = token
            .generate_key("issuing", KeyAlgorithm::EcP256)
            .await
            .unwrap();
        let issuing_cert = issue_sub_ca(
            &root,
            &subject("kyso Test Issuing CA"),
            issuing_key.public_key_info(),
            None,
            &settings,
            random_serial(),
            &clock,
        )
        .await
        .unwrap();
        let issuing = Issuer::new("issuing", issuing_cert, issuing_key).unwrap();
        let pki = TestPki {
            token,
            clock,
            settings,
            root,
            issuing,
            dir: tempfile::tempdir().unwrap(),
        };
        pki.write("root.pem", &pem(pki.root.certificate()));
        pki
    }

    /// A staff member's P-256 signer (the common case of the tests).
    pub async fn staff_p256_signer(&self, label: &str) -> CadesSigner {
        self.signer(
            label,
            KeyAlgorithm::EcP256,
            RsaPadding::Pkcs1v15,
            ProfileKind::StaffSigning,
        )
        .await
    }

    /// A signer with a new key on the token and a certificate of `profile` for it.
    pub async fn signer(
        &self,
        label: &str,
        algorithm: KeyAlgorithm,
        padding: RsaPadding,
        profile: ProfileKind,
    ) -> CadesSigner {
        let key = self
            .token
            .generate_key(label, algorithm)
            .await
            .unwrap()
            .with_rsa_padding(padding);
        let order = CertificateOrder {
            profile,
            subject: subject(&format!("Nguyễn Văn {label}")),
            public_key: key.public_key_info().clone(),
            validity_days: None,
            client_auth: false,
        };
        let cert = issue_certificate(
            &self.issuing,
            &order,
            &self.settings,
            random_serial(),
            &self.clock,
        )
        .await
        .unwrap();
        CadesSigner::new(key, cert, vec![self.issuing.certificate().clone()]).unwrap()
    }

    pub fn options(&self, level: Level) -> SignOptions {
        SignOptions::new(level, self.clock.now_utc())
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn write(&self, file: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(file);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

pub(crate) fn pem(cert: &Certificate) -> Vec<u8> {
    cert.to_pem(der::pem::LineEnding::LF).unwrap().into_bytes()
}

/// Runs openssl with `args`; the output, success or not.
pub(crate) fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().unwrap()
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A timestamp source that signs a TSTInfo with a TSA signer through [`sign`] (as kyso-tsa
/// does) and records what it was asked to stamp. `tamper` stamps a different digest.
pub(crate) struct FakeTsa {
    pub signer: CadesSigner,
    pub clock: ManualClock,
    pub requests: Mutex<Vec<(HashAlgorithm, Vec<u8>)>>,
    pub tamper: bool,
}

#[async_trait]
impl TimestampSource for FakeTsa {
    async fn timestamp(
        &self,
        hash: HashAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, TimestampError> {
        self.requests.lock().unwrap().push((hash, digest.to_vec()));
        let mut stamped = digest.to_vec();
        if self.tamper {
            stamped[0] ^= 1;
        }
        let asn1_hash = kyso_asn1::oids::HashAlgorithm::from_name(hash.name()).unwrap();
        let tst = TstInfo {
            version: 1,
            policy: der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1"),
            message_imprint: MessageImprint::new(asn1_hash, &stamped).unwrap(),
            serial_number: der::asn1::Int::new(&[0x01, 0x23, 0x45]).unwrap(),
            gen_time: TstGeneralizedTime::new(self.clock.now_utc()),
            accuracy: None,
            ordering: false,
            nonce: None,
            tsa: None,
            extensions: None,
        };
        let mut options = SignOptions::new(Level::BB, self.clock.now_utc());
        options.content_type = kyso_asn1::oids::ID_CT_TST_INFO;
        sign(
            &self.signer,
            Content::Attached(&tst.to_der().unwrap()),
            &options,
            None,
            None,
        )
        .await
        .map_err(|e| TimestampError::Unavailable {
            reason: e.to_string(),
        })
    }
}

/// Validation data: the root, one CRL from the issuing CA, and given OCSP responses.
pub(crate) struct FakeValidation {
    pub data: ValidationData,
    pub asked_for: Mutex<usize>,
}

#[async_trait]
impl ValidationDataSource for FakeValidation {
    async fn validation_data(
        &self,
        chain: &[Certificate],
    ) -> Result<ValidationData, ValidationDataError> {
        *self.asked_for.lock().unwrap() = chain.len();
        Ok(self.data.clone())
    }
}
