//! The pages every router serves, embedded in the binary: static HTML, JavaScript and CSS, no build step and no
//! CDN, so what is in a domain's `http/page/` folder (the page's body, script and style) and in
//! `src/http/assets/` (the document around every body, and the script and style every page shares) is what the
//! browser gets. One helper serves them all ([`Page`]), each page from its own router's path, so a page works
//! wherever the host app nests its router.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use md5::{Digest, Md5};

use super::ApiError;

/// What every page shares: the document around its body, the helpers its script calls (`window.seckillPage`)
/// and the base style.
const SHELL: &str = include_str!("assets/shell.html");
const COMMON_JS: &str = include_str!("assets/common.js");
const COMMON_CSS: &str = include_str!("assets/common.css");
/// The document of [`error_page`].
const ERROR_PAGE: &str = include_str!("assets/error.html");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
/// How long a page may be kept by a cache in front (the balancer, a CDN) before it asks again: a changed page is
/// seen within this; its assets change with their URLs.
pub(crate) const PAGE_MAX_AGE: u32 = 10;
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

    /// The HTML document, its links relative to `root` (the way from the page's path to its router's folder),
    /// each asset's URL carrying its content's version (`?v=`), so that an asset can be cached for good.
    pub(crate) fn html(&self, root: &str) -> Html<String> {
        Html(
            SHELL
                .replace("{{TITLE}}", self.title)
                .replace("{{BODY}}", self.body)
                .replace("{{ROOT}}", root)
                .replace("{{V_COMMON_CSS}}", &version(COMMON_CSS))
                .replace("{{V_STYLE}}", &version(self.style))
                .replace("{{V_COMMON_JS}}", &version(COMMON_JS))
                .replace("{{V_APP}}", &version(self.script)),
        )
    }

    /// [`Page::html`] as a cacheable answer: the same bytes for every request (what changes is fetched as JSON),
    /// so a CDN or the balancer in front keeps it for [`PAGE_MAX_AGE`] seconds, and a browser that has it hears
    /// 304 (see [`not_modified`]).
    pub(crate) fn response(&self, root: &str) -> Response {
        let Html(html) = self.html(root);
        let etag = format!("\"{}\"", version(&html));
        let cache_control = format!("public, max-age={PAGE_MAX_AGE}");
        ([(ETAG, etag), (CACHE_CONTROL, cache_control)], Html(html)).into_response()
    }

    /// `GET .../assets/{name}`: `app.js` and `style.css` of this page, `common.js` and `common.css` of all.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] for any other name.
    /// Asked for with its current version (`?v=`, as the page links it), an asset never changes: it is cached
    /// for a year, `immutable`; asked for otherwise, for five minutes.
    pub(crate) fn asset(&self, name: &str, query: Option<&str>) -> Result<Response, ApiError> {
        let (body, content_type) = match name {
            "app.js" => (self.script, JAVASCRIPT),
            "style.css" => (self.style, CSS),
            "common.js" => (COMMON_JS, JAVASCRIPT),
            "common.css" => (COMMON_CSS, CSS),
            _ => return Err(ApiError::NotFound("no such asset".into())),
        };
        let current = query.is_some_and(|query| query == format!("v={}", version(body)));
        let cache_control = if current { "public, max-age=31536000, immutable" } else { "public, max-age=300" };
        Ok(([(CONTENT_TYPE, content_type), (CACHE_CONTROL, cache_control)], body).into_response())
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

/// A version of `content`: the first 12 hex digits of its MD5 (a name for these bytes, not a secret).
fn version(content: &str) -> String {
    hex::encode(Md5::digest(content.as_bytes())).chars().take(12).collect()
}

/// Answers 304 Not Modified, without the body, to a request whose `If-None-Match` names the answer's `ETag`: a
/// browser or a cache revalidating a page it holds.
pub(crate) async fn not_modified(request: Request, next: Next) -> Response {
    let asked = request.headers().get(IF_NONE_MATCH).cloned();
    let response = next.run(request).await;
    let (Some(asked), Some(etag)) = (asked, response.headers().get(ETAG)) else { return response };
    let matches = asked.to_str().is_ok_and(|asked| asked.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    if !matches {
        return response;
    }
    let mut unchanged = StatusCode::NOT_MODIFIED.into_response();
    for name in [ETAG, CACHE_CONTROL] {
        if let Some(value) = response.headers().get(&name) {
            unchanged.headers_mut().insert(name, value.clone());
        }
    }
    unchanged
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::extract::{Path, RawQuery};
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    static PAGE: Page = Page::new("a page", "<p>body</p>", "script();", "p {}");

    fn router() -> Router {
        Router::new()
            .route("/page", get(|| async { PAGE.response("") }))
            .route(
                "/assets/{name}",
                get(|Path(name): Path<String>, RawQuery(query): RawQuery| async move {
                    PAGE.asset(&name, query.as_deref())
                }),
            )
            .layer(axum::middleware::from_fn(not_modified))
    }

    async fn get_with(path: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(IF_NONE_MATCH, tag);
        }
        router().oneshot(request.body(Body::empty()).expect("a request")).await.expect("an answer")
    }

    fn header(response: &Response, name: axum::http::HeaderName) -> String {
        response.headers().get(name).and_then(|value| value.to_str().ok()).unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn a_page_may_be_kept_briefly_and_revalidates_to_304_while_versioned_assets_are_kept_for_good() {
        let page = get_with("/page", None).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(header(&page, CACHE_CONTROL), format!("public, max-age={PAGE_MAX_AGE}"));
        let etag = header(&page, ETAG);
        assert!(etag.starts_with('"') && etag.len() == 14, "{etag}");
        let unchanged = get_with("/page", Some(&etag)).await;
        assert_eq!((unchanged.status(), header(&unchanged, ETAG)), (StatusCode::NOT_MODIFIED, etag.clone()));
        assert_eq!(get_with("/page", Some("\"another\"")).await.status(), StatusCode::OK);

        let linked = format!("assets/app.js?v={}", version("script();"));
        let html = axum::body::to_bytes(page.into_body(), 1 << 20).await.expect("the page's body");
        assert!(String::from_utf8_lossy(&html).contains(&linked), "the page links {linked}");
        let current = get_with(&format!("/{linked}"), None).await;
        assert_eq!(header(&current, CACHE_CONTROL), "public, max-age=31536000, immutable");
        for other in ["/assets/app.js?v=000000000000", "/assets/app.js"] {
            assert_eq!(header(&get_with(other, None).await, CACHE_CONTROL), "public, max-age=300", "{other}");
        }
    }
}
