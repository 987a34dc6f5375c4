//! The web console, in the system's headless Chromium (driven by `tests/console`, a
//! playwright-core script), against the real binary with the scripted agent: the
//! metadata form, streaming, files, interrupt, approvals, stop and resume, a restart of
//! the runtime under the page, a 10,000-event session, and sign-in with a token; and
//! with the pinned Claude Code, whose partial messages stream in.
//! Screenshots go to `target/console-screenshots/`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use agent_runtime_testkit::fake_anthropic::FakeAnthropic;
use serde_json::{Value, json};

use crate::principals::create_key;
use crate::support::{Http, Runtime, Setup};

/// The browser and the driver's directory, or `None` (with a message) when either is
/// missing here. Under CI, or with `AGENT_RUNTIME_TEST_NPM` set, a missing one fails.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    let chromium = std::env::var_os("AGENT_RUNTIME_TEST_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
                .find(|candidate| candidate.is_file())
        });
    let installed = driver.join("node_modules/playwright-core").exists();
    match chromium {
        Some(chromium) if installed => Some((chromium, driver)),
        _ => {
            let required = std::env::var_os("CI").is_some()
                || std::env::var_os("AGENT_RUNTIME_TEST_NPM").is_some();
            assert!(
                !required,
                "the console tests need Chromium on PATH and `npm ci` in tests/console \
                 (scripts/test installs both)"
            );
            eprintln!("SKIPPED: install chromium and run `npm ci` in tests/console");
            None
        }
    }
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots")
}

