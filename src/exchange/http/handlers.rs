//! The API's handlers: the catalogue, the user's balance and page data, and the exchange itself.
//!
//! Paths are read as text and parsed here, so a gift id that is not one is a JSON 404 rather than axum's
//! plain-text rejection.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::ExchangeState;
use super::idempotency::{IDEMPOTENCY_KEY, idempotency_key};
use super::views::{BalanceView, ExchangeAnswer, GiftView, MineView};
use crate::database::WithGtid;
use crate::exchange::{ExchangeError, ExchangeOutcome};
use crate::http::gtid_cookie::{GtidCookie, ReadAfter};
use crate::http::ids::positive_id;
use crate::http::{ApiError, CurrentUser, Envelope, RequestOutcome};

/// What a client whose exchange is in doubt must do; the answer to that retry is the first outcome.
pub(super) const RETRY_HINT: &str = "retry with the same Idempotency-Key: it answers the first outcome";

type ApiResult<T> = Result<Json<Envelope<T>>, ApiError>;

/// The answer for an error of a read or of input checked before sending: client errors as they are, the
/// database's as 503 (unreachable) or 500.
fn api_error(error: ExchangeError) -> ApiError {
    match error {
        ExchangeError::Database(database) => database.into(),
        ExchangeError::InvalidUser(id) => ApiError::Unauthorized(format!("invalid user id {id}")),
        ExchangeError::InvalidGiftId(id) => ApiError::NotFound(format!("no gift with id {id}")),
        ExchangeError::InvalidRequestId(invalid) => ApiError::BadRequest(format!("{IDEMPOTENCY_KEY}: {invalid}")),
        // Grants and gift creation are not served here; these only come from them.
        error @ (ExchangeError::RolledBack { .. }
        | ExchangeError::InDoubt { .. }
        | ExchangeError::InvalidGrant(_)
        | ExchangeError::InvalidGift(_)) => ApiError::Internal(error.to_string()),
    }
}

/// A gift id from the path: digits only, positive, within `i64`; anything else names no gift.
fn parse_gift_id(path: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let segment = path.map_err(|_| ApiError::NotFound("no such gift".into()))?.0;
    positive_id(&segment, "gift")
}

/// `GET /exchange/gifts.json`: the catalogue, in id order. Needs no user.
#[utoipa::path(get, path = "/exchange/gifts.json", tag = "exchange",
    responses((status = 200, description = "the catalogue", body = Envelope<Vec<GiftView>>)))]
pub(super) async fn gifts(State(state): State<ExchangeState>) -> ApiResult<Vec<GiftView>> {
    let gifts = state.service.gifts().await.map_err(api_error)?;
    Ok(Json(Envelope::ok(gifts.into_iter().map(GiftView::from).collect())))
}

/// `GET /exchange/balance.json`: the user's balance, `null` when never granted; showing every exchange in the
/// `seckillGtid` cookie.
#[utoipa::path(get, path = "/exchange/balance.json", tag = "exchange", security(("seckillUser" = [])),
    responses((status = 200, description = "the user's balance, null when never granted", body = Envelope<BalanceView>),
        (status = 401, description = "no or an invalid seckillUser cookie")))]
pub(super) async fn balance(
    State(state): State<ExchangeState>,
    CurrentUser(user_id): CurrentUser,
    ReadAfter(known): ReadAfter,
) -> ApiResult<BalanceView> {
    let balance = state.service.balance_after(user_id, known.as_ref()).await.map_err(api_error)?;
    Ok(Json(Envelope::ok(BalanceView { user_id, balance })))
}

/// `GET /exchange/mine.json`: the balance, the user's exchanges with their shipment states, and recent ledger
/// entries, newest first. Three reads, run at once; each is consistent on its own, shows every exchange in the
/// `seckillGtid` cookie, and the page shows them again a few seconds later.
#[utoipa::path(get, path = "/exchange/mine.json", tag = "exchange", security(("seckillUser" = [])),
    responses((status = 200, description = "the user's exchanges and ledger", body = Envelope<MineView>),
        (status = 401, description = "no or an invalid seckillUser cookie")))]
