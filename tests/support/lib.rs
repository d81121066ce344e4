//! Test support for kyso's integration tests: real nodes serving on loopback, the openssl binary as a
//! peer, and the paths of committed test material.
//!
//! Every node in a test process shares one SoftHSM (SoftHSM reads its configuration once per
//! process); each test takes fresh tokens from it, so tests do not see each other's keys.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use base64::Engine;
use kyso_clock::{SharedClock, SystemClock};
use kyso_hsm::Token;
use kyso_server::config::Config;
use kyso_store::Store;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The repository root (this package lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// A file under `certs-test/`.
pub fn certs_test(relative: &str) -> PathBuf {
    repo_root().join("certs-test").join(relative)
}

/// A change to a node's configuration, made just before it starts.
pub type ConfigChange = Box<dyn FnOnce(&mut Config) + Send>;

/// How a node is started.
pub struct NodeOptions {
    /// Database URL; `None` means a SQLite file in the node's data directory.
    pub database_url: Option<String>,
    /// The CA token; `None` means a fresh SoftHSM token.
    pub token: Option<Token>,
    /// Run `kyso init` (keys, certificates, first admin key) before serving.
    pub init: bool,
    /// The admin key, when `init` is false (a second node reuses the first node's key).
    pub admin_key: Option<String>,
    /// The TSA's check that the kernel reports the clock synchronised. Off by default here: the
    /// answer depends on the machine (a VM without NTP says no), and a test that needs the real
    /// check turns it on and compares with `kyso_clock::system_sync_status`.
    pub require_synchronised_clock: bool,
    /// Last changes to the configuration before the node starts (trust anchors, ...).
    pub configure: Option<ConfigChange>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            database_url: None,
            token: None,
            init: true,
            admin_key: None,
            require_synchronised_clock: false,
            configure: None,
        }
    }
}

