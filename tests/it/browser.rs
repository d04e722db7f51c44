//! The sale page in a real browser (Debian's headless Chromium through chromedriver): the countdown runs to
//! the opening, the buy button sells, and after a reload a second click is a repeat; once the sale is over the
//! page shows the buyer their own record. Writes a screenshot to `target/e2e-sale-page.png`.

use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::common::browser::{
    ChromeDriver, browser, eventually, open_with_cookie, profile_dir, save_screenshot, text_of,
};
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

/// "秒杀结束" speaks of the item: a page that hears it (from the balancer, which answers closed items without
/// asking who buys, or from its own clock once the sale is over) shows the buyer what they hold, and shows a
/// buyer who holds nothing nothing more.
#[tokio::test(flavor = "multi_thread")]
async fn once_the_sale_is_over_the_page_shows_the_buyer_their_own_record() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = item_with_window(&service, 5, chrono::Duration::hours(-1), chrono::Duration::seconds(2)).await;
    let token = service.signer().sign(item.seckill_id, phone(1), chrono::Utc::now());
    assert!(service.execute(item.seckill_id, phone(1), &token).await.is_success());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let served = serve(seckill::seckill::http::router(service)).await;
    let driver = ChromeDriver::start();
    let profile = profile_dir("sale-over");
    let client = browser(&driver, &profile).await;
    let origin = format!("http://{}", served.address);
    let detail = format!("/seckill/{}/detail", item.seckill_id);

    open_with_cookie(&client, &origin, "/seckill/list", &format!("killPhone={}", phone(1)), &detail).await;
    eventually(Duration::from_secs(10), "the buyer's own record", || async {
        text_of(&client, "mine").await.contains("You hold one")
    })
    .await;
    assert!(text_of(&client, "countdown").await.contains("秒杀结束"));

    open_with_cookie(&client, &origin, "/seckill/list", &format!("killPhone={}", phone(2)), &detail).await;
    eventually(Duration::from_secs(10), "the end", || async {
        text_of(&client, "countdown").await.contains("秒杀结束")
    })
    .await;
    // The record is asked for as the page learns the end; give the answer time to arrive before reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(text_of(&client, "mine").await, "", "a buyer without a unit is shown none");

    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
}
