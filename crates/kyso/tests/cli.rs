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

/// A plain HTTP/1.1 request on loopback; returns the status and the body bytes.
fn http(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    json: Option<&str>,
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = json.unwrap_or("");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(key) = key {
        head.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    if json.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, bytes[split + 4..].to_vec())
}

fn json_field(body: &[u8], pointer: &str) -> serde_json::Value {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap();
    value.pointer(pointer).cloned().unwrap_or_default()
}

#[test]
fn sign_verify_and_check_the_receipt_from_the_command_line() {
    let env = setup(&["kyso-ca"]);
    let kyso = |args: &[&str]| {
        env.kyso("kyso-ca")
            // The kernel's clock state depends on the machine; this test is about the commands.
            .env("KYSO_TSA_REQUIRE_SYNCHRONISED_CLOCK", "false")
            .args(args)
            .output()
            .unwrap()
    };
    let out = kyso(&["init"]);
    assert!(out.status.success(), "{}", text(&out));
    let admin = std::fs::read_to_string(env.data_dir().join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();

    // A key officer enrols a staff member with a key generated on the CA token (the default
    // signing token); the server writes the certificate beside it.
    let mut server = ServerGuard(
        env.kyso("kyso-ca")
            .env("KYSO_TSA_REQUIRE_SYNCHRONISED_CLOCK", "false")
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut up = false;
    for _ in 0..150 {
        if http_get(env.port, "/healthz").is_some() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(up, "kyso serve did not start");
    let (status, staff) = http(
        env.port,
        "POST",
        "/v1/staff",
        Some(&admin),
        Some(
            r#"{"full_name":"Trần Thị Bình","agency":"ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI","email":"binhtt@quangngai.gov.vn","identity_numbers":["CCCD:051212345645"]}"#,
        ),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&staff));
    let id = json_field(&staff, "/id");
    let (status, enrolled) = http(
        env.port,
        "POST",
        &format!("/v1/staff/{id}/enroll"),
        Some(&admin),
        Some(&format!(
            r#"{{"token_label":"kyso-ca","pin":"{PIN}","key_algorithm":"p256","key_label":"binh-ky-so"}}"#
        )),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&enrolled));
    let dir = env.dir.path();
    let mut chain = Vec::new();
    for ca in ["kyso-root", "kyso-issuing"] {
        let (status, der) = http(env.port, "GET", &format!("/ca/{ca}.crt"), None, None);
        assert_eq!(status, 200);
        std::fs::write(dir.join(format!("{ca}.der")), &der).unwrap();
        let pem = Command::new("openssl")
            .args(["x509", "-inform", "DER", "-in"])
            .arg(dir.join(format!("{ca}.der")))
            .output()
            .unwrap();
        chain.extend(pem.stdout);
    }
    std::fs::write(dir.join("chain.pem"), &chain).unwrap();
    let kill = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    server.0.wait().unwrap();

    // kyso sign cms: a B-T signature beside the document, which openssl verifies.
    let doc = dir.join("quyet-dinh.txt");
    std::fs::write(&doc, "QUYẾT ĐỊNH số 7/QĐ-UBND").unwrap();
    let out = kyso(&[
        "sign",
        "cms",
        "--key",
        "binh-ky-so",
        "--level",
        "B-T",
        doc.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let signature = dir.join("quyet-dinh.txt.p7s");
    let openssl = Command::new("openssl")
        .args(["cms", "-verify", "-binary", "-inform", "DER", "-in"])
        .arg(&signature)
        .arg("-CAfile")
        .arg(dir.join("chain.pem"))
        .args(["-out", "/dev/null"])
        .output()
        .unwrap();
    assert!(openssl.status.success(), "{}", text(&openssl));
    // A key that is not on the token.
    let out = kyso(&["sign", "cms", "--key", "nobody", doc.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("signing_key_not_found"),
        "{}",
        text(&out)
    );

    // kyso verify: passed (exit 0), with the statement and its receipt written out.
    let receipts = dir.join("receipts");
    std::fs::create_dir(&receipts).unwrap();
    let out = kyso(&[
        "verify",
        signature.to_str().unwrap(),
        "--out-dir",
        receipts.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("TOTAL-PASSED"), "{}", text(&out));
    assert!(text(&out).contains("Trần Thị Bình"), "{}", text(&out));
    let mut written: Vec<_> = std::fs::read_dir(&receipts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    written.sort();
    assert_eq!(written.len(), 2, "{written:?}");
    let (statement, receipt) = (&written[0], &written[1]);
    assert!(statement.extension().unwrap() == "json" && receipt.extension().unwrap() == "p7s");

    // kyso verify-receipt, offline (no configuration at all): valid.
    let offline = |statement: &Path| {
        Command::new(env!("CARGO_BIN_EXE_kyso"))
            .env_clear()
            .env("KYSO_LOG", "warn")
            .args(["verify-receipt", "--statement"])
            .arg(statement)
            .arg("--receipt")
            .arg(receipt)
            .arg("--root")
            .arg(dir.join("kyso-root.der"))
            .output()
            .unwrap()
    };
    let out = offline(statement);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("The receipt is valid"),
        "{}",
        text(&out)
    );
    // openssl agrees.
    let openssl = Command::new("openssl")
        .args(["cms", "-verify", "-binary", "-inform", "DER", "-in"])
        .arg(receipt)
        .arg("-content")
        .arg(statement)
        .arg("-CAfile")
        .arg(dir.join("chain.pem"))
        .args(["-out", "/dev/null"])
        .output()
        .unwrap();
    assert!(openssl.status.success(), "{}", text(&openssl));
    // One changed character in the statement: not valid (exit 2).
    let tampered = dir.join("tampered.json");
    let text_of = std::fs::read_to_string(statement).unwrap();
    std::fs::write(
        &tampered,
        text_of.replacen("TOTAL-PASSED", "TOTAL-FAILED", 1),
    )
    .unwrap();
    let out = offline(&tampered);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("NOT valid"), "{}", text(&out));
}
