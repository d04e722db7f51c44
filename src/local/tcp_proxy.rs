//! A loopback TCP proxy for benchmarks and fault tests: it can add network latency, and cut connections at
//! random points in the middle of a conversation.
//!
//! - **Latency**: each direction of each connection is a reader that stamps chunks with their due time and a
//!   writer that sends them when due, so the delay adds latency without limiting throughput, as a long cable
//!   would.
//! - **Cuts**: with the cut probability set, each chunk read may instead end the connection: both sockets are
//!   closed at once, wherever the conversation was (mid-query, mid-answer, before or after a COMMIT). The
//!   probability can be changed while it runs, to cut during one phase of a test and not another.
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

#[derive(Debug)]
struct Faults {
    /// Chance that a chunk ends its connection instead of being forwarded, in parts per million.
    cut_ppm: AtomicU32,
    cuts: AtomicU64,
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
        let faults = Arc::new(Faults { cut_ppm: AtomicU32::new(0), cuts: AtomicU64::new(0) });
        let shared = faults.clone();
        let acceptor = tokio::spawn(async move {
            let mut seed = 0x9E37_79B9_7F4A_7C15u64;
            while let Ok((client, _)) = listener.accept().await {
                seed = seed.wrapping_add(0xA076_1D64_78BD_642F);
                let faults = shared.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        relay(client, server, one_way, faults, seed).await;
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
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// Both directions of one connection; when either ends (closed, or cut), both sockets close.
async fn relay(client: TcpStream, server: TcpStream, delay: Duration, faults: Arc<Faults>, seed: u64) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = pipe(client_read, server_write, delay, &faults, seed) => {}
        _ = pipe(server_read, client_write, delay, &faults, seed.rotate_left(17) ^ 0x5DEE_CE66) => {}
    }
}

/// Copies one direction, each chunk delivered `delay` after it was read, until the end or a cut.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration, faults: &Faults, mut rng: u64) {
    let (due, mut pending) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((at, chunk)) = pending.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            // xorshift64: a cheap, good-enough coin for where to cut.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if (rng % 1_000_000) < u64::from(faults.cut_ppm.load(Ordering::Relaxed)) {
                faults.cuts.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            if due.send((Instant::now() + delay, buffer[..n].to_vec())).is_err() {
                return false;
            }
        }
    };
    tokio::pin!(writer);
    let cut = tokio::select! {
        cut = reader => cut,
        _ = &mut writer => return,
    };
    if !cut {
        writer.await; // the end of the stream: deliver what is still due
    }
}
