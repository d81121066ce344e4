//! Loading a PKCS#11 module once per process and path, and what it tells about its slots.

use crate::token::Token;
use crate::{HsmError, Pin};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// A loaded, initialised PKCS#11 module. Cheap to clone; loading the same path again returns the
/// same context, because `C_Initialize` may happen only once per process.
#[derive(Clone)]
pub struct Module {
    inner: Arc<ModuleInner>,
}

struct ModuleInner {
    path: PathBuf,
    ctx: Pkcs11,
    /// Serialises token initialisation: two concurrent `init_token` calls would pick the same
    /// free slot.
    init_lock: Mutex<()>,
    /// Serialises C_GetSlotList: SoftHSM re-reads its token directory on every call and two
    /// concurrent refreshes can insert the same new token twice (an assertion in its
    /// SlotManager::insertToken aborts the process).
    slot_list_lock: Mutex<()>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Module>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Module>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Library and manufacturer information (`C_GetInfo`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ModuleInfo {
    pub path: PathBuf,
    pub manufacturer: String,
    pub library_description: String,
    pub library_version: String,
    pub cryptoki_version: String,
}

/// One slot and, when present, its token.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SlotSummary {
    pub id: u64,
    pub description: String,
    pub manufacturer: String,
    pub token_present: bool,
    pub token: Option<TokenSummary>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenSummary {
    pub label: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub initialized: bool,
    pub user_pin_initialized: bool,
    pub login_required: bool,
    pub user_pin_locked: bool,
    pub user_pin_count_low: bool,
}

/// One mechanism of a token (`C_GetMechanismInfo`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MechanismSummary {
    /// PKCS#11 name, e.g. "CKM_ECDSA".
    pub name: String,
    pub min_key_size: usize,
    pub max_key_size: usize,
    /// "sign", "verify", "digest", "generate_key_pair", "hardware", ...
    pub flags: Vec<String>,
}

impl Module {
    /// Loads and initialises the module at `path` (once per process and path).
    pub fn load(path: impl AsRef<Path>) -> Result<Module, HsmError> {
        let given = path.as_ref();
        let load_err = |reason: String| HsmError::ModuleLoad {
            path: given.to_path_buf(),
            reason,
        };
        // A bare file name is left to the dynamic loader's search path.
        let canonical = match std::fs::canonicalize(given) {
            Ok(path) => path,
            Err(_) if given.components().count() == 1 => given.to_path_buf(),
            Err(e) => return Err(load_err(e.to_string())),
        };
        let mut modules = registry().lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(module) = modules.get(&canonical) {
            return Ok(module.clone());
        }
        let ctx = Pkcs11::new(&canonical).map_err(|e| load_err(e.to_string()))?;
        // Sessions are used from many threads: the module must do its own locking.
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                return Err(load_err(format!(
                    "C_Initialize failed: {}",
                    HsmError::pkcs11("initialize", None, None, &e)
                )));
            }
        }
        let module = Module {
            inner: Arc::new(ModuleInner {
                path: canonical.clone(),
                ctx,
                init_lock: Mutex::new(()),
                slot_list_lock: Mutex::new(()),
            }),
        };
        modules.insert(canonical, module.clone());
        tracing::info!(path = %given.display(), "PKCS#11 module loaded");
        Ok(module)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn ctx(&self) -> &Pkcs11 {
        &self.inner.ctx
    }

    pub fn info(&self) -> Result<ModuleInfo, HsmError> {
        let info = self
            .ctx()
            .get_library_info()
            .map_err(|e| HsmError::pkcs11("get_info", None, None, &e))?;
        Ok(ModuleInfo {
            path: self.inner.path.clone(),
            manufacturer: info.manufacturer_id().to_owned(),
            library_description: info.library_description().to_owned(),
            library_version: info.library_version().to_string(),
            cryptoki_version: info.cryptoki_version().to_string(),
        })
    }

