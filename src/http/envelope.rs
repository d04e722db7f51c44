//! The classic course's `{success, data, error}` envelope, which every answer of every router is written in,
//! errors included, so existing front ends read them unchanged.

use serde::Serialize;

/// `SeckillResult<T>`: every answer of the API, errors included.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Envelope<T> {
    pub success: bool,
    pub data: Option<T>,
    pub error: Option<String>,
}

impl<T> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Envelope { success: true, data: Some(data), error: None }
    }
}

impl Envelope<()> {
    /// A request that failed, saying why.
    pub fn error(message: impl Into<String>) -> Self {
        Envelope { success: false, data: None, error: Some(message.into()) }
    }
}
