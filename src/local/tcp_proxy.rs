//! A loopback TCP proxy for benchmarks and fault tests: it can add network latency, cut connections at random
//! points in the middle of a conversation, and make the connections open at one instant go silent.
//!
//! - **Latency**: each direction of each connection is a reader that stamps chunks with their due time and a
//!   writer that sends them when due, so the delay adds latency without limiting throughput, as a long cable
//!   would.
//! - **Cuts**: with the cut probability set, each chunk read may instead end the connection: both sockets are
//!   closed at once, wherever the conversation was (mid-query, mid-answer, before or after a COMMIT). The
//!   probability can be changed while it runs, to cut during one phase of a test and not another.
//! - **Silence**: [`TcpProxy::silence`] makes every connection open at that instant stop forwarding without a
//!   word: bytes are read and dropped in both directions, and neither side sees a FIN or an RST, even when the
//!   other side closes (as a frozen host, a partition or a firewall dropping the flow would do). Connections made
//!   afterwards are forwarded as usual, so a client that gives up on a silent connection and opens a new one gets
//!   through.
//!
//! It listens on 127.0.0.1 only. Clients must really use it: mysql_async swaps a TCP connection to this machine
//! for the server's Unix socket unless `prefer_socket` is off (see [`crate::database::ConnectOptions::via`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A running proxy; stops accepting when dropped (connections already open run on until they end).
#[derive(Debug)]
pub struct TcpProxy {
    address: SocketAddr,
    acceptor: JoinHandle<()>,
    faults: Arc<Faults>,
}

#[derive(Debug, Default)]
struct Faults {
    /// Chance that a chunk ends its connection instead of being forwarded, in parts per million.
    cut_ppm: AtomicU32,
    cuts: AtomicU64,
    /// Raised by each [`TcpProxy::silence`]: a connection accepted under an earlier epoch is silent.
    epoch: AtomicU64,
    /// Connections open now.
    open: AtomicU64,
    /// Connections that were open when they were silenced.
    silenced: AtomicU64,
    /// Silent connections whose client closed its side: a client that gave up on one.
    closed_by_client: AtomicU64,
}

impl Faults {
    /// Whether a connection accepted under `epoch` is silent now.
    fn silent(&self, epoch: u64) -> bool {
        self.epoch.load(Ordering::SeqCst) > epoch
    }
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `upstream`, adding `one_way` in each direction (so a
    /// round trip grows by twice that; zero forwards at once).
    ///
    /// # Errors
    /// When the listening socket cannot be opened.
    pub async fn start(upstream: SocketAddr, one_way: Duration) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let faults = Arc::new(Faults::default());
        let shared = faults.clone();
        let acceptor = tokio::spawn(async move {
            let mut seed = 0x9E37_79B9_7F4A_7C15u64;
            while let Ok((client, _)) = listener.accept().await {
                seed = seed.wrapping_add(0xA076_1D64_78BD_642F);
                let faults = shared.clone();
                // The epoch it was accepted under: a later `silence` makes it silent, an earlier one does not.
                let epoch = faults.epoch.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        faults.open.fetch_add(1, Ordering::SeqCst);
                        relay(client, server, one_way, &faults, epoch, seed).await;
                        faults.open.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        Ok(TcpProxy { address, acceptor, faults })
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Sets the chance (0.0 to 1.0) that each chunk of data, in either direction, cuts its connection instead.
    pub fn set_cut_probability(&self, probability: f64) {
        let ppm = (probability.clamp(0.0, 1.0) * 1_000_000.0).round() as u32;
        self.faults.cut_ppm.store(ppm, Ordering::Relaxed);
    }

    /// How many connections were cut so far.
    pub fn cuts(&self) -> u64 {
        self.faults.cuts.load(Ordering::Relaxed)
    }

    /// Makes every connection open now go silent for good: from now on its bytes are dropped in both directions,
    /// and it is never closed towards either side (a side that closes its own end is not told to the other).
    /// Connections made after this call are forwarded as usual.
    pub fn silence(&self) {
        // Counted first, so that a connection is never silent without being counted.
        self.faults.silenced.fetch_add(self.faults.open.load(Ordering::SeqCst), Ordering::SeqCst);
        self.faults.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// How many connections were open when they were silenced, over every [`TcpProxy::silence`].
    pub fn silenced(&self) -> u64 {
        self.faults.silenced.load(Ordering::SeqCst)
    }

    /// How many silent connections their client has closed: clients that gave up on a connection that no longer
    /// answered.
    pub fn silent_connections_closed_by_client(&self) -> u64 {
        self.faults.closed_by_client.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// How one direction of a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Its reader reached the end of the stream (or an error) and what was due was delivered.
    Closed,
    /// Cut on purpose.
    Cut,
    /// Its reader reached the end of the stream while the connection was silent: nothing is told to the other side.
    Silent,
}

/// Both directions of one connection. When either ends (closed, or cut), both sockets close; when the connection
/// is silent, a side's end is kept from the other, which is left open until it ends too.
async fn relay(client: TcpStream, server: TcpStream, delay: Duration, faults: &Faults, epoch: u64, seed: u64) {
    // The halves live here, not in the pipes, so that a pipe that ends silently does not close its writing half.
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = std::pin::pin!(pipe(&mut client_read, &mut server_write, delay, faults, epoch, seed));
    let downstream = std::pin::pin!(pipe(
        &mut server_read,
        &mut client_write,
        delay,
        faults,
        epoch,
        seed.rotate_left(17) ^ 0x5DEE_CE66
    ));
    let client_closed_silently = || {
        faults.closed_by_client.fetch_add(1, Ordering::SeqCst);
    };
    match futures_util::future::select(upstream, downstream).await {
        futures_util::future::Either::Left((end, downstream)) => {
            if end == End::Silent {
                client_closed_silently();
                downstream.await;
            }
        }
        futures_util::future::Either::Right((end, upstream)) => {
            if end == End::Silent && upstream.await == End::Silent {
                client_closed_silently();
            }
        }
    }
    // Every half drops here: both sockets close.
}

/// Copies one direction, each chunk delivered `delay` after it was read, until the end or a cut; while the
/// connection is silent, reads and drops.
async fn pipe(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    delay: Duration,
    faults: &Faults,
    epoch: u64,
    mut rng: u64,
) -> End {
    let (due, mut pending) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = async {
        while let Some((at, chunk)) = pending.recv().await {
            tokio::time::sleep_until(at).await;
            if faults.silent(epoch) {
                continue; // lost on the way
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        if !faults.silent(epoch) {
            let _ = to.shutdown().await;
        }
    };
    let reader = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buffer).await {
                Ok(0) | Err(_) if faults.silent(epoch) => return End::Silent,
                Ok(0) | Err(_) => return End::Closed,
                Ok(n) => n,
            };
            if faults.silent(epoch) {
                continue;
            }
            // xorshift64: a cheap, good-enough coin for where to cut.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if (rng % 1_000_000) < u64::from(faults.cut_ppm.load(Ordering::Relaxed)) {
                faults.cuts.fetch_add(1, Ordering::Relaxed);
                return End::Cut;
            }
            if due.send((Instant::now() + delay, buffer[..n].to_vec())).is_err() {
                return End::Closed;
            }
        }
    };
    tokio::pin!(writer);
    let end = tokio::select! {
        end = reader => end,
        () = &mut writer => return End::Closed,
    };
    if end == End::Closed {
        writer.await; // the end of the stream: deliver what is still due
    }
    end
}
