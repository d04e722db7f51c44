//! The demo's one listening socket: every act serves its API on it in turn, and `--serve` keeps serving on it,
//! so the address printed at the start stays the address until the end.
//!
//! The socket is bound once; each server gets a duplicate of it and stops gracefully when its act is done,
//! which closes only the duplicate. Connections that arrive between two acts wait in the socket's backlog.

use std::net::SocketAddr;

use axum::Router;
use seckill::messaging::Running;
use tokio::net::TcpListener;

use super::super::Failure;
use super::super::serve::{bind, host, serve};

/// The bound socket.
pub(super) struct Stage {
    listener: std::net::TcpListener,
    address: SocketAddr,
}

impl Stage {
    /// Binds `address` (port 0: any free port).
    pub(super) async fn bind(address: SocketAddr) -> Result<Stage, Failure> {
        let listener = bind(address).await?;
        let address = listener.local_addr()?;
        Ok(Stage { listener: listener.into_std()?, address })
    }

    /// `http://ip:port`.
    pub(super) fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Serves `routes` (with the host's fallbacks and logs) until the returned handle is stopped.
    pub(super) fn open(&self, routes: Router) -> Result<Running, Failure> {
        let listener = self.duplicate()?;
        Ok(Running::spawn(|stopped| async move {
            if let Err(error) = axum::serve(listener, host(routes)).with_graceful_shutdown(stopped).await {
                tracing::warn!(%error, "the demo's server stopped");
            }
        }))
    }

    /// Serves `routes` until Ctrl-C or SIGTERM.
    pub(super) async fn serve_until_signal(self, routes: Router) -> Result<(), Failure> {
        let listener = TcpListener::from_std(self.listener)?;
        serve(listener, host(routes)).await
    }

    fn duplicate(&self) -> Result<TcpListener, Failure> {
        Ok(TcpListener::from_std(self.listener.try_clone()?)?)
    }
}
