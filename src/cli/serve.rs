//! `seckill serve`: the HTTP API and the sale page, the points exchange's and the lottery's APIs and pages, with
//! request logs and graceful shutdown; Prometheus metrics at `/metrics` and the probes `/healthz` and `/readyz`
//! on a management listener of their own (loopback by default), never on the API's. With `--replica-url`, reads
//! go to the replicas as [`seckill::database::ReadWriteSplit`] says.

use std::net::SocketAddr;

use axum::Router;
use clap::Args;
use metrics_exporter_prometheus::PrometheusHandle;
use seckill::database::ReadWriteSplit;
use seckill::exchange::Exchange;
use seckill::exchange::http::ExchangeHttp;
use seckill::http::front_door::SIGN_IN_PATH;
use seckill::http::health::{self, HEALTH_PATH, READY_PATH, Readiness};
use seckill::http::{SignedUserCookie, USER_COOKIE, with_json_fallbacks};
use seckill::lottery::Lottery;
use seckill::lottery::http::LotteryHttp;
use seckill::migrate::Migrator;
use seckill::prometheus::METRICS_PATH;
use seckill::seckill::Seckill;
use seckill::seckill::http::{AdmissionConfig, DetailCache, Rate, SeckillHttp};
use seckill::shared_state::bounded_redis::BoundedRedis;
use tokio::net::TcpListener;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use super::signing_args::SigningArgs;
use super::{DatabaseTarget, Failure, exit_code};

/// Where metrics are served unless told otherwise: loopback, so that only this machine can scrape them, on a fixed
/// port because Prometheus names a target by its address (a port that changed at every start would split every
/// series at each restart); 9464 is the port in-process Prometheus exporters use by default (OpenTelemetry's).
pub(crate) const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = listen_address)]
    listen: SocketAddr,
    /// Address Prometheus metrics (GET /metrics) and the probes (GET /healthz, /readyz) are served on, apart from
    /// the API: keep it on loopback or an interface only your monitoring reaches. Port 0 takes a free port (the
    /// address is printed at start).
    #[arg(
        long,
        env = "SECKILL_METRICS_LISTEN",
        hide_env_values = true,
        default_value = DEFAULT_METRICS_LISTEN,
        value_parser = listen_address
    )]
    metrics_listen: SocketAddr,
    /// Serve a sign-in page at /signin where anyone signs in as any user id: for development and demos only, never
    /// in production (a shop signs its users in with its own identity). Needs hmac signing (SECKILL_SECRET).
    #[arg(long)]
    dev_sign_in: bool,
    /// Apply pending migrations and procedures before serving. Without it, serve refuses a database whose
    /// schema is not the one this seckill was built with (`seckill status` shows the difference).
    #[arg(long)]
    migrate: bool,
    #[command(flatten)]
    instance: InstanceArgs,
}

/// What every instance of the app is configured with, alone (`seckill serve`) or several behind a balancer
/// (`seckill cluster`, which passes them on to each instance).
#[derive(Debug, Args)]
pub(crate) struct InstanceArgs {
    /// A Redis to serve item details through (cache-aside, 1 s TTL) and to share closed state through (items
    /// sold out or ended, lotteries all drawn; the balancer reads it), e.g. redis://127.0.0.1:6379/.
    /// `seckill cluster` starts a private one without it.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub(crate) redis_url: Option<String>,
    #[command(flatten)]
    pub(crate) signing: SigningArgs,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
}

/// Rate limits on the execution endpoint: per process, except the buyer's, which with --redis-url holds across
/// every instance sharing that Redis (and falls back to per process while Redis fails).
#[derive(Debug, Args)]
pub(crate) struct LimitArgs {
    /// Executions per second one buyer may make (0: unlimited).
    #[arg(long, default_value_t = 5.0)]
    user_rate: f64,
    /// How many executions one buyer may make at once before the rate applies.
    #[arg(long, default_value_t = 10.0)]
    user_burst: f64,
    /// Executions per second one item takes (0: unlimited).
    #[arg(long, default_value_t = 0.0)]
    item_rate: f64,
    /// How many executions one item takes at once before the rate applies.
    #[arg(long, default_value_t = 1000.0)]
    item_burst: f64,
}

impl LimitArgs {
    pub(crate) fn config(&self) -> AdmissionConfig {
        let rate = |per_second: f64, burst: f64| (per_second > 0.0).then(|| Rate::new(per_second, burst));
        AdmissionConfig {
            per_user: rate(self.user_rate, self.user_burst),
            per_item: rate(self.item_rate, self.item_burst),
        }
    }

    /// The same limits as `seckill serve` options, for the instances `seckill cluster` starts.
    pub(crate) fn serve_args(&self) -> Vec<String> {
        [
            ("--user-rate", self.user_rate),
            ("--user-burst", self.user_burst),
            ("--item-rate", self.item_rate),
            ("--item-burst", self.item_burst),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value.to_string()])
        .collect()
    }
}

