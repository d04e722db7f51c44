//! The cluster bench's buyers: each a distinct phone that asks the exposer for its signed URL and then executes
//! with it and the `killPhone` cookie, two real requests of the classic API on a keep-alive connection; and
//! the books of their item afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hyper::header::HeaderValue;
use hyper::{Method, StatusCode, Uri};
use mysql_async::Pool;
use serde::Deserialize;

use super::super::http_load::{Connection, Job};
use crate::cli::bench::error::BenchError;
use crate::cli::latencies::Latencies;
use seckill::database::acquire;
use seckill::database::rows::exec_all;
use seckill::seckill::http::PHONE_COOKIE;
use seckill::seckill::{Books, Phone};

/// When the buyers stop coming.
pub(super) enum Until {
    /// No buyer starts after this instant.
    Deadline(Instant),
    /// This many buyers in all.
    Buyers(u64),
}

/// Distinct buyers of one item, one after another on each connection.
pub(super) struct Buyers {
    seckill_id: i64,
    exposer: Uri,
    first_buyer: u64,
    next: AtomicU64,
    until: Until,
}

impl Buyers {
    /// Buyers `Phone::nth(first_buyer)`, `Phone::nth(first_buyer + 1)`, ... of `seckill_id`.
    pub(super) fn new(seckill_id: i64, first_buyer: u64, until: Until) -> Result<Buyers, BenchError> {
        let exposer = Uri::try_from(format!("/seckill/{seckill_id}/exposer")).map_err(invalid_uri)?;
        Ok(Buyers { seckill_id, exposer, first_buyer, next: AtomicU64::new(0), until })
    }
}

fn invalid_uri(error: impl std::fmt::Display) -> BenchError {
    BenchError::Invalid(format!("a request path: {error}"))
}

/// What the buyers of one connection were told.
#[derive(Debug, Default)]
pub(super) struct BuyersTally {
    /// Buyers told 秒杀成功 (state 1).
    pub(super) told_success: Vec<i64>,
    /// Buyers told sold out or a repeat (states 0, -1): nothing taken.
    pub(super) rejections: u64,
    /// Buyers with no decision: the exposer failed, a refusal (429, a bad token), or a rolled-back seckill.
    pub(super) errors: u64,
    pub(super) first_error: Option<String>,
    /// Buyers whose execution got no answer or an in-doubt one (502, 503, 504): it may have committed.
    pub(super) in_doubt: Vec<i64>,
    /// HTTP requests sent.
    pub(super) requests: u64,
    /// Per buyer, exposer and execution together.
    pub(super) latencies: Latencies,
}

impl BuyersTally {
    fn error(&mut self, detail: String) {
        self.errors += 1;
        self.first_error.get_or_insert(detail);
    }

    pub(super) fn merge(&mut self, other: BuyersTally) {
        self.told_success.extend(other.told_success);
        self.rejections += other.rejections;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.in_doubt.extend(other.in_doubt);
        self.requests += other.requests;
        self.latencies.merge(other.latencies);
    }
}

/// The parts of the classic answers a buyer reads.
#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
}

#[derive(Deserialize)]
struct Exposed {
    exposed: bool,
    md5: Option<String>,
}

#[derive(Deserialize)]
struct Executed {
    state: i64,
}

impl Job for Buyers {
    type Tally = BuyersTally;

    async fn step(&self, connection: &mut Connection, tally: &mut BuyersTally) -> bool {
        let n = match self.until {
            Until::Deadline(deadline) if Instant::now() >= deadline => return false,
            Until::Deadline(_) => self.next.fetch_add(1, Ordering::Relaxed),
            Until::Buyers(count) => match self.next.fetch_add(1, Ordering::Relaxed) {
                n if n < count => n,
                _ => return false,
            },
        };
        let phone = Phone::nth(self.first_buyer + n).get();
        let began = Instant::now();
        self.buy(connection, phone, tally).await;
        tally.latencies.record(began.elapsed());
        true
    }
}

