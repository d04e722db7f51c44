//! Cookies as every extractor of the crate reads them from a request's `Cookie` headers: pairs split on `;`,
//! trimmed, the name up to the first `=`, the value trimmed of white space and then of double quotes. (The
//! load balancer's Lua reads them the same way, so that it passes through whatever the app would refuse.)

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

/// Every value of cookie `name`, in the order sent. A `Cookie` header that is not text gives one `None`, where
/// it stands: whether that refuses the request is the caller's decision.
pub(crate) fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = Option<&'a str>> + 'a {
    headers.get_all(COOKIE).iter().flat_map(move |header| {
        let text = header.to_str().ok();
        let unreadable = text.is_none().then_some(None);
        text.into_iter()
            .flat_map(|text| text.split(';'))
            .filter_map(move |pair| {
                let (key, value) = pair.trim().split_once('=')?;
                (key == name).then(|| Some(value.trim().trim_matches('"')))
            })
            .chain(unreadable)
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn values_are_read_in_order_trimmed_and_unreadable_headers_stand_where_they_are() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; b = 2 ;b=\" 3\""));
        headers.append(COOKIE, HeaderValue::from_bytes(b"b=\xff").unwrap());
        headers.append(COOKIE, HeaderValue::from_static("ab=4;b=5"));
        let values: Vec<_> = cookie_values(&headers, "b").collect();
        assert_eq!(values, [Some(" 3"), None, Some("5")]);
        assert_eq!(cookie_values(&headers, "a").collect::<Vec<_>>(), [Some("1"), None]);
        assert_eq!(cookie_values(&headers, "c").flatten().count(), 0);
    }
}
