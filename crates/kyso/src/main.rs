//! `kyso`: the command line of the kyso signing and PKI service.
//!
//! Every command reads one TOML configuration file (`--config`, or `KYSO_CONFIG`) plus `KYSO_*`
//! environment overrides; `kyso config example` prints a documented file to start from.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kyso_clock::SystemClock;
use kyso_server::config::Config;

/// mimalloc rather than the system allocator: a signing request makes many small, short-lived
/// allocations (JSON, DER, base64) across the runtime's threads, where glibc's malloc spent
/// about a sixth of the server's CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "kyso",
    version,
    about = "kyso (ký số): HSM-backed signing and PKI service"
)]
struct Cli {
    /// Configuration file (TOML); KYSO_* environment variables override it.
    #[arg(short, long, global = true, env = "KYSO_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates the CA, TSA and OCSP-signer keys on the token, their certificates, the database and
    /// the first admin API key. Safe to run again: it only adds what is missing.
    Init,
    /// Runs the HTTP service.
    Serve,
    /// PKCS#11 diagnostics.
    Hsm {
        #[command(subcommand)]
        command: HsmCommand,
    },
    /// The hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Verifies a CMS/CAdES signature as `POST /v1/verify` does: prints the ETSI EN 319 102-1
    /// verdict, stores the report with its signed receipt (exit status 0 passed, 2 failed,
    /// 3 indeterminate).
    Verify {
        /// The signature (DER, BER or PEM).
        signature: PathBuf,
        /// The detached content.
        #[arg(long)]
        content: Option<PathBuf>,
        /// Print the whole statement (report included) as JSON.
        #[arg(long)]
        json: bool,
        /// Write `<id>.json` (the statement as signed) and `<id>.p7s` (the receipt) here.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Checks a verification receipt offline: a valid signature over exactly the statement, by
    /// the validation service, under the given root (exit status 0 valid, 2 not).
    VerifyReceipt {
        /// The statement as signed (`<id>.json`, or `statement_json` from the API).
        #[arg(long)]
        statement: PathBuf,
        /// The receipt (`<id>.p7s`, DER).
        #[arg(long)]
        receipt: PathBuf,
        /// The deployment's root CA certificate (PEM or DER), e.g. from `GET /ca/kyso-root.crt`.
        #[arg(long)]
        root: PathBuf,
        /// The validation service's certificate common name.
        #[arg(long, default_value = "kyso Validation Service")]
        signer: String,
    },
    /// Whether the kernel reports the system clock synchronised, as the TSA's clock check reads
    /// it (exit status 0 when synchronised within `tsa.max_clock_error_millis`, 2 otherwise).
    Clock,
    /// Signs documents with a key on the signing token (the same checks and audit record as
    /// `POST /v1/sign/cms`).
    Sign {
        #[command(subcommand)]
        command: SignCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SignCommand {
    /// CMS/CAdES: writes `<file>.p7s` (DER) beside each input, or `--out` for a single input.
    Cms {
        /// The signing key's label on the signing token.
        #[arg(long)]
        key: String,
        /// B-B, B-T (with a signature timestamp) or B-LT (with the chain and CRLs too).
        #[arg(long, default_value = "B-B")]
        level: String,
        /// Leave the content out of the signature.
        #[arg(long)]
        detached: bool,
        /// Where to write the signature (one input only).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The documents to sign.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum HsmCommand {
    /// Lists the module, slots, tokens, mechanisms and keys, and test-signs with a chosen key: the
    /// command a key officer runs when something does not work.
    Doctor {
        /// PKCS#11 module to load instead of the configured one.
        #[arg(long)]
        module: Option<PathBuf>,
        /// Token label to inspect instead of the configured one.
        #[arg(long)]
        token: Option<String>,
        /// Label of a key on the token to test-sign with.
        #[arg(long)]
        key: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Checks the whole chain and reports the first broken record (exit status 2 when broken).
    Verify,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Prints a configuration file with every setting at its default, documented.
    Example,
    /// Prints the effective configuration (file plus environment), as TOML.
    Show,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail("runtime", &format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    if let Command::Config {
        command: ConfigCommand::Example,
    } = cli.command
    {
        print!("{}", Config::example_toml());
        return ExitCode::SUCCESS;
    }
    // Offline: needs no configuration, database or token.
    if let Command::VerifyReceipt {
        statement,
        receipt,
        root,
        signer,
    } = &cli.command
    {
        return verify_receipt(statement, receipt, root, signer).await;
    }
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => return fail(e.code(), &e.to_string()),
    };
    let clock = SystemClock::shared();
    match cli.command {
        Command::Config {
            command: ConfigCommand::Example,
        } => ExitCode::SUCCESS,
        Command::Config {
            command: ConfigCommand::Show,
        } => match toml::to_string_pretty(&config) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail("config_show", &e.to_string()),
        },
        Command::Init => match kyso_server::init::init(&config, clock).await {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e.code(), &e.to_string()),
        },
        Command::Serve => match kyso_server::app::serve(config, clock).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e.code(), &e.to_string()),
        },
        Command::Hsm {
            command:
                HsmCommand::Doctor {
                    module,
                    token,
                    key,
                    json,
                },
        } => {
            if let Some(module) = module {
                config.hsm.module = module;
            }
            if let Some(token) = token {
                config.hsm.token_label = token;
            }
            hsm_doctor(&config, key.as_deref(), json).await
        }
        Command::VerifyReceipt { .. } => ExitCode::SUCCESS,
        Command::Clock => clock_status(&config),
        Command::Verify {
            signature,
            content,
            json,
            out_dir,
        } => verify(config, clock, &signature, content.as_deref(), json, out_dir).await,
        Command::Sign {
            command:
                SignCommand::Cms {
                    key,
                    level,
                    detached,
                    out,
                    files,
                },
        } => sign_cms(config, clock, &key, &level, detached, out, &files).await,
        Command::Audit {
            command: AuditCommand::Verify,
        } => match kyso_server::tools::verify_audit(&config, clock).await {
            Ok(report) => {
                println!("{report}");
                if report.is_intact() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                }
            }
            Err(e) => fail(e.code(), &e.to_string()),
        },
    }
}

