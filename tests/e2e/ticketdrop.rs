//! TicketDrop, the reference application (`ticketdrop.toml` and `profiles/event-researcher`),
//! end to end on a fake Convex deployment: the profile's runtime-served `fetch_events`
//! tool, a real stdio MCP server in the same session, the session's record, event log and
//! transcript in Convex, and the deploy key kept out of the sandbox.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use agent_runtime_testkit::fake_anthropic::FakeAnthropic;
use agent_runtime_testkit::fake_convex::{FakeConvex, FunctionError};
use serde_json::{Value, json};

use crate::support::{Runtime, Setup};

/// The shared secret TicketDrop's backend sends.
const SECRET: &str = "ticketdrop-shared-secret-e2e";
/// TicketDrop's query behind `fetch_events`.
const LIST_FOR_MARKET: &str = "events:listForMarket";
const SESSIONS: &str = "agentRuntimeSessions";
const EVENTS: &str = "agentRuntimeEvents";
const BLOBS: &str = "agentRuntimeBlobs";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The events the fake deployment lists for any market.
fn listed_events() -> Value {
    json!([
        {"name": "Winter Jazz Night", "venue": "Blue Note", "startsAt": "2026-12-08T20:00:00-05:00", "price": "$45-$90", "available": true},
        {"name": "Holiday Market Lights", "venue": "Bryant Park", "startsAt": "2026-12-12T17:00:00-05:00", "price": "free", "available": true}
    ])
}

/// Serves `events:listForMarket` the way TicketDrop's query validates its arguments:
/// `marketKey`, `from`, `to` strings and `limit` a number, else an error; a range that
/// ends before it starts is TicketDrop's own `ConvexError`.
fn serve_list_for_market(convex: &FakeConvex) {
    convex.on_query(LIST_FOR_MARKET, |_, args| {
        let strings = ["marketKey", "from", "to"]
            .iter()
            .all(|name| args[name].is_string());
        let keys = args.as_object().map_or(0, |a| a.len());
        if !strings || !args["limit"].is_number() || keys != 4 {
            return Err(FunctionError::message(format!(
                "ArgumentValidationError: unexpected arguments {args}"
            )));
        }
        if args["to"].as_str() < args["from"].as_str() {
            return Err(FunctionError::code(
                "INVALID_RANGE",
                "`to` is before `from`",
            ));
        }
        Ok(listed_events())
    });
}

/// The runtime as `ticketdrop.toml` sets it up, on `convex`, with the profiles in
/// `profiles` and `agent_toml` (an `[agent]` section, or empty for the scripted agent).
fn ticketdrop_setup(convex: &FakeConvex, profiles: &Path, agent_toml: &str) -> Setup {
    let mut setup = Setup::scripted();
    setup.store_toml = "kind = \"convex\"".into();
    setup.storage_toml = "kind = \"convex\"".into();
    setup.extra_toml = format!(
        "[auth]\nmode = \"shared-secret\"\nsecret = \"{SECRET}\"\n\
         [convex]\nurl = \"{url}\"\ndeploy_key = \"{key}\"\nallow_http = true\n{agent_toml}",
        url = convex.base_url(),
        key = convex.deploy_key(),
    );
    // The generated config names the e2e profiles; the environment overrides that.
    setup.env.push((
        "AGENT_RUNTIME__PROFILES__PATH".into(),
        profiles.display().to_string(),
    ));
    setup
}

/// The stdio entry of `@modelcontextprotocol/server-everything`, or `None` (with a
/// message) when `tests/mcp` is not installed. Under CI a missing server is a failure.
fn everything_server() -> Option<PathBuf> {
    let entry =
        repo().join("tests/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    if entry.is_file() {
        return Some(entry);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing; scripts/test runs `npm ci` in tests/mcp",
        entry.display()
    );
    eprintln!("SKIPPED: run `npm ci` in tests/mcp to install the MCP server");
    None
}

