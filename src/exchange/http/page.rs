//! The exchange page: static HTML, JavaScript and CSS embedded in the binary, served by the router. No build
//! step and no CDN: what is in `src/exchange/http/page/` is what the browser gets.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};

use crate::http::ApiError;

const PAGE: &str = include_str!("page/page.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");

/// `GET /exchange`. Links are relative, so the page works wherever the host app nests the router; from
/// `/exchange` they start one folder up.
pub(super) async fn page() -> Html<String> {
    Html(PAGE.replace("{{ROOT}}", "exchange/"))
}

/// `GET /exchange/`
pub(super) async fn page_in_folder() -> Html<String> {
    Html(PAGE.replace("{{ROOT}}", ""))
}

/// `GET /exchange/assets/{name}`
pub(super) async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (body, content_type) = match name.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        _ => return Err(ApiError::NotFound("no such asset".into())),
    };
    Ok(([(CONTENT_TYPE, content_type), (CACHE_CONTROL, "public, max-age=300")], body).into_response())
}
