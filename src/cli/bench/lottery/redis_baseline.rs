//! The field's lottery, as the baseline of `seckill bench --workload lottery`: every draw is one Lua script run
//! in Redis (EVALSHA), the design most lottery and red-envelope services use.
//!
//! The script, atomically: a user seen before (a hash of users) hears their first result again, as the durable
//! draw answers them; answer "all drawn" if the campaign's flag is set; record the user; a draw whose random
//! number lands
//! on the wheel's blank share is "no prize" (the durable draw's wheel, its numbers drawn the same way); pop a
//! prize unit (LPOP from a list filled before the crowd arrives with every tier's units, shuffled with a seed);
//! set the flag when the list is empty; append the win to a stream (XADD) for the gift service. Fast, but not
//! durable: a Redis that dies loses whatever it had not yet written to disk, and the stream must still be
//! reconciled with a database.
//!
//! The bench runs it on a private Redis ([`seckill::local::redis::LocalRedis`]), never a shared one, with the
//! same callers, users and concurrency as the durable draw, and checks its books the same way: entries in the
//! stream = wins = units popped, and no user twice.

use std::collections::HashSet;

use redis::aio::MultiplexedConnection;

use super::design::{Design, Told};
use crate::cli::bench::error::BenchError;
use crate::cli::bench::redis_connections::{self, REDIS_ANSWER_TIMEOUT};
use seckill::lottery::CampaignSeed;
use seckill::lottery::randomness::draw_number;

/// The draw, in Lua. KEYS: flag, users, units, stream. ARGV: the user id, the draw's random number r in
/// [0, 2^32), the wheel's total weight and the tiers' share of it. Answers `{outcome, tier}`.
const DRAW_SCRIPT: &str = r"
-- A user who drew hears their result again, whatever is left (as the durable draw answers them).
local seen = redis.call('HGET', KEYS[2], ARGV[1])
if seen then
  return {'repeat', seen}
end
if redis.call('GET', KEYS[1]) == 'all_drawn' then
  return {'all_drawn'}
end
-- The wheel, as the durable draw's: slot r * total DIV 2^32, the tiers' slots first, the blank share last
-- (exact in Lua's doubles: r * total stays below 2^53).
local lands = math.floor(tonumber(ARGV[2]) * tonumber(ARGV[3]) / 4294967296) < tonumber(ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], lands and '' or 'none')
if not lands then
  return {'no_prize'}
end
local unit = redis.call('LPOP', KEYS[3])
if not unit then
  -- Only when the campaign had no units at all: the flag is set with the last unit below.
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('SET', KEYS[1], 'all_drawn')
  return {'all_drawn'}
end
redis.call('HSET', KEYS[2], ARGV[1], unit)
if redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('SET', KEYS[1], 'all_drawn')
end
redis.call('XADD', KEYS[4], '*', 'user', ARGV[1], 'tier', unit)
return {'won', unit}
";

/// Units pushed per RPUSH while filling the list.
const FILL_CHUNK: usize = 1000;

/// Stream entries read per XRANGE while checking the books.
const READ_CHUNK: usize = 5000;

/// The wheel both designs draw on: the tiers' weights, then the blank share.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wheel {
    pub(crate) tier_weight: u32,
    pub(crate) blank_weight: u32,
}

/// One campaign of the Redis design: its keys, the loaded script, the wheel and the draws' random numbers, and
/// the connections callers share.
pub(crate) struct RedisLottery {
    keys: [String; 4],
    sha: String,
    wheel: Wheel,
    seed: CampaignSeed,
    connections: Vec<MultiplexedConnection>,
}

/// What the Redis design's books hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RedisBooks {
    /// Entries in the win stream.
    pub(crate) stream: u64,
    /// Users recorded in the hash.
    pub(crate) users: u64,
    /// Units never popped.
    pub(crate) units_left: u64,
    /// Distinct users among the stream's entries.
    pub(crate) distinct_winners: u64,
}

fn redis_error(what: &str) -> impl Fn(redis::RedisError) -> String + '_ {
    move |error| format!("Redis baseline, {what}: {error}")
}

impl RedisLottery {
    /// A campaign under keys `{prefix}…` on the Redis at `url`: its units (`tiers`' stock, each unit named by
    /// its tier's position from one) pushed in an order shuffled with `seed`, the script loaded, and
    /// `connections` multiplexed connections opened for the callers. Draws land on `wheel` with random numbers
    /// from `seed`, as the durable draw's.
    pub(crate) async fn set_up(
        url: &str,
        prefix: &str,
        tiers: &[u32],
        wheel: Wheel,
        seed: u64,
        connections: usize,
    ) -> Result<Self, String> {
        let opened = redis_connections::open(url, connections).await?;
        let keys = ["flag", "users", "units", "wins"].map(|name| format!("{prefix}{name}"));
        let mut connection = opened[0].clone();
        redis::cmd("DEL").arg(&keys).query_async::<()>(&mut connection).await.map_err(redis_error("clearing"))?;
        let units = shuffled_units(tiers, seed);
        for chunk in units.chunks(FILL_CHUNK) {
            redis::cmd("RPUSH")
                .arg(&keys[2])
                .arg(chunk)
                .query_async::<()>(&mut connection)
                .await
                .map_err(redis_error("filling the prize units"))?;
        }
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(DRAW_SCRIPT)
            .query_async(&mut connection)
            .await
            .map_err(redis_error("loading the script"))?;
        // Each draw's number derived as the durable draw's is, so that both pay for a verifiable draw.
        let seed = CampaignSeed::from_hex(&format!("{seed:064x}")).ok_or("the bench's seed is not 64 hex digits")?;
        Ok(RedisLottery { keys, sha, wheel, seed, connections: opened })
    }

