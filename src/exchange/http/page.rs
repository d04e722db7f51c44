//! The exchange page: static HTML, JavaScript and CSS embedded in the binary, served by the router (see
//! [`crate::http`]'s page helper). What is in `src/exchange/http/page/` is what the browser gets.

use axum::extract::{Path, RawQuery};
use axum::response::Response;

use crate::http::{ApiError, Page};

static PAGE: Page = Page::new(
    "积分兑换 · Points exchange",
    include_str!("page/page.html"),
    include_str!("page/app.js"),
    include_str!("page/style.css"),
);

/// `GET /exchange`. Links are relative, so the page works wherever the host app nests the router; from
/// `/exchange` they start one folder up.
pub(super) async fn page() -> Response {
    PAGE.response("exchange/")
}

/// `GET /exchange/`
pub(super) async fn page_in_folder() -> Response {
    PAGE.response("")
}

/// `GET /exchange/assets/{name}`
pub(super) async fn asset(Path(name): Path<String>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    PAGE.asset(&name, query.as_deref())
}
