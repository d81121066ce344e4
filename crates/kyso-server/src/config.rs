//! Server configuration: one TOML file, then `KYSO_*` environment variables on top.
//!
//! Every field has a default, so an empty file (or no file) gives a working demo setup on
//! `127.0.0.1:8080` with SQLite under `./kyso-data` and SoftHSM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use kyso_hsm::{KeyAlgorithm, Pin};
use serde::{Deserialize, Serialize};

/// Where the CA token's user PIN comes from. The PIN itself is never in the configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PinSource {
    /// An environment variable holding the PIN (default `KYSO_HSM_PIN`).
    Env(String),
    /// A file holding the PIN (a trailing newline is ignored).
    File(PathBuf),
}

impl Default for PinSource {
    fn default() -> Self {
        PinSource::Env("KYSO_HSM_PIN".to_owned())
    }
}

impl PinSource {
    /// Reads the PIN from its source.
    pub fn read(&self) -> Result<Pin, kyso_hsm::HsmError> {
        match self {
            PinSource::Env(var) => Pin::from_env(var),
            PinSource::File(path) => Pin::from_file(path),
        }
    }

    /// Where the PIN comes from, for messages (never the PIN).
    pub fn describe(&self) -> String {
        match self {
            PinSource::Env(var) => format!("environment variable {var}"),
            PinSource::File(path) => format!("file {}", path.display()),
        }
    }
}

/// The PKCS#11 module and the token that holds the CA keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HsmConfig {
    /// Path of the PKCS#11 module (`KYSO_PKCS11_MODULE`).
    pub module: PathBuf,
    /// Label of the token holding the CA, TSA and OCSP-signer keys (`KYSO_HSM_TOKEN`).
    pub token_label: String,
    /// Where the token's user PIN comes from (`KYSO_HSM_PIN` / `KYSO_HSM_PIN_FILE`).
    pub pin: PinSource,
    /// Sessions kept open on the CA token.
    pub session_pool: usize,
}

impl Default for HsmConfig {
    fn default() -> Self {
        Self {
            module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
            token_label: "kyso-ca".to_owned(),
            pin: PinSource::default(),
            session_pool: 8,
        }
    }
}

/// One key on the CA token: its label and algorithm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    pub label: String,
    pub algorithm: KeyAlgorithm,
}

impl KeySpec {
    fn new(label: &str, algorithm: KeyAlgorithm) -> Self {
        Self {
            label: label.to_owned(),
            algorithm,
        }
    }
}

/// The service's own keys on the CA token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    pub root_ca: KeySpec,
    pub issuing_ca: KeySpec,
    pub tsa: KeySpec,
    pub ocsp: KeySpec,
    /// Signs verification receipts (the validation service's own key).
    pub validation: KeySpec,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            root_ca: KeySpec::new("kyso-root-ca", KeyAlgorithm::EcP384),
            issuing_ca: KeySpec::new("kyso-issuing-ca", KeyAlgorithm::EcP256),
            tsa: KeySpec::new("kyso-tsa", KeyAlgorithm::EcP256),
            ocsp: KeySpec::new("kyso-ocsp", KeyAlgorithm::EcP256),
            validation: KeySpec::new("kyso-validation", KeyAlgorithm::EcP256),
        }
    }
}

/// Names and subjects of the two CAs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaConfig {
    /// Short name of the root CA, used in URLs (`/ca/{name}.crt`, `/crl/{name}.crl`).
    pub root_name: String,
    /// Short name of the issuing CA, used in URLs.
    pub issuing_name: String,
    /// Common name in the root CA certificate.
    pub root_common_name: String,
    /// Common name in the issuing CA certificate.
    pub issuing_common_name: String,
    /// Common name in the TSA certificate.
    pub tsa_common_name: String,
    /// Common name in the OCSP-signer certificate.
    pub ocsp_common_name: String,
    /// Common name in the validation service's certificate (it signs verification receipts).
    pub validation_common_name: String,
    /// Organisation (O) in the service's own certificates.
    pub organization: String,
    /// Province or city (ST) in the service's own certificates, if any.
    pub province: Option<String>,
}

