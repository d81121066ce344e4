//! A logged-in token: the session pool, recovery after a lost session or login, key generation
//! and lookup, and certificate objects beside keys.

use crate::algorithm::{self, KeyAlgorithm};
use crate::key::HsmKey;
use crate::module::{MechanismSummary, Module};
use crate::placement::{CallLatency, DEFAULT_INLINE_BUDGET, InlineBudget};
use crate::{HsmError, Pin};
use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use der::{Decode, Encode};
use sha2::Digest;
use spki::SubjectPublicKeyInfoOwned;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

/// Longest key label accepted (CKA_LABEL has no limit of its own; real HSMs often have one).
const MAX_LABEL_BYTES: usize = 128;
/// Largest certificate written to a token.
const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
/// CKA_ID length of generated keys.
const KEY_ID_BYTES: u32 = 16;

/// One logged-in token with a pool of sessions. Cheap to clone, usable from many tasks.
#[derive(Clone)]
pub struct Token {
    inner: Arc<TokenInner>,
}

struct TokenInner {
    module: Module,
    label: String,
    pin: Pin,
    pool_size: usize,
    state: Mutex<TokenState>,
    pool: Mutex<Pool>,
    session_returned: Condvar,
    /// Bounds the blocking tasks in flight to the pool size, so waiting happens in async land
    /// rather than in parked blocking threads.
    permits: Arc<tokio::sync::Semaphore>,
    mechanisms: OnceLock<Vec<MechanismType>>,
    /// Serialises key generation so the label check and the generation are one step.
    keygen: tokio::sync::Mutex<()>,
    /// Signing calls whose measured latency stays below this run on the async worker.
    inline_budget: InlineBudget,
    /// Signing calls run in place / off the worker, for metrics and tests.
    inline_calls: AtomicU64,
    offloaded_calls: AtomicU64,
}

struct TokenState {
    slot: Slot,
    /// Held open for the life of the token: closing an application's last session logs it out.
    keeper: Option<Session>,
}

struct Pool {
    idle: Vec<PooledSession>,
    /// Sessions in the pool or lent out.
    open: usize,
    /// Bumped by every rebuild; sessions of an older generation are closed on return.
    generation: u64,
    /// Threads waiting in `acquire` for a session. A release wakes one only when there is one:
    /// `Condvar::notify_one` makes a futex system call even with nobody waiting, which would
    /// cost every signature a system call.
    waiters: usize,
}

pub(crate) struct PooledSession {
    session: Session,
    generation: u64,
}

/// A failure inside a session operation: a raw PKCS#11 error (which may trigger a rebuild) or
/// an already meaningful kyso error.
pub(crate) enum OpError {
    Ck(CkError),
    Hsm(HsmError),
}

impl From<CkError> for OpError {
    fn from(e: CkError) -> Self {
        OpError::Ck(e)
    }
}

impl From<HsmError> for OpError {
    fn from(e: HsmError) -> Self {
        OpError::Hsm(e)
    }
}

/// Errors after which the session is rebuilt, the user logged in again and the operation retried.
fn needs_rebuild(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::UserNotLoggedIn
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SlotIdInvalid,
            _
        )
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Summary of one private key on a token.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeySummary {
    pub label: String,
    pub id_hex: String,
    /// None when kyso cannot use the key (see `key_type`).
    pub algorithm: Option<KeyAlgorithm>,
    /// What the token says, e.g. "EC secp256r1", "RSA 2048", "EC 1.3.132.0.10".
    pub key_type: String,
    pub has_certificate: bool,
}

/// SHA-256 of the PIN each (module, token) was logged in with by this process. Login belongs to
/// the application, so a second `C_Login` answers CKR_USER_ALREADY_LOGGED_IN whatever the PIN:
/// this is what lets a second `open_token` with a wrong PIN still fail.
type PinFingerprints = HashMap<(PathBuf, String), [u8; 32]>;

fn logged_in_pins() -> &'static Mutex<PinFingerprints> {
    static PINS: OnceLock<Mutex<PinFingerprints>> = OnceLock::new();
    PINS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Logs the application in; a second login is fine (login is per application and token).
