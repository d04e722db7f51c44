//! The cluster bench's load generator: many HTTP/1.1 keep-alive connections, each owned by one task that drives
//! it through hyper's client connection directly (no pool to look a connection up in, no executor hop per
//! request), one request in flight per connection, requests assembled from parts made once (parsed URIs,
//! header values) rather than from text.
//!
//! A [`Job`] says what one step on a connection is (a seckill is two requests; a latecomer one) and tallies
//! what it saw; [`drive`] runs it on every connection until it says stop. The generator's own ceiling on this
//! machine is measured against [`super::canned_server::CannedServer`], so that a figure through the balancer
//! can be told from a figure of the generator.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{COOKIE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one request may take, answer read, before the generator gives up on it (no caller waits forever).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long opening one connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An answer as the generator read it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

/// The client half of an open connection and the future that drives it.
type Link = (SendRequest<Full<Bytes>>, Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>);

/// One keep-alive connection to one server, opened again after it breaks.
///
/// The connection's driver is polled by the task that sends, inside [`Connection::send`], rather than spawned
/// as a task of its own: an HTTP/1.1 client connection has nothing to do between requests, and one task per
/// connection saves two task wake-ups per request, which is most of what a small request costs the generator.
pub(crate) struct Connection {
    address: SocketAddr,
    host: HeaderValue,
    link: Option<Link>,
}

impl Connection {
    /// A connection to `address`, opened now.
    ///
    /// # Errors
    /// Why it could not be opened.
    pub(crate) async fn open(address: SocketAddr) -> Result<Connection, String> {
        let host = HeaderValue::from_str(&address.to_string()).map_err(|e| e.to_string())?;
        let mut connection = Connection { address, host, link: None };
        connection.link().await?;
        Ok(connection)
    }

    async fn link(&mut self) -> Result<&mut Link, String> {
        if self.link.as_ref().is_none_or(|(sender, _)| sender.is_closed()) {
            let address = self.address;
            let connect = async move {
                let stream = TcpStream::connect(address).await.map_err(|e| format!("connect {address}: {e}"))?;
                // Small requests and answers: waiting to fill a segment only adds latency.
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                let (sender, driver) =
                    http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
                Ok::<_, String>((sender, Box::pin(driver)))
            };
            let link = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| format!("connect {address}: no connection in {} s", CONNECT_TIMEOUT.as_secs()))??;
            self.link = Some(link);
        }
        self.link.as_mut().ok_or_else(|| "no connection".to_string())
    }

    /// Sends `method uri` (origin form: a path) with this `Cookie` and no body, and reads the whole answer. A
    /// connection that failed is dropped and opened again by the next request.
    ///
    /// # Errors
    /// No answer: the connection failed or broke, or nothing came within 30 s.
    pub(crate) async fn send(&mut self, method: Method, uri: Uri, cookie: HeaderValue) -> Result<Answer, String> {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(COOKIE, cookie);
        let exchange = async {
            let (sender, driver) = match self.link().await {
                Ok(link) => link,
                Err(error) => return (Err(error), true),
            };
            let exchange = async {
                sender.ready().await.map_err(|e| e.to_string())?;
                let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
                let status = response.status();
                let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
                Ok(Answer { status, body })
            };
            let mut exchange = std::pin::pin!(exchange);
            // The answer, and whether the connection is over (its driver ended, or the exchange failed).
            tokio::select! {
                biased;
                answer = &mut exchange => {
                    let over = answer.is_err();
                    (answer, over)
                }
                // The connection ended, maybe right after the answer (a server closes a keep-alive connection
                // after so many requests, nginx after 1,000): whatever it delivered is the exchange's to take.
                ended = driver => match (exchange.await, ended) {
                    (Ok(answer), _) => (Ok(answer), true),
                    (Err(error), Ok(())) => (Err(format!("the server closed the connection: {error}")), true),
                    (Err(_), Err(error)) => (Err(error.to_string()), true),
                },
            }
        };
        let (answer, over) = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(answered) => answered,
            Err(_) => (Err(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())), true),
        };
        // An ended driver is never polled again: the next request opens a new connection.
        if over {
            self.link = None;
        }
        answer
    }
}

/// What each connection does, step after step.
pub(crate) trait Job: Send + Sync + 'static {
    /// What one connection saw.
    type Tally: Default + Send + 'static;

    /// One step on `connection`, recorded in `tally`; `false` once there is nothing left to do.
    fn step(&self, connection: &mut Connection, tally: &mut Self::Tally) -> impl Future<Output = bool> + Send;
}

/// Opens `count` connections to `address`, all before any is used, so that the measured time holds requests
/// only.
///
/// # Errors
/// The first connection that could not be opened.
pub(crate) async fn open_connections(address: SocketAddr, count: usize) -> Result<Vec<Connection>, String> {
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..count.max(1) {
        opening.spawn(Connection::open(address));
    }
    let mut connections = Vec::with_capacity(count);
    while let Some(opened) = opening.join_next().await {
        connections.push(opened.map_err(|e| e.to_string())??);
    }
    Ok(connections)
}

/// Runs `job` on every connection, each in its own task, until each step says stop; every connection's tally.
pub(crate) async fn drive<J: Job>(connections: Vec<Connection>, job: Arc<J>) -> Vec<J::Tally> {
    let workers: Vec<_> = connections
        .into_iter()
        .map(|mut connection| {
            let job = job.clone();
            tokio::spawn(async move {
                let mut tally = J::Tally::default();
                while job.step(&mut connection, &mut tally).await {
                    // A server that answers at once never makes a step wait: let the others run.
                    tokio::task::coop::consume_budget().await;
                }
                tally
            })
        })
        .collect();
    let mut tallies = Vec::with_capacity(workers.len());
    for worker in workers {
        if let Ok(tally) = worker.await {
            tallies.push(tally);
        }
    }
    tallies
}