impl Default for CaConfig {
    fn default() -> Self {
        Self {
            root_name: "kyso-root".to_owned(),
            issuing_name: "kyso-issuing".to_owned(),
            root_common_name: "kyso Root CA".to_owned(),
            issuing_common_name: "kyso Issuing CA".to_owned(),
            tsa_common_name: "kyso TSA".to_owned(),
            ocsp_common_name: "kyso OCSP Responder".to_owned(),
            validation_common_name: "kyso Validation Service".to_owned(),
            organization: "kyso".to_owned(),
            province: None,
        }
    }
}

/// Validity periods of the service's own certificates, in days. End-entity certificates take their
/// profile's default (staff signing 730 days, organisation seal 1095) unless a request says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidityConfig {
    pub root_ca_days: u32,
    pub issuing_ca_days: u32,
    pub tsa_days: u32,
    pub ocsp_signer_days: u32,
    pub validation_days: u32,
}

impl Default for ValidityConfig {
    fn default() -> Self {
        Self {
            root_ca_days: 7300,
            issuing_ca_days: 3650,
            tsa_days: 1825,
            ocsp_signer_days: 365,
            validation_days: 1825,
        }
    }
}

/// CRL publication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrlConfig {
    /// How often every CA's CRL is regenerated, in seconds, besides on each revocation.
    pub regenerate_every_secs: u64,
    /// How far after thisUpdate a CRL's nextUpdate lies, in seconds.
    pub next_update_secs: u64,
}

impl Default for CrlConfig {
    fn default() -> Self {
        Self {
            regenerate_every_secs: 3600,
            next_update_secs: 86_400,
        }
    }
}

/// OCSP responses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OcspConfig {
    /// How far after thisUpdate a response's nextUpdate lies, in seconds; pre-signed responses are
    /// reused for nonce-less requests until then.
    pub response_validity_secs: u64,
    /// Upper bound on cached pre-signed responses.
    pub cache_entries: usize,
}

impl Default for OcspConfig {
    fn default() -> Self {
        Self {
            response_validity_secs: 3600,
            cache_entries: 100_000,
        }
    }
}

/// Request size limits, in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest JSON request body (a CSR travels inside one).
    pub max_json_bytes: usize,
    /// Largest OCSP request (POST body, or decoded GET path).
    pub max_ocsp_request_bytes: usize,
    /// Largest page `GET /v1/audit` returns.
    pub max_audit_page: u32,
    /// Largest timestamp query (`POST /tsa`).
    pub max_timestamp_query_bytes: usize,
    /// Largest signing or verification request (`POST /v1/sign/cms`, `POST /v1/verify`): the
    /// documents travel base64-encoded inside it.
    pub max_document_request_bytes: usize,
    /// Most documents in one signing request.
    pub max_batch_documents: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_json_bytes: 256 * 1024,
            max_ocsp_request_bytes: 8 * 1024,
            max_audit_page: 500,
            max_timestamp_query_bytes: 4 * 1024,
            max_document_request_bytes: 32 * 1024 * 1024,
            max_batch_documents: 100,
        }
    }
}

/// The RFC 3161 timestamp authority (`POST /tsa`, and the timestamps of B-T signatures).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TsaSettings {
    /// The policy OID put in tokens when a query names none (`KYSO_TSA_POLICY`). The default lies
    /// under IANA's enterprise number for documentation (32473, RFC 5612): a deployment sets the
    /// OID of its own TSA policy.
    pub policy: String,
    /// Further policy OIDs a query may ask for.
    pub accepted_policies: Vec<String>,
    /// The accuracy stated in tokens, in milliseconds (0: no Accuracy field).
    pub accuracy_millis: u64,
    /// Refuse with timeNotAvailable while the kernel does not report the clock synchronised
    /// within `max_clock_error_millis` (`KYSO_TSA_REQUIRE_SYNCHRONISED_CLOCK`).
    pub require_synchronised_clock: bool,
    /// The largest clock error (the kernel's maxerror) still trusted, in milliseconds.
    pub max_clock_error_millis: u64,
    /// Message-imprint hashes accepted: sha256, sha384, sha512.
    pub hashes: Vec<String>,
    /// Put the TSA's name in TSTInfo.tsa.
    pub include_tsa_name: bool,
    /// An external RFC 3161 TSA to timestamp our signatures with instead of our own (`http(s)://`).
    pub external_url: Option<String>,
}

