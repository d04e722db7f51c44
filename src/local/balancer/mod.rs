//! A real load balancer in front of several app instances: nginx from Debian's packages with its Lua module,
//! started from a generated configuration in a scratch folder, on a free loopback port, and removed when this
//! process exits (by the guardian of [`super`]'s scratch folders, even on SIGKILL).
//!
//! It proxies every request to the instances (keepalive connections; an instance that refuses connections or
//! does not accept one within the connect timeout is routed around), and, given a Redis and the app's
//! [`Interception`]s, answers requests for closed things itself from the shared state there, so that the
//! instances never see them. Each interception names a `POST` path, the key under the prefix (`seckill:` by
//! default) whose value closes it, and the app's exact bytes to answer; any other value, or no key, means "ask
//! the app". Lookups are cached in a shared dict for [`ClosedStateConfig::cache_for`] (~100 ms; negative
//! answers too); Redis unreachable or slow (every step bounded by [`ClosedStateConfig::redis_timeout`], then
//! skipped for [`ClosedStateConfig::redis_backoff`]) means every request passes through: the balancer fails
//! open, never refusing what the app would accept. A request the app would refuse before looking at the state
//! (a malformed id or token, a missing or malformed cookie, a body over the app's limit or sent in chunks, whose
//! size only reading it tells, a request labelled
//! `Sec-Fetch-Site: cross-site` where the app refuses those) also passes through, so the app answers it. The
//! balancer checks the shape of a request, not its signatures: a forged token or cookie for a closed thing
//! hears the closed answer instead of the app's refusal.
//!
//! Operational paths ([`BalancerConfig::internal_paths`]: `/metrics`) are answered 404 by the balancer itself in
//! the app's envelope, never passed on: the instances serve their metrics on a listener of their own anyway, and
//! this keeps an instance that would serve them publicly (an older one, a host app that merged them) private.
//!
//! The packages: `nginx`, `libnginx-mod-http-lua` (with `libnginx-mod-http-ndk`) and `lua-nginx-redis`
//! (lua-resty-redis); `.ci/install` installs them.

mod nginx_config;

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use thiserror::Error;

pub use crate::http::{ClosedAnswer, CookieShape, Interception, Shape};

use super::scratch::{
    ScratchDir, Supervised, find_binary, free_port, last_lines_of, wait_until_listening, write_private,
};
use crate::http::Envelope;
use crate::http::fallbacks::NO_SUCH_ROUTE;
use crate::prometheus::METRICS_PATH;

/// The Debian packages the balancer needs, as one `apt-get install` line.
pub const PACKAGES: &str = "nginx libnginx-mod-http-lua lua-nginx-redis";

/// Where Debian puts nginx's dynamic modules.
const MODULE_DIRS: &[&str] = &["/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/local/lib/nginx/modules"];

/// Where Lua modules for LuaJIT 5.1 live, and under which name lua-resty-redis is found there: Debian's
/// `lua-nginx-redis` installs it as `nginx.redis`, upstream as `resty.redis`.
const LUA_DIRS: &[&str] = &["/usr/share/lua/5.1", "/usr/local/share/lua/5.1", "/usr/local/openresty/lualib"];
const REDIS_MODULES: &[(&str, &str)] = &[("nginx/redis.lua", "nginx.redis"), ("resty/redis.lua", "resty.redis")];

/// Why no balancer could be started.
#[derive(Debug, Error)]
pub enum LocalBalancerError {
    /// nginx, its Lua module or lua-resty-redis is not installed.
    #[error(
        "the load balancer needs {missing}: install it with `apt-get install {PACKAGES}` (as root, or with sudo; or \
         run .ci/install)"
    )]
    NotInstalled { missing: String },
    /// The Redis URL the balancer should read the shared state from is not one it can use.
    #[error("invalid Redis URL for the load balancer ({url}): {detail}")]
    InvalidRedisUrl { url: String, detail: String },
    /// Nothing to balance.
    #[error("the load balancer needs at least one app instance")]
    NoUpstreams,
    /// A step of starting nginx failed.
    #[error("starting the load balancer failed ({step}): {detail}")]
    StartFailed { step: &'static str, detail: String },
}

fn failed(step: &'static str) -> impl Fn(io::Error) -> LocalBalancerError {
    move |e| LocalBalancerError::StartFailed { step, detail: e.to_string() }
}

/// What the balancer does.
#[derive(Debug, Clone)]
pub struct BalancerConfig {
    /// Where it listens; `None` for a free loopback port.
    pub listen: Option<SocketAddr>,
    /// The app instances it sends requests to.
    pub upstreams: Vec<SocketAddr>,
    /// Answer closed states from Redis; `None` for a plain proxy.
    pub closed_state: Option<ClosedStateConfig>,
    /// nginx worker processes (the cache is shared between them).
    pub worker_processes: u32,
    /// The body (JSON) of nginx's own answer when no instance answered (502, 504).
    pub gateway_error: String,
    /// Paths answered 404 with [`Self::not_found`] by the balancer itself and never passed on: operational
    /// endpoints, which are not public (by default [`crate::prometheus::METRICS_PATH`]). Matched as nginx reads a
    /// path, once decoded and with repeated slashes merged.
    pub internal_paths: Vec<String>,
    /// The body (JSON) of the balancer's 404 for [`Self::internal_paths`]: the app's own for an unknown route.
    pub not_found: String,
    /// How long connecting to an instance may take before the request goes to the next one.
    pub upstream_connect_timeout: Duration,
}

