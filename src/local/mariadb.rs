//! A private, throwaway MariaDB server, started from the binaries on this machine.
//!
//! Tests, the demo and `seckill migrate` without a URL need a server without asking the user for one. This
//! module makes one in a temporary folder: `mariadb-install-db` lays out a data directory, `mariadbd` serves it
//! on a free loopback port, and a small guardian process removes both when this process exits, however it
//! exits (even on SIGKILL): the guardian reads a pipe that only this process holds, and the kernel closes the
//! pipe when the process dies. The server keeps InnoDB's durable defaults, so what is measured on it is what
//! a real server does.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::LocalServerError;
use super::scratch::{ScratchDir, Supervised, failed, find_binary, free_port, last_lines, read_from};

/// A running private server; removed when the process exits.
#[derive(Debug)]
pub struct LocalMariaDb {
    dir: ScratchDir,
    port: u16,
    server_binary: std::path::PathBuf,
    /// Server options given at start, after the defaults (so they override them), at every launch.
    extra_options: Vec<String>,
    /// The server, while it runs.
    process: Supervised,
}

static SHARED: OnceLock<Result<LocalMariaDb, String>> = OnceLock::new();

impl LocalMariaDb {
    /// The server shared by everything in this process, started on first use.
    ///
    /// # Errors
    /// [`LocalServerError`] as a message (the same one to every caller) when it could not be started.
    pub fn shared() -> Result<&'static LocalMariaDb, String> {
        SHARED.get_or_init(|| LocalMariaDb::start().map_err(|e| e.to_string())).as_ref().map_err(Clone::clone)
    }

    /// Starts a new private server.
    ///
    /// # Errors
    /// [`LocalServerError::NotInstalled`] when the binaries are missing, [`LocalServerError::StartFailed`]
    /// with the server's log when it does not come up.
    pub fn start() -> Result<LocalMariaDb, LocalServerError> {
        Self::start_with_options(Vec::new())
    }

    /// Starts a new private server with `options` added to its command line after the defaults, so they
    /// override them (`--server-id=2`, `--log-bin=binlog`, `--innodb-buffer-pool-size=64M`, ...). Relative paths
    /// in options are under the server's data directory. They apply again at every [`Self::restart`].
    ///
    /// # Errors
    /// As [`Self::start`].
    pub fn start_with_options(options: Vec<String>) -> Result<LocalMariaDb, LocalServerError> {
        let server_binary = find_binary(&["mariadbd", "mysqld"]).ok_or(LocalServerError::NotInstalled)?;
        let install_db =
            find_binary(&["mariadb-install-db", "mysql_install_db"]).ok_or(LocalServerError::NotInstalled)?;
        let dir = ScratchDir::create("mariadb")?;
        let data = dir.join("data");
        // A temporary folder of its own: a starting server deletes every `#sql*` file in its tmpdir, so servers
        // sharing /tmp (ours started at once, or any other on the machine) would delete each other's temporary
        // tables.
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp).map_err(failed("creating its temporary folder"))?;
        let mut install = Command::new(&install_db);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db");
        if running_as_root() {
            install.arg("--user=root");
        }
        let output = install.output().map_err(failed("running mariadb-install-db"))?;
        if !output.status.success() {
            return Err(LocalServerError::StartFailed {
                step: "mariadb-install-db",
                detail: last_lines(&String::from_utf8_lossy(&output.stderr), 5),
            });
        }
        let port = free_port()?;
        let pid_file = dir.join("mariadbd.pid");
        let server = LocalMariaDb {
            dir,
            port,
            server_binary,
            extra_options: options,
            // The server writes this file itself; supervised, it is also removed once the server is killed, so that
            // the guardian never signals a dead server's pid, which the system may have handed to another process.
            process: Supervised::new("mariadbd", Some(pid_file)),
        };
        server.launch()?;
        Ok(server)
    }

    /// The URL of the server's root account, with no database selected.
    pub fn root_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/", self.port)
    }

    /// The TCP port it listens on (loopback only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server process's id while it runs; `None` after [`Self::kill`] until it is started again.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Kills the server at once with SIGKILL, as a crash would. Committed data survives; see [`Self::restart`].
    ///
    /// # Errors
    /// When the process could not be signalled.
    pub fn kill(&self) -> std::io::Result<()> {
        self.process.kill()
    }

    /// Starts the server again on the same data and port, e.g. after [`Self::kill`], and waits until it is ready.
    ///
    /// # Errors
    /// [`LocalServerError::StartFailed`] when it does not come up.
    pub fn restart(&self) -> Result<(), LocalServerError> {
        self.kill().map_err(failed("stopping the old server"))?;
        self.launch()
    }

    fn launch(&self) -> Result<(), LocalServerError> {
        let log = self.dir.join("server.log");
        let log_offset = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let mut command = Command::new(&self.server_binary);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", self.dir.join("mariadbd.sock").display()))
            .arg(format!("--pid-file={}", self.dir.join("mariadbd.pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .arg("--skip-name-resolve")
            .arg("--character-set-server=utf8mb4")
            .arg("--collation-server=utf8mb4_general_ci")
            .arg("--max-connections=2000")
            .arg("--innodb-buffer-pool-size=256M")
            .args(&self.extra_options)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C meant for the tests must not take the server down mid-run.
            .process_group(0);
        if running_as_root() {
            command.arg("--user=root");
        }
        let child = command.spawn().map_err(failed("running mariadbd"))?;
        self.process.set(child).map_err(failed("recording the server"))?;
        self.wait_until_ready(&log, log_offset)
    }

    fn wait_until_ready(&self, log: &Path, log_offset: u64) -> Result<(), LocalServerError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = read_from(log, log_offset);
            if text.contains("ready for connections") {
                return Ok(());
            }
            let exited = self.process.exit_status();
            if exited.is_some() || Instant::now() > deadline {
                return Err(LocalServerError::StartFailed {
                    step: if exited.is_some() { "mariadbd exited" } else { "mariadbd not ready after 60 s" },
                    detail: last_lines(&text, 5),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// mariadbd refuses to run as root unless told to; `/proc/self` is owned by the effective user.
fn running_as_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}
