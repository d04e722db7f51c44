//! All integration tests, built as one binary so that they share one private MariaDB per run (see
//! `seckill::testing`). Each test gets its own database. The folders mirror `src/`: each domain's tests in its
//! own folder, then the tests that cut across domains.

mod common;

// Domains.
mod exchange;
mod lottery;
mod seckill;

// Across domains: the machinery, the local servers, the command, and faults.
mod abuse;
mod bench;
mod browser;
mod cli;
mod cluster;
mod demo;
mod faults;
mod front_door;
mod history;
mod java_doc;
mod layout;
mod messaging;
mod metrics;
mod migrate;
mod monitoring;
mod openapi;
mod rabbitmq;
mod redis_faults;
mod replicas;
mod shared_state;
mod test_databases;
