//! The library side of `kyso hsm doctor`: what a key officer runs when the HSM does not work.
//! Every step records its own outcome; a failing step never hides the ones after it that can
//! still run.

use crate::{
    HashAlgorithm, HsmError, KeyAlgorithm, KeySummary, Module, ModuleInfo, Pin, RsaPadding,
    SlotSummary,
};
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// The message the doctor signs.
pub const TEST_MESSAGE: &[u8] = b"kyso hsm doctor test signature";

/// Outcome of one doctor step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Step<T> {
    Ok { value: T },
    Failed { code: String, message: String },
    Skipped { reason: String },
}

impl<T> Step<T> {
    fn from_result(r: Result<T, HsmError>) -> Step<T> {
        match r {
            Ok(value) => Step::Ok { value },
            Err(e) => Step::failed(&e),
        }
    }

    fn failed(e: &HsmError) -> Step<T> {
        Step::Failed {
            code: e.code().to_owned(),
            message: e.to_string(),
        }
    }

    fn skipped(reason: &str) -> Step<T> {
        Step::Skipped {
            reason: reason.to_owned(),
        }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, Step::Failed { .. })
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            Step::Ok { value } => Some(value),
            _ => None,
        }
    }
}

/// A mechanism kyso uses and whether the token has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MechanismCheck {
    pub name: String,
    pub needed_for: String,
    /// Without an optional mechanism kyso falls back to another one.
    pub required: bool,
    pub present: bool,
    pub min_key_size: Option<usize>,
    pub max_key_size: Option<usize>,
}

/// A signature made with the chosen key and checked in software.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TestSignature {
    pub key: String,
    pub algorithm: KeyAlgorithm,
    pub hash: HashAlgorithm,
    /// For RSA keys.
    pub padding: Option<RsaPadding>,
    pub signature_algorithm_oid: String,
    pub signature_bytes: usize,
    pub verified: bool,
}

/// Everything the doctor found. `Display` is the human report, `Serialize` the machine one.
#[derive(Clone, Debug, Serialize)]
pub struct DoctorReport {
    pub module_path: PathBuf,
    pub module: Step<ModuleInfo>,
    pub slots: Step<Vec<SlotSummary>>,
    pub token_label: Option<String>,
    pub mechanisms: Step<Vec<MechanismCheck>>,
    pub login: Step<String>,
    pub keys: Step<Vec<KeySummary>>,
    pub test_signatures: Step<Vec<TestSignature>>,
}

impl DoctorReport {
    /// No step failed and every required mechanism is present.
    pub fn healthy(&self) -> bool {
        let failed = self.module.is_failed()
            || self.slots.is_failed()
            || self.mechanisms.is_failed()
            || self.login.is_failed()
            || self.keys.is_failed()
            || self.test_signatures.is_failed();
        let missing = self
            .mechanisms
            .value()
            .is_some_and(|m| m.iter().any(|c| c.required && !c.present));
        !failed && !missing
    }
}

/// (mechanism, what kyso uses it for, required)
const NEEDED_MECHANISMS: &[(&str, &str, bool)] = &[
    ("CKM_EC_KEY_PAIR_GEN", "P-256/P-384 key generation", true),
    ("CKM_ECDSA", "ECDSA signatures (hashed in software)", true),
    ("CKM_RSA_PKCS_KEY_PAIR_GEN", "RSA key generation", true),
    (
        "CKM_RSA_PKCS",
        "RSA PKCS#1 v1.5 over a given digest, and fallback",
        true,
    ),
    (
        "CKM_RSA_PKCS_PSS",
        "RSA-PSS over a given digest, and fallback",
        true,
    ),
    (
        "CKM_SHA256_RSA_PKCS",
        "RSA PKCS#1 v1.5 with SHA-256 on the token",
        false,
    ),
    (
        "CKM_SHA384_RSA_PKCS",
        "RSA PKCS#1 v1.5 with SHA-384 on the token",
        false,
    ),
    (
        "CKM_SHA512_RSA_PKCS",
        "RSA PKCS#1 v1.5 with SHA-512 on the token",
        false,
    ),
    (
        "CKM_SHA256_RSA_PKCS_PSS",
        "RSA-PSS with SHA-256 on the token",
        false,
    ),
    (
        "CKM_SHA384_RSA_PKCS_PSS",
        "RSA-PSS with SHA-384 on the token",
        false,
    ),
    (
        "CKM_SHA512_RSA_PKCS_PSS",
        "RSA-PSS with SHA-512 on the token",
        false,
    ),
];

