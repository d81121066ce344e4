//! Time per verification of a CAdES B-T signature with full path validation:
//! `kyso_cades::SignatureValidator::validate_cms`, what `POST /v1/verify` runs before it signs
//! its receipt, on 1 and 2 threads (this machine has 2 cores).
//!
//! The fixture is a PKI like `kyso init` makes, on a fresh SoftHSM token: a P-384 root, a P-256
//! issuing CA under it, a P-256 TSA certificate and a signer certificate (P-256 or RSA-2048,
//! profile staff_signing) under the issuing CA. kyso's own `TimestampAuthority` (in-memory ledger)
//! stamps the signatures. Each signature is a B-T attached signature over a 4 KiB document, with
//! the issuing CA in `certificates` and a timestamp token carrying the TSA's chain. The validator
//! trusts only the root and gets the two CRLs (root's, listing nothing; issuing CA's, listing one
//! other certificate) as caller-supplied revocation data. So every verification checks the CMS
//! signature and its signed attributes, the timestamp token (its signature, its imprint over the
//! signature value), the TSA's path root → issuing → TSA and the signer's path root → issuing →
//! signer at the timestamp's time, with revocation from both CRLs. One validator is shared by the
//! threads, as the server shares one: certval's cache of verified certificate signatures is warm
//! after the first verification, as it is in a running server.
//!
//! Eight distinct signatures are verified in turn. With 2 threads the time reported is wall time
//! divided by the verifications both made, i.e. the inverse of the throughput (as `hsm_signing`).
//!
//!     cargo bench -p kyso-benches --bench cms_verify
//!
//! Why criterion and not a fixed-count tool like `hsm-rate`: there is no baseline to alternate
//! with here (the target is an absolute rate), and criterion's repeated samples with a confidence
//! interval show how much the figure moves on this shared machine. `scripts/bench-trust` reads the
//! estimates criterion writes (`target/criterion/cms_verify_*/…/new/estimates.json`).
//!
//! For instruction counts, which stay stable on a busy machine, `CMS_VERIFY_COUNT=N` skips
//! criterion: after the checked warm-up it runs N P-256 verifications on one thread in
//! `counted_verifications` and exits, so callgrind can count just those:
//!
//!     CMS_VERIFY_COUNT=200 valgrind --tool=callgrind \
//!         --toggle-collect='cms_verify::counted_verifications' target/release/deps/cms_verify-…

use std::sync::Arc;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use der::Encode;
use kyso_ca::{
    CertificateOrder, CrlParams, Issuer, ProfileKind, ProfileSettings, RevocationReason,
    RevokedEntry, VnSubject, build_crl, issue_certificate, issue_sub_ca, random_serial,
    self_signed_root,
};
use kyso_cades::{
    CadesSigner, CmsInput, Content, Level, SignOptions, SignatureValidator, TimestampSource, sign,
};
use kyso_clock::{Clock, Stopwatch, SystemClock};
use kyso_hsm::{KeyAlgorithm, Token};
use kyso_tsa::{
    AlwaysTrusted, InMemoryLedger, LocalTimestampSource, TimestampAuthority, TsaConfig,
};
use kyso_validate::{Indication, PathValidator, RevocationData, TrustAnchors, ValidationPolicy};
use x509_cert::Certificate;

/// The allocator the kyso binary (and so `POST /v1/verify`) runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const THREADS: [usize; 2] = [1, 2];
const SIGNATURES: usize = 8;
const DOCUMENT_LEN: usize = 4096;
/// kyso's default TSA policy arc (any OID will do for the bench).
const TSA_POLICY: &str = "1.3.6.1.4.1.99999.1.1";

fn subject(cn: &str) -> VnSubject {
    VnSubject {
        common_name: cn.into(),
        province: Some("Quảng Ngãi".into()),
        organisation: Some("ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI".into()),
        organisational_unit: Some("SỞ THÔNG TIN VÀ TRUYỀN THÔNG".into()),
        email: Some("annv@quangngai.gov.vn".into()),
        identities: vec![
            "CCCD:051212345645"
                .parse()
                .unwrap_or_else(|e| panic!("identity: {e:?}")),
        ],
        ..VnSubject::default()
    }
}

/// The test PKI: root and issuing CA, their CRLs, and the issuing CA's certificate orders.
struct Pki {
    token: Token,
    settings: ProfileSettings,
    root: Issuer,
    issuing: Issuer,
}

