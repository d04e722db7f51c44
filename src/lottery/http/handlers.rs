//! The API's handlers: a campaign's status, the user's draws, the draw itself, and the audit log once revealed.
//!
//! Paths are read as text and parsed here, so a campaign id that is not one is a JSON 404 rather than axum's
//! plain-text rejection.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::LotteryState;
use super::views::{DrawAnswer, DrawView, MineView, StatusView};
use crate::database::WithGtid;
use crate::http::gtid_cookie::{GtidCookie, ReadAfter};
use crate::http::ids::positive_id;
use crate::http::{ApiError, CurrentUser, Envelope, JSON_UTF8, RequestOutcome};
use crate::lottery::audit::AuditLog;
use crate::lottery::{DrawOutcome, LotteryError};

type ApiResult<T> = Result<Json<Envelope<T>>, ApiError>;

/// A campaign id from the path: digits only, positive, within `i64`; anything else names no campaign.
pub(super) fn parse_campaign_id(path: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let segment = path.map_err(|_| ApiError::NotFound("no such campaign".into()))?.0;
    positive_id(&segment, "campaign")
}

/// The answer for an error of a read or of input checked before sending: client errors as they are, the
/// database's as 503 (unreachable) or 500.
fn api_error(error: LotteryError) -> ApiError {
    match error {
        LotteryError::Database(database) => database.into(),
        LotteryError::InvalidUser(id) => ApiError::Unauthorized(format!("invalid user id {id}")),
        LotteryError::InvalidCampaignId(id) => ApiError::NotFound(format!("no campaign with id {id}")),
        error @ LotteryError::NotRevealed { .. } => ApiError::Forbidden(error.to_string()),
        error @ LotteryError::Unverifiable(_) => ApiError::Unprocessable(error.to_string()),
        // Campaign creation and the books are not served here; these only come from them.
        error @ (LotteryError::InvalidCampaign(_) | LotteryError::Unbalanced(_)) => {
            ApiError::Internal(error.to_string())
        }
    }
}

/// `GET /lottery/{campaign}/status.json`: the campaign now, at most the router's status max age old. Needs no
/// user. An unknown campaign is a 404.
#[utoipa::path(get, path = "/lottery/{campaign}/status.json", tag = "lottery", params(("campaign" = i64, Path, description = "the campaign")),
    responses((status = 200, description = "the campaign now: window, tiers (the published odds), units left", body = Envelope<StatusView>),
        (status = 400, description = "a malformed campaign id"), (status = 404, description = "no such campaign")))]
pub(super) async fn status(
    State(state): State<LotteryState>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusView> {
    let campaign_id = parse_campaign_id(path)?;
    let status = state.statuses.status(&state.service, campaign_id).await.map_err(api_error)?;
    let status = status.ok_or_else(|| ApiError::NotFound(format!("no campaign with id {campaign_id}")))?;
    Ok(Json(Envelope::ok(StatusView::clone(&status))))
}

/// `GET /lottery/{campaign}/mine.json`: the user's draws in the campaign, in draw order (none for a campaign that
/// does not exist). Read after the `seckillGtid` cookie's GTIDs when it has them (on a replica that applied them,
/// else the primary), on the primary otherwise: it settles a draw that was in doubt.
#[utoipa::path(get, path = "/lottery/{campaign}/mine.json", tag = "lottery", security(("seckillUser" = [])), params(("campaign" = i64, Path, description = "the campaign")),
    responses((status = 200, description = "the user's draws", body = Envelope<MineView>),
        (status = 400, description = "a malformed campaign id"), (status = 401, description = "no or an invalid seckillUser cookie")))]
pub(super) async fn mine(
    State(state): State<LotteryState>,
    CurrentUser(user_id): CurrentUser,
    ReadAfter(known): ReadAfter,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<MineView> {
    let campaign_id = parse_campaign_id(path)?;
    let draws = state.service.my_draws_after(campaign_id, user_id, known.as_ref()).await.map_err(api_error)?;
    Ok(Json(Envelope::ok(MineView { user_id, campaign_id, draws: draws.into_iter().map(DrawView::from).collect() })))
}

/// `GET /lottery/{campaign}/audit.json`: the campaign's audit log (the envelope's `data`), once it is over
/// (ended, or every prize drawn), for anyone to verify (`docs/lottery-verification.md`). Before the reveal a 403;
/// for a campaign created before commitments a 422. Read from the primary once per instance, then served from
/// memory: it never changes once revealed.
#[utoipa::path(get, path = "/lottery/{campaign}/audit.json", tag = "lottery", params(("campaign" = i64, Path, description = "the campaign")),
    responses((status = 200, description = "the audit log: commitment, seed, rules, every draw in commit order", body = Envelope<AuditLog>),
        (status = 403, description = "the campaign is not over: its seed is not revealed yet"),
        (status = 404, description = "no such campaign"), (status = 422, description = "created before commitments")))]
