//! The front door of an app: a landing page at `/` that links its parts, and, for development and demos, a
//! sign-in page at `/signin` that signs anyone in as any user id with the [`SignedUserCookie`].
//!
//! The development sign-in is the seam's placeholder, not an identity: a shop signs its users in with its own
//! (a session, a token from its gateway) and names them to the routers through a [`super::RequestUser`] of its
//! own. Its path is a convention the pages keep: a page whose user is signed out links to `/signin?next=<the
//! page>`, so a host whose sign-in lives at `/signin` is found by every page.

use axum::Form;
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, RawQuery};
use axum::http::StatusCode;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{ApiError, Page, SignedUserCookie, USER_COOKIE};

/// The sign-in page's path.
pub const SIGN_IN_PATH: &str = "/signin";

static LANDING: Page = Page::new(
    "秒杀 · 抽奖 · 积分兑换",
    include_str!("front_door/landing.html"),
    include_str!("front_door/app.js"),
    include_str!("front_door/style.css"),
);

static SIGN_IN: Page = Page::new(
    "登录 · Sign in",
    include_str!("front_door/sign_in.html"),
    include_str!("front_door/app.js"),
    include_str!("front_door/style.css"),
);

/// One part of the app the landing page links to.
#[derive(Debug, Clone)]
pub struct Entrance {
    /// Its name, as the link's text.
    pub title: &'static str,
    /// Its path. With `{id}` in it, the landing page asks for the id (a lottery's campaign) and goes there.
    pub path: &'static str,
    /// One line on what it is.
    pub about: &'static str,
}

/// The landing page and, when enabled, the development sign-in.
#[derive(Debug, Clone)]
pub struct FrontDoor {
    entrances: Vec<Entrance>,
    sign_in: Option<SignedUserCookie>,
}

impl FrontDoor {
    /// A landing page linking `entrances`, in order.
    pub fn new(entrances: Vec<Entrance>) -> Self {
        FrontDoor { entrances, sign_in: None }
    }

    /// Also `GET` and `POST /signin`, which sign anyone in as any user id: for development and demos only.
    pub fn development_sign_in(mut self, cookie: SignedUserCookie) -> Self {
        self.sign_in = Some(cookie);
        self
    }

    /// `GET /`, `GET /assets/{name}`, and the sign-in's routes when enabled.
    pub fn router(self) -> Router {
        let landing = landing_html(&self.entrances, self.sign_in.is_some());
        let mut router =
            Router::new().route("/", get(move || async move { Html(landing) })).route(
                "/assets/{name}",
                get(|Path(name): Path<String>, RawQuery(query): RawQuery| async move {
                    LANDING.asset(&name, query.as_deref())
                }),
            );
        if let Some(cookie) = self.sign_in {
            router = router.route(
                SIGN_IN_PATH,
                get(sign_in_page).post(move |form: Result<Form<SignIn>, _>| sign_in(cookie, form)),
            );
        }
        router
    }
}

fn landing_html(entrances: &[Entrance], sign_in: bool) -> String {
    let items: String = entrances
        .iter()
        .map(|entrance| {
            let (title, path, about) = (escape(entrance.title), escape(entrance.path), escape(entrance.about));
            if entrance.path.contains("{id}") {
                format!(
                    "      <li><form data-path=\"{path}\"><strong>{title}</strong> <input aria-label=\"id\" \
                     inputmode=\"numeric\" placeholder=\"id\" required> <button type=\"submit\">→</button></form> \
                     {about}</li>\n"
                )
            } else {
                format!("      <li><a href=\"{path}\">{title}</a> {about}</li>\n")
            }
        })
        .collect();
    let sign_in = if sign_in { "<a href=\"signin\">登录 · Sign in</a>" } else { "" };
    LANDING.html("").0.replace("{{ENTRANCES}}", &items).replace("{{SIGN_IN}}", sign_in)
}

/// The query of `GET /signin`: where to go once signed in.
#[derive(Debug, Deserialize)]
struct Next {
    next: Option<String>,
}

/// The form of `POST /signin`.
#[derive(Debug, Deserialize)]
struct SignIn {
    user: String,
    next: Option<String>,
}

async fn sign_in_page(query: Result<Query<Next>, QueryRejection>) -> Html<String> {
    let next = query.ok().and_then(|Query(query)| query.next);
    sign_in_html(next.as_deref(), "")
}

fn sign_in_html(next: Option<&str>, error: &str) -> Html<String> {
    let next = next.and_then(local_path).unwrap_or("/");
    Html(SIGN_IN.html("").0.replace("{{NEXT}}", &escape(next)).replace("{{ERROR}}", &escape(error)))
}

/// Sets the signed cookie for the user id given and goes on to `next`; a user id that is not a positive integer is
/// the form again, with why, and sets nothing.
async fn sign_in(cookie: SignedUserCookie, form: Result<Form<SignIn>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else {
        return ApiError::BadRequest("expected a form with a user id".into()).into_response();
    };
    let user = form.user.trim();
    let Some(user_id) = user.parse::<i64>().ok().filter(|id| *id > 0) else {
        let error = "用户 ID 须为正整数 · A user id is a positive integer";
        return (StatusCode::UNPROCESSABLE_ENTITY, sign_in_html(form.next.as_deref(), error)).into_response();
    };
    let next = form.next.as_deref().and_then(local_path).unwrap_or("/");
    let value = cookie.cookie_value(user_id);
    let set_cookie = format!("{USER_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax");
    (StatusCode::SEE_OTHER, [(SET_COOKIE, set_cookie), (LOCATION, next.to_string())]).into_response()
}

/// `path` when it is a path on this site (`/exchange`), never another site (`//evil.example`, `https://…`), so
/// that the sign-in cannot be used to send users elsewhere.
fn local_path(path: &str) -> Option<&str> {
    let local = path.starts_with('/') && !path.starts_with("//") && !path.contains('\\');
    // ASCII, as a Location header must be; a browser sends a page's path percent-encoded anyway.
    let printable = path.chars().all(|c| c.is_ascii_graphic());
    (local && printable).then_some(path)
}

/// `text` safe inside HTML text and quoted attributes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::{escape, local_path};

    #[test]
    fn only_paths_on_this_site_are_followed_after_sign_in() {
        assert_eq!(local_path("/exchange"), Some("/exchange"));
        assert_eq!(local_path("/lottery/7?x=1"), Some("/lottery/7?x=1"));
        for elsewhere in ["//evil.example/", "https://evil.example/", "/\\evil.example", "exchange", "", "/a\nb", "/é"]
        {
            assert_eq!(local_path(elsewhere), None, "{elsewhere:?}");
        }
    }

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
