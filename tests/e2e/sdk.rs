//! The client SDKs (`clients/typescript`, `clients/python`) against the real binary:
//! scenario scripts in `tests/sdk/` create sessions, stream turns, answer approvals and
//! questions through the helpers, and are cut off mid-stream, by a dropped connection
//! and by a restart of the runtime on the same port and store. Every seq the caller was
//! handed must be the session's log, each once, in order. And the SDKs' protocol types
//! must be what `docs/protocol.schema.json` generates.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Http, Runtime, Setup};

/// The repository's root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `node`, when the TypeScript SDK is built (`npm ci` and `tsc` in clients/typescript,
/// which scripts/test does); `None` with a message otherwise. Under CI it must be.
fn typescript_sdk() -> Option<PathBuf> {
    let built = root().join("clients/typescript/dist/index.js").is_file()
        && root().join("clients/typescript/node_modules").is_dir();
    if !built {
        assert!(
            std::env::var_os("CI").is_none(),
            "the TypeScript SDK is not built; scripts/test runs npm ci and tsc in clients/typescript"
        );
        eprintln!(
            "SKIPPED: build the TypeScript SDK (npm ci && npm run build in clients/typescript)"
        );
        return None;
    }
    Some(PathBuf::from("node"))
}

/// The interpreter with the Python SDK installed, or `None` (with a message). Under CI
/// it must be there.
fn python_sdk() -> Option<PathBuf> {
    let python = std::env::var_os("AGENT_RUNTIME_TEST_PYTHON").map(PathBuf::from);
    let installed = python.as_ref().is_some_and(|python| {
        Command::new(python)
            .args(["-c", "import agent_runtime_client"])
            .status()
            .is_ok_and(|status| status.success())
    });
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "AGENT_RUNTIME_TEST_PYTHON has no agent_runtime_client; scripts/test installs clients/python"
        );
        eprintln!(
            "SKIPPED: set AGENT_RUNTIME_TEST_PYTHON to a python with clients/python installed"
        );
        return None;
    }
    python
}

/// Which SDK runs a scenario.
#[derive(Clone, Copy, Debug)]
enum Sdk {
    TypeScript,
    Python,
}

impl Sdk {
    /// The command that runs the SDK's scenario script, or `None` when it is not
    /// installed here (outside CI).
    fn command(self) -> Option<Command> {
        let (program, script) = match self {
            Sdk::TypeScript => (typescript_sdk()?, "tests/sdk/typescript.mjs"),
            Sdk::Python => (python_sdk()?, "tests/sdk/python_sdk.py"),
        };
        let mut command = Command::new(program);
        command.arg(root().join(script));
        Some(command)
    }
}

/// Runs `sdk`'s scenario against `runtime`. Each line the script prints goes to
/// `on_line` as it comes, which may replace the runtime (a restart); returns the last
/// line's JSON and the runtime then serving.
fn run_scenario(
    sdk: Sdk,
    runtime: Runtime,
    args: &Value,
    mut on_line: impl FnMut(&str, Runtime) -> Runtime,
) -> Option<(Value, Runtime)> {
    let mut command = sdk.command()?;
    let mut child = command
        .env("RUNTIME_URL", &runtime.url)
        .env("SCRIPT_ARGS", args.to_string())
        // A guard against hangs, not a performance bound.
        .env("SCRIPT_TIMEOUT_MS", "90000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the scenario starts");
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let mut runtime = runtime;
    let mut last = String::new();
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        runtime = on_line(&line, runtime);
        last = line;
    }
    let status = child.wait().unwrap();
    let errors = errors.join().unwrap();
    assert!(
        status.success(),
        "{sdk:?} scenario {args} failed:\n{last}\n{errors}\n--- runtime log ---\n{}",
        runtime.log()
    );
    let summary = serde_json::from_str(&last)
        .unwrap_or_else(|e| panic!("{sdk:?} printed no JSON ({e}):\n{last}\n{errors}"));
    Some((summary, runtime))
}

