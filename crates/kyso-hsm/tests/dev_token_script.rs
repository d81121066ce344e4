//! hsm/create-dev-token.sh: creates the configuration, PIN files and tokens, and is idempotent.
//! Runs SoftHSM only in subprocesses, each with the script's own SOFTHSM2_CONF.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hsm/create-dev-token.sh")
}

fn run(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(script()).args(extra).arg(data);
    cmd.env_remove("KYSO_HSM_PIN").env_remove("KYSO_HSM_SO_PIN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run create-dev-token.sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn token_labels(conf: &Path) -> Vec<String> {
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", conf)
        .arg("--show-slots")
        .output()
        .expect("softhsm2-util");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Label:"))
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

fn can_log_in(conf: &Path, label: &str, pin: &str) -> bool {
    Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", conf)
        .arg("--module")
        .arg(kyso_hsm::testing::softhsm_module_path())
        .args([
            "--token-label",
            label,
            "--login",
            "--pin",
            pin,
            "--list-objects",
        ])
        .output()
        .expect("pkcs11-tool")
        .status
        .success()
}

#[test]
fn dev_token_script_creates_tokens_idempotently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (ok, stdout, stderr) = run(&data, &[], &[]);
    assert!(ok, "{stderr}");
    let conf = data.join("softhsm2.conf");
    assert_eq!(
        stdout.trim(),
        format!("export SOFTHSM2_CONF={}", conf.display())
    );
    let text = std::fs::read_to_string(&conf).expect("conf");
    assert!(text.contains(&format!(
        "directories.tokendir = {}",
        data.join("tokens").display()
    )));
    for file in ["pin", "so-pin"] {
        let mode = std::fs::metadata(data.join(file))
            .expect("pin file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let pin = std::fs::read_to_string(data.join("pin")).expect("pin");
    assert!(pin.trim().len() >= 16);
    assert_eq!(token_labels(&conf), ["kyso-ca"]);
    assert!(can_log_in(&conf, "kyso-ca", pin.trim()));

    // Again: nothing changes.
    let (ok, _, stderr) = run(&data, &[], &[]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read_to_string(data.join("pin")).expect("pin"), pin);
    assert_eq!(token_labels(&conf), ["kyso-ca"]);

    // A second token with PINs from the environment.
    let (ok, _, stderr) = run(
        &data,
        &["--label", "staff-token"],
        &[("KYSO_HSM_PIN", "2468"), ("KYSO_HSM_SO_PIN", "13579")],
    );
    assert!(ok, "{stderr}");
    let mut labels = token_labels(&conf);
    labels.sort();
    assert_eq!(labels, ["kyso-ca", "staff-token"]);
    assert!(can_log_in(&conf, "staff-token", "2468"));
    assert!(!can_log_in(&conf, "staff-token", pin.trim()));
}
