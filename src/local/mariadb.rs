//! A private, throwaway MariaDB server, started from the binaries on this machine.
//!
//! Tests, the demo and `seckill migrate` without a URL need a server without asking the user for one. This
//! module makes one in a temporary folder: `mariadb-install-db` lays out a data directory, `mariadbd` serves it
//! on a free loopback port, and a small guardian process removes both when this process exits, however it
//! exits (even on SIGKILL): the guardian reads a pipe that only this process holds, and the kernel closes the
//! pipe when the process dies. The server keeps InnoDB's durable defaults, so what is measured on it is what
//! a real server does.
//!
//! It listens on loopback only, which every user of the machine reaches: so its root account has a password of
//! its own, drawn from the system's random source when the server is laid out, and no account is open without
//! one. [`LocalMariaDb::root_url`] carries it, for the tests and tools of this process. The password is set by an
//! init file (mode 0600, read once by the server before it takes its first connection, then deleted), never on a
//! command line, and is not written to the binary log, so that a replica of this server keeps its own.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::LocalServerError;
use super::scratch::{
    Password, ScratchDir, Supervised, failed, find_binary, free_port, last_lines, read_from, write_private,
};

/// A running private server; removed when the process exits.
#[derive(Debug)]
pub struct LocalMariaDb {
    dir: ScratchDir,
    port: u16,
    server_binary: std::path::PathBuf,
    /// Server options given at start, after the defaults (so they override them), at every launch.
    extra_options: Vec<String>,
    /// Root's password (root@localhost and root@127.0.0.1, the only root accounts left).
    root_password: Password,
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
        let root_password = Password::generate()?;
        let init_file = dir.join("init.sql");
        write_private(&init_file, &closing_statements(&root_password)).map_err(failed("writing its init file"))?;
        let server = LocalMariaDb {
            dir,
            port,
            server_binary,
            extra_options: options,
            root_password,
            // The server writes this file itself; supervised, it is also removed once the server is killed, so that
            // the guardian never signals a dead server's pid, which the system may have handed to another process.
            process: Supervised::new("mariadbd", Some(pid_file)),
        };
        let launched = server.launch(Some(&init_file));
        // Read by now (or never to be): the password lives on in the server's own tables, hashed.
        let _ = fs::remove_file(&init_file);
        launched?;
        Ok(server)
    }

    /// The URL of the server's root account, with its password and no database selected. Keep it to this
    /// process: it opens every database of the server.
    pub fn root_url(&self) -> String {
        format!("mysql://root:{}@127.0.0.1:{}/", self.root_password.as_str(), self.port)
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
        self.launch(None)
    }

    /// Starts the server, with `init_file` run before its first connection when given (the first launch).
    fn launch(&self, init_file: Option<&Path>) -> Result<(), LocalServerError> {
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
            .args(init_file.map(|file| format!("--init-file={}", file.display())))
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

/// What closes a freshly laid out server: `mariadb-install-db` leaves root without a password at `localhost`,
/// `127.0.0.1`, `::1` and the machine's name. Root keeps the two accounts this server can be reached by (its
/// socket, and TCP on 127.0.0.1: names are not resolved), with `password`; the others go. Not binary-logged: a
/// primary's replica must not take its root password, nor see these statements at all.
fn closing_statements(password: &Password) -> String {
    let password = password.as_str();
    format!(
        "SET sql_log_bin = 0;\n\
         ALTER USER 'root'@'localhost' IDENTIFIED BY '{password}';\n\
         ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '{password}';\n\
         DELETE FROM mysql.global_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1');\n\
         DELETE FROM mysql.proxies_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1');\n\
         FLUSH PRIVILEGES;\n"
    )
}

/// mariadbd refuses to run as root unless told to; `/proc/self` is owned by the effective user.
fn running_as_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}
