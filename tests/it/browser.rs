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
        text_of(&client, "countdown").await.contains("Opens in")
    })
    .await;
    assert!(!buy_button_enabled(&client).await, "no buying before the sale opens");
    eventually(Duration::from_secs(20), "the sale to open", || buy_button_enabled(&client)).await;
    client.find(Locator::Id("buy")).await.unwrap().click().await.unwrap();
    eventually(Duration::from_secs(10), "the outcome", || async {
        text_of(&client, "result").await.contains("秒杀成功")
    })
    .await;
    eventually(Duration::from_secs(5), "the stock after the buy", || async {
        text_of(&client, "stock").await == "库存 · Stock: 2"
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

    // An item that does not exist: said in words, with the way back, never a raw error.
    client.goto(&format!("http://{}/seckill/424242/detail", served.address)).await.unwrap();
    eventually(Duration::from_secs(10), "the unknown item", || async {
        text_of(&client, "name").await == "找不到这个商品 · No such item"
    })
    .await;
    assert_eq!(text_of(&client, "back").await, "返回列表 · Back to the list");

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

/// Clicks the element `id` once it is there and enabled.
async fn click_when_enabled(client: &Client, id: &str) {
    eventually(Duration::from_secs(10), id, || async {
        match client.find(Locator::Id(id)).await {
            Ok(element) => element.is_enabled().await.unwrap_or(false),
            Err(_) => false,
        }
    })
    .await;
    client.find(Locator::Id(id)).await.unwrap().click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_user_signs_in_from_a_page_then_exchanges_and_draws() {
    use seckill::exchange::{Exchange, NewGift};
    use seckill::lottery::Lottery;

    let db = migrated_db().await;
    let exchange = Exchange::new(db.pool().clone());
    exchange.grant(7, 100, "welcome").await.unwrap();
    let mug = exchange.create_gift(&NewGift { name: "马克杯 Mug".into(), cost: 30, stock: 5 }).await.unwrap().gift_id;
    let lottery = Lottery::new(db.pool().clone());
    let campaign = crate::common::open_campaign(&lottery, "笔 Pen", 5).await;
    let cookie = crate::common::http::user_cookies();
    let app = seckill::app::front_door()
        .development_sign_in(cookie.clone())
        .router()
        .merge(seckill::exchange::http::router(exchange.clone(), cookie.clone()))
        .merge(seckill::lottery::http::router(lottery, cookie));
    let served = serve(app).await;
    let driver = ChromeDriver::start_when_alone().await;
    let profile = profile_dir("sign-in");
    let client = browser(&driver, &profile).await;
    let origin = format!("http://{}", served.address);

    // Signed out, the exchange's page says so and links to the sign-in, which comes back to it.
    client.goto(&format!("{origin}/exchange")).await.unwrap();
    click_when_enabled(&client, "sign-in").await;
    eventually(Duration::from_secs(10), "the sign-in page", || async {
        client.current_url().await.is_ok_and(|url| url.path() == "/signin")
    })
    .await;
    client.find(Locator::Id("user")).await.unwrap().send_keys("7").await.unwrap();
    client.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    eventually(Duration::from_secs(10), "user 7's balance", || async { text_of(&client, "balance").await == "100" })
        .await;
    click_when_enabled(&client, &format!("exchange-{mug}")).await;
    eventually(Duration::from_secs(10), "the exchange", || async {
        text_of(&client, "result").await.contains("兑换成功")
    })
    .await;

    // From the landing page to the campaign by its id, signed in already: a draw.
    client.goto(&format!("{origin}/")).await.unwrap();
    let form = client.find(Locator::Css("form[data-path] input")).await.unwrap();
    form.send_keys(&format!("{campaign}\n")).await.unwrap();
    click_when_enabled(&client, "draw").await;
    eventually(Duration::from_secs(10), "the prize", || async { text_of(&client, "result").await.contains("笔 Pen") })
        .await;
    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);

    let count = |sql: &'static str| {
        let pool = db.pool().clone();
        async move {
            let mut conn = pool.get_conn().await.unwrap();
            mysql_async::prelude::Queryable::query_first::<i64, _>(&mut conn, sql).await.unwrap().unwrap_or(0)
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM credit_exchange WHERE user_id = 7").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM lottery_draw WHERE user_id = 7").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM credit_exchange").await, 1, "no one else was signed in");
}
