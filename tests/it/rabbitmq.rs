//! Against real brokers: a confirmed persistent message is delivered, and a message confirmed into a durable
//! quorum queue is still there after the broker is killed and started again.
//!
//! The crash test starts a private node of its own, so nothing else in the run sees the broker go away.

use std::time::{Duration, Instant};

use lapin::message::DeliveryResult;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use seckill::local::rabbitmq::{LocalRabbitMq, rabbitmq_url};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Every broker round trip in these tests is bounded by this; a broker that hangs fails the test.
const ROUND_TRIP: Duration = Duration::from_secs(10);

fn unique_queue(what: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("seckill-test-{what}-{}-{nanos}", std::process::id())
}

async fn connect(url: &str) -> Connection {
    timeout(ROUND_TRIP, Connection::connect(url, ConnectionProperties::default()))
        .await
        .expect("connecting took more than 10 s")
        .expect("connecting")
}

/// A channel with publisher confirms on, and `queue` declared as a durable quorum queue.
async fn confirming_channel(connection: &Connection, queue: &str) -> Channel {
    let channel = timeout(ROUND_TRIP, connection.create_channel()).await.unwrap().unwrap();
    timeout(ROUND_TRIP, channel.confirm_select(ConfirmSelectOptions::default())).await.unwrap().unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    timeout(ROUND_TRIP, channel.queue_declare(queue.into(), QueueDeclareOptions::durable(), arguments))
        .await
        .unwrap()
        .unwrap();
    channel
}

/// Publishes `body` as a persistent message to `queue` through the default exchange and waits for its confirm.
async fn publish_confirmed(channel: &Channel, queue: &str, body: &[u8]) {
    let persistent = BasicProperties::default().with_delivery_mode(2);
    let confirm = timeout(
        ROUND_TRIP,
        channel.basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body, persistent),
    )
    .await
    .unwrap()
    .unwrap();
    let confirmation = timeout(ROUND_TRIP, confirm).await.expect("no confirm within 10 s").unwrap();
    assert!(matches!(confirmation, Confirmation::Ack(None)), "the broker took it: {confirmation:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_broker_confirms_and_delivers_a_persistent_message() {
    let url = rabbitmq_url().unwrap();
    let connection = connect(&url).await;
    let queue = unique_queue("deliver");
    let channel = confirming_channel(&connection, &queue).await;
    publish_confirmed(&channel, &queue, b"order 42").await;

    let consumer = timeout(
        ROUND_TRIP,
        channel.basic_consume(queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default()),
    )
    .await
    .unwrap()
    .unwrap();
    let (deliveries, mut delivered) = mpsc::unbounded_channel();
    consumer.set_delegate(move |delivery: DeliveryResult| {
        let deliveries = deliveries.clone();
        async move {
            let _ = deliveries.send(delivery);
        }
    });
    let delivery = timeout(ROUND_TRIP, delivered.recv())
        .await
        .expect("no delivery within 10 s")
        .expect("the consumer is gone")
        .expect("a delivery, not an error")
        .expect("a delivery, not a cancellation");
    assert_eq!(delivery.data, b"order 42");
    assert_eq!(*delivery.properties.delivery_mode(), Some(2), "delivered as persistent");
    assert!(timeout(ROUND_TRIP, delivery.ack(BasicAckOptions::default())).await.unwrap().unwrap(), "acked");

    let left = timeout(ROUND_TRIP, channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left, 0, "nothing left in the queue after the ack");
    let _ = timeout(ROUND_TRIP, connection.close(200, "done".into())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_durable_message_survives_a_broker_crash() {
    let broker = tokio::task::spawn_blocking(LocalRabbitMq::start).await.unwrap().unwrap();
    let queue = unique_queue("crash");
    {
        let connection = connect(&broker.url()).await;
        let channel = confirming_channel(&connection, &queue).await;
        // Ra 2.2 (RabbitMQ 3.10) writes a new quorum queue's registration to disk on a 0.5 s auto-save; a node
        // killed before that brings the queue back as an empty member that never elects a leader. That window
        // belongs to creating the queue, not to the message, so the test steps past it before publishing.
        tokio::time::sleep(Duration::from_secs(1)).await;
        publish_confirmed(&channel, &queue, b"confirmed before the crash").await;
        // No clean close: the crash comes with the connection open, as it would in production.
    }

    let old_pid = broker.pid();
    assert!(old_pid.is_some(), "running before the crash");
    let broker = tokio::task::spawn_blocking(move || {
        broker.kill().unwrap();
        assert_eq!(broker.pid(), None, "not running after the kill");
        broker.restart().unwrap();
        broker
    })
    .await
    .unwrap();
    assert!(broker.pid().is_some() && broker.pid() != old_pid, "a new broker process");

    // The queue's Raft member may still be recovering just after the node accepts clients; an error closes the
    // channel, so each attempt has a connection of its own. The channel is kept: the ack goes through it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (connection, _channel, message) = loop {
        let connection = connect(&broker.url()).await;
        let channel = timeout(ROUND_TRIP, connection.create_channel()).await.unwrap().unwrap();
        let got = timeout(ROUND_TRIP, channel.basic_get(queue.as_str().into(), BasicGetOptions::default()))
            .await
            .expect("basic.get took more than 10 s");
        match got {
            Ok(Some(message)) => break (connection, channel, message),
            Ok(None) => panic!("the confirmed message was lost in the crash"),
            Err(e) if Instant::now() < deadline => {
                eprintln!("queue not ready yet after the restart: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the queue did not come back within 30 s: {e}"),
        }
    };
    assert_eq!(message.delivery.data, b"confirmed before the crash");
    assert!(timeout(ROUND_TRIP, message.delivery.ack(BasicAckOptions::default())).await.unwrap().unwrap());
    let _ = timeout(ROUND_TRIP, connection.close(200, "done".into())).await;
    tokio::task::spawn_blocking(move || drop(broker)).await.unwrap();
}
