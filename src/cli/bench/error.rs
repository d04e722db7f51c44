//! Why a bench run could not be measured, or does not count: its books do not balance.

use seckill::database::error::DatabaseError;
use seckill::seckill::SeckillError;
use thiserror::Error;

/// A run that could not be measured, or whose books do not balance.
#[derive(Debug, Error)]
pub enum BenchError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(transparent)]
    Seckill(#[from] SeckillError),
    #[error("cannot start the latency proxy: {0}")]
    Proxy(std::io::Error),
    #[error("cannot resolve the database address {0} for the latency proxy")]
    Address(String),
    #[error(transparent)]
    Lottery(#[from] seckill::lottery::LotteryError),
    /// The gift service stub or the gift worker of the lottery's delivery phase could not start.
    #[error(transparent)]
    GiftDelivery(#[from] seckill::lottery::delivery::GiftDeliveryError),
    /// The gift service stub of the lottery's delivery phase could not start.
    #[error(transparent)]
    GiftService(#[from] seckill::local::gift_service::GiftServiceError),
    /// The Redis design of the lottery workload failed.
    #[error("{0}")]
    Redis(String),
    /// The cluster the cluster workload runs on did not start, or its shared state could not be written.
    #[error(transparent)]
    Cluster(#[from] seckill::local::cluster::ClusterError),
    /// The cluster workload's load generator could not reach a server, or a phase did not go as it must.
    #[error("the cluster workload: {0}")]
    Load(String),
    /// A workload cannot run as configured.
    #[error("{0}")]
    Invalid(String),
    /// What callers were told differs from what the database holds.
    #[error("the books do not balance: {0}")]
    BooksDoNotBalance(String),
}