impl Pki {
    async fn new() -> Pki {
        let token = kyso_hsm::testing::fresh_token("bench-cms-verify");
        let settings = ProfileSettings::new("http://127.0.0.1:8080/", None)
            .unwrap_or_else(|e| panic!("profile settings: {e}"));
        let root_key = token
            .generate_key("root", KeyAlgorithm::EcP384)
            .await
            .unwrap_or_else(|e| panic!("root key: {e}"));
        let root_cert = self_signed_root(
            "root",
            &root_key,
            &subject("kyso Bench Root CA"),
            None,
            &settings,
            random_serial(),
            &SystemClock,
        )
        .await
        .unwrap_or_else(|e| panic!("root certificate: {e}"));
        let root =
            Issuer::new("root", root_cert, root_key).unwrap_or_else(|e| panic!("root issuer: {e}"));
        let issuing_key = token
            .generate_key("issuing", KeyAlgorithm::EcP256)
            .await
            .unwrap_or_else(|e| panic!("issuing key: {e}"));
        let issuing_cert = issue_sub_ca(
            &root,
            &subject("kyso Bench Issuing CA"),
            issuing_key.public_key_info(),
            None,
            &settings,
            random_serial(),
            &SystemClock,
        )
        .await
        .unwrap_or_else(|e| panic!("issuing certificate: {e}"));
        let issuing = Issuer::new("issuing", issuing_cert, issuing_key)
            .unwrap_or_else(|e| panic!("issuing issuer: {e}"));
        Pki {
            token,
            settings,
            root,
            issuing,
        }
    }

    /// A new key of `algorithm` and a certificate of `profile` for it from the issuing CA.
    async fn signer(
        &self,
        label: &str,
        algorithm: KeyAlgorithm,
        profile: ProfileKind,
    ) -> CadesSigner {
        let key = self
            .token
            .generate_key(label, algorithm)
            .await
            .unwrap_or_else(|e| panic!("key {label}: {e}"));
        let order = CertificateOrder {
            profile,
            subject: subject(&format!("Nguyễn Văn An ({label})")),
            public_key: key.public_key_info().clone(),
            validity_days: None,
            client_auth: false,
        };
        let cert = issue_certificate(
            &self.issuing,
            &order,
            &self.settings,
            random_serial(),
            &SystemClock,
        )
        .await
        .unwrap_or_else(|e| panic!("certificate {label}: {e}"));
        let chain = vec![
            self.issuing.certificate().clone(),
            self.root.certificate().clone(),
        ];
        CadesSigner::new(key, cert, chain).unwrap_or_else(|e| panic!("signer {label}: {e}"))
    }

    /// The root's CRL (nothing revoked) and the issuing CA's (one other certificate revoked).
    async fn crls(&self, revoked: &Certificate) -> RevocationData {
        let now = SystemClock.now();
        let params = CrlParams {
            number: 1,
            this_update: now - Duration::from_secs(60),
            next_update: now + Duration::from_secs(86_400),
        };
        let entry = RevokedEntry {
            serial: revoked.tbs_certificate().serial_number().clone(),
            revoked_at: now - Duration::from_secs(120),
            reason: RevocationReason::KeyCompromise,
        };
        let root = build_crl(&self.root, params, &[])
            .await
            .unwrap_or_else(|e| panic!("root CRL: {e}"));
        let issuing = build_crl(&self.issuing, params, &[entry])
            .await
            .unwrap_or_else(|e| panic!("issuing CRL: {e}"));
        RevocationData {
            crls: vec![
                root.to_der().unwrap_or_else(|e| panic!("CRL DER: {e}")),
                issuing.to_der().unwrap_or_else(|e| panic!("CRL DER: {e}")),
            ],
            ocsp_responses: Vec::new(),
        }
    }

    fn validator(&self) -> SignatureValidator {
        let mut anchors = TrustAnchors::new();
        let root_der = self
            .root
            .certificate()
            .to_der()
            .unwrap_or_else(|e| panic!("root DER: {e}"));
        anchors
            .add_anchor_der(&root_der, "root", None, false)
            .unwrap_or_else(|e| panic!("trust anchor: {e}"));
        SignatureValidator::new(
            Arc::new(PathValidator::new(anchors)),
            ValidationPolicy::default(),
        )
    }
}

/// A 4 KiB document, different for each `seed`.
fn document(seed: usize) -> Vec<u8> {
    let line = format!("QUYẾT ĐỊNH số {seed}/QĐ-UBND về việc phê duyệt kế hoạch năm 2026.\n");
    line.bytes().cycle().take(DOCUMENT_LEN).collect()
}

/// Everything one signer-algorithm group verifies.
struct Case {
    signatures: Vec<Vec<u8>>,
    revocation: RevocationData,
}

/// One verification; panics unless it is TOTAL-PASSED at B-T with a timestamp-proven time.
fn verify_checked(validator: &SignatureValidator, case: &Case, i: usize) {
    let rt = single_thread_runtime();
    let report = rt
        .block_on(validator.validate_cms(input(case, i), SystemClock.now_utc()))
        .unwrap_or_else(|e| panic!("validate_cms: {e}"));
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    assert_eq!(report.indication, Indication::TotalPassed, "{json}");
    let s = &report.signatures[0];
    assert_eq!(s.level, Level::BT, "{json}");
    assert_eq!(s.timestamps.len(), 1, "{json}");
    assert!(s.timestamps[0].passed(), "{json}");
    let tsa_path = s.timestamps[0].certificate_path.as_ref();
    let signer_path = s.certificate_path.as_ref();
    for path in [tsa_path, signer_path] {
        let path = path.unwrap_or_else(|| panic!("no certificate path: {json}"));
        assert_eq!(path.chain.len(), 3, "root, issuing, leaf: {json}");
        // Both non-anchor certificates are settled by a CRL.
        for cert in &path.chain[..2] {
            assert!(
                matches!(
                    cert.revocation,
                    kyso_cades::validation::Revocation::Good { .. }
                ),
                "{json}"
            );
        }
    }
}

