//! `/metrics` after real traffic: a session created, a turn, a stop, scraped through the
//! router; and the Grafana dashboard in `docs/` uses only metrics that are exported.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use agent_runtime::auth::NoAuth;
use agent_runtime::metrics::Metrics;
use agent_runtime::transport::{AppState, router};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use crate::harness::Harness;

/// An exposition in the Prometheus text format, parsed: every sample by name and
/// labels, and every name a scrape can yield (histograms' `_bucket`, `_sum` and `_count`
/// even when a labelled family has no sample yet).
struct Exposition {
    samples: BTreeMap<(String, String), f64>,
    names: BTreeSet<String>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        let mut names = BTreeSet::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                let (name, kind) = declared.split_once(' ').expect("# TYPE name kind");
                match kind {
                    "histogram" => {
                        for suffix in ["_bucket", "_sum", "_count"] {
                            names.insert(format!("{name}{suffix}"));
                        }
                    }
                    "counter" | "gauge" => {
                        names.insert(name.to_owned());
                    }
                    other => panic!("unexpected metric type {other} in {line:?}"),
                }
                continue;
            }
            if line.starts_with('#') {
                assert!(line.starts_with("# HELP "), "unexpected comment {line:?}");
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("value of {line:?}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.strip_suffix('}').expect("labels close")),
                None => (series, ""),
            };
            assert!(
                names.contains(name),
                "{name} sampled without a # TYPE before it"
            );
            samples.insert((name.to_owned(), labels.to_owned()), value);
        }
        Self { samples, names }
    }

    /// The value of the sample `name` whose labels contain every one of `labels`.
    fn value(&self, name: &str, labels: &[&str]) -> f64 {
        self.samples
            .iter()
            .filter(|((n, l), _)| n == name && labels.iter().all(|want| l.contains(want)))
            .map(|(_, v)| *v)
            .sum()
    }
}

async fn scrape(harness: &Harness) -> Exposition {
    let app = router(AppState::new(harness.manager.clone(), Arc::new(NoAuth)));
    let request = Request::get("/metrics")
        .header("host", "localhost")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Exposition::parse(std::str::from_utf8(&body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_session_and_the_dashboard_uses_only_exported_ones() {
    let metrics = Arc::new(Metrics::default());
    let h = Harness::measured(metrics.clone()).await;
    let session = h.create().await;
    h.turn(&session.id, "hello").await;

    let live = scrape(&h).await;
    let idle = ["status=\"idle\"", "profile=\"tester\""];
    assert_eq!(live.value("agent_runtime_sessions", &idle), 1.0);
    assert!(live.value("agent_runtime_events_appended_total", &["type=\"agent\""]) >= 1.0);
    assert!(live.value("agent_runtime_events_appended_total", &["type=\"status\""]) >= 2.0);
    let persisted = live.value("agent_runtime_event_persist_latency_seconds_count", &[]);
    assert_eq!(
        persisted,
        live.value("agent_runtime_events_appended_total", &[]),
        "every persisted event's latency is observed"
    );
    assert!(live.value("agent_runtime_writer_batch_events_count", &[]) >= 1.0);
    let batch = ["adapter=\"memory\"", "operation=\"append_batch\""];
    assert!(live.value("agent_runtime_store_call_seconds_count", &batch) >= 1.0);
    assert!(
        live.value(
            "agent_runtime_session_start_seconds_count",
            &["phase=\"sandbox\"", "provider=\"unnamed\""]
        ) == 1.0
    );
    // The turn ended in `idle`, which counted its usage.
    let input = ["profile=\"tester\"", "direction=\"input\""];
    assert!(live.value("agent_runtime_tokens_total", &input) >= 10.0);
    assert_eq!(
        live.value("agent_runtime_turns_total", &["profile=\"tester\""]),
        1.0
    );
    assert_eq!(live.value("agent_runtime_approvals_pending", &[]), 0.0);

    h.manager.stop(&h.alice, &session.id).await.unwrap();
    let mut stopped = scrape(&h).await;
    for _ in 0..50 {
        if stopped.value("agent_runtime_sessions", &[]) == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        stopped = scrape(&h).await;
    }
    assert_eq!(
        stopped.value("agent_runtime_sessions", &[]),
        0.0,
        "a stopped session is held no more"
    );
    assert!(
        stopped.value(
            "agent_runtime_storage_call_seconds_count",
            &["adapter=\"memory\""]
        ) >= 1.0
    );

    let dashboard = include_str!("../../docs/grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(dashboard).unwrap();
    let mut used = BTreeSet::new();
    let mut exprs = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("every target has an expr");
            exprs += 1;
            used.extend(metric_names(expr));
        }
    }
    assert!(exprs >= 10, "the dashboard has its queries");
    // The warm pool's metrics exist once a pool does (this runtime has none): their names
    // come from metrics a pool reported into.
    let pooled = agent_runtime::metrics::Metrics::default();
    pooled.warm_pool_ready("*", 1);
    pooled.warm_pool_hit("*", Duration::from_secs(1));
    pooled.warm_pool_miss("*");
    pooled.warm_pool_expired("*");
    let mut exported = stopped.names.clone();
    exported.extend(Exposition::parse(&pooled.render()).names);
    let missing: Vec<_> = used.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the dashboard uses metrics /metrics does not export: {missing:?}"
    );
}

/// The `agent_runtime_…` names a PromQL expression uses.
fn metric_names(expr: &str) -> impl Iterator<Item = String> + '_ {
    expr.match_indices("agent_runtime_").map(move |(at, _)| {
        expr[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    })
}
