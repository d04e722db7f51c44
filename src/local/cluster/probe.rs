//! Whether an HTTP server answers: one `GET` on a fresh connection, bounded in time, for the cluster to wait
//! until an instance (and then the balancer in front of them) serves.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The status code of `GET path` at `address`, or `None` when nothing answered within `timeout`.
pub(crate) async fn status_of(address: SocketAddr, path: &str, timeout: Duration) -> Option<u16> {
    tokio::time::timeout(timeout, get_status(address, path)).await.ok().flatten()
}

async fn get_status(address: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(address).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    // The status line comes first: "HTTP/1.1 200 OK".
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        let n = stream.read(&mut head[read..]).await.ok()?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let line = std::str::from_utf8(&head[..read]).ok()?;
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}
