//! A private, throwaway RabbitMQ node for tests and the demo, started from Debian's `rabbitmq-server` package and
//! removed when this process exits (by the guardian of [`super`]'s scratch folders).
//!
//! The node runs `/usr/lib/rabbitmq/bin/rabbitmq-server` itself (the `/usr/sbin` wrapper switches to the
//! `rabbitmq` user) with everything in a temporary folder: its own `HOME` (so its own Erlang cookie), data, logs,
//! an empty plugin list and a minimal config, and only free loopback ports. Erlang distribution needs an epmd: the
//! node gets one of its own on a private port, started here, so the machine's own RabbitMQ and its epmd on 4369
//! are never touched. The node's and epmd's pids are in `*.pid` files, which the guardian stops at exit.
//!
//! Fault tests need to do to it what happens to a production broker: [`LocalRabbitMq::kill`] is a crash
//! (SIGKILL), [`LocalRabbitMq::stop`] a clean shutdown, and [`LocalRabbitMq::start_again`] and
//! [`LocalRabbitMq::restart`] bring it back on the same ports and data, so what durable queues held survives.

use std::fs::{self, OpenOptions};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::LocalServerError;
use super::scratch::{ScratchDir, failed, find_binary, free_ports, read_from, send_signal, unique_suffix};

/// The real start script; `/usr/sbin/rabbitmq-server` is a wrapper that switches to the `rabbitmq` user.
const SERVER_SCRIPT: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/// A first start takes a few seconds here; a slow CI machine gets ten times that.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// A clean shutdown takes about a second; after this the node is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const INSTALL_HINT: &str =
    "install it with `sudo apt-get install rabbitmq-server` (or run .ci/install), or set RABBITMQ_URL";

/// `rabbitmq.conf` for the private node. Everything not named here is RabbitMQ's default, under which `guest` may
/// log in from loopback, which is the only place the node listens.
const CONFIG: &str = "\
# A private, throwaway node for tests: logs go to its log folder only.
log.console = false
log.file.level = info
";

/// A running private RabbitMQ node.
#[derive(Debug)]
pub struct LocalRabbitMq {
    dir: ScratchDir,
    /// `<unique>@localhost`; the same across restarts, since the node's data folder is named after it.
    node: String,
    port: u16,
    dist_port: u16,
    epmd_port: u16,
    epmd_binary: PathBuf,
    /// The `rabbitmq-server` shell, which leads the node's process group and waits on the Erlang VM; `None`
    /// while the node is stopped.
    node_process: Mutex<Option<Child>>,
    /// The node's private epmd. It outlives crashes of the node, as the machine's epmd would.
    epmd: Mutex<Option<Child>>,
}

static SHARED: OnceLock<Result<LocalRabbitMq, String>> = OnceLock::new();