pub(crate) async fn run(
    target: &DatabaseTarget,
    ServeArgs { listen, metrics_listen, dev_sign_in, migrate, instance: args }: ServeArgs,
) -> Result<(), Failure> {
    let signer = args.signing.signer()?;
    let front_door = match (dev_sign_in, args.signing.hmac_secret()) {
        (false, _) => seckill::app::front_door(),
        (true, Some(secret)) => seckill::app::front_door().development_sign_in(SignedUserCookie::new(secret)?),
        (true, None) => {
            return Err(Failure::new("--dev-sign-in signs users in with the hmac secret, and there is none")
                .hint("set SECKILL_SECRET (hmac signing)"));
        }
    };
    let database = target.split_or_throwaway("seckill").await?;
    let migrator = Migrator::embedded()?;
    if migrate || target.is_throwaway() {
        migrator.run(database.primary()).await?;
    } else {
        check_schema(&migrator, database.primary()).await?;
    }
    // One connection for everything shared through Redis: its health (and back-off) is then one too.
    let redis = match args.redis_url.as_deref() {
        Some(url) => Some(connect_redis(url).await?),
        None => None,
    };
    let mut readiness = Readiness::new(database.primary().clone(), migrator);
    if let Some(redis) = &redis {
        readiness = readiness.with_redis(redis.clone());
    }
    let signed_in = signed_in_routes(&database, args.signing.hmac_secret(), redis.clone())?;
    let mut service = Seckill::new(database, signer);
    if let Some(redis) = &redis {
        service = service.with_redis(redis.clone(), None);
    }
    let routes = seckill_routes(service, redis, args.limits.config());
    let metrics = seckill::prometheus::install().map_err(|e| Failure::new(e.to_string()))?;
    let listener = bind(listen).await?;
    let metrics_listener = bind(metrics_listen).await.map_err(|failure| {
        failure
            .hint("metrics have a listener of their own: pass --metrics-listen with another port (0 for any free one)")
    })?;
    let management = metrics_listener.local_addr()?;
    eprintln!(
        "seckill: Prometheus metrics at http://{management}{METRICS_PATH}, probes at http://{management}{HEALTH_PATH} \
         and {READY_PATH}"
    );
    let metrics = serve_management(metrics_listener, metrics, readiness);
    if dev_sign_in {
        eprintln!(
            "seckill: development sign-in at http://{}{SIGN_IN_PATH}: anyone signs in as anyone",
            listener.local_addr()?
        );
    }
    let routes = routes.merge(front_door.router()).merge(seckill::app::openapi_router());
    let app = host(match signed_in {
        Some(signed_in) => {
            let address = listener.local_addr()?;
            eprintln!(
                "seckill: the points exchange at http://{address}/exchange, the lottery at \
                 http://{address}/lottery/{{campaign}} (users sign in by the {USER_COOKIE} cookie)"
            );
            routes.merge(signed_in)
        }
        None => routes,
    });
    let served = serve(listener, app).await;
    metrics.abort();
    served
}

/// Refuses a database whose schema is not this build's: on a database never migrated every call would fail
/// (and a failure there says nothing a user can act on), and on one behind or drifted the procedures would
/// answer in shapes the code does not expect. An account that cannot read the procedures' definitions (an app
/// account with EXECUTE only) cannot check: that is said, and serving goes on (a call to a procedure that is
/// missing is then answered as not done).
async fn check_schema(migrator: &Migrator, pool: &mysql_async::Pool) -> Result<(), Failure> {
    let status = match migrator.status(pool).await {
        Ok(status) => status,
        Err(error) => {
            eprintln!("seckill: warning: the schema is not checked: {error}");
            return Ok(());
        }
    };
    if status.is_in_sync() {
        return Ok(());
    }
    Err(Failure::new(format!("the database's schema is not this seckill's: {}", status.summary()))
        .hint(
            "run `seckill migrate` with the same --database-url first (`seckill status` shows each difference), or \
             serve with --migrate",
        )
        .exit_code(exit_code::NOT_IN_SYNC))
}

/// `--metrics-listen` for the message service's commands (relay, warehouse, gift worker): off unless given, so that
/// several of them and `serve` on one machine never fight over a port.
#[derive(Debug, Args)]
pub(crate) struct MetricsArgs {
    /// Serve Prometheus metrics (GET /metrics) on this address (loopback or a monitoring interface only; port 0
    /// takes a free one, printed at start): the outbox's messages by state and the age of the oldest not yet
    /// consumed, which the alert rules in docs/monitoring/ watch.
    #[arg(long, value_parser = listen_address)]
    metrics_listen: Option<SocketAddr>,
}

