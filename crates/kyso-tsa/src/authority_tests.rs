//! TSA tests against a real SoftHSM token, a test PKI made with kyso-ca, and openssl.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use der::EncodePem;
use der::asn1::OctetString;
use kyso_asn1::rfc3161::{MessageImprint, PkiFailureInfo, PkiStatus, parse_token, parse_token_der};
use kyso_ca::{
    CertificateOrder, Issuer, ProfileKind, ProfileSettings, VnSubject, issue_certificate,
    issue_sub_ca, random_serial, self_signed_root,
};
use kyso_clock::{Clock, ManualClock, SystemClock};
use kyso_hsm::KeyAlgorithm;
use x509_cert::ext::Extension;

use super::*;
use crate::ledger::InMemoryLedger;
use crate::trust::{AlwaysTrusted, SwitchableClockTrust};
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::Decode;

const POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.59999.3161.1");
const OTHER_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.59999.3161.2");

struct Fixture {
    signer: CadesSigner,
    clock: ManualClock,
    dir: tempfile::TempDir,
}

fn subject(cn: &str) -> VnSubject {
    VnSubject {
        common_name: cn.into(),
        province: Some("Hà Nội".into()),
        organisation: Some("Cục Chứng thực số".into()),
        ..VnSubject::default()
    }
}

fn write_pem(path: &Path, cert: &Certificate) {
    let pem = cert.to_pem(der::pem::LineEnding::LF).expect("pem");
    std::fs::write(path, pem).expect("write pem");
}

impl Fixture {
    /// Root (P-384) -> issuing CA (P-256) -> TSA certificate (P-256), keys on a fresh token.
    async fn new(name: &str) -> Fixture {
        let token = kyso_hsm::testing::fresh_token(name);
        // Real time, so openssl (which checks validity against its own clock) agrees.
        let clock = ManualClock::new(SystemClock.now());
        let settings = ProfileSettings::new("http://127.0.0.1:8080/", None).expect("settings");
        let root_key = token
            .generate_key("root", KeyAlgorithm::EcP384)
            .await
            .expect("key");
        let root_cert = self_signed_root(
            "root",
            &root_key,
            &subject("kyso TSA Test Root"),
            None,
            &settings,
            random_serial(),
            &clock,
        )
        .await
        .expect("root");
        let root = Issuer::new("root", root_cert, root_key).expect("root issuer");
        let issuing_key = token
            .generate_key("issuing", KeyAlgorithm::EcP256)
            .await
            .expect("key");
        let issuing_cert = issue_sub_ca(
            &root,
            &subject("kyso TSA Test Issuing CA"),
            issuing_key.public_key_info(),
            None,
            &settings,
            random_serial(),
            &clock,
        )
        .await
        .expect("issuing");
        let issuing = Issuer::new("issuing", issuing_cert, issuing_key).expect("issuer");
        let tsa_key = token
            .generate_key("tsa", KeyAlgorithm::EcP256)
            .await
            .expect("key");
        let order = CertificateOrder {
            profile: ProfileKind::Tsa,
            subject: subject("kyso Timestamp Authority"),
            public_key: tsa_key.public_key_info().clone(),
            validity_days: None,
            client_auth: false,
        };
        let tsa_cert = issue_certificate(&issuing, &order, &settings, random_serial(), &clock)
            .await
            .expect("tsa cert");
        let dir = tempfile::tempdir().expect("tempdir");
        write_pem(&dir.path().join("root.pem"), root.certificate());
        write_pem(&dir.path().join("issuing.pem"), issuing.certificate());
        write_pem(&dir.path().join("tsa.pem"), &tsa_cert);
        let signer = CadesSigner::new(tsa_key, tsa_cert, vec![issuing.certificate().clone()])
            .expect("signer");
        Fixture { signer, clock, dir }
    }

    fn authority_with(
        &self,
        config: TsaConfig,
        ledger: Arc<dyn SerialLedger>,
        trust: Arc<dyn ClockTrust>,
    ) -> TimestampAuthority {
        TimestampAuthority::new(
            self.signer.clone(),
            config,
            self.clock.shared(),
            ledger,
            trust,
        )
    }