pub(super) async fn audit(State(state): State<LotteryState>, path: Result<Path<String>, PathRejection>) -> Response {
    let campaign_id = match parse_campaign_id(path) {
        Ok(campaign_id) => campaign_id,
        Err(error) => return error.into_response(),
    };
    match state.audits.answer(&state.service, campaign_id).await {
        Ok(Some(answer)) => ([(CONTENT_TYPE, JSON_UTF8)], answer).into_response(),
        Ok(None) => ApiError::NotFound(format!("no campaign with id {campaign_id}")).into_response(),
        Err(error) => api_error(error).into_response(),
    }
}

/// `POST /lottery/{campaign}/draw`. Every decided outcome is a successful request whose data says which, refusals
/// included (like the classic seckill API). What decided nothing is a JSON 503: the database unreachable or the
/// draw rolled back (nothing written), or the draw in doubt, whose error says where to look: the user's draws
/// list it if it went through. The answer sets the `seckillGtid` cookie to the batch's commit GTID (or clears it
/// when the draw is in doubt without one), for `mine.json`.
#[utoipa::path(post, path = "/lottery/{campaign}/draw", tag = "lottery", security(("seckillUser" = [])), params(("campaign" = i64, Path, description = "the campaign")),
    responses((status = 200, description = "a decided draw (won, no_prize, all_drawn, not_started, ended, unknown_campaign); repeat once the user's draws are used", body = Envelope<DrawAnswer>),
        (status = 400, description = "a malformed campaign id"), (status = 401, description = "no or an invalid seckillUser cookie"),
        (status = 403, description = "a draw from another site's page"),
        (status = 503, description = "nothing was done, or in doubt: mine.json tells")))]
pub(super) async fn draw(
    State(state): State<LotteryState>,
    CurrentUser(user_id): CurrentUser,
    ReadAfter(known): ReadAfter,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let campaign_id = match parse_campaign_id(path) {
        Ok(campaign_id) => campaign_id,
        Err(error) => return error.into_response(),
    };
    let WithGtid { outcome, gtid } = match state.service.draw_with_gtid(campaign_id, user_id).await {
        Ok(decided) => decided,
        Err(error) => return api_error(error).into_response(),
    };
    let in_doubt = matches!(&outcome, DrawOutcome::InnerError(error) if error.in_doubt);
    let cookie = GtidCookie::after_write(known.as_ref(), gtid, in_doubt);
    (cookie, answer(campaign_id, outcome)).into_response()
}

/// The answer for a draw's outcome: the decided ones as they are, the rest as a JSON 503.
fn answer(campaign_id: i64, outcome: DrawOutcome) -> Result<(RequestOutcome, Json<Envelope<DrawAnswer>>), ApiError> {
    let error = match outcome {
        DrawOutcome::InnerError(error) => error,
        decided => {
            let answer = DrawAnswer::decided(&decided)
                .ok_or_else(|| ApiError::Internal(format!("no answer for the outcome {decided:?}")))?;
            return Ok((RequestOutcome(decided.reason()), Json(Envelope::ok(answer))));
        }
    };
    if error.in_doubt {
        // Not "draw again": with more than one draw per user, a second draw after one that went through is
        // another draw, not a retry.
        let check = format!("see /lottery/{campaign_id}/mine.json, which lists the draw if it went through");
        return Err(ApiError::InDoubt { check, detail: error.detail });
    }
    if error.unavailable {
        return Err(ApiError::Unavailable(error.detail));
    }
    // Not sent, or proven rolled back (say, a lock wait timeout): nothing was recorded, the user keeps the draw.
    // Transient, hence 503 rather than 500; the detail (logged, never sent) says which it was.
    Err(ApiError::Unavailable(format!("draw in campaign {campaign_id} not made, nothing recorded: {}", error.detail)))
}
