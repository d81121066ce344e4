//! The `kyso` binary as an operator uses it, on a SoftHSM token made by `hsm/create-dev-token.sh`:
//! init (twice), audit verify (intact, then tampered), hsm doctor, serve with /healthz, and the
//! start-up stop when a CA key is missing from the token.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const PIN: &str = "1234";

struct Env {
    dir: tempfile::TempDir,
    softhsm_conf: PathBuf,
    port: u16,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Makes a token with `hsm/create-dev-token.sh` in a fresh directory.
fn setup(labels: &[&str]) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let hsm_dir = dir.path().join("hsm");
    let mut conf_line = String::new();
    for label in labels {
        let out = Command::new("bash")
            .arg(repo_root().join("hsm/create-dev-token.sh"))
            .args(["--label", label])
            .arg(&hsm_dir)
            .env("KYSO_HSM_PIN", PIN)
            .env("KYSO_HSM_SO_PIN", "5678")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        conf_line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned();
    }
    let softhsm_conf = PathBuf::from(conf_line.trim().trim_start_matches("export SOFTHSM2_CONF="));
    assert!(softhsm_conf.is_file(), "{conf_line}");
    Env {
        dir,
        softhsm_conf,
        port: free_port(),
    }
}

impl Env {
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn kyso(&self, token: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kyso"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SOFTHSM2_CONF", &self.softhsm_conf)
            .env("KYSO_DATA_DIR", self.data_dir())
            .env("KYSO_HSM_TOKEN", token)
            .env("KYSO_HSM_PIN", PIN)
            .env(
                "KYSO_PKCS11_MODULE",
                kyso_hsm::testing::softhsm_module_path(),
            )
            .env("KYSO_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("KYSO_PUBLIC_URL", format!("http://127.0.0.1:{}", self.port))
            .env("KYSO_LOG", "warn");
        command
    }

    fn run(&self, token: &str, args: &[&str]) -> Output {
        self.kyso(token).args(args).output().unwrap()
    }
}

/// Kills the server if the test fails before stopping it, so no `kyso serve` outlives the test.
struct ServerGuard(std::process::Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A plain HTTP/1.1 GET on loopback; None while nothing listens yet.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).ok()?;
    let response = String::from_utf8_lossy(&bytes).into_owned();
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, response))
}

#[test]
fn operator_commands_work_end_to_end() {
    let env = setup(&["kyso-ca", "empty-ca"]);

    let out = env.run("kyso-ca", &["init"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("created:"), "{}", text(&out));
    let key_file = env.data_dir().join("admin.key");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "the admin key file must be readable by its owner only"
    );

    let out = env.run("kyso-ca", &["init"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing was changed"), "{}", text(&out));

    let out = env.run("kyso-ca", &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("intact"), "{}", text(&out));

    // --token overrides the configured token (here the empty one).
    let out = env.run(
        "empty-ca",
        &[
            "hsm",
            "doctor",
            "--token",
            "kyso-ca",
            "--key",
            "kyso-issuing-ca",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(
        report.contains("CKM_ECDSA") && report.contains("kyso-issuing-ca"),
        "{report}"
    );
    // A key that is not there: the report says so and the exit status is 2.
    let out = env.run("kyso-ca", &["hsm", "doctor", "--key", "no-such-key"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let out = env.run("kyso-ca", &["config", "example"]);
    assert!(
        out.status.success() && text(&out).contains("[hsm]"),
        "{}",
        text(&out)
    );

    // serve: /healthz answers 200 with the database and the HSM up, then SIGTERM stops it cleanly.
    let mut server = ServerGuard(
        env.kyso("kyso-ca")
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut health = None;
    for _ in 0..150 {
        if let Some(answer) = http_get(env.port, "/healthz") {
            health = Some(answer);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = health.expect("kyso serve did not start listening within 15 s");
    assert_eq!(status, 200, "{body}");
    let (status, _) = http_get(env.port, "/crl/kyso-issuing.crl").unwrap();
    assert_eq!(status, 200);
    let kill = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let exit = server.0.wait().unwrap();
    assert!(
        exit.success(),
        "kyso serve should exit 0 on SIGTERM, got {exit:?}"
    );

    // A token without the CA keys: serve refuses to start and names the key and the token.
    let out = env.run("empty-ca", &["serve"]);
    assert!(!out.status.success());
    let message = text(&out);
    assert!(message.contains("ca_key_missing"), "{message}");
    assert!(
        message.contains("kyso-root-ca") || message.contains("kyso-issuing-ca"),
        "{message}"
    );
    assert!(message.contains("empty-ca"), "{message}");

    // Tamper with one audit record: verify reports it and exits 2.
    let db = env.data_dir().join("kyso.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .connect()
            .await
            .unwrap();
        sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let out = env.run("kyso-ca", &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("BROKEN at seq 2"), "{}", text(&out));
}
