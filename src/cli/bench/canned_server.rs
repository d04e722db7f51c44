//! A trivial HTTP/1.1 server that answers every request with the same bytes, on a thread of its own: the
//! cluster bench measures its load generator against it, so that a figure through the balancer can be told
//! from what the generator itself can do on this machine.
//!
//! It reads request heads only (the generator's requests carry no body), answers each as soon as its head is
//! complete, and keeps connections open.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A running canned server; stopped when dropped.
pub(crate) struct CannedServer {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl CannedServer {
    /// Starts one on a free loopback port, answering `200` with `body` as `content_type`.
    ///
    /// # Errors
    /// When no port could be bound or no thread started.
    pub(crate) fn start(content_type: &str, body: &str) -> io::Result<CannedServer> {
        let answer: Arc<[u8]> =
            format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}", body.len())
                .into_bytes()
                .into();
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new().name("canned-server".into()).spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else { return };
                let accepting = async {
                    while let Ok((stream, _)) = listener.accept().await {
                        tokio::spawn(answer_every_request(stream, answer.clone()));
                    }
                };
                tokio::select! {
                    () = accepting => {}
                    _ = stopped => {}
                }
            });
        })?;
        Ok(CannedServer { address, stop: Some(stop), thread: Some(thread) })
    }

    /// Where it listens.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for CannedServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers each complete request head on `stream` with `answer`, until the client closes it.
async fn answer_every_request(mut stream: TcpStream, answer: Arc<[u8]>) {
    let _ = stream.set_nodelay(true);
    let mut buffer = vec![0u8; 16 * 1024];
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            // A head larger than the buffer is none of the generator's.
            return;
        }
        let read = match stream.read(&mut buffer[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        filled += read;
        let mut consumed = 0;
        while let Some(end) = head_end(&buffer[consumed..filled]) {
            consumed += end;
            if stream.write_all(&answer).await.is_err() {
                return;
            }
        }
        buffer.copy_within(consumed..filled, 0);
        filled -= consumed;
    }
}

/// Where the first request head in `bytes` ends (after its blank line), if it is complete.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|window| window == b"\r\n\r\n").map(|at| at + 4)
}

#[cfg(test)]
mod tests {
    use super::head_end;

    #[test]
    fn heads_end_after_their_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nhost: x\r\n\r\nGET"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nhost: x\r\n"), None);
    }
}
