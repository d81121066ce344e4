//! Test support: a root and an issuing CA whose keys live on a fresh SoftHSM token, files for the
//! openssl binary, and a small wrapper to run it.

use std::path::{Path, PathBuf};
use std::process::Command;

use der::{Encode, EncodePem};
use kyso_clock::{Clock, ManualClock, SystemClock};
use kyso_hsm::{HsmKey, KeyAlgorithm, Token};
use x509_cert::certificate::Certificate;

use crate::issue::{Issuer, issue_certificate, issue_sub_ca, random_serial, self_signed_root};
use crate::profile::{CertificateOrder, ProfileKind, ProfileSettings};
use crate::subject::VnSubject;

pub(crate) struct TestPki {
    pub token: Token,
    /// Starts at the real time so the openssl binary (which checks against its own clock) agrees.
    pub clock: ManualClock,
    pub settings: ProfileSettings,
    pub root: Issuer,
    pub issuing: Issuer,
    pub dir: tempfile::TempDir,
}

pub(crate) fn org_subject(cn: &str) -> VnSubject {
    VnSubject {
        common_name: cn.into(),
        province: Some("Đà Nẵng".into()),
        organisation: Some("ỦY BAN NHÂN DÂN THÀNH PHỐ ĐÀ NẴNG".into()),
        identities: vec![
            "MST:0400260612".parse().unwrap(),
            "MNS:1047665".parse().unwrap(),
        ],
        ..VnSubject::default()
    }
}

pub(crate) fn staff_subject() -> VnSubject {
    VnSubject {
        common_name: "Nguyễn Văn An".into(),
        locality: Some("Quảng Ngãi".into()),
        organisation: Some("ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI".into()),
        organisational_unit: Some("SỞ THÔNG TIN VÀ TRUYỀN THÔNG".into()),
        title: Some("Chuyên viên".into()),
        email: Some("annv@quangngai.gov.vn".into()),
        identities: vec!["CCCD:079212345645".parse().unwrap()],
        ..VnSubject::default()
    }
}

impl TestPki {
    /// Root (P-384) and issuing CA (P-256) on a fresh token.
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
            &org_subject("kyso Test Root CA"),
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
            &org_subject("kyso Test Issuing CA"),
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
        pki.write_pem("root.pem", pki.root.certificate());
        pki.write_pem("issuing.pem", pki.issuing.certificate());
        pki
    }

    /// A new key on the token.
    pub async fn key(&self, label: &str, algorithm: KeyAlgorithm) -> HsmKey {
        self.token.generate_key(label, algorithm).await.unwrap()
    }

    /// Issues a certificate of `profile` from the issuing CA for a new key on the token.
    pub async fn issue(
        &self,
        label: &str,
        profile: ProfileKind,
        subject: VnSubject,
    ) -> (Certificate, HsmKey) {
        let key = self.key(label, KeyAlgorithm::EcP256).await;
        let order = CertificateOrder {
            profile,
            subject,
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
        (cert, key)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn write_pem(&self, file: &str, cert: &Certificate) {
        std::fs::write(
            self.path(file),
            cert.to_pem(der::pem::LineEnding::LF).unwrap(),
        )
        .unwrap();
    }

    pub fn write_der(&self, file: &str, value: &impl Encode) {
        std::fs::write(self.path(file), value.to_der().unwrap()).unwrap();
    }
}

/// Runs openssl in `dir`; returns (success, stdout + stderr).
pub(crate) fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs openssl and fails the test if it fails.
pub(crate) fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, text) = openssl(dir, args);
    assert!(ok, "openssl {args:?} failed:\n{text}");
    text
}
