//! The sale page in a real browser (Debian's headless Chromium through chromedriver): the countdown runs to
//! the opening, the buy button sells, and after a reload a second click is a repeat. Writes a screenshot to
//! `target/e2e-sale-page.png`.

use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::common::browser::{ChromeDriver, browser, eventually, profile_dir, save_screenshot, text_of};
use crate::common::http::serve;
use crate::common::{item_with_window, migrated_db, phone, service, success_rows};

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
    let served = serve(seckill::seckill::http::router(service)).await;
    let driver = ChromeDriver::start();
    let profile = profile_dir("sale-page");
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

    save_screenshot(&client, "e2e-sale-page.png").await;

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