impl BalancerConfig {
    /// A balancer in front of `upstreams` on a free loopback port, as a plain proxy.
    pub fn new(upstreams: Vec<SocketAddr>) -> Self {
        BalancerConfig {
            listen: None,
            upstreams,
            closed_state: None,
            worker_processes: 2,
            gateway_error: default_gateway_error(),
            internal_paths: vec![METRICS_PATH.to_string()],
            not_found: default_not_found(),
            upstream_connect_timeout: Duration::from_millis(250),
        }
    }

    /// Listens on `address` instead of a free loopback port.
    pub fn listen(mut self, address: SocketAddr) -> Self {
        self.listen = Some(address);
        self
    }

    /// Answers `interceptions` from the shared state in this Redis, with the default bounds.
    pub fn closed_state_from(mut self, redis_url: impl Into<String>, interceptions: Vec<Interception>) -> Self {
        self.closed_state = Some(ClosedStateConfig::new(redis_url, interceptions));
        self
    }
}

/// The app's error envelope, saying that no instance answered and the outcome is unknown.
fn default_gateway_error() -> String {
    let message = "no answer from the app: the outcome is unknown";
    // The envelope holds only strings, booleans and nulls: serializing it cannot fail.
    serde_json::to_string(&Envelope::error(message)).unwrap_or_default()
}

/// The app's error envelope for a route it does not have.
fn default_not_found() -> String {
    // As above: serializing the envelope cannot fail.
    serde_json::to_string(&Envelope::error(NO_SUCH_ROUTE)).unwrap_or_default()
}

/// How long the balancer uses a lookup's answer by default before asking Redis again.
pub const DEFAULT_CACHE_FOR: Duration = Duration::from_millis(100);

/// How the balancer reads the shared closed state.
#[derive(Debug, Clone)]
pub struct ClosedStateConfig {
    /// `redis://[user:password@]host:port/db` (TCP or Unix socket; no TLS).
    pub redis_url: String,
    /// The keys' prefix: `{prefix}{interception's key}{id}:state`.
    pub key_prefix: String,
    /// The requests answered from the state.
    pub interceptions: Vec<Interception>,
    /// How long a lookup's answer (closed or not) is used before Redis is asked again.
    pub cache_for: Duration,
    /// The bound of each Redis step (connect, auth, read).
    pub redis_timeout: Duration,
    /// How long Redis is skipped after it failed.
    pub redis_backoff: Duration,
}

impl ClosedStateConfig {
    /// `interceptions` answered from the state in `redis_url` under the default prefix `seckill:`, cached
    /// 100 ms, Redis steps bounded by 30 ms and skipped for a second after a failure.
    pub fn new(redis_url: impl Into<String>, interceptions: Vec<Interception>) -> Self {
        ClosedStateConfig {
            redis_url: redis_url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_string(),
            interceptions,
            cache_for: DEFAULT_CACHE_FOR,
            redis_timeout: Duration::from_millis(30),
            redis_backoff: Duration::from_secs(1),
        }
    }
}

/// The words of the interception's warning when Redis fails (`interception.lua`).
const REDIS_FAILED_WARNING: &str = "seckill balancer: Redis failed";

/// The default prefix of the shared-state keys.
pub const DEFAULT_KEY_PREFIX: &str = "seckill:";

/// The installed pieces nginx is started with.
#[derive(Debug, Clone)]
pub(crate) struct Installation {
    nginx: PathBuf,
    ndk_module: PathBuf,
    lua_module: PathBuf,
    /// The folder lua-resty-redis is found in, and the name it is loaded under.
    lua_path: PathBuf,
    redis_module: &'static str,
}

impl Installation {
    /// Finds nginx, its Lua module and lua-resty-redis, or says which package is missing.
    fn find() -> Result<Installation, LocalBalancerError> {
        let nginx = find_binary(&["nginx"])
            .ok_or_else(|| LocalBalancerError::NotInstalled { missing: "nginx (package nginx)".into() })?;
        let module = |name: &str| MODULE_DIRS.iter().map(|dir| Path::new(dir).join(name)).find(|path| path.is_file());
        let lua_module = module("ngx_http_lua_module.so").ok_or_else(|| LocalBalancerError::NotInstalled {
            missing: "nginx's Lua module (package libnginx-mod-http-lua)".into(),
        })?;
        let ndk_module = module("ndk_http_module.so").ok_or_else(|| LocalBalancerError::NotInstalled {
            missing: "nginx's development kit module (package libnginx-mod-http-ndk)".into(),
        })?;
        let (lua_path, redis_module) = LUA_DIRS
            .iter()
            .flat_map(|dir| REDIS_MODULES.iter().map(move |(file, name)| (Path::new(dir), *file, *name)))
            .find(|(dir, file, _)| dir.join(file).is_file())
            .map(|(dir, _, name)| (dir.to_path_buf(), name))
            .ok_or_else(|| LocalBalancerError::NotInstalled {
                missing: "lua-resty-redis (package lua-nginx-redis)".into(),
            })?;
        Ok(Installation { nginx, ndk_module, lua_module, lua_path, redis_module })
    }
}

