//! Shared set-up and measurement loops for kyso's HSM signing benchmarks.
//!
//! Two ways of signing with the same SoftHSM keys are compared:
//! - **raw**: `cryptoki` directly, one logged-in session per OS thread, `C_Sign` in a tight loop
//!   (CKM_ECDSA over a precomputed 32-byte digest; CKM_SHA256_RSA_PKCS over the message). This is
//!   the ceiling: what the token can do with no service around it.
//! - **kyso**: [`HsmKey::sign`] from concurrent tokio tasks, through the session pool, the
//!   placement decision (in place on the worker for a key within the token's inline budget, else
//!   off it), the software hashing and the DER conversion of ECDSA signatures: what the CA
//!   actually pays per signature.
//!
//! The criterion bench (`benches/hsm_signing.rs`) and the fixed-count rate tool
//! (`src/bin/hsm-rate.rs`) both use these loops, so they measure the same thing.

use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use kyso_clock::Stopwatch;
use kyso_hsm::{HashAlgorithm, HsmError, HsmKey, KeyAlgorithm, Token};

/// Length of the message signed in every benchmark: about the size of a staff certificate's
/// TBSCertificate, so the software hashing kyso does costs what it costs in real issuance.
pub const MESSAGE_LEN: usize = 1024;

/// Sessions in the kyso pool: as many as the benchmarks ever run concurrently (at most 2 on this
/// machine) would do, the spare ones only show that an idle session costs nothing.
pub const POOL_SIZE: usize = 4;

/// The algorithms the issue sets a target for.
pub const ALGORITHMS: [KeyAlgorithm; 2] = [KeyAlgorithm::EcP256, KeyAlgorithm::Rsa2048];

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error("HSM: {0}")]
    Hsm(#[from] HsmError),
    #[error("raw PKCS#11 {op} on token {token}: {source}")]
    Pkcs11 {
        op: &'static str,
        token: String,
        source: CkError,
    },
    #[error("token {label} not found by the raw PKCS#11 context")]
    TokenNotFound { label: String },
    #[error("key {label} not found on token {token} by the raw PKCS#11 context")]
    KeyNotFound { token: String, label: String },
    #[error("no benchmark key for {algorithm}")]
    NoKey { algorithm: KeyAlgorithm },
    #[error("{variant} signature check failed for {algorithm}: {reason}")]
    BadSignature {
        variant: &'static str,
        algorithm: KeyAlgorithm,
        reason: String,
    },
    #[error("benchmark worker failed: {0}")]
    Worker(String),
}

impl BenchError {
    pub fn code(&self) -> &'static str {
        match self {
            BenchError::Hsm(e) => e.code(),
            BenchError::Pkcs11 { .. } => "bench_pkcs11",
            BenchError::TokenNotFound { .. } => "bench_token_not_found",
            BenchError::KeyNotFound { .. } => "bench_key_not_found",
            BenchError::NoKey { .. } => "bench_no_key",
            BenchError::BadSignature { .. } => "bench_bad_signature",
            BenchError::Worker(_) => "bench_worker",
        }
    }
}

/// The message every benchmark signs (fixed, so runs are comparable).
pub fn message() -> Vec<u8> {
    (0..MESSAGE_LEN).map(|i| (i % 251) as u8).collect()
}

/// A fresh SoftHSM token with one P-256 and one RSA-2048 key, reachable both through kyso-hsm
/// and through a raw `cryptoki` context on the same module.
pub struct Fixture {
    pub token: Token,
    keys: Vec<HsmKey>,
    raw: Pkcs11,
    slot: Slot,
}

impl Fixture {
    /// Creates the token and keys (SoftHSM from `kyso_hsm::testing`, in a temp directory).
    pub async fn new() -> Result<Fixture, BenchError> {
        let token = kyso_hsm::testing::fresh_token_with_pool("bench", POOL_SIZE);
        let mut keys = Vec::new();
        for algorithm in ALGORITHMS {
            keys.push(
                token
                    .generate_key(&format!("bench-{algorithm}"), algorithm)
                    .await?,
            );
        }
        let raw = raw_context(token.label())?;
        let slot = find_slot(&raw, token.label())?;
        Ok(Fixture {
            token,
            keys,
            raw,
            slot,
        })
    }

    pub fn key(&self, algorithm: KeyAlgorithm) -> Result<&HsmKey, BenchError> {
        self.keys
            .iter()
            .find(|k| k.algorithm() == algorithm)
            .ok_or(BenchError::NoKey { algorithm })
    }

