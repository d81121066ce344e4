//! Time per signature, raw PKCS#11 `C_Sign` against `HsmKey::sign` through kyso-hsm's pool, for
//! P-256 and RSA-2048 on SoftHSM, with 1 and 2 concurrent workers (this machine has 2 cores).
//!
//! With 2 workers the time reported is wall time divided by the signatures made by both, that is
//! the inverse of the throughput. For throughput ratios over a fixed number of operations use the
//! `hsm-rate` binary; BENCHMARKS.md reports its figures.
//!
//!     cargo bench -p kyso-benches --bench hsm_signing

use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use kyso_benches::{ALGORITHMS, Fixture, kyso_check, kyso_run, raw_run, runtime};
use kyso_hsm::KeyAlgorithm;

const WORKERS: [usize; 2] = [1, 2];

fn hsm_signing(c: &mut Criterion) {
    // Set-up failures end the bench with a message: there is nothing to measure without a token.
    let rt = runtime().unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let fixture = rt
        .block_on(Fixture::new())
        .unwrap_or_else(|e| panic!("SoftHSM benchmark token: {e}"));
    for algorithm in ALGORITHMS {
        let key = fixture
            .key(algorithm)
            .unwrap_or_else(|e| panic!("benchmark key: {e}"));
        rt.block_on(kyso_check(key))
            .unwrap_or_else(|e| panic!("kyso signature check: {e}"));

        let mut group = c.benchmark_group(format!("hsm_signing/{algorithm}"));
        group.throughput(Throughput::Elements(1));
        group.sample_size(20);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(match algorithm {
            KeyAlgorithm::EcP256 => 4,
            _ => 8,
        }));
        // One RSA-2048 signature takes about a millisecond: linear sampling would need minutes.
        group.sampling_mode(SamplingMode::Flat);

        for workers in WORKERS {
            let mut signers: Vec<_> = (0..workers)
                .map(|_| {
                    let signer = fixture
                        .raw_signer(algorithm)
                        .unwrap_or_else(|e| panic!("raw session: {e}"));
                    signer
                        .check()
                        .unwrap_or_else(|e| panic!("raw signature check: {e}"));
                    signer
                })
                .collect();
            group.bench_function(BenchmarkId::new("raw", workers), |b| {
                b.iter_custom(|iters| {
                    raw_run(&mut signers, iters).unwrap_or_else(|e| panic!("raw signing: {e}"))
                });
            });
            group.bench_function(BenchmarkId::new("kyso", workers), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(kyso_run(key, workers, iters))
                        .unwrap_or_else(|e| panic!("kyso signing: {e}"))
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, hsm_signing);
criterion_main!(benches);