/// A running nginx in front of app instances; stopped when dropped, and removed when the process exits.
#[derive(Debug)]
pub struct LocalBalancer {
    dir: ScratchDir,
    address: SocketAddr,
    /// nginx's master process; it writes its own pid file for the guardian.
    process: Supervised,
}

impl LocalBalancer {
    /// Writes the configuration and starts nginx, waiting until it accepts connections.
    ///
    /// # Errors
    /// [`LocalBalancerError::NotInstalled`] naming the package to install, [`LocalBalancerError::InvalidRedisUrl`],
    /// [`LocalBalancerError::NoUpstreams`], or [`LocalBalancerError::StartFailed`] with nginx's own words.
    pub fn start(config: &BalancerConfig) -> Result<LocalBalancer, LocalBalancerError> {
        if config.upstreams.is_empty() {
            return Err(LocalBalancerError::NoUpstreams);
        }
        let installation = Installation::find()?;
        let redis = config
            .closed_state
            .as_ref()
            .map(|closed| nginx_config::RedisTarget::parse(&closed.redis_url).map(|target| (closed, target)))
            .transpose()?;
        let local = |step: &'static str| {
            move |e: super::LocalServerError| LocalBalancerError::StartFailed { step, detail: e.to_string() }
        };
        let dir = ScratchDir::create("nginx").map_err(local("its folder"))?;
        let address = match config.listen {
            Some(address) => address,
            None => SocketAddr::from((Ipv4Addr::LOCALHOST, free_port().map_err(local("port"))?)),
        };
        if let Some((closed, target)) = &redis {
            fs::write(dir.join(format!("{}.lua", nginx_config::LUA_MODULE)), include_str!("interception.lua"))
                .map_err(failed("writing the Lua interception"))?;
            // The settings may hold Redis's password: only this user reads them.
            let settings = nginx_config::settings_lua(closed, target, installation.redis_module);
            write_private(&dir.join(format!("{}.lua", nginx_config::SETTINGS_MODULE)), &settings)
                .map_err(failed("writing the Lua settings"))?;
        }
        let conf = nginx_config::nginx_conf(config, &installation, dir.path(), address);
        fs::write(dir.join("nginx.conf"), conf).map_err(failed("writing nginx.conf"))?;
        let balancer = LocalBalancer { dir, address, process: Supervised::new("nginx", None) };
        balancer.launch(&installation)?;
        Ok(balancer)
    }

    fn launch(&self, installation: &Installation) -> Result<(), LocalBalancerError> {
        let mut child = Command::new(&installation.nginx)
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.config_path())
            // Before it reads the configuration, nginx opens its compiled-in error log unless told otherwise.
            .arg("-e")
            .arg(self.error_log())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C meant for us must not stop it before we stop what is behind it.
            .process_group(0)
            .spawn()
            .map_err(failed("running nginx"))?;
        if let Err(why) = wait_until_listening(self.address, Duration::from_secs(20), &mut child) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(LocalBalancerError::StartFailed {
                step: if why == "exited" { "nginx exited" } else { "nginx not listening after 20 s" },
                detail: last_lines_of(&self.error_log(), 5),
            });
        }
        self.process.set(child).map_err(failed("recording nginx"))
    }

    /// `http://ADDRESS`, where clients go.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The nginx master's process id, or `None` once stopped.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// The generated `nginx.conf`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("nginx.conf")
    }

    /// nginx's error log (warnings too: the interception reports Redis failures there).
    pub fn error_log(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    /// How many times the interception found Redis failing or slow and passed requests through for a back-off
    /// (its warnings in [`LocalBalancer::error_log`]); what explains requests for closed things reaching an app.
    pub fn redis_failures(&self) -> usize {
        let log = fs::read_to_string(self.error_log()).unwrap_or_default();
        log.lines().filter(|line| line.contains(REDIS_FAILED_WARNING)).count()
    }

    /// Stops nginx by its pid: SIGTERM (fast shutdown: workers close their connections), then SIGKILL if it
    /// is still running 5 s later. Stopping a stopped balancer does nothing.
    ///
    /// # Errors
    /// When it could not be signalled.
    pub fn stop(&self) -> io::Result<()> {
        self.process.stop(Duration::from_secs(5))
    }
}

impl Drop for LocalBalancer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
