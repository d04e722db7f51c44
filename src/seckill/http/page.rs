//! The sale page: static HTML, JavaScript and CSS embedded in the binary, served by the router (see
//! [`crate::http`]'s page helper). What is in `src/seckill/http/page/` is what the browser gets.

use axum::extract::{Path, RawQuery};
use axum::response::Response;

use super::extract::parse_item_id;
use crate::http::{ApiError, Page};

static PAGE: Page = Page::new(
    "秒杀 · seckill",
    include_str!("page/page.html"),
    include_str!("page/app.js"),
    include_str!("page/style.css"),
);

/// `GET /seckill/list`. Links are relative, so the page works wherever the host app nests the router.
pub(super) async fn list_page() -> Response {
    PAGE.response("")
}

/// `GET /seckill/{id}/detail`
pub(super) async fn detail_page(Path(id): Path<String>) -> Result<Response, ApiError> {
    parse_item_id(&id)?;
    Ok(PAGE.response("../"))
}

/// `GET /seckill/assets/{name}`
pub(super) async fn asset(Path(name): Path<String>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    PAGE.asset(&name, query.as_deref())
}