/// Module info, slots, tokens, the mechanisms kyso needs, keys, and a test signature with
/// `test_key` verified in software. Steps needing a token, a PIN or a key are skipped without
/// them.
pub async fn doctor(
    module: &Module,
    token_label: Option<&str>,
    pin: Option<Pin>,
    test_key: Option<&str>,
) -> DoctorReport {
    let owned_module = module.clone();
    let owned_label = token_label.map(str::to_owned);
    let blocking = tokio::task::spawn_blocking(move || {
        let info = Step::from_result(owned_module.info());
        let slots = Step::from_result(owned_module.slots());
        let mechanisms = match &owned_label {
            Some(label) => Step::from_result(mechanism_checks(&owned_module, label)),
            None => Step::skipped("no token label given"),
        };
        (info, slots, mechanisms)
    })
    .await;
    let (module_step, slots, mechanisms) = match blocking {
        Ok(steps) => steps,
        Err(e) => {
            let err = HsmError::internal(format!("doctor task failed: {e}"));
            (Step::failed(&err), Step::failed(&err), Step::failed(&err))
        }
    };
    let mut report = DoctorReport {
        module_path: module.path().to_path_buf(),
        module: module_step,
        slots,
        token_label: token_label.map(str::to_owned),
        mechanisms,
        login: Step::skipped("no token label given"),
        keys: Step::skipped("no token label given"),
        test_signatures: Step::skipped("no token label given"),
    };
    let Some(label) = token_label else {
        return report;
    };
    let Some(pin) = pin else {
        let reason = "no PIN given";
        report.login = Step::skipped(reason);
        report.keys = Step::skipped(reason);
        report.test_signatures = Step::skipped(reason);
        return report;
    };
    let owned_module = module.clone();
    let owned_label = label.to_owned();
    let opened = tokio::task::spawn_blocking(move || owned_module.open_token(&owned_label, pin, 1))
        .await
        .unwrap_or_else(|e| Err(HsmError::internal(format!("doctor task failed: {e}"))));
    let token = match opened {
        Ok(token) => {
            report.login = Step::Ok {
                value: format!("logged in to {label:?}"),
            };
            token
        }
        Err(e) => {
            report.login = Step::failed(&e);
            let reason = "login failed";
            report.keys = Step::skipped(reason);
            report.test_signatures = Step::skipped(reason);
            return report;
        }
    };
    report.keys = Step::from_result(token.list_keys().await);
    report.test_signatures = match test_key {
        None => Step::skipped("no test key given"),
        Some(key_label) => match test_signatures(&token, key_label).await {
            Ok(signatures) => match signatures.iter().find(|s| !s.verified) {
                Some(bad) => Step::Failed {
                    code: "hsm_signature_invalid".to_owned(),
                    message: format!(
                        "the signature of key {key_label:?} ({}) does not verify in software",
                        bad.signature_algorithm_oid
                    ),
                },
                None => Step::Ok { value: signatures },
            },
            Err(e) => Step::failed(&e),
        },
    };
    report
}

fn mechanism_checks(module: &Module, label: &str) -> Result<Vec<MechanismCheck>, HsmError> {
    let slot = module.find_slot(label)?;
    let offered = module.mechanism_summaries(slot, label)?;
    Ok(NEEDED_MECHANISMS
        .iter()
        .map(|(name, needed_for, required)| {
            let found = offered.iter().find(|m| m.name == *name);
            MechanismCheck {
                name: (*name).to_owned(),
                needed_for: (*needed_for).to_owned(),
                required: *required,
                present: found.is_some(),
                min_key_size: found.map(|m| m.min_key_size),
                max_key_size: found.map(|m| m.max_key_size),
            }
        })
        .collect())
}

async fn test_signatures(
    token: &crate::Token,
    key_label: &str,
) -> Result<Vec<TestSignature>, HsmError> {
    let key = token.find_key(key_label).await?;
    let variants = if key.algorithm().is_rsa() {
        vec![
            key.clone().with_rsa_padding(RsaPadding::Pkcs1v15),
            key.clone().with_rsa_padding(RsaPadding::Pss),
        ]
    } else {
        vec![key]
    };
    let mut out = Vec::with_capacity(variants.len());
    for key in variants {
        let signature = key.sign(TEST_MESSAGE).await?;
        out.push(TestSignature {
            key: key.label().to_owned(),
            algorithm: key.algorithm(),
            hash: key.hash(),
            padding: key.algorithm().is_rsa().then(|| key.rsa_padding()),
            signature_algorithm_oid: key.signature_algorithm().oid.to_string(),
            signature_bytes: signature.len(),
            verified: key.verify(TEST_MESSAGE, &signature).is_ok(),
        });
    }
    Ok(out)
}