    fn authority(&self) -> (TimestampAuthority, Arc<InMemoryLedger>) {
        let ledger = Arc::new(InMemoryLedger::new());
        let mut config = TsaConfig::new(POLICY);
        config.accepted_policies = vec![OTHER_POLICY];
        let tsa = self.authority_with(config, ledger.clone(), Arc::new(AlwaysTrusted));
        (tsa, ledger)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `openssl ts -query` over a data file; returns the query file's path.
fn openssl_query(fx: &Fixture, name: &str, extra: &[&str]) -> PathBuf {
    let data = fx.path("data.txt");
    std::fs::write(&data, "Quyết định số 123/QĐ-UBND").expect("data");
    let query = fx.path(&format!("{name}.tsq"));
    let mut args = vec![
        "ts",
        "-query",
        "-data",
        path_str(&data),
        "-out",
        path_str(&query),
    ];
    args.extend_from_slice(extra);
    let (ok, text) = openssl(&args);
    assert!(ok, "openssl ts -query: {text}");
    query
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

fn status_of(reply: &[u8]) -> PkiStatusInfo {
    TimeStampResp::from_der(reply).expect("reply parses").status
}

fn assert_rejected(reply: &[u8], fail_info: PkiFailureInfo) {
    let resp = TimeStampResp::from_der(reply).expect("reply parses");
    assert_eq!(resp.status.status, PkiStatus::Rejection);
    assert_eq!(
        resp.status.fail_info,
        Some(fail_info),
        "{:?}",
        resp.status.status_string
    );
    assert!(resp.status.status_string.is_some_and(|s| !s[0].is_empty()));
    assert!(
        resp.time_stamp_token.is_none(),
        "a rejection carries no token"
    );
}

fn query(hash: HashAlgorithm, digest_len: usize) -> TimeStampReq {
    TimeStampReq {
        version: 1,
        message_imprint: MessageImprint::new(hash, &vec![0x5a; digest_len]).expect("imprint"),
        req_policy: None,
        nonce: Some(Int::new(&[0x12, 0x34, 0x56]).expect("nonce")),
        cert_req: true,
        extensions: None,
    }
}

#[tokio::test]
async fn openssl_verifies_replies_to_openssl_queries() {
    let fx = Fixture::new("tsa-openssl").await;
    let (tsa, ledger) = fx.authority();
    let root = fx.path("root.pem");
    let issuing = fx.path("issuing.pem");
    for (name, hash) in [
        ("q256", "-sha256"),
        ("q384", "-sha384"),
        ("q512", "-sha512"),
    ] {
        let query = openssl_query(&fx, name, &[hash, "-cert"]);
        let reply = tsa.respond(&std::fs::read(&query).expect("query")).await;
        assert_eq!(status_of(&reply).status, PkiStatus::Granted);
        let reply_path = fx.path(&format!("{name}.tsr"));
        std::fs::write(&reply_path, &reply).expect("write reply");
        let (ok, text) = openssl(&[
            "ts",
            "-verify",
            "-queryfile",
            path_str(&query),
            "-in",
            path_str(&reply_path),
            "-CAfile",
            path_str(&root),
            "-untrusted",
            path_str(&issuing),
        ]);
        assert!(ok && text.contains("Verification: OK"), "{name}: {text}");
    }
    assert_eq!(ledger.len(), 3);

    // The text form shows our policy, accuracy and the echoed nonce.
    let (ok, text) = openssl(&[
        "ts",
        "-reply",
        "-in",
        path_str(&fx.path("q256.tsr")),
        "-text",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("Status: Granted."), "{text}");
    assert!(text.contains(&format!("Policy OID: {POLICY}")), "{text}");
    assert!(text.contains("Accuracy: 0x01 seconds"), "{text}");
    let (_, query_text) = openssl(&[
        "ts",
        "-query",
        "-in",
        path_str(&fx.path("q256.tsq")),
        "-text",
    ]);
    let nonce_line = query_text
        .lines()
        .find(|l| l.trim_start().starts_with("Nonce:"))
        .expect("query has a nonce");
    assert!(
        text.contains(nonce_line.trim()),
        "nonce echoed: {nonce_line}\n{text}"
    );
}

#[tokio::test]
async fn without_cert_req_the_token_has_no_certificates() {
    let fx = Fixture::new("tsa-nocert").await;
    let (tsa, _) = fx.authority();
    let query = openssl_query(&fx, "nocert", &["-sha256"]);
    let reply = tsa.respond(&std::fs::read(&query).expect("query")).await;
    let token = TimeStampResp::from_der(&reply)
        .expect("reply")
        .time_stamp_token
        .expect("token");
    let parsed = parse_token(&token).expect("token parses");
    assert!(parsed.signed_data.certificates.is_none());
    // openssl then needs the TSA certificate from elsewhere.
    let reply_path = fx.path("nocert.tsr");
    std::fs::write(&reply_path, &reply).expect("write");
    let untrusted = fx.path("chain.pem");
    let chain = [
        std::fs::read(fx.path("tsa.pem")).expect("tsa"),
        std::fs::read(fx.path("issuing.pem")).expect("issuing"),
    ]
    .concat();
    std::fs::write(&untrusted, chain).expect("chain");
    let (ok, text) = openssl(&[
        "ts",
        "-verify",
        "-queryfile",
        path_str(&query),
        "-in",
        path_str(&reply_path),
        "-CAfile",
        path_str(&fx.path("root.pem")),
        "-untrusted",
        path_str(&untrusted),
    ]);
    assert!(ok && text.contains("Verification: OK"), "{text}");
}

#[tokio::test]
async fn token_contents_follow_the_query_and_config() {
    let fx = Fixture::new("tsa-contents").await;
    let ledger = Arc::new(InMemoryLedger::new());
    let mut config = TsaConfig::new(POLICY);
    config.accepted_policies = vec![OTHER_POLICY];
    config.include_tsa_name = true;
    config.accuracy = Some(Duration::from_millis(500));
    let tsa = fx.authority_with(config, ledger.clone(), Arc::new(AlwaysTrusted));
    let mut req = query(HashAlgorithm::Sha384, 48);
    req.req_policy = Some(OTHER_POLICY);
    let issued = tsa.issue(&req).await.expect("issued");
    let parsed = parse_token_der(&issued.token_der).expect("token");
    let tst = parsed.tst_info;
    assert_eq!(parsed.tst_info_der, tst.to_der().expect("der"));
    assert_eq!(tst.policy, OTHER_POLICY);
    assert_eq!(tst.message_imprint, req.message_imprint);
    assert_eq!(tst.nonce, req.nonce, "nonce echoed");
    assert_eq!(
        tst.accuracy,
        Some(Accuracy {
            seconds: None,
            millis: Some(500),
            micros: None
        })
    );
    let expected_name =
        GeneralName::DirectoryName(fx.signer.certificate().tbs_certificate().subject().clone());
    assert_eq!(tst.tsa, Some(expected_name));
    // genTime is the injected clock's time, to the millisecond.
    let now = fx.clock.now_utc();
    let generated = tst.gen_time.to_offset_date_time();
    assert!(
        now - generated < time::Duration::milliseconds(1) && generated <= now,
        "{generated} vs {now}"
    );
    // The serial: 16 bytes, positive, recorded with the rest.
    let serial = tst.serial_number.as_bytes();
    assert_eq!(serial.len(), 16);
    assert_eq!(serial[0] & 0x80, 0);
    let record = ledger.get(serial).expect("recorded");
    assert_eq!(record, issued.record);
    assert_eq!(record.policy, OTHER_POLICY.to_string());
    assert_eq!(record.hash_algorithm, "sha384");
    assert_eq!(record.nonce.as_deref(), Some(&[0x12, 0x34, 0x56][..]));
    assert_eq!(
        record.token_sha256,
        sha2::Sha256::digest(&issued.token_der).to_vec()
    );
    // The signed attributes name the TSA certificate (signing-certificate-v2).
    let signer_info = parsed
        .signed_data
        .signer_infos
        .0
        .iter()
        .next()
        .expect("signer info");
    let attrs = signer_info
        .signed_attrs
        .as_ref()
        .expect("signed attributes");
    let ess = attrs
        .iter()
        .find(|a| a.oid == kyso_asn1::oids::ID_AA_SIGNING_CERTIFICATE_V2)
        .expect("signing-certificate-v2");
    let value = ess.values.iter().next().expect("value");
    let ess: kyso_asn1::ess::SigningCertificateV2 = value.decode_as().expect("ess");
    assert!(ess.names_signer(fx.signer.certificate()));
    assert!(
        attrs
            .iter()
            .any(|a| a.oid == kyso_asn1::oids::ID_CONTENT_TYPE)
    );
    assert!(
        attrs
            .iter()
            .any(|a| a.oid == kyso_asn1::oids::ID_MESSAGE_DIGEST)
    );
}

#[tokio::test]
async fn serials_are_unique_and_all_recorded() {
    let fx = Fixture::new("tsa-serials").await;
    let (tsa, ledger) = fx.authority();
    let mut serials = std::collections::HashSet::new();
    for i in 0u8..20 {
        let mut req = query(HashAlgorithm::Sha256, 32);
        req.nonce = Some(Int::new(&[0x01, i]).expect("nonce"));
        let issued = tsa.issue(&req).await.expect("issued");
        assert_eq!(issued.tst_info.nonce, req.nonce);
        assert!(
            serials.insert(issued.record.serial.clone()),
            "serial repeated"
        );
    }
    assert_eq!(ledger.len(), 20);
}

#[tokio::test]
async fn bad_queries_get_their_rfc_failure_info() {
    let fx = Fixture::new("tsa-rejects").await;
    let (tsa, ledger) = fx.authority();

    // SHA-1 (a real openssl query) and SHA-224 are not accepted.
    let sha1 = openssl_query(&fx, "sha1", &["-sha1"]);
    assert_rejected(
        &tsa.respond(&std::fs::read(sha1).expect("q")).await,
        PkiFailureInfo::BAD_ALG,
    );
    let sha224 = openssl_query(&fx, "sha224", &["-sha224"]);
    assert_rejected(
        &tsa.respond(&std::fs::read(sha224).expect("q")).await,
        PkiFailureInfo::BAD_ALG,
    );

    // A SHA-256 imprint of the wrong length: malformed data (as OpenSSL's TSA answers).
    let short = query(HashAlgorithm::Sha256, 20).to_der().expect("der");
    assert_rejected(&tsa.respond(&short).await, PkiFailureInfo::BAD_DATA_FORMAT);

    // A policy this TSA does not issue under.
    let policy = openssl_query(&fx, "policy", &["-sha256", "-tspolicy", "1.2.3.4"]);
    assert_rejected(
        &tsa.respond(&std::fs::read(policy).expect("q")).await,
        PkiFailureInfo::UNACCEPTED_POLICY,
    );

    // Any extension.
    let mut with_ext = query(HashAlgorithm::Sha256, 32);
    with_ext.extensions = Some(vec![Extension {
        extn_id: ObjectIdentifier::new_unwrap("1.2.3.4.5"),
        critical: false,
        extn_value: OctetString::new(vec![0x05, 0x00]).expect("value"),
    }]);
    let with_ext = with_ext.to_der().expect("der");
    assert_rejected(
        &tsa.respond(&with_ext).await,
        PkiFailureInfo::UNACCEPTED_EXTENSION,
    );

    // Version 2 does not exist.
    let mut v2 = query(HashAlgorithm::Sha256, 32);
    v2.version = 2;
    assert_rejected(
        &tsa.respond(&v2.to_der().expect("der")).await,
        PkiFailureInfo::BAD_REQUEST,
    );

    // Garbage, truncation, emptiness and oversize.
    let good = query(HashAlgorithm::Sha256, 32).to_der().expect("der");
    for bad in [
        b"not a timestamp query".to_vec(),
        good[..good.len() - 3].to_vec(),
        Vec::new(),
        vec![0x30; 70 * 1024],
    ] {
        assert_rejected(&tsa.respond(&bad).await, PkiFailureInfo::BAD_DATA_FORMAT);
    }
    assert!(ledger.is_empty(), "nothing issued for rejected queries");

    // The error side of the same checks, with stable codes.
    let err = tsa
        .issue(&query(HashAlgorithm::Sha512, 32))
        .await
        .expect_err("length");
    assert_eq!(err.code(), "tsa_imprint_length");
}

#[tokio::test]
async fn untrusted_clock_means_time_not_available() {
    let fx = Fixture::new("tsa-clock").await;
    let ledger = Arc::new(InMemoryLedger::new());
    let trust = Arc::new(SwitchableClockTrust::new(false));
    let tsa = fx.authority_with(TsaConfig::new(POLICY), ledger.clone(), trust.clone());
    let req = query(HashAlgorithm::Sha256, 32).to_der().expect("der");
    assert_rejected(&tsa.respond(&req).await, PkiFailureInfo::TIME_NOT_AVAILABLE);
    assert!(ledger.is_empty());
    trust.set(true);
    assert_eq!(
        status_of(&tsa.respond(&req).await).status,
        PkiStatus::Granted
    );

    // The explicit opt-out ignores the trust check.
    trust.set(false);
    let mut config = TsaConfig::new(POLICY);
    config.require_synchronised_clock = false;
    let tsa = fx.authority_with(config, ledger.clone(), trust);
    assert_eq!(
        status_of(&tsa.respond(&req).await).status,
        PkiStatus::Granted
    );
    assert_eq!(ledger.len(), 2);
}

/// A ledger that fails the way a lost database connection does.
struct BrokenLedger;

#[async_trait]
impl SerialLedger for BrokenLedger {
    async fn record(&self, _: &TimestampRecord) -> Result<(), LedgerError> {
        Err(LedgerError::Unavailable {
            reason: "database connection lost".into(),
        })
    }
}

/// A ledger reporting the first `duplicates` serials as already taken.
struct CollidingLedger {
    duplicates: u32,
    calls: AtomicU32,
    kept: Mutex<Vec<Vec<u8>>>,
}

#[async_trait]
impl SerialLedger for CollidingLedger {
    async fn record(&self, ts: &TimestampRecord) -> Result<(), LedgerError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.duplicates {
            return Err(LedgerError::DuplicateSerial {
                serial_hex: "00".into(),
            });
        }
        self.kept.lock().expect("lock").push(ts.serial.clone());
        Ok(())
    }
}

#[tokio::test]
async fn ledger_failure_is_a_system_failure_without_token() {
    let fx = Fixture::new("tsa-ledger").await;
    let tsa = fx.authority_with(
        TsaConfig::new(POLICY),
        Arc::new(BrokenLedger),
        Arc::new(AlwaysTrusted),
    );
    let req = query(HashAlgorithm::Sha256, 32);
    let reply = tsa.respond(&req.to_der().expect("der")).await;
    assert_rejected(&reply, PkiFailureInfo::SYSTEM_FAILURE);
    let text = status_of(&reply).status_string.expect("text").join(" ");
    assert!(text.contains("tsa_ledger_unavailable"), "{text}");
    assert!(
        !text.contains("database"),
        "internal details stay in the log: {text}"
    );
    let err = tsa.issue(&req).await.expect_err("not issued");
    assert_eq!(err.fail_info(), PkiFailureInfo::SYSTEM_FAILURE);
}

#[tokio::test]
async fn duplicate_serials_are_retried_with_new_ones() {
    let fx = Fixture::new("tsa-dup").await;
    let ledger = Arc::new(CollidingLedger {
        duplicates: 2,
        calls: AtomicU32::new(0),
        kept: Mutex::new(Vec::new()),
    });
    let tsa = fx.authority_with(
        TsaConfig::new(POLICY),
        ledger.clone(),
        Arc::new(AlwaysTrusted),
    );
    let issued = tsa
        .issue(&query(HashAlgorithm::Sha256, 32))
        .await
        .expect("third try");
    assert_eq!(ledger.calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        *ledger.kept.lock().expect("lock"),
        vec![issued.record.serial.clone()]
    );
    assert_eq!(
        issued.tst_info.serial_number.as_bytes(),
        issued.record.serial
    );

    let always = Arc::new(CollidingLedger {
        duplicates: u32::MAX,
        calls: AtomicU32::new(0),
        kept: Mutex::new(Vec::new()),
    });
    let tsa = fx.authority_with(TsaConfig::new(POLICY), always, Arc::new(AlwaysTrusted));
    let reply = tsa
        .respond(&query(HashAlgorithm::Sha256, 32).to_der().expect("der"))
        .await;
    assert_rejected(&reply, PkiFailureInfo::SYSTEM_FAILURE);
}

#[test]
fn fallback_system_failure_response_is_the_encoded_one() {
    let resp = TimeStampResp {
        status: PkiStatusInfo {
            status: PkiStatus::Rejection,
            status_string: None,
            fail_info: Some(PkiFailureInfo::SYSTEM_FAILURE),
        },
        time_stamp_token: None,
    };
    assert_eq!(resp.to_der().expect("der"), SYSTEM_FAILURE_RESPONSE);
}

/// The granted reply written around the token is what encoding a `TimeStampResp` gives, for
/// tokens with and without certificates; `reply` states the status the reply carries.
#[tokio::test]
async fn granted_replies_are_the_encoded_time_stamp_resp() {
    let fx = Fixture::new("tsa-granted-bytes").await;
    let (tsa, _) = fx.authority();
    for (name, extra) in [
        ("with-certs", &["-sha256", "-cert"][..]),
        ("no-certs", &["-sha256"][..]),
    ] {
        let query = openssl_query(&fx, name, extra);
        let reply = tsa.reply(&std::fs::read(&query).expect("query")).await;
        assert_eq!(reply.status, PkiStatus::Granted, "{name}");
        let parsed = TimeStampResp::from_der(&reply.der).expect("reply parses");
        assert_eq!(parsed.status, PkiStatusInfo::granted(), "{name}");
        assert_eq!(parsed.to_der().expect("der"), reply.der, "{name}");
        let token = parsed
            .time_stamp_token
            .expect("token")
            .to_der()
            .expect("der");
        assert_eq!(
            granted_response(&token).expect("granted"),
            reply.der,
            "{name}"
        );
    }
    // A token over 64 KiB needs a long-form length in the outer header too.
    let big = ContentInfo {
        content_type: ID_CT_TST_INFO,
        content: der::Any::new(der::Tag::OctetString, vec![7u8; 70_000]).expect("any"),
    };
    let big_der = big.to_der().expect("der");
    let expected = TimeStampResp {
        status: PkiStatusInfo::granted(),
        time_stamp_token: Some(big),
    }
    .to_der()
    .expect("der");
    assert_eq!(granted_response(&big_der).expect("granted"), expected);

    let rejected = tsa.reply(b"not a query").await;
    assert_eq!(rejected.status, PkiStatus::Rejection);
    assert_eq!(status_of(&rejected.der).status, PkiStatus::Rejection);
}

#[test]
fn serials_are_positive_16_byte_integers_ordered_by_time() {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(1_780_000_000_123_456_789).unwrap();
    let mut earlier: Option<Vec<u8>> = None;
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..100i128 {
        let serial = super::time_ordered_serial(at + time::Duration::microseconds(n as i64))
            .expect("serial");
        assert_eq!(serial.len(), 16);
        assert_eq!(serial[0], 0x40);
        let int = Int::new(&serial).expect("int");
        assert_eq!(int.as_bytes(), serial);
        // The microseconds, then the random half.
        let mut micros = [0u8; 8];
        micros[1..].copy_from_slice(&serial[1..8]);
        assert_eq!(
            i128::from(u64::from_be_bytes(micros)),
            1_780_000_000_123_456 + n
        );
        if let Some(earlier) = &earlier {
            assert!(serial > *earlier, "later serials sort after earlier ones");
        }
        assert!(seen.insert(serial[8..].to_vec()), "random halves differ");
        earlier = Some(serial);
    }
    // The same microsecond twice: still two serials.
    assert_ne!(
        super::time_ordered_serial(at).expect("serial"),
        super::time_ordered_serial(at).expect("serial")
    );
}

#[tokio::test]
async fn local_source_timestamps_a_cades_signature() {
    use kyso_cades::{Content, Level, SignOptions, TimestampSource};
    let fx = Fixture::new("tsa-local").await;
    let (tsa, ledger) = fx.authority();
    let source = crate::LocalTimestampSource::new(Arc::new(tsa));
    let options = SignOptions::new(Level::BT, fx.clock.now_utc());
    let cms = kyso_cades::sign(
        &fx.signer,
        Content::Attached(b"van ban"),
        &options,
        Some(&source),
        None,
    )
    .await
    .expect("B-T signature");
    let content_info = ContentInfo::from_der(&cms).expect("content info");
    let signed_data: SignedData = content_info.content.decode_as().expect("signed data");
    let signer_info = signed_data
        .signer_infos
        .0
        .iter()
        .next()
        .expect("signer info");
    let unsigned = signer_info
        .unsigned_attrs
        .as_ref()
        .expect("unsigned attributes");
    let attr = unsigned
        .iter()
        .find(|a| a.oid == kyso_asn1::oids::ID_AA_TIME_STAMP_TOKEN)
        .expect("signature timestamp");
    let token_der = attr
        .values
        .iter()
        .next()
        .expect("token")
        .to_der()
        .expect("der");
    let tst = parse_token_der(&token_der).expect("token").tst_info;
    let signature_digest = sha2::Sha256::digest(signer_info.signature.as_bytes());
    assert_eq!(
        tst.message_imprint.hashed_message.as_bytes(),
        signature_digest.as_slice()
    );
    assert_eq!(ledger.len(), 1);

    // A wrong-length digest is the caller's mistake: a rejection, not "unavailable".
    let err = source
        .timestamp(kyso_hsm::HashAlgorithm::Sha256, &[1; 20])
        .await
        .expect_err("bad digest");
    assert_eq!(err.code(), "timestamp_rejected");
}

/// Serves `tsa` at http://127.0.0.1:<port>/tsa; gives the URL.
async fn serve(tsa: TimestampAuthority) -> String {
    let tsa = Arc::new(tsa);
    let app = axum::Router::new().route(
        "/tsa",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tsa = tsa.clone();
            async move { tsa.respond(&body).await }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/tsa")
}

#[tokio::test]
async fn http_source_gets_and_checks_tokens() {
    use kyso_cades::TimestampSource;
    let fx = Fixture::new("tsa-http").await;
    let (tsa, ledger) = fx.authority();
    let url = serve(tsa).await;
    let timeout = Duration::from_secs(10);

    let source = crate::HttpTimestampSource::new(&url, None, timeout).expect("client");
    let digest = [0x77; 48];
    let token = source
        .timestamp(kyso_hsm::HashAlgorithm::Sha384, &digest)
        .await
        .expect("token over HTTP");
    let tst = parse_token_der(&token).expect("token").tst_info;
    assert_eq!(tst.message_imprint.hashed_message.as_bytes(), digest);
    assert_eq!(tst.policy, POLICY);

    let with_policy =
        crate::HttpTimestampSource::new(&url, Some(OTHER_POLICY), timeout).expect("client");
    let token = with_policy
        .timestamp(kyso_hsm::HashAlgorithm::Sha256, &[1; 32])
        .await
        .expect("accepted policy");
    assert_eq!(
        parse_token_der(&token).expect("token").tst_info.policy,
        OTHER_POLICY
    );

    let refused = crate::HttpTimestampSource::new(
        &url,
        Some(ObjectIdentifier::new_unwrap("1.2.3.4")),
        timeout,
    )
    .expect("client");
    let err = refused
        .timestamp(kyso_hsm::HashAlgorithm::Sha256, &[1; 32])
        .await
        .expect_err("policy refused");
    assert_eq!(err.code(), "timestamp_rejected");
    assert!(err.to_string().contains("unacceptedPolicy"), "{err}");
    assert_eq!(ledger.len(), 2);

    let nowhere =
        crate::HttpTimestampSource::new("http://127.0.0.1:9/tsa", None, timeout).expect("client");
    let err = nowhere
        .timestamp(kyso_hsm::HashAlgorithm::Sha256, &[1; 32])
        .await
        .expect_err("no server");
    assert_eq!(err.code(), "timestamp_unavailable");
}

#[tokio::test]
async fn check_reply_refuses_replies_to_other_queries() {
    let fx = Fixture::new("tsa-check").await;
    let (tsa, _) = fx.authority();
    let asked = query(HashAlgorithm::Sha256, 32);
    let reply = tsa.respond(&asked.to_der().expect("der")).await;
    crate::check_reply(&asked, &reply).expect("matching reply");

    let mut other_nonce = asked.clone();
    other_nonce.nonce = Some(Int::new(&[0x09]).expect("nonce"));
    let err = crate::check_reply(&other_nonce, &reply).expect_err("nonce differs");
    assert!(err.to_string().contains("nonce"), "{err}");

    let mut other_imprint = asked.clone();
    other_imprint.message_imprint =
        MessageImprint::new(HashAlgorithm::Sha256, &[0; 32]).expect("mi");
    let err = crate::check_reply(&other_imprint, &reply).expect_err("imprint differs");
    assert!(err.to_string().contains("imprint"), "{err}");

    let mut other_policy = asked.clone();
    other_policy.req_policy = Some(OTHER_POLICY);
    assert!(crate::check_reply(&other_policy, &reply).is_err());

    let err = crate::check_reply(&asked, b"garbage").expect_err("garbage");
    assert_eq!(err.code(), "timestamp_invalid_response");
}