    /// The books: the stream, the users, the units left, and the distinct winners in the stream.
    pub(crate) async fn books(&self) -> Result<RedisBooks, String> {
        let mut connection = self.connections[0].clone();
        let [_, users_key, units_key, stream_key] = &self.keys;
        let (stream, users, units_left): (u64, u64, u64) = redis::pipe()
            .cmd("XLEN")
            .arg(stream_key)
            .cmd("HLEN")
            .arg(users_key)
            .cmd("LLEN")
            .arg(units_key)
            .query_async(&mut connection)
            .await
            .map_err(redis_error("reading the books"))?;
        let mut winners = HashSet::new();
        let mut start = "-".to_string();
        loop {
            // Entries as [id, [field, value, ...]].
            let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
                .arg(stream_key)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(READ_CHUNK)
                .query_async(&mut connection)
                .await
                .map_err(redis_error("reading the win stream"))?;
            let Some((last, _)) = entries.last() else { break };
            start = format!("({last}");
            for (_, fields) in &entries {
                let user = fields.chunks(2).find(|pair| pair[0] == "user").and_then(|pair| pair.get(1));
                winners.insert(user.cloned().unwrap_or_default());
            }
            if entries.len() < READ_CHUNK {
                break;
            }
        }
        Ok(RedisBooks { stream, users, units_left, distinct_winners: winners.len() as u64 })
    }

    /// Draw scripts Redis has run so far (EVALSHA calls; the commands a script runs count apart).
    pub(crate) async fn draws_run(&self) -> Result<u64, String> {
        let mut connection = self.connections[0].clone();
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut connection)
            .await
            .map_err(redis_error("reading its statistics"))?;
        // `cmdstat_evalsha:calls=12,usec=...`; absent before the first call.
        Ok(info
            .lines()
            .find_map(|line| {
                let stats = line.strip_prefix("cmdstat_evalsha:")?;
                stats.split(',').find_map(|field| field.strip_prefix("calls=")?.parse().ok())
            })
            .unwrap_or(0))
    }
}

impl Design for RedisLottery {
    async fn store_calls(&self) -> Result<u64, BenchError> {
        self.draws_run().await.map_err(BenchError::Redis)
    }

    async fn draw(&self, caller: usize, user_id: i64) -> Told {
        let mut connection = self.connections[caller % self.connections.len()].clone();
        let mut evalsha = redis::cmd("EVALSHA");
        // Drawn as the durable draw's for the user's first draw (campaign 0: the bench's campaigns differ).
        let r = self.seed.draw_number(0, user_id, 1);
        let total = self.wheel.tier_weight + self.wheel.blank_weight;
        evalsha.arg(&self.sha).arg(self.keys.len()).arg(&self.keys).arg(user_id);
        evalsha.arg(r).arg(total).arg(self.wheel.tier_weight);
        let call = evalsha.query_async::<Vec<String>>(&mut connection);
        match tokio::time::timeout(REDIS_ANSWER_TIMEOUT, call).await {
            Ok(Ok(answer)) => match answer.first().map(String::as_str) {
                Some("won") => Told::Won,
                Some("no_prize") => Told::NoPrize,
                Some("all_drawn") => Told::AllDrawn,
                Some("repeat") => Told::Repeat,
                _ => Told::Error(format!("the draw script answered {answer:?}")),
            },
            Ok(Err(error)) => Told::Error(error.to_string()),
            Err(_) => Told::Error(format!("Redis did not answer within {REDIS_ANSWER_TIMEOUT:?}")),
        }
    }
}

/// Every tier's units (tier positions from 1, as many as its stock), in an order shuffled with `seed`
/// (Fisher-Yates over the draws' own derivation, SHA-256 of the seed and the index): the same order for the same
/// seed.
fn shuffled_units(tiers: &[u32], seed: u64) -> Vec<u32> {
    let mut units: Vec<u32> =
        tiers.iter().zip(1u32..).flat_map(|(&stock, position)| std::iter::repeat_n(position, stock as usize)).collect();
    let seed = format!("{seed:064x}");
    for i in (1..units.len()).rev() {
        let index = i64::try_from(i).unwrap_or(i64::MAX);
        let random = u64::from(draw_number(&seed, 0, index, 0));
        units.swap(i, (random % (i as u64 + 1)) as usize);
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_every_tiers_stock_shuffled_by_the_seed() {
        let units = shuffled_units(&[1, 2, 3], 7);
        let mut sorted = units.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2, 2, 3, 3, 3]);
        assert_eq!(units, shuffled_units(&[1, 2, 3], 7));
        let big = shuffled_units(&[500, 500], 7);
        assert_ne!(big, shuffled_units(&[500, 500], 8), "another seed, another order");
        assert_ne!(&big[..500], &[1; 500][..], "shuffled, not in tier order");
    }
}
