//! The API's handlers: list, detail, the clock, the exposer and the execution.
//!
//! Paths are read as text and parsed here, so a malformed id is a JSON 400 rather than axum's plain-text
//! rejection.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::admission::Refusal;
use super::extract::{KillPhone, check_token_segment, parse_item_id};
use super::views::{Execution, Exposer};
use crate::database::{GtidPosition, WithGtid};
use crate::http::gtid_cookie::{GtidCookie, ReadAfter};
use crate::http::{ApiError, Envelope, RequestOutcome};
use crate::prometheus::names::RATE_LIMITED;
use crate::seckill::{Exposure, Item, Outcome, Phone, SuccessKilled};

/// How many items the list shows.
const LIST_LIMIT: u32 = 100;

type ApiResult<T> = Result<Json<Envelope<T>>, ApiError>;

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::BadRequest(format!("invalid path: {}", rejection.body_text()))
}

/// `GET /seckill/list.json`
#[utoipa::path(get, path = "/seckill/list.json", tag = "seckill",
    responses((status = 200, description = "the items, newest first", body = Envelope<Vec<Item>>)))]
pub async fn list(State(app): State<AppState>) -> ApiResult<Vec<Item>> {
    Ok(Json(Envelope::ok(app.service.list(LIST_LIMIT).await?)))
}

/// `GET /seckill/{id}/detail.json`
#[utoipa::path(get, path = "/seckill/{id}/detail.json", tag = "seckill", params(("id" = i64, Path, description = "the item")),
    responses((status = 200, description = "the item", body = Envelope<Item>),
        (status = 400, description = "a malformed id"), (status = 404, description = "no such item")))]
pub async fn detail(State(app): State<AppState>, path: Result<Path<String>, PathRejection>) -> ApiResult<Item> {
    let seckill_id = parse_item_id(&path.map_err(path_error)?.0)?;
    match app.item(seckill_id).await? {
        Some(item) => Ok(Json(Envelope::ok(item))),
        None => Err(ApiError::NotFound(format!("no seckill item with id {seckill_id}"))),
    }
}

/// `GET /seckill/time/now`: the database's clock in epoch ms, which the page counts down with.
#[utoipa::path(get, path = "/seckill/time/now", tag = "seckill",
    responses((status = 200, description = "the database's clock, epoch ms", body = Envelope<i64>)))]
pub async fn now(State(app): State<AppState>) -> ApiResult<i64> {
    Ok(Json(Envelope::ok(app.service.now().await?.timestamp_millis())))
}

/// `POST /seckill/{id}/exposer`, the buyer from the `killPhone` cookie. In classic signing mode the token is
/// the same for everyone, so, as in the classic API, no cookie is needed.
#[utoipa::path(post, path = "/seckill/{id}/exposer", tag = "seckill", params(("id" = i64, Path, description = "the item")),
    responses((status = 200, description = "the signed URL's md5 when the sale is open", body = Envelope<Exposer>),
        (status = 400, description = "a malformed id"), (status = 401, description = "no killPhone cookie (hmac signing)"),
        (status = 404, description = "no such item")))]
pub async fn exposer(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    buyer: Result<KillPhone, ApiError>,
) -> ApiResult<Exposer> {
    let seckill_id = parse_item_id(&path.map_err(path_error)?.0)?;
    let phone = match buyer {
        Ok(KillPhone(phone)) => phone,
        // No cookie (401): any phone signs the same classic token.
        Err(ApiError::Unauthorized(_)) if !app.service.signer().binds_user() => Phone::nth(0),
        Err(error) => return Err(error),
    };
    match app.service.expose(seckill_id, phone).await? {
        Exposure::NotFound { .. } => Err(ApiError::NotFound(format!("no seckill item with id {seckill_id}"))),
        exposure => Ok(Json(Envelope::ok(Exposer::from_exposure(seckill_id, exposure)))),
    }
}

/// `GET /seckill/{id}/result`, the buyer from the `killPhone` cookie: the committed success record, or null.
/// How a buyer whose execution was in doubt (a 503 during an outage) learns whether it went through. Read after
/// the `seckillGtid` cookie's GTIDs when it has them (on a replica that applied them, else the primary), on the
/// primary otherwise.
#[utoipa::path(get, path = "/seckill/{id}/result", tag = "seckill", params(("id" = i64, Path, description = "the item")),
    responses((status = 200, description = "the buyer's committed record of the item, or null", body = Envelope<Option<SuccessKilled>>),
        (status = 400, description = "a malformed id or killPhone cookie")))]
pub async fn result(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    KillPhone(phone): KillPhone,
    ReadAfter(known): ReadAfter,
) -> ApiResult<Option<SuccessKilled>> {
    let seckill_id = parse_item_id(&path.map_err(path_error)?.0)?;
    Ok(Json(Envelope::ok(app.service.kill_record_after(seckill_id, phone, known.as_ref()).await?)))
}

