//! Signing throughput, raw PKCS#11 against kyso-hsm's pool, for a fixed number of operations.
//!
//!     hsm-rate [--p256-ops N] [--rsa-ops N] [--workers 1,2] [--rounds R] [--slices S]
//!
//! For each algorithm and worker count, runs the raw, kyso and pool variants `rounds` times and
//! reports the median rate of each and the ratio kyso/raw. Within a round the N operations of each
//! variant are made in `slices` slices, the variants taking turns slice by slice (raw, kyso, pool,
//! raw, ...), and each variant's rate is its N operations over the sum of its slices' times: the
//! speed of this shared VM's vCPUs changes from one second to the next (the same variant pinned to
//! one CPU moves by ±20 % between runs of a second or two), so variants timed in turns of a tenth
//! of a second see the same machine, where whole-round turns of 1.5 s did not. `--slices 1` is the
//! old whole-round alternation. "kyso" is `HsmKey::sign` from tokio tasks (what the server does); "pool" is
//! `HsmKey::sign_blocking` from OS threads (the same pool without the hand-off to tokio's blocking
//! threads), shown to tell where kyso's overhead lies. Lines starting with `RESULT` are for
//! scripts: algorithm, workers, raw ops/s, kyso ops/s, kyso/raw, pool ops/s, pool/raw.

use std::process::ExitCode;
use std::time::Duration;

use kyso_benches::{
    ALGORITHMS, BenchError, Fixture, kyso_blocking_run, kyso_check, kyso_run, raw_run, runtime,
};
use kyso_hsm::KeyAlgorithm;

struct Options {
    p256_ops: u64,
    rsa_ops: u64,
    workers: Vec<usize>,
    rounds: usize,
    slices: u64,
}

const USAGE: &str = "usage: hsm-rate [--p256-ops N (20000)] [--rsa-ops N (2000)] [--workers 1,2] \
                     [--rounds 3] [--slices 10]";

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        p256_ops: 20_000,
        rsa_ops: 2_000,
        workers: vec![1, 2],
        rounds: 3,
        slices: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}: not a positive number: {v}"))
        };
        match arg.as_str() {
            "--p256-ops" => options.p256_ops = number(&arg, value(&arg)?)?,
            "--rsa-ops" => options.rsa_ops = number(&arg, value(&arg)?)?,
            "--rounds" => options.rounds = number(&arg, value(&arg)?)? as usize,
            "--slices" => options.slices = number(&arg, value(&arg)?)?,
            "--workers" => {
                options.workers = value(&arg)?
                    .split(',')
                    .map(|w| number("--workers", w.to_owned()).map(|n| n as usize))
                    .collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(options)
}

fn rate(ops: u64, elapsed: Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    let n = rates.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        rates[n / 2]
    } else {
        (rates[n / 2 - 1] + rates[n / 2]) / 2.0
    }
}

fn run(options: &Options) -> Result<(), BenchError> {
    let rt = runtime().map_err(|e| BenchError::Worker(format!("tokio runtime: {e}")))?;
    let fixture = rt.block_on(Fixture::new())?;
    let info = fixture.token.module().info()?;
    println!(
        "module: {} ({} {}, library {}, cryptoki {})",
        info.path.display(),
        info.manufacturer,
        info.library_description,
        info.library_version,
        info.cryptoki_version
    );
    println!(
        "message: {} bytes; kyso pool: {} sessions; tokio workers: {}; rounds: {} (median \
         reported), each in {} slices taken in turns",
        kyso_benches::MESSAGE_LEN,
        fixture.token.pool_size(),
        rt.metrics().num_workers(),
        options.rounds,
        options.slices
    );
    println!();
    println!(
        "{:<9} {:>7} {:>7} {:>11} {:>11} {:>9} {:>11} {:>9}",
        "algorithm",
        "workers",
        "ops",
        "raw ops/s",
        "kyso ops/s",
        "kyso/raw",
        "pool ops/s",
        "pool/raw"
    );
    let mut results = Vec::new();
    for algorithm in ALGORITHMS {
        let ops = match algorithm {
            KeyAlgorithm::EcP256 => options.p256_ops,
            _ => options.rsa_ops,
        };
        let key = fixture.key(algorithm)?;
        for &workers in &options.workers {
            let mut signers = (0..workers)
                .map(|_| fixture.raw_signer(algorithm))
                .collect::<Result<Vec<_>, _>>()?;
            // Warm-up, untimed: sessions opened, handles and mechanism lists cached, outputs checked.
            for signer in &signers {
                signer.check()?;
            }
            rt.block_on(kyso_check(key))?;
            rt.block_on(kyso_run(key, workers, (ops / 20).max(workers as u64)))?;
            raw_run(&mut signers, (ops / 20).max(workers as u64))?;
            kyso_blocking_run(key, workers, (ops / 20).max(workers as u64))?;

            let (mut raw_rates, mut kyso_rates, mut pool_rates) =
                (Vec::new(), Vec::new(), Vec::new());
            let slices = options.slices.min(ops);
            for _ in 0..options.rounds {
                let (mut raw_time, mut kyso_time, mut pool_time) =
                    (Duration::ZERO, Duration::ZERO, Duration::ZERO);
                for slice in 0..slices {
                    let n = ops / slices + u64::from(slice < ops % slices);
                    raw_time += raw_run(&mut signers, n)?;
                    kyso_time += rt.block_on(kyso_run(key, workers, n))?;
                    pool_time += kyso_blocking_run(key, workers, n)?;
                }
                raw_rates.push(rate(ops, raw_time));
                kyso_rates.push(rate(ops, kyso_time));
                pool_rates.push(rate(ops, pool_time));
            }
            let (raw, kyso, pool) = (median(raw_rates), median(kyso_rates), median(pool_rates));
            let of_raw = |x: f64| if raw > 0.0 { x / raw } else { 0.0 };
            let (ratio, pool_ratio) = (of_raw(kyso), of_raw(pool));
            println!(
                "{:<9} {:>7} {:>7} {:>11.0} {:>11.0} {:>8.1}% {:>11.0} {:>8.1}%",
                algorithm.to_string(),
                workers,
                ops,
                raw,
                kyso,
                ratio * 100.0,
                pool,
                pool_ratio * 100.0
            );
            results.push(format!(
                "RESULT {algorithm} {workers} {raw:.0} {kyso:.0} {ratio:.4} {pool:.0} {pool_ratio:.4}"
            ));
        }
    }
    let (inline, offloaded) = fixture.token.signing_placement_counts();
    println!();
    println!(
        "kyso signing calls: {inline} in place on a tokio worker, {offloaded} off it (inline budget {:?})",
        fixture.token.inline_budget()
    );
    println!();
    for line in results {
        println!("{line}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hsm-rate: {e} ({})", e.code());
            ExitCode::FAILURE
        }
    }
}
