//! How many requests the cluster's app instances answered, by route: the count that proves a closed item's
//! traffic never reached an instance (the balancer answered it), and shows how the balancer spread the rest.
//!
//! Read from each instance's Prometheus `/metrics`, on its metrics listener ([`AppInstance::metrics_address`]:
//! loopback, apart from the API; the balancer never passes `/metrics` on): the sum of
//! `seckill_http_requests_total{route="..."}` over every outcome, where the route is axum's matched path. Tests,
//! the bench and the demo only ever count through here, and read any other counter of an instance the same way
//! ([`AppInstance::counter`]).

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{AppInstance, Cluster, ClusterError};
use crate::prometheus::METRICS_PATH;
use crate::prometheus::names::HTTP_REQUESTS;

/// How long reading one instance's metrics may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

impl AppInstance {
    /// How many requests for `route` (axum's matched path, such as `/seckill/{id}/{md5}/execution`) this
    /// instance has answered, whatever their outcome.
    ///
    /// # Errors
    /// [`ClusterError::Metrics`] when its `/metrics` could not be read (a stopped instance has none): what it
    /// answered is then unknown, never zero.
    pub async fn requests(&self, route: &str) -> Result<usize, ClusterError> {
        self.counter(HTTP_REQUESTS, &[("route", route)]).await
    }

    /// The sum of the samples of counter `name` (see [`crate::prometheus`]) whose labels include every pair of
    /// `labels`, in this instance's `/metrics`.
    ///
    /// # Errors
    /// [`ClusterError::Metrics`] when its `/metrics` could not be read.
    pub async fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Result<usize, ClusterError> {
        let failed = |detail: String| ClusterError::Metrics { number: self.number(), detail };
        let url = format!("http://{}{METRICS_PATH}", self.metrics_address());
        let text = tokio::time::timeout(SCRAPE_TIMEOUT, scrape(&url))
            .await
            .map_err(|_| failed(format!("no answer in {} s", SCRAPE_TIMEOUT.as_secs())))?
            .map_err(failed)?;
        Ok(counter_in(&text, name, labels))
    }
}

impl Cluster {
    /// How many requests for `route` the app instances have answered, all instances together (see
    /// [`AppInstance::requests`]).
    ///
    /// # Errors
    /// [`ClusterError::Metrics`] for the first instance whose metrics could not be read.
    pub async fn app_requests(&self, route: &str) -> Result<usize, ClusterError> {
        Ok(self.app_requests_by_instance(route).await?.iter().sum())
    }

    /// How many requests for `route` each instance has answered, instance 1 first.
    ///
    /// # Errors
    /// [`ClusterError::Metrics`] for the first instance whose metrics could not be read.
    pub async fn app_requests_by_instance(&self, route: &str) -> Result<Vec<usize>, ClusterError> {
        let mut counts = Vec::with_capacity(self.instances().len());
        for instance in self.instances() {
            counts.push(instance.requests(route).await?);
        }
        Ok(counts)
    }
}

/// The text of `GET url`.
async fn scrape(url: &str) -> Result<String, String> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::get(url).body(Empty::new()).map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    if status != StatusCode::OK {
        return Err(format!("GET /metrics answered {status}"));
    }
    String::from_utf8(body.to_vec()).map_err(|e| e.to_string())
}

/// The sum of counter `name`'s samples whose labels include every pair of `wanted`, in a text exposition.
fn counter_in(exposition: &str, name: &str, wanted: &[(&str, &str)]) -> usize {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix('{'))
        .filter_map(|rest| {
            let (labels, value) = labels_and_value(rest)?;
            let matches = |(want_name, want_value): &(&str, &str)| {
                labels.iter().any(|(name, value)| name == want_name && value == want_value)
            };
            wanted.iter().all(matches).then_some(value)
        })
        .map(|value| value.max(0.0).round() as usize)
        .sum()
}

/// The labels of a sample (the text after its `{`) and its value: `name="value",...} 12`. Label values are
/// quoted with `\\`, `\"` and `\n` escaped, and may hold braces (routes do).
fn labels_and_value(text: &str) -> Option<(Vec<(String, String)>, f64)> {
    let mut labels = Vec::new();
    let mut chars = text.char_indices().peekable();
    loop {
        match chars.peek() {
            Some((_, '}')) => {
                let (at, _) = chars.next()?;
                let value = text.get(at + 1..)?.split_whitespace().next()?.parse().ok()?;
                return Some((labels, value));
            }
            Some((_, ',')) => {
                chars.next();
            }
            Some(_) => {
                let mut name = String::new();
                for (_, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    name.push(c);
                }
                if chars.next()?.1 != '"' {
                    return None;
                }
                let mut value = String::new();
                loop {
                    match chars.next()?.1 {
                        '"' => break,
                        '\\' => match chars.next()?.1 {
                            'n' => value.push('\n'),
                            other => value.push(other),
                        },
                        c => value.push(c),
                    }
                }
                labels.push((name.trim().to_string(), value));
            }
            None => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::counter_in;
    use crate::prometheus::names::HTTP_REQUESTS;

    #[test]
    fn requests_are_summed_over_the_outcomes_of_one_route() {
        let exposition = r#"# TYPE seckill_http_requests_total counter
seckill_http_requests_total{route="/seckill/{id}/{md5}/execution",outcome="success"} 12
seckill_http_requests_total{outcome="sold_out",route="/seckill/{id}/{md5}/execution"} 30
seckill_http_requests_total{route="/seckill/{id}/exposer",outcome="ok"} 42
seckill_http_requests_total{route="/odd \"one\" {x}",outcome="ok"} 5
seckill_http_requests_total_other{route="/seckill/{id}/{md5}/execution"} 99
seckill_batch_requests_count{domain="seckill"} 7
"#;
        assert_eq!(counter_in(exposition, HTTP_REQUESTS, &[("route", "/seckill/{id}/{md5}/execution")]), 42);
        assert_eq!(counter_in(exposition, HTTP_REQUESTS, &[("route", "/seckill/{id}/exposer")]), 42);
        assert_eq!(counter_in(exposition, HTTP_REQUESTS, &[("route", r#"/odd "one" {x}"#)]), 5);
        assert_eq!(counter_in(exposition, HTTP_REQUESTS, &[("route", "/lottery/{campaign}/draw")]), 0);
        assert_eq!(counter_in("", HTTP_REQUESTS, &[("route", "/seckill/{id}/exposer")]), 0);
    }
}
