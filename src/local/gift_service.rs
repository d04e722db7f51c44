//! A real gift service on loopback, for tests, the demo and the benchmark: an axum server that delivers each
//! `Idempotency-Key` once, records every call, and fails a chosen share of calls on purpose.
//!
//! It reads each call's body by the contract it is given ([`StubConfig::new`]: the id of what the body asks to
//! deliver, and the key the call must carry; the lottery's is `lottery::delivery::read_gift_call`), so it
//! knows no domain. What it does with `POST /gifts` (any path is taken):
//! - with a rate limit set ([`StubConfig::rate_limit`]), a call above it: 429 with `Retry-After` (whole seconds
//!   until the limit takes a call again, at least 1), and nothing delivered, as a service protecting itself does;
//! - no `Idempotency-Key`, or a body the contract does not read: 400; a key that is not the one the contract
//!   names for the body, or an id it is told to refuse: 422 (the poison answers);
//! - the call is one of the failures chosen for it: 503, and nothing delivered;
//! - otherwise the gift is delivered, once per key: 201 the first time, 200 with `Idempotent-Replayed: true`
//!   every next time; a call chosen to lose its answer delivers and then answers 503 all the same (the window
//!   where the service did the work but the caller never heard of it).
//!
//! Which calls fail is decided from the call's number and a seed, so a run can be replayed. Every call is
//! recorded with its key and its instant, so that a test or a benchmark can count effects, duplicates, the
//! calls in flight at once and the rate the service saw ([`CallLog`]).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use thiserror::Error;

use crate::http::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};

/// A stub that cannot start.
#[derive(Debug, Error)]
pub enum GiftServiceError {
    /// A share out of its range.
    #[error("invalid {setting}: {why}")]
    InvalidSetting { setting: &'static str, why: String },
    /// The stub could not listen.
    #[error("the gift service stub cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
}

/// How the stub reads a call's body: the id of what it asks to deliver and the `Idempotency-Key` the call must
/// carry, or a one-line reason it is no call of the contract (answered 400).
pub type ReadCall = fn(&[u8]) -> Result<(i64, String), String>;

/// How the stub behaves.
#[derive(Debug, Clone)]
pub struct StubConfig {
    /// The contract the calls follow.
    pub read_call: ReadCall,
    /// The share of calls (0 to 1) answered 503 without delivering anything.
    pub fail_share: f64,
    /// The share of calls (0 to 1) that deliver and then answer 503 all the same, as if the answer was lost.
    pub lost_answer_share: f64,
    /// Chooses which calls fail: the same seed fails the same call numbers.
    pub seed: u64,
    /// How long each call takes before its answer (default none), so that calls overlap as they do against a
    /// real service.
    pub latency: Duration,
    /// Ids answered 422 (refused) whatever the call, until [`GiftServiceStub::refuse_ids`] changes them.
    pub refused_ids: HashSet<i64>,
    /// The most calls it takes (default none): above it, 429 with `Retry-After`.
    pub rate_limit: Option<RateLimit>,
}

/// A token bucket: `burst` calls at once, refilled at `rate` calls a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Calls per second taken in the long run.
    pub rate: f64,
    /// Calls taken at once after a quiet spell (at least 1).
    pub burst: u32,
}

impl StubConfig {
    /// Calls read by `read_call`, every one answered right away and none failed or refused.
    pub fn new(read_call: ReadCall) -> Self {
        StubConfig {
            read_call,
            fail_share: 0.0,
            lost_answer_share: 0.0,
            seed: 0,
            latency: Duration::ZERO,
            refused_ids: HashSet::new(),
            rate_limit: None,
        }
    }

    fn check(&self) -> Result<(), GiftServiceError> {
        for (setting, share) in [("fail share", self.fail_share), ("lost answer share", self.lost_answer_share)] {
            if !(0.0..=1.0).contains(&share) {
                return Err(GiftServiceError::InvalidSetting { setting, why: format!("{share} (expected 0 to 1)") });
            }
        }
        if let Some(limit) = self.rate_limit
            && !(limit.rate > 0.0 && limit.rate <= 1_000_000.0 && limit.burst >= 1)
        {
            let why = format!("{} calls/s, burst {} (expected a rate > 0 and a burst >= 1)", limit.rate, limit.burst);
            return Err(GiftServiceError::InvalidSetting { setting: "rate limit", why });
        }
        Ok(())
    }
}

/// What the stub did with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Delivered now (201).
    Delivered,
    /// Already delivered for this key: answered 200 again, nothing done twice.
    Replayed,
    /// Failed on purpose before delivering (503).
    Failed,
    /// Delivered, then answered 503 on purpose.
    LostAnswer,
    /// Refused (400 or 422).
    Refused,
    /// Above the rate limit: answered 429 with `Retry-After`, nothing delivered.
    RateLimited,
}