fn input<'a>(case: &'a Case, i: usize) -> CmsInput<'a> {
    CmsInput {
        revocation: case.revocation.clone(),
        ..CmsInput::new(&case.signatures[i % case.signatures.len()])
    }
}

fn single_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
}

fn cms_verify(c: &mut Criterion) {
    let rt = single_thread_runtime();
    let pki = rt.block_on(Pki::new());
    let tsa_signer = rt.block_on(pki.signer("tsa", KeyAlgorithm::EcP256, ProfileKind::Tsa));
    let mut tsa_config = TsaConfig::new(
        der::asn1::ObjectIdentifier::new(TSA_POLICY).unwrap_or_else(|e| panic!("policy: {e}")),
    );
    tsa_config.require_synchronised_clock = false;
    let authority = Arc::new(TimestampAuthority::new(
        tsa_signer,
        tsa_config,
        SystemClock::shared(),
        Arc::new(InMemoryLedger::new()),
        Arc::new(AlwaysTrusted),
    ));
    let timestamps = LocalTimestampSource::new(authority);
    // A revoked certificate on the issuing CA's CRL, so the CRL is not empty.
    let revoked =
        rt.block_on(pki.signer("revoked", KeyAlgorithm::EcP256, ProfileKind::StaffSigning));
    let revocation = rt.block_on(pki.crls(revoked.certificate()));
    let validator = pki.validator();
    let counted: Option<u64> = std::env::var("CMS_VERIFY_COUNT").ok().map(|v| {
        v.parse()
            .unwrap_or_else(|e| panic!("CMS_VERIFY_COUNT: {e}"))
    });

    for (name, algorithm) in [
        ("p256", KeyAlgorithm::EcP256),
        ("rsa2048", KeyAlgorithm::Rsa2048),
    ] {
        let signer = rt.block_on(pki.signer(name, algorithm, ProfileKind::StaffSigning));
        let signatures: Vec<Vec<u8>> = (0..SIGNATURES)
            .map(|i| {
                let doc = document(i);
                let options = SignOptions::new(Level::BT, SystemClock.now_utc());
                rt.block_on(sign(
                    &signer,
                    Content::Attached(&doc),
                    &options,
                    Some(&timestamps as &dyn TimestampSource),
                    None,
                ))
                .unwrap_or_else(|e| panic!("B-T signature: {e}"))
            })
            .collect();
        let case = Case {
            signatures,
            revocation: revocation.clone(),
        };
        for i in 0..SIGNATURES {
            verify_checked(&validator, &case, i);
        }
        if let Some(count) = counted {
            counted_verifications(&validator, &case, count);
            return;
        }

        let mut group = c.benchmark_group(format!("cms_verify/{name}"));
        group.throughput(Throughput::Elements(1));
        group.sample_size(20);
        group.warm_up_time(Duration::from_secs(2));
        group.measurement_time(Duration::from_secs(6));
        group.sampling_mode(SamplingMode::Flat);
        for threads in THREADS {
            group.bench_function(BenchmarkId::new("bt_crl", threads), |b| {
                b.iter_custom(|iters| timed(&validator, &case, threads, iters));
            });
        }
        group.finish();
    }
}

/// `count` verifications on this thread, nothing else (the function callgrind counts).
#[inline(never)]
fn counted_verifications(validator: &SignatureValidator, case: &Case, count: u64) {
    let rt = single_thread_runtime();
    for i in 0..count {
        let report = rt
            .block_on(validator.validate_cms(input(case, i as usize), SystemClock.now_utc()))
            .unwrap_or_else(|e| panic!("validate_cms: {e}"));
        assert_eq!(report.indication, Indication::TotalPassed);
        std::hint::black_box(report);
    }
}

/// `iters` verifications split over `threads` OS threads, each with its own current-thread
/// runtime (built before the clock starts); the wall time from the start barrier to the last join.
fn timed(validator: &SignatureValidator, case: &Case, threads: usize, iters: u64) -> Duration {
    let runtimes: Vec<_> = (0..threads).map(|_| single_thread_runtime()).collect();
    let start = std::sync::Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = runtimes
            .iter()
            .enumerate()
            .map(|(t, rt)| {
                let share = iters / threads as u64 + u64::from((t as u64) < iters % threads as u64);
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    for i in 0..share {
                        let index = (i as usize).wrapping_mul(threads) + t;
                        let report = rt
                            .block_on(
                                validator.validate_cms(input(case, index), SystemClock.now_utc()),
                            )
                            .unwrap_or_else(|e| panic!("validate_cms: {e}"));
                        assert_eq!(report.indication, Indication::TotalPassed);
                        std::hint::black_box(report);
                    }
                })
            })
            .collect();
        start.wait();
        let clock = Stopwatch::start();
        for worker in workers {
            if let Err(e) = worker.join() {
                std::panic::resume_unwind(e);
            }
        }
        clock.elapsed()
    })
}

criterion_group!(benches, cms_verify);
criterion_main!(benches);
