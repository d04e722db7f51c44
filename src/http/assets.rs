//! The pages every router serves, embedded in the binary: static HTML, JavaScript and CSS, no build step and no
//! CDN, so what is in a domain's `http/page/` folder (the page's body, script and style) and in
//! `src/http/assets/` (the document around every body, and the script and style every page shares) is what the
//! browser gets. One helper serves them all ([`Page`]), each page from its own router's path, so a page works
//! wherever the host app nests its router.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};

use super::ApiError;

/// What every page shares: the document around its body, the helpers its script calls (`window.seckillPage`)
/// and the base style.
const SHELL: &str = include_str!("assets/shell.html");
const COMMON_JS: &str = include_str!("assets/common.js");
const COMMON_CSS: &str = include_str!("assets/common.css");
/// The document of [`error_page`].
const ERROR_PAGE: &str = include_str!("assets/error.html");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// A page: its title, the HTML of its body (whose links start with `{{ROOT}}`), its script and its style.
#[derive(Debug)]
pub(crate) struct Page {
    title: &'static str,
    body: &'static str,
    script: &'static str,
    style: &'static str,
}

impl Page {
    pub(crate) const fn new(
        title: &'static str,
        body: &'static str,
        script: &'static str,
        style: &'static str,
    ) -> Self {
        Page { title, body, script, style }
    }

    /// The HTML document, its links relative to `root` (the way from the page's path to its router's folder).
    pub(crate) fn html(&self, root: &str) -> Html<String> {
        Html(SHELL.replace("{{TITLE}}", self.title).replace("{{BODY}}", self.body).replace("{{ROOT}}", root))
    }

    /// `GET .../assets/{name}`: `app.js` and `style.css` of this page, `common.js` and `common.css` of all.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] for any other name.
    pub(crate) fn asset(&self, name: &str) -> Result<Response, ApiError> {
        let (body, content_type) = match name {
            "app.js" => (self.script, JAVASCRIPT),
            "style.css" => (self.style, CSS),
            "common.js" => (COMMON_JS, JAVASCRIPT),
            "common.css" => (COMMON_CSS, CSS),
            _ => return Err(ApiError::NotFound("no such asset".into())),
        };
        Ok(([(CONTENT_TYPE, content_type), (CACHE_CONTROL, "public, max-age=300")], body).into_response())
    }
}

/// The page a browser gets for a page's path that names nothing (a malformed or impossible id): the error in
/// words, with the way to the site's front page, and the status an API would answer. An API's own paths answer
/// JSON; only a page's answer HTML.
pub(crate) fn error_page(error: &ApiError) -> Response {
    let words = match error {
        ApiError::NotFound(_) | ApiError::BadRequest(_) => "找不到这个页面 · There is no such page",
        _ => "暂不可用 · This page is not available now",
    };
    (error.status(), Html(ERROR_PAGE.replace("{{WORDS}}", words))).into_response()
}