/// A kyso node serving HTTP on a loopback port until dropped.
pub struct Node {
    pub base_url: String,
    pub admin_key: String,
    pub token: Token,
    pub store: Arc<dyn Store>,
    pub http: reqwest::Client,
    pub dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Node {
    /// A node on SQLite with a fresh CA token, initialised.
    pub async fn start() -> Node {
        Node::start_with(NodeOptions::default()).await
    }

    /// A node as `options` say.
    pub async fn start_with(options: NodeOptions) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let token = options
            .token
            .unwrap_or_else(|| kyso_hsm::testing::fresh_token("ca"));

        let mut config = Config {
            listen: address,
            public_url: format!("http://{address}"),
            data_dir: dir.path().to_path_buf(),
            database_url: options.database_url,
            ..Config::default()
        };
        config.hsm.module = kyso_hsm::testing::softhsm_module_path();
        config.hsm.token_label = token.label().to_owned();
        config.tsa.require_synchronised_clock = options.require_synchronised_clock;
        if let Some(configure) = options.configure {
            configure(&mut config);
        }

        let clock: SharedClock = SystemClock::shared();
        let store = kyso_store::open_with_clock(&config.database_url(), clock.clone())
            .await
            .expect("open store");
        let admin_key = if options.init {
            let report =
                kyso_server::init::init_with(&config, store.clone(), &token, clock.clone())
                    .await
                    .expect("kyso init");
            let path = report
                .admin_key_file
                .expect("first init writes an admin key");
            std::fs::read_to_string(path)
                .expect("read admin key")
                .trim()
                .to_owned()
        } else {
            options
                .admin_key
                .expect("a node that is not initialised needs an admin key")
        };
        let state = kyso_server::app::state_from_parts(
            config,
            store.clone(),
            clock,
            kyso_hsm::testing::softhsm().clone(),
            token.clone(),
        )
        .await
        .expect("load state");
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(kyso_server::app::serve_on(listener, state, async move {
            let _ = stop.await;
        }));
        Node {
            base_url: format!("http://{address}"),
            admin_key,
            token,
            store,
            http: reqwest::Client::new(),
            dir,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// POSTs JSON as the admin; returns the status and the JSON body.
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.post_json_as(&self.admin_key, path, body).await
    }

    /// GETs a path without authentication; returns the status and the body bytes.
    pub async fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("body").to_vec())
    }

    /// GETs a path as the admin; returns the status and the JSON body.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.admin_key)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Asks this node's OCSP responder, through `openssl ocsp -url`, about a certificate the API
    /// issued; returns openssl's output (which must include "Response verify OK").
    pub async fn ocsp_status_via_openssl(&self, issued: &serde_json::Value) -> String {
        let dir = tempfile::tempdir().expect("temp dir");
        let (root, issuing) = self.write_ca_pems(dir.path()).await;
        let chain = dir.path().join("chain.pem");
        let pems = [
            std::fs::read_to_string(&root).expect("root PEM"),
            std::fs::read_to_string(&issuing).expect("issuing PEM"),
        ];
        std::fs::write(&chain, pems.concat()).expect("write chain");
        let leaf = dir.path().join("leaf.pem");
        let pem = issued["certificate"]["certificate_pem"]
            .as_str()
            .expect("certificate_pem");
        std::fs::write(&leaf, pem).expect("write leaf");
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let out = openssl_async(vec![
            "ocsp".into(),
            "-issuer".into(),
            path(&issuing),
            "-cert".into(),
            path(&leaf),
            "-url".into(),
            self.url("/ocsp"),
            "-CAfile".into(),
            path(&chain),
            "-resp_text".into(),
        ])
        .await;
        let all = text(&out);
        assert!(
            all.contains("Response verify OK"),
            "openssl could not verify: {all}"
        );
        all
    }

    /// Issues a staff-signing certificate for `csr` (a file under certs-test/) and returns the API's
    /// JSON answer.
    pub async fn issue_staff_certificate(&self, csr: &str) -> serde_json::Value {
        let csr_pem = std::fs::read_to_string(certs_test(csr)).expect("read CSR");
        let (status, body) = self
            .post_json(
                "/v1/ca/certificates",
                serde_json::json!({
                    "csr_pem": csr_pem,
                    "profile": "staff_signing",
                    "subject": {
                        "common_name": "Nguyễn Văn An",
                        "province": "Quảng Ngãi",
                        "organisation": "ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI",
                        "organisational_unit": "SỞ THÔNG TIN VÀ TRUYỀN THÔNG",
                        "email": "annv@quangngai.gov.vn",
                        "identities": ["CCCD:051212345645"]
                    }
                }),
            )
            .await;
        assert_eq!(status, 201, "issuance failed: {body}");
        body
    }

    /// POSTs raw bytes with a content type, without authentication; returns status and body.
    pub async fn post_bytes(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("body").to_vec())
    }

    /// POSTs JSON with an API key; returns the status and the JSON body.
    pub async fn post_json_as(
        &self,
        key: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Enrols a staff member with a `key_algorithm` key generated on the CA token (the default
    /// signing token) under `label`, and creates an API client granted that key. Returns the
    /// client's API key and the enrolment answer.
    pub async fn signing_client(
        &self,
        label: &str,
        key_algorithm: &str,
    ) -> (String, serde_json::Value) {
        let (status, staff) = self
            .post_json(
                "/v1/staff",
                serde_json::json!({
                    "full_name": "Nguyễn Văn An",
                    "agency": "ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI",
                    "unit": "SỞ THÔNG TIN VÀ TRUYỀN THÔNG",
                    "email": "annv@quangngai.gov.vn",
                    "identity_numbers": ["CCCD:051212345645"]
                }),
            )
            .await;
        assert_eq!(status, 201, "staff: {staff}");
        let id = staff["id"].as_i64().expect("staff id");
        let (status, enrolled) = self
            .post_json(
                &format!("/v1/staff/{id}/enroll"),
                serde_json::json!({
                    "token_label": self.token.label(),
                    "pin": kyso_hsm::testing::USER_PIN,
                    "key_algorithm": key_algorithm,
                    "key_label": label,
                }),
            )
            .await;
        assert_eq!(status, 201, "enroll: {enrolled}");
        let (status, client) = self
            .post_json(
                "/v1/clients",
                serde_json::json!({"name": format!("QLVB {label}"), "role": "client"}),
            )
            .await;
        assert_eq!(status, 201, "client: {client}");
        let client_id = client["client"]["id"].as_i64().expect("client id");
        let response = self
            .http
            .put(self.url(&format!("/v1/clients/{client_id}/grants/{label}")))
            .bearer_auth(&self.admin_key)
            .send()
            .await
            .expect("PUT grant");
        assert_eq!(response.status().as_u16(), 200, "grant");
        (
            client["api_key"].as_str().expect("api_key").to_owned(),
            enrolled,
        )
    }

    /// Writes root + issuing CA as one PEM file (an openssl `-CAfile`) in `dir`.
    pub async fn write_chain_pem(&self, dir: &Path) -> PathBuf {
        let (root, issuing) = self.write_ca_pems(dir).await;
        let chain = dir.join("chain.pem");
        let pems = [
            std::fs::read_to_string(&root).expect("root PEM"),
            std::fs::read_to_string(&issuing).expect("issuing PEM"),
        ];
        std::fs::write(&chain, pems.concat()).expect("write chain");
        chain
    }

    /// Writes the root and issuing CA certificates, fetched over HTTP, as PEM files in `dir`:
    /// returns (root.pem, issuing.pem).
    pub async fn write_ca_pems(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let mut paths = Vec::new();
        for ca in ["kyso-root", "kyso-issuing"] {
            let (status, der) = self.get_bytes(&format!("/ca/{ca}.crt")).await;
            assert_eq!(status, 200, "GET /ca/{ca}.crt");
            let path = dir.join(format!("{ca}.pem"));
            std::fs::write(&path, der_to_pem("CERTIFICATE", &der)).expect("write CA PEM");
            paths.push(path);
        }
        (paths[0].clone(), paths[1].clone())
    }

    /// Stops serving and waits for in-flight requests.
    pub async fn stop(mut self) {
        self.stop_inner().await;
    }

    async fn stop_inner(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// PEM armour for DER bytes.
pub fn der_to_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// Runs `openssl` with `args`; returns its output whatever the exit status.
pub fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (is it installed?)")
}

/// Runs `openssl` in a blocking thread (for commands that call back into the server under test).
pub async fn openssl_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new("openssl")
            .args(&args)
            .output()
            .expect("run openssl (is it installed?)")
    })
    .await
    .expect("openssl thread")
}