pub(super) async fn mine(
    State(state): State<ExchangeState>,
    CurrentUser(user_id): CurrentUser,
    ReadAfter(known): ReadAfter,
) -> ApiResult<MineView> {
    let service = &state.service;
    let after = known.as_ref();
    let (balance, exchanges, ledger) = tokio::try_join!(
        service.balance_after(user_id, after),
        service.history_after(user_id, state.history_limit, after),
        service.ledger_after(user_id, state.ledger_limit, after),
    )
    .map_err(api_error)?;
    Ok(Json(Envelope::ok(MineView {
        user_id,
        balance,
        exchanges: exchanges.into_iter().map(Into::into).collect(),
        ledger: ledger.into_iter().map(Into::into).collect(),
    })))
}

/// `POST /exchange/gifts/{id}/exchange`, the request id in the `Idempotency-Key` header. Every decided outcome
/// is a successful request whose data says which, refusals included (like the classic seckill API). What
/// decided nothing is a JSON 503: the database unreachable or the exchange rolled back (nothing written), or
/// the outcome in doubt, whose error says to retry with the same key; the retry answers what the database
/// decided, or decides it now. The answer sets the `seckillGtid` cookie to the batch's commit GTID (or clears it
/// when the outcome is in doubt without one), for `balance.json` and `mine.json`.
#[utoipa::path(post, path = "/exchange/gifts/{id}/exchange", tag = "exchange", security(("seckillUser" = [])),
    params(("id" = i64, Path, description = "the gift"),
        ("Idempotency-Key" = String, Header, description = "one per request; the same to retry it")),
    responses((status = 200, description = "a decided exchange (exchanged, out_of_stock, not_enough_points, ...); repeat for a retry", body = Envelope<ExchangeAnswer>),
        (status = 400, description = "a missing or invalid key, or a malformed gift id"),
        (status = 401, description = "no or an invalid seckillUser cookie"),
        (status = 422, description = "the key was first used for another gift: nothing was done"),
        (status = 503, description = "nothing was done, or in doubt: retry with the same key")))]
pub(super) async fn exchange(
    State(state): State<ExchangeState>,
    CurrentUser(user_id): CurrentUser,
    ReadAfter(known): ReadAfter,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let gift_id = match parse_gift_id(path) {
        Ok(gift_id) => gift_id,
        Err(error) => return error.into_response(),
    };
    let submitted = idempotency_key(&headers)
        .and_then(|request_id| state.service.submit_with_gtid(user_id, gift_id, request_id).map_err(api_error));
    let WithGtid { outcome, gtid } = match submitted {
        Ok(decided) => decided.await,
        Err(error) => return error.into_response(),
    };
    let in_doubt = matches!(&outcome, ExchangeOutcome::InnerError(error) if error.in_doubt);
    let cookie = GtidCookie::after_write(known.as_ref(), gtid, in_doubt);
    (cookie, answer(gift_id, outcome)).into_response()
}

/// The answer for an exchange's outcome: the decided ones as they are, the rest as a JSON 503.
fn answer(
    gift_id: i64,
    outcome: ExchangeOutcome,
) -> Result<(RequestOutcome, Json<Envelope<ExchangeAnswer>>), ApiError> {
    let error = match outcome {
        ExchangeOutcome::InnerError(error) => error,
        ExchangeOutcome::KeyReused { first_gift_id } => {
            return Err(ApiError::Unprocessable(format!(
                "this {IDEMPOTENCY_KEY} was first used for gift {first_gift_id}, not gift {gift_id}: nothing done; \
                 send a new key for a new exchange"
            )));
        }
        decided => {
            let answer = ExchangeAnswer::decided(gift_id, &decided)
                .ok_or_else(|| ApiError::Internal(format!("no answer for the outcome {decided:?}")))?;
            return Ok((RequestOutcome(decided.reason()), Json(Envelope::ok(answer))));
        }
    };
    if error.in_doubt {
        return Err(ApiError::InDoubt { check: RETRY_HINT.into(), detail: error.detail });
    }
    if error.unavailable {
        return Err(ApiError::Unavailable(error.detail));
    }
    // Proven rolled back (say, a lock wait timeout): nothing was written or recorded, so the same key decides
    // afresh. Transient, hence 503 rather than 500; the detail (logged, never sent) says which it was.
    Err(ApiError::Unavailable(format!("exchange of gift {gift_id} rolled back, nothing written: {}", error.detail)))
}
