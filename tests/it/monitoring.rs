//! The drop-in monitoring of `docs/monitoring/`: the Grafana dashboard and the Prometheus alert rules parse, and
//! every metric their PromQL names is one the toolkit exports (`seckill::prometheus::names`, a histogram's
//! `_bucket`, `_sum` and `_count` series), with only the labels it carries. A renamed metric or label then fails
//! here rather than as an empty panel or an alert that can never fire.
//!
//! The PromQL is read by a small scanner, not a parser: strings, `{…}` matchers, `[…]` ranges, numbers and
//! Grafana's `$variables` are stepped over; a name followed by `(` must be a known function or aggregation; a
//! grouping keyword's `(…)` holds labels; any other name is a metric.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use seckill::prometheus::names;
use serde::Deserialize;
use serde_json::Value;

const DASHBOARD: &str = "docs/monitoring/grafana-dashboard.json";
const ALERT_RULES: &str = "docs/monitoring/alert-rules.yml";

/// PromQL's functions and aggregations: a name followed by `(`.
#[rustfmt::skip]
const FUNCTIONS: &[&str] = &[
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "bottomk", "ceil", "changes", "clamp", "clamp_max",
    "clamp_min", "count", "count_over_time", "count_values", "day_of_month", "day_of_week", "day_of_year",
    "days_in_month", "delta", "deriv", "exp", "floor", "group", "histogram_quantile", "holt_winters", "hour",
    "idelta", "increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "max",
    "max_over_time", "min", "min_over_time", "minute", "month", "predict_linear", "present_over_time", "quantile",
    "quantile_over_time", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "stddev",
    "stddev_over_time", "stdvar", "stdvar_over_time", "sum", "sum_over_time", "time", "timestamp", "topk", "vector",
    "year",
];

/// Keywords that are not metrics; those in [`GROUPINGS`] are followed by a list of labels.
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"];
const GROUPINGS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// Labels Prometheus attaches at scrape time, on every series.
const TARGET_LABELS: &[&str] = &["job", "instance"];

/// What the scanner found in one expression.
#[derive(Debug, Default, PartialEq)]
struct Names {
    /// Each metric with the labels its own `{…}` matches on.
    metrics: Vec<(String, Vec<String>)>,
    /// Labels of `by (…)`, `without (…)`, `on (…)` and the like.
    grouping_labels: Vec<String>,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The index just past the string literal that opens at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        i += if chars[i] == '\\' && quote != '`' { 2 } else { 1 };
    }
    i + 1
}

/// The index just past the bracket that closes the one at `start`, stepping over strings inside.
fn skip_group(chars: &[char], start: usize, close: char) -> usize {
    let open = chars[start];
    let (mut depth, mut i) = (0, start);
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                i = skip_string(chars, i);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unclosed {open:?} in {:?}", chars.iter().collect::<String>())
}

/// The label names of a `{…}` matcher list or a `(…)` grouping list (the brackets included).
fn labels_in(chars: &[char]) -> Vec<String> {
    let inner = &chars[1..chars.len() - 1];
    let (mut labels, mut i) = (Vec::new(), 0);
    while i < inner.len() {
        match inner[i] {
            '"' | '\'' | '`' => i = skip_string(inner, i),
            c if is_name_start(c) => {
                let start = i;
                while i < inner.len() && is_name_char(inner[i]) {
                    i += 1;
                }
                labels.push(inner[start..i].iter().collect());
            }
            _ => i += 1,
        }
    }
    labels
}