/// The default TSA policy OID (see [`TsaSettings::policy`]).
pub const DEFAULT_TSA_POLICY: &str = "1.3.6.1.4.1.32473.3161.1";

impl Default for TsaSettings {
    fn default() -> Self {
        Self {
            policy: DEFAULT_TSA_POLICY.to_owned(),
            accepted_policies: Vec::new(),
            accuracy_millis: 1000,
            require_synchronised_clock: true,
            max_clock_error_millis: 1000,
            hashes: vec!["sha256".into(), "sha384".into(), "sha512".into()],
            include_tsa_name: false,
            external_url: None,
        }
    }
}

/// Signing for API clients (`POST /v1/sign/cms`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningSettings {
    /// The token holding the keys API clients sign with (a key is named by its label there and
    /// granted to clients); unset: the CA token. Keys get there by enrolment with `token_label`.
    pub token_label: Option<String>,
    /// Where that token's PIN comes from; unset: the CA token's PIN source.
    pub pin: Option<PinSource>,
    /// How long a loaded key and its certificate are reused before they are read again from the
    /// token, in seconds (a renewal or re-key is picked up after at most this long).
    pub key_cache_secs: u64,
}

impl Default for SigningSettings {
    fn default() -> Self {
        Self {
            token_label: None,
            pin: None,
            key_cache_secs: 60,
        }
    }
}

/// Signature verification (`POST /v1/verify`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationSettings {
    /// Trust-anchor files (DER or PEM, one certificate each), each pinned by its SHA-256
    /// fingerprint (`sha256`, required). The deployment's own root CA is always trusted.
    pub anchor_files: Vec<kyso_validate::AnchorFile>,
    /// Folders of trust anchors; every file in them must be pinned in `pins` (file name ->
    /// SHA-256 fingerprint).
    pub anchor_folders: Vec<kyso_validate::AnchorFolder>,
    /// Vietnam's trust bundles to turn on, compiled into kyso and pinned: `vn-national` (NEAC's
    /// national roots and the public CAs under them) and `vn-government` (the Government
    /// specialised CA, Ban Cơ yếu Chính phủ). SHA-1 roots in them anchor only their own chains.
    pub bundles: Vec<String>,
    /// Folders of further intermediate certificates for path building (no network at validation
    /// time).
    pub intermediate_folders: Vec<PathBuf>,
    /// Require revocation status for the signer's certificate (without it the result is
    /// INDETERMINATE / TRY_LATER).
    pub require_revocation: bool,
    /// Mask identity numbers (CCCD, CMND...) in reports.
    pub mask_identities: bool,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        Self {
            anchor_files: Vec::new(),
            anchor_folders: Vec::new(),
            bundles: Vec::new(),
            intermediate_folders: Vec::new(),
            require_revocation: true,
            mask_identities: true,
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on (`KYSO_LISTEN`).
    pub listen: SocketAddr,
    /// Base URL clients reach the service at, put into certificates as CRL and OCSP locations
    /// (`KYSO_PUBLIC_URL`); no trailing slash.
    pub public_url: String,
    /// Directory for the SQLite database and the first admin key (`KYSO_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Database URL (`KYSO_DATABASE_URL`); unset means a SQLite file `kyso.db` in `data_dir`.
    pub database_url: Option<String>,
    pub hsm: HsmConfig,
    pub keys: KeysConfig,
    pub ca: CaConfig,
    pub validity: ValidityConfig,
    pub crl: CrlConfig,
    pub ocsp: OcspConfig,
    pub limits: LimitsConfig,
    pub tsa: TsaSettings,
    pub signing: SigningSettings,
    pub validation: ValidationSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("kyso-data"),
            database_url: None,
            hsm: HsmConfig::default(),
            keys: KeysConfig::default(),
            ca: CaConfig::default(),
            validity: ValidityConfig::default(),
            crl: CrlConfig::default(),
            ocsp: OcspConfig::default(),
            limits: LimitsConfig::default(),
            tsa: TsaSettings::default(),
            signing: SigningSettings::default(),
            validation: ValidationSettings::default(),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var} has an invalid value {value:?}: {message}")]
    Env {
        var: &'static str,
        value: String,
        message: String,
    },
    #[error("configuration value {field} is invalid: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl ConfigError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config_read",
            ConfigError::Parse { .. } => "config_parse",
            ConfigError::Env { .. } => "config_env",
            ConfigError::Invalid { .. } => "config_invalid",
        }
    }
}

