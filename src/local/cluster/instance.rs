//! One app instance: a `seckill serve` child process on a free loopback port, with its metrics on another (never
//! on the API's), its log in the cluster's folder, its pid in a pid file there so that the cluster's guardian
//! stops it even if this process dies.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::error::ClusterError;
use super::options::ClusterOptions;
use super::probe::status_of;
use crate::local::scratch::{Supervised, free_ports, last_lines_of};

/// How long an instance may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a stopped instance may take to finish its requests in flight before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How many ports are tried when another process takes the free one first.
const PORT_ATTEMPTS: usize = 3;

/// Where an instance finds its database and Redis.
#[derive(Debug)]
pub(crate) struct InstanceSetting<'a> {
    pub(crate) primary_url: &'a str,
    pub(crate) replica_urls: &'a [String],
    pub(crate) redis_url: &'a str,
}

/// A running (or killed) `seckill serve` instance.
#[derive(Debug)]
pub struct AppInstance {
    number: usize,
    address: SocketAddr,
    /// Where its metrics are served (loopback, apart from the API).
    metrics_address: SocketAddr,
    pid: u32,
    log: PathBuf,
    /// Ready path of the app, asked until it answers 200.
    ready_path: String,
    /// Its pid is kept in a file of the cluster's folder for the guardian, until it has stopped.
    process: Supervised,
}

impl AppInstance {
    /// Starts instance `number` (from 1) and waits until it answers.
    pub(crate) async fn start(
        number: usize,
        options: &ClusterOptions,
        setting: &InstanceSetting<'_>,
        dir: &Path,
    ) -> Result<AppInstance, ClusterError> {
        let log = dir.join(format!("instance-{number}.log"));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let instance = Self::spawn(number, options, setting, dir, &log)?;
            match instance.wait_until_ready().await {
                Ok(()) => return Ok(instance),
                // Another process took the port between our look and the instance's bind: take another.
                Err(_) if attempt < PORT_ATTEMPTS && fs::read_to_string(&log)?.contains("cannot listen on") => {}
                Err(error) => return Err(error),
            }
        }
    }

    fn spawn(
        number: usize,
        options: &ClusterOptions,
        setting: &InstanceSetting<'_>,
        dir: &Path,
        log: &Path,
    ) -> Result<AppInstance, ClusterError> {
        let instance_error = |detail: String| ClusterError::Instance { number, detail, log: log.display().to_string() };
        let [port, metrics_port] = free_ports().map_err(|e| instance_error(e.to_string()))?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let metrics_address = SocketAddr::from((Ipv4Addr::LOCALHOST, metrics_port));
        let output = fs::OpenOptions::new().create(true).append(true).open(log)?;
        let mut command = Command::new(&options.app.binary);
        command.arg("serve").arg("--listen").arg(address.to_string());
        command.arg("--metrics-listen").arg(metrics_address.to_string());
        command
            .args(&options.serve_args)
            // URLs in the environment: they hold passwords, which a command line shows to every user of the
            // machine (/proc/PID/cmdline), and the environment only to the instance's own user.
            .env("DATABASE_URL", setting.primary_url)
            .env("SECKILL_REPLICA_URLS", setting.replica_urls.join(","))
            .env("REDIS_URL", setting.redis_url)
            .env("RUST_LOG", &options.instance_log_filter)
            .env("NO_COLOR", "1");
        for (name, value) in &options.instance_env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            // Its own process group: a Ctrl-C meant for the cluster must leave the teardown to the cluster.
            .process_group(0)
            .spawn()
            .map_err(|e| instance_error(format!("cannot run {}: {e}", options.app.binary.display())))?;
        let pid = child.id();
        let process = Supervised::new("app instance", Some(dir.join(format!("instance-{number}.pid"))));
        process.set(child)?;
        let ready_path = options.app.ready_path.clone();
        Ok(AppInstance { number, address, metrics_address, pid, log: log.to_path_buf(), ready_path, process })
    }

    async fn wait_until_ready(&self) -> Result<(), ClusterError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            // The database's clock: an answer proves the instance reaches its database too.
            if status_of(self.address, &self.ready_path, Duration::from_secs(2)).await == Some(200) {
                return Ok(());
            }
            let exited = self.exit_status();
            if exited.is_some() || Instant::now() > deadline {
                let detail = match exited {
                    Some(status) => format!("it exited ({status}): {}", last_lines_of(&self.log, 3)),
                    None => format!("no answer after {} s: {}", START_TIMEOUT.as_secs(), last_lines_of(&self.log, 3)),
                };
                let _ = self.kill();
                return Err(ClusterError::Instance {
                    number: self.number,
                    detail,
                    log: self.log.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its number in the cluster, from 1.
    pub fn number(&self) -> usize {
        self.number
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where its Prometheus metrics are served (`GET /metrics`, loopback): not on [`Self::address`], and never
    /// through the balancer.
    pub fn metrics_address(&self) -> SocketAddr {
        self.metrics_address
    }

    /// Its process id (the one it had, once killed).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its stderr: the request logs (one line per request at info level) and its warnings.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// How it ended, or `None` while it runs.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.process.exit_status()
    }

    /// True while its process runs.
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// Kills it at once by its pid (SIGKILL), as a crash would: requests in flight get no answer.
    ///
    /// # Errors
    /// When it could not be signalled.
    pub fn kill(&self) -> io::Result<()> {
        self.process.kill()
    }

    /// Stops it by its pid: SIGTERM (it finishes its requests in flight), SIGKILL if still running 5 s later.
    ///
    /// # Errors
    /// When it could not be signalled.
    pub fn stop(&self) -> io::Result<()> {
        self.process.stop(STOP_GRACE)
    }
}

impl Drop for AppInstance {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