fn login(session: &Session, pin: &Pin, module: &Module, token: &str) -> Result<(), HsmError> {
    let fingerprint: [u8; 32] = sha2::Sha256::digest(pin.expose().as_bytes()).into();
    let key = (module.path().to_path_buf(), token.to_owned());
    match session.login(UserType::User, Some(&pin.auth_pin())) {
        Ok(()) => {
            lock(logged_in_pins()).insert(key, fingerprint);
            Ok(())
        }
        Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
            match lock(logged_in_pins()).get(&key) {
                Some(known) if *known != fingerprint => Err(HsmError::WrongPin {
                    token: token.to_owned(),
                }),
                _ => Ok(()),
            }
        }
        Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
            Err(HsmError::WrongPin {
                token: token.to_owned(),
            })
        }
        Err(e) => Err(HsmError::pkcs11("login", Some(token), None, &e)),
    }
}

/// After a handle went invalid or private objects vanished: if the session is no longer logged
/// in, report that as CKR_USER_NOT_LOGGED_IN so the caller rebuilds and logs in again.
pub(crate) fn ensure_logged_in(session: &Session) -> Result<(), OpError> {
    let info = session.get_session_info()?;
    match info.session_state() {
        SessionState::RoPublic | SessionState::RwPublic => Err(OpError::Ck(CkError::Pkcs11(
            RvError::UserNotLoggedIn,
            Function::GetSessionInfo,
        ))),
        _ => Ok(()),
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.inner.label)
            .field("module", &self.inner.module.path())
            .field("pool_size", &self.inner.pool_size)
            .finish()
    }
}

impl Token {
    pub(crate) fn open(
        module: Module,
        label: &str,
        pin: Pin,
        pool_size: usize,
    ) -> Result<Token, HsmError> {
        let pool_size = pool_size.max(1);
        let slot = module.find_slot(label)?;
        let keeper = module
            .ctx()
            .open_rw_session(slot)
            .map_err(|e| HsmError::pkcs11("open_session", Some(label), None, &e))?;
        login(&keeper, &pin, &module, label)?;
        tracing::info!(token = label, slot = slot.id(), pool_size, "token opened");
        Ok(Token {
            inner: Arc::new(TokenInner {
                module,
                label: label.to_owned(),
                pin,
                pool_size,
                state: Mutex::new(TokenState {
                    slot,
                    keeper: Some(keeper),
                }),
                pool: Mutex::new(Pool {
                    idle: Vec::with_capacity(pool_size),
                    open: 0,
                    generation: 0,
                    waiters: 0,
                }),
                session_returned: Condvar::new(),
                permits: Arc::new(tokio::sync::Semaphore::new(pool_size)),
                mechanisms: OnceLock::new(),
                keygen: tokio::sync::Mutex::new(()),
                inline_budget: InlineBudget::new(DEFAULT_INLINE_BUDGET),
                inline_calls: AtomicU64::new(0),
                offloaded_calls: AtomicU64::new(0),
            }),
        })
    }

    pub fn label(&self) -> &str {
        &self.inner.label
    }

    pub fn module(&self) -> &Module {
        &self.inner.module
    }

    pub fn pool_size(&self) -> usize {
        self.inner.pool_size
    }

    /// How many times the sessions were rebuilt after a lost session or login (for health
    /// reports and metrics).
    pub fn rebuild_count(&self) -> u64 {
        lock(&self.inner.pool).generation
    }

    /// Signing calls of a key whose recent average latency is below this budget run in place on
    /// the async worker (no thread hand-off); slower ones, and every call before the first
    /// measurement, run off it. `Duration::ZERO` sends every call off the worker.
    pub fn inline_budget(&self) -> Duration {
        self.inner.inline_budget.get()
    }

    /// Changes [`Token::inline_budget`] (it applies to the next call).
    pub fn set_inline_budget(&self, budget: Duration) {
        self.inner.inline_budget.set(budget);
    }

