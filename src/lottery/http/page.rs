//! The lottery page: static HTML, JavaScript and CSS embedded in the binary, served by the router (see
//! [`crate::http`]'s page helper). What is in `src/lottery/http/page/` is what the browser gets. The page reads
//! its campaign from its own path.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery};
use axum::response::Response;

use super::handlers::parse_campaign_id;
use crate::http::{ApiError, Page, error_page};

static PAGE: Page = Page::new(
    "抽奖 · Lottery",
    include_str!("page/page.html"),
    include_str!("page/app.js"),
    include_str!("page/style.css"),
);

/// `GET /lottery/{campaign}`; a path that names no campaign is a page saying so. Links are relative, so the page
/// works wherever the host app nests the router; from `/lottery/{campaign}` the assets are in the same folder's
/// `assets/`.
pub(super) async fn page(path: Result<Path<String>, PathRejection>) -> Response {
    match parse_campaign_id(path) {
        Ok(_) => PAGE.response(""),
        Err(error) => error_page(&error),
    }
}

/// `GET /lottery/{campaign}/`
pub(super) async fn page_in_folder(path: Result<Path<String>, PathRejection>) -> Response {
    match parse_campaign_id(path) {
        Ok(_) => PAGE.response("../"),
        Err(error) => error_page(&error),
    }
}

/// `GET /lottery/assets/{name}`
pub(super) async fn asset(Path(name): Path<String>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    PAGE.asset(&name, query.as_deref())
}
