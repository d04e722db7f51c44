//! The flash sale: its procedures, its lanes, its HTTP API and the classic course's client, its rate limits and
//! detail cache across instances, and the rule that "rolled back" is said only when the server proved it.

mod classic_client;
mod decision_rules;
mod detail_cache;
mod execute;
mod http;
mod in_doubt;
mod lanes;
mod shared_rate_limit;
mod sql;