/// A copy of `profiles/event-researcher` under `dir` that also runs the everything
/// server over stdio and allows its `echo` tool. Returns the profiles directory.
fn researcher_with_everything(dir: &Path, everything: &Path) -> PathBuf {
    let profiles = dir.join("profiles");
    let target = profiles.join("event-researcher");
    copy_dir(&repo().join("profiles/event-researcher"), &target);
    let path = target.join("profile.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    let mut edited = String::new();
    for line in original.lines() {
        match line.strip_prefix("allowed_tools = [") {
            Some(rest) => {
                let rest = rest.strip_suffix(']').expect("allowed_tools on one line");
                edited += &format!("allowed_tools = [{rest}, \"mcp__everything__echo\"]\n");
            }
            None => edited += &format!("{line}\n"),
        }
    }
    assert_ne!(edited.trim(), original.trim(), "allowed_tools was extended");
    edited += &format!(
        "\n[mcp_servers.everything]\ncommand = \"node\"\nargs = [{:?}, \"stdio\"]\n",
        everything.display().to_string()
    );
    std::fs::write(&path, edited).unwrap();
    profiles
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The live sandbox directory of session `id` under the runtime's `data/sandboxes`.
fn sandbox_dir(setup: &Setup, id: &str) -> PathBuf {
    let root = setup.dir.path().join("data/sandboxes");
    let found: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{id}-")))
        })
        .collect();
    assert_eq!(found.len(), 1, "one sandbox of {id} in {}", root.display());
    found[0].canonicalize().unwrap()
}

