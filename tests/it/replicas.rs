//! The read/write split against real primary + replica pairs (GTID replication between two private `mariadbd`s):
//! writes return their commit's GTID, no write ever reaches a replica, reads go on while the replica is stopped
//! and come back to it once it has caught up, and a lagging replica never hides a user's own write, through the
//! services and through HTTP. Tests that stop the replica or its SQL thread start a pair of their own. Every test
//! ends with a reconciliation of the databases.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use chrono::Utc;
use hyper::Method;
use hyper::header::COOKIE;
use mysql_async::prelude::Queryable;
use mysql_async::{Opts, Pool};
use seckill::database::{ConnectOptions, GtidPosition, ReadWriteSplit, ReplicaConfig, WithGtid, url_with_database};
use seckill::exchange::http::IDEMPOTENCY_KEY;
use seckill::exchange::{Exchange, ExchangeOutcome, NewGift};
use seckill::http::GTID_COOKIE;
use seckill::local::replication::LocalReplicaPair;
use seckill::lottery::{DrawOutcome, Lottery, LotteryBooks, NewCampaign, NewTier};
use seckill::migrate::Migrator;
use seckill::seckill::{Books, Exposure, Item, Outcome, Seckill};
use seckill::testing::{ReplicatedTestDatabase, TestDatabase};
use tokio::task::JoinSet;

use crate::common::http::{call, serve, signed_in, user_cookies};
use crate::common::{open_item, phone, seckill_command, signer};

/// Fast reactions for tests: a short GTID wait, a short backoff, frequent lag checks.
fn quick() -> ReplicaConfig {
    ReplicaConfig {
        gtid_wait: Duration::from_millis(300),
        call_timeout: Duration::from_secs(2),
        down_backoff: Duration::from_millis(300),
        max_lag: Duration::from_secs(1),
        lag_check_interval: Duration::from_millis(100),
        position_refresh: Duration::from_millis(20),
    }
}

/// A pair of this test's own, which it may stop and lag.
async fn private_pair() -> LocalReplicaPair {
    tokio::task::spawn_blocking(LocalReplicaPair::start).await.unwrap().expect("a private primary + replica pair")
}

/// Polls `condition` every 50 ms for at most `limit`: true as soon as it holds.
async fn eventually<F: AsyncFnMut() -> bool>(limit: Duration, mut condition: F) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// An account on the test's database, created on the primary and replicated to the replica.
struct Account {
    user: String,
    password: String,
}

impl Account {
    /// `role` with `grants` (each `PRIVILEGES ON object`) on the test's database `{db}`.
    async fn create(db: &ReplicatedTestDatabase, role: &str, grants: &[&str]) -> Account {
        let mut hasher = DefaultHasher::new();
        db.name().hash(&mut hasher);
        let account = Account { user: format!("{role}_{:016x}", hasher.finish()), password: format!("{role}-pw-1") };
        let mut conn = db.primary_pool().get_conn().await.unwrap();
        let user = format!("'{}'@'%'", account.user);
        conn.query_drop(format!("DROP USER IF EXISTS {user}")).await.unwrap();
        conn.query_drop(format!("CREATE USER {user} IDENTIFIED BY '{}'", account.password)).await.unwrap();
        for grant in grants {
            let grant = grant.replace("{db}", &format!("`{}`", db.name()));
            conn.query_drop(format!("GRANT {grant} TO {user}")).await.unwrap();
        }
        account
    }

    /// `database_url` (root's) as this account.
    fn url(&self, database_url: &str) -> String {
        let opts = Opts::from_url(database_url).unwrap();
        let database = opts.db_name().unwrap_or_default();
        format!("mysql://{}:{}@{}:{}/{database}", self.user, self.password, opts.ip_or_hostname(), opts.tcp_port())
    }

    async fn drop_on(self, db: &ReplicatedTestDatabase) {
        let mut conn = db.primary_pool().get_conn().await.unwrap();
        conn.query_drop(format!("DROP USER IF EXISTS '{}'@'%'", self.user)).await.unwrap();
    }
}

/// `CHECKSUM TABLE` of every table of the database `pool` is on, by name.
async fn checksums(pool: &Pool) -> Vec<(String, Option<i64>)> {
    let mut conn = pool.get_conn().await.unwrap();
    let tables: Vec<String> = conn
        .query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME")
        .await
        .unwrap();
    let mut sums = Vec::new();
    for table in tables {
        let row: Option<(String, Option<i64>)> = conn.query_first(format!("CHECKSUM TABLE `{table}`")).await.unwrap();
        sums.push((table, row.unwrap().1));
    }
    sums
}

async fn success_rows_on(pool: &Pool, seckill_id: i64) -> i64 {
    let mut conn = pool.get_conn().await.unwrap();
    conn.exec_first("SELECT COUNT(*) FROM success_killed WHERE seckill_id = ?", (seckill_id,)).await.unwrap().unwrap()
}

