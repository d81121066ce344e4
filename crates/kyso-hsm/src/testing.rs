//! Test support (cargo feature `testing`): one SoftHSM per test process and fresh tokens on it.
//!
//! Other crates: `kyso-hsm = { workspace = true, features = ["testing"] }` as a dev-dependency.
//! These helpers panic with a clear message when SoftHSM is missing: they exist for tests only.

use crate::{Module, Pin, Token};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const USER_PIN: &str = "1234";
pub const SO_PIN: &str = "5678";

/// Pool size of [`fresh_token`].
pub const FRESH_TOKEN_POOL_SIZE: usize = 4;

struct SoftHsm {
    module: Module,
    conf: PathBuf,
}

static SOFTHSM: OnceLock<SoftHsm> = OnceLock::new();

/// `KYSO_PKCS11_MODULE`, else the Debian locations of SoftHSM 2.
pub fn softhsm_module_path() -> PathBuf {
    if let Some(path) = std::env::var_os("KYSO_PKCS11_MODULE").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let candidates = [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(candidates[0]))
}

/// Token directories live as long as their test process (SoftHSM may write until exit), so each
/// process removes those left by processes that have ended.
fn remove_dead_processes_dirs(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("pid"))
            .and_then(|n| n.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn init() -> SoftHsm {
    let parent = std::env::temp_dir().join("kyso-softhsm-tests");
    std::fs::create_dir_all(&parent)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    remove_dead_processes_dirs(&parent);
    let dir = tempfile::Builder::new()
        .prefix(&format!("pid{}-", std::process::id()))
        .tempdir_in(&parent)
        .unwrap_or_else(|e| panic!("cannot create a temp dir for SoftHSM: {e}"))
        .keep();
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", tokens.display()));
    let conf = dir.join("softhsm2.conf");
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        tokens.display()
    );
    std::fs::write(&conf, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", conf.display()));
    // SoftHSM reads SOFTHSM2_CONF once, in C_Initialize, and has no other way to be told.
    #[allow(unsafe_code)]
    // SAFETY: set once, under the OnceLock, before the module is loaded; test processes do not
    // read SOFTHSM2_CONF from other threads (only SoftHSM does, inside C_Initialize below).
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", &conf);
    }
    let path = softhsm_module_path();
    let module = Module::load(&path).unwrap_or_else(|e| {
        panic!(
            "cannot load SoftHSM from {} (install softhsm2 or set KYSO_PKCS11_MODULE): {e}",
            path.display()
        )
    });
    SoftHsm { module, conf }
}

/// The process-wide SoftHSM module, configured with a fresh token directory.
pub fn softhsm() -> &'static Module {
    &SOFTHSM.get_or_init(init).module
}

/// The softhsm2.conf this process uses (for `pkcs11-tool`/`softhsm2-util` subprocesses).
pub fn softhsm_conf_path() -> &'static Path {
    &SOFTHSM.get_or_init(init).conf
}

/// A unique token label derived from `name` (at most 32 bytes, the PKCS#11 limit).
pub fn unique_label(name: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let stem: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(24)
        .collect();
    format!("{stem}-{n}")
}

/// Initialises a new, empty token (label from `name`, PINs [`USER_PIN`]/[`SO_PIN`]) and opens
/// it with a pool of [`FRESH_TOKEN_POOL_SIZE`] sessions.
pub fn fresh_token(name: &str) -> Token {
    fresh_token_with_pool(name, FRESH_TOKEN_POOL_SIZE)
}

pub fn fresh_token_with_pool(name: &str, pool_size: usize) -> Token {
    let module = softhsm();
    let label = unique_label(name);
    module
        .init_token(&label, &Pin::new(SO_PIN), &Pin::new(USER_PIN))
        .unwrap_or_else(|e| panic!("cannot initialise SoftHSM token {label}: {e}"));
    module
        .open_token(&label, Pin::new(USER_PIN), pool_size)
        .unwrap_or_else(|e| panic!("cannot open SoftHSM token {label}: {e}"))
}
