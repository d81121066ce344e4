//! `kyso`: the command line of the kyso signing and PKI service.
//!
//! Every command reads one TOML configuration file (`--config`, or `KYSO_CONFIG`) plus `KYSO_*`
//! environment overrides; `kyso config example` prints a documented file to start from.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kyso_clock::SystemClock;
use kyso_server::config::Config;

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