    /// A pool permit for running a signing call in place, if `latency` says the key answers
    /// within the inline budget (or computes, see `placement`), waiting asynchronously for a
    /// free session. Going off the worker when every session is busy would only add a thread
    /// hand-off to the same wait, and under steady load (more requests than sessions) it would
    /// keep every call off the worker: the off-worker calls hold the sessions, so a free one is
    /// never seen.
    pub(crate) async fn inline_permit(
        &self,
        latency: &CallLatency,
    ) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let permit = if latency.fits(self.inner.inline_budget.get()) {
            self.inner.permits.acquire().await.ok()
        } else {
            None
        };
        let counter = if permit.is_some() {
            &self.inner.inline_calls
        } else {
            &self.inner.offloaded_calls
        };
        counter.fetch_add(1, Ordering::Relaxed);
        permit
    }

    /// How many signing calls ran in place on an async worker, and how many off it, since the
    /// token was opened.
    pub fn signing_placement_counts(&self) -> (u64, u64) {
        (
            self.inner.inline_calls.load(Ordering::Relaxed),
            self.inner.offloaded_calls.load(Ordering::Relaxed),
        )
    }

    fn slot(&self) -> Slot {
        lock(&self.inner.state).slot
    }

    // ----- session pool -------------------------------------------------------------------

    /// A session from the pool, or a new one while fewer than `pool_size` are open. On failure
    /// to open, the raw error and the pool generation it happened in.
    fn acquire(&self) -> Result<PooledSession, (CkError, u64)> {
        let inner = &*self.inner;
        let mut pool = lock(&inner.pool);
        loop {
            if let Some(s) = pool.idle.pop() {
                return Ok(s);
            }
            if pool.open < inner.pool_size {
                pool.open += 1;
                let generation = pool.generation;
                drop(pool);
                let slot = self.slot();
                return match inner.module.ctx().open_rw_session(slot) {
                    Ok(session) => Ok(PooledSession {
                        session,
                        generation,
                    }),
                    Err(e) => {
                        let mut pool = lock(&inner.pool);
                        pool.open -= 1;
                        Self::wake_one_waiter(&inner.session_returned, &pool);
                        Err((e, generation))
                    }
                };
            }
            pool.waiters += 1;
            pool = inner
                .session_returned
                .wait(pool)
                .unwrap_or_else(PoisonError::into_inner);
            pool.waiters -= 1;
        }
    }

    /// Wakes one thread waiting in `acquire`, if any (called with the pool locked, so a waiter
    /// cannot slip in between the check and the wait).
    fn wake_one_waiter(session_returned: &Condvar, pool: &Pool) {
        if pool.waiters > 0 {
            session_returned.notify_one();
        }
    }

    fn release(&self, s: PooledSession, healthy: bool) {
        let inner = &*self.inner;
        let mut pool = lock(&inner.pool);
        let stale = if healthy && s.generation == pool.generation {
            pool.idle.push(s);
            None
        } else {
            pool.open -= 1;
            Some(s)
        };
        Self::wake_one_waiter(&inner.session_returned, &pool);
        drop(pool);
        // Closing a session is a PKCS#11 call: not under the pool lock.
        drop(stale);
    }

    /// Rebuilds after a lost session or login: closes idle sessions of the failed generation,
    /// finds the token again (it may sit in another slot after re-insertion), opens a new
    /// keeper session and logs in.
    fn rebuild(&self, failed_generation: u64) -> Result<(), HsmError> {
        let inner = &*self.inner;
        let mut state = lock(&inner.state);
        let stale = {
            let mut pool = lock(&inner.pool);
            if pool.generation != failed_generation {
                // Another thread rebuilt since this session was handed out.
                return Ok(());
            }
            pool.generation += 1;
            let stale = std::mem::take(&mut pool.idle);
            pool.open -= stale.len();
            stale
        };
        inner.session_returned.notify_all();
        drop(stale);
        tracing::warn!(token = %inner.label, "rebuilding PKCS#11 sessions and logging in again");
        let slot = inner.module.find_slot(&inner.label)?;
        let keeper = inner
            .module
            .ctx()
            .open_rw_session(slot)
            .map_err(|e| HsmError::pkcs11("open_session", Some(&inner.label), None, &e))?;
        login(&keeper, &inner.pin, &inner.module, &inner.label)?;
        let old = state.keeper.replace(keeper);
        state.slot = slot;
        drop(state);
        drop(old);
        Ok(())
    }

    /// Runs `f` on a pooled session (blocking). On a lost session or login the session is
    /// rebuilt and `f` retried once.
    pub(crate) fn run_blocking<T>(
        &self,
        op: &'static str,
        key: Option<&str>,
        f: impl Fn(&Session) -> Result<T, OpError>,
    ) -> Result<T, HsmError> {
        let open_error =
            |e: CkError| HsmError::pkcs11("open_session", Some(&self.inner.label), key, &e);
        let first = match self.acquire() {
            Ok(session) => session,
            Err((e, generation)) if needs_rebuild(&e) => {
                // The slot or token went away: find it again by label, log in, go on.
                self.rebuild(generation)?;
                self.acquire().map_err(|(e, _)| open_error(e))?
            }
            Err((e, _)) => return Err(open_error(e)),
        };
        let generation = first.generation;
        match f(&first.session) {
            Ok(v) => {
                self.release(first, true);
                Ok(v)
            }
            Err(OpError::Ck(e)) if needs_rebuild(&e) => {
                tracing::warn!(token = %self.inner.label, op, error = %e, "session lost");
                self.release(first, false);
                self.rebuild(generation)?;
                let second = self.acquire().map_err(|(e, _)| open_error(e))?;
                let result = f(&second.session);
                let healthy = !matches!(&result, Err(OpError::Ck(e)) if needs_rebuild(e));
                self.release(second, healthy);
                result.map_err(|e| self.op_error(op, key, e))
            }
            Err(e) => {
                self.release(first, true);
                Err(self.op_error(op, key, e))
            }
        }
    }

    fn op_error(&self, op: &'static str, key: Option<&str>, e: OpError) -> HsmError {
        match e {
            OpError::Ck(e) => HsmError::pkcs11(op, Some(&self.inner.label), key, &e),
            OpError::Hsm(e) => e,
        }
    }

    /// Runs blocking PKCS#11 work, at most `pool_size` at a time: in place on a multi-threaded
    /// runtime, else on tokio's blocking pool.
    pub(crate) async fn offload<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, HsmError> + Send + 'static,
    ) -> Result<T, HsmError> {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(HsmError::internal)?;
        // On a multi-threaded runtime, run the call on this worker thread and let tokio move its
        // other tasks elsewhere: a sub-millisecond C_Sign then costs no thread hand-off. A
        // current-thread runtime cannot do that, so the call goes to the blocking pool.
        if tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread
        {
            let _permit = permit;
            return tokio::task::block_in_place(f);
        }
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| HsmError::internal(format!("HSM task failed: {e}")))?
    }

    // ----- mechanisms -----------------------------------------------------------------------

    /// Whether the token offers `mechanism` (the list is probed once).
    pub(crate) fn has_mechanism(&self, mechanism: MechanismType) -> Result<bool, HsmError> {
        if let Some(list) = self.inner.mechanisms.get() {
            return Ok(list.contains(&mechanism));
        }
        let list = self
            .inner
            .module
            .mechanism_types(self.slot(), &self.inner.label)?;
        let found = list.contains(&mechanism);
        let _ = self.inner.mechanisms.set(list);
        Ok(found)
    }

    /// All mechanisms of the token with key sizes and flags.
    pub async fn mechanisms(&self) -> Result<Vec<MechanismSummary>, HsmError> {
        let this = self.clone();
        self.offload(move || {
            this.inner
                .module
                .mechanism_summaries(this.slot(), &this.inner.label)
        })
        .await
    }

    // ----- keys -----------------------------------------------------------------------------

    fn check_label(&self, label: &str) -> Result<(), HsmError> {
        if label.is_empty() || label.len() > MAX_LABEL_BYTES || label.chars().any(char::is_control)
        {
            return Err(HsmError::InvalidLabel {
                token: self.inner.label.clone(),
                label: label.chars().take(MAX_LABEL_BYTES).collect(),
                reason: format!("must be 1 to {MAX_LABEL_BYTES} bytes without control characters"),
            });
        }
        Ok(())
    }

    /// Generates a key pair on the token. The private key is sensitive and not extractable; both
    /// halves share a random 16-byte CKA_ID and carry `label` as CKA_LABEL.
    pub async fn generate_key(
        &self,
        label: &str,
        algorithm: KeyAlgorithm,
    ) -> Result<HsmKey, HsmError> {
        self.check_label(label)?;
        let _one_at_a_time = self.inner.keygen.lock().await;
        let this = self.clone();
        let label = label.to_owned();
        self.offload(move || this.generate_key_blocking(&label, algorithm))
            .await
    }

    fn generate_key_blocking(
        &self,
        label: &str,
        algorithm: KeyAlgorithm,
    ) -> Result<HsmKey, HsmError> {
        let token = self.inner.label.clone();
        let (id, spki, handle) = self.run_blocking("generate_key", Some(label), |s| {
            if label_in_use(s, label)? {
                return Err(HsmError::KeyExists {
                    token: token.clone(),
                    label: label.to_owned(),
                }
                .into());
            }
            let id = s.generate_random_vec(KEY_ID_BYTES)?;
            let mut public = vec![
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Verify(true),
                Attribute::Encrypt(false),
                Attribute::Wrap(false),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.clone()),
            ];
            let private = vec![
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Decrypt(false),
                Attribute::Unwrap(false),
                Attribute::Derive(false),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.clone()),
            ];
            let mechanism = match (algorithm.curve_oid(), algorithm.rsa_bits()) {
                (Some(curve), _) => {
                    let params = curve.to_der().map_err(HsmError::internal)?;
                    public.push(Attribute::EcParams(params));
                    Mechanism::EccKeyPairGen
                }
                (None, Some(bits)) => {
                    public.push(Attribute::ModulusBits(bits.into()));
                    public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                    Mechanism::RsaPkcsKeyPairGen
                }
                (None, None) => {
                    return Err(HsmError::internal("no key generation for algorithm").into());
                }
            };
            let (public_handle, private_handle) =
                s.generate_key_pair(&mechanism, &public, &private)?;
            let spki = read_public_key(s, public_handle, algorithm)?;
            Ok((id, spki, private_handle))
        })?;
        tracing::info!(token = %token, key = label, %algorithm, "key generated");
        Ok(HsmKey::new(
            self.clone(),
            label.to_owned(),
            id,
            algorithm,
            spki,
            Some(handle),
        ))
    }

    /// Finds a private key by label, with its public key.
    pub async fn find_key(&self, label: &str) -> Result<HsmKey, HsmError> {
        let this = self.clone();
        let label = label.to_owned();
        self.offload(move || this.find_key_blocking(&label)).await
    }

    /// [`Token::find_key`] on the calling thread (blocks: not for async tasks).
    pub fn find_key_blocking(&self, label: &str) -> Result<HsmKey, HsmError> {
        let token = self.inner.label.clone();
        let (id, algorithm, spki, handle) = self.run_blocking("find_key", Some(label), |s| {
            let handles = s.find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])?;
            let Some(&handle) = handles.first() else {
                ensure_logged_in(s)?;
                return Err(HsmError::KeyNotFound {
                    token: token.clone(),
                    label: label.to_owned(),
                }
                .into());
            };
            if handles.len() > 1 {
                tracing::warn!(token = %token, key = label, count = handles.len(), "several private keys share this label; using the first");
            }
            let described = describe_private_key(s, handle)?;
            let Some(algorithm) = described.algorithm else {
                return Err(HsmError::KeyUnsupported {
                    token: token.clone(),
                    label: label.to_owned(),
                    key_type: described.key_type,
                }
                .into());
            };
            let spki = public_key_for(s, &described, algorithm).ok_or_else(|| {
                HsmError::KeyUnsupported {
                    token: token.clone(),
                    label: label.to_owned(),
                    key_type: format!(
                        "{}: no public key object or certificate with the same CKA_ID",
                        described.key_type
                    ),
                }
            })??;
            Ok((described.id, algorithm, spki, handle))
        })?;
        Ok(HsmKey::new(
            self.clone(),
            label.to_owned(),
            id,
            algorithm,
            spki,
            Some(handle),
        ))
    }

    /// All private keys on the token.
    pub async fn list_keys(&self) -> Result<Vec<KeySummary>, HsmError> {
        let this = self.clone();
        self.offload(move || {
            this.run_blocking("list_keys", None, |s| {
                let handles = s.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])?;
                let mut out = Vec::with_capacity(handles.len());
                for handle in handles {
                    let d = describe_private_key(s, handle)?;
                    let has_certificate = !d.id.is_empty()
                        && !s
                            .find_objects(&[
                                Attribute::Class(ObjectClass::CERTIFICATE),
                                Attribute::Id(d.id.clone()),
                            ])?
                            .is_empty();
                    out.push(KeySummary {
                        label: d.label,
                        id_hex: hex::encode(&d.id),
                        algorithm: d.algorithm,
                        key_type: d.key_type,
                        has_certificate,
                    });
                }
                out.sort_by(|a, b| a.label.cmp(&b.label));
                Ok(out)
            })
        })
        .await
    }

    /// The handle of a key's private half, by CKA_ID.
    pub(crate) fn find_private_handle(
        &self,
        s: &Session,
        id: &[u8],
        label: &str,
    ) -> Result<ObjectHandle, OpError> {
        let handles = s.find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id.to_vec()),
        ])?;
        match handles.first() {
            Some(h) => Ok(*h),
            None => {
                ensure_logged_in(s)?;
                Err(HsmError::KeyNotFound {
                    token: self.inner.label.clone(),
                    label: label.to_owned(),
                }
                .into())
            }
        }
    }

    // ----- certificates ---------------------------------------------------------------------

    /// Writes `cert_der` onto the token beside `key` (same CKA_ID and CKA_LABEL), replacing an
    /// earlier certificate of that key. The certificate must carry the key's public key.
    pub async fn store_certificate(&self, key: &HsmKey, cert_der: &[u8]) -> Result<(), HsmError> {
        let reject = |reason: String| HsmError::BadCertificate {
            token: self.inner.label.clone(),
            label: key.label().to_owned(),
            reason,
        };
        if cert_der.len() > MAX_CERTIFICATE_BYTES {
            return Err(reject(format!(
                "{} bytes, more than {MAX_CERTIFICATE_BYTES}",
                cert_der.len()
            )));
        }
        let cert = x509_cert::Certificate::from_der(cert_der)
            .map_err(|e| reject(format!("not a DER X.509 certificate: {e}")))?;
        let tbs = cert.tbs_certificate();
        if tbs.subject_public_key_info() != key.public_key_info() {
            return Err(reject("its public key is not this key's".to_owned()));
        }
        let subject = tbs.subject().to_der().map_err(HsmError::internal)?;
        let issuer = tbs.issuer().to_der().map_err(HsmError::internal)?;
        let serial = tbs.serial_number().to_der().map_err(HsmError::internal)?;
        let id = key.id().to_vec();
        let label = key.label().to_owned();
        let value = cert_der.to_vec();
        let this = self.clone();
        self.offload(move || {
            this.run_blocking("store_certificate", Some(&label), |s| {
                let old = s.find_objects(&[
                    Attribute::Class(ObjectClass::CERTIFICATE),
                    Attribute::Id(id.clone()),
                ])?;
                s.create_object(&[
                    Attribute::Class(ObjectClass::CERTIFICATE),
                    Attribute::CertificateType(CertificateType::X_509),
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Label(label.as_bytes().to_vec()),
                    Attribute::Id(id.clone()),
                    Attribute::Subject(subject.clone()),
                    Attribute::Issuer(issuer.clone()),
                    Attribute::SerialNumber(serial.clone()),
                    Attribute::Value(value.clone()),
                ])?;
                // Created first, then the old ones removed: the key is never left without one.
                for handle in old {
                    s.destroy_object(handle)?;
                }
                Ok(())
            })
        })
        .await
    }

    /// The DER certificate stored beside `key`, if any.
    pub async fn find_certificate(&self, key: &HsmKey) -> Result<Option<Vec<u8>>, HsmError> {
        let id = key.id().to_vec();
        let label = key.label().to_owned();
        let this = self.clone();
        self.offload(move || {
            this.run_blocking("find_certificate", Some(&label), |s| {
                Ok(certificate_by_id(s, &id)?)
            })
        })
        .await
    }

    // ----- test hooks -----------------------------------------------------------------------

    /// Logs the application out of the token, as a token reset or a foreign C_Logout would.
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub fn testing_log_out(&self) -> Result<(), HsmError> {
        let state = lock(&self.inner.state);
        let session = state
            .keeper
            .as_ref()
            .ok_or_else(|| HsmError::internal("no keeper session"))?;
        session
            .logout()
            .map_err(|e| HsmError::pkcs11("logout", Some(&self.inner.label), None, &e))
    }

    /// Pretends the token offers only `mechanisms` (to exercise the fallbacks); call before the
    /// first signature.
    #[cfg(test)]
    pub(crate) fn testing_set_mechanisms(&self, mechanisms: Vec<MechanismType>) {
        let _ = self.inner.mechanisms.set(mechanisms);
    }

    /// Closes every session the token holds (the keeper and the idle pool), as C_CloseAllSessions
    /// would: the application is logged out and its private object handles become invalid.
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub fn testing_close_all_sessions(&self) {
        let mut state = lock(&self.inner.state);
        let keeper = state.keeper.take();
        let idle = {
            let mut pool = lock(&self.inner.pool);
            let idle = std::mem::take(&mut pool.idle);
            pool.open -= idle.len();
            idle
        };
        drop(idle);
        drop(keeper);
        drop(state);
        self.inner.session_returned.notify_all();
    }
}