impl LocalRabbitMq {
    /// The node shared by everything in this process, started on first use. Tests that stop, kill or restart a
    /// node start their own with [`Self::start`].
    ///
    /// # Errors
    /// The reason it could not be started, as a message (the same one to every caller).
    pub fn shared() -> Result<&'static LocalRabbitMq, String> {
        SHARED.get_or_init(|| LocalRabbitMq::start().map_err(|e| e.to_string())).as_ref().map_err(Clone::clone)
    }

    /// Starts a new private node on free loopback ports and waits until it completes an AMQP handshake.
    ///
    /// # Errors
    /// [`LocalServerError::StartFailed`] when RabbitMQ or epmd is not installed, or with the node's log when it
    /// does not come up within 60 s.
    pub fn start() -> Result<LocalRabbitMq, LocalServerError> {
        if !Path::new(SERVER_SCRIPT).is_file() {
            return Err(LocalServerError::StartFailed {
                step: "finding RabbitMQ's /usr/lib/rabbitmq/bin/rabbitmq-server",
                detail: INSTALL_HINT.into(),
            });
        }
        let epmd_binary = find_binary(&["epmd"]).ok_or_else(|| LocalServerError::StartFailed {
            step: "finding epmd for a private RabbitMQ",
            detail: INSTALL_HINT.into(),
        })?;
        let suffix = unique_suffix();
        let dir = ScratchDir::create("rabbitmq")?;
        let [port, dist_port, epmd_port] = free_ports()?;
        let rabbit = LocalRabbitMq {
            node: format!("seckill-{}-{suffix}@localhost", std::process::id()),
            dir,
            port,
            dist_port,
            epmd_port,
            epmd_binary,
            node_process: Mutex::new(None),
            epmd: Mutex::new(None),
        };
        rabbit.write_config().map_err(failed("writing a private RabbitMQ's config"))?;
        {
            let mut process = rabbit.node_process().map_err(failed("starting a private RabbitMQ"))?;
            rabbit.launch(&mut process)?;
        }
        Ok(rabbit)
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f` (the default virtual host `/`).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The AMQP port it listens on (loopback only); the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Erlang VM's process id, or `None` while the node is not running.
    pub fn pid(&self) -> Option<u32> {
        let mut process = self.node_process().ok()?;
        if process.as_mut()?.try_wait().ok()?.is_some() {
            return None;
        }
        fs::read_to_string(self.pid_file()).ok()?.trim().parse().ok()
    }

    /// Shuts the node down cleanly (SIGTERM, which RabbitMQ handles as `rabbitmqctl stop`) and waits until it has
    /// exited. Does nothing when it is not running. Its data stays for [`Self::start_again`].
    ///
    /// # Errors
    /// When it could not be signalled, or did not stop within 30 s (it is then killed).
    pub fn stop(&self) -> io::Result<()> {
        let mut process = self.node_process()?;
        let Some(mut child) = process.take() else { return Ok(()) };
        // The wrapper shell passes SIGTERM on to the VM and waits for it, so its exit means the VM's.
        let outcome = send_signal("-TERM", &child.id().to_string()).and_then(|()| wait_for_exit(&mut child));
        if outcome.is_err() {
            // Not left half-stopped: the next start needs its ports and its data folder.
            self.kill_node(&mut child)?;
        }
        let _ = fs::remove_file(self.pid_file());
        outcome
    }

    /// Kills the node at once with SIGKILL, as a crash would: the VM, its helper processes and the wrapper shell.
    /// What RabbitMQ confirmed is on disk; see [`Self::restart`]. Does nothing when it is not running.
    ///
    /// # Errors
    /// When it could not be signalled or waited for.
    pub fn kill(&self) -> io::Result<()> {
        let mut process = self.node_process()?;
        match process.take() {
            Some(mut child) => self.kill_node(&mut child),
            None => Ok(()),
        }
    }

    /// Starts a stopped or killed node again on the same ports and data, and waits until it is ready.
    ///
    /// # Errors
    /// [`LocalServerError::StartFailed`] when it is still running or does not come up.
    pub fn start_again(&self) -> Result<(), LocalServerError> {
        let mut process = self.node_process().map_err(failed("starting a private RabbitMQ again"))?;
        if let Some(child) = process.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            return Err(LocalServerError::StartFailed {
                step: "starting a private RabbitMQ again",
                detail: "it is still running; stop or kill it first, or call restart".into(),
            });
        }
        *process = None;
        self.launch(&mut process)
    }

    /// Kills the node (SIGKILL, as a crash would; see [`Self::kill`]) if it is running, and starts it again on the
    /// same ports and data, waiting until it is ready. For a clean restart, [`Self::stop`] then
    /// [`Self::start_again`].
    ///
    /// # Errors
    /// [`LocalServerError::StartFailed`] when the old node could not be stopped or the new one does not come up.
    pub fn restart(&self) -> Result<(), LocalServerError> {
        let mut process = self.node_process().map_err(failed("restarting a private RabbitMQ"))?;
        if let Some(mut child) = process.take() {
            self.kill_node(&mut child).map_err(failed("killing a private RabbitMQ for a restart"))?;
        }
        self.launch(&mut process)
    }

    fn write_config(&self) -> io::Result<()> {
        // An empty plugin list: nothing but AMQP, and no management listener on a fixed port.
        fs::write(self.dir.join("enabled_plugins"), "[].\n")?;
        fs::write(self.dir.join("rabbitmq.conf"), CONFIG)?;
        // Stands in for /etc/rabbitmq/rabbitmq-env.conf, which would otherwise set the machine node's name.
        fs::write(self.dir.join("rabbitmq-env.conf"), "")?;
        fs::create_dir_all(self.dir.join("conf.d"))
    }

    /// Starts the node into `process` (which must be empty) and waits until it is ready; on failure nothing is
    /// left running but epmd.
    fn launch(&self, process: &mut Option<Child>) -> Result<(), LocalServerError> {
        self.ensure_epmd()?;
        // A pid file left by a killed node names a process that no longer exists, maybe an unrelated one by now.
        let _ = fs::remove_file(self.pid_file());
        let console = self.console_log();
        let log_offset = fs::metadata(&console).map(|m| m.len()).unwrap_or(0);
        let stdout = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&console)
            .map_err(failed("opening a private RabbitMQ's console log"))?;
        let stderr = stdout.try_clone().map_err(failed("opening a private RabbitMQ's console log"))?;
        let dir = |name: &str| self.dir.join(name).into_os_string();
        let mut command = Command::new(SERVER_SCRIPT);
        command
            // Nothing of this machine's RabbitMQ or Erlang settings (RABBITMQ_*, ERL_FLAGS, ...) reaches the node.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()))
            .env("LANG", "C.UTF-8")
            // Erlang reads its cookie from, and creates it in, $HOME.
            .env("HOME", self.dir.path())
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            // Distribution on loopback only; and never an epmd of the VM's own, which would outlive it unrecorded.
            .env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}")
            .env("RABBITMQ_MNESIA_BASE", dir("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", dir("rabbitmq.conf"))
            .env("RABBITMQ_CONFIG_FILES", self.dir.join("conf.d").join("*.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir("advanced.config"))
            .env("RABBITMQ_CONF_ENV_FILE", dir("rabbitmq-env.conf"))
            .env("RABBITMQ_MOTD_FILE", dir("motd"))
            .env("RABBITMQ_PID_FILE", self.pid_file())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // Its own process group: a Ctrl-C meant for the tests must not take the node down mid-run, and a
            // crash can take the whole group at once.
            .process_group(0);
        let child = command.spawn().map_err(failed("running rabbitmq-server"))?;
        let child = process.insert(child);
        let ready = self.wait_until_ready(child, log_offset);
        if ready.is_err() {
            // Not left running behind a failed start; the guardian would only find it at exit.
            if let Some(mut child) = process.take() {
                let _ = self.kill_node(&mut child);
            }
        }
        ready
    }

    /// Polls the AMQP port, then completes an AMQP handshake: RabbitMQ may accept TCP before it can serve a
    /// client.
    fn wait_until_ready(&self, child: &mut Child, log_offset: u64) -> Result<(), LocalServerError> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_error = String::from("the AMQP port never accepted a connection");
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(LocalServerError::StartFailed {
                    step: "rabbitmq-server exited",
                    detail: format!("{status}; {}", self.log_tail(log_offset)),
                });
            }
            if TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok() {
                match amqp_handshake(&self.url()) {
                    Ok(()) => return Ok(()),
                    Err(e) => last_error = e,
                }
            }
            if Instant::now() > deadline {
                return Err(LocalServerError::StartFailed {
                    step: "rabbitmq-server not ready after 60 s",
                    detail: format!("{last_error}; {}", self.log_tail(log_offset)),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the node's private epmd unless it is running, recording its pid for the guardian, and waits until it
    /// accepts connections (the node, started with `-start_epmd false`, fails without it).
    fn ensure_epmd(&self) -> Result<(), LocalServerError> {
        let mut epmd =
            self.epmd.lock().map_err(|_| failed("starting epmd")(io::Error::other("epmd handle poisoned")))?;
        if let Some(child) = epmd.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            return Ok(());
        }
        let child = Command::new(&self.epmd_binary)
            .arg("-port")
            .arg(self.epmd_port.to_string())
            .args(["-address", "127.0.0.1"])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Not `-daemon`: as a child of this process its pid is known, so the guardian can stop it.
            .process_group(0)
            .spawn()
            .map_err(failed("running epmd"))?;
        let child = epmd.insert(child);
        fs::write(self.dir.join("epmd.pid"), child.id().to_string()).map_err(failed("recording epmd's pid"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.epmd_port)).is_err() {
            if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
                *epmd = None;
                return Err(LocalServerError::StartFailed {
                    step: "epmd for a private RabbitMQ",
                    detail: format!("it did not listen on port {} within 10 s", self.epmd_port),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The last lines of the node's own log, or, when it died before writing one, of what the start script printed
    /// since `console_offset`.
    fn log_tail(&self, console_offset: u64) -> String {
        let node_log = read_from(&self.dir.join("log").join(format!("{}.log", self.node)), 0);
        let (name, text) = if node_log.trim().is_empty() {
            ("console", read_from(&self.console_log(), console_offset))
        } else {
            ("log", node_log)
        };
        let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).rev().take(8).collect();
        if lines.is_empty() {
            return format!("nothing in its {name} ({})", self.dir.path().display());
        }
        format!("{name}: {}", lines.into_iter().rev().collect::<Vec<_>>().join(" | "))
    }

    /// SIGKILLs the node's whole process group (the wrapper shell leads it; the VM is in it), reaps the shell and
    /// waits until the VM is gone too, since until then it still holds the node's ports.
    fn kill_node(&self, child: &mut Child) -> io::Result<()> {
        let vm = fs::read_to_string(self.pid_file()).ok().and_then(|pid| pid.trim().parse::<u32>().ok());
        // A group that is already gone is not an error: the waits below are what matter.
        let _ = send_signal("-KILL", &format!("-{}", child.id()));
        child.wait()?;
        if let Some(vm) = vm {
            wait_until_gone(vm);
        }
        // The guardian must not find the dead VM's pid, which the system may hand to an unrelated process.
        let _ = fs::remove_file(self.pid_file());
        Ok(())
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("rabbitmq.pid")
    }

    fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    fn node_process(&self) -> io::Result<MutexGuard<'_, Option<Child>>> {
        self.node_process.lock().map_err(|_| io::Error::other("rabbitmq-server handle poisoned"))
    }
}

impl Drop for LocalRabbitMq {
    /// A node started for one test goes when the test is done with it, not at the end of the run; the guardian
    /// remains the backstop for a process that dies without dropping it.
    fn drop(&mut self) {
        let child = self.node_process.get_mut().ok().and_then(Option::take);
        if let Some(mut child) = child {
            let _ = self.kill_node(&mut child);
        }
        if let Ok(epmd) = self.epmd.get_mut()
            && let Some(mut child) = epmd.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(self.dir.path());
    }
}

/// `RABBITMQ_URL`, else `AMQP_URL`, when set; otherwise the shared private node.
///
/// # Errors
/// Why no broker could be had.
pub fn rabbitmq_url() -> Result<String, String> {
    for name in ["RABBITMQ_URL", "AMQP_URL"] {
        if let Ok(url) = std::env::var(name)
            && !url.trim().is_empty()
        {
            return Ok(url);
        }
    }
    LocalRabbitMq::shared().map(LocalRabbitMq::url)
}

/// Opens and closes an AMQP connection (handshake, login and virtual host) with lapin.
fn amqp_handshake(url: &str) -> Result<(), String> {
    const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
    let url = url.to_owned();
    // lapin needs a tokio runtime, and the caller may be inside one already (where another cannot block), so the
    // handshake gets a thread and a runtime of its own. Multi-threaded: lapin's I/O thread blocks on the runtime's
    // handle, which only drives I/O on its own when the runtime has worker threads.
    let handshake = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("no runtime for the AMQP handshake: {e}"))?;
        runtime.block_on(async {
            let connect = lapin::Connection::connect(&url, lapin::ConnectionProperties::default());
            let connection = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect)
                .await
                .map_err(|_| "no AMQP handshake within 5 s".to_string())?
                .map_err(|e| format!("AMQP handshake: {e}"))?;
            // Closed politely so the broker's log does not fill with abruptly closed connections.
            let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, connection.close(200, "ready".into())).await;
            Ok(())
        })
    });
    handshake.join().map_err(|_| "the AMQP handshake panicked".to_string())?
}

/// Waits, for at most 10 s, until process `pid` has exited (gone, or a zombie whose parent has not reaped it):
/// only then are its sockets closed.
fn wait_until_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return };
        // The state follows the command name, which is in parentheses and may itself contain any character.
        if stat.rsplit(')').next().is_none_or(|rest| rest.trim_start().starts_with('Z')) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `child` exits, for at most [`STOP_TIMEOUT`].
fn wait_for_exit(child: &mut Child) -> io::Result<()> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "RabbitMQ did not stop within 30 s; killed it"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