    pub fn slots(&self) -> Result<Vec<SlotSummary>, HsmError> {
        let ctx = self.ctx();
        let slots = {
            let _listing = self.slot_list_guard();
            ctx.get_all_slots()
        }
        .map_err(|e| HsmError::pkcs11("list_slots", None, None, &e))?;
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            let info = ctx
                .get_slot_info(slot)
                .map_err(|e| HsmError::pkcs11("slot_info", None, None, &e))?;
            let token = if info.token_present() {
                let t = ctx
                    .get_token_info(slot)
                    .map_err(|e| HsmError::pkcs11("token_info", None, None, &e))?;
                Some(TokenSummary {
                    label: t.label().to_owned(),
                    manufacturer: t.manufacturer_id().to_owned(),
                    model: t.model().to_owned(),
                    serial: t.serial_number().to_owned(),
                    initialized: t.token_initialized(),
                    user_pin_initialized: t.user_pin_initialized(),
                    login_required: t.login_required(),
                    user_pin_locked: t.user_pin_locked(),
                    user_pin_count_low: t.user_pin_count_low(),
                })
            } else {
                None
            };
            out.push(SlotSummary {
                id: slot.id(),
                description: info.slot_description().to_owned(),
                manufacturer: info.manufacturer_id().to_owned(),
                token_present: info.token_present(),
                token,
            });
        }
        Ok(out)
    }

    fn slot_list_guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .slot_list_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot holding the initialised token labelled `label`.
    pub(crate) fn find_slot(&self, label: &str) -> Result<Slot, HsmError> {
        let ctx = self.ctx();
        let slots = {
            let _listing = self.slot_list_guard();
            ctx.get_slots_with_initialized_token()
        }
        .map_err(|e| HsmError::pkcs11("list_slots", Some(label), None, &e))?;
        let mut available = Vec::new();
        for slot in slots {
            let info = ctx
                .get_token_info(slot)
                .map_err(|e| HsmError::pkcs11("token_info", Some(label), None, &e))?;
            if info.label() == label {
                return Ok(slot);
            }
            available.push(info.label().to_owned());
        }
        Err(HsmError::TokenNotFound {
            label: label.to_owned(),
            available,
        })
    }

    /// Mechanisms of the token in `slot`, with their key sizes and flags.
    pub(crate) fn mechanism_summaries(
        &self,
        slot: Slot,
        token: &str,
    ) -> Result<Vec<MechanismSummary>, HsmError> {
        let ctx = self.ctx();
        let types = ctx
            .get_mechanism_list(slot)
            .map_err(|e| HsmError::pkcs11("mechanism_list", Some(token), None, &e))?;
        let mut out = Vec::with_capacity(types.len());
        for mechanism in types {
            let info = ctx
                .get_mechanism_info(slot, mechanism)
                .map_err(|e| HsmError::pkcs11("mechanism_info", Some(token), None, &e))?;
            let flags = [
                ("hardware", info.hardware()),
                ("encrypt", info.encrypt()),
                ("decrypt", info.decrypt()),
                ("digest", info.digest()),
                ("sign", info.sign()),
                ("verify", info.verify()),
                ("generate", info.generate()),
                ("generate_key_pair", info.generate_key_pair()),
                ("wrap", info.wrap()),
                ("unwrap", info.unwrap()),
                ("derive", info.derive()),
            ]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| name.to_owned())
            .collect();
            out.push(MechanismSummary {
                name: mechanism.to_string(),
                min_key_size: info.min_key_size(),
                max_key_size: info.max_key_size(),
                flags,
            });
        }
        Ok(out)
    }

    pub(crate) fn mechanism_types(
        &self,
        slot: Slot,
        token: &str,
    ) -> Result<Vec<MechanismType>, HsmError> {
        self.ctx()
            .get_mechanism_list(slot)
            .map_err(|e| HsmError::pkcs11("mechanism_list", Some(token), None, &e))
    }

    /// Initialises the first slot holding an uninitialised token as `label`, with the SO PIN,
    /// then sets the user PIN. Refuses a label that is already in use.
    pub fn init_token(&self, label: &str, so_pin: &Pin, user_pin: &Pin) -> Result<(), HsmError> {
        let _serial = self
            .inner
            .init_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match self.find_slot(label) {
            Ok(_) => {
                return Err(HsmError::TokenExists {
                    label: label.to_owned(),
                });
            }
            Err(HsmError::TokenNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let ctx = self.ctx();
        let err = |op: &'static str| move |e: CkError| HsmError::pkcs11(op, Some(label), None, &e);
        let slots = {
            let _listing = self.slot_list_guard();
            ctx.get_slots_with_token()
        }
        .map_err(err("list_slots"))?;
        let mut free = None;
        for slot in slots {
            if !ctx
                .get_token_info(slot)
                .map_err(err("token_info"))?
                .token_initialized()
            {
                free = Some(slot);
                break;
            }
        }
        let slot = free.ok_or_else(|| HsmError::NoFreeSlot {
            label: label.to_owned(),
        })?;
        ctx.init_token(slot, &so_pin.auth_pin(), label)
            .map_err(err("init_token"))?;
        let session = ctx.open_rw_session(slot).map_err(err("open_session"))?;
        session
            .login(UserType::So, Some(&so_pin.auth_pin()))
            .map_err(err("login_so"))?;
        session
            .init_pin(&user_pin.auth_pin())
            .map_err(err("init_pin"))?;
        session.logout().map_err(err("logout"))?;
        session.close().map_err(err("close_session"))?;
        tracing::info!(token = label, slot = slot.id(), "token initialised");
        Ok(())
    }

    /// Finds the token by label, logs in and keeps a session open; `pool_size` bounds the number
    /// of sessions used for operations (at least 1).
    pub fn open_token(&self, label: &str, pin: Pin, pool_size: usize) -> Result<Token, HsmError> {
        Token::open(self.clone(), label, pin, pool_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loading_a_module_twice_shares_one_context() {
        let first = crate::testing::softhsm();
        let again = Module::load(crate::testing::softhsm_module_path()).expect("load again");
        assert!(Arc::ptr_eq(&first.inner, &again.inner));
        let info = again.info().expect("info");
        assert!(info.manufacturer.contains("SoftHSM"), "{info:?}");
        assert!(!again.slots().expect("slots").is_empty());
    }

    #[test]
    fn missing_module_is_a_load_error() {
        let err = Module::load("/nonexistent/libpkcs11.so").expect_err("missing");
        assert_eq!(err.code(), "hsm_module_load");
        assert!(err.to_string().contains("/nonexistent/libpkcs11.so"));
        let not_a_library = tempfile::NamedTempFile::new().expect("temp");
        let err = Module::load(not_a_library.path()).expect_err("not a library");
        assert_eq!(err.code(), "hsm_module_load");
    }
}