/// Runs `pkcs11-tool` (opensc) logged in to the SoftHSM token `token_label` with the test user PIN,
/// in a blocking thread; returns its output whatever the exit status.
pub async fn pkcs11_tool(token_label: &str, args: &[&str]) -> Output {
    let module = kyso_hsm::testing::softhsm_module_path();
    let mut command = Command::new("pkcs11-tool");
    command
        .arg("--module")
        .arg(module)
        .args(["--token-label", token_label, "--login", "--pin"])
        .arg(kyso_hsm::testing::USER_PIN)
        .args(args);
    tokio::task::spawn_blocking(move || {
        command
            .output()
            .expect("run pkcs11-tool (is opensc installed?)")
    })
    .await
    .expect("pkcs11-tool thread")
}

/// `openssl crl` on DER bytes, checked against `ca_pem`, with extra arguments; returns the output.
pub fn openssl_crl(dir: &Path, der: &[u8], ca_pem: &Path, extra: &[&str]) -> Output {
    let path = dir.join("crl.der");
    std::fs::write(&path, der).expect("write CRL");
    let mut args = vec![
        "crl",
        "-in",
        path.to_str().unwrap_or_default(),
        "-inform",
        "DER",
    ];
    args.extend(["-CAfile", ca_pem.to_str().unwrap_or_default(), "-noout"]);
    args.extend(extra);
    openssl(&args)
}

/// Both output streams as text, for assertions and failure messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
