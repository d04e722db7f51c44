//! The lottery against real servers: crowds drawing through several app instances on one database, the wheel
//! and its fall-through exact through the procedure itself, "all drawn" answered without
//! the database once known (and shared through Redis), Redis and the database killed mid-campaign. Every test
//! ends with a reconciliation of the database.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use seckill::database::ConnectOptions;
use seckill::local::redis::LocalRedis;
use seckill::local::tcp_proxy::TcpProxy;
use seckill::lottery::randomness::draw_number;
use seckill::lottery::{Campaign, DrawOutcome, Lottery, LotteryBooks, NewCampaign, NewTier, PRIZE_TOPIC};
use seckill::shared_state::bounded_redis::BoundedRedis;
use seckill::testing::TestDatabase;

use crate::common::private_database;
use crate::common::{migrated_db, seckill_command};

fn tier(name: &str, stock: u32, weight: u32) -> NewTier {
    NewTier { name: name.into(), stock, weight, value_fen: 0 }
}

/// A campaign open from an hour ago to an hour ahead.
fn open_campaign(tiers: Vec<NewTier>) -> NewCampaign {
    let now = Utc::now();
    NewCampaign::new("test campaign", now - chrono::Duration::hours(1), now + chrono::Duration::hours(1), tiers)
}

/// A user's recorded draws: (draw_id, draw_no, tier_id), in draw order.
type Recorded = HashMap<i64, Vec<(i64, i32, Option<i64>)>>;

/// One row per recorded draw of the campaign, by user.
async fn draws_by_user(pool: &Pool, campaign_id: i64) -> Recorded {
    let mut conn = pool.get_conn().await.unwrap();
    let rows: Vec<(i64, i64, i32, Option<i64>)> = conn
        .exec(
            "SELECT user_id, draw_id, draw_no, tier_id FROM lottery_draw WHERE campaign_id = ? ORDER BY draw_no",
            (campaign_id,),
        )
        .await
        .unwrap();
    let mut by_user = Recorded::new();
    for (user, draw_id, draw_no, tier_id) in rows {
        by_user.entry(user).or_default().push((draw_id, draw_no, tier_id));
    }
    by_user
}

/// The books balance, and every win's message is exactly the one the gift service expects.
async fn assert_books(pool: &Pool, campaign: &Campaign) -> LotteryBooks {
    let books = LotteryBooks::check(pool, campaign.campaign_id).await.unwrap();
    let mut conn = pool.get_conn().await.unwrap();
    let wins: Vec<(i64, i64, i64, String)> = conn
        .exec(
            "SELECT d.draw_id, d.user_id, d.tier_id, t.name FROM lottery_draw d JOIN lottery_tier t \
             ON t.tier_id = d.tier_id WHERE d.campaign_id = ?",
            (campaign.campaign_id,),
        )
        .await
        .unwrap();
    let messages: Vec<(String, String)> =
        conn.exec("SELECT business_key, payload FROM message_outbox WHERE topic = ?", (PRIZE_TOPIC,)).await.unwrap();
    let by_key: HashMap<String, serde_json::Value> =
        messages.into_iter().map(|(key, payload)| (key, serde_json::from_str(&payload).unwrap())).collect();
    assert_eq!(by_key.len(), wins.len(), "one message per win");
    for (draw_id, user_id, tier_id, prize) in wins {
        let expected = serde_json::json!({"draw_id": draw_id, "campaign_id": campaign.campaign_id,
                                          "user_id": user_id, "tier_id": tier_id, "prize": prize});
        assert_eq!(by_key.get(&draw_id.to_string()), Some(&expected), "the message of draw {draw_id}");
    }
    books
}

/// What callers were told, by user.
#[derive(Default, Debug)]
struct Told {
    outcomes: Vec<(i64, DrawOutcome)>,
}

