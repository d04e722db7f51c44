//! The sale page in a real browser (Debian's headless Chromium through chromedriver): the countdown runs to
//! the opening, the buy button sells, and after a reload a second click is a repeat. Writes a screenshot to
//! `target/e2e-sale-page.png`.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common::http::serve;
use crate::common::{item_with_window, migrated_db, phone, service, success_rows};

/// A chromedriver on a free loopback port, stopped when dropped.
struct ChromeDriver {
    process: Child,
    port: u16,
}

impl ChromeDriver {
    fn start() -> ChromeDriver {
        let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists())
            .expect("chromedriver is not installed: run .ci/install (Debian packages chromium and chromium-driver)");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let process = Command::new(binary)
            .arg(format!("--port={port}"))
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
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn browser(driver: &ChromeDriver, profile: &std::path::Path) -> Client {
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
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
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

async fn text_of(client: &Client, id: &str) -> String {
    match client.find(Locator::Id(id)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn buy_button_enabled(client: &Client) -> bool {
    match client.find(Locator::Id("buy")).await {
        Ok(button) => button.is_enabled().await.unwrap_or(false),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_buyer_counts_down_buys_and_a_second_click_after_reload_is_a_repeat() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = item_with_window(&service, 3, chrono::Duration::seconds(5), chrono::Duration::hours(1)).await;
    let served = serve(seckill::http::router(service)).await;
    let driver = ChromeDriver::start();
    let profile = std::env::temp_dir().join(format!("seckill-chromium-{}", std::process::id()));
    let client = browser(&driver, &profile).await;
    let url = format!("http://{}/seckill/{}/detail", served.address, item.seckill_id);

    client.goto(&url).await.unwrap();
    let input = client.find(Locator::Id("phone-input")).await.unwrap();
    input.send_keys(&phone(1).to_string()).await.unwrap();
    client.find(Locator::Id("phone-submit")).await.unwrap().click().await.unwrap();

    eventually(Duration::from_secs(5), "the countdown", || async {
        text_of(&client, "countdown").await.starts_with("Opens in")
    })
    .await;
    assert!(!buy_button_enabled(&client).await, "no buying before the sale opens");
    eventually(Duration::from_secs(20), "the sale to open", || buy_button_enabled(&client)).await;
    client.find(Locator::Id("buy")).await.unwrap().click().await.unwrap();
    eventually(Duration::from_secs(10), "the outcome", || async {
        text_of(&client, "result").await.contains("秒杀成功")
    })
    .await;

    let screenshot = client.screenshot().await.unwrap();
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("e2e-sale-page.png"), &screenshot).unwrap();

    client.refresh().await.unwrap();
    eventually(Duration::from_secs(10), "the buy button after reload", || buy_button_enabled(&client)).await;
    client.find(Locator::Id("buy")).await.unwrap().click().await.unwrap();
    eventually(Duration::from_secs(10), "the repeat", || async {
        text_of(&client, "result").await.contains("重复秒杀")
    })
    .await;

    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert_eq!(success_rows(db.pool(), item.seckill_id).await, 1);
}