/// The seqs of a session's whole log, read over REST page by page.
async fn logged_seqs(runtime: &Runtime, id: &str) -> Vec<u64> {
    let http = Http::new(runtime).with_token(SECRET);
    let mut seqs = Vec::new();
    loop {
        let after = seqs.last().copied().unwrap_or(0);
        let (status, page) = http
            .get(&format!(
                "/v1/sessions/{id}/events?after={after}&limit=1000"
            ))
            .await;
        assert_eq!(status, 200, "{page}");
        seqs.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        if page["hasMore"] != true {
            return seqs;
        }
    }
}

fn seqs_of(summary: &Value, key: &str) -> Vec<u64> {
    summary[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key}: {summary}"))
        .iter()
        .map(|seq| seq.as_u64().unwrap())
        .collect()
}

/// Asserts that the caller saw exactly the session's log: every seq once, in order.
async fn saw_the_whole_log(runtime: &Runtime, summary: &Value, id_key: &str, seqs_key: &str) {
    let id = summary[id_key].as_str().unwrap();
    let seen = seqs_of(summary, seqs_key);
    let logged = logged_seqs(runtime, id).await;
    assert_eq!(
        logged,
        (1..=logged.len() as u64).collect::<Vec<_>>(),
        "the log is contiguous"
    );
    assert_eq!(
        seen, logged,
        "the caller saw every seq of the log once, in order"
    );
}

/// The shared secret the tours connect with.
const SECRET: &str = "sdk-shared-secret";

async fn tour(sdk: Sdk, transport: &str) {
    // The setup owns the runtime's directory: it lives as long as the test.
    let mut setup = Setup::scripted();
    setup.extra_toml = format!("[auth]\nmode = \"shared-secret\"\nsecret = \"{SECRET}\"\n");
    let runtime = Runtime::start(&setup);
    let args = json!({ "scenario": "tour", "transport": transport, "token": SECRET });
    let Some((summary, runtime)) =
        tokio::task::spawn_blocking(move || run_scenario(sdk, runtime, &args, |_, rt| rt))
            .await
            .unwrap()
    else {
        return;
    };
    assert_eq!(
        summary["refused"], "unauthorized",
        "a wrong token: {summary}"
    );
    saw_the_whole_log(&runtime, &summary, "sessionId", "seqs").await;
    saw_the_whole_log(&runtime, &summary, "askerId", "askerSeqs").await;
    // The fork was followed from its seq 1 through its own turn; it names the source and
    // the source's last seq (the source's log has not grown since), and forking it while
    // its turn ran was refused.
    saw_the_whole_log(&runtime, &summary, "forkId", "forkSeqs").await;
    assert_eq!(
        summary["forkedFrom"],
        json!({
            "sessionId": summary["sessionId"],
            "seq": seqs_of(&summary, "seqs").last().unwrap(),
        }),
        "{summary}"
    );
    assert_eq!(
        summary["forkStatuses"],
        json!(["starting", "idle", "running", "idle"]),
        "{summary}"
    );
    assert_eq!(summary["busy"], "session_busy", "{summary}");
    // The cut came mid-turn: the turn's result was still to come.
    assert!(
        summary["cutAfter"].as_u64() < summary["resultSeq"].as_u64(),
        "{summary}"
    );
    if transport == "socketio" {
        assert!(summary["reconnects"].as_u64() >= Some(1), "{summary}");
    }
    // An iterator started later sees a contiguous run up to the turn's result.
    let iterated = seqs_of(&summary, "iterated");
    let first = iterated[0];
    assert_eq!(
        iterated,
        (first..=summary["resultSeq"].as_u64().unwrap()).collect::<Vec<_>>()
    );
    assert_eq!(summary["history"], "stamp 300 5 | write notes.md hello");
    assert_eq!(summary["asked"], json!(["Write", "Write"]));
    assert_eq!(
        summary["allowed"],
        "TOOL RESULT SEEN: File created successfully at: yes.txt"
    );
    assert_eq!(summary["denied"], "TOOL RESULT SEEN: not that one");
    assert_eq!(
        summary["answered"],
        "TOOL RESULT SEEN: Your questions have been answered: \"Which colour?\"=\"Blue\". \
         You can now continue with these answers in mind."
    );
    assert_eq!(
        summary["outcomes"],
        json!([
            ["allow", "shared-secret"],
            ["deny", "shared-secret"],
            ["allow", "shared-secret"]
        ])
    );
    assert_eq!(runtime.terminate(), Some(0));
}

