//! The lottery's HTTP side with a real client against a served router: the API end to end (a draw, a repeat that
//! answers the first result and records nothing, "all drawn" answered without reaching the lanes, closed windows
//! and unknown campaigns as outcomes), a crowd drawing at once told exactly what the database holds, a JSON 4xx
//! for every missing or bad input (and for a draw from another site's page) with nothing written, a JSON 503 for
//! an outage and for a draw in doubt, the status cache, and the page in headless Chromium. Writes a screenshot to
//! `target/e2e-lottery-page.png`.

use std::time::Duration;

use chrono::Utc;
use fantoccini::Locator;
use hyper::header::COOKIE;
use hyper::{Method, StatusCode};
use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use seckill::database::ConnectOptions;
use seckill::http::{SignedUserCookie, USER_COOKIE};
use seckill::lottery::http::{LotteryHttp, router};
use seckill::lottery::{Campaign, Lottery, LotteryBooks, NewCampaign, NewTier};
use serde_json::Value;

use crate::common::browser::{
    ChromeDriver, browser, eventually, open_with_cookie, profile_dir, save_screenshot, text_of,
};
use crate::common::http::{Answer, JSON_UTF8, assert_error, call, serve, signed_in, user_cookies};
use crate::common::{RowLock, connection_waiting_behind, count, migrated_db};

/// The router over `lottery` with `status.json` read afresh for every request, so answers show each draw at once.
fn exact_router(lottery: Lottery) -> axum::Router {
    LotteryHttp::new(lottery, user_cookies()).status_max_age(Duration::ZERO).router()
}

fn tier(name: &str, stock: u32, weight: u32) -> NewTier {
    NewTier { name: name.into(), stock, weight, value_fen: 0 }
}

/// A campaign whose window is [now + start, now + end), one draw per user, no blank share: every draw wins while
/// prizes are left.
async fn campaign(lottery: &Lottery, start: chrono::Duration, end: chrono::Duration, tiers: Vec<NewTier>) -> Campaign {
    let now = Utc::now();
    lottery.create_campaign(&NewCampaign::new("春节抽奖 Spring draw", now + start, now + end, tiers)).await.unwrap()
}

async fn open_campaign(lottery: &Lottery, tiers: Vec<NewTier>) -> Campaign {
    campaign(lottery, chrono::Duration::hours(-1), chrono::Duration::hours(1), tiers).await
}

/// `GET path` as `user`.
async fn get_as(address: std::net::SocketAddr, path: &str, user: i64) -> Answer {
    call(address, Method::GET, path, &[(COOKIE.as_str(), &signed_in(user))], Vec::new()).await
}

/// `POST /lottery/{campaign}/draw` as `user`.
async fn draw(address: std::net::SocketAddr, campaign: &str, user: i64) -> Answer {
    let path = format!("/lottery/{campaign}/draw");
    call(address, Method::POST, &path, &[(COOKIE.as_str(), &signed_in(user))], Vec::new()).await
}

async fn assert_books(pool: &Pool, campaign_id: i64) -> LotteryBooks {
    LotteryBooks::check(pool, campaign_id).await.unwrap_or_else(|problem| panic!("{problem}"))
}