/// Runs a `tests/clients` script with the real `socket.io-client` and returns the JSON it
/// printed last. When it prints `{"live": "<session id>"}`, `inspect` gets the id, and the
/// script goes on once `inspect` returns.
fn run_client(script: &str, runtime: &Runtime, args: &Value, inspect: impl FnOnce(&str)) -> Value {
    let clients = repo().join("tests/clients");
    assert!(
        clients.join("node_modules/socket.io-client").exists(),
        "run `npm ci` in tests/clients (scripts/test does it)"
    );
    let mut child = Command::new("node")
        .arg(clients.join(script))
        .env("RUNTIME_URL", &runtime.url)
        .env("RUNTIME_TOKEN", SECRET)
        .env("SCRIPT_ARGS", args.to_string())
        .env("SCRIPT_TIMEOUT_MS", "240000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = String::new();
    for line in lines.by_ref() {
        last = line.unwrap();
        if let Ok(live) = serde_json::from_str::<Value>(&last)
            && let Some(id) = live["live"].as_str()
        {
            inspect(id);
            writeln!(stdin, "go").unwrap();
            break;
        }
    }
    for line in lines {
        last = line.unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{script} failed:\n{last}\n{}\n--- runtime log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        runtime.log()
    );
    serde_json::from_str(&last).unwrap_or_else(|e| panic!("no JSON ({e}): {last}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_researches_a_market_on_convex_with_runtime_and_stdio_tools() {
    let fake = FakeAnthropic::start().await;
    let mut relayed = Setup::scripted();
    let Some(agent_toml) = relayed.claude_agent(&fake.base_url()) else {
        return;
    };
    let Some(everything) = everything_server() else {
        return;
    };
    let convex = FakeConvex::start().await;
    serve_list_for_market(&convex);
    let work = tempfile::tempdir().unwrap();
    let profiles = researcher_with_everything(work.path(), &everything);
    let mut setup = ticketdrop_setup(&convex, &profiles, &agent_toml);
    // The sandbox reaches the fake model API through a relay, and reads the MCP server's
    // files, which are outside the system directories.
    setup.sandbox_toml = relayed.sandbox_toml;
    setup.sandbox_toml += &format!(
        "\nread_only_paths = [{:?}]",
        repo().join("tests/mcp/node_modules").display().to_string()
    );
    let runtime = Runtime::start(&setup);

    let fetch_args = json!({"from": "2026-12-07", "to": "2026-12-13"});
    let args = json!({"marketKey": "nyc", "fetchArgs": fetch_args, "echoMessage": "hello"});
    let mut exposures = None;
    let summary = tokio::task::block_in_place(|| {
        run_client("ticketdrop.mjs", &runtime, &args, |id| {
            let sandbox = sandbox_dir(&setup, id);
            exposures = Some(scan_sandbox(
                &sandbox,
                &[
                    ("deploy key", convex.deploy_key()),
                    ("shared secret", SECRET),
                ],
            ));
        })
    });
    let id = summary["sessionId"].as_str().unwrap();

    // The query got the session's market, the model's dates and the default limit.
    let sent: Vec<Value> = convex
        .calls_to(LIST_FOR_MARKET)
        .iter()
        .map(|c| normalized(&c.args))
        .collect();
    let errors: Vec<&Value> = summary["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "error")
        .collect();
    assert_eq!(
        sent,
        [list_args("2026-12-07", "2026-12-13", 200)],
        "errors streamed: {errors:?}"
    );

    check_streamed_turns(&summary, &fetch_args);
    let exposures = exposures.expect("the sandbox was inspected while live");
    assert!(
        exposures
            .processes
            .iter()
            .any(|p| p.contains("server-everything")),
        "the stdio MCP server ran in the sandbox: {:?}",
        exposures.processes
    );
    assert!(
        exposures.found.is_empty(),
        "secrets reached the sandbox (files, environment or argv): {:?}",
        exposures.found
    );
    check_convex_afterwards(&convex, id, &summary);
    assert_eq!(runtime.terminate(), Some(0));
}

/// The tool call and its result streamed as `session:event`s; both turns succeeded.
fn check_streamed_turns(summary: &Value, fetch_args: &Value) {
    let events = summary["events"].as_array().unwrap();
    let blocks: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "agent")
        .filter_map(|e| e["data"]["message"]["content"].as_array())
        .flatten()
        .collect();
    let tool_use = blocks
        .iter()
        .find(|b| b["type"] == "tool_use" && b["name"] == "mcp__runtime__fetch_events")
        .unwrap_or_else(|| panic!("no fetch_events tool_use streamed: {summary}"));
    assert_eq!(&tool_use["input"], fetch_args);
    let results: Vec<String> = blocks
        .iter()
        .filter(|b| b["type"] == "tool_result" && b["is_error"] != true)
        .map(|b| b["content"].to_string())
        .collect();
    assert!(
        results.iter().any(|r| r.contains("Winter Jazz Night")),
        "the fake's events came back as a tool_result: {results:?}"
    );
    assert!(
        results.iter().any(|r| r.contains("Echo: hello")),
        "the stdio server's echo came back as a tool_result: {results:?}"
    );
    let [fetched, echoed] = [&summary["results"][0], &summary["results"][1]];
    for result in [fetched, echoed] {
        assert_eq!(result["is_error"], false, "{result}");
    }
    assert!(
        fetched["result"]
            .as_str()
            .unwrap()
            .contains("Holiday Market Lights"),
        "{fetched}"
    );
    assert!(
        echoed["result"].as_str().unwrap().contains("Echo: hello"),
        "{echoed}"
    );
}

/// After the stop: the record, the whole streamed log and the transcript are in Convex.
fn check_convex_afterwards(convex: &FakeConvex, id: &str, summary: &Value) {
    let sessions = convex.table(SESSIONS);
    let record = sessions
        .iter()
        .find(|r| r["sessionId"] == id)
        .unwrap_or_else(|| panic!("no record of {id}: {sessions:?}"));
    assert_eq!(record["status"], "stopped", "{record}");
    assert_eq!(record["agentType"], "event-researcher");
    let metadata: Value = serde_json::from_str(record["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(metadata, json!({"marketKey": "nyc"}));

    let streamed: Vec<(u64, String)> = summary["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut stored: Vec<(u64, String)> = convex
        .table(EVENTS)
        .iter()
        .filter(|e| e["sessionId"] == id)
        .map(|e| {
            (
                e["seq"].as_f64().unwrap() as u64,
                e["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    stored.sort();
    assert_eq!(stored, streamed, "the event log holds what was streamed");
    assert_eq!(record["lastSeq"].as_f64(), Some(streamed.len() as f64));

    let agent_id = summary["stopped"]["agentSessionId"].as_str().unwrap();
    let key = format!("sessions/{id}/transcripts/{agent_id}.jsonl");
    let blobs = convex.table(BLOBS);
    let blob = blobs
        .iter()
        .find(|b| b["key"] == key.as_str())
        .unwrap_or_else(|| panic!("no transcript blob {key}: {blobs:?}"));
    let storage_id = blob["storageId"].as_str().unwrap();
    let transcript = convex.with_db(|db| db.file(storage_id).map(|f| f.bytes.clone()));
    let transcript = String::from_utf8(transcript.expect("the blob's file").to_vec()).unwrap();
    assert!(
        transcript.contains("mcp__runtime__fetch_events") && transcript.contains("Echo: hello"),
        "the transcript holds both turns"
    );
}

/// What a sandbox exposes: where each secret was found, and the processes looked at.
struct Exposures {
    found: Vec<String>,
    processes: Vec<String>,
}

/// Looks for each `(name, secret)` in every file under `sandbox` and in the argv and
/// environment of every process whose working directory is inside it.
fn scan_sandbox(sandbox: &Path, secrets: &[(&str, &str)]) -> Exposures {
    let mut exposures = Exposures {
        found: Vec::new(),
        processes: Vec::new(),
    };
    let mut check = |what: String, bytes: &[u8]| {
        for (name, secret) in secrets {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                exposures.found.push(format!("the {name} in {what}"));
            }
        }
    };
    let mut files = Vec::new();
    list_files(sandbox, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("home/mcp-config.json")),
        "the scan sees the MCP config: {files:?}"
    );
    for file in &files {
        check(
            file.display().to_string(),
            &std::fs::read(file).unwrap_or_default(),
        );
    }
    let mut saw_agent_env = false;
    for pid in processes_in(sandbox) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let argv = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        saw_agent_env |= String::from_utf8_lossy(&environ).contains("ANTHROPIC_BASE_URL=");
        check(format!("the argv of {pid} ({argv})"), &cmdline);
        check(format!("the environment of {pid} ({argv})"), &environ);
        exposures.processes.push(argv);
    }
    assert!(
        saw_agent_env,
        "the agent's environment was readable: {:?}",
        exposures.processes
    );
    exposures
}

fn list_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            list_files(&entry.path(), files);
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
}

/// The pids whose working directory is `dir` or below it.
fn processes_in(dir: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_endpoint_needs_the_session_token_and_reports_tool_failures() {
    let convex = FakeConvex::start().await;
    serve_list_for_market(&convex);
    // The shipped profile as it is, with the scripted agent: the test is the MCP client.
    let setup = ticketdrop_setup(&convex, &repo().join("profiles"), "");
    let runtime = Runtime::start(&setup);
    let calls = json!([
        {"from": "2026-12-07", "to": "2026-12-13"},
        {"from": "2026-12-07", "to": "2026-12-13", "limit": 5},
        {"from": "2026-12-13", "to": "2026-12-07"}
    ]);
    let args = json!({
        "marketKey": "nyc",
        "sandboxRoot": setup.dir.path().join("data/sandboxes"),
        "calls": calls,
    });
    let summary =
        tokio::task::block_in_place(|| run_client("ticketdrop_tools.mjs", &runtime, &args, |_| {}));

    for refused in ["missing", "wrong"] {
        let answer = &summary["refused"][refused];
        assert_eq!(answer["status"], 401, "{refused} token: {answer}");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }
    assert_eq!(summary["tools"], json!(["fetch_events"]));

    let sent: Vec<Value> = convex
        .calls_to(LIST_FOR_MARKET)
        .iter()
        .map(|c| normalized(&c.args))
        .collect();
    let expected = [
        list_args("2026-12-07", "2026-12-13", 200),
        list_args("2026-12-07", "2026-12-13", 5),
        list_args("2026-12-13", "2026-12-07", 200),
    ];
    assert_eq!(sent, expected, "{summary}");

    let results = summary["results"].as_array().unwrap();
    for ok in &results[..2] {
        assert_eq!(ok["isError"], false, "{ok}");
        let text = ok["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("Winter Jazz Night"), "{ok}");
    }
    let failed = &results[2];
    assert_eq!(failed["isError"], true, "{failed}");
    let message = failed["content"][0]["text"].as_str().unwrap();
    assert!(message.contains("`to` is before `from`"), "{message}");
    let failure = &summary["failure"];
    assert_eq!(failure["fatal"], false, "{failure}");
    let text = failure["message"].as_str().unwrap();
    assert!(
        text.contains("fetch_events") && text.contains("`to` is before `from`"),
        "{failure}"
    );
    assert!(!text.contains(convex.deploy_key()), "{failure}");
    assert_eq!(runtime.terminate(), Some(0));
}

/// The arguments `events:listForMarket` should get for market `nyc`.
fn list_args(from: &str, to: &str, limit: u32) -> Value {
    json!({"marketKey": "nyc", "from": from, "to": to, "limit": f64::from(limit)})
}

/// `args` with a numeric `limit` as a float, so `200` and `200.0` compare equal: both
/// are the JSON number a Convex `v.number()` accepts. A string `"200"` stays a string.
fn normalized(args: &Value) -> Value {
    let mut args = args.clone();
    if let Some(limit) = args["limit"].as_f64() {
        args["limit"] = json!(limit);
    }
    args
}
