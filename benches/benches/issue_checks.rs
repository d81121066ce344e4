//! Time per signature check on the issuance path, P-256 (the default issuing CA):
//! - `csr`: `kyso_ca::verify_csr` of `certs-test/csr/p256.csr.pem` (parse + proof of
//!   possession, a key seen once: RustCrypto's generic verification);
//! - `self_check/generic`: `kyso_ca::keys::verify_signature` of a CA signature over a 1 KiB TBS
//!   (what the self-check of every certificate and CRL cost before);
//! - `self_check/prepared`: `kyso_ca::PreparedKey::verify` of the same, with the CA key's
//!   precomputed multiples (what it costs now).
//!
//! The signatures are made by a P-256 key on a fresh SoftHSM token (no software private key).
//!
//!     cargo bench -p kyso-benches --bench issue_checks

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kyso_benches::{Fixture, message, runtime};
use kyso_ca::PreparedKey;
use kyso_hsm::KeyAlgorithm;

fn issue_checks(c: &mut Criterion) {
    let rt = runtime().unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let fixture = rt
        .block_on(Fixture::new())
        .unwrap_or_else(|e| panic!("SoftHSM benchmark token: {e}"));
    let key = fixture
        .key(KeyAlgorithm::EcP256)
        .unwrap_or_else(|e| panic!("benchmark key: {e}"));
    let tbs = message();
    let signature = rt
        .block_on(key.sign(&tbs))
        .unwrap_or_else(|e| panic!("HSM signature: {e}"));
    let algorithm = key.signature_algorithm();
    let prepared =
        PreparedKey::new(key.public_key_info()).unwrap_or_else(|e| panic!("prepared key: {e}"));
    let csr = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../certs-test/csr/p256.csr.pem"
    ))
    .unwrap_or_else(|e| panic!("certs-test/csr/p256.csr.pem: {e}"));
    // The three must accept what they are given, or there is nothing to time.
    kyso_ca::verify_csr(&csr).unwrap_or_else(|e| panic!("CSR: {e}"));
    kyso_ca::keys::verify_signature(key.public_key_info(), &algorithm, &tbs, &signature)
        .unwrap_or_else(|e| panic!("generic check: {e}"));
    prepared
        .verify(&algorithm, &tbs, &signature)
        .unwrap_or_else(|e| panic!("prepared check: {e}"));

    let mut group = c.benchmark_group("issue_checks/p256");
    group.throughput(Throughput::Elements(1));
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("csr", |b| {
        b.iter(|| kyso_ca::verify_csr(std::hint::black_box(&csr)))
    });
    group.bench_function("self_check/generic", |b| {
        b.iter(|| {
            kyso_ca::keys::verify_signature(
                key.public_key_info(),
                &algorithm,
                std::hint::black_box(&tbs),
                &signature,
            )
        })
    });
    group.bench_function("self_check/prepared", |b| {
        b.iter(|| prepared.verify(&algorithm, std::hint::black_box(&tbs), &signature))
    });
    group.finish();
}

criterion_group!(benches, issue_checks);
criterion_main!(benches);