fn open_campaign(prizes: u32) -> NewCampaign {
    let now = Utc::now();
    let tiers = vec![NewTier { name: "mug".into(), stock: prizes, weight: 1, value_fen: 0 }];
    NewCampaign::new("replicated campaign", now - chrono::Duration::hours(1), now + chrono::Duration::hours(1), tiers)
}

fn position(gtid: &WithGtid<impl std::fmt::Debug>) -> GtidPosition {
    gtid.gtid.unwrap_or_else(|| panic!("a GTID for {:?}", gtid.outcome)).into()
}

/// Buyer `n` buys, then asks at once whether it went through, after the GTID the seckill answered: the GTID of a
/// win, `None` for a buyer told sold out and shown no record; an error for anything else.
async fn buy_then_ask(seckill: &Seckill, id: i64, n: i64) -> Result<Option<GtidPosition>, String> {
    let decided = seckill.execute_verified_with_gtid(id, phone(n)).await;
    let after = decided.gtid.map(GtidPosition::from);
    let record = seckill.kill_record_after(id, phone(n), after.as_ref()).await;
    match (&decided.outcome, record.map_err(|e| format!("buyer {n}: result failed: {e}"))?) {
        (Outcome::Success(_), Some(_)) => after.map(Some).ok_or_else(|| format!("buyer {n}: a win without a GTID")),
        (Outcome::SoldOut, None) => Ok(None),
        (outcome, record) => Err(format!("buyer {n}: {outcome:?}, then {record:?}")),
    }
}

/// A private pair (the test may stop and lag it), a migrated database on it, a seckill service reading through
/// a split of its own, and an open item with `stock` that the replica has too.
struct Sale {
    pair: LocalReplicaPair,
    db: ReplicatedTestDatabase,
    split: ReadWriteSplit,
    seckill: Seckill,
    item: Item,
}

