//! A private, throwaway Redis server for tests and the demo, started from `redis-server` on this machine and
//! removed when this process exits (by the same guardian as [`crate::local_server`]). It keeps nothing on disk.

use std::fs;
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::local_server::{LocalServerError, failed, find_binary, free_port, spawn_guardian, unique_suffix};

/// A running private Redis.
#[derive(Debug)]
pub struct LocalRedis {
    port: u16,
    _guardian_pipe: ChildStdin,
}

static SHARED: OnceLock<Result<LocalRedis, String>> = OnceLock::new();

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
    /// [`LocalServerError::NotInstalled`]-style errors when `redis-server` is missing or does not come up.
    pub fn start() -> Result<LocalRedis, LocalServerError> {
        let binary = find_binary(&["redis-server"]).ok_or_else(|| LocalServerError::StartFailed {
            step: "finding redis-server",
            detail: "install it with `sudo apt-get install redis-server` (or run .ci/install), or set REDIS_URL".into(),
        })?;
        let dir = std::env::temp_dir().join(format!("seckill-redis-{}-{}", std::process::id(), unique_suffix()));
        fs::create_dir_all(&dir).map_err(failed("creating its folder"))?;
        let guardian_pipe = spawn_guardian(&dir)?;
        let port = free_port()?;
        let mut child = Command::new(binary)
            .arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .arg("--pidfile")
            .arg(dir.join("redis.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(failed("running redis-server"))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                return Err(LocalServerError::StartFailed { step: "redis-server", detail: "did not start".into() });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(LocalRedis { port, _guardian_pipe: guardian_pipe })
    }

    /// `redis://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
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
