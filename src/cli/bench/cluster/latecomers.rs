//! The cluster bench's latecomers: buyers who hold a genuine signed URL for an item that has closed, and execute
//! with it; each request's answer is checked to be the closed answer byte for byte, whoever gave it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::Utc;
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode, Uri};

use super::super::http_load::{Connection, Job};
use crate::cli::bench::error::BenchError;
use crate::cli::latencies::Latencies;
use seckill::seckill::Phone;
use seckill::seckill::http::PHONE_COOKIE;
use seckill::seckill::signing::Signer;

/// How many distinct latecomers' requests are built before the burst, and sent round and round.
const DISTINCT_LATECOMERS: u64 = 4096;

/// Execution requests for a closed item, built before the burst, until a deadline.
pub(super) struct Latecomers {
    requests: Vec<(Uri, HeaderValue)>,
    expected: Bytes,
    next: AtomicUsize,
    deadline: Instant,
}

impl Latecomers {
    /// Latecomers `Phone::nth(first_buyer)` onwards of `seckill_id`, each with a token signed by `signer` (the
    /// instances' key: what the exposer would have given them), expecting `expected` for an answer.
    pub(super) fn new(
        signer: &Signer,
        seckill_id: i64,
        first_buyer: u64,
        expected: impl Into<Bytes>,
        deadline: Instant,
    ) -> Result<Latecomers, BenchError> {
        let now = Utc::now();
        let requests = (first_buyer..first_buyer + DISTINCT_LATECOMERS)
            .map(|n| {
                let phone = Phone::nth(n);
                let token = signer.sign(seckill_id, phone, now);
                let uri = Uri::try_from(format!("/seckill/{seckill_id}/{token}/execution"));
                let cookie = HeaderValue::try_from(format!("{PHONE_COOKIE}={}", phone.get()));
                match (uri, cookie) {
                    (Ok(uri), Ok(cookie)) => Ok((uri, cookie)),
                    _ => Err(BenchError::Invalid(format!("no request for latecomer {phone}"))),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Latecomers { requests, expected: expected.into(), next: AtomicUsize::new(0), deadline })
    }
}

/// What the latecomers of one connection heard.
#[derive(Debug, Default)]
pub(super) struct LatecomersTally {
    /// Answered with the closed answer.
    pub(super) closed: u64,
    /// Answered otherwise, or not at all.
    pub(super) unexpected: u64,
    pub(super) first_unexpected: Option<String>,
    pub(super) latencies: Latencies,
}

impl LatecomersTally {
    pub(super) fn merge(&mut self, other: LatecomersTally) {
        self.closed += other.closed;
        self.unexpected += other.unexpected;
        if self.first_unexpected.is_none() {
            self.first_unexpected = other.first_unexpected;
        }
        self.latencies.merge(other.latencies);
    }
}

impl Job for Latecomers {
    type Tally = LatecomersTally;

    async fn step(&self, connection: &mut Connection, tally: &mut LatecomersTally) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let Some((uri, cookie)) = self.requests.get(n % self.requests.len().max(1)) else {
            return false;
        };
        let began = Instant::now();
        let answer = connection.send(Method::POST, uri.clone(), cookie.clone()).await;
        tally.latencies.record(began.elapsed());
        match answer {
            Ok(answer) if answer.status == StatusCode::OK && answer.body == self.expected => tally.closed += 1,
            Ok(answer) => {
                tally.unexpected += 1;
                tally
                    .first_unexpected
                    .get_or_insert_with(|| format!("{} {}", answer.status, String::from_utf8_lossy(&answer.body)));
            }
            Err(error) => {
                tally.unexpected += 1;
                tally.first_unexpected.get_or_insert(error);
            }
        }
        true
    }
}