/// Whether a key (private or public half) already carries `label`.
fn label_in_use(s: &Session, label: &str) -> Result<bool, OpError> {
    for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
        let found = s.find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])?;
        if !found.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn certificate_by_id(s: &Session, id: &[u8]) -> Result<Option<Vec<u8>>, CkError> {
    let handles = s.find_objects(&[
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::Id(id.to_vec()),
    ])?;
    let Some(&handle) = handles.first() else {
        return Ok(None);
    };
    for attribute in s.get_attributes(handle, &[AttributeType::Value])? {
        if let Attribute::Value(v) = attribute {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

struct PrivateKeyDescription {
    label: String,
    id: Vec<u8>,
    algorithm: Option<KeyAlgorithm>,
    key_type: String,
    /// RSA private keys carry the public modulus and exponent.
    rsa_public: Option<(Vec<u8>, Vec<u8>)>,
}

fn describe_private_key(
    s: &Session,
    handle: ObjectHandle,
) -> Result<PrivateKeyDescription, OpError> {
    let attributes = s.get_attributes(
        handle,
        &[
            AttributeType::Label,
            AttributeType::Id,
            AttributeType::KeyType,
            AttributeType::EcParams,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
        ],
    )?;
    let mut d = PrivateKeyDescription {
        label: String::new(),
        id: Vec::new(),
        algorithm: None,
        key_type: "unknown".to_owned(),
        rsa_public: None,
    };
    let (mut key_type, mut ec_params, mut modulus, mut exponent) = (None, None, None, None);
    for attribute in attributes {
        match attribute {
            Attribute::Label(l) => d.label = String::from_utf8_lossy(&l).into_owned(),
            Attribute::Id(id) => d.id = id,
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::EcParams(p) => ec_params = Some(p),
            Attribute::Modulus(m) => modulus = Some(m),
            Attribute::PublicExponent(e) => exponent = Some(e),
            _ => {}
        }
    }
    match key_type {
        Some(t) if t == KeyType::EC => {
            let curve = ec_params
                .as_deref()
                .and_then(|p| const_oid::ObjectIdentifier::from_der(p).ok());
            d.algorithm = curve.and_then(KeyAlgorithm::from_curve_oid);
            d.key_type = match (curve, d.algorithm) {
                (_, Some(a)) => format!("EC {a}"),
                (Some(oid), None) => format!("EC {oid}"),
                (None, None) => "EC (unknown curve)".to_owned(),
            };
        }
        Some(t) if t == KeyType::RSA => {
            let bits = modulus.as_deref().map(bit_length).unwrap_or(0);
            d.algorithm = KeyAlgorithm::from_rsa_bits(bits);
            d.key_type = format!("RSA {bits}");
            if let (Some(m), Some(e)) = (modulus, exponent) {
                d.rsa_public = Some((m, e));
            }
        }
        Some(t) => d.key_type = t.to_string(),
        None => {}
    }
    Ok(d)
}

fn bit_length(big_endian: &[u8]) -> usize {
    let trimmed: &[u8] = match big_endian.iter().position(|b| *b != 0) {
        Some(i) => &big_endian[i..],
        None => &[],
    };
    match trimmed.first() {
        Some(b) => trimmed.len() * 8 - b.leading_zeros() as usize,
        None => 0,
    }
}

/// The public key of a private key: from the public key object with the same CKA_ID, else from
/// the RSA private key's own attributes, else from a certificate with the same CKA_ID.
/// `None` when none of these exist.
fn public_key_for(
    s: &Session,
    key: &PrivateKeyDescription,
    algorithm: KeyAlgorithm,
) -> Option<Result<SubjectPublicKeyInfoOwned, OpError>> {
    let publics = match s.find_objects(&[
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::Id(key.id.clone()),
    ]) {
        Ok(p) => p,
        Err(e) => return Some(Err(e.into())),
    };
    if let Some(&handle) = publics.first() {
        return Some(read_public_key(s, handle, algorithm));
    }
    if let Some((m, e)) = &key.rsa_public {
        return Some(algorithm::rsa_spki(m, e).map_err(OpError::Hsm));
    }
    match certificate_by_id(s, &key.id) {
        Ok(Some(der)) => Some(
            x509_cert::Certificate::from_der(&der)
                .map(|c| c.tbs_certificate().subject_public_key_info().clone())
                .map_err(|e| OpError::Hsm(HsmError::internal(e))),
        ),
        Ok(None) => None,
        Err(e) => Some(Err(e.into())),
    }
}

fn read_public_key(
    s: &Session,
    handle: ObjectHandle,
    algorithm: KeyAlgorithm,
) -> Result<SubjectPublicKeyInfoOwned, OpError> {
    let attributes = s.get_attributes(
        handle,
        &[
            AttributeType::EcPoint,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
        ],
    )?;
    let (mut point, mut modulus, mut exponent) = (None, None, None);
    for attribute in attributes {
        match attribute {
            Attribute::EcPoint(p) => point = Some(p),
            Attribute::Modulus(m) => modulus = Some(m),
            Attribute::PublicExponent(e) => exponent = Some(e),
            _ => {}
        }
    }
    let spki = if algorithm.is_rsa() {
        match (modulus, exponent) {
            (Some(m), Some(e)) => algorithm::rsa_spki(&m, &e)?,
            _ => {
                return Err(
                    HsmError::internal("RSA public key without modulus or exponent").into(),
                );
            }
        }
    } else {
        let raw = point.ok_or_else(|| HsmError::internal("EC public key without CKA_EC_POINT"))?;
        let point = algorithm::ec_point_from_attribute(algorithm, &raw)?;
        algorithm::ec_spki(algorithm, &point)?
    };
    Ok(spki)
}
