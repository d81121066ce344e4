//! A token PIN held in memory that is wiped on drop.

use crate::HsmError;
use std::io::Read;
use std::path::Path;
use zeroize::Zeroizing;

/// Longest PIN file we read: PKCS#11 PINs are short, anything bigger is the wrong file.
const MAX_PIN_FILE_BYTES: u64 = 4096;

/// A user or SO PIN. `Debug` never shows it.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    pub fn new(pin: impl Into<String>) -> Pin {
        Pin(Zeroizing::new(pin.into()))
    }

    /// Reads the PIN from an environment variable; unset or empty is `PinUnavailable`.
    pub fn from_env(var: &str) -> Result<Pin, HsmError> {
        match std::env::var(var) {
            Ok(value) if !value.is_empty() => Ok(Pin::new(value)),
            Ok(_) => Err(HsmError::PinUnavailable {
                source_desc: format!("environment variable {var} is empty"),
            }),
            Err(_) => Err(HsmError::PinUnavailable {
                source_desc: format!("environment variable {var} is not set"),
            }),
        }
    }

    /// Reads the PIN from a file, dropping a trailing newline (`\n` or `\r\n`).
    pub fn from_file(path: &Path) -> Result<Pin, HsmError> {
        let unavailable = |why: String| HsmError::PinUnavailable {
            source_desc: format!("PIN file {}: {why}", path.display()),
        };
        let file = std::fs::File::open(path).map_err(|e| unavailable(e.to_string()))?;
        let mut raw = Zeroizing::new(Vec::new());
        file.take(MAX_PIN_FILE_BYTES + 1)
            .read_to_end(&mut raw)
            .map_err(|e| unavailable(e.to_string()))?;
        if raw.len() as u64 > MAX_PIN_FILE_BYTES {
            return Err(unavailable(format!(
                "longer than {MAX_PIN_FILE_BYTES} bytes"
            )));
        }
        let text = std::str::from_utf8(&raw).map_err(|_| unavailable("not UTF-8".to_owned()))?;
        let pin = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(text);
        if pin.is_empty() {
            return Err(unavailable("empty".to_owned()));
        }
        Ok(Pin::new(pin))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn auth_pin(&self) -> cryptoki::types::AuthPin {
        cryptoki::types::AuthPin::from(self.0.as_str())
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_debug_hides_the_value() {
        assert_eq!(format!("{:?}", Pin::new("123456")), "Pin(***)");
    }

    #[test]
    fn pin_file_trailing_newline_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pin");
        std::fs::write(&path, "98 76\r\n").expect("write");
        assert_eq!(Pin::from_file(&path).expect("pin").expose(), "98 76");
        std::fs::write(&path, "abc\n\n").expect("write");
        assert_eq!(Pin::from_file(&path).expect("pin").expose(), "abc\n");
    }

    #[test]
    fn pin_file_missing_empty_or_huge_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = Pin::from_file(&dir.path().join("nope")).expect_err("missing");
        assert_eq!(missing.code(), "hsm_pin_unavailable");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        assert_eq!(
            Pin::from_file(&empty).expect_err("empty").code(),
            "hsm_pin_unavailable"
        );
        let huge = dir.path().join("huge");
        std::fs::write(&huge, vec![b'1'; 5000]).expect("write");
        assert_eq!(
            Pin::from_file(&huge).expect_err("huge").code(),
            "hsm_pin_unavailable"
        );
    }

    #[test]
    fn pin_env_unset_is_unavailable() {
        let err = Pin::from_env("KYSO_HSM_TEST_PIN_THAT_IS_NEVER_SET").expect_err("unset");
        assert_eq!(err.code(), "hsm_pin_unavailable");
        assert!(
            err.to_string()
                .contains("KYSO_HSM_TEST_PIN_THAT_IS_NEVER_SET")
        );
    }
}
