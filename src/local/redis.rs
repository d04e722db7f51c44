//! A private, throwaway Redis server for tests and the demo, started from `redis-server` on this machine and
//! removed when this process exits (by the guardian of [`super`]'s scratch folders). It keeps nothing on disk.
//!
//! It listens on loopback, which every user of the machine reaches, and what it holds decides answers (a
//! balancer answers "sold out" from it): so it asks for a password of its own, drawn from the system's random
//! source, which [`LocalRedis::url`] carries. The password is in a configuration file only its user reads,
//! never on its command line.
//!
//! Fault tests need to do to it what happens to a production Redis: [`LocalRedis::pause`] and
//! [`LocalRedis::resume`] stop and continue it (SIGSTOP/SIGCONT: connections stay open but nothing answers), and
//! [`LocalRedis::restart`] kills it and starts an empty one on the same port, as a crash and a supervisor would.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::LocalServerError;
use super::scratch::{
    Password, ScratchDir, Supervised, failed, find_binary, free_port, wait_until_listening, write_private,
};

/// A running private Redis.
#[derive(Debug)]
pub struct LocalRedis {
    dir: ScratchDir,
    port: u16,
    binary: PathBuf,
    /// What clients must AUTH with (`requirepass`, in the configuration file).
    password: Password,
    /// The running server; not running only after a kill, or after a restart failed to start it again.
    process: Supervised,
}

static SHARED: OnceLock<Result<LocalRedis, String>> = OnceLock::new();

/// The configuration file in the server's folder: its password, and nothing else.
const CONFIG_FILE: &str = "redis.conf";

impl LocalRedis {
    /// The Redis shared by everything in this process, started on first use.
    ///
    /// # Errors
    /// The reason it could not be started, as a message.
    pub fn shared() -> Result<&'static LocalRedis, String> {
        SHARED.get_or_init(|| LocalRedis::start().map_err(|e| e.to_string())).as_ref().map_err(Clone::clone)
    }

    /// Starts a new private Redis on a free loopback port.
    ///
    /// # Errors
    /// [`LocalServerError::StartFailed`] when `redis-server` is missing or does not come up.
    pub fn start() -> Result<LocalRedis, LocalServerError> {
        let binary = find_binary(&["redis-server"]).ok_or_else(|| LocalServerError::StartFailed {
            step: "finding redis-server",
            detail: "install it with `sudo apt-get install redis-server` (or run .ci/install), or set REDIS_URL".into(),
        })?;
        let dir = ScratchDir::create("redis")?;
        let port = free_port()?;
        let process = Supervised::new("redis-server", Some(dir.join("redis.pid")));
        let password = Password::generate()?;
        // Read at every start, restarts included.
        write_private(&dir.join(CONFIG_FILE), &format!("requirepass {}\n", password.as_str()))
            .map_err(failed("writing its configuration"))?;
        let redis = LocalRedis { dir, port, binary, password, process };
        redis.launch()?;
        Ok(redis)
    }

    /// `redis://:PASSWORD@127.0.0.1:PORT/`: keep it to this process (and to children, in their environment).
    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}/", self.password.as_str(), self.port)
    }

    /// The TCP port it listens on (loopback only); the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, or `None` when it is not running (a restart failed).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Stops the server with SIGSTOP: its connections stay open and accept bytes, but nothing is answered until
    /// [`Self::resume`], as with a Redis that hangs.
    ///
    /// # Errors
    /// When it is not running or could not be signalled.
    pub fn pause(&self) -> io::Result<()> {
        self.process.signal("-STOP")
    }

    /// Continues a server stopped by [`Self::pause`] (SIGCONT).
    ///
    /// # Errors
    /// When it is not running or could not be signalled.
    pub fn resume(&self) -> io::Result<()> {
        self.process.signal("-CONT")
    }

    /// Kills the server by its pid (SIGKILL, as a crash would; paused or not) and leaves it down until
    /// [`Self::restart`]: connections drop and new ones are refused.
    ///
    /// # Errors
    /// When it could not be signalled.
    pub fn kill(&self) -> io::Result<()> {
        self.process.kill()
    }

    /// Kills the server (SIGKILL, as a crash would; paused or not) and starts an empty one on the same port,
    /// waiting until it accepts connections. Clients connected to the old one see their connections drop.
    ///
    /// # Errors
    /// [`LocalServerError::StartFailed`] when the old one could not be stopped or the new one does not come up.
    pub fn restart(&self) -> Result<(), LocalServerError> {
        self.kill().map_err(failed("stopping the old server"))?;
        self.launch()
    }

    fn launch(&self) -> Result<(), LocalServerError> {
        let mut child = Command::new(&self.binary)
            // The configuration file comes first; the options after it override it.
            .arg(self.dir.join(CONFIG_FILE))
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--pidfile")
            .arg(self.dir.join("redis.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C meant for the tests must not take the server down mid-run.
            .process_group(0)
            .spawn()
            .map_err(failed("running redis-server"))?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        if let Err(why) = wait_until_listening(address, Duration::from_secs(20), &mut child) {
            // Not left running behind a failed start; the guardian would only find it at exit.
            let _ = child.kill();
            let _ = child.wait();
            return Err(LocalServerError::StartFailed {
                step: "redis-server",
                detail: format!("did not start: {why}"),
            });
        }
        self.process.set(child).map_err(failed("recording the server"))
    }
}

/// `REDIS_URL` when set, otherwise the shared private Redis.
///
/// # Errors
/// Why no Redis could be had.
pub fn redis_url() -> Result<String, String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => LocalRedis::shared().map(LocalRedis::url),
    }
}
