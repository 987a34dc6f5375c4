//! The warm pool on the fake Modal: a session takes a sandbox made ahead of it, the pool
//! is topped up, and a stopping runtime ends the warm sandboxes it holds. And (ignored,
//! run by hand) the measurement of create → idle with and without the pool that
//! `docs/benchmarks.md` reports.

use std::time::{Duration, Instant};

use agent_runtime_modal::{OWNER_TAG, SESSION_TAG};
use agent_runtime_testkit::fake_modal::FakeModal;

use crate::modal::{modal_setup, post_empty, wait_until};
use crate::support::{Http, Runtime, Setup};

fn with_pool(setup: &mut Setup, size: usize) {
    setup.extra_toml.push_str(&format!(
        "\n[warm_pool]\nsize = {size}\nmax_age = \"10m\"\n"
    ));
}

/// A pool of `size` for the `tester` profile alone, and no shared pool.
fn with_tester_pool(setup: &mut Setup, size: usize) {
    setup.extra_toml.push_str(&format!(
        "\n[warm_pool]\nsize = 0\n[warm_pool.profiles]\ntester = {size}\n"
    ));
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(tag, _)| tag == name)
        .map(|(_, value)| value.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_takes_a_warm_sandbox_and_the_pool_refills_and_drains() {
    let fake = FakeModal::start().await;
    let mut setup = modal_setup(&fake);
    with_pool(&mut setup, 1);
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    wait_until("a warm sandbox", async || ready(&http, "*").await == 1).await;
    let warm = fake.live_sandboxes().remove(0);
    let tags = fake.tags(&warm).unwrap();
    assert!(
        tag(&tags, SESSION_TAG).unwrap().starts_with("warm-"),
        "{tags:?}"
    );
    assert_eq!(
        tag(&tags, OWNER_TAG),
        Some("agent-runtime"),
        "recovery reaps it"
    );

    let made = fake.commands(&warm).unwrap().len();
    assert_eq!(
        made, 1,
        "the create makes the empty directories, then nothing runs"
    );

    let id = http.create_session("tester").await;
    assert_eq!(
        tag(&fake.tags(&warm).unwrap(), SESSION_TAG),
        Some(id.as_str()),
        "the session took the warm sandbox"
    );
    // The session's files (the profile's CLAUDE.md) and the agent's config go in with one
    // command, before the agent starts.
    let commands = fake.commands(&warm).unwrap().split_off(made);
    let first = commands[0].join(" ");
    assert!(
        first.contains("tar -x") && first.contains("/workspace") && first.contains("/home"),
        "{commands:?}"
    );
    assert!(
        commands[1][0].ends_with("scripted-agent"),
        "the agent comes next: {commands:?}"
    );
    let reply = http.turn(&id, "reply hello from the pool").await;
    assert_eq!(reply["result"], "hello from the pool", "{reply}");
    wait_until("the pool to refill", async || {
        fake.live_sandboxes().len() == 2
    })
    .await;

    let stopped = post_empty(&http, &format!("/v1/sessions/{id}/stop")).await;
    assert_eq!(stopped["session"]["status"], "stopped", "{stopped}");
    let left = fake.live_sandboxes();
    assert_eq!(left.len(), 1, "only the new warm one: {left:?}");
    assert_ne!(left[0], warm);

    let (status, metrics) = http.get("/metrics").await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("agent_runtime_warm_pool_takes_total{pool=\"*\",outcome=\"hit\"} 1"),
        "{metrics}"
    );
    assert_eq!(runtime.terminate(), Some(0));
    assert!(
        fake.live_sandboxes().is_empty(),
        "a stopping runtime ends its warm sandboxes"
    );
}