impl Config {
    /// Loads `path` (if given) and applies the process's `KYSO_*` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Config::from_toml_str(&text).map_err(|message| ConfigError::Parse {
                    path: path.to_owned(),
                    message,
                })?
            }
            None => Config::default(),
        };
        config.apply_env(|var| std::env::var(var).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML document; absent fields take their defaults, unknown fields are refused.
    pub fn from_toml_str(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Applies `KYSO_*` overrides, reading variables through `lookup` (the process environment in
    /// [`Config::load`], a map in tests).
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let get = |var: &str| lookup(var).filter(|v| !v.is_empty());
        if let Some(value) = get("KYSO_LISTEN") {
            self.listen =
                value
                    .parse()
                    .map_err(|e: std::net::AddrParseError| ConfigError::Env {
                        var: "KYSO_LISTEN",
                        value,
                        message: e.to_string(),
                    })?;
        }
        if let Some(value) = get("KYSO_PUBLIC_URL") {
            self.public_url = value;
        }
        if let Some(value) = get("KYSO_DATA_DIR") {
            self.data_dir = PathBuf::from(value);
        }
        if let Some(value) = get("KYSO_DATABASE_URL") {
            self.database_url = Some(value);
        }
        if let Some(value) = get("KYSO_PKCS11_MODULE") {
            self.hsm.module = PathBuf::from(value);
        }
        if let Some(value) = get("KYSO_HSM_TOKEN") {
            self.hsm.token_label = value;
        }
        // A PIN file wins over the variable: it is the more deliberate choice.
        if get("KYSO_HSM_PIN").is_some() {
            self.hsm.pin = PinSource::Env("KYSO_HSM_PIN".to_owned());
        }
        if let Some(value) = get("KYSO_HSM_PIN_FILE") {
            self.hsm.pin = PinSource::File(PathBuf::from(value));
        }
        if let Some(value) = get("KYSO_TSA_POLICY") {
            self.tsa.policy = value;
        }
        if let Some(value) = get("KYSO_TSA_REQUIRE_SYNCHRONISED_CLOCK") {
            self.tsa.require_synchronised_clock = match value.as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError::Env {
                        var: "KYSO_TSA_REQUIRE_SYNCHRONISED_CLOCK",
                        value,
                        message: "expected true or false".to_owned(),
                    });
                }
            };
        }
        Ok(())
    }

    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_owned(),
            })
        };
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return invalid("public_url", "must start with http:// or https://");
        }
        if self.public_url.ends_with('/') {
            return invalid("public_url", "must not end with a slash");
        }
        for (field, name) in [
            ("ca.root_name", &self.ca.root_name),
            ("ca.issuing_name", &self.ca.issuing_name),
        ] {
            let url_safe = !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !url_safe {
                return invalid(field, "must be 1-64 characters of a-z, 0-9, '-' or '_'");
            }
        }
        if self.ca.root_name == self.ca.issuing_name {
            return invalid("ca.issuing_name", "must differ from ca.root_name");
        }
        let labels = [
            &self.keys.root_ca.label,
            &self.keys.issuing_ca.label,
            &self.keys.tsa.label,
            &self.keys.ocsp.label,
            &self.keys.validation.label,
        ];
        for (i, label) in labels.iter().enumerate() {
            if label.is_empty() {
                return invalid("keys", "key labels must not be empty");
            }
            if labels[..i].contains(label) {
                return invalid("keys", "the service key labels must differ");
            }
        }
        if self.hsm.session_pool == 0 {
            return invalid("hsm.session_pool", "must be at least 1");
        }
        if self.crl.regenerate_every_secs == 0 || self.crl.next_update_secs == 0 {
            return invalid("crl", "intervals must be positive");
        }
        if self.crl.next_update_secs < self.crl.regenerate_every_secs {
            return invalid(
                "crl.next_update_secs",
                "must be at least crl.regenerate_every_secs, or CRLs expire before the next one",
            );
        }
        if self.ocsp.response_validity_secs == 0 {
            return invalid("ocsp.response_validity_secs", "must be positive");
        }
        let v = &self.validity;
        if [
            v.root_ca_days,
            v.issuing_ca_days,
            v.tsa_days,
            v.ocsp_signer_days,
            v.validation_days,
        ]
        .contains(&0)
        {
            return invalid("validity", "periods must be at least one day");
        }
        // A certificate may not outlive its issuer.
        if v.issuing_ca_days > v.root_ca_days
            || v.tsa_days > v.issuing_ca_days
            || v.ocsp_signer_days > v.issuing_ca_days
            || v.validation_days > v.issuing_ca_days
        {
            return invalid(
                "validity",
                "the issuing CA may not outlive the root, nor the TSA or OCSP signer the issuing CA",
            );
        }
        if self.limits.max_json_bytes < 1024 || self.limits.max_ocsp_request_bytes < 64 {
            return invalid("limits", "limits are too small to carry a request");
        }
        if self.limits.max_audit_page == 0 {
            return invalid("limits.max_audit_page", "must be at least 1");
        }
        if self.limits.max_timestamp_query_bytes < 64
            || self.limits.max_document_request_bytes < 1024
            || self.limits.max_batch_documents == 0
        {
            return invalid("limits", "limits are too small to carry a request");
        }
        for (field, oid) in std::iter::once(("tsa.policy", &self.tsa.policy)).chain(
            self.tsa
                .accepted_policies
                .iter()
                .map(|p| ("tsa.accepted_policies", p)),
        ) {
            if der::asn1::ObjectIdentifier::new(oid).is_err() {
                return invalid(field, "must be a dotted object identifier");
            }
        }
        if self.tsa.hashes.is_empty()
            || self
                .tsa
                .hashes
                .iter()
                .any(|h| !matches!(h.as_str(), "sha256" | "sha384" | "sha512"))
        {
            return invalid(
                "tsa.hashes",
                "must be a non-empty subset of sha256, sha384, sha512",
            );
        }
        if let Some(url) = &self.tsa.external_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid("tsa.external_url", "must start with http:// or https://");
        }
        if self
            .validation
            .anchor_files
            .iter()
            .any(|a| a.sha256.is_none())
        {
            return invalid(
                "validation.anchor_files",
                "every trust-anchor file needs the sha256 fingerprint of its certificate",
            );
        }
        if let Some(unknown) = self
            .validation
            .bundles
            .iter()
            .find(|b| kyso_validate::bundles::bundle(b).is_none())
        {
            return Err(ConfigError::Invalid {
                field: "validation.bundles",
                message: format!("unknown bundle {unknown:?}; known: vn-national, vn-government"),
            });
        }
        Ok(())
    }

    /// The database URL in force: the configured one, or a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("kyso.db").display()
            ),
        }
    }

    /// Where `kyso init` writes the first admin API key.
    pub fn admin_key_path(&self) -> PathBuf {
        self.data_dir.join("admin.key")
    }

    /// A commented example file with every default, for the documentation and `kyso init`.
    pub fn example_toml() -> String {
        let defaults = Config::default();
        let body = toml::to_string_pretty(&defaults).unwrap_or_default();
        format!(
            "# kyso configuration. Every value below is the default; delete what you do not change.\n\
             # Environment variables override the file: KYSO_LISTEN, KYSO_PUBLIC_URL, KYSO_DATA_DIR,\n\
             # KYSO_DATABASE_URL, KYSO_PKCS11_MODULE, KYSO_HSM_TOKEN, KYSO_HSM_PIN (the PIN itself),\n\
             # KYSO_HSM_PIN_FILE (a file holding the PIN), KYSO_TSA_POLICY,\n\
             # KYSO_TSA_REQUIRE_SYNCHRONISED_CLOCK (true/false).\n\
             # database_url: unset means sqlite://<data_dir>/kyso.db; PostgreSQL: postgres://user@host/db\n\
             # Key algorithms: p256, p384, rsa2048, rsa3072, rsa4096.\n\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let config = Config::from_toml_str("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.public_url, "http://127.0.0.1:8080");
        assert_eq!(config.hsm.token_label, "kyso-ca");
        assert_eq!(config.keys.root_ca.label, "kyso-root-ca");
        assert_eq!(config.keys.root_ca.algorithm, KeyAlgorithm::EcP384);
        assert_eq!(config.keys.issuing_ca.algorithm, KeyAlgorithm::EcP256);
        assert_eq!(config.ca.root_name, "kyso-root");
        assert_eq!(config.ca.issuing_name, "kyso-issuing");
        assert!(
            config
                .database_url()
                .starts_with("sqlite://kyso-data/kyso.db")
        );
        config.validate().unwrap();
    }

    #[test]
    fn example_toml_parses_back_to_the_defaults() {
        let example = Config::example_toml();
        assert!(example.contains("KYSO_HSM_PIN_FILE"));
        assert_eq!(Config::from_toml_str(&example).unwrap(), Config::default());
    }

    #[test]
    fn file_values_and_unknown_fields() {
        let config = Config::from_toml_str(
            "listen = \"0.0.0.0:9000\"\n[keys.root_ca]\nlabel = \"r\"\nalgorithm = \"rsa4096\"\n",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.keys.root_ca.algorithm, KeyAlgorithm::Rsa4096);
        assert_eq!(config.keys.issuing_ca, KeysConfig::default().issuing_ca);
        assert!(Config::from_toml_str("lisen = \"0.0.0.0:9000\"").is_err());
        assert!(Config::from_toml_str("[keys.tsa]\nlabel=\"t\"\nalgorithm=\"p521\"").is_err());
    }

    #[test]
    fn environment_overrides_the_file() {
        let env: HashMap<&str, &str> = [
            ("KYSO_LISTEN", "127.0.0.1:0"),
            ("KYSO_PUBLIC_URL", "https://ca.example.vn"),
            ("KYSO_DATA_DIR", "/var/lib/kyso"),
            ("KYSO_PKCS11_MODULE", "/opt/hsm/lib.so"),
            ("KYSO_HSM_TOKEN", "prod-ca"),
            ("KYSO_HSM_PIN_FILE", "/run/secrets/pin"),
        ]
        .into();
        let mut config = Config::from_toml_str("public_url = \"http://x\"").unwrap();
        config
            .apply_env(|v| env.get(v).map(|s| (*s).to_owned()))
            .unwrap();
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.public_url, "https://ca.example.vn");
        assert_eq!(config.hsm.module, PathBuf::from("/opt/hsm/lib.so"));
        assert_eq!(config.hsm.token_label, "prod-ca");
        assert_eq!(config.hsm.pin, PinSource::File("/run/secrets/pin".into()));
        assert!(
            config
                .database_url()
                .starts_with("sqlite:///var/lib/kyso/kyso.db")
        );

        let mut bad = Config::default();
        let err = bad
            .apply_env(|v| (v == "KYSO_LISTEN").then(|| "nope".to_owned()))
            .unwrap_err();
        assert_eq!(err.code(), "config_env");
    }

    #[test]
    fn validation_refuses_inconsistent_values() {
        let mut config = Config {
            public_url: "ftp://x".into(),
            ..Config::default()
        };
        assert_eq!(config.validate().unwrap_err().code(), "config_invalid");
        config.public_url = "http://x/".into();
        assert!(config.validate().is_err());
        config.public_url = "http://x".into();
        config.ca.root_name = "../etc".into();
        assert!(config.validate().is_err());
        config.ca.root_name = "kyso-root".into();
        config.keys.tsa.label = config.keys.ocsp.label.clone();
        assert!(config.validate().is_err());
        config.keys.tsa.label = "kyso-tsa".into();
        config.validate().unwrap();
        config.validation.bundles = vec!["vn-national".into(), "vn-government".into()];
        config.validate().unwrap();
        config.validation.bundles = vec!["vn-test".into()];
        assert_eq!(config.validate().unwrap_err().code(), "config_invalid");
        config.validation.bundles.clear();
        config.tsa.policy = "not an oid".into();
        assert!(config.validate().is_err());
        config.tsa.policy = DEFAULT_TSA_POLICY.into();
        config.tsa.hashes = vec!["sha1".into()];
        assert!(config.validate().is_err());
    }
}