/// A port that was free a moment ago, for a runtime that must come back on it.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn restart(sdk: Sdk, transport: &str) {
    let mut setup = Setup::scripted();
    setup.env.push((
        "AGENT_RUNTIME__SERVER__LISTEN".into(),
        format!("127.0.0.1:{}", free_port()),
    ));
    let runtime = Runtime::start(&setup);
    let url = runtime.url.clone();
    // The setup owns the runtimes' directory: it must outlive the scenario's thread.
    let setup = std::sync::Arc::new(setup);
    let shared = setup.clone();
    let args = json!({ "scenario": "restart", "transport": transport });
    let restarts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = restarts.clone();
    let Some((summary, runtime)) = tokio::task::spawn_blocking(move || {
        run_scenario(sdk, runtime, &args, |line, runtime| {
            if line != "restart" {
                return runtime;
            }
            // Mid-turn: the runtime stops its sessions on the way down and comes back
            // on the same port and store.
            assert_eq!(runtime.terminate(), Some(0));
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Runtime::start(&shared)
        })
    })
    .await
    .unwrap() else {
        return;
    };
    assert_eq!(restarts.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(runtime.url, url, "the runtime came back on its port");
    assert_eq!(summary["stoppedMidTurn"], true, "{summary}");
    saw_the_whole_log(&runtime, &summary, "sessionId", "seqs").await;
    assert_eq!(runtime.terminate(), Some(0));
    drop(setup);
}

#[tokio::test]
async fn typescript_sdk_tour_over_socketio_with_a_dropped_connection() {
    tour(Sdk::TypeScript, "socketio").await;
}

#[tokio::test]
async fn typescript_sdk_tour_over_rest_and_sse() {
    tour(Sdk::TypeScript, "rest").await;
}

#[tokio::test]
async fn typescript_sdk_over_socketio_survives_a_runtime_restart_mid_stream() {
    restart(Sdk::TypeScript, "socketio").await;
}

#[tokio::test]
async fn typescript_sdk_sse_stream_resumes_after_a_runtime_restart_mid_stream() {
    restart(Sdk::TypeScript, "rest").await;
}

#[tokio::test]
async fn python_sdk_tour_over_socketio_with_a_dropped_connection() {
    tour(Sdk::Python, "socketio").await;
}

#[tokio::test]
async fn python_sdk_tour_over_rest_and_sse() {
    tour(Sdk::Python, "rest").await;
}

#[tokio::test]
async fn python_sdk_over_socketio_survives_a_runtime_restart_mid_stream() {
    restart(Sdk::Python, "socketio").await;
}

#[tokio::test]
async fn python_sdk_sse_stream_resumes_after_a_runtime_restart_mid_stream() {
    restart(Sdk::Python, "rest").await;
}

/// The SDKs' protocol types are what `docs/protocol.schema.json` generates (each
/// generator's `--check`), and the Python SDK type-checks with them (`mypy --strict`;
/// scripts/test installs it).
#[test]
fn sdk_types_are_generated_from_the_protocol_schema() {
    if typescript_sdk().is_some() {
        let output = Command::new("node")
            .arg(root().join("clients/typescript/scripts/generate.mjs"))
            .arg("--check")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let Some(python) = python_sdk() else {
        return;
    };
    let output = Command::new(&python)
        .arg(root().join("clients/python/scripts/generate.py"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let output = Command::new(&python)
        .args(["-m", "mypy", "--strict"])
        .arg(root().join("clients/python/src/agent_runtime_client"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "mypy --strict:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The SDKs' own tests of their ordering logic (duplicates, gaps, reconnects, the
/// approval helper) through an in-memory transport: `node --test` and `unittest`.
#[test]
fn sdk_ordering_logic_tests_pass() {
    let mut runs = Vec::new();
    if typescript_sdk().is_some() {
        let mut command = Command::new("node");
        command
            .arg("--test")
            .arg(root().join("clients/typescript/test"));
        runs.push(command);
    }
    if let Some(python) = python_sdk() {
        let mut command = Command::new(python);
        command
            .args(["-m", "unittest", "discover", "-s"])
            .arg(root().join("clients/python/tests"));
        runs.push(command);
    }
    for mut command in runs {
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{command:?}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