/// `kyso hsm doctor`: prints the report; exit status 2 when a step failed.
async fn hsm_doctor(config: &Config, key: Option<&str>, json: bool) -> ExitCode {
    let report = match kyso_server::tools::hsm_doctor(config, key).await {
        Ok(report) => report,
        Err(e) => return fail(e.code(), &e.to_string()),
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => return fail("json", &e.to_string()),
        }
    } else {
        print!("{report}");
    }
    if report.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// `kyso sign cms`: signs each file; exit status 1 when any document failed.
async fn sign_cms(
    config: Config,
    clock: kyso_clock::SharedClock,
    key: &str,
    level: &str,
    detached: bool,
    out: Option<PathBuf>,
    files: &[PathBuf],
) -> ExitCode {
    use kyso_server::signing::{Document, Packaging};
    let level: kyso_cades::Level = match serde_json::from_value(serde_json::json!(level)) {
        Ok(level) => level,
        Err(_) => return fail("level_unknown", "--level must be B-B, B-T or B-LT"),
    };
    if out.is_some() && files.len() != 1 {
        return fail("out_needs_one_file", "--out takes a single input file");
    }
    let mut documents = Vec::with_capacity(files.len());
    for file in files {
        match std::fs::read(file) {
            Ok(bytes) => documents.push((
                Some(file.display().to_string()),
                Ok(if detached {
                    Document::Detached(bytes)
                } else {
                    Document::Attached(bytes)
                }),
            )),
            Err(e) => return fail("io", &format!("cannot read {}: {e}", file.display())),
        }
    }
    let state = match kyso_server::app::load_state(config, clock).await {
        Ok(state) => state,
        Err(e) => return fail(e.code(), &e.to_string()),
    };
    let packaging = if detached {
        Packaging::Detached
    } else {
        Packaging::Attached
    };
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let outcome = match kyso_server::signing::sign_documents(
        &state, &actor, key, level, packaging, documents,
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(e) => return fail(e.code(), &e.messages().1),
    };
    let mut failed = false;
    for (file, document) in files.iter().zip(outcome.results) {
        match document.result {
            Ok(kyso_server::signing::Signed {
                cms,
                document_sha256: sha256,
            }) => {
                let target = out.clone().unwrap_or_else(|| {
                    let mut name = file.as_os_str().to_owned();
                    name.push(".p7s");
                    PathBuf::from(name)
                });
                if let Err(e) = std::fs::write(&target, cms) {
                    failed = true;
                    eprintln!("kyso: error [io]: cannot write {}: {e}", target.display());
                    continue;
                }
                println!(
                    "signed {} ({level}, sha256 {sha256}) -> {}",
                    file.display(),
                    target.display()
                );
            }
            Err(e) => {
                failed = true;
                eprintln!(
                    "kyso: error [{}]: {}: {}",
                    e.code(),
                    file.display(),
                    e.messages().1
                );
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `kyso clock`.
fn clock_status(config: &Config) -> ExitCode {
    let status = kyso_clock::system_sync_status();
    let max_us = config.tsa.max_clock_error_millis.saturating_mul(1000);
    let trusted = match status {
        kyso_clock::SyncStatus::Synchronised {
            max_error_us,
            est_error_us,
        } => {
            println!(
                "synchronised: maximum error {max_error_us} µs, estimated error {est_error_us} µs \
                 (the TSA accepts up to {max_us} µs)"
            );
            max_error_us <= max_us
        }
        kyso_clock::SyncStatus::Unsynchronised => {
            println!(
                "not synchronised: the kernel reports the clock unsynchronised (no NTP/PTP discipline)"
            );
            false
        }
        kyso_clock::SyncStatus::Unknown => {
            println!("unknown: this platform does not report clock synchronisation");
            false
        }
    };
    if !config.tsa.require_synchronised_clock {
        println!("the TSA's clock check is off (tsa.require_synchronised_clock = false)");
    }
    if trusted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// `kyso verify`.
async fn verify(
    config: Config,
    clock: kyso_clock::SharedClock,
    signature: &std::path::Path,
    content: Option<&std::path::Path>,
    json: bool,
    out_dir: Option<PathBuf>,
) -> ExitCode {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| fail("io", &format!("cannot read {}: {e}", path.display())))
    };
    let signature = match read(signature) {
        Ok(bytes) => pem_or_der(bytes),
        Err(code) => return code,
    };
    let content = match content.map(read).transpose() {
        Ok(content) => content,
        Err(code) => return code,
    };
    let input = kyso_server::verification::VerifyInput {
        signature,
        content,
        ..Default::default()
    };
    let state = match kyso_server::app::load_state(config, clock).await {
        Ok(state) => state,
        Err(e) => return fail(e.code(), &e.to_string()),
    };
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let stored =
        match kyso_server::verification::verify_and_record(&state, &actor, None, input).await {
            Ok(stored) => stored,
            Err(e) => return fail(e.code(), &e.messages().1),
        };
    let report = &stored.statement.report;
    if json {
        println!("{}", stored.record.report_json);
    } else {
        println!(
            "{} / {}: {}{}",
            report.message.vi,
            report.message.en,
            report.indication.as_str(),
            report
                .sub_indication
                .map(|s| format!(" ({})", s.as_str()))
                .unwrap_or_default()
        );
        for signature in &report.signatures {
            let name = signature
                .signer
                .as_ref()
                .and_then(|n| n.common_name.clone())
                .unwrap_or_else(|| "?".to_owned());
            println!(
                "  chữ ký {} / signature {}: {} — {} — {} ({:?}) — {}",
                signature.index,
                signature.index,
                signature.indication.as_str(),
                name,
                signature.best_signature_time,
                signature.time_source,
                signature.message.vi
            );
        }
        println!("verification id: {}", stored.record.id);
    }
    if let Some(dir) = out_dir {
        let id = &stored.record.id;
        let statement = dir.join(format!("{id}.json"));
        let receipt = dir.join(format!("{id}.p7s"));
        if let Err(e) = std::fs::write(&statement, stored.record.report_json.as_bytes())
            .and_then(|()| std::fs::write(&receipt, &stored.record.receipt_der))
        {
            return fail("io", &format!("cannot write into {}: {e}", dir.display()));
        }
        eprintln!(
            "statement: {}, receipt: {}",
            statement.display(),
            receipt.display()
        );
    }
    match report.indication {
        kyso_validate::Indication::TotalPassed => ExitCode::SUCCESS,
        kyso_validate::Indication::TotalFailed => ExitCode::from(2),
        kyso_validate::Indication::Indeterminate => ExitCode::from(3),
    }
}

/// `kyso verify-receipt`.
async fn verify_receipt(
    statement: &std::path::Path,
    receipt: &std::path::Path,
    root: &std::path::Path,
    signer: &str,
) -> ExitCode {
    let mut files = Vec::new();
    for path in [statement, receipt, root] {
        match std::fs::read(path) {
            Ok(bytes) => files.push(bytes),
            Err(e) => return fail("io", &format!("cannot read {}: {e}", path.display())),
        }
    }
    let root_der = pem_or_der(files.pop().unwrap_or_default());
    let receipt_der = pem_or_der(files.pop().unwrap_or_default());
    let statement_json = files.pop().unwrap_or_default();
    let now = kyso_clock::Clock::now_utc(&kyso_clock::SystemClock);
    let check = match kyso_server::verification::check_receipt(
        &statement_json,
        &receipt_der,
        &root_der,
        signer,
        now,
    )
    .await
    {
        Ok(check) => check,
        Err(e) => return fail(e.code(), &e.messages().1),
    };
    let receipt_report = &check.receipt;
    let when = receipt_report
        .signatures
        .first()
        .map(|s| s.best_signature_time.to_string())
        .unwrap_or_default();
    println!(
        "receipt: {}{} — signed by {} at {when}",
        receipt_report.indication.as_str(),
        receipt_report
            .sub_indication
            .map(|s| format!(" ({})", s.as_str()))
            .unwrap_or_default(),
        check.signer_common_name().unwrap_or("?"),
    );
    println!(
        "statement {}: {} verified {} — {}",
        check.statement.id,
        check.statement.service,
        check.statement.report.validation_time,
        check.statement.report.indication.as_str()
    );
    if check.passed() {
        println!("Biên nhận hợp lệ / The receipt is valid.");
        ExitCode::SUCCESS
    } else {
        if !check.signer_expected {
            eprintln!("kyso: the receipt is not signed by {signer:?}");
        }
        println!("Biên nhận không hợp lệ / The receipt is NOT valid.");
        ExitCode::from(2)
    }
}

/// PEM files become their DER contents; anything else is taken as DER.
fn pem_or_der(bytes: Vec<u8>) -> Vec<u8> {
    if bytes.starts_with(b"-----BEGIN")
        && let Ok((_, der)) = der::pem::decode_vec(&bytes)
    {
        return der;
    }
    bytes
}

fn fail(code: &str, message: &str) -> ExitCode {
    eprintln!("kyso: error [{code}]: {message}");
    ExitCode::FAILURE
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KYSO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr so that command output (reports, JSON) stays clean on stdout.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