fn write_step<T>(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    step: &Step<T>,
    ok_line: impl FnOnce(&T) -> String,
) -> fmt::Result {
    match step {
        Step::Ok { value } => writeln!(f, "  [ok]   {title}: {}", ok_line(value)),
        Step::Failed { code, message } => writeln!(f, "  [FAIL] {title}: {message} ({code})"),
        Step::Skipped { reason } => writeln!(f, "  [skip] {title}: {reason}"),
    }
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "PKCS#11 module {}", self.module_path.display())?;
        write_step(f, "library", &self.module, |m| {
            format!(
                "{} \"{}\" version {} (Cryptoki {})",
                m.manufacturer, m.library_description, m.library_version, m.cryptoki_version
            )
        })?;
        write_step(f, "slots", &self.slots, |s| format!("{}", s.len()))?;
        if let Some(slots) = self.slots.value() {
            for slot in slots {
                match &slot.token {
                    Some(t) if t.initialized => writeln!(
                        f,
                        "         slot {}: token {:?} ({} {}, serial {}){}{}",
                        slot.id,
                        t.label,
                        t.manufacturer,
                        t.model,
                        t.serial,
                        if t.user_pin_locked {
                            ", USER PIN LOCKED"
                        } else {
                            ""
                        },
                        if t.user_pin_count_low {
                            ", user PIN count low"
                        } else {
                            ""
                        },
                    )?,
                    Some(_) => writeln!(f, "         slot {}: uninitialised token", slot.id)?,
                    None => writeln!(
                        f,
                        "         slot {}: no token ({})",
                        slot.id, slot.description
                    )?,
                }
            }
        }
        let Some(label) = &self.token_label else {
            return writeln!(f, "No token label given: token checks skipped.");
        };
        writeln!(f, "Token {label:?}")?;
        write_step(f, "mechanisms", &self.mechanisms, |m| {
            let missing = m.iter().filter(|c| c.required && !c.present).count();
            if missing == 0 {
                "every required mechanism is present".to_owned()
            } else {
                format!("{missing} required mechanism(s) MISSING")
            }
        })?;
        if let Some(checks) = self.mechanisms.value() {
            for c in checks {
                let mark = match (c.present, c.required) {
                    (true, _) => "present",
                    (false, true) => "MISSING",
                    (false, false) => "absent ",
                };
                writeln!(
                    f,
                    "         {mark} {:<26} {}{}",
                    c.name,
                    c.needed_for,
                    if c.required { "" } else { " (optional)" }
                )?;
            }
        }
        write_step(f, "login", &self.login, |s| s.clone())?;
        write_step(f, "keys", &self.keys, |k| format!("{}", k.len()))?;
        if let Some(keys) = self.keys.value() {
            for k in keys {
                writeln!(
                    f,
                    "         {:?} {} id {}{}",
                    k.label,
                    k.key_type,
                    k.id_hex,
                    if k.has_certificate {
                        ", with certificate"
                    } else {
                        ""
                    }
                )?;
            }
        }
        write_step(f, "test signature", &self.test_signatures, |sigs| {
            sigs.iter()
                .map(|s| {
                    format!(
                        "{:?} {} {}{}: {} bytes, {}",
                        s.key,
                        s.algorithm,
                        s.hash,
                        s.padding.map(|p| format!(" {p}")).unwrap_or_default(),
                        s.signature_bytes,
                        if s.verified {
                            "verified in software"
                        } else {
                            "DOES NOT VERIFY"
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        writeln!(
            f,
            "{}",
            if self.healthy() {
                "Result: healthy"
            } else {
                "Result: PROBLEMS FOUND"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{USER_PIN, fresh_token, softhsm};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn doctor_reports_a_healthy_token_and_signs() {
        let token = fresh_token("doctor");
        token
            .generate_key("doctor-ec", KeyAlgorithm::EcP384)
            .await
            .expect("ec");
        token
            .generate_key("doctor-rsa", KeyAlgorithm::Rsa2048)
            .await
            .expect("rsa");
        for key in ["doctor-ec", "doctor-rsa"] {
            let report = doctor(
                softhsm(),
                Some(token.label()),
                Some(Pin::new(USER_PIN)),
                Some(key),
            )
            .await;
            assert!(report.healthy(), "{report}");
            let sigs = report.test_signatures.value().expect("signatures");
            assert!(sigs.iter().all(|s| s.verified));
            assert_eq!(sigs.len(), if key == "doctor-rsa" { 2 } else { 1 });
            assert_eq!(report.keys.value().map(Vec::len), Some(2));
            let text = report.to_string();
            assert!(text.contains("CKM_ECDSA"), "{text}");
            assert!(text.contains("verified in software"), "{text}");
            let json = serde_json::to_value(&report).expect("json");
            assert_eq!(json["test_signatures"]["status"], "ok");
            assert_eq!(json["login"]["status"], "ok");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn doctor_records_each_failure_and_goes_on() {
        let token = fresh_token("doctor-failures");
        let report = doctor(softhsm(), Some("no-such-token"), Some(Pin::new("1")), None).await;
        assert!(report.module.value().is_some());
        assert!(report.slots.value().is_some());
        match &report.mechanisms {
            Step::Failed { code, message } => {
                assert_eq!(code, "hsm_token_not_found");
                assert!(message.contains(token.label()), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(report.login.is_failed());
        assert!(!report.healthy());
        assert!(report.to_string().contains("PROBLEMS FOUND"));

        let report = doctor(
            softhsm(),
            Some(token.label()),
            Some(Pin::new(USER_PIN)),
            Some("missing-key"),
        )
        .await;
        assert!(report.mechanisms.value().is_some());
        assert!(report.keys.value().is_some());
        match &report.test_signatures {
            Step::Failed { code, .. } => assert_eq!(code, "hsm_key_not_found"),
            other => panic!("unexpected {other:?}"),
        }

        let report = doctor(softhsm(), Some(token.label()), None, None).await;
        assert!(matches!(report.login, Step::Skipped { .. }));
        assert!(report.mechanisms.value().is_some());
        assert!(report.healthy(), "{report}");
    }
}
