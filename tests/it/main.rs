//! All integration tests, built as one binary so that they share one private MariaDB per run (see
//! `seckill::testing`). Each test gets its own database.

mod abuse;
mod bench;
mod browser;
mod classic_client;
mod cli;
mod cluster;
mod common;
mod decision_rules;
mod demo;
mod exchange;
mod exchange_batch_sql;
mod exchange_http;
mod exchange_shipping;
mod executor;
mod faults;
mod gift_delivery;
mod http;
mod in_doubt;
mod lottery;
mod lottery_batch_sql;
mod lottery_http;
mod messaging;
mod metrics;
mod migrate;
mod rabbitmq;
mod redis_faults;
mod seckill_execute;
mod seckill_sql;
mod shared_rate_limit;
mod shared_single_flight;
mod shared_state;
mod test_databases;