    /// A new raw session on the token, logged in, ready to sign with `algorithm`'s key.
    pub fn raw_signer(&self, algorithm: KeyAlgorithm) -> Result<RawSigner, BenchError> {
        let key = self.key(algorithm)?;
        let token = self.token.label().to_owned();
        let err = |op: &'static str| {
            let token = token.clone();
            move |source: CkError| BenchError::Pkcs11 { op, token, source }
        };
        let session = self
            .raw
            .open_rw_session(self.slot)
            .map_err(err("open_session"))?;
        // Login belongs to the application and kyso-hsm has logged in already: both are fine.
        match session.login(
            UserType::User,
            Some(&AuthPin::from(kyso_hsm::testing::USER_PIN)),
        ) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(err("login")(e)),
        }
        let handle = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(key.id().to_vec()),
            ])
            .map_err(err("find_objects"))?
            .first()
            .copied()
            .ok_or_else(|| BenchError::KeyNotFound {
                token: token.clone(),
                label: key.label().to_owned(),
            })?;
        let message = message();
        let input = if algorithm.is_rsa() {
            message
        } else {
            HashAlgorithm::Sha256.digest(&message)
        };
        Ok(RawSigner {
            session,
            handle,
            input,
            algorithm,
            token,
        })
    }
}

/// Loads the module kyso-hsm already initialised (same path), as a second `cryptoki` context.
fn raw_context(token: &str) -> Result<Pkcs11, BenchError> {
    let err = |op: &'static str| {
        move |source: CkError| BenchError::Pkcs11 {
            op,
            token: token.to_owned(),
            source,
        }
    };
    let raw = Pkcs11::new(kyso_hsm::testing::softhsm().path()).map_err(err("load"))?;
    // kyso-hsm called C_Initialize in this process already; the library is the same one.
    match raw.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(raw),
        Err(e) => Err(err("initialize")(e)),
    }
}

fn find_slot(raw: &Pkcs11, label: &str) -> Result<Slot, BenchError> {
    let err = |op: &'static str| {
        move |source: CkError| BenchError::Pkcs11 {
            op,
            token: label.to_owned(),
            source,
        }
    };
    for slot in raw
        .get_slots_with_initialized_token()
        .map_err(err("get_slots"))?
    {
        let info = raw.get_token_info(slot).map_err(err("get_token_info"))?;
        if info.label().trim_end() == label {
            return Ok(slot);
        }
    }
    Err(BenchError::TokenNotFound {
        label: label.to_owned(),
    })
}

/// One raw PKCS#11 session with its key handle, mechanism and input: `C_Sign` and nothing else.
pub struct RawSigner {
    session: Session,
    handle: ObjectHandle,
    /// CKM_ECDSA input (the digest) or CKM_SHA256_RSA_PKCS input (the message).
    input: Vec<u8>,
    algorithm: KeyAlgorithm,
    token: String,
}

impl RawSigner {
    pub fn sign(&self) -> Result<Vec<u8>, BenchError> {
        // Built per call, as kyso-hsm does (`Mechanism` is not `Send`); it is a plain enum value.
        let mechanism = if self.algorithm.is_rsa() {
            Mechanism::Sha256RsaPkcs
        } else {
            Mechanism::Ecdsa
        };
        self.session
            .sign(&mechanism, self.handle, &self.input)
            .map_err(|source| BenchError::Pkcs11 {
                op: "sign",
                token: self.token.clone(),
                source,
            })
    }

    /// Signs once and checks the output has the size the key gives (raw r||s for P-256).
    pub fn check(&self) -> Result<(), BenchError> {
        let signature = self.sign()?;
        let expected = match self.algorithm {
            KeyAlgorithm::EcP256 => 64,
            KeyAlgorithm::EcP384 => 96,
            other => other.rsa_bits().map_or(0, |bits| (bits / 8) as usize),
        };
        if signature.len() == expected {
            Ok(())
        } else {
            Err(BenchError::BadSignature {
                variant: "raw",
                algorithm: self.algorithm,
                reason: format!("{} bytes, expected {expected}", signature.len()),
            })
        }
    }
}

/// Splits `ops` over `workers` as evenly as possible.
fn shares(ops: u64, workers: usize) -> impl Iterator<Item = u64> {
    let workers = workers.max(1) as u64;
    (0..workers).map(move |i| ops / workers + u64::from(i < ops % workers))
}

