//! The crowd: clients of the three APIs through the balancer, each request and its answer recorded as it was
//! heard, nothing judged here. Clients behave as the APIs tell them to: a buyer retries an execution, an exchange
//! that decided nothing (a 503, a 502, no answer) is sent again with the same `Idempotency-Key`, a user draws
//! again; and some send a decided request again later, as a double click or an impatient user does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::COOKIE;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use seckill::http::IDEMPOTENCY_KEY;
use seckill::seckill::Phone;

use crate::common::http::signed_in;
use crate::common::{phone, signer};

/// How long a client waits for one answer before it counts it as none.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// What a client heard.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// An HTTP answer: its status and its JSON (`Null` when not JSON).
    Answer { status: u16, json: serde_json::Value },
    /// No answer: the connection failed or nothing came back in time.
    Nothing(String),
}

impl Heard {
    pub fn status(&self) -> Option<u16> {
        match self {
            Heard::Answer { status, .. } => Some(*status),
            Heard::Nothing(_) => None,
        }
    }

    /// The envelope's `data` of a 200.
    pub fn data(&self) -> Option<&serde_json::Value> {
        match self {
            Heard::Answer { status: 200, json } => json.get("data"),
            _ => None,
        }
    }
}

/// One request of the history.
#[derive(Debug, Clone)]
pub enum Asked {
    Execution { seckill_id: i64, buyer: Phone },
    Exchange { user: i64, gift: i64, key: String },
    Draw { user: i64 },
}

/// One request and what it heard, in the order heard.
#[derive(Debug, Clone)]
pub struct Event {
    pub asked: Asked,
    pub heard: Heard,
}

/// Every request of the run, shared by the clients.
#[derive(Debug, Clone, Default)]
pub struct History(Arc<Mutex<Vec<Event>>>);

impl History {
    pub fn record(&self, asked: Asked, heard: Heard) {
        self.0.lock().unwrap().push(Event { asked, heard });
    }

    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}

/// The things the crowd uses.
#[derive(Debug, Clone, Copy)]
pub struct Stage {
    pub items: [i64; 2],
    pub gifts: [i64; 2],
    pub campaign: i64,
    pub buyers: i64,
    pub users: i64,
}

/// A keepalive HTTP client to the balancer, recording into the history.
#[derive(Clone)]
pub struct ApiClient {
    client: Client<HttpConnector, Full<Bytes>>,
    address: SocketAddr,
    history: History,
}

impl ApiClient {
    pub fn new(address: SocketAddr, history: History) -> Self {
        ApiClient { client: Client::builder(TokioExecutor::new()).build_http(), address, history }
    }

    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, String)]) -> Heard {
        let mut request = Request::builder().method(method).uri(format!("http://{}{path}", self.address));
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let Ok(request) = request.body(Full::new(Bytes::new())) else { return Heard::Nothing("no request".into()) };
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| format!("{e}"))?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            Ok::<_, String>(Heard::Answer { status, json })
        };
        match tokio::time::timeout(ANSWER_TIMEOUT, exchange).await {
            Ok(Ok(heard)) => heard,
            Ok(Err(why)) => Heard::Nothing(why),
            Err(_) => Heard::Nothing("no answer in time".into()),
        }
    }

    pub async fn execute(&self, seckill_id: i64, buyer: Phone) -> Heard {
        let token = signer().sign(seckill_id, buyer, Utc::now());
        let path = format!("/seckill/{seckill_id}/{token}/execution");
        let heard = self.send(Method::POST, &path, &[(COOKIE.as_str(), format!("killPhone={buyer}"))]).await;
        self.history.record(Asked::Execution { seckill_id, buyer }, heard.clone());
        heard
    }

    pub async fn exchange(&self, user: i64, gift: i64, key: &str) -> Heard {
        let path = format!("/exchange/gifts/{gift}/exchange");
        let headers = [(COOKIE.as_str(), signed_in(user)), (IDEMPOTENCY_KEY, key.to_string())];
        let heard = self.send(Method::POST, &path, &headers).await;
        self.history.record(Asked::Exchange { user, gift, key: key.to_string() }, heard.clone());
        heard
    }

    pub async fn draw(&self, campaign: i64, user: i64) -> Heard {
        let heard =
            self.send(Method::POST, &format!("/lottery/{campaign}/draw"), &[(COOKIE.as_str(), signed_in(user))]).await;
        self.history.record(Asked::Draw { user }, heard.clone());
        heard
    }
}

/// A small deterministic generator: the same crowd on every run.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// Whether an exchange's answer decided nothing, so that the API says to send it again with the same key.
fn send_again(heard: &Heard) -> bool {
    !matches!(heard.status(), Some(200 | 400 | 401 | 404 | 422 | 429))
}

/// One client's part of the run until `until`: actions drawn from `seed`, each a few requests.
pub async fn client(client: ApiClient, stage: Stage, seed: u64, until: Instant) {
    let mut random = Lcg::new(seed);
    let mut keys = 0;
    while Instant::now() < until {
        match random.below(3) {
            0 => {
                // A buyer tries once, sometimes twice or three times (a double click, an impatient retry).
                let item = stage.items[usize::from(random.below(4) == 0)];
                let buyer = phone(1 + random.below(stage.buyers as u64) as i64);
                for _ in 0..1 + random.below(3) {
                    client.execute(item, buyer).await;
                }
            }
            1 => {
                // An exchange under a fresh key, sent again with that key while it decides nothing; now and then
                // sent again once decided (a retry after a lost answer, maybe to another instance).
                let user = 1 + random.below(stage.users as u64) as i64;
                let gift = stage.gifts[usize::from(random.below(3) == 0)];
                keys += 1;
                let key = format!("c{seed}-{keys}");
                for attempt in 0..6 {
                    let heard = client.exchange(user, gift, &key).await;
                    if !send_again(&heard) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                if random.below(4) == 0 {
                    tokio::time::sleep(Duration::from_millis(random.below(300))).await;
                    client.exchange(user, gift, &key).await;
                }
            }
            _ => {
                let user = 1 + random.below(stage.users as u64) as i64;
                for _ in 0..1 + random.below(2) {
                    client.draw(stage.campaign, user).await;
                }
            }
        }
    }
}