/// `agent_runtime_warm_pool_ready` of `pool` from a scrape.
async fn ready(http: &Http, pool: &str) -> u64 {
    let metrics = scrape(http).await;
    let prefix = format!("agent_runtime_warm_pool_ready{{pool=\"{pool}\"}} ");
    let line = metrics.lines().find_map(|l| l.strip_prefix(&prefix));
    line.and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

/// `agent_runtime_warm_pool_takes_total` of `pool` and `outcome` from a scrape.
async fn takes(http: &Http, pool: &str, outcome: &str) -> u64 {
    let metrics = scrape(http).await;
    let prefix =
        format!("agent_runtime_warm_pool_takes_total{{pool=\"{pool}\",outcome=\"{outcome}\"}} ");
    let line = metrics.lines().find_map(|l| l.strip_prefix(&prefix));
    line.and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profiles_own_pool_serves_its_sessions() {
    let fake = FakeModal::start().await;
    let mut setup = modal_setup(&fake);
    with_tester_pool(&mut setup, 1);
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    wait_until("a warm sandbox", async || ready(&http, "tester").await == 1).await;
    let warm = fake.live_sandboxes().remove(0);
    let id = http.create_session("tester").await;
    assert_eq!(
        tag(&fake.tags(&warm).unwrap(), SESSION_TAG),
        Some(id.as_str()),
        "the session took its profile's warm sandbox"
    );
    let reply = http.turn(&id, "reply hello from the profile's pool").await;
    assert_eq!(reply["result"], "hello from the profile's pool", "{reply}");
    assert_eq!(takes(&http, "tester", "hit").await, 1);
    assert_eq!(
        takes(&http, "*", "miss").await,
        0,
        "there is no shared pool"
    );
    assert_eq!(runtime.terminate(), Some(0));
    assert!(fake.live_sandboxes().is_empty());
}

/// A `session_start` phase's (sum in seconds, count) from a scrape.
fn phase(metrics: &str, phase: &str) -> (f64, f64) {
    let value = |suffix: &str| -> f64 {
        let prefix = format!(
            "agent_runtime_session_start_seconds_{suffix}{{phase=\"{phase}\",provider=\"modal\"}} "
        );
        let line = metrics.lines().find_map(|l| l.strip_prefix(&prefix));
        line.unwrap_or_else(|| panic!("no {prefix}"))
            .trim()
            .parse()
            .unwrap()
    };
    (value("sum"), value("count"))
}

/// The mean of each phase over the creates between two scrapes, in milliseconds.
fn phase_means_ms(before: &str, after: &str) -> Vec<(&'static str, f64)> {
    ["prepare", "sandbox", "agent"]
        .into_iter()
        .map(|name| {
            let ((sum0, n0), (sum1, n1)) = (phase(before, name), phase(after, name));
            (name, (sum1 - sum0) / (n1 - n0) * 1000.0)
        })
        .collect()
}

async fn scrape(http: &Http) -> String {
    let (_, metrics) = http.get("/metrics").await;
    metrics.as_str().unwrap().to_owned()
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The pools a measurement runs with.
#[derive(Clone, Copy, Debug)]
enum Pools {
    None,
    /// A shared pool of this size.
    Shared(usize),
    /// A pool of this size for the `tester` profile.
    Tester(usize),
}

/// create → idle over HTTP, `sessions` times one after the other, with Modal's creates
/// taking `CREATE_DELAY`; with a pool, each create waits until the pool is full again
/// first (the steady state of a pool sized for the arrival rate).
async fn measure(pools: Pools, sessions: usize) -> (Vec<f64>, Vec<(&'static str, f64)>) {
    const CREATE_DELAY: Duration = Duration::from_millis(2600);
    let fake = FakeModal::start().await;
    fake.set_create_delay(CREATE_DELAY);
    let mut setup = modal_setup(&fake);
    let pool = match pools {
        Pools::None => None,
        Pools::Shared(size) => {
            with_pool(&mut setup, size);
            Some(("*", size))
        }
        Pools::Tester(size) => {
            with_tester_pool(&mut setup, size);
            Some(("tester", size))
        }
    };
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    // The first create builds the image; it is not measured.
    let warmup = http.create_session("tester").await;
    post_empty(&http, &format!("/v1/sessions/{warmup}/stop")).await;
    let before = scrape(&http).await;
    let mut samples = Vec::new();
    for _ in 0..sessions {
        if let Some((name, size)) = pool {
            wait_until("a full pool", async || {
                ready(&http, name).await == size as u64
            })
            .await;
        }
        let started = Instant::now();
        http.create_session("tester").await;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let phases = phase_means_ms(&before, &scrape(&http).await);
    if let Some((name, _)) = pool {
        let (hits, misses) = (
            takes(&http, name, "hit").await,
            takes(&http, name, "miss").await,
        );
        println!("warm pool {name:?} takes: {hits} hits, {misses} misses");
    }
    assert_eq!(runtime.terminate(), Some(0));
    (samples, phases)
}

/// The agent's own start, without the runtime: the scripted agent started as a plain
/// process until it answers `initialize`, in milliseconds.
async fn agent_own_start() -> f64 {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let agent = agent_runtime_testkit::bin_path("scripted-agent");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(agent)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let initialize =
        r#"{"type":"control_request","request_id":"init","request":{"subtype":"initialize"}}"#;
    stdin
        .write_all(format!("{initialize}\n").as_bytes())
        .await
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains("\"request_id\":\"init\"") {
            break;
        }
    }
    let took = started.elapsed().as_secs_f64() * 1000.0;
    drop(stdin);
    let _ = child.wait().await;
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (about two minutes); run it by hand for docs/benchmarks.md"]
async fn measure_create_to_idle_with_and_without_the_pool() {
    const SESSIONS: usize = 10;
    let mut own = Vec::new();
    for _ in 0..SESSIONS {
        own.push(agent_own_start().await);
    }
    println!(
        "the agent's own start (spawn until it answers initialize): median {:.1} ms",
        median(own)
    );
    let runs = [
        ("without a pool", Pools::None),
        ("with a shared pool of 2", Pools::Shared(2)),
        ("with a pool of 2 for the profile", Pools::Tester(2)),
    ];
    for (label, pools) in runs {
        let (samples, phases) = measure(pools, SESSIONS).await;
        let rounded: Vec<u64> = samples.iter().map(|ms| ms.round() as u64).collect();
        println!(
            "{label}: create → idle median {:.0} ms, min {:.0}, max {:.0} (all: {rounded:?}); \
             mean phases (ms): {phases:.0?}",
            median(samples.clone()),
            samples.iter().copied().fold(f64::INFINITY, f64::min),
            samples.iter().copied().fold(0.0, f64::max),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_recovery_reaps_warm_and_taken_sandboxes_and_keeps_the_files() {
    let fake = FakeModal::start().await;
    let mut setup = modal_setup(&fake);
    with_pool(&mut setup, 1);
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    wait_until("a warm sandbox", async || ready(&http, "*").await == 1).await;
    let id = http.create_session("tester").await;
    let reply = http.turn(&id, "write notes.md from a warm sandbox").await;
    assert_eq!(reply["result"], "wrote notes.md", "{reply}");
    wait_until("a new warm sandbox", async || ready(&http, "*").await == 1).await;
    assert_eq!(fake.live_sandboxes().len(), 2);
    runtime.kill9();

    // The next run has no pool: what is live after its start is what recovery left.
    setup.extra_toml = setup.extra_toml.replace("size = 1", "size = 0");
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    assert!(
        fake.live_sandboxes().is_empty(),
        "the session's and the warm sandbox were reaped: {:?}",
        fake.live_sandboxes()
    );
    let (status, file) = http.get(&format!("/v1/sessions/{id}/files/notes.md")).await;
    assert_eq!(
        (status, file),
        (200, serde_json::Value::String("from a warm sandbox".into())),
        "the files of the session in a taken warm sandbox survive the crash"
    );
    assert_eq!(runtime.terminate(), Some(0));
}
