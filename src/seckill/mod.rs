//! The seckill domain: items with stock and a sale window, signed URLs, and the one-round-trip execution.
//!
//! Its SQL: `sql/migrations/V1__seckill_schema.sql` (the classic `seckill` and `success_killed` tables) and
//! `sql/procedures/seckill/execute_seckill.sql` (classic signature) with `execute_seckill_detailed.sql` (the same
//! decision, answered with every outcome told apart) and `execute_seckill_batch.sql` (many seckills of one item in
//! one transaction, for the group-commit lanes).
//!
//! An item seen sold out or ended can be shared with other instances and a load balancer through Redis
//! ([`closed`]: `seckill:item:{id}:state`), with [`Seckill::with_redis`].

mod books;
pub mod closed;
mod error;
mod execute_seckill;
mod execute_seckill_batch;
mod exposure;
pub mod http;
mod item;
mod lanes;
mod outcome;
mod phone;
mod recorded;
mod service;
pub mod signing;

pub use books::Books;
pub use closed::ItemState;
pub use error::SeckillError;
pub use exposure::Exposure;
pub use item::{Item, MAX_NAME_CHARS, NewItem, Window};
pub use lanes::{LaneConfig, LaneStats};
pub use outcome::{InnerError, Outcome, SuccessKilled};
pub use phone::{InvalidPhone, MAX_PHONE, MIN_PHONE, Phone};
pub use service::Seckill;
