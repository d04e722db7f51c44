//! A loopback TCP proxy that delays every byte by a fixed time in each direction, to show what a round trip
//! costs on a real network while the server sits on the same machine.
//!
//! Each direction of each connection is a reader that stamps chunks with their due time and a writer that
//! sends them when due, so the delay adds latency without limiting throughput (as a long cable would). Only
//! loopback: it listens on 127.0.0.1. Clients must really use it: mysql_async swaps a TCP connection to this
//! machine for the server's Unix socket unless `prefer_socket` is off (see
//! [`crate::database::ConnectOptions::via`]).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A running proxy; stops accepting when dropped.
#[derive(Debug)]
pub struct LatencyProxy {
    address: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl LatencyProxy {
    /// Listens on a free loopback port and forwards to `upstream`, adding `one_way` in each direction (so a
    /// round trip grows by twice that).
    ///
    /// # Errors
    /// When the listening socket cannot be opened.
    pub async fn start(upstream: SocketAddr, one_way: Duration) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let acceptor = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::spawn(pipe(client_read, server_write, one_way));
                        tokio::spawn(pipe(server_read, client_write, one_way));
                    }
                });
            }
        });
        Ok(LatencyProxy { address, acceptor })
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// Copies one direction, each chunk delivered `delay` after it was read.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (due, mut pending) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = pending.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if due.send((Instant::now() + delay, buffer[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(due);
    let _ = writer.await;
}
