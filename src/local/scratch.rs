//! What every throwaway server shares, written once: a scratch folder that a guardian removes however this
//! process exits, programs looked up where Debian puts them, free loopback ports, passwords drawn from the
//! system's random source and files only their owner reads, a child process supervised by its pid, and the tail
//! of a log for an error message.
//!
//! The guardian is a small shell process that waits for its stdin to close, which happens only when this
//! process exits (the kernel closes the pipe even on SIGKILL). It then stops every process with a `*.pid` file
//! in the folder and deletes the folder. So a server records its pid there while it runs, and removes the file
//! once it has stopped: the system may hand a dead process's pid to an unrelated one.

use std::fmt;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::LocalServerError;

/// `LocalServerError::StartFailed` for `step`, from an I/O error.
pub(crate) fn failed(step: &'static str) -> impl Fn(io::Error) -> LocalServerError {
    move |e| LocalServerError::StartFailed { step, detail: e.to_string() }
}

/// A folder of its own under the system's temporary folder, removed with everything recorded in it when this
/// process exits.
#[derive(Debug)]
pub(crate) struct ScratchDir {
    path: PathBuf,
    /// Held, never written: the guardian cleans up when this pipe closes, i.e. when the process exits.
    _guardian_pipe: ChildStdin,
}

impl ScratchDir {
    /// `seckill-{kind}-{pid}-{unique}` under the temporary folder, with its guardian.
    pub(crate) fn create(kind: &str) -> Result<ScratchDir, LocalServerError> {
        let path = std::env::temp_dir().join(format!("seckill-{kind}-{}-{}", std::process::id(), unique_suffix()));
        fs::create_dir_all(&path).map_err(failed("creating its folder"))?;
        let guardian_pipe = spawn_guardian(&path)?;
        Ok(ScratchDir { path, _guardian_pipe: guardian_pipe })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

/// A shell process that waits for its stdin to close (this process exiting), then stops every process with a
/// `*.pid` file in `dir` and deletes `dir`.
fn spawn_guardian(dir: &Path) -> Result<ChildStdin, LocalServerError> {
    const SCRIPT: &str = r#"
        trap '' INT HUP
        cat >/dev/null
        for pidfile in "$1"/*.pid; do
        pid=$(cat "$pidfile" 2>/dev/null)
        if [ -n "$pid" ]; then
            kill -TERM "$pid" 2>/dev/null
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null
        fi
        done
        rm -rf "$1"
    "#;
    let mut guardian = Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("seckill-guardian")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(failed("starting the clean-up guardian"))?;
    guardian.stdin.take().ok_or_else(|| failed("starting the clean-up guardian")(io::Error::other("no stdin pipe")))
}

/// The first of `names` found on PATH or where Debian installs servers (`/usr/sbin` is not on an ordinary
/// user's PATH).
pub(crate) fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from));
    names.iter().flat_map(|name| dirs.iter().map(move |dir| dir.join(name))).find(|candidate| candidate.is_file())
}

/// A free loopback port.
pub(crate) fn free_port() -> Result<u16, LocalServerError> {
    let [port] = free_ports()?;
    Ok(port)
}

/// `N` different free loopback ports. The listeners are held together so that the system cannot hand out one
/// port twice.
pub(crate) fn free_ports<const N: usize>() -> Result<[u16; N], LocalServerError> {
    let mut listeners = Vec::with_capacity(N);
    for _ in 0..N {
        listeners.push(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed("finding a free port"))?);
    }
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr().map_err(failed("finding a free port"))?.port();
    }
    Ok(ports)
}

/// A password of a throwaway server: 128 bits from the system's random source, as lowercase hex (safe in a URL,
/// in SQL quotes and in a configuration file). Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Password(String);

impl Password {
    /// A new one, from `/dev/urandom` (the kernel's generator, seeded once the system has booted).
    pub(crate) fn generate() -> Result<Password, LocalServerError> {
        let mut bytes = [0u8; 16];
        fs::File::open("/dev/urandom")
            .and_then(|mut random| random.read_exact(&mut bytes))
            .map_err(failed("drawing a password from /dev/urandom"))?;
        Ok(Password(hex::encode(bytes)))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Writes `text` to a new file at `path` that only its owner may read (mode 0600 from its creation, so that no
/// one else ever reads it, even briefly): where a secret goes that must not be on a command line.
pub(crate) fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

/// A number that tells apart folders made in the same process.
pub(crate) fn unique_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        % 1_000_000_007
}

/// Waits until `address` accepts a TCP connection, for at most `timeout`, or until `child` exits. `Err` says
/// which: `"exited"` or `"not listening after N s"`.
pub(crate) fn wait_until_listening(address: SocketAddr, timeout: Duration, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        if child.try_wait().ok().flatten().is_some() {
            return Err("exited".into());
        }
        if Instant::now() > deadline {
            return Err(format!("not listening after {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// What was written to `path` from byte `offset` on (lossy UTF-8; empty when it cannot be read).
pub(crate) fn read_from(path: &Path, offset: u64) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut file) = fs::File::open(path) {
        let _ = file.seek(SeekFrom::Start(offset));
        let _ = file.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last `count` lines of `text`, joined on one line, for an error message.
pub(crate) fn last_lines(text: &str, count: usize) -> String {
    let last: Vec<&str> = text.lines().rev().take(count).collect();
    last.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// The last `count` lines of the file at `path`.
pub(crate) fn last_lines_of(path: &Path, count: usize) -> String {
    last_lines(&read_from(path, 0), count)
}

/// `kill SIGNAL -- TARGET`; a negative target is a process group.
pub(crate) fn send_signal(signal: &str, target: &str) -> io::Result<()> {
    let status = Command::new("kill").args([signal, "--", target]).stderr(Stdio::null()).status()?;
    if status.success() { Ok(()) } else { Err(io::Error::other(format!("kill {signal} {target} failed: {status}"))) }
}

/// A server's process, while it runs: its pid for signals and for the guardian, which finds it in `pid_file`
/// when the server does not write one itself.
#[derive(Debug)]
pub(crate) struct Supervised {
    name: &'static str,
    child: Mutex<Option<Child>>,
    /// Written here when the process starts and removed once it has stopped.
    pid_file: Option<PathBuf>,
}

impl Supervised {
    /// Nothing running yet; `name` is for error messages (`"redis-server"`).
    pub(crate) fn new(name: &'static str, pid_file: Option<PathBuf>) -> Self {
        Supervised { name, child: Mutex::new(None), pid_file }
    }

    /// Supervises `child` from now on (recording its pid when this supervisor keeps the pid file).
    pub(crate) fn set(&self, child: Child) -> io::Result<()> {
        if let Some(pid_file) = &self.pid_file {
            fs::write(pid_file, child.id().to_string())?;
        }
        *self.lock()? = Some(child);
        Ok(())
    }

    pub(crate) fn lock(&self) -> io::Result<MutexGuard<'_, Option<Child>>> {
        self.child.lock().map_err(|_| io::Error::other(format!("the {} handle is poisoned", self.name)))
    }

    /// The process id while it runs (`None` after it was killed or stopped).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.lock().ok()?.as_ref().map(Child::id)
    }

    /// How it exited, if it has.
    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        self.lock().ok()?.as_mut()?.try_wait().ok().flatten()
    }

    /// Whether it is supervised and has not exited.
    pub(crate) fn is_running(&self) -> bool {
        self.lock().is_ok_and(|child| child.is_some()) && self.exit_status().is_none()
    }

    /// Kills it at once with SIGKILL, as a crash would, and reaps it. Nothing happens when it is not running.
    pub(crate) fn kill(&self) -> io::Result<()> {
        self.end(|mut child| {
            child.kill()?;
            child.wait().map(drop)
        })
    }

    /// Asks it to stop (SIGTERM) and kills it when it has not within `grace`.
    pub(crate) fn stop(&self, grace: Duration) -> io::Result<()> {
        self.end(|child| stop_child(child, grace))
    }

    /// Sends `signal` (a `kill` option such as `-STOP`), holding its handle so that a concurrent restart cannot
    /// recycle the pid in between.
    pub(crate) fn signal(&self, signal: &str) -> io::Result<()> {
        let child = self.lock()?;
        let child = child.as_ref().ok_or_else(|| io::Error::other(format!("{} is not running", self.name)))?;
        send_signal(signal, &child.id().to_string())
    }

    fn end(&self, how: impl FnOnce(Child) -> io::Result<()>) -> io::Result<()> {
        let mut child = self.lock()?;
        if let Some(child) = child.take() {
            how(child)?;
            if let Some(pid_file) = &self.pid_file {
                let _ = fs::remove_file(pid_file);
            }
        }
        Ok(())
    }
}

/// Asks `child` to stop (SIGTERM) and kills it when it has not within `grace`.
pub(crate) fn stop_child(mut child: Child, grace: Duration) -> io::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let _ = send_signal("-TERM", &child.id().to_string());
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    child.wait()?;
    Ok(())
}
