//! The message service in-process: a relay or a consumer on a task of its own until stopped, for programs that
//! run it beside their own work (`seckill demo`, `seckill bench`, tests) rather than as `seckill relay` and
//! `seckill warehouse` processes.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::consumer::{ConsumerConfig, Handler, consume};
use super::relay::Relay;

/// How long [`Running::stop`] waits for the task to finish what it is doing (a claim's confirms, a batch's
/// callbacks) before leaving it behind.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// A service running on its own tokio task until told to stop (a relay, a consumer, or anything else that
/// takes a shutdown future). [`Running::stop`] stops it and waits; dropping it stops it without waiting.
#[derive(Debug)]
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// The shutdown future handed to the task: it completes when [`Running::stop`] is called or the [`Running`] is
/// dropped.
#[derive(Debug)]
pub struct StopSignal(oneshot::Receiver<()>);

impl Future for StopSignal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A dropped sender is a stop too: whoever held the handle is gone.
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Running {
    /// Spawns `run(stop_signal)` on the current tokio runtime.
    pub fn spawn<F, Fut>(run: F) -> Running
    where
        F: FnOnce(StopSignal) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(StopSignal(stopped)));
        Running { stop, task }
    }

    /// Stops it, and waits up to [`STOP_WAIT`] for it to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(STOP_WAIT, self.task).await;
    }
}

impl Relay {
    /// Runs the relay on its own task until the returned handle is stopped or dropped.
    pub fn spawn(self) -> Running {
        Running::spawn(|stopped| self.run(stopped))
    }
}

/// Runs [`consume`] with `handler` on its own task until the returned handle is stopped or dropped.
pub fn spawn_consumer<H: Handler>(amqp_url: impl Into<String>, config: ConsumerConfig, handler: H) -> Running {
    let amqp_url = amqp_url.into();
    Running::spawn(|stopped| async move { consume(&amqp_url, &config, &handler, stopped).await })
}