impl MetricsArgs {
    /// Starts serving the metrics when asked to; the returned task ends with the process.
    pub(crate) async fn serve(&self) -> Result<Option<tokio::task::JoinHandle<()>>, Failure> {
        let Some(address) = self.metrics_listen else { return Ok(None) };
        let handle = seckill::prometheus::install().map_err(|e| Failure::new(e.to_string()))?;
        let listener = bind(address).await?;
        eprintln!("seckill: Prometheus metrics at http://{}{METRICS_PATH}", listener.local_addr()?);
        Ok(Some(tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, seckill::prometheus::router(handle)).await {
                tracing::error!(%error, "the metrics listener stopped");
            }
        })))
    }
}

/// Serves the metrics and the probes on their own listener until the process stops; a failure is logged, and
/// the API goes on.
fn serve_management(
    listener: TcpListener,
    handle: PrometheusHandle,
    readiness: Readiness,
) -> tokio::task::JoinHandle<()> {
    let routes = seckill::prometheus::router(handle).merge(health::router(readiness));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, routes).await {
            tracing::error!(%error, "the management listener stopped");
        }
    })
}

/// The library's seckill router, with the limits given and, with Redis, the detail cache and the buyer's limit
/// shared across instances.
pub(crate) fn seckill_routes(service: Seckill, redis: Option<BoundedRedis>, limits: AdmissionConfig) -> Router {
    let mut http = SeckillHttp::new(service).admission(limits);
    if let Some(redis) = redis {
        http = http.detail_cache(DetailCache::new(redis.clone())).shared_buyer_limit(redis, None);
    }
    http.router()
}

/// The routers whose users sign in: the points exchange's and the lottery's APIs and pages, both reading the one
/// `seckillUser` cookie, signed under the same HMAC secret as seckill URLs (the cookie's tag is domain-separated
/// from theirs). Classic signing has no secret, so then neither is served: an unsigned user id would let anyone
/// spend anyone's points and take anyone's draws. With Redis, lottery instances share "all drawn" through it.
fn signed_in_routes(
    database: &ReadWriteSplit,
    hmac_secret: Option<&str>,
    redis: Option<BoundedRedis>,
) -> Result<Option<Router>, Failure> {
    let Some(secret) = hmac_secret else {
        eprintln!(
            "seckill: the points exchange and the lottery are not served: their user cookie needs hmac signing \
             (SECKILL_SECRET)"
        );
        return Ok(None);
    };
    let cookie = SignedUserCookie::new(secret)?;
    let mut lottery = Lottery::new(database.clone());
    if let Some(redis) = redis {
        lottery = lottery.with_redis(redis, None);
    }
    let exchange = ExchangeHttp::new(Exchange::new(database.clone()), cookie.clone()).router();
    Ok(Some(exchange.merge(LotteryHttp::new(lottery, cookie).router())))
}

/// A bounded connection to the Redis at `url`, for the shared closed state.
async fn connect_redis(url: &str) -> Result<BoundedRedis, Failure> {
    let shown = seckill::database::url_without_password(url);
    BoundedRedis::connect(url).await.map_err(|e| Failure::new(format!("cannot use Redis at {shown}: {e}")))
}

/// What the binary adds around the library's routers: JSON answers for unknown routes and methods, request logs.
pub(crate) fn host(routes: Router) -> Router {
    with_json_fallbacks(routes).layer(
        TraceLayer::new_for_http()
            .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
            .on_response(DefaultOnResponse::new().level(Level::INFO)),
    )
}

/// A `host:port` to listen on: an IP address, or a name that resolves (`localhost:8080`: its IPv4 address when
/// it has one, where most clients of the name look first).
pub(crate) fn listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    let expected = "expected host:port, e.g. 127.0.0.1:8080 or localhost:8080";
    let addresses: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|e| format!("cannot resolve {text}: {e} ({expected})"))?
        .collect();
    addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| format!("{text} resolves to no address ({expected})"))
}

pub(crate) async fn bind(address: SocketAddr) -> Result<TcpListener, Failure> {
    TcpListener::bind(address).await.map_err(|e| Failure::new(format!("cannot listen on {address}: {e}")))
}

/// Serves until Ctrl-C or SIGTERM, then lets requests in flight finish.
pub(crate) async fn serve(listener: TcpListener, app: Router) -> Result<(), Failure> {
    let address = listener.local_addr()?;
    let stop = shutdown_signal();
    eprintln!("seckill: serving http://{address}/seckill/list (Ctrl-C to stop)");
    axum::serve(listener, app).with_graceful_shutdown(stop).await?;
    eprintln!("seckill: stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM, listened for from this call on rather than from the first poll: a signal that comes in
/// between (a supervisor stopping a process that has just said it is up) is then neither lost nor left to its
/// default action, which would end the process before it has stopped what it started.
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let signals =
            signal(SignalKind::interrupt()).and_then(|interrupt| Ok((interrupt, signal(SignalKind::terminate())?)));
        async move {
            match signals {
                Ok((mut interrupt, mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                // No signal handling to be had: Ctrl-C alone, as well as it can be listened for.
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
