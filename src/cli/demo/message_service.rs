//! The demo's message service: one broker, one namespace of this run's own, and one relay over the shop's
//! outbox carrying every act's topics, started by the first act that needs it and stopped after the last.
//!
//! One relay for the whole run, not one per act: a relay claims every due message of the outbox, whatever its
//! topic, and marks dead, as unroutable, a message whose topic it did not declare. So the relay declares every
//! topic an act consumes (warehouse shipments, lottery prizes), and each act runs its own consumer in the same
//! namespace, so that nothing else on the broker sees this run's messages.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mysql_async::Pool;
use seckill::local::rabbitmq::rabbitmq_url;
use seckill::messaging::{MessageState, Relay, RelayConfig, Running, Topology};
use tokio::task::JoinHandle;

use super::super::Failure;

/// How long the relay and the consumers wait before reconnecting: the broker is local, so a failure is brief.
pub(super) const RECONNECT_DELAY: Duration = Duration::from_millis(100);

/// The relay of this run, once an act started it.
#[derive(Default)]
pub(super) struct MessageService {
    started: Mutex<Option<(Topology, Running)>>,
}

impl MessageService {
    fn started(&self) -> MutexGuard<'_, Option<(Topology, Running)>> {
        // Nothing that can panic runs under this lock.
        self.started.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The namespace of this run's messages, for an act's consumer; the first call starts the relay of `shop`'s
    /// outbox to the broker at `amqp_url`.
    pub(super) fn topology(&self, shop: &Pool, amqp_url: &str) -> Topology {
        let mut started = self.started();
        if let Some((topology, _)) = started.as_ref() {
            return topology.clone();
        }
        let topology =
            Topology::new(format!("seckill-demo-{}-{}", std::process::id(), chrono::Utc::now().timestamp_millis()));
        let config = RelayConfig {
            topology: topology.clone(),
            topics: seckill::app::message_topics(),
            reconnect_delay: RECONNECT_DELAY,
            ..RelayConfig::default()
        };
        let relay = Relay::new(shop.clone(), amqp_url, config).spawn();
        *started = Some((topology.clone(), relay));
        topology
    }

    /// The relay, if an act started it: to keep running while `--serve` serves, or to stop.
    pub(super) fn into_relay(self) -> Option<Running> {
        self.started.into_inner().unwrap_or_else(PoisonError::into_inner).map(|(_, relay)| relay)
    }
}

/// Starts finding the broker (`RABBITMQ_URL` / `AMQP_URL`, or a private node, which takes a few seconds to
/// start), so that an act can prepare its databases meanwhile.
pub(super) fn find_broker() -> JoinHandle<Result<String, String>> {
    tokio::task::spawn_blocking(rabbitmq_url)
}

/// The broker [`find_broker`] found.
pub(super) async fn broker_url(finding: JoinHandle<Result<String, String>>) -> Result<String, Failure> {
    finding
        .await
        .map_err(|e| Failure::new(format!("starting RabbitMQ: {e}")))?
        .map_err(|e| Failure::new(e).hint("set RABBITMQ_URL, or install rabbitmq-server (.ci/install)"))
}

/// Where some business facts' messages stand.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct MessageStates {
    pub(super) pending: i64,
    pub(super) sent: i64,
    pub(super) consumed: i64,
    pub(super) dead: i64,
    /// Facts with no message at all.
    pub(super) missing: i64,
}

impl MessageStates {
    /// Counts rows of (the message's state, facts), where a NULL state is a fact without a message (a LEFT
    /// JOIN from the facts to `message_outbox`).
    pub(super) fn count(rows: Vec<(Option<String>, i64)>) -> Result<Self, Failure> {
        let mut states = MessageStates::default();
        for (state, count) in rows {
            match state.as_deref().map(MessageState::parse) {
                None => states.missing += count,
                Some(Some(MessageState::Pending)) => states.pending += count,
                Some(Some(MessageState::Sent)) => states.sent += count,
                Some(Some(MessageState::Consumed)) => states.consumed += count,
                Some(Some(MessageState::Dead)) => states.dead += count,
                Some(None) => return Err(Failure::new(format!("a message in an unknown state {state:?}"))),
            }
        }
        Ok(states)
    }

    /// Messages still on their way (pending or sent).
    pub(super) fn in_flight(&self) -> i64 {
        self.pending + self.sent
    }

    /// Every fact counted.
    pub(super) fn total(&self) -> i64 {
        self.pending + self.sent + self.consumed + self.dead + self.missing
    }

    /// The table's words for them.
    pub(super) fn describe(&self) -> String {
        format!(
            "{} consumed, {} pending, {} sent, {} dead, {} missing",
            self.consumed, self.pending, self.sent, self.dead, self.missing
        )
    }
}
