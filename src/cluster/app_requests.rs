//! How many requests the cluster's app instances answered, by route: the count that proves a closed item's
//! traffic never reached an instance (the balancer answered it), and shows how the balancer spread the rest.
//!
//! Read from the instances' request logs: `seckill serve` logs every request it answers at info level
//! ([`super::DEFAULT_INSTANCE_LOG_FILTER`]). Once the instances serve Prometheus `/metrics`, this is the one
//! place that changes: it sums `seckill_http_requests_total{route="..."}` over the instances instead. Tests,
//! the bench and the demo only ever count through here.

use super::{AppInstance, Cluster};

impl AppInstance {
    /// How many requests for `route` (an axum route such as `/seckill/{id}/{md5}/execution`, where `{name}`
    /// matches any one non-empty segment and anything else matches itself) this instance has answered.
    ///
    /// An instance whose log cannot be read counts zero: what it answered is then unknown, so a caller proving
    /// "zero requests" must also see the instance's log ([`AppInstance::log_path`]).
    pub fn requests(&self, route: &str) -> usize {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        log.lines()
            .filter(|line| line.contains("finished processing request"))
            .filter_map(|line| line.split("uri=").nth(1)?.split([' ', '}']).next())
            .filter(|uri| route_matches(route, uri))
            .count()
    }
}

impl Cluster {
    /// How many requests for `route` the app instances have answered, all instances together (see
    /// [`AppInstance::requests`]).
    pub fn app_requests(&self, route: &str) -> usize {
        self.instances().iter().map(|instance| instance.requests(route)).sum()
    }
}

/// Whether the path of `uri` is one `route` names.
fn route_matches(route: &str, uri: &str) -> bool {
    let path = uri.split('?').next().unwrap_or(uri);
    let (route, path): (Vec<&str>, Vec<&str>) = (route.split('/').collect(), path.split('/').collect());
    route.len() == path.len()
        && route.iter().zip(&path).all(|(want, got)| (want.starts_with('{') && !got.is_empty()) || want == got)
}

#[cfg(test)]
mod tests {
    use super::route_matches;

    #[test]
    fn routes_match_paths_segment_by_segment() {
        let execution = "/seckill/{id}/{md5}/execution";
        assert!(route_matches(execution, "/seckill/7/abc/execution"));
        assert!(route_matches(execution, "/seckill/7/abc/execution?x=1"));
        assert!(!route_matches(execution, "/seckill/7//execution"));
        assert!(!route_matches(execution, "/seckill/7/exposer"));
        assert!(route_matches("/seckill/7/{md5}/execution", "/seckill/7/abc/execution"));
        assert!(!route_matches("/seckill/7/{md5}/execution", "/seckill/8/abc/execution"));
    }
}