/// One call the stub answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftCall {
    /// When it arrived, from the stub's start.
    pub at: Duration,
    /// Its `Idempotency-Key`, if any.
    pub key: Option<String>,
    /// The id its body named, if the contract read it.
    pub id: Option<i64>,
    pub outcome: CallOutcome,
}

/// The calls a stub saw, in arrival order, and the rates they make.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    pub calls: Vec<GiftCall>,
}

impl CallLog {
    /// The most calls that arrived within any interval of length `window` (both ends included).
    pub fn max_calls_within(&self, window: Duration) -> usize {
        let times: Vec<Duration> = self.calls.iter().map(|call| call.at).collect();
        let mut most = 0;
        let mut first = 0;
        for (last, at) in times.iter().enumerate() {
            while *at - times[first] > window {
                first += 1;
            }
            most = most.max(last + 1 - first);
        }
        most
    }

    /// From the first call to the last.
    pub fn span(&self) -> Duration {
        match (self.calls.first(), self.calls.last()) {
            (Some(first), Some(last)) => last.at - first.at,
            _ => Duration::ZERO,
        }
    }

    /// Calls per second between the first call and the last (the intervals between calls, over their
    /// total): the rate the service saw while it was being called. `None` with fewer than two calls.
    pub fn achieved_rate(&self) -> Option<f64> {
        let span = self.span().as_secs_f64();
        (self.calls.len() >= 2 && span > 0.0).then(|| (self.calls.len() - 1) as f64 / span)
    }

    /// Calls per second that arrived in `[from, to)` (instants from the stub's start, see
    /// [`GiftServiceStub::elapsed`]): the rate over a window the caller chose, say the steady state of a run.
    /// `None` for an empty window.
    pub fn rate_between(&self, from: Duration, to: Duration) -> Option<f64> {
        let seconds = to.checked_sub(from)?.as_secs_f64();
        let calls = self.calls.iter().filter(|call| call.at >= from && call.at < to).count();
        (seconds > 0.0).then(|| calls as f64 / seconds)
    }

    /// Calls per second over the middle `share` of the calls (by count): the pace while a backlog kept the
    /// caller busy, without the ramp at the start and the tail of the last retries waiting out their backoff.
    /// `None` when too few calls are left to measure.
    pub fn middle_rate(&self, share: f64) -> Option<f64> {
        let calls = self.calls.len();
        let skip = (calls as f64 * (1.0 - share.clamp(0.0, 1.0)) / 2.0) as usize;
        let first = self.calls.get(skip)?;
        let last = self.calls.get(calls.checked_sub(skip + 1)?)?;
        let span = last.at.checked_sub(first.at)?.as_secs_f64();
        let intervals = calls.saturating_sub(2 * skip + 1);
        (span > 0.0 && intervals > 0).then(|| intervals as f64 / span)
    }

    /// How far the achieved rate is from `configured`, in percent of it (negative: slower).
    pub fn rate_deviation_percent(&self, configured: f64) -> Option<f64> {
        self.achieved_rate().map(|achieved| (achieved - configured) / configured * 100.0)
    }
}

#[derive(Debug)]
struct StubState {
    config: StubConfig,
    started: Instant,
    next_call: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    book: Mutex<Book>,
    bucket: Mutex<Bucket>,
}

/// The rate limit's state: tokens left, as of `at`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl StubState {
    /// Takes a token for a call arriving now, or answers how long until one is there.
    fn admit(&self) -> Result<(), Duration> {
        let Some(limit) = self.config.rate_limit else { return Ok(()) };
        // A poisoned lock means a handler panicked between two assignments of plain numbers: still a bucket.
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let refilled = bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * limit.rate;
        bucket.tokens = refilled.min(f64::from(limit.burst));
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / limit.rate))
        }
    }
}

/// What the stub has delivered and heard.
#[derive(Debug, Default)]
struct Book {
    /// Key to the id delivered for it: one entry per effect.
    delivered: HashMap<String, i64>,
    calls: Vec<GiftCall>,
    refused_ids: HashSet<i64>,
}

impl StubState {
    fn book(&self) -> MutexGuard<'_, Book> {
        // A poisoned lock means a handler panicked mid-update of plain maps; what they hold is still the record.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts a call in flight while it lives.
struct InFlight<'a>(&'a StubState);

