//! A real browser for the end-to-end tests: Debian's headless Chromium through chromedriver (fantoccini), and
//! the waits and reads the page tests share.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::cookies::Cookie;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// A chromedriver on a free loopback port, stopped with its browsers when dropped.
pub struct ChromeDriver {
    process: Child,
    port: u16,
}

/// Drivers alive in this test process.
static LIVE_DRIVERS: AtomicUsize = AtomicUsize::new(0);

impl ChromeDriver {
    pub fn start() -> ChromeDriver {
        LIVE_DRIVERS.fetch_add(1, Ordering::SeqCst);
        Self::launch()
    }

    /// A driver started once no other is alive, for tests that have time. Two Chromiums starting at once on a
    /// small machine slow each other's pages by seconds, which a test whose page must show something within a
    /// few seconds of its setup cannot afford (the sale page's countdown to an opening 5 s away). Waits a moment
    /// first, so that such a test started at the same time claims the machine first; gives up waiting after two
    /// minutes.
    pub async fn start_when_alone() -> ChromeDriver {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let deadline = Instant::now() + Duration::from_secs(120);
        while LIVE_DRIVERS.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            if Instant::now() > deadline {
                LIVE_DRIVERS.fetch_add(1, Ordering::SeqCst);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self::launch()
    }

    fn launch() -> ChromeDriver {
        let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("chromedriver is not installed: run .ci/install (Debian packages chromium and chromium-driver)");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // A process group of its own, which the browsers it starts join: dropping the driver ends them too, even
        // when a failing test never closed its session (they would otherwise outlive the run and slow the next).
        let process = Command::new(binary)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        ChromeDriver { process, port }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The group's id is the driver's pid.
        let group = format!("-{}", self.process.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.process.kill();
        let _ = self.process.wait();
        LIVE_DRIVERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A Chromium profile folder of its own for `test`: two browsers in one run cannot share one.
pub fn profile_dir(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("seckill-chromium-{}-{test}", std::process::id()))
}

/// A headless Chromium session (1000 × 700) with its profile in `profile`.
pub async fn browser(driver: &ChromeDriver, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1000,700", format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a headless Chromium session")
}

/// Waits until `check` holds, polling; panics with `what` after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the element with `id`, or empty when there is none.
pub async fn text_of(client: &Client, id: &str) -> String {
    match client.find(Locator::Id(id)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Signs the browser in with `cookie` (`name=value`) for `origin` and opens `page` there. A cookie can only be
/// set for the page's origin, so `landing` (any path of the origin) is visited first. Domain and SameSite are
/// named because fantoccini sends unset ones as null and None, which Chromium refuses for a plain HTTP cookie.
pub async fn open_with_cookie(client: &Client, origin: &str, landing: &str, cookie: &str, page: &str) {
    client.goto(&format!("{origin}{landing}")).await.unwrap();
    let cookie = Cookie::parse(format!("{cookie}; Path=/; Domain=127.0.0.1; SameSite=Lax")).unwrap();
    client.add_cookie(cookie).await.unwrap();
    client.goto(&format!("{origin}{page}")).await.unwrap();
}

/// Writes a screenshot of the page to `target/<file_name>`, for a person to look at.
pub async fn save_screenshot(client: &Client, file_name: &str) {
    let screenshot = client.screenshot().await.unwrap();
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join(file_name), &screenshot).unwrap();
}