impl Buyers {
    async fn buy(&self, connection: &mut Connection, phone: i64, tally: &mut BuyersTally) {
        let Ok(cookie) = HeaderValue::try_from(format!("{PHONE_COOKIE}={phone}")) else {
            return tally.error(format!("no cookie for {phone}"));
        };
        tally.requests += 1;
        let token = match connection.send(Method::POST, self.exposer.clone(), cookie.clone()).await {
            Ok(answer) if answer.status == StatusCode::OK => {
                match serde_json::from_slice::<Envelope<Exposed>>(&answer.body).ok().and_then(|e| e.data) {
                    Some(Exposed { exposed: true, md5: Some(md5) }) => md5,
                    _ => return tally.error(format!("exposer: {}", String::from_utf8_lossy(&answer.body))),
                }
            }
            Ok(answer) => {
                return tally.error(format!("exposer: {} {}", answer.status, String::from_utf8_lossy(&answer.body)));
            }
            // Nothing is decided by the exposer.
            Err(error) => return tally.error(format!("exposer: {error}")),
        };
        let Ok(execution) = Uri::try_from(format!("/seckill/{}/{token}/execution", self.seckill_id)) else {
            return tally.error(format!("exposer: a token that is no path segment: {token}"));
        };
        tally.requests += 1;
        match connection.send(Method::POST, execution, cookie).await {
            Ok(answer) if answer.status == StatusCode::OK => {
                match serde_json::from_slice::<Envelope<Executed>>(&answer.body).ok().and_then(|e| e.data) {
                    Some(Executed { state: 1 }) => tally.told_success.push(phone),
                    Some(Executed { state: 0 | -1 }) => tally.rejections += 1,
                    _ => tally.error(format!("execution: {}", String::from_utf8_lossy(&answer.body))),
                }
            }
            Ok(answer)
                if [StatusCode::BAD_GATEWAY, StatusCode::SERVICE_UNAVAILABLE, StatusCode::GATEWAY_TIMEOUT]
                    .contains(&answer.status) =>
            {
                tally.in_doubt.push(phone);
                tally.first_error.get_or_insert_with(|| {
                    format!("execution in doubt: {} {}", answer.status, String::from_utf8_lossy(&answer.body))
                });
            }
            Ok(answer) => {
                tally.error(format!("execution: {} {}", answer.status, String::from_utf8_lossy(&answer.body)));
            }
            Err(error) => {
                tally.in_doubt.push(phone);
                tally.first_error.get_or_insert(format!("execution in doubt: {error}"));
            }
        }
    }
}

/// Checks an item's books against what its buyers were told: every buyer told success has a row, every row
/// is a buyer told success or in doubt, no buyer twice, rows = stock taken (so sold = success rows = stock
/// taken when none was in doubt). Says how they balance.
///
/// # Errors
/// [`BenchError::BooksDoNotBalance`] saying how they do not.
pub(super) async fn check_books(
    pool: &Pool,
    seckill_id: i64,
    initial_stock: i64,
    tally: &BuyersTally,
) -> Result<String, BenchError> {
    let books = Books::read(pool, seckill_id).await?;
    let mut conn = acquire(pool).await?;
    let rows: Vec<i64> = exec_all(
        &mut conn,
        "SELECT user_phone FROM success_killed WHERE seckill_id = ?",
        (seckill_id,),
        "the success rows",
    )
    .await?;
    drop(conn);
    let rows: std::collections::HashSet<i64> = rows.into_iter().collect();
    let off = |why: String| BenchError::BooksDoNotBalance(format!("item {seckill_id}: {why}"));
    if let Some(phone) = tally.told_success.iter().find(|phone| !rows.contains(phone)) {
        return Err(off(format!("buyer {phone} was told success and has no row")));
    }
    let told: std::collections::HashSet<i64> = tally.told_success.iter().chain(&tally.in_doubt).copied().collect();
    if let Some(phone) = rows.iter().find(|phone| !told.contains(phone)) {
        return Err(off(format!("a row for buyer {phone}, who was told neither success nor in doubt")));
    }
    let sold = tally.told_success.len() as u64;
    // The rows beyond the buyers told success are in-doubt buyers' (none when none was in doubt, by the above).
    let in_doubt_rows = books.rows - sold as i64;
    books.check(initial_stock, sold + in_doubt_rows.max(0) as u64).map_err(off)?;
    let taken = initial_stock - books.stock;
    Ok(format!(
        "{sold} sold = {} success rows = {taken} stock taken ({} in doubt), no buyer twice, every buyer told success \
         has a row",
        books.rows,
        tally.in_doubt.len()
    ))
}
