//! A served router and a real HTTP client for the HTTP tests.

use std::net::SocketAddr;

use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use seckill::http::{SignedUserCookie, USER_COOKIE};

use super::SECRET;

/// The content type of every JSON answer.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// The signer of the `seckillUser` cookie that signs users in to the exchange's and the lottery's routers.
pub fn user_cookies() -> SignedUserCookie {
    SignedUserCookie::new(SECRET).unwrap()
}

/// The `Cookie` header that signs `user` in.
pub fn signed_in(user: i64) -> String {
    format!("{USER_COOKIE}={}", user_cookies().cookie_value(user))
}

/// A JSON error in the envelope, with its status.
pub fn assert_error(answer: &Answer, status: StatusCode, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.text);
    assert_eq!((answer.json["success"].as_bool(), answer.content_type.as_str()), (Some(false), JSON_UTF8), "{what}");
    assert!(answer.json["error"].is_string(), "{what}: {}", answer.text);
}

/// A router served on a free loopback port for the rest of the test.
pub struct Served {
    pub address: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// An answer: status, content type, body text, and the body as JSON when it is JSON.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
    pub json: serde_json::Value,
    /// Every `Set-Cookie` header, as sent.
    pub set_cookies: Vec<String>,
}

/// One request to a served router at `address`, with the given headers, on a client of its own.
pub async fn call(address: SocketAddr, method: Method, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = Request::builder().method(method).uri(format!("http://{address}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client.request(request.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
    answer(response).await
}

async fn answer(response: hyper::Response<hyper::body::Incoming>) -> Answer {
    let status = response.status();
    let content_type =
        response.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let set_cookies = response.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Answer { status, content_type, text, json, set_cookies }
}

/// A request whose body is sent in chunks (`Transfer-Encoding: chunked`, so no `Content-Length` says how big it
/// is), written by hand on a socket of its own: `body` bytes in 16 KiB chunks. A server may answer before the
/// body is through and close the connection, so the answer is read while the body is still being written, and
/// a write cut short by that close is no failure.
pub async fn call_chunked(
    address: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: usize,
) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let writing = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let mut left = body;
        while left > 0 {
            let size = left.min(16 * 1024);
            let mut chunk = format!("{size:x}\r\n").into_bytes();
            chunk.extend(std::iter::repeat_n(b'x', size));
            chunk.extend(b"\r\n");
            writer.write_all(&chunk).await?;
            left -= size;
        }
        writer.write_all(b"0\r\n\r\n").await?;
        // The read half waits for the server's close; this half stays open until then.
        std::future::pending::<()>().await;
        Ok::<_, std::io::Error>(())
    });
    let mut raw = Vec::new();
    let read = async {
        let mut buffer = [0u8; 8192];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), read).await.expect("an answer within 30 s");
    writing.abort();
    raw_answer(&raw)
}

/// An HTTP/1.1 answer as read off the socket: the head, then a body of a declared length or in chunks.
fn raw_answer(raw: &[u8]) -> Answer {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no answer: {raw:?}"));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let code: u16 = lines.next().and_then(|line| line.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let mut rest = &raw[end + 4..];
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..line_end]).trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        body
    } else {
        let length = header("content-length").map_or(rest.len(), |v| v.parse().unwrap());
        rest[..length].to_vec()
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    Answer {
        status: StatusCode::from_u16(code).unwrap(),
        content_type: header("content-type").unwrap_or_default(),
        json: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        text,
        set_cookies: headers.iter().filter(|(n, _)| n == "set-cookie").map(|(_, v)| v.clone()).collect(),
    }
}

pub async fn serve(router: Router) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Served { address, client: Client::builder(TokioExecutor::new()).build_http(), server }
}

impl Served {
    pub async fn request(&self, method: Method, path: &str, phone_cookie: Option<&str>, body: Vec<u8>) -> Answer {
        self.request_to(&self.address.to_string(), method, path, phone_cookie, body).await
    }

    /// A request to any server (`host:port`), with this one's client.
    pub async fn request_to(
        &self,
        address: &str,
        method: Method,
        path: &str,
        phone_cookie: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(format!("http://{address}{path}"));
        if let Some(cookie) = phone_cookie {
            request = request.header(COOKIE, format!("killPhone={cookie}"));
        }
        let response = self.client.request(request.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
        answer(response).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, None, Vec::new()).await
    }

    /// A GET as the buyer in the `killPhone` cookie.
    pub async fn get_as(&self, path: &str, phone_cookie: &str) -> Answer {
        self.request(Method::GET, path, Some(phone_cookie), Vec::new()).await
    }

    pub async fn post(&self, path: &str, phone_cookie: Option<&str>) -> Answer {
        self.request(Method::POST, path, phone_cookie, Vec::new()).await
    }
}