/// Signs `ops` times in total with the raw signers, one OS thread per signer, all at once;
/// returns the wall time from the first start to the last finish.
pub fn raw_run(signers: &mut [RawSigner], ops: u64) -> Result<Duration, BenchError> {
    let workers = signers.len();
    let stopwatch = Stopwatch::start();
    std::thread::scope(|scope| {
        let handles: Vec<_> = signers
            .iter_mut()
            .zip(shares(ops, workers))
            .map(|(signer, n)| {
                scope.spawn(move || {
                    for _ in 0..n {
                        std::hint::black_box(signer.sign()?);
                    }
                    Ok::<(), BenchError>(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| BenchError::Worker("raw signing thread panicked".to_owned()))??;
        }
        Ok::<(), BenchError>(())
    })?;
    Ok(stopwatch.elapsed())
}

/// Signs `ops` times in total through kyso-hsm, from `workers` concurrent tokio tasks each
/// awaiting one signature after another; returns the wall time.
pub async fn kyso_run(key: &HsmKey, workers: usize, ops: u64) -> Result<Duration, BenchError> {
    let message = std::sync::Arc::new(message());
    let stopwatch = Stopwatch::start();
    let tasks: Vec<_> = shares(ops, workers)
        .map(|n| {
            let key = key.clone();
            let message = message.clone();
            tokio::spawn(async move {
                for _ in 0..n {
                    std::hint::black_box(key.sign(&message).await?);
                }
                Ok::<(), BenchError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| BenchError::Worker(format!("kyso signing task: {e}")))??;
    }
    Ok(stopwatch.elapsed())
}

/// Signs `ops` times in total with [`HsmKey::sign_blocking`] from `workers` OS threads: the same
/// pool, hashing and DER conversion as [`kyso_run`] without tokio (no placement decision, no
/// task). Not a target of the issue: it splits kyso's overhead between the pool and tokio.
pub fn kyso_blocking_run(key: &HsmKey, workers: usize, ops: u64) -> Result<Duration, BenchError> {
    let message = message();
    let stopwatch = Stopwatch::start();
    std::thread::scope(|scope| {
        let handles: Vec<_> = shares(ops, workers)
            .map(|n| {
                let message = &message;
                scope.spawn(move || {
                    for _ in 0..n {
                        std::hint::black_box(key.sign_blocking(message)?);
                    }
                    Ok::<(), BenchError>(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| BenchError::Worker("pool signing thread panicked".to_owned()))??;
        }
        Ok::<(), BenchError>(())
    })?;
    Ok(stopwatch.elapsed())
}

/// Signs once through kyso-hsm and verifies the signature in software.
pub async fn kyso_check(key: &HsmKey) -> Result<(), BenchError> {
    let message = message();
    let signature = key.sign(&message).await?;
    key.verify(&message, &signature)
        .map_err(|e| BenchError::BadSignature {
            variant: "kyso",
            algorithm: key.algorithm(),
            reason: e.to_string(),
        })
}

/// The tokio runtime the kyso variant runs on: one worker thread per core of this machine
/// (2), as `kyso serve` would have.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_operation() {
        assert_eq!(shares(10, 3).collect::<Vec<_>>(), vec![4, 3, 3]);
        assert_eq!(shares(20_000, 2).sum::<u64>(), 20_000);
        assert_eq!(shares(1, 2).collect::<Vec<_>>(), vec![1, 0]);
        assert_eq!(shares(5, 0).collect::<Vec<_>>(), vec![5]);
    }

    #[test]
    fn raw_and_kyso_signatures_are_valid_for_both_algorithms() {
        let rt = runtime().unwrap();
        let fixture = rt.block_on(Fixture::new()).unwrap();
        for algorithm in ALGORITHMS {
            fixture.raw_signer(algorithm).unwrap().check().unwrap();
            rt.block_on(kyso_check(fixture.key(algorithm).unwrap()))
                .unwrap();
            let mut signers = vec![
                fixture.raw_signer(algorithm).unwrap(),
                fixture.raw_signer(algorithm).unwrap(),
            ];
            raw_run(&mut signers, 3).unwrap();
            rt.block_on(kyso_run(fixture.key(algorithm).unwrap(), 2, 3))
                .unwrap();
            kyso_blocking_run(fixture.key(algorithm).unwrap(), 2, 3).unwrap();
        }
    }
}
