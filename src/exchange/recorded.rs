//! A request's first answer, as the database recorded it: what a retry hears while its gift is closed (out of
//! stock), on any instance. `exchange_request` holds the first answer of every (user, request id) the procedure
//! decided, refusals included, and names the gift it was for; a point read by its primary key tells whether the
//! retry has an outcome (its repeat), names another gift (refused: a request id names one request), or has none,
//! so that "out of stock" is true of it.

use mysql_async::Pool;

use super::outcome::ExchangeOutcome;
use super::request::ExchangeRequest;
use crate::database::acquire;
use crate::database::gtid::WithGtid;
use crate::database::rows::exec_first;

/// The first answer recorded for `request`, as a retry of it for `gift_id` hears it now.
///
/// # Errors
/// The read failed (the caller then lets the procedure decide), or the row did not read.
pub(crate) async fn recorded(
    pool: &Pool,
    gift_id: i64,
    request: &ExchangeRequest,
) -> Result<Option<WithGtid<ExchangeOutcome>>, String> {
    let what = "an exchange request's first answer";
    let mut conn = acquire(pool).await.map_err(|error| error.to_string())?;
    let row: Option<(i64, String, Option<i64>, Option<i64>)> = exec_first(
        &mut conn,
        "SELECT gift_id, outcome, exchange_id, balance_after FROM exchange_request WHERE user_id = ? AND request_id = ?",
        (request.user_id, request.request_id.as_str()),
        what,
    )
    .await
    .map_err(|error| error.to_string())?;
    let Some((first_gift_id, outcome, exchange_id, balance_after)) = row else { return Ok(None) };
    let answer = if first_gift_id == gift_id {
        ExchangeOutcome::decided(&outcome, true, exchange_id, balance_after, None)
            .ok_or_else(|| format!("{what}: outcome {outcome:?} with exchange {exchange_id:?}"))?
    } else {
        ExchangeOutcome::KeyReused { first_gift_id }
    };
    Ok(Some(WithGtid::without_gtid(answer)))
}
