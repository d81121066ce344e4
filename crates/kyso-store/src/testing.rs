//! Test support (feature `testing`): a throwaway PostgreSQL cluster.
//!
//! [`PgCluster::start`] runs `initdb` in a temporary directory and `pg_ctl start` on a free loopback
//! port, with the unix socket in that directory too; dropping it stops the server and removes the
//! directory. PostgreSQL refuses to run as root, so when the effective user is root the binaries run
//! as the `postgres` system user (through `runuser`) and the directory is handed to that user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Set to `1` to skip PostgreSQL tests when the binaries are not installed.
pub const SKIP_ENV: &str = "KYSO_SKIP_POSTGRES";
const SUPERUSER: &str = "kyso";
const SYSTEM_USER: &str = "postgres";

/// A running throwaway PostgreSQL server.
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_root: bool,
    running: bool,
    url: String,
}

impl PgCluster {
    /// Starts a cluster with one database, `kyso_test`. Errors name what is missing or what failed.
    pub fn start() -> Result<PgCluster, String> {
        let bin = find_bin_dir().ok_or_else(|| {
            "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or PATH; \
             install the `postgresql` package, or set KYSO_SKIP_POSTGRES=1 to skip these tests"
                .to_owned()
        })?;
        let as_root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("kyso-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        if as_root {
            run(
                Command::new("chown")
                    .arg("-R")
                    .arg(format!("{SYSTEM_USER}:"))
                    .arg(dir.path()),
                "chown",
            )?;
        }
        let data = dir.path().join("data");
        let mut cluster = PgCluster {
            dir,
            bin,
            port: 0,
            as_root,
            running: false,
            url: String::new(),
        };
        run(
            cluster.pg_command("initdb").arg("-D").arg(&data).args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
                "--no-instructions",
            ]),
            "initdb",
        )?;
        // The free port may be taken between probing and binding: retry with another one.
        let mut last_error = String::new();
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.pg_ctl_start(&data) {
                Ok(()) => {
                    cluster.running = true;
                    break;
                }
                Err(e) => last_error = e,
            }
        }
        if !cluster.running {
            return Err(last_error);
        }
        cluster.url = cluster.create_database("kyso_test")?;
        Ok(cluster)
    }

    /// URL of the database created at start.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates another database and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad database name {name:?}"));
        }
        run(
            self.pg_command("createdb").args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                name,
            ]),
            "createdb",
        )?;
        Ok(format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{name}",
            self.port
        ))
    }

    fn pg_ctl_start(&self, data: &Path) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off \
             -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        run(
            self.pg_command("pg_ctl")
                .arg("-D")
                .arg(data)
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]),
            "pg_ctl start",
        )
        .map(drop)
        .map_err(|e| format!("{e}\nserver log:\n{}", self.server_log()))
    }

    fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn pg_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", SYSTEM_USER, "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let data = self.dir.path().join("data");
        // Immediate mode: tests leave connections open; nothing in a throwaway cluster needs saving.
        let _ = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}

/// Starts a cluster for a test, or returns `None` (after printing why) when `KYSO_SKIP_POSTGRES=1`.
///
/// # Panics
/// When the cluster cannot start and skipping was not asked for: a missing PostgreSQL must fail the
/// test suite loudly, not pass it silently.
pub fn postgres_or_skip() -> Option<PgCluster> {
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        eprintln!("PostgreSQL test skipped: {SKIP_ENV}=1");
        return None;
    }
    match PgCluster::start() {
        Ok(cluster) => Some(cluster),
        Err(e) => panic!("cannot start a throwaway PostgreSQL cluster: {e}"),
    }
}

fn find_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    // Newest major version first (directory names are version numbers).
    versions.sort_by_key(|bin| {
        std::cmp::Reverse(
            bin.parent()
                .and_then(Path::file_name)
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u32>().ok()),
        )
    });
    if let Some(bin) = versions.into_iter().next() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").is_file() && p.join("pg_ctl").is_file())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn run(cmd: &mut Command, what: &str) -> Result<Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}
