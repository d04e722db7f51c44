//! The front door: the landing page links every domain, and the development sign-in sets the signed cookie for a
//! valid user id and nothing for anything else.

use hyper::{Method, StatusCode};

use crate::common::http::{call, serve, user_cookies};

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

#[tokio::test]
async fn the_landing_page_links_every_domain_and_the_sign_in() {
    let served = serve(seckill::app::front_door().development_sign_in(user_cookies()).router()).await;
    let landing = call(served.address, Method::GET, "/", &[], Vec::new()).await;
    assert_eq!(landing.status, StatusCode::OK);
    assert!(landing.content_type.starts_with("text/html"), "{}", landing.content_type);
    for link in ["href=\"/seckill/list\"", "href=\"/exchange\"", "data-path=\"/lottery/{id}\"", "href=\"signin\""] {
        assert!(landing.text.contains(link), "{link}: {}", landing.text);
    }
    let style = call(served.address, Method::GET, "/assets/common.css", &[], Vec::new()).await;
    assert_eq!(style.status, StatusCode::OK);
    // Without the development sign-in there is no such page, and the landing page does not link to one.
    let plain = serve(seckill::app::front_door().router()).await;
    assert!(!call(plain.address, Method::GET, "/", &[], Vec::new()).await.text.contains("signin"));
    let sign_in = call(plain.address, Method::GET, "/signin", &[], Vec::new()).await;
    assert_eq!(sign_in.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_development_sign_in_sets_the_cookie_of_a_valid_user_id_and_nothing_else() {
    let served = serve(seckill::app::front_door().development_sign_in(user_cookies()).router()).await;
    let page = call(served.address, Method::GET, "/signin?next=%22%3E%3Cscript%3E", &[], Vec::new()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("\"><script>"), "the next path is never echoed raw: {}", page.text);

    let signed = call(served.address, Method::POST, "/signin", &[FORM], b"user=7&next=%2Fexchange".to_vec()).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.text);
    let [set_cookie] = signed.set_cookies.as_slice() else { panic!("one cookie: {:?}", signed.set_cookies) };
    let value = set_cookie.strip_prefix("seckillUser=").and_then(|rest| rest.split(';').next()).unwrap_or_default();
    assert_eq!(user_cookies().verify(value), Some(7), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("Path=/"), "{set_cookie}");

    for body in ["user=abc", "user=0", "user=-3", "user=", "user=99999999999999999999", "nothing=1"] {
        let refused = call(served.address, Method::POST, "/signin", &[FORM], body.as_bytes().to_vec()).await;
        assert!(refused.status.is_client_error(), "{body}: {}", refused.status);
        assert!(refused.set_cookies.is_empty(), "{body}: {:?}", refused.set_cookies);
    }
}
