//! The seckill domain: items with stock and a sale window, signed URLs, and the one-round-trip execution.
//!
//! Its SQL: `sql/migrations/V1__seckill_schema.sql` (the classic `seckill` and `success_killed` tables) and
//! `sql/procedures/seckill/execute_seckill.sql` (classic signature) with `execute_seckill_detailed.sql` (the same
//! decision, answered with every outcome told apart) and `execute_seckill_batch.sql` (many seckills of one item in
//! one transaction, for the group-commit executor).
//!
//! An item seen sold out or ended can be shared with other instances and a load balancer through Redis
//! ([`item_state`]: `seckill:item:{id}:state`), with [`Seckill::with_redis`].

mod books;
mod error;
mod execute_seckill;
mod execute_seckill_batch;
mod executor;
mod exposure;
mod item;
pub mod item_state;
mod outcome;
mod phone;
mod service;

pub use books::Books;
pub use error::SeckillError;
pub use executor::{ExecutorConfig, ExecutorStats};
pub use exposure::Exposure;
pub use item::{Item, MAX_NAME_CHARS, NewItem, Window};
pub use item_state::ItemState;
pub use outcome::{InnerError, Outcome, SuccessKilled};
pub use phone::{InvalidPhone, MAX_PHONE, MIN_PHONE, Phone};
pub use service::Seckill;