impl<'a> InFlight<'a> {
    fn enter(state: &'a StubState) -> Self {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A gift service on loopback that runs until stopped (or dropped).
#[derive(Debug)]
pub struct GiftServiceStub {
    address: SocketAddr,
    state: Arc<StubState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl GiftServiceStub {
    /// Starts a stub on `127.0.0.1`, on a free port.
    ///
    /// # Errors
    /// A share out of 0..=1, or no port to listen on.
    pub async fn start(config: StubConfig) -> Result<Self, GiftServiceError> {
        Self::listen("127.0.0.1:0", config).await
    }

    /// Starts a stub on `address` (`host:port`).
    ///
    /// # Errors
    /// A share out of 0..=1, or the address cannot be listened on.
    pub async fn listen(address: &str, config: StubConfig) -> Result<Self, GiftServiceError> {
        config.check()?;
        let book = Book { refused_ids: config.refused_ids.clone(), ..Book::default() };
        let listen_error = |source| GiftServiceError::Listen { address: address.to_string(), source };
        let listener = tokio::net::TcpListener::bind(address).await.map_err(listen_error)?;
        let bound = listener.local_addr().map_err(listen_error)?;
        let bucket =
            Bucket { tokens: config.rate_limit.map_or(0.0, |limit| f64::from(limit.burst)), at: Instant::now() };
        let state = Arc::new(StubState {
            config,
            started: Instant::now(),
            next_call: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            book: Mutex::new(book),
            bucket: Mutex::new(bucket),
        });
        let router = Router::new().fallback(answer).with_state(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(error) = serving.await {
                tracing::warn!(%error, "gift service stub stopped");
            }
        });
        Ok(GiftServiceStub { address: bound, state, stop: Some(stop), task: Some(task) })
    }

    /// The URL to give a gift worker.
    pub fn url(&self) -> String {
        format!("http://{}/gifts", self.address)
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every call answered so far, in arrival order.
    pub fn call_log(&self) -> CallLog {
        let mut calls = self.state.book().calls.clone();
        // Recorded as they are answered; a slow call can be answered after one that came later.
        calls.sort_by_key(|call| call.at);
        CallLog { calls }
    }

    /// The time since the stub started: the clock of [`GiftCall::at`], to mark a window for
    /// [`CallLog::rate_between`].
    pub fn elapsed(&self) -> Duration {
        self.state.started.elapsed()
    }

    /// Gifts delivered (one per key).
    pub fn delivered(&self) -> usize {
        self.state.book().delivered.len()
    }

    /// Effects per id: how many keys delivered a gift for each id. A worker that keys its calls as the
    /// contract says makes this 1 for every id, however often it calls.
    pub fn effects_per_id(&self) -> HashMap<i64, u64> {
        let mut effects = HashMap::new();
        for id in self.state.book().delivered.values() {
            *effects.entry(*id).or_insert(0) += 1;
        }
        effects
    }

    /// From now on, refuse (422) exactly these ids: an operator fixing what made them poison.
    pub fn refuse_ids(&self, ids: HashSet<i64>) {
        self.state.book().refused_ids = ids;
    }

    /// The most calls it was answering at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Stops listening, letting calls in progress finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for GiftServiceStub {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Set apart from the failures' choice, so that the two shares are independent whatever the seed.
const LOST_ANSWER_STREAM: u64 = 0x5EC1_A5A5_0F0F_1234;

/// Whether call `number` is one of the `share` chosen by `seed`: deterministic, and spread evenly.
fn chosen(seed: u64, number: u64, share: f64) -> bool {
    // The top 53 bits as a fraction in [0, 1): exact in an f64.
    let fraction = (splitmix64(seed ^ splitmix64(number)) >> 11) as f64 / (1u64 << 53) as f64;
    share > 0.0 && fraction < share
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn answer(State(state): State<Arc<StubState>>, headers: HeaderMap, body: Bytes) -> Response {
    let _in_flight = InFlight::enter(&state);
    let at = state.started.elapsed();
    let number = state.next_call.fetch_add(1, Ordering::SeqCst);
    let key = headers.get(IDEMPOTENCY_KEY).and_then(|value| value.to_str().ok()).map(str::to_string);
    let read = (state.config.read_call)(&body);
    if !state.config.latency.is_zero() {
        tokio::time::sleep(state.config.latency).await;
    }
    let config = &state.config;
    let admitted = state.admit();
    let (outcome, status, why) = match (&key, &read) {
        _ if admitted.is_err() => (CallOutcome::RateLimited, StatusCode::TOO_MANY_REQUESTS, "slow down".to_string()),
        (None, _) => (CallOutcome::Refused, StatusCode::BAD_REQUEST, "no Idempotency-Key".to_string()),
        (_, Err(why)) => (CallOutcome::Refused, StatusCode::BAD_REQUEST, why.clone()),
        (Some(key), Ok((id, expected))) if key != expected => {
            (CallOutcome::Refused, StatusCode::UNPROCESSABLE_ENTITY, format!("key {key} is not {id}'s"))
        }
        (_, Ok((id, _))) if state.book().refused_ids.contains(id) => {
            (CallOutcome::Refused, StatusCode::UNPROCESSABLE_ENTITY, format!("{id} is refused"))
        }
        _ if chosen(config.seed, number, config.fail_share) => {
            (CallOutcome::Failed, StatusCode::SERVICE_UNAVAILABLE, "failing on purpose".to_string())
        }
        (Some(key), Ok((id, _))) => {
            let first = {
                let mut book = state.book();
                book.delivered.insert(key.clone(), *id).is_none()
            };
            if chosen(config.seed ^ LOST_ANSWER_STREAM, number, config.lost_answer_share) {
                (CallOutcome::LostAnswer, StatusCode::SERVICE_UNAVAILABLE, "delivered, answer lost on purpose".into())
            } else if first {
                (CallOutcome::Delivered, StatusCode::CREATED, "delivered".to_string())
            } else {
                (CallOutcome::Replayed, StatusCode::OK, "already delivered".to_string())
            }
        }
    };
    let id = read.as_ref().ok().map(|(id, _)| *id);
    state.book().calls.push(GiftCall { at, key, id, outcome });
    let mut response = (status, axum::Json(serde_json::json!({ "result": why }))).into_response();
    if outcome == CallOutcome::Replayed {
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    if let Err(wait) = admitted {
        // Whole seconds, rounded up: a call made when told is taken.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_calls_come_near_their_share_and_repeat_with_the_seed() {
        let picked = (0..10_000).filter(|n| chosen(7, *n, 0.3)).count();
        assert!((2_800..3_200).contains(&picked), "{picked}");
        let again = (0..10_000).filter(|n| chosen(7, *n, 0.3)).count();
        assert_eq!(picked, again);
        assert_eq!((0..1000).filter(|n| chosen(7, *n, 0.0)).count(), 0);
        assert_eq!((0..1000).filter(|n| chosen(7, *n, 1.0)).count(), 1000);
    }

    #[test]
    fn the_rate_limit_takes_its_burst_then_says_when_to_come_back() {
        let config = StubConfig {
            rate_limit: Some(RateLimit { rate: 10.0, burst: 3 }),
            ..StubConfig::new(|_| Err("no contract".into()))
        };
        let state = StubState {
            config,
            started: Instant::now(),
            next_call: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            book: Mutex::new(Book::default()),
            bucket: Mutex::new(Bucket { tokens: 3.0, at: Instant::now() }),
        };
        assert!((0..3).all(|_| state.admit().is_ok()), "the burst");
        let wait = state.admit().unwrap_err();
        assert!(wait > Duration::from_millis(50) && wait <= Duration::from_millis(100), "{wait:?}");
        std::thread::sleep(wait + Duration::from_millis(1));
        assert!(state.admit().is_ok(), "taken when told");
        let unlimited = StubConfig::new(|_| Err("no contract".into()));
        assert!(unlimited.check().is_ok());
        for (rate, burst) in [(0.0, 1), (-1.0, 1), (f64::NAN, 1), (10.0, 0)] {
            let config = StubConfig { rate_limit: Some(RateLimit { rate, burst }), ..unlimited.clone() };
            assert!(config.check().is_err(), "{rate} {burst}");
        }
    }

    #[test]
    fn the_log_counts_calls_within_windows_and_the_rate() {
        let call =
            |ms: u64| GiftCall { at: Duration::from_millis(ms), key: None, id: None, outcome: CallOutcome::Refused };
        let log = CallLog { calls: [0, 10, 20, 30, 500, 1000].into_iter().map(call).collect() };
        assert_eq!(log.max_calls_within(Duration::from_millis(30)), 4);
        assert_eq!(log.max_calls_within(Duration::from_millis(29)), 3);
        assert_eq!(log.max_calls_within(Duration::from_secs(1)), 6);
        assert_eq!(log.achieved_rate(), Some(5.0));
        assert_eq!(log.rate_between(Duration::ZERO, Duration::from_millis(100)), Some(40.0));
        assert_eq!(log.rate_between(Duration::from_millis(500), Duration::from_millis(500)), None);
        assert_eq!(log.rate_deviation_percent(10.0), Some(-50.0));
        assert_eq!(CallLog::default().achieved_rate(), None);
        // The middle two thirds: calls 1 to 4 (10 ms to 500 ms), three intervals in 0.49 s; the ramp and the
        // tail are left out.
        let middle = log.middle_rate(2.0 / 3.0).unwrap();
        assert!((middle - 3.0 / 0.49).abs() < 1e-9, "{middle}");
        assert_eq!(CallLog { calls: vec![call(0)] }.middle_rate(0.8), None);
    }
}