/// The metrics and labels `expr` names.
///
/// # Panics
/// On a name followed by `(` that is no PromQL function, or an unclosed bracket.
fn scan(expr: &str) -> Names {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Names::default();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            i = skip_string(&chars, i);
        } else if c == '[' {
            i = skip_group(&chars, i, ']');
        } else if c == '{' {
            // Matchers with no metric before them (`{__name__="…"}`) would hide the metric: refuse them.
            panic!("a selector without a metric name in {expr:?}");
        } else if c == '$' {
            // A Grafana variable: `$name` or `${name}`.
            i += 1;
            if chars.get(i) == Some(&'{') {
                i = skip_group(&chars, i, '}');
            } else {
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // A number or a duration: 0.99, 1e3, 5m.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if is_name_start(c) {
            let start = i;
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let followed_by = chars.get(next).copied();
            // `sum by (…) (…)`: an aggregation whose grouping comes first.
            let word_after: String = chars[next..].iter().take_while(|c| is_name_char(**c)).collect();
            let aggregation = word_after == "by" || word_after == "without";
            if GROUPINGS.contains(&name.as_str()) {
                if followed_by == Some('(') {
                    let end = skip_group(&chars, next, ')');
                    names.grouping_labels.extend(labels_in(&chars[next..end]));
                    i = end;
                }
            } else if KEYWORDS.contains(&name.as_str()) {
                // An operator or a modifier, not a metric.
            } else if followed_by == Some('(') || aggregation {
                assert!(FUNCTIONS.contains(&name.as_str()), "{name:?} is no PromQL function, in {expr:?}");
            } else if followed_by == Some('{') {
                let end = skip_group(&chars, next, '}');
                names.metrics.push((name, labels_in(&chars[next..end])));
                i = end;
            } else {
                names.metrics.push((name, Vec::new()));
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The counters and gauges the toolkit exports, each with its labels.
const COUNTERS_AND_GAUGES: [(&str, &[&str]); 8] = [
    (names::HTTP_REQUESTS, &["route", "outcome"]),
    (names::DATABASE_UNANSWERED, &["work"]),
    (names::SHORT_CIRCUITS, &["domain", "source"]),
    (names::RATE_LIMITED, &["scope"]),
    (names::OUTBOX_MESSAGES, &["state"]),
    (names::RELAY_LAG, &[]),
    (names::REPLICA_READS, &["replica"]),
    (names::REPLICA_FALLBACKS, &["reason"]),
];

/// The histograms, each with its labels: exported as `_bucket` (with `le`), `_sum` and `_count` series.
const HISTOGRAMS: [(&str, &[&str]); 2] =
    [(names::BATCH_REQUESTS, &["domain"]), (names::DATABASE_CALL_DURATION, &["procedure"])];
const HISTOGRAM_SERIES: [&str; 3] = ["_bucket", "_sum", "_count"];

/// Every series name the toolkit exports, with its labels.
fn exported() -> BTreeMap<String, BTreeSet<&'static str>> {
    let mut series = BTreeMap::new();
    for (name, labels) in COUNTERS_AND_GAUGES {
        series.insert(name.to_string(), labels.iter().chain(TARGET_LABELS).copied().collect());
    }
    for (name, labels) in HISTOGRAMS {
        for suffix in HISTOGRAM_SERIES {
            let le = (suffix == "_bucket").then_some("le");
            series.insert(format!("{name}{suffix}"), labels.iter().chain(TARGET_LABELS).copied().chain(le).collect());
        }
    }
    series
}

/// What is wrong with the metrics and labels of `expr`, one line each; empty when nothing is.
fn unknown_names(expr: &str, exported: &BTreeMap<String, BTreeSet<&str>>) -> Vec<String> {
    let names = scan(expr);
    let mut wrong = Vec::new();
    for (metric, labels) in &names.metrics {
        match exported.get(metric) {
            None => wrong.push(format!("{metric} is not a metric seckill exports")),
            Some(known) => {
                let unknown = labels.iter().filter(|label| !known.contains(label.as_str()));
                wrong.extend(unknown.map(|label| format!("{metric} has no label {label}")));
            }
        }
    }
    let any_label: BTreeSet<&str> = exported.values().flatten().copied().collect();
    let unknown = names.grouping_labels.iter().filter(|label| !any_label.contains(label.as_str()));
    wrong.extend(unknown.map(|label| format!("no metric of seckill has a label {label}")));
    if names.metrics.is_empty() {
        wrong.push("no metric at all".to_string());
    }
    wrong
}

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every panel, those inside collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, into: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            into.push(panel);
            walk(&panel["panels"], into);
        }
    }
    let mut all = Vec::new();
    walk(&dashboard["panels"], &mut all);
    all
}