/// A decided draw's data: outcome, draw id, prize, repeat.
fn decided(answer: &Answer) -> (String, Option<i64>, Option<String>, bool) {
    assert_eq!((answer.status, answer.json["success"].as_bool()), (StatusCode::OK, Some(true)), "{}", answer.text);
    assert_eq!(answer.content_type, JSON_UTF8);
    let data = &answer.json["data"];
    (
        data["outcome"].as_str().unwrap().to_string(),
        data["drawId"].as_i64(),
        data["prize"].as_str().map(str::to_string),
        data["repeat"].as_bool().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_draws_once_per_user_and_answers_all_drawn_from_memory() {
    let db = migrated_db().await;
    let lottery = Lottery::new(db.pool().clone());
    let spring =
        open_campaign(&lottery, vec![tier("金马克杯 Gold mug", 1, 1), tier("笔 Pen", 2, 3), tier("伞 Umbrella", 0, 1)])
            .await;
    let id = spring.campaign_id.to_string();
    let served = serve(exact_router(lottery.clone())).await;
    let at = served.address;

    let status = call(at, Method::GET, &format!("/lottery/{id}/status.json"), &[], Vec::new()).await;
    assert_eq!((status.status, status.content_type.as_str()), (StatusCode::OK, JSON_UTF8), "no user needed");
    let data = &status.json["data"];
    assert_eq!(data["campaignId"], spring.campaign_id);
    assert_eq!((data["name"].as_str(), data["phase"].as_str()), (Some("春节抽奖 Spring draw"), Some("open")));
    assert_eq!((data["prizesLeft"].as_i64(), data["allDrawn"].as_bool()), (Some(3), Some(false)));
    assert_eq!((data["drawsPerUser"].as_i64(), data["draws"].as_i64()), (Some(1), Some(0)));
    assert_eq!(data["startTime"], spring.start_time.timestamp_millis());
    let tiers: Vec<_> =
        data["tiers"].as_array().unwrap().iter().map(|t| (t["name"].clone(), t["stock"].clone())).collect();
    assert_eq!(
        tiers,
        [("金马克杯 Gold mug".into(), 1.into()), ("笔 Pen".into(), 2.into()), ("伞 Umbrella".into(), 0.into())]
    );
    assert!(!status.text.contains("\"r\""), "a draw's random number is never shown: {}", status.text);

    let (outcome, draw_id, prize, repeat) = decided(&draw(at, &id, 1).await);
    assert_eq!((outcome.as_str(), repeat), ("won", false));
    let (draw_id, prize) = (draw_id.unwrap(), prize.unwrap());
    let again = decided(&draw(at, &id, 1).await);
    assert_eq!(again, ("won".into(), Some(draw_id), Some(prize.clone()), true), "the first result, flagged repeat");
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM lottery_draw").await, 1, "the repeat recorded nothing");

    let mine = get_as(at, &format!("/lottery/{id}/mine.json"), 1).await;
    assert_eq!((mine.status, mine.content_type.as_str()), (StatusCode::OK, JSON_UTF8));
    assert_eq!(
        (mine.json["data"]["userId"].as_i64(), mine.json["data"]["campaignId"].as_i64()),
        (Some(1), Some(spring.campaign_id))
    );
    let draws = mine.json["data"]["draws"].as_array().unwrap();
    assert_eq!(draws.len(), 1);
    assert_eq!((draws[0]["drawId"].as_i64(), draws[0]["drawNo"].as_i64()), (Some(draw_id), Some(1)));
    assert_eq!(draws[0]["prize"].as_str(), Some(prize.as_str()));
    assert!(!mine.text.contains("\"r\""), "a draw's random number is never shown: {}", mine.text);
    assert_eq!(get_as(at, &format!("/lottery/{id}/mine.json"), 2).await.json["data"]["draws"], Value::Array(vec![]));

    // Two more users take the last two prizes; the campaign is all drawn.
    for user in [2, 3] {
        assert_eq!(decided(&draw(at, &id, user).await).0, "won");
    }
    let status = call(at, Method::GET, &format!("/lottery/{id}/status.json"), &[], Vec::new()).await;
    let data = &status.json["data"];
    assert_eq!((data["prizesLeft"].as_i64(), data["allDrawn"].as_bool()), (Some(0), Some(true)));
    assert_eq!((data["draws"].as_i64(), data["wins"].as_i64()), (Some(3), Some(3)));

    // The rest of the crowd is turned away from memory: their draws never reach the lanes, so never the database.
    let before = lottery.stats();
    for user in 4..=10 {
        assert_eq!(decided(&draw(at, &id, user).await), ("all_drawn".into(), None, None, false));
    }
    assert_eq!(lottery.stats().requests, before.requests, "all drawn is answered before the lanes");
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM lottery_draw").await, 3, "nothing recorded for them");
    // A winner asking again hears their own win, never "all drawn" (nothing recorded for them).
    assert_eq!(decided(&draw(at, &id, 1).await), ("won".into(), Some(draw_id), Some(prize.clone()), true));

    // Closed windows and unknown campaigns are outcomes too.
    let early =
        campaign(&lottery, chrono::Duration::hours(1), chrono::Duration::hours(2), vec![tier("mug", 1, 1)]).await;
    let late =
        campaign(&lottery, chrono::Duration::hours(-2), chrono::Duration::hours(-1), vec![tier("mug", 1, 1)]).await;
    assert_eq!(decided(&draw(at, &early.campaign_id.to_string(), 1).await).0, "not_started");
    assert_eq!(decided(&draw(at, &late.campaign_id.to_string(), 1).await).0, "ended");
    assert_eq!(decided(&draw(at, "999999", 1).await).0, "unknown_campaign");
    let early_status =
        call(at, Method::GET, &format!("/lottery/{}/status.json", early.campaign_id), &[], Vec::new()).await;
    assert_eq!(early_status.json["data"]["phase"], "not_started");

    let books = assert_books(db.pool(), spring.campaign_id).await;
    assert_eq!((books.draws, books.wins, books.messages), (3, 3, 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_bad_identity_and_campaign_ids_are_refused_and_write_nothing() {
    let db = migrated_db().await;
    let lottery = Lottery::new(db.pool().clone());
    let spring = open_campaign(&lottery, vec![tier("mug", 5, 1)]).await;
    let id = spring.campaign_id.to_string();
    let served = serve(exact_router(lottery.clone())).await;
    let at = served.address;
    let (draw_path, mine_path) = (format!("/lottery/{id}/draw"), format!("/lottery/{id}/mine.json"));

    let other_secret = SignedUserCookie::new("another-secret-0123456789").unwrap().cookie_value(1);
    let tag_of_user_1 = user_cookies().cookie_value(1).split_once('.').unwrap().1.to_string();
    let forged_cookies = [
        format!("{USER_COOKIE}={other_secret}"),
        format!("{USER_COOKIE}=2.{tag_of_user_1}"),
        format!("{USER_COOKIE}=1"),
        // The exchange's old cookie name signs no one in.
        format!("exchangeUser={}", user_cookies().cookie_value(1)),
    ];
    for (method, path) in [(Method::GET, &mine_path), (Method::POST, &draw_path)] {
        let missing = call(at, method.clone(), path, &[("Cookie", "killPhone=13800138000")], Vec::new()).await;
        assert_error(&missing, StatusCode::UNAUTHORIZED, &format!("{path} without the cookie"));
        assert!(missing.json["error"].as_str().unwrap().contains("sign in"), "{}", missing.text);
        for forged in &forged_cookies {
            let answer = call(at, method.clone(), path, &[("Cookie", forged)], Vec::new()).await;
            assert_error(&answer, StatusCode::UNAUTHORIZED, &format!("{path} with {forged}"));
        }
    }

    // A signed-in user's browser on another site's page: the browser says so, and the draw is refused.
    let me = signed_in(1);
    let cross_site =
        call(at, Method::POST, &draw_path, &[("Cookie", &me), ("Sec-Fetch-Site", "cross-site")], vec![]).await;
    assert_error(&cross_site, StatusCode::FORBIDDEN, "a draw from another site's page");

    // Not an id at all is a 400, as for a seckill item; 0 is an id that names nothing, a 404.
    for (not_a_campaign, status) in [
        ("abc", StatusCode::BAD_REQUEST),
        ("0", StatusCode::NOT_FOUND),
        ("-1", StatusCode::BAD_REQUEST),
        ("1.5", StatusCode::BAD_REQUEST),
        ("99999999999999999999", StatusCode::BAD_REQUEST),
        ("%E7%A4%BC", StatusCode::BAD_REQUEST),
    ] {
        let answer = draw(at, not_a_campaign, 1).await;
        assert_error(&answer, status, &format!("draw in {not_a_campaign:?}"));
        for read in ["status.json", "mine.json"] {
            let answer = get_as(at, &format!("/lottery/{not_a_campaign}/{read}"), 1).await;
            assert_error(&answer, status, &format!("{read:?} of {not_a_campaign:?}"));
        }
        // A browser's page, with or without the trailing slash: the error in words, with the way home.
        for page in [format!("/lottery/{not_a_campaign}"), format!("/lottery/{not_a_campaign}/")] {
            let answer = call(at, Method::GET, &page, &[], Vec::new()).await;
            assert_eq!(answer.status, status, "{page}");
            assert!(answer.content_type.starts_with("text/html"), "{page}: {}", answer.content_type);
            assert!(
                answer.text.contains("There is no such page") && answer.text.contains("href=\"/\""),
                "{}",
                answer.text
            );
        }
    }
    let unknown = call(at, Method::GET, "/lottery/999999/status.json", &[], Vec::new()).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "an unknown campaign's status");
    let oversized = call(at, Method::POST, &draw_path, &[("Cookie", &signed_in(1))], vec![b'x'; 8192]).await;
    assert_error(&oversized, StatusCode::PAYLOAD_TOO_LARGE, "a body over 4 KiB");

    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM lottery_draw").await, 0, "nothing drawn");
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM message_outbox").await, 0, "nothing to deliver");
    assert_eq!(lottery.status(spring.campaign_id).await.unwrap().unwrap().prizes_left, 5);
    // And the user still has their draw once the request is right, from the lottery's own page too.
    let same_origin =
        call(at, Method::POST, &draw_path, &[("Cookie", &me), ("Sec-Fetch-Site", "same-origin")], vec![]).await;
    assert_eq!(decided(&same_origin).0, "won");
}

/// A crowd larger than the prizes draws at once through the API: every prize is won exactly once, and what each
/// client was told is what the database holds, draw for draw.
#[tokio::test(flavor = "multi_thread")]
async fn a_crowd_drawing_at_once_is_told_exactly_what_the_database_holds() {
    const USERS: i64 = 300;
    let db = migrated_db().await;
    let lottery = Lottery::new(db.pool().clone());
    let spring = open_campaign(&lottery, vec![tier("金马克杯 Gold mug", 20, 1), tier("笔 Pen", 30, 2)]).await;
    let id = spring.campaign_id.to_string();
    let served = serve(router(lottery.clone(), user_cookies())).await;
    let at = served.address;

    let clients = (1..=USERS).map(|user| {
        let id = id.clone();
        tokio::spawn(async move { (user, draw(at, &id, user).await) })
    });
    let mut told = std::collections::HashMap::new();
    for client in clients {
        let (user, answer) = client.await.unwrap();
        told.insert(user, decided(&answer));
    }
    let wins = told.values().filter(|(outcome, ..)| outcome == "won").count();
    assert_eq!(wins, 50, "every prize won once: no prize is left and none is sold twice");

    let mut conn = db.pool().get_conn().await.unwrap();
    let recorded: Vec<(i64, i64, Option<String>)> = conn
        .exec(
            "SELECT d.user_id, d.draw_id, t.name FROM lottery_draw d LEFT JOIN lottery_tier t ON t.tier_id = d.tier_id \
              WHERE d.campaign_id = ?",
            (spring.campaign_id,),
        )
        .await
        .unwrap();
    let recorded: std::collections::HashMap<i64, (i64, Option<String>)> =
        recorded.into_iter().map(|(user, draw_id, prize)| (user, (draw_id, prize))).collect();
    for (user, (outcome, draw_id, prize, repeat)) in &told {
        assert!(!repeat, "user {user} drew once");
        match outcome.as_str() {
            "won" | "no_prize" => {
                assert_eq!(
                    recorded.get(user),
                    Some(&(draw_id.unwrap(), prize.clone())),
                    "user {user} was told {outcome}"
                )
            }
            "all_drawn" => assert_eq!(recorded.get(user), None, "user {user} was told all drawn: nothing recorded"),
            other => panic!("user {user} was told {other}"),
        }
    }
    let told_recorded = told.values().filter(|(outcome, ..)| outcome != "all_drawn").count();
    assert_eq!(recorded.len(), told_recorded, "every recorded draw was told to its user");
    let books = assert_books(db.pool(), spring.campaign_id).await;
    assert_eq!((books.wins, books.units_won(), books.messages), (50, 50, 50));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_is_a_json_503() {
    // Nothing listens on port 1: every connection attempt is refused at once.
    let pool = ConnectOptions::new("mysql://root@127.0.0.1:1/none").build_pool().unwrap();
    let served = serve(router(Lottery::new(pool), user_cookies())).await;
    for (method, path) in [
        (Method::GET, "/lottery/1/status.json"),
        (Method::GET, "/lottery/1/mine.json"),
        (Method::POST, "/lottery/1/draw"),
    ] {
        let answer = call(served.address, method, path, &[("Cookie", &signed_in(1))], Vec::new()).await;
        assert_error(&answer, StatusCode::SERVICE_UNAVAILABLE, path);
        assert!(!answer.text.contains("127.0.0.1:1"), "no internal detail leaks: {}", answer.text);
    }
}

/// A draw whose connection dies after the CALL was sent: in doubt over HTTP (503, pointing at `mine.json`), which
/// then tells what the database holds; the user's draw is still theirs when it did not go through.
#[tokio::test(flavor = "multi_thread")]
async fn a_draw_in_doubt_is_a_503_and_mine_json_tells_what_happened() {
    let db = migrated_db().await;
    let lottery = Lottery::new(db.pool().clone());
    let spring = open_campaign(&lottery, vec![tier("mug", 5, 1)]).await;
    let id = spring.campaign_id.to_string();
    let served = serve(exact_router(lottery.clone())).await;
    let at = served.address;

    let lock = RowLock::campaign(db.pool(), spring.campaign_id).await;
    let in_flight = tokio::spawn({
        let id = id.clone();
        async move { draw(at, &id, 1).await }
    });
    let victim = connection_waiting_behind(db.pool(), &lock, "%FROM lottery_campaign%FOR UPDATE%").await;
    db.pool().get_conn().await.unwrap().query_drop(format!("KILL {victim}")).await.unwrap();
    let answer = in_flight.await.unwrap();
    lock.release().await;

    assert_error(&answer, StatusCode::SERVICE_UNAVAILABLE, "in doubt");
    let error = answer.json["error"].as_str().unwrap();
    assert!(error.contains(&format!("/lottery/{id}/mine.json")), "{error}");

    // Killed while waiting for the lock, the batch never decided: mine.json says so, and the draw is still theirs.
    let mine = get_as(at, &format!("/lottery/{id}/mine.json"), 1).await;
    assert_eq!(mine.json["data"]["draws"], Value::Array(vec![]), "{}", mine.text);
    let (outcome, draw_id, _, repeat) = decided(&draw(at, &id, 1).await);
    assert_eq!((outcome.as_str(), repeat), ("won", false));
    let mine = get_as(at, &format!("/lottery/{id}/mine.json"), 1).await;
    assert_eq!(mine.json["data"]["draws"][0]["drawId"].as_i64(), draw_id);
    let books = assert_books(db.pool(), spring.campaign_id).await;
    assert_eq!((books.draws, books.wins), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn status_json_is_read_at_most_once_per_max_age() {
    let db = migrated_db().await;
    let lottery = Lottery::new(db.pool().clone());
    let spring = open_campaign(&lottery, vec![tier("mug", 5, 1)]).await;
    let path = format!("/lottery/{}/status.json", spring.campaign_id);
    let served =
        serve(LotteryHttp::new(lottery, user_cookies()).status_max_age(Duration::from_secs(3600)).router()).await;
    let at = served.address;
    assert_eq!(call(at, Method::GET, &path, &[], Vec::new()).await.json["data"]["prizesLeft"], 5);
    // A change behind the router's back is not seen while the answer is fresh: the crowd reads memory.
    let mut conn = db.pool().get_conn().await.unwrap();
    conn.exec_drop("UPDATE lottery_tier SET stock = 4 WHERE campaign_id = ?", (spring.campaign_id,)).await.unwrap();
    let answers = futures_util::future::join_all((0..20).map(|_| call(at, Method::GET, &path, &[], Vec::new()))).await;
    assert!(answers.iter().all(|answer| answer.json["data"]["prizesLeft"] == 5), "{:?}", answers[0]);
    // An unknown campaign is remembered as one too, and still a 404.
    for _ in 0..2 {
        let unknown = call(at, Method::GET, "/lottery/999999/status.json", &[], Vec::new()).await;
        assert_error(&unknown, StatusCode::NOT_FOUND, "an unknown campaign");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_assets_are_served_with_their_charset() {
    let db = migrated_db().await;
    let served = serve(router(Lottery::new(db.pool().clone()), user_cookies())).await;
    let at = served.address;
    let page = call(at, Method::GET, "/lottery/7", &[], Vec::new()).await;
    assert_eq!((page.status, page.content_type.as_str()), (StatusCode::OK, "text/html; charset=utf-8"));
    assert!(page.text.contains("抽奖") && page.text.contains("src=\"assets/app.js?v="), "{}", page.text);
    let in_folder = call(at, Method::GET, "/lottery/7/", &[], Vec::new()).await;
    assert!(in_folder.text.contains("src=\"../assets/app.js?v="), "{}", in_folder.text);
    let script = call(at, Method::GET, "/lottery/assets/app.js", &[], Vec::new()).await;
    assert_eq!(script.content_type, "text/javascript; charset=utf-8");
    assert!(script.text.contains("/draw"));
    let style = call(at, Method::GET, "/lottery/assets/style.css", &[], Vec::new()).await;
    assert_eq!(style.content_type, "text/css; charset=utf-8");
    let unknown = call(at, Method::GET, "/lottery/assets/secret.txt", &[], Vec::new()).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "an unknown asset");
}

/// Opens the campaign's page at `origin` in `client`, signed in as `user`.
async fn open_signed_in(client: &fantoccini::Client, origin: &str, campaign_id: i64, user: i64) {
    let page = format!("/lottery/{campaign_id}");
    open_with_cookie(client, origin, &format!("{page}/status.json"), &signed_in(user), &page).await;
}

/// Clicks the Draw button once it is enabled (within 15 s).
async fn click_draw(client: &fantoccini::Client) {
    eventually(Duration::from_secs(15), "the Draw button", || async {
        match client.find(Locator::Id("draw")).await {
            Ok(button) => button.is_enabled().await.unwrap_or(false),
            Err(_) => false,
        }
    })
    .await;
    client.find(Locator::Id("draw")).await.unwrap().click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_clicks_draw_in_the_browser_when_it_opens_and_sees_the_prize_and_their_draw() {
    let db = migrated_db().await;
    let lottery = Lottery::new(db.pool().clone());
    let served = serve(exact_router(lottery.clone())).await;
    let driver = ChromeDriver::start_when_alone().await;
    let profile = profile_dir("lottery-page");
    let client = browser(&driver, &profile).await;
    // Opens in a few seconds: time for the page to show it not started, short enough for a test.
    let tiers = vec![tier("金马克杯 Gold mug", 1, 1), tier("笔 Pen", 2, 3)];
    let spring = campaign(&lottery, chrono::Duration::seconds(6), chrono::Duration::hours(1), tiers).await;
    open_signed_in(&client, &format!("http://{}", served.address), spring.campaign_id, 1).await;

    eventually(Duration::from_secs(10), "the campaign", || async {
        text_of(&client, "name").await == "春节抽奖 Spring draw" && text_of(&client, "prizes-left").await == "3"
    })
    .await;
    let not_started = text_of(&client, "phase").await;
    if Utc::now() < spring.start_time - chrono::Duration::seconds(1) {
        assert!(not_started.contains("Not started"), "{not_started}");
        let button = client.find(Locator::Id("draw")).await.unwrap();
        assert!(!button.is_enabled().await.unwrap(), "no draws before the window opens");
    }
    // The page looks again when the window opens, by the server's clock, and the button comes alive.
    click_draw(&client).await;
    assert!(Utc::now() >= spring.start_time, "the button was enabled before the window opened");
    assert!(text_of(&client, "phase").await.contains("Open"));
    eventually(Duration::from_secs(10), "the outcome", || async {
        text_of(&client, "result").await.contains("恭喜中奖")
    })
    .await;

    // What the page says is what the database holds.
    let held = lottery.my_draws(spring.campaign_id, 1).await.unwrap();
    assert_eq!(held.len(), 1);
    let prize = held[0].prize.clone().expect("a win: no blank share and prizes left");
    assert!(text_of(&client, "result").await.contains(&prize));
    eventually(Duration::from_secs(10), "my draw listed and the prizes left", || async {
        text_of(&client, "mine").await.contains(&prize) && text_of(&client, "prizes-left").await == "2"
    })
    .await;
    let button = client.find(Locator::Id("draw")).await.unwrap();
    assert!(!button.is_enabled().await.unwrap(), "one draw per user: the button is spent");
    assert!(button.text().await.unwrap().contains("已抽过"));
    // The commitment is public; the seed is not, yet.
    assert_eq!(text_of(&client, "commitment").await, spring.commitment.clone().unwrap());
    assert!(text_of(&client, "seed").await.contains("revealed when the campaign is over"));

    // The rest drawn by others: the campaign is over, its seed revealed, and the page checks the commitment and
    // my draw with it, in the browser: the number it computes is the one the database drew with.
    for user in 2..=3 {
        assert!(lottery.draw(spring.campaign_id, user).await.unwrap().is_win());
    }
    let log = lottery.export(spring.campaign_id).await.unwrap().unwrap();
    let mine = log.draws.iter().find(|draw| draw.user == 1).unwrap();
    let attribute = |css: &'static str| {
        let client = client.clone();
        async move {
            match client.find(Locator::Css(css)).await {
                Ok(element) => element.attr("data-check").await.ok().flatten().unwrap_or_default(),
                Err(_) => String::new(),
            }
        }
    };
    eventually(Duration::from_secs(15), "the seed revealed and checked on the page", || async {
        text_of(&client, "seed").await == log.seed
            && attribute("#commitment-check").await == "ok"
            && text_of(&client, "mine").await.contains(&format!("r = {}", mine.r))
    })
    .await;
    let checked = attribute("#mine td.check").await;
    assert!(checked == "ok" || checked == "fell-through", "{checked}");
    client.set_window_size(1000, 1100).await.unwrap();
    save_screenshot(&client, "e2e-lottery-page.png").await;

    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    let books = assert_books(db.pool(), spring.campaign_id).await;
    assert_eq!((books.draws, books.wins), (3, 3));
}

/// The answer to a draw is lost on the way back (the request reached the server, the browser saw a network
/// error): the page does not draw again, it reads my draws, finds the draw there and shows its result.
#[tokio::test(flavor = "multi_thread")]
async fn the_page_settles_a_lost_answer_from_my_draws_without_drawing_again() {
    let db = migrated_db().await;
    let lottery = Lottery::new(db.pool().clone());
    // Two draws per user: a blind retry would be a second draw, which the books would show.
    let now = Utc::now();
    let new_campaign = NewCampaign {
        draws_per_user: 2,
        ..NewCampaign::new(
            "春节抽奖 Spring draw",
            now - chrono::Duration::hours(1),
            now + chrono::Duration::hours(1),
            vec![tier("笔 Pen", 5, 1)],
        )
    };
    let spring = lottery.create_campaign(&new_campaign).await.unwrap();
    let served = serve(exact_router(lottery.clone())).await;
    let driver = ChromeDriver::start_when_alone().await;
    let profile = profile_dir("lottery-page-lost-answer");
    let client = browser(&driver, &profile).await;
    open_signed_in(&client, &format!("http://{}", served.address), spring.campaign_id, 1).await;
    eventually(Duration::from_secs(10), "the campaign", || async { text_of(&client, "prizes-left").await == "5" })
        .await;

    // The first POST goes through to the server, but the page is told the network failed.
    let lose_first_answer = r#"
        window.posts = 0;
        var realFetch = window.fetch;
        window.fetch = function (url, options) {
            var answer = realFetch.apply(this, arguments);
            if (!options || options.method !== 'POST') { return answer; }
            window.posts += 1;
            if (window.posts > 1) { return answer; }
            return answer.then(function () { throw new TypeError('Failed to fetch'); });
        };
    "#;
    client.execute(lose_first_answer, Vec::new()).await.unwrap();
    click_draw(&client).await;
    eventually(Duration::from_secs(15), "the outcome from my draws", || async {
        text_of(&client, "result").await.contains("Won: 笔 Pen")
    })
    .await;
    let posts = client.execute("return window.posts;", Vec::new()).await.unwrap();
    assert_eq!(posts, 1, "the page never sent the draw again by itself");
    eventually(Duration::from_secs(10), "the draw listed", || async {
        text_of(&client, "mine").await.contains("笔 Pen")
    })
    .await;

    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert_eq!(lottery.my_draws(spring.campaign_id, 1).await.unwrap().len(), 1, "one draw, not two");
    let books = assert_books(db.pool(), spring.campaign_id).await;
    assert_eq!((books.draws, books.wins), (1, 1));
}

/// `audit.json` is a full read of a campaign's draws: an instance reads it once, once the seed is revealed, and
/// serves it from memory after (it never changes). Before the reveal it is refused, and an unknown campaign is a
/// 404 that is not remembered.
#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_is_refused_before_the_reveal_then_read_once_and_served_from_memory() {
    let db = migrated_db().await;
    let lottery = Lottery::new(db.pool().clone());
    let spring = open_campaign(&lottery, vec![tier("笔 Pen", 2, 1)]).await;
    let served = serve(exact_router(lottery.clone())).await;
    let path = format!("/lottery/{}/audit.json", spring.campaign_id);
    let early = call(served.address, Method::GET, &path, &[], Vec::new()).await;
    assert_error(&early, StatusCode::FORBIDDEN, "before the reveal");
    let unknown = call(served.address, Method::GET, "/lottery/999/audit.json", &[], Vec::new()).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "no such campaign");

    for user in 1..=2 {
        assert!(lottery.draw(spring.campaign_id, user).await.unwrap().is_win());
    }
    let first = call(served.address, Method::GET, &path, &[], Vec::new()).await;
    assert_eq!((first.status, first.content_type.as_str()), (StatusCode::OK, JSON_UTF8), "{}", first.text);
    let log: seckill::lottery::audit::AuditLog = serde_json::from_value(first.json["data"].clone()).unwrap();
    assert_eq!(seckill::lottery::audit::verify(&log).unwrap().wins, 2);

    // The draws removed by hand behind its back: this instance answers as before, from memory; a new one reads
    // the database, and what it serves no longer verifies.
    let mut conn = db.pool().get_conn().await.unwrap();
    conn.exec_drop("DELETE FROM lottery_draw WHERE campaign_id = ?", (spring.campaign_id,)).await.unwrap();
    let again = call(served.address, Method::GET, &path, &[], Vec::new()).await;
    assert_eq!(again.text, first.text);
    let other = serve(exact_router(lottery.clone())).await;
    let fresh = call(other.address, Method::GET, &path, &[], Vec::new()).await;
    let log: seckill::lottery::audit::AuditLog = serde_json::from_value(fresh.json["data"].clone()).unwrap();
    assert_eq!(seckill::lottery::audit::verify(&log).unwrap_err().what, "tier 1");
}
