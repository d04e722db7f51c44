//! The typed call of the `exchange_credit_batch` procedure (`sql/procedures/exchange/exchange_credit_batch.sql`):
//!
//! ```sql
//! CALL exchange_credit_batch(v_gift_id BIGINT, v_requests MEDIUMTEXT /* [{"user": 1, "request": "r-1"}, ...] */);
//! -- one row per request, in input order: seq INT, outcome VARCHAR(20), repeat BOOLEAN, exchange_id BIGINT,
//! -- balance_after BIGINT, stock_left INT
//! -- then one row: gtid, the commit's GTID ('' without a binary log)
//! -- SQLSTATE '45RB0': rolled back whole, nothing written; any other error: in doubt
//! ```
//!
//! One statement in the text protocol: exactly one round trip, nothing to prepare. The requests travel as a
//! JSON literal written into the statement, which is safe because user ids are integers and request ids are
//! [`RequestId`](super::RequestId)s, whose alphabet has no quote and no backslash.

use mysql_async::{Pool, Row};

use super::outcome::ExchangeOutcome;
use super::request::ExchangeRequest;
use crate::database::call::call_committing;
use crate::database::gtid::{WithGtid, commit_gtid, stamp};
use crate::database::rows::decode;
use crate::group_commit::{Committing, Decided};

/// Decides one batch of exchanges of one gift: a single statement, a single transaction, every outcome with the
/// batch's commit GTID; `committing` hears when it is decided. On any failure every request gets the same
/// [`ExchangeOutcome::InnerError`], which says
/// whether the batch may have committed.
pub(crate) async fn exchange_credit_batch(
    pool: &Pool,
    gift_id: i64,
    requests: &[ExchangeRequest],
    mut committing: Committing,
) -> Decided<WithGtid<ExchangeOutcome>> {
    let failed = |outcome: ExchangeOutcome| Decided { outcomes: vec![outcome; requests.len()], closed: None };
    match call_committing(pool, &statement(gift_id, requests), &mut committing).await {
        // The CALL succeeded, so it committed whatever it decided: an answer that cannot be read leaves every
        // request's outcome unknown (a retry with the same request id tells).
        Ok(result_sets) => {
            let gtid = commit_gtid(&result_sets);
            let decided =
                answer(requests.len(), result_sets).unwrap_or_else(|detail| failed(ExchangeOutcome::in_doubt(detail)));
            stamp(decided, gtid)
        }
        Err(failure) => stamp(failed(ExchangeOutcome::InnerError(failure.into())), None),
    }
}

/// The CALL for a batch, in the compact form the procedure checks fastest (`[{"user":1,"request":"r-1"}]`).
fn statement(gift_id: i64, requests: &[ExchangeRequest]) -> String {
    let mut list = String::with_capacity(requests.len() * 48 + 2);
    list.push('[');
    for (index, request) in requests.iter().enumerate() {
        if index > 0 {
            list.push(',');
        }
        // A request id's alphabet has no quote and no backslash: it needs no escaping in JSON or SQL.
        list.push_str(&format!(r#"{{"user":{},"request":"{}"}}"#, request.user_id, request.request_id.as_str()));
    }
    list.push(']');
    format!("CALL exchange_credit_batch({gift_id}, '{list}')")
}

type AnswerRow = (i64, String, i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

/// Every request's outcome, and the gift's closed answer once its stock is gone.
fn answer(requests: usize, result_sets: Vec<Vec<Row>>) -> Result<Decided<ExchangeOutcome>, String> {
    let what = "the answer of exchange_credit_batch";
    let rows = result_sets
        .into_iter()
        .next()
        .ok_or_else(|| format!("{what}: no rows; is the procedure up to date? run `seckill migrate`"))?;
    if rows.len() != requests {
        return Err(format!("{what}: {} rows for {requests} requests", rows.len()));
    }
    let mut outcomes = Vec::with_capacity(requests);
    let mut last_stock = None;
    for (index, row) in rows.into_iter().enumerate() {
        let (seq, outcome, repeat, exchange_id, balance_after, stock_left, first_gift_id): AnswerRow =
            decode(row, what).map_err(|error| error.to_string())?;
        if usize::try_from(seq) != Ok(index + 1) {
            return Err(format!("{what}: row {} has seq {seq}", index + 1));
        }
        let decided = ExchangeOutcome::decided(&outcome, repeat != 0, exchange_id, balance_after, first_gift_id)
            .ok_or_else(|| format!("{what}: row {seq}: outcome {outcome:?} with exchange {exchange_id:?}"))?;
        outcomes.push(decided);
        last_stock = stock_left;
    }
    // Stock only ever goes down in an exchange, so a gift seen at 0 is answered from memory for a while; stock
    // added by hand is noticed at the lanes' next recheck.
    let closed = (last_stock == Some(0)).then_some(ExchangeOutcome::OutOfStock { repeat: false });
    Ok(Decided { outcomes, closed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::RequestId;

    #[test]
    fn the_batch_travels_as_a_json_literal_without_quotes_to_escape() {
        let requests = [
            ExchangeRequest { user_id: 1, request_id: RequestId::new("r-1").unwrap() },
            ExchangeRequest { user_id: 22, request_id: RequestId::new("a.b:c_d").unwrap() },
        ];
        let statement = statement(7, &requests);
        assert_eq!(
            statement,
            r#"CALL exchange_credit_batch(7, '[{"user":1,"request":"r-1"},{"user":22,"request":"a.b:c_d"}]')"#
        );
        assert_eq!(statement.matches('\'').count(), 2);
    }
}
