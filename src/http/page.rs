//! The sale page: static HTML, JavaScript and CSS embedded in the binary, served by the router. No build step
//! and no CDN: what is in `src/http/page/` is what the browser gets.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};

use super::api_error::ApiError;
use super::extract::parse_item_id;

const PAGE: &str = include_str!("page/page.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");

/// `GET /seckill/list`. Links are relative, so the page works wherever the host app nests the router.
pub async fn list_page() -> Html<String> {
    Html(PAGE.replace("{{ROOT}}", ""))
}

/// `GET /seckill/{id}/detail`
pub async fn detail_page(Path(id): Path<String>) -> Result<Html<String>, ApiError> {
    parse_item_id(&id)?;
    Ok(Html(PAGE.replace("{{ROOT}}", "../")))
}

/// `GET /seckill/assets/{name}`
pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (body, content_type) = match name.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        _ => return Err(ApiError::NotFound("no such asset".into())),
    };
    Ok(([(CONTENT_TYPE, content_type), (CACHE_CONTROL, "public, max-age=300")], body).into_response())
}