/// `POST /seckill/{id}/{md5}/execution`, the buyer from the `killPhone` cookie. As in the classic API, every
/// outcome that has a state code is a successful request whose data says so: success 1, sold out / not
/// started / ended / unknown item 0, repeat -1, rolled back -2, a bad, expired or another user's signature -3.
/// What the classic API has no state for is a JSON error with a real status: a malformed request 400, a buyer
/// or item over its rate limit 429, an unreachable database 503, and an outcome in doubt 503 naming
/// `/seckill/{id}/result`. The answer sets the `seckillGtid` cookie to the commit's GTID (or clears it when the
/// outcome is in doubt without one), for `/result`.
#[utoipa::path(post, path = "/seckill/{id}/{md5}/execution", tag = "seckill",
    params(("id" = i64, Path, description = "the item"), ("md5" = String, Path, description = "the exposer's md5")),
    responses((status = 200, description = "a decided seckill: state 1 success, 0 ended, -1 repeat, -2 inner error, -3 tampered", body = Envelope<Execution>),
        (status = 400, description = "a malformed id"), (status = 401, description = "no killPhone cookie"),
        (status = 429, description = "over a rate limit: nothing was done"),
        (status = 503, description = "nothing was done, or in doubt: GET /seckill/{id}/result tells")))]
pub async fn execution(
    State(app): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    KillPhone(phone): KillPhone,
    ReadAfter(known): ReadAfter,
) -> Response {
    let (answer, cookie) = match path.map_err(path_error) {
        Ok(Path((id, token))) => execute(&app, &id, &token, phone, known).await,
        Err(error) => (Err(error), GtidCookie::default()),
    };
    (cookie, answer).into_response()
}

/// An execution's answer, with what it came to for the request metrics.
type Answered = Result<(RequestOutcome, Json<Envelope<Execution>>), ApiError>;

/// The execution's answer, and what it does with the GTID cookie.
async fn execute(
    app: &AppState,
    id: &str,
    token: &str,
    phone: Phone,
    known: Option<GtidPosition>,
) -> (Answered, GtidCookie) {
    let (seckill_id, decided) = match decide(app, id, token, phone).await {
        Ok(decided) => decided,
        Err(error) => return (Err(error), GtidCookie::default()),
    };
    let WithGtid { outcome, gtid } = decided;
    let in_doubt = matches!(&outcome, Outcome::InnerError(error) if error.in_doubt);
    let cookie = GtidCookie::after_write(known.as_ref(), gtid, in_doubt);
    (answer(app, seckill_id, outcome).await, cookie)
}

/// The checks of the request, then the seckill: its outcome with its commit's GTID.
async fn decide(app: &AppState, id: &str, token: &str, phone: Phone) -> Result<(i64, WithGtid<Outcome>), ApiError> {
    let seckill_id = parse_item_id(id)?;
    let token = check_token_segment(token)?;
    if app.service.signer().verify(seckill_id, phone, token, chrono::Utc::now()).is_err() {
        return Ok((seckill_id, WithGtid::without_gtid(Outcome::Tampered)));
    }
    match app.admission.admit(seckill_id, phone).await {
        Err(Refusal::User) => {
            metrics::counter!(RATE_LIMITED, "scope" => "buyer").increment(1);
            Err(ApiError::TooManyRequests("from this buyer"))
        }
        Err(Refusal::Item) => {
            metrics::counter!(RATE_LIMITED, "scope" => "item").increment(1);
            Err(ApiError::TooManyRequests("for this item"))
        }
        Ok(()) => Ok((seckill_id, app.service.execute_verified_with_gtid(seckill_id, phone).await)),
    }
}

/// The classic answer for an outcome, or the JSON error for what the classic API has no state for.
async fn answer(app: &AppState, seckill_id: i64, outcome: Outcome) -> Answered {
    let item = match &outcome {
        Outcome::InnerError(error) if error.in_doubt => {
            let check = format!("check GET /seckill/{seckill_id}/result shortly");
            return Err(ApiError::InDoubt { check, detail: error.detail.clone() });
        }
        Outcome::InnerError(error) if error.unavailable => return Err(ApiError::Unavailable(error.detail.clone())),
        Outcome::InnerError(error) => {
            tracing::warn!(seckill_id, detail = %error.detail, "seckill rolled back");
            None
        }
        Outcome::Success(_) => app.shown_item(seckill_id).await,
        _ => None,
    };
    Ok((RequestOutcome(outcome.reason()), Json(Envelope::ok(Execution::new(seckill_id, &outcome, item)))))
}
