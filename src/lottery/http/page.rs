//! The lottery page: static HTML, JavaScript and CSS embedded in the binary, served by the router. No build step
//! and no CDN: what is in `src/lottery/http/page/` is what the browser gets. The page reads its campaign from its
//! own path.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};

use super::handlers::parse_campaign_id;
use crate::http::ApiError;

const PAGE: &str = include_str!("page/page.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");

/// `GET /lottery/{campaign}`. Links are relative, so the page works wherever the host app nests the router; from
/// `/lottery/{campaign}` the assets are in the same folder's `assets/`.
pub(super) async fn page(path: Result<Path<String>, PathRejection>) -> Result<Html<String>, ApiError> {
    parse_campaign_id(path)?;
    Ok(Html(PAGE.replace("{{ROOT}}", "")))
}

/// `GET /lottery/{campaign}/`
pub(super) async fn page_in_folder(path: Result<Path<String>, PathRejection>) -> Result<Html<String>, ApiError> {
    parse_campaign_id(path)?;
    Ok(Html(PAGE.replace("{{ROOT}}", "../")))
}

/// `GET /lottery/assets/{name}`
pub(super) async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (body, content_type) = match name.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        _ => return Err(ApiError::NotFound("no such asset".into())),
    };
    Ok(([(CONTENT_TYPE, content_type), (CACHE_CONTROL, "public, max-age=300")], body).into_response())
}