#[test]
fn scanner_finds_metrics_and_rejects_made_up_ones() {
    let exported = exported();
    let expr = r#"histogram_quantile(0.99, sum by (le, procedure) (rate(seckill_database_call_duration_seconds_bucket{procedure!="x{y"}[$__rate_interval])))
        / on () group_left sum(seckill_relay_lag_seconds offset 5m) > bool 1e3"#;
    let found = scan(expr);
    let metrics: Vec<&str> = found.metrics.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(metrics, ["seckill_database_call_duration_seconds_bucket", "seckill_relay_lag_seconds"]);
    assert_eq!(found.metrics[0].1, ["procedure"]);
    assert_eq!(found.grouping_labels, ["le", "procedure"]);
    assert!(unknown_names(expr, &exported).is_empty(), "{:?}", unknown_names(expr, &exported));

    // A name seckill never exports, built here so that no search for it finds a real use.
    let made_up = format!("{}_made_up_total", "seckill");
    let wrong = unknown_names(&format!("sum(rate({made_up}[5m]))"), &exported);
    assert_eq!(wrong, [format!("{made_up} is not a metric seckill exports")]);
    // A counter's base name without `_total`, and a histogram's without a suffix, are not series either.
    assert!(!unknown_names("rate(seckill_http_requests[5m])", &exported).is_empty());
    assert!(!unknown_names("seckill_batch_requests", &exported).is_empty());
    // A label the metric does not carry, in a matcher or a grouping.
    assert_eq!(
        unknown_names(r#"seckill_replica_fallbacks_total{status="down"}"#, &exported),
        ["seckill_replica_fallbacks_total has no label status"]
    );
    assert_eq!(
        unknown_names("sum by (status) (seckill_rate_limited_total)", &exported),
        ["no metric of seckill has a label status"]
    );
    let misspelt = std::panic::catch_unwind(|| scan("rat(seckill_rate_limited_total[5m])"));
    assert!(misspelt.is_err(), "a misspelt function is refused");
}

#[test]
fn dashboard_queries_name_only_exported_metrics_and_show_each_of_them() {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON");
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|version| version >= 36), "a current schemaVersion");
    let inputs = dashboard["__inputs"].as_array().expect("__inputs, for import");
    assert!(inputs.iter().any(|input| input["name"] == "DS_PROMETHEUS" && input["pluginId"] == "prometheus"));

    let exported = exported();
    let (mut ids, mut used, mut wrong) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().expect("every panel has a title");
        let id = panel["id"].as_u64().expect("every panel has an id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}: the imported data source");
        let targets = panel["targets"].as_array().filter(|t| !t.is_empty());
        for target in targets.unwrap_or_else(|| panic!("{title}: no query")) {
            assert_eq!(target["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}: the imported data source");
            let expr = target["expr"].as_str().unwrap_or_else(|| panic!("{title}: a query without expr"));
            wrong.extend(unknown_names(expr, &exported).into_iter().map(|w| format!("{title}: {w}")));
            used.extend(scan(expr).metrics.into_iter().map(|(name, _)| name));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let shown = |series: String| used.contains(&series);
    let mut missing: Vec<&str> =
        COUNTERS_AND_GAUGES.iter().map(|(name, _)| *name).filter(|name| !shown(name.to_string())).collect();
    missing.extend(
        HISTOGRAMS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !HISTOGRAM_SERIES.iter().any(|suffix| shown(format!("{name}{suffix}")))),
    );
    assert!(missing.is_empty(), "metrics no panel shows: {missing:?}");
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    rules: Vec<AlertRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertRule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    pending_for: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

#[test]
fn alert_rules_name_only_exported_metrics_and_tell_what_to_do() {
    let file: RuleFile = serde_norway::from_str(&read(ALERT_RULES)).expect("the rules parse as Prometheus rules");
    let exported = exported();
    let (mut alerts, mut wrong) = (BTreeSet::new(), Vec::new());
    for group in &file.groups {
        assert!(!group.rules.is_empty(), "group {} has no rule", group.name);
        for rule in &group.rules {
            let alert = &rule.alert;
            assert!(alerts.insert(alert.clone()), "{alert} is defined twice");
            wrong.extend(unknown_names(&rule.expr, &exported).into_iter().map(|w| format!("{alert}: {w}")));
            let duration = rule.pending_for.strip_suffix(['s', 'm', 'h']).and_then(|n| n.parse::<u32>().ok());
            assert!(duration.is_some(), "{alert}: for: {:?} is not a duration", rule.pending_for);
            let severity = rule.labels.get("severity").map(String::as_str);
            assert!(matches!(severity, Some("critical" | "warning")), "{alert}: severity {severity:?}");
            for annotation in ["summary", "description"] {
                let text = rule.annotations.get(annotation).map(|text| text.trim()).unwrap_or_default();
                assert!(!text.is_empty() && !text.contains('\n'), "{alert}: a one-line {annotation}");
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    for expected in [
        "SeckillDatabaseUnreachable",
        "SeckillInDoubtAnswersRising",
        "SeckillReplicaLagging",
        "SeckillOutboxMessageWaiting",
        "SeckillDeadMessages",
    ] {
        assert!(alerts.contains(expected), "{expected} is missing");
    }
}