/// Runs `scenario` of `tests/console/console.mjs` against `runtime.url` and returns its
/// result. A `{"step": ...}` line it prints is handed to `on_step`, and the script goes
/// on once that returns.
fn drive(
    (chromium, driver): &(PathBuf, PathBuf),
    url: &str,
    scenario: &str,
    extra: Value,
    mut on_step: impl FnMut(&Value),
    log: impl Fn() -> String,
) -> Value {
    let mut args = json!({ "scenario": scenario, "screenshots": screenshots() });
    if let (Some(args), Value::Object(extra)) = (args.as_object_mut(), extra) {
        args.extend(extra);
    }
    let mut child = Command::new("node")
        .arg(driver.join("console.mjs"))
        .env("RUNTIME_URL", url)
        .env("CHROMIUM", chromium)
        .env("SCRIPT_ARGS", args.to_string())
        // A guard against hangs, not a performance bound: creates start sandboxes.
        .env("SCRIPT_TIMEOUT_MS", "60000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut last = String::new();
    for line in stdout.lines().map_while(Result::ok) {
        if let Ok(step) = serde_json::from_str::<Value>(&line)
            && step.get("step").is_some()
        {
            on_step(&step);
            writeln!(stdin, "ok").unwrap();
            continue;
        }
        last = line;
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the console scenario {scenario} failed:\n{last}\n{}\n--- runtime log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        log()
    );
    serde_json::from_str(&last).unwrap_or_else(|e| panic!("no JSON result ({e}): {last}"))
}

#[test]
fn the_console_creates_streams_interrupts_answers_and_downloads() {
    let Some(browser) = browser() else { return };
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let result = drive(
        &browser,
        &runtime.url,
        "main",
        json!({}),
        |_| {},
        || runtime.log(),
    );
    assert_eq!(result["ok"], true, "{result}");
    assert!(result["events"].as_u64().unwrap() > 40, "{result}");
}

#[test]
fn the_console_fills_the_gap_after_the_runtime_restarts() {
    let Some(browser) = browser() else { return };
    let mut setup = Setup::scripted();
    let first = Runtime::start(&setup);
    let url = first.url.clone();
    let port = url.rsplit(':').next().unwrap().to_owned();
    let runtime = std::cell::RefCell::new(Some(first));
    let earlier = std::cell::RefCell::new(String::new());
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let result = drive(
        &browser,
        &url,
        "restart",
        json!({}),
        |step| match step["step"].as_str() {
            Some("kill") => {
                let old = runtime.borrow_mut().take().expect("running");
                earlier.borrow_mut().push_str(&old.log());
                old.kill9();
            }
            Some("start") => {
                // The same port and store: the page's URL stays right.
                setup.env = vec![(
                    "AGENT_RUNTIME__SERVER__LISTEN".into(),
                    format!("127.0.0.1:{port}"),
                )];
                let started = Runtime::start(&setup);
                let id = step["sessionId"].as_str().unwrap();
                // Written while the page is offline: it can only see it by filling the gap.
                let reply = tokio.block_on(
                    Http::new(&started).turn(id, "reply written while the page was away"),
                );
                assert_eq!(reply["is_error"], false, "{reply}");
                *runtime.borrow_mut() = Some(started);
            }
            other => panic!("unknown step {other:?}"),
        },
        || {
            let now = runtime
                .borrow()
                .as_ref()
                .map(Runtime::log)
                .unwrap_or_default();
            format!("{}\n--- after the restart ---\n{now}", earlier.borrow())
        },
    );
    assert_eq!(result["ok"], true, "{result}");
}

#[test]
fn the_console_opens_a_session_of_ten_thousand_events_and_160_turns() {
    let Some(browser) = browser() else { return };
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime);
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let id = tokio.block_on(async {
        let id = http.create_session("tester").await;
        let result = http.turn(&id, "emit 10000").await;
        assert_eq!(result["result"], "chunk 10000", "{result}");
        for turn in 1..=160 {
            http.turn(&id, &format!("reply turn {turn}")).await;
        }
        id
    });
    let result = drive(
        &browser,
        &runtime.url,
        "large",
        json!({ "sessionId": id }),
        |_| {},
        || runtime.log(),
    );
    assert!(result["logged"].as_u64().unwrap() > 10_000, "{result}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_streams_the_pinned_claude_code() {
    let Some(browser) = browser() else { return };
    let fake = FakeAnthropic::start().await;
    let Some(mut setup) = Setup::claude(&fake.base_url()) else {
        return;
    };
    setup.extra_toml =
        setup
            .extra_toml
            .replacen("[agent]\n", "[agent]\ninclude_partial_messages = true\n", 1);
    let result = tokio::task::spawn_blocking(move || {
        let runtime = Runtime::start(&setup);
        drive(
            &browser,
            &runtime.url,
            "claude",
            json!({}),
            |_| {},
            || runtime.log(),
        )
    })
    .await
    .unwrap();
    assert!(result["partial"].as_u64().unwrap() > 0, "{result}");
}

#[test]
fn the_console_asks_for_a_token_when_the_runtime_needs_one() {
    let Some(browser) = browser() else { return };
    let mut setup = Setup::scripted();
    setup.extra_toml = "[auth]\nmode = \"shared-secret\"\nsecret = \"console-secret\"\n".into();
    let runtime = Runtime::start(&setup);
    let result = drive(
        &browser,
        &runtime.url,
        "auth",
        json!({ "token": "console-secret", "allowUnauthorized": true }),
        |_| {},
        || runtime.log(),
    );
    assert_eq!(result["ok"], true, "{result}");
}

#[test]
fn the_console_signs_in_with_an_api_key_and_shows_only_its_own_sessions() {
    let Some(browser) = browser() else { return };
    let mut setup = Setup::scripted();
    setup.extra_toml = "[auth]\nmode = \"principals\"\n".into();
    let alice = create_key(&setup, &["alice"]);
    let bob = create_key(&setup, &["bob"]);
    let runtime = Runtime::start(&setup);
    let result = drive(
        &browser,
        &runtime.url,
        "auth",
        json!({ "token": alice, "otherToken": bob, "allowUnauthorized": true }),
        |_| {},
        || runtime.log(),
    );
    assert!(result["id"].is_string(), "{result}");
}

/// The page and its assets: types, caching, the policy; and no console when it is off.
#[tokio::test]
async fn the_console_is_served_with_its_headers_and_only_when_enabled() {
    let setup = Setup::scripted();
    let runtime = Runtime::start(&setup);
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{}/", runtime.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    let etag = headers["etag"].clone();
    let again = client
        .get(format!("{}/", runtime.url))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    for (path, media) in [
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        (
            "/console/vendor/socket.io.esm.min.js",
            "text/javascript; charset=utf-8",
        ),
    ] {
        let asset = client
            .get(format!("{}{path}", runtime.url))
            .send()
            .await
            .unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        assert_eq!(asset.headers()["content-type"], media, "{path}");
    }
    let (status, body) = Http::new(&runtime).get("/console/nothing.js").await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    drop(runtime);

    let mut off = Setup::scripted();
    off.env = vec![("AGENT_RUNTIME__SERVER__CONSOLE".into(), "false".into())];
    let runtime = Runtime::start(&off);
    let (status, body) = Http::new(&runtime).get("/").await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    let (status, _) = Http::new(&runtime).get("/console/app.js").await;
    assert_eq!(status, 404);
}

/// The Markdown renderer's table (`tests/console/markdown.test.mjs`), under node's own
/// test runner: Markdown becomes its few tags, and nothing an agent writes becomes markup.
#[test]
fn the_markdown_renderer_makes_only_its_own_markup() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/markdown.test.mjs");
    let output = Command::new("node")
        .arg("--test")
        .arg(&script)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