async fn sale_on_a_private_pair(stock: i32) -> Sale {
    let pair = private_pair().await;
    let db = ReplicatedTestDatabase::migrated_on(&pair).await.unwrap();
    let split = db.split(quick());
    let seckill = Seckill::new(split.clone(), signer());
    let item = open_item(&seckill, stock).await;
    assert!(db.wait_for_replica(Duration::from_secs(30)).await.unwrap());
    Sale { pair, db, split, seckill, item }
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_return_their_commits_gtid_and_a_read_after_it_sees_them_on_the_replica() {
    let db = ReplicatedTestDatabase::migrated().await.unwrap();
    // A long wait: this test is about the replica answering, not about falling back.
    let split = db.split(ReplicaConfig { gtid_wait: Duration::from_secs(10), ..quick() });
    let seckill = Seckill::new(split.clone(), signer());
    let item = open_item(&seckill, 1).await;

    let won = seckill.execute_verified_with_gtid(item.seckill_id, phone(1)).await;
    assert!(won.outcome.is_success(), "{won:?}");
    let lost = seckill.execute_verified_with_gtid(item.seckill_id, phone(2)).await;
    assert_eq!(lost, WithGtid { outcome: Outcome::SoldOut, gtid: None }, "nothing written, nothing to wait for");
    let record = seckill.kill_record_after(item.seckill_id, phone(1), Some(&position(&won))).await.unwrap();
    assert_eq!(record.map(|r| r.user_phone), Some(phone(1)));

    let exchange = Exchange::new(split.clone());
    let granted = exchange.grant_with_gtid(7, 100, "welcome").await.unwrap();
    let gift = exchange.create_gift(&NewGift { name: "mug".into(), cost: 30, stock: 5 }).await.unwrap();
    let exchanged = exchange.exchange_with_gtid(7, gift.gift_id, "r-1").await.unwrap();
    assert!(matches!(exchanged.outcome, ExchangeOutcome::Exchanged { balance_after: 70, .. }), "{exchanged:?}");
    let (first, second) = (granted.gtid.unwrap(), exchanged.gtid.unwrap());
    assert!(second.domain == first.domain && second.sequence > first.sequence, "{first} then {second}");
    assert_eq!(exchange.balance_after(7, Some(&position(&exchanged))).await.unwrap(), Some(70));

    let lottery = Lottery::new(split.clone());
    let campaign = lottery.create_campaign(&open_campaign(3)).await.unwrap();
    let drawn = lottery.draw_with_gtid(campaign.campaign_id, 7).await.unwrap();
    let DrawOutcome::Won { draw_id, .. } = drawn.outcome else { panic!("{drawn:?}") };
    let draws = lottery.my_draws_after(campaign.campaign_id, 7, Some(&position(&drawn))).await.unwrap();
    assert_eq!(draws.iter().map(|d| d.draw_id).collect::<Vec<_>>(), [draw_id]);

    let stats = split.stats();
    assert_eq!(stats.replica_reads_total(), 3, "the three reads after a GTID, on the replica: {stats:?}");
    assert_eq!((stats.fallbacks_down, stats.fallbacks_gtid_wait_timeout), (0, 0), "{stats:?}");
    Books::read(db.primary_pool(), item.seckill_id).await.unwrap().check(1, 1).unwrap();
    seckill::exchange::Books::read(db.primary_pool()).await.unwrap().check().unwrap();
    LotteryBooks::check(db.primary_pool(), campaign.campaign_id).await.unwrap();
}

/// A position the primary has not committed (a made-up cookie's) is never waited for on a replica: its read goes
/// to the primary at once, however long the GTID wait, and is counted as such. A real one is waited for on the
/// replica, whether this split saw the write (its answer carried the GTID) or another instance's split did (this
/// one asks the primary what it has committed).
#[tokio::test(flavor = "multi_thread")]
async fn a_position_the_primary_has_not_committed_is_never_waited_for_on_a_replica() {
    let db = ReplicatedTestDatabase::migrated().await.unwrap();
    // A wait long enough that waiting, rather than not, cannot be mistaken.
    let config = ReplicaConfig { gtid_wait: Duration::from_secs(5), ..quick() };
    let (this, other) = (db.split(config), db.split(config));
    let (seckill, elsewhere) = (Seckill::new(this.clone(), signer()), Seckill::new(other, signer()));
    let item = open_item(&seckill, 2).await;
    assert!(db.wait_for_replica(Duration::from_secs(30)).await.unwrap());

    let forged: GtidPosition = "0-1-4000000000".parse().unwrap();
    let started = Instant::now();
    assert_eq!(seckill.kill_record_after(item.seckill_id, phone(1), Some(&forged)).await.unwrap(), None);
    assert!(started.elapsed() < config.gtid_wait / 2, "no wait on the replica: {:?}", started.elapsed());
    let stats = this.stats();
    assert_eq!((stats.fallbacks_ahead_of_primary, stats.replica_reads_total()), (1, 0), "{stats:?}");

    let here = seckill.execute_verified_with_gtid(item.seckill_id, phone(1)).await;
    let record = seckill.kill_record_after(item.seckill_id, phone(1), Some(&position(&here))).await.unwrap();
    assert_eq!(record.map(|r| r.user_phone), Some(phone(1)));
    // Past the interval between two questions to the primary, so that this split may ask again.
    tokio::time::sleep(config.position_refresh * 3).await;
    let there = elsewhere.execute_verified_with_gtid(item.seckill_id, phone(2)).await;
    let record = seckill.kill_record_after(item.seckill_id, phone(2), Some(&position(&there))).await.unwrap();
    assert_eq!(record.map(|r| r.user_phone), Some(phone(2)));
    let stats = this.stats();
    assert_eq!((stats.fallbacks_ahead_of_primary, stats.replica_reads_total()), (1, 2), "{stats:?}");
    Books::read(db.primary_pool(), item.seckill_id).await.unwrap().check(2, 2).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_binary_log_a_write_carries_no_gtid_and_its_reads_go_to_the_primary() {
    let db = TestDatabase::migrated().await.unwrap();
    let seckill = Seckill::new(db.pool().clone(), signer());
    let item = open_item(&seckill, 1).await;
    let won = seckill.execute_verified_with_gtid(item.seckill_id, phone(1)).await;
    assert!(won.outcome.is_success() && won.gtid.is_none(), "{won:?}");
    assert!(seckill.kill_record_after(item.seckill_id, phone(1), None).await.unwrap().is_some());
    Books::read(db.pool(), item.seckill_id).await.unwrap().check(1, 1).unwrap();
}

/// `seckill_replica_reads_total` of `replica` in a Prometheus exposition, 0 before any.
fn replica_reads_exported(exposition: &str, replica: &str) -> f64 {
    let series = format!("seckill_replica_reads_total{{replica=\"{replica}\"}} ");
    exposition.lines().find_map(|line| line.strip_prefix(&series)).map_or(0.0, |value| value.parse().unwrap())
}

/// What one client of the crowd saw go wrong, if anything.
type Complaint = Option<String>;

#[tokio::test(flavor = "multi_thread")]
async fn no_write_ever_reaches_a_replica() {
    const STOCK: i32 = 30;
    const GIFT_STOCK: i32 = 20;
    const PRIZES: u32 = 25;
    let db = ReplicatedTestDatabase::new().await.unwrap();
    // Neither account has READ ONLY ADMIN (nor SUPER): the owner, who migrates, is the procedures' definer, so a
    // CALL on the replica runs under read_only too; the app may read, write rows and call procedures.
    let owner = Account::create(&db, "owner", &["ALL PRIVILEGES ON {db}.*"]).await;
    let app = Account::create(
        &db,
        "app",
        &["SELECT, INSERT, UPDATE, DELETE, EXECUTE, CREATE TEMPORARY TABLES ON {db}.*", "SLAVE MONITOR ON *.*"],
    )
    .await;
    let owner_pool = ConnectOptions::new(owner.url(db.primary().url())).prefer_socket(false).build_pool().unwrap();
    Migrator::embedded().unwrap().run(&owner_pool).await.unwrap();
    owner_pool.disconnect().await.unwrap();
    let split = ConnectOptions::new(app.url(db.primary().url()))
        .prefer_socket(false)
        .replica(app.url(db.replica_url()))
        .replica_config(ReplicaConfig { lag_check_interval: Duration::from_millis(200), ..ReplicaConfig::default() })
        .build_split()
        .unwrap();
    let metrics = seckill::prometheus::install().unwrap();
    let replica_name = split.replica_names().remove(0);
    let reads_exported_before = replica_reads_exported(&metrics.render(), &replica_name);
    let seckill = Seckill::new(split.clone(), signer());
    let exchange = Exchange::new(split.clone());
    let lottery = Lottery::new(split.clone());
    let item = open_item(&seckill, STOCK).await;
    let gift = exchange.create_gift(&NewGift { name: "mug".into(), cost: 10, stock: GIFT_STOCK }).await.unwrap();
    let mut last_grant = None;
    for user in 1..=50 {
        last_grant = exchange.grant_with_gtid(user, 25, "crowd").await.unwrap().gtid;
    }
    let campaign = lottery.create_campaign(&open_campaign(PRIZES)).await.unwrap();
    assert!(last_grant.is_some());
    assert!(db.wait_for_replica(Duration::from_secs(30)).await.unwrap());

    let mut crowd: JoinSet<(&str, bool, Complaint)> = JoinSet::new();
    for n in 1..=100 {
        let seckill = seckill.clone();
        let id = item.seckill_id;
        crowd.spawn(async move {
            if let Err(e) = seckill.list(10).await.and(seckill.get(id).await) {
                return ("seckill", false, Some(format!("buyer {n}: a read failed: {e}")));
            }
            match buy_then_ask(&seckill, id, n).await {
                Ok(won) => ("seckill", won.is_some(), None),
                Err(complaint) => ("seckill", false, Some(complaint)),
            }
        });
    }
    for user in 1..=50 {
        let exchange = exchange.clone();
        let gift_id = gift.gift_id;
        crowd.spawn(async move {
            if let Err(e) = exchange.gifts().await {
                return ("exchange", false, Some(format!("user {user}: the catalogue failed: {e}")));
            }
            let decided = match exchange.exchange_with_gtid(user, gift_id, &format!("r-{user}")).await {
                Ok(decided) => decided,
                Err(e) => return ("exchange", false, Some(format!("user {user}: {e}"))),
            };
            let after = decided.gtid.map(GtidPosition::from);
            let read = async {
                let balance = exchange.balance_after(user, after.as_ref()).await?;
                let history = exchange.history_after(user, 10, after.as_ref()).await?;
                Ok::<_, seckill::exchange::ExchangeError>((balance, history))
            };
            let (balance, history) = match read.await {
                Ok(read) => read,
                Err(e) => return ("exchange", false, Some(format!("user {user}: a read failed: {e}"))),
            };
            match decided.outcome {
                ExchangeOutcome::Exchanged { exchange_id, balance_after, .. }
                    if balance == Some(balance_after) && history.iter().any(|e| e.exchange_id == exchange_id) =>
                {
                    ("exchange", true, None)
                }
                ExchangeOutcome::OutOfStock { .. } if balance == Some(25) && history.is_empty() => {
                    ("exchange", false, None)
                }
                outcome => {
                    ("exchange", false, Some(format!("user {user}: {outcome:?}, then {balance:?}, {history:?}")))
                }
            }
        });
    }
    for user in 1..=100 {
        let lottery = lottery.clone();
        let campaign_id = campaign.campaign_id;
        crowd.spawn(async move {
            if let Err(e) = lottery.status(campaign_id).await {
                return ("lottery", false, Some(format!("user {user}: status failed: {e}")));
            }
            let decided = match lottery.draw_with_gtid(campaign_id, user).await {
                Ok(decided) => decided,
                Err(e) => return ("lottery", false, Some(format!("user {user}: {e}"))),
            };
            let after = decided.gtid.map(GtidPosition::from);
            let draws = match lottery.my_draws_after(campaign_id, user, after.as_ref()).await {
                Ok(draws) => draws,
                Err(e) => return ("lottery", false, Some(format!("user {user}: my draws failed: {e}"))),
            };
            let ids: Vec<i64> = draws.iter().map(|d| d.draw_id).collect();
            match decided.outcome {
                DrawOutcome::Won { draw_id, .. } if ids == [draw_id] => ("lottery", true, None),
                DrawOutcome::NoPrize { draw_id, .. } if ids == [draw_id] => ("lottery", false, None),
                DrawOutcome::AllDrawn if ids.is_empty() => ("lottery", false, None),
                outcome => ("lottery", false, Some(format!("user {user}: {outcome:?}, then draws {ids:?}"))),
            }
        });
    }
    let (mut sold, mut exchanged, mut won, mut complaints) = (0, 0, 0, Vec::new());
    while let Some(joined) = crowd.join_next().await {
        let (domain, success, complaint) = joined.unwrap();
        complaints.extend(complaint);
        if success {
            *match domain {
                "seckill" => &mut sold,
                "exchange" => &mut exchanged,
                _ => &mut won,
            } += 1;
        }
    }
    assert!(complaints.is_empty(), "{complaints:#?}");
    let stats = split.stats();
    assert!(stats.replica_reads_total() > 0, "the replica served reads: {stats:?}");
    assert_eq!(stats.fallbacks_down, 0, "it never failed: {stats:?}");
    // Exported too (other tests on the shared pair may add theirs).
    let exported = replica_reads_exported(&metrics.render(), &replica_name) - reads_exported_before;
    assert!(exported >= stats.replica_reads_total() as f64, "{exported} exported, {stats:?}");

    // The books, on the primary.
    Books::read(db.primary_pool(), item.seckill_id).await.unwrap().check(i64::from(STOCK), sold).unwrap();
    assert_eq!(sold, STOCK as u64);
    let exchange_books = seckill::exchange::Books::read(db.primary_pool()).await.unwrap();
    exchange_books.check().unwrap();
    assert_eq!((exchange_books.exchanges, exchanged), (i64::from(GIFT_STOCK), GIFT_STOCK as u64));
    let lottery_books = LotteryBooks::check(db.primary_pool(), campaign.campaign_id).await.unwrap();
    assert_eq!((lottery_books.wins, won), (i64::from(PRIZES), u64::from(PRIZES)));
    // The replica holds exactly what the primary holds: nothing more reached it.
    assert!(db.wait_for_replica(Duration::from_secs(30)).await.unwrap());
    let primary_sums = checksums(db.primary_pool()).await;
    assert_eq!(checksums(db.replica_pool()).await, primary_sums);

    // The guard is real: the app's account cannot write on the replica, neither a row nor through a procedure.
    let mut on_replica = ConnectOptions::new(app.url(db.replica_url()))
        .prefer_socket(false)
        .build_pool()
        .unwrap()
        .get_conn()
        .await
        .unwrap();
    let writes = [
        "INSERT INTO seckill (name, number, start_time, end_time) VALUES ('x', 1, NOW(), NOW() + INTERVAL 1 DAY)"
            .to_string(),
        format!("UPDATE seckill SET number = number + 1 WHERE seckill_id = {}", item.seckill_id),
        format!("CALL execute_seckill_detailed({}, {}, NULL)", item.seckill_id, phone(999).get()),
        format!("CALL execute_seckill_batch({}, '[{}]')", item.seckill_id, phone(998).get()),
        "CALL grant_credit(1, 5, 'on the replica')".to_string(),
        format!("CALL exchange_credit_batch({}, '[{{\"user\": 1, \"request\": \"replica\"}}]')", gift.gift_id),
        format!("CALL draw_lottery_batch({}, '[ 999 ]')", campaign.campaign_id),
        format!("CALL draw_lottery_blanks({}, '[998]')", campaign.campaign_id),
    ];
    for write in writes {
        match on_replica.query_drop(&write).await {
            Err(mysql_async::Error::Server(error)) if error.code == 1290 => {}
            other => panic!("{write}: {other:?}"),
        }
    }
    drop(on_replica);
    assert_eq!(checksums(db.replica_pool()).await, primary_sums, "nothing was written on the replica");
    app.drop_on(&db).await;
    owner.drop_on(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_replica_is_skipped_and_used_again_once_it_has_caught_up() {
    const STOCK: i32 = 40;
    let Sale { pair, db, split, seckill, item } = sale_on_a_private_pair(STOCK).await;
    seckill.list(10).await.unwrap();
    assert_eq!(split.stats().replica_reads_total(), 1, "served by the replica while it runs");

    let pid = pair.replica_pid().expect("the replica runs");
    let pair = tokio::task::spawn_blocking(move || {
        pair.stop_replica().unwrap();
        pair
    })
    .await
    .unwrap();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the replica's process is gone");

    let before = split.stats();
    let mut crowd = JoinSet::new();
    for n in 1..=80 {
        let seckill = seckill.clone();
        let id = item.seckill_id;
        crowd.spawn(async move {
            seckill.list(10).await.map_err(|e| format!("buyer {n}: list: {e}"))?;
            seckill.get(id).await.map_err(|e| format!("buyer {n}: details: {e}"))?;
            buy_then_ask(&seckill, id, n).await.map(|won| won.is_some())
        });
    }
    let mut sold = 0;
    while let Some(joined) = crowd.join_next().await {
        sold += u64::from(joined.unwrap().unwrap());
    }
    let during = split.stats();
    assert_eq!(during.replica_reads_total(), before.replica_reads_total(), "nothing read from a stopped replica");
    assert!(during.fallbacks_down > before.fallbacks_down, "reads fell back to the primary: {during:?}");
    assert_eq!(success_rows_on(db.primary_pool(), item.seckill_id).await, i64::from(STOCK));

    // Kept until the end: dropping the pair removes both servers.
    let _pair = tokio::task::spawn_blocking(move || {
        pair.start_replica().unwrap();
        pair
    })
    .await
    .unwrap();
    assert!(db.wait_for_replica(Duration::from_secs(30)).await.unwrap(), "the replica catches up");
    assert_eq!(success_rows_on(db.replica_pool(), item.seckill_id).await, i64::from(STOCK));
    let used_again = eventually(Duration::from_secs(20), async || {
        seckill.list(10).await.unwrap();
        split.stats().replica_reads_total() > during.replica_reads_total()
    })
    .await;
    assert!(used_again, "the replica serves reads again: {:?}", split.stats());
    Books::read(db.primary_pool(), item.seckill_id).await.unwrap().check(i64::from(STOCK), sold).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lagging_replica_never_hides_a_win() {
    const STOCK: i32 = 20;
    let Sale { pair, db, split, seckill, item } = sale_on_a_private_pair(STOCK).await;
    pair.stop_applying().await.unwrap();
    let mut crowd = JoinSet::new();
    for n in 1..=60 {
        let seckill = seckill.clone();
        let id = item.seckill_id;
        crowd.spawn(async move { buy_then_ask(&seckill, id, n).await.map(|won| won.map(|after| (n, after))) });
    }
    let mut winners = Vec::new();
    while let Some(joined) = crowd.join_next().await {
        winners.extend(joined.unwrap().unwrap());
    }
    assert_eq!(winners.len(), STOCK as usize);
    assert_eq!(success_rows_on(db.replica_pool(), item.seckill_id).await, 0, "the replica really lags");
    let lagging = split.stats();
    assert!(lagging.fallbacks_gtid_wait_timeout >= winners.len() as u64, "each winner's wait timed out: {lagging:?}");
    assert_eq!(lagging.replica_reads_total(), 0, "{lagging:?}");
    // Reads that tolerate staleness skip it once its lag is seen.
    let skipped = eventually(Duration::from_secs(10), async || {
        seckill.list(10).await.unwrap();
        split.stats().fallbacks_lagging > 0
    })
    .await;
    assert!(skipped, "stale reads skip the lagging replica: {:?}", split.stats());

    pair.start_applying().await.unwrap();
    pair.wait_until_caught_up(Duration::from_secs(30)).await.unwrap();
    let caught_up = split.stats();
    for (n, after) in &winners {
        let record = seckill.kill_record_after(item.seckill_id, phone(*n), Some(after)).await.unwrap();
        assert!(record.is_some(), "buyer {n}");
    }
    let after_catch_up = split.stats();
    assert_eq!(
        after_catch_up.replica_reads_total() - caught_up.replica_reads_total(),
        winners.len() as u64,
        "reads after the winners' GTIDs are served by the replica again: {after_catch_up:?}"
    );
    assert_eq!(after_catch_up.fallbacks_gtid_wait_timeout, caught_up.fallbacks_gtid_wait_timeout);
    let back = eventually(Duration::from_secs(10), async || {
        let served = split.stats().replica_reads_total();
        seckill.list(10).await.unwrap();
        split.stats().replica_reads_total() > served
    })
    .await;
    assert!(back, "stale reads come back to the replica: {:?}", split.stats());
    Books::read(db.primary_pool(), item.seckill_id)
        .await
        .unwrap()
        .check(i64::from(STOCK), winners.len() as u64)
        .unwrap();
}

/// The `seckillGtid` cookie a response set, as it would be sent back.
fn gtid_cookie(set_cookies: &[String]) -> Option<String> {
    set_cookies
        .iter()
        .filter_map(|header| header.split(';').next())
        .find(|pair| pair.starts_with(&format!("{GTID_COOKIE}=")))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_win_through_one_instance_is_answered_by_another_on_a_lagging_replica_through_the_gtid_cookie() {
    let pair = private_pair().await;
    let db = ReplicatedTestDatabase::migrated_on(&pair).await.unwrap();
    // Two app instances, each with its own pools and split, as behind a load balancer.
    let instance = |db: &ReplicatedTestDatabase| {
        let split = db.split(quick());
        (Seckill::new(split.clone(), signer()), split)
    };
    let (seller, _) = instance(&db);
    let (other, other_split) = instance(&db);
    let item = open_item(&seller, 3).await;
    let id = item.seckill_id;
    let (first, second) = (
        serve(seckill::seckill::http::router(seller.clone())).await,
        serve(seckill::seckill::http::router(other)).await,
    );
    assert!(db.wait_for_replica(Duration::from_secs(30)).await.unwrap());

    pair.stop_applying().await.unwrap();
    let buyers: Vec<i64> = (1..=5).collect();
    let mut crowd = JoinSet::new();
    for n in buyers {
        let (seller, first, second) = (seller.clone(), first.address, second.address);
        crowd.spawn(async move {
            let buyer = phone(n).to_string();
            let Exposure::Open { token, .. } = seller.expose(id, phone(n)).await.unwrap() else { panic!("open") };
            let phone_cookie = format!("killPhone={buyer}");
            let path = format!("/seckill/{id}/{token}/execution");
            let execution =
                call(first, Method::POST, &path, &[(COOKIE.as_str(), phone_cookie.as_str())], Vec::new()).await;
            let state = execution.json["data"]["state"].as_i64().unwrap();
            let cookie = gtid_cookie(&execution.set_cookies);
            let cookies = match &cookie {
                Some(gtid) => format!("{phone_cookie}; {gtid}"),
                None => phone_cookie,
            };
            let path = format!("/seckill/{id}/result");
            let result = call(second, Method::GET, &path, &[(COOKIE.as_str(), cookies.as_str())], Vec::new()).await;
            (n, state, cookie, result.json["data"].clone())
        });
    }
    let (mut won, mut with_cookie) = (0, 0);
    while let Some(joined) = crowd.join_next().await {
        let (n, state, cookie, record) = joined.unwrap();
        with_cookie += u64::from(cookie.is_some());
        match state {
            1 => {
                won += 1;
                let cookie = cookie.unwrap_or_else(|| panic!("buyer {n}: a win sets the GTID cookie"));
                let value = cookie.trim_start_matches(&format!("{GTID_COOKIE}="));
                assert!(value.parse::<GtidPosition>().is_ok_and(|p| !p.is_empty()), "buyer {n}: {cookie}");
                assert_eq!(record["userPhone"], phone(n).get(), "buyer {n}: the other instance answers the win");
            }
            // A loser decided in a batch with winners carries the batch's GTID: harmless, its read waits for it.
            0 => assert!(record.is_null(), "buyer {n}: {record}"),
            other => panic!("buyer {n}: state {other}"),
        }
    }
    assert_eq!(won, 3);
    assert_eq!(success_rows_on(db.replica_pool(), id).await, 0, "the replica really lags");
    let stats = other_split.stats();
    // Each read with the cookie waited on the lagging replica, then asked the primary; or went to the primary at
    // once, while this instance had not yet learnt that the primary committed the other's write.
    let to_the_primary = stats.fallbacks_gtid_wait_timeout + stats.fallbacks_ahead_of_primary;
    assert_eq!((stats.replica_reads_total(), to_the_primary), (0, with_cookie), "{stats:?}");

    pair.start_applying().await.unwrap();
    pair.wait_until_caught_up(Duration::from_secs(30)).await.unwrap();
    Books::read(db.primary_pool(), id).await.unwrap().check(3, won).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replicated_test_database_is_on_both_servers_and_dropped_when_the_test_passes() {
    let db = ReplicatedTestDatabase::migrated().await.unwrap();
    let name = db.name().to_string();
    let exists = async |pool: &Pool| {
        let mut conn = pool.get_conn().await.unwrap();
        let found: Option<String> = conn
            .exec_first("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", (&name,))
            .await
            .unwrap();
        found.is_some()
    };
    let primary = mysql_async::Pool::new(db.primary().server_url());
    let replica = mysql_async::Pool::new(url_with_database(db.replica_url(), "").as_str());
    assert!(exists(&primary).await && exists(&replica).await);
    assert_eq!(checksums(db.replica_pool()).await, checksums(db.primary_pool()).await, "migrated on both");
    drop(db);
    assert!(!exists(&primary).await, "dropped on the primary");
    let gone = eventually(Duration::from_secs(30), async || !exists(&replica).await).await;
    assert!(gone, "and so on the replica");
    primary.disconnect().await.unwrap();
    replica.disconnect().await.unwrap();
}

#[test]
fn bad_replica_urls_are_a_one_line_error_and_a_non_zero_exit() {
    for (flag, environment) in [(Some("nonsense"), None), (None, Some("mysql://u@h/db,http://elsewhere"))] {
        let mut command = seckill_command("mysql://root@127.0.0.1:1/nothing");
        command.arg("serve").arg("--listen").arg("127.0.0.1:0");
        if let Some(url) = flag {
            command.arg("--replica-url").arg(url);
        }
        match environment {
            Some(urls) => command.env("SECKILL_REPLICA_URLS", urls),
            None => command.env_remove("SECKILL_REPLICA_URLS"),
        };
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|line| line.starts_with("seckill: error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains("replica URL") && errors[0].contains("invalid database URL"), "{stderr}");
    }
}

/// A split over a pool to a port nobody listens on: every replica call fails at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_cannot_be_reached_never_fails_a_read() {
    let db = TestDatabase::migrated().await.unwrap();
    let unreachable =
        ConnectOptions::new("mysql://root@127.0.0.1:1/nothing").prefer_socket(false).build_pool().unwrap();
    let replica = seckill::database::ReplicaPool { name: "127.0.0.1:1".into(), pool: unreachable };
    let split = ReadWriteSplit::new(db.pool().clone(), vec![replica], quick());
    let seckill = Seckill::new(split.clone(), signer());
    let item = open_item(&seckill, 1).await;
    let mut readers = JoinSet::new();
    for _ in 0..20 {
        let seckill = seckill.clone();
        readers.spawn(async move { seckill.get(item.seckill_id).await.map(|item| item.map(|i| i.number)) });
    }
    while let Some(read) = readers.join_next().await {
        assert_eq!(read.unwrap().unwrap(), Some(1));
    }
    let stats = split.stats();
    assert_eq!(stats.replica_reads_total(), 0);
    assert_eq!(stats.fallbacks_down, 20, "every read fell back, the first for failing, the rest while it is skipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_balance_after_an_exchange_and_the_draws_after_a_draw_show_on_another_instance_on_a_lagging_replica() {
    let pair = private_pair().await;
    let db = ReplicatedTestDatabase::migrated_on(&pair).await.unwrap();
    // Two app instances, each with its own pools and split, as behind a load balancer.
    let instance = |db: &ReplicatedTestDatabase| {
        let split = db.split(quick());
        let (exchange, lottery) = (Exchange::new(split.clone()), Lottery::new(split.clone()));
        let routes = seckill::exchange::http::router(exchange.clone(), user_cookies())
            .merge(seckill::lottery::http::router(lottery.clone(), user_cookies()));
        (exchange, lottery, routes, split)
    };
    let (exchange, lottery, writer_routes, _) = instance(&db);
    let (_, _, reader_routes, reader_split) = instance(&db);
    let gift = exchange.create_gift(&NewGift { name: "mug".into(), cost: 20, stock: 10 }).await.unwrap();
    let campaign = lottery.create_campaign(&open_campaign(10)).await.unwrap();
    let users: Vec<i64> = (1..=4).collect();
    for user in &users {
        exchange.grant(*user, 50, "welcome").await.unwrap();
    }
    let (writer, reader) = (serve(writer_routes).await, serve(reader_routes).await);
    assert!(db.wait_for_replica(Duration::from_secs(30)).await.unwrap());

    pair.stop_applying().await.unwrap();
    let mut crowd = JoinSet::new();
    for user in users.clone() {
        let (writer, reader, gift_id, campaign_id) =
            (writer.address, reader.address, gift.gift_id, campaign.campaign_id);
        crowd.spawn(async move {
            let signed_in = signed_in(user);
            let with = |gtid: &str| format!("{signed_in}; {gtid}");
            let path = format!("/exchange/gifts/{gift_id}/exchange");
            let key = format!("r-{user}");
            let headers = [(COOKIE.as_str(), signed_in.as_str()), (IDEMPOTENCY_KEY, key.as_str())];
            let exchanged = call(writer, Method::POST, &path, &headers, Vec::new()).await;
            assert_eq!(exchanged.json["data"]["outcome"], "exchanged", "user {user}: {}", exchanged.text);
            let gtid = gtid_cookie(&exchanged.set_cookies).unwrap_or_else(|| panic!("user {user}: a GTID cookie"));
            let cookies = with(&gtid);
            let get = async |path: &str, cookies: &str| {
                call(reader, Method::GET, path, &[(COOKIE.as_str(), cookies)], Vec::new()).await.json["data"].clone()
            };
            assert_eq!(get("/exchange/balance.json", &cookies).await["balance"], 30, "user {user}");
            let mine = get("/exchange/mine.json", &cookies).await;
            assert_eq!((mine["balance"].as_i64(), mine["exchanges"].as_array().map(Vec::len)), (Some(30), Some(1)));

            let path = format!("/lottery/{campaign_id}/draw");
            let drawn = call(writer, Method::POST, &path, &[(COOKIE.as_str(), cookies.as_str())], Vec::new()).await;
            assert_eq!(drawn.json["data"]["outcome"], "won", "user {user}: {}", drawn.text);
            let later = gtid_cookie(&drawn.set_cookies).unwrap_or_else(|| panic!("user {user}: a GTID cookie"));
            assert_ne!(later, gtid, "user {user}: the draw's GTID replaces the exchange's (one domain)");
            let draws = get(&format!("/lottery/{campaign_id}/mine.json"), &with(&later)).await;
            assert_eq!(draws["draws"][0]["drawId"], drawn.json["data"]["drawId"], "user {user}: {draws}");
        });
    }
    while let Some(joined) = crowd.join_next().await {
        joined.unwrap();
    }
    let mut replica = db.replica_pool().get_conn().await.unwrap();
    let stale: Vec<i64> = replica.query("SELECT credit FROM credit ORDER BY user_id").await.unwrap();
    assert_eq!(stale, [50; 4], "the replica really lags");
    drop(replica);
    let stats = reader_split.stats();
    assert_eq!(stats.replica_reads_total(), 0, "{stats:?}");
    // Each read either waited on the replica in vain, or, when this instance had not yet learnt that the primary
    // committed the other's write (it asks at most once per interval), went to the primary at once.
    let to_the_primary = stats.fallbacks_gtid_wait_timeout + stats.fallbacks_ahead_of_primary;
    assert!(to_the_primary >= 4 * 3, "every read was answered by the primary: {stats:?}");

    pair.start_applying().await.unwrap();
    assert!(db.wait_for_replica(Duration::from_secs(30)).await.unwrap());
    seckill::exchange::Books::read(db.primary_pool()).await.unwrap().check().unwrap();
    let books = LotteryBooks::check(db.primary_pool(), campaign.campaign_id).await.unwrap();
    assert_eq!(books.wins, 4);
}
