//! Database work bounded on the client side: a frozen server or a silent network path (no FIN, no RST: a host
//! that froze, a partition, a firewall dropping the flow) never holds a caller forever, and never leaves a
//! silent connection in the pool for the next caller.
//!
//! mysql_async waits for an answer as long as its socket stays open, and a socket to a peer that went silent
//! stays open for the kernel's retransmission timeout (about a quarter of an hour on Linux) when something was
//! sent, and until TCP keepalive gives up when nothing was ([`super::ConnectOptions::tcp_keepalive`]).
//! [`within`] bounds one piece of work instead: past its bound the work is dropped and the caller hears
//! [`DatabaseError::NoAnswer`]. The connection the work had taken ([`Checkout`]) is then closed rather than
//! returned to the pool, so that the next try takes a new connection, which a new path may serve.
//!
//! What a bound does not say: a statement that was sent may still have been applied by the server. Work bounded
//! here must be safe to try again (idempotent, like the relay's marks and the warehouse's keyed inserts), or its
//! caller must say "in doubt" as [`super::call`] does.

use std::time::Duration;

use mysql_async::{Conn, Pool};

use super::acquire;
use super::error::DatabaseError;
use crate::prometheus::names::DATABASE_UNANSWERED;

/// The bound of the message service's database work unless configured otherwise: the relay's claims and marks
/// and the warehouse's inserts take milliseconds, so ten seconds is a stall, not a slow answer.
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a dropped connection's `QUIT` may take before its socket is closed without it.
const QUIT_WAIT: Duration = Duration::from_secs(1);

/// Runs `run` for at most `bound`. Past it, `run` is dropped (and with it any [`Checkout`] it held, which closes
/// that connection), the `seckill_database_unanswered_total` counter is raised under `work`, and the answer is
/// [`DatabaseError::NoAnswer`] naming `work` (a short fixed phrase, e.g. "claiming messages": it is a metric label).
///
/// # Errors
/// `run`'s error, or [`DatabaseError::NoAnswer`].
pub async fn within<T>(
    bound: Duration,
    work: &'static str,
    run: impl Future<Output = Result<T, DatabaseError>>,
) -> Result<T, DatabaseError> {
    match tokio::time::timeout(bound, run).await {
        Ok(result) => result,
        Err(_) => {
            metrics::counter!(DATABASE_UNANSWERED, "work" => work).increment(1);
            Err(DatabaseError::NoAnswer { work, bound })
        }
    }
}

/// A connection taken from a pool for one piece of work. It goes back to the pool only through
/// [`Checkout::release`]; dropped otherwise (its work ran past its bound, was cancelled, or failed half-way), it is
/// closed: its state is unknown, and a silent connection handed out again would hang the next caller too.
#[derive(Debug)]
pub struct Checkout(Option<Conn>);

impl Checkout {
    /// Takes a connection from `pool` (waiting for a free one at most [`super::DEFAULT_ACQUIRE_TIMEOUT`]).
    ///
    /// # Errors
    /// As [`acquire`].
    pub async fn take(pool: &Pool) -> Result<Self, DatabaseError> {
        Ok(Checkout(Some(acquire(pool).await?)))
    }

    /// The work is done: the connection goes back to the pool, unless the server says a transaction is still open
    /// on it (then it is closed, which rolls that back). Costs no round trip.
    pub fn release(mut self) {
        // Otherwise the connection drops here, which returns it to its pool.
        if let Some(conn) = self.0.take()
            && in_transaction(&conn)
        {
            discard(conn);
        }
    }
}

impl std::ops::Deref for Checkout {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        // Cannot fail: the connection is taken out only by `release` and `drop`, which both consume the checkout.
        self.0.as_ref().expect("a checkout holds its connection until it is released or dropped")
    }
}

impl std::ops::DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut Conn {
        // Cannot fail, as in `deref`.
        self.0.as_mut().expect("a checkout holds its connection until it is released or dropped")
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            discard(conn);
        }
    }
}

/// Whether the server's last answer on `conn` said a transaction is open (its status flags: no round trip).
pub(crate) fn in_transaction(conn: &Conn) -> bool {
    conn.last_ok_packet()
        .is_some_and(|ok| ok.status_flags().contains(mysql_async::consts::StatusFlags::SERVER_STATUS_IN_TRANS))
}

/// Closes `conn` without ever returning it to its pool, and without waiting for it. mysql_async's `disconnect`
/// marks the connection closed as soon as it is first polled, before it writes anything; from then on its pool
/// closes it rather than hand it out, whether the `QUIT` gets through or not (on a silent path it does not, and
/// the socket is closed after [`QUIT_WAIT`]).
pub(crate) fn discard(conn: Conn) {
    let mut quit = Box::pin(conn.disconnect());
    // Polled once here, so that the connection is marked closed even if no task ever polls it again.
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    if quit.as_mut().poll(&mut context).is_ready() {
        return;
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = tokio::time::timeout(QUIT_WAIT, quit).await;
        });
    }
    // Without a runtime the half-sent QUIT is dropped with the connection, which its pool then closes.
}
