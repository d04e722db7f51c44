//! What can stop gift delivery from starting, in words an operator can act on. Failures of single calls are
//! not errors: they are answers ([`super::GiftAnswer`]) the worker acts on.

use thiserror::Error;

/// A gift worker or gift-service stub that cannot start.
#[derive(Debug, Error)]
pub enum GiftDeliveryError {
    /// The gift service's address is not an `http://host:port/path` URL.
    #[error("invalid gift service URL {url:?}: {why}")]
    InvalidUrl { url: String, why: String },
    /// The rate cannot pace anything.
    #[error(transparent)]
    InvalidRate(#[from] super::pacer::InvalidRate),
    /// A setting out of its range (concurrency, attempts, timeout, failure share).
    #[error("invalid {setting}: {why}")]
    InvalidSetting { setting: &'static str, why: String },
    /// The stub could not listen.
    #[error("the gift service stub cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
}