/// Every answer a caller heard is backed by the database: a win or a loss by its row (the user's only draw,
/// as one draw per user), "all drawn" only once the campaign was all drawn.
fn assert_told_is_recorded(told: &Told, recorded: &Recorded) {
    for (user, outcome) in &told.outcomes {
        let rows = recorded.get(user).map(Vec::as_slice).unwrap_or_default();
        match outcome {
            DrawOutcome::Won { draw_id, tier_id, .. } => {
                assert_eq!(rows, &[(*draw_id, 1, Some(*tier_id))], "user {user} was told {outcome:?}");
            }
            DrawOutcome::NoPrize { draw_id, .. } => {
                assert_eq!(rows, &[(*draw_id, 1, None)], "user {user} was told {outcome:?}");
            }
            DrawOutcome::AllDrawn => {}
            other => panic!("user {user}: unexpected {other:?}"),
        }
    }
}

/// Two app instances on one database: separate pools, separate lanes and memories.
async fn two_instances(db: &TestDatabase) -> [Lottery; 2] {
    let instance = || {
        let pool = ConnectOptions::new(db.url()).max_connections(8).build_pool().unwrap();
        Lottery::new(pool)
    };
    [instance(), instance()]
}

/// Every user draws `tries` times, concurrently, spread over the instances; returns what they were told.
async fn crowd(instances: &[Lottery], campaign_id: i64, users: i64, tries: i64) -> Told {
    let mut calls = Vec::new();
    for attempt in 0..tries {
        for user in 1..=users {
            let lottery = instances[((user + attempt) % instances.len() as i64) as usize].clone();
            calls.push(tokio::spawn(async move { (user, lottery.draw(campaign_id, user).await.unwrap()) }));
        }
    }
    let mut told = Told::default();
    for call in calls {
        told.outcomes.push(call.await.unwrap());
    }
    told
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_larger_than_the_prizes_wins_every_prize_exactly_once_across_instances() {
    let db = migrated_db().await;
    let instances = two_instances(&db).await;
    let campaign = instances[0]
        .create_campaign(&open_campaign(vec![tier("Gold", 5, 1), tier("Silver", 25, 3), tier("Mug", 90, 6)]))
        .await
        .unwrap();
    // 400 users for 120 prizes, each trying three times from both instances at once.
    let told = crowd(&instances, campaign.campaign_id, 400, 3).await;

    let recorded = draws_by_user(db.pool(), campaign.campaign_id).await;
    assert_told_is_recorded(&told, &recorded);
    let books = assert_books(db.pool(), &campaign).await;
    assert_eq!((books.wins, books.units_won()), (120, 120), "every prize won, none twice: {books:?}");
    assert!(recorded.values().all(|rows| rows.len() == 1), "no user drew twice");
    let winners: HashSet<i64> = told.outcomes.iter().filter(|(_, o)| o.is_win()).map(|(user, _)| *user).collect();
    assert_eq!(winners.len(), 120, "every winner was told");
    let losers = recorded.values().filter(|rows| rows[0].2.is_none()).count() as i64;
    assert_eq!(losers, books.draws - 120, "losers' draws are recorded");
    assert!(told.outcomes.iter().any(|(_, o)| *o == DrawOutcome::AllDrawn), "the late crowd heard all drawn");
    let status = instances[1].status(campaign.campaign_id).await.unwrap().unwrap();
    assert!(status.is_all_drawn() && status.wins == 120, "{status:?}");
}

/// Draws that land on the blank share are decided without the campaign's lock (`draw_lottery_blanks`), beside the
/// batches of draws that may win, from two instances with different seeds: a user's tries may land on the blank
/// share on one instance and on a prize on the other, at the same moment. Every prize is won once, no user draws
/// twice, every user is told what was recorded, and the tally counts every draw.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blanks_decided_beside_the_draws_that_may_win_keep_every_invariant() {
    let db = migrated_db().await;
    let instances = two_instances(&db).await;
    let mut new = open_campaign(vec![tier("Gold", 5, 1), tier("Silver", 25, 3), tier("Mug", 90, 6)]);
    new.blank_weight = 30;
    let campaign = instances[0].create_campaign(&new).await.unwrap();
    // Each instance reads the campaign's wheel, in the background, on its first draw.
    for (n, lottery) in (1..).zip(&instances) {
        lottery.draw(campaign.campaign_id, 10_000 + n).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 800 users, three draws in four landing on the blank share: about 200 for 120 prizes.
    let told = crowd(&instances, campaign.campaign_id, 800, 3).await;

    let recorded = draws_by_user(db.pool(), campaign.campaign_id).await;
    assert_told_is_recorded(&told, &recorded);
    let books = assert_books(db.pool(), &campaign).await;
    assert_eq!((books.wins, books.units_won()), (120, 120), "every prize won, none twice: {books:?}");
    assert!(recorded.values().all(|rows| rows.len() == 1), "no user drew twice");
    let blanks: u64 = instances.iter().map(Lottery::blank_draws).sum();
    assert!(blanks > 600, "most draws went the blanks' way: {blanks}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fewer_users_than_prizes_all_win_once_and_the_rest_stays_in_stock() {
    let db = migrated_db().await;
    let instances = two_instances(&db).await;
    let campaign = instances[0]
        .create_campaign(&open_campaign(vec![tier("Gold", 10, 1), tier("Silver", 30, 2), tier("Mug", 60, 7)]))
        .await
        .unwrap();
    let told = crowd(&instances, campaign.campaign_id, 60, 4).await;

    let recorded = draws_by_user(db.pool(), campaign.campaign_id).await;
    assert_told_is_recorded(&told, &recorded);
    let books = assert_books(db.pool(), &campaign).await;
    assert_eq!((books.users, books.draws, books.wins), (60, 60, 60), "no undersell: {books:?}");
    assert_eq!(instances[0].status(campaign.campaign_id).await.unwrap().unwrap().prizes_left, 40);
    assert!(told.outcomes.iter().all(|(_, o)| o.is_win()), "every user, every retry: a win");
    assert_eq!(told.outcomes.iter().filter(|(_, o)| o.is_repeat()).count(), 180, "three repeats each");
}

/// One answer row of the procedure: (seq, outcome, repeat, draw_id, tier_id, prize, prizes_left).
type Answer = (i64, String, i64, Option<i64>, Option<i64>, Option<String>, Option<i64>);

async fn call_draws(pool: &Pool, campaign_id: i64, users: &[i64]) -> Result<Vec<Answer>, mysql_async::Error> {
    let list: Vec<String> = users.iter().map(i64::to_string).collect();
    let mut conn = pool.get_conn().await.unwrap();
    conn.query(format!("CALL draw_lottery_batch({campaign_id}, '[{}]')", list.join(","))).await
}

/// A campaign's seed, as the database holds it (a test reads it before the reveal to pick users).
async fn seed_of(pool: &Pool, campaign_id: i64) -> String {
    let mut conn = pool.get_conn().await.unwrap();
    conn.exec_first("SELECT seed FROM lottery_campaign_seed WHERE campaign_id = ?", (campaign_id,))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wheel_and_its_fall_through_are_exact() {
    let db = migrated_db().await;
    let lottery = Lottery::new(db.pool().clone());
    // Total 8: Gold [0, 1), Silver [1, 2), Bronze (empty) [2, 4), blank [4, 8). One slot is 2^29 of r.
    let mut new = open_campaign(vec![tier("Gold", 1, 1), tier("Silver", 2, 1), tier("Bronze", 0, 2)]);
    new.blank_weight = 4;
    let campaign = lottery.create_campaign(&new).await.unwrap();
    let [gold, silver, _bronze] = [0, 1, 2].map(|i| campaign.tiers[i].tier_id);
    let id = campaign.campaign_id;
    // Users whose first draw lands in the slots wanted, by the campaign's seed (slot = r >> 29).
    let seed = seed_of(db.pool(), id).await;
    let mut taken = Vec::new();
    let mut landing = |slots: std::ops::Range<u32>| {
        let user = (1..)
            .find(|user| !taken.contains(user) && slots.contains(&(draw_number(&seed, id, *user, 1) >> 29)))
            .unwrap();
        taken.push(user);
        user
    };
    let users = [
        landing(0..1), // Gold, first to land on it: wins it
        landing(0..1), // Gold again: taken, falls through to Silver's leftover
        landing(1..2), // Silver, landed: wins it
        landing(2..4), // Bronze, empty: falls through, nothing left after the second -> no prize
        landing(4..8), // the blank share: no prize
        0,             // the first user again: a repeat of their Gold
        landing(4..8), // blank
    ];
    let users = users.map(|user| if user == 0 { users[0] } else { user });
    let answers = call_draws(db.pool(), id, &users).await.unwrap();
    let won = |seq, user_draw: i64, tier: i64, prize: &str, repeat| {
        (seq, "won".to_string(), repeat, Some(user_draw), Some(tier), Some(prize.to_string()), Some(0))
    };
    let draw_id = |seq: usize| answers[seq - 1].3.unwrap();
    assert_eq!(answers[0], won(1, draw_id(1), gold, "Gold", 0));
    assert_eq!(answers[1], won(2, draw_id(2), silver, "Silver", 0));
    assert_eq!(answers[2], won(3, draw_id(3), silver, "Silver", 0));
    for seq in [4, 5, 7] {
        assert_eq!(answers[seq - 1], (seq as i64, "no_prize".into(), 0, Some(draw_id(seq)), None, None, Some(0)));
    }
    assert_eq!(answers[5], won(6, draw_id(1), gold, "Gold", 1), "a repeat answers the first draw");

    // Nothing left: a new user is turned away unrecorded, a known one hears their result.
    let newcomer = landing(0..8);
    let answers = call_draws(db.pool(), id, &[newcomer, users[4]]).await.unwrap();
    assert_eq!(answers[0], (1, "all_drawn".into(), 0, None, None, None, Some(0)));
    assert_eq!(answers[1], (2, "no_prize".into(), 1, Some(draw_id(5)), None, None, Some(0)));
    // Bad input fails the whole batch, proven rolled back.
    for bad in ["[8, -9]", r#"["x"]"#, "[1.5]", r#"[{"user":8}]"#, r#"{"user":8}"#, "[0]"] {
        let mut conn = db.pool().get_conn().await.unwrap();
        let error = conn.query_drop(format!("CALL draw_lottery_batch({id}, '{bad}')")).await.unwrap_err();
        assert!(matches!(&error, mysql_async::Error::Server(e) if e.state == "45RB0"), "{bad}: {error}");
    }
    let books = assert_books(db.pool(), &campaign).await;
    assert_eq!((books.draws, books.wins, books.users), (6, 3, 6), "{books:?}");
    let unknown = call_draws(db.pool(), id + 100, &[1]).await.unwrap();
    assert_eq!(unknown[0].1, "unknown_campaign");
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_windows_and_draws_beyond_the_users_allowance_are_answered_in_order_of_precedence() {
    let db = migrated_db().await;
    let lottery = Lottery::new(db.pool().clone());
    let now = Utc::now();
    let later = NewCampaign::new(
        "later",
        now + chrono::Duration::hours(1),
        now + chrono::Duration::hours(2),
        vec![tier("Mug", 5, 1)],
    );
    let later = lottery.create_campaign(&later).await.unwrap();
    assert_eq!(lottery.draw(later.campaign_id, 1).await.unwrap(), DrawOutcome::NotStarted);
    let past = NewCampaign::new(
        "past",
        now - chrono::Duration::hours(2),
        now - chrono::Duration::hours(1),
        vec![tier("Mug", 5, 1)],
    );
    let past = lottery.create_campaign(&past).await.unwrap();
    assert_eq!(lottery.draw(past.campaign_id, 1).await.unwrap(), DrawOutcome::Ended);
    assert_eq!(lottery.draw(999, 1).await.unwrap(), DrawOutcome::UnknownCampaign);

    // Three draws per user, with a blank share: each user's draws are recorded 1, 2, 3, then repeats.
    let mut new = open_campaign(vec![tier("Mug", 100, 1)]);
    new.draws_per_user = 3;
    new.blank_weight = 1;
    let campaign = lottery.create_campaign(&new).await.unwrap();
    let told = crowd(std::slice::from_ref(&lottery), campaign.campaign_id, 20, 5).await;
    let repeats = told.outcomes.iter().filter(|(_, o)| o.is_repeat()).count();
    assert_eq!(repeats, 40, "two draws beyond the three of each user");
    for user in 1..=20 {
        let draws = lottery.my_draws(campaign.campaign_id, user).await.unwrap();
        assert_eq!(draws.iter().map(|d| d.draw_no).collect::<Vec<_>>(), [1, 2, 3], "user {user}");
        let mine: Vec<&DrawOutcome> = told.outcomes.iter().filter(|(u, _)| *u == user).map(|(_, o)| o).collect();
        for outcome in mine {
            let record = draws.iter().find(|d| Some(d.draw_id) == outcome.draw_id()).expect("a recorded draw");
            assert_eq!(record.tier_id.is_some(), outcome.is_win(), "user {user}: {outcome:?}");
        }
    }
    let books = assert_books(db.pool(), &campaign).await;
    assert_eq!(books.draws, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
/// Once every prize is drawn, each user hears what the database would say to them, whoever answers: their last
/// result (flagged repeat) if they drew, "all drawn" if they did not. The instance that decided every draw knows
/// all of them and answers from memory; another, told by Redis, reads each user's record.
async fn all_drawn_is_monotone_and_each_user_hears_their_own_outcome_from_any_instance() {
    let db = migrated_db().await;
    let redis = LocalRedis::start().unwrap();
    // Each instance reaches the database through a proxy of its own, which the test can cut.
    let upstream: std::net::SocketAddr = format!("127.0.0.1:{}", server_port(db.url())).parse().unwrap();
    let (proxy_a, proxy_b) = (
        TcpProxy::start(upstream, Duration::ZERO).await.unwrap(),
        TcpProxy::start(upstream, Duration::ZERO).await.unwrap(),
    );
    let through = |proxy: &TcpProxy| ConnectOptions::new(db.url()).via(proxy.address()).build_pool().unwrap();
    let redis_url = redis.url();
    let connect = || BoundedRedis::connect(&redis_url);
    let a = Lottery::new(through(&proxy_a)).with_redis(connect().await.unwrap(), Some("test:lottery:"));
    let b = Lottery::new(through(&proxy_b)).with_redis(connect().await.unwrap(), Some("test:lottery:"));
    let campaign = a.create_campaign(&open_campaign(vec![tier("Mug", 30, 1)])).await.unwrap();
    let id = campaign.campaign_id;

    let told = crowd(std::slice::from_ref(&a), id, 60, 1).await;
    assert_eq!(told.outcomes.iter().filter(|(_, o)| o.is_win()).count(), 30);
    let first: HashMap<i64, DrawOutcome> = told.outcomes.iter().cloned().collect();
    // Instance a learnt it from its batch and published it.
    let key = a.state_key(id);
    assert_eq!(key, format!("test:lottery:{id}:state"));
    let mut published = None;
    for _ in 0..50 {
        let mut connection =
            redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        published = redis::AsyncCommands::get::<_, Option<String>>(&mut connection, &key).await.unwrap();
        if published.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(published.as_deref(), Some("all_drawn"));

    // From now on instance a may not use its database: every byte through its proxy cuts it, and a draw that
    // reached the database would be an inner error. Instance b never drew: it knows "all drawn" from Redis, and
    // what each user drew from the database.
    proxy_a.set_cut_probability(1.0);
    for round in 0..3 {
        for user in 1..=100 {
            let expected = match first.get(&user) {
                Some(DrawOutcome::Won { draw_id, tier_id, prize, .. }) => {
                    DrawOutcome::Won { draw_id: *draw_id, tier_id: *tier_id, prize: prize.clone(), repeat: true }
                }
                Some(DrawOutcome::NoPrize { draw_id, .. }) => DrawOutcome::NoPrize { draw_id: *draw_id, repeat: true },
                _ => DrawOutcome::AllDrawn,
            };
            assert_eq!(a.draw(id, user).await.unwrap(), expected, "instance a, round {round}, user {user}");
            assert_eq!(b.draw(id, user).await.unwrap(), expected, "instance b, round {round}, user {user}");
        }
        // Past the lanes' recheck interval too: the fact never turns back.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert_eq!(proxy_a.cuts(), 0, "no byte reached instance a's database connections");
    assert_eq!(b.stats().requests, 0, "instance b's lanes were never asked to draw");
    assert_books(db.pool(), &campaign).await;
}

/// The port of a `mysql://user@host:port/db` URL.
fn server_port(url: &str) -> u16 {
    let after_host = url.rsplit('@').next().unwrap();
    let host_port = after_host.split('/').next().unwrap();
    host_port.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_mid_campaign_never_stops_draws_or_changes_an_answer() {
    let db = migrated_db().await;
    let redis = LocalRedis::start().unwrap();
    let instances: Vec<Lottery> = {
        let mut instances = Vec::new();
        for lottery in two_instances(&db).await {
            instances.push(lottery.with_redis(BoundedRedis::connect(&redis.url()).await.unwrap(), None));
        }
        instances
    };
    let campaign =
        instances[0].create_campaign(&open_campaign(vec![tier("Gold", 20, 1), tier("Mug", 180, 4)])).await.unwrap();
    let id = campaign.campaign_id;
    let first = crowd(&instances, id, 100, 1).await;
    // Killed as a crash would (SIGKILL to the pid this test started), then started again empty.
    let pid = redis.pid().unwrap();
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    let middle = {
        let mut calls = Vec::new();
        for user in 101..=300 {
            let lottery = instances[(user % 2) as usize].clone();
            calls.push(tokio::spawn(async move { (user, lottery.draw(id, user).await.unwrap()) }));
        }
        let mut told = Told::default();
        for call in calls {
            told.outcomes.push(call.await.unwrap());
        }
        told
    };
    redis.restart().unwrap();
    let last = crowd(&instances, id, 400, 1).await;
    // Learnt while Redis was down, known for good, so no batch runs again: the instances publish it by themselves.
    let key = instances[0].state_key(id);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut connection =
            redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let value = redis::AsyncCommands::get::<_, Option<String>>(&mut connection, &key).await.unwrap();
        if value.as_deref() == Some("all_drawn") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "all drawn not republished after Redis restarted: {value:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let recorded = draws_by_user(db.pool(), id).await;
    let mut told = Told::default();
    for part in [first, middle, last] {
        told.outcomes.extend(part.outcomes);
    }
    assert_told_is_recorded(&told, &recorded);
    let books = assert_books(db.pool(), &campaign).await;
    assert_eq!(books.wins, 200, "every prize won once, Redis or not: {books:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_killed_mid_campaign_tells_no_one_a_result_it_does_not_hold() {
    // A server of its own: this test kills it.
    let (server, url) = private_database("lottery_crash").await;
    let pool = ConnectOptions::new(url).build_pool().unwrap();
    let lottery = Lottery::new(pool.clone());
    // Prizes that last through the crash and after the restart, and a blank share so that losers are recorded.
    let mut new = open_campaign(vec![tier("Gold", 1000, 1), tier("Mug", 1_000_000, 5)]);
    new.blank_weight = 4;
    let campaign = lottery.create_campaign(&new).await.unwrap();
    let id = campaign.campaign_id;

    let told = Arc::new(Mutex::new(Vec::<(i64, DrawOutcome)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let next_user = Arc::new(AtomicI64::new(0));
    let crowd: Vec<_> = (0..64)
        .map(|_| {
            let (lottery, told, stop, next_user) = (lottery.clone(), told.clone(), stop.clone(), next_user.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let user = next_user.fetch_add(1, Ordering::Relaxed) + 1;
                    let outcome = lottery.draw(id, user).await.unwrap();
                    told.lock().unwrap().push((user, outcome));
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let server = crate::common::crash(server, Duration::from_millis(500)).await;
    let before_restart = told.lock().unwrap().iter().filter(|(_, o)| o.draw_id().is_some()).count();
    let server = crate::common::restart(server).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for caller in crowd {
        caller.await.unwrap();
    }
    let told = Arc::try_unwrap(told).ok().unwrap().into_inner().unwrap();
    let decided = told.iter().filter(|(_, o)| o.draw_id().is_some()).count();
    assert!(before_restart > 0, "draws were under way when the server died");
    assert!(decided > before_restart, "draws resumed after the restart");
    let failed: Vec<_> = told.iter().filter(|(_, o)| matches!(o, DrawOutcome::InnerError(_))).collect();
    assert!(!failed.is_empty(), "the crash was felt");

    let recorded = draws_by_user(&pool, id).await;
    let mut settled = Told::default();
    for (user, outcome) in &told {
        match outcome {
            DrawOutcome::InnerError(error) if error.in_doubt => {
                // Settled by the user's draws: committed or not, drawing again answers what the database holds.
                let again = lottery.draw(id, *user).await.unwrap();
                let mine = lottery.my_draws(id, *user).await.unwrap();
                assert_eq!(mine.len(), 1, "user {user}: one draw after settling");
                assert_eq!(again.draw_id(), Some(mine[0].draw_id), "user {user}: {again:?}");
            }
            DrawOutcome::InnerError(error) => {
                assert!(!recorded.contains_key(user), "user {user} was told nothing was written ({})", error.detail);
            }
            other => settled.outcomes.push((*user, other.clone())),
        }
    }
    assert_told_is_recorded(&settled, &draws_by_user(&pool, id).await);
    assert_books(&pool, &campaign).await;
    drop(server); // the guardian removes it when the test process ends
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_creates_draws_and_shows_a_campaign() {
    let db = migrated_db().await;
    let run = |args: &[&str]| seckill_command(db.url()).arg("lottery").args(args).output().unwrap();
    let now = Utc::now();
    let (starts, ends) =
        ((now - chrono::Duration::hours(1)).to_rfc3339(), (now + chrono::Duration::hours(1)).to_rfc3339());
    let created = run(&["create", "--name", "CLI", "--start", &starts, "--end", &ends, "--tier", "Gold mug:1:1"]);
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(created.status.success(), "{stdout} {}", String::from_utf8_lossy(&created.stderr));
    let id = Lottery::new(db.pool().clone()).status(1).await.unwrap().expect("campaign 1 exists").campaign.campaign_id;

    let drawn = run(&["draw", &id.to_string(), "--user", "7"]);
    assert!(drawn.status.success(), "{}", String::from_utf8_lossy(&drawn.stderr));
    assert!(String::from_utf8_lossy(&drawn.stdout).contains("Gold mug"));
    let again = run(&["draw", &id.to_string(), "--user", "8"]);
    assert_eq!(again.status.code(), Some(4), "all drawn is a refusal");
    let status = run(&["status", &id.to_string()]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("all drawn"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );

    for bad in [
        vec!["create", "--name", "x", "--starts", &starts, "--ends", &ends, "--tier", "mug:ten:1"],
        vec!["draw", "0", "--user", "1"],
        vec!["draw", &id.to_string(), "--user", "-3"],
    ] {
        let output = run(&bad);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{bad:?}");
        assert!(
            stderr.starts_with("seckill: error: invalid") && stderr.trim().lines().count() <= 2,
            "{bad:?}: {stderr}"
        );
    }
    assert_eq!(run(&["status", "99"]).status.code(), Some(4), "an unknown campaign");
    let books = LotteryBooks::check(db.pool(), id).await.unwrap();
    assert_eq!((books.draws, books.wins), (1, 1), "the refused commands changed nothing");
}

/// Regression: once every prize was drawn, an instance answered "all drawn" (nothing left, nothing recorded) to
/// a user drawing again who had won, from its memory or from Redis, before asking who was drawing; and "all
/// drawn" after the campaign's end, where the database says "ended". Now a user who drew hears their own result,
/// flagged repeat, on any instance, and after the end everyone hears "ended".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_winner_drawing_again_hears_their_win_on_any_instance_and_after_the_end_everyone_hears_ended() {
    let db = migrated_db().await;
    let redis = LocalRedis::start().unwrap();
    let [a, b] = two_instances(&db).await;
    let shared = BoundedRedis::connect(&redis.url()).await.unwrap();
    let pool = || ConnectOptions::new(db.url()).max_connections(4).build_pool().unwrap();
    let (c, d) = (
        Lottery::new(pool()).with_redis(shared.clone(), Some("test:lottery:")),
        Lottery::new(pool()).with_redis(shared, Some("test:lottery:")),
    );
    let now = Utc::now();
    let ends = now + chrono::Duration::seconds(4);
    let new = NewCampaign::new("one prize", now - chrono::Duration::hours(1), ends, vec![tier("Gold", 1, 1)]);
    let campaign = a.create_campaign(&new).await.unwrap();
    let id = campaign.campaign_id;
    let won = a.draw(id, 1).await.unwrap();
    let DrawOutcome::Won { draw_id, tier_id, ref prize, repeat: false } = won else { panic!("{won:?}") };
    let again = DrawOutcome::Won { draw_id, tier_id, prize: prize.clone(), repeat: true };
    assert_eq!(b.draw(id, 2).await.unwrap(), DrawOutcome::AllDrawn, "b learns the campaign is all drawn");
    // c learns it from its own batch and publishes it; d, which never drew, from Redis.
    assert_eq!(c.draw(id, 3).await.unwrap(), DrawOutcome::AllDrawn);
    let mut told_by_redis = false;
    for _ in 0..100 {
        if d.draw(id, 4).await.unwrap() == DrawOutcome::AllDrawn && d.stats().requests == 0 {
            told_by_redis = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(told_by_redis, "d answered from the shared flag, without a batch");
    for (name, instance) in [("a", &a), ("b", &b), ("c", &c), ("d", &d)] {
        for _ in 0..3 {
            assert_eq!(instance.draw(id, 1).await.unwrap(), again, "the winner, on instance {name}");
            assert_eq!(instance.draw(id, 5).await.unwrap(), DrawOutcome::AllDrawn, "a newcomer, on {name}");
        }
    }
    assert_eq!(d.stats().requests, 0, "d decided nothing: every answer came from a flag and a record");
    // After the end, the database says "ended" to everyone first.
    tokio::time::sleep((ends - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(200)).await;
    for (name, instance) in [("a", &a), ("b", &b), ("c", &c), ("d", &d)] {
        for user in [1, 5] {
            assert_eq!(instance.draw(id, user).await.unwrap(), DrawOutcome::Ended, "user {user}, on {name}");
        }
    }
    assert_books(db.pool(), &campaign).await;
}
