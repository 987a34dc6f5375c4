//! Starts the real `agent-runtime` binary on port 0 with a config of the test's own, and
//! drives it over the network.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// What a test's runtime runs and where it keeps its data.
pub struct Setup {
    pub dir: tempfile::TempDir,
    /// Extra TOML appended to the generated config.
    pub extra_toml: String,
    pub agent_command: PathBuf,
    pub env: Vec<(String, String)>,
    /// The `[store]` section.
    pub store_toml: String,
    /// The `[storage]` section.
    pub storage_toml: String,
    /// The `[sandbox]` section.
    pub sandbox_toml: String,
}

impl Setup {
    /// The scripted agent, SQLite and files in a temp dir, the test profiles.
    pub fn scripted() -> Self {
        Setup {
            dir: tempfile::tempdir().unwrap(),
            extra_toml: String::new(),
            agent_command: agent_runtime_testkit::bin_path("scripted-agent"),
            env: Vec::new(),
            store_toml: "kind = \"sqlite\"\nurl = \"sqlite://data/runtime.db\"".into(),
            storage_toml: "kind = \"filesystem\"\nroot = \"data/storage\"".into(),
            sandbox_toml: "kind = \"local\"\nroot = \"data/sandboxes\"".into(),
        }
    }

    /// [`Setup::scripted`] with the pinned Claude Code as its agent, against the fake
    /// Messages API at `fake_base_url`, or `None` (with a message) when the CLI is not
    /// installed here. Under CI a missing CLI is a failure.
    pub fn claude(fake_base_url: &str) -> Option<Self> {
        let mut setup = Setup::scripted();
        setup.extra_toml = setup.claude_agent(fake_base_url)?;
        Some(setup)
    }

    /// The `[agent]` section that runs the pinned Claude Code against the fake Messages API
    /// at `fake_base_url` (reached through a host-service relay), or `None` (with a message)
    /// when the CLI is not installed here. Under CI a missing CLI is a failure.
    pub fn claude_agent(&mut self, fake_base_url: &str) -> Option<String> {
        let Some(claude) = agent_runtime_testkit::claude_bin() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "AGENT_RUNTIME_TEST_CLAUDE is not set; scripts/test installs the pinned Claude Code"
            );
            eprintln!("SKIPPED: set AGENT_RUNTIME_TEST_CLAUDE to the pinned Claude Code CLI");
            return None;
        };
        self.reach_host_service(fake_base_url);
        Some(format!(
            "[agent]\ncommand = \"{claude}\"\nenv_passthrough = [\"PATH\", \"LANG\"]\n\
             [agent.env]\nANTHROPIC_BASE_URL = \"{fake_base_url}\"\n\
             ANTHROPIC_API_KEY = \"test-key\"\nCLAUDE_CODE_MAX_RETRIES = \"1\"\n",
            claude = claude.display(),
        ))
    }

    /// Lets the sandboxes reach the service at `url` (`http://127.0.0.1:PORT`) on the host's
    /// loopback, as `[sandbox] host_services` does.
    pub fn reach_host_service(&mut self, url: &str) {
        let address = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        self.sandbox_toml += &format!("\nhost_services = [{address:?}]");
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("runtime.toml")
    }

    pub fn write_config(&self) {
        let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/profiles");
        let config = format!(
            r#"
[server]
listen = "127.0.0.1:0"
[store]
{store}
[storage]
{storage}
[profiles]
kind = "directory"
path = "{profiles}"
[sandbox]
{sandbox}
[log]
level = "info,agent_runtime=debug"
format = "json"
{extra}
"#,
            profiles = profiles.display(),
            store = self.store_toml,
            storage = self.storage_toml,
            sandbox = self.sandbox_toml,
            extra = self.extra_toml,
        );
        let config = if self.extra_toml.contains("[agent]") {
            config
        } else {
            format!(
                "{config}\n[agent]\ncommand = \"{}\"\n",
                self.agent_command.display()
            )
        };
        std::fs::write(self.config_path(), config).unwrap();
    }
}

/// A running runtime process.
pub struct Runtime {
    child: Child,
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Runtime {
    pub fn start(setup: &Setup) -> Runtime {
        setup.write_config();
        let mut command = Command::new(env!("CARGO_BIN_EXE_agent-runtime"));
        command
            .arg("--config")
            .arg(setup.config_path())
            .env_remove("RUST_LOG")
            .env("AGENT_RUNTIME_TEST_MARKER", "leak-check")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in &setup.env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the runtime binary starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str::<Value>(&line)
                    && entry["fields"]["message"] == "agent-runtime is listening"
                {
                    let _ = address_tx.send(
                        entry["fields"]["address"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
                sink.lock().unwrap().push(line);
            }
        });
        let address = match address_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the runtime did not start:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Runtime {
            child,
            url: format!("http://{address}"),
            log,
        }
    }

    /// The runtime's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the runtime logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        signal(&self.child, "TERM");
        wait_exit(&mut self.child, Duration::from_secs(30))
    }

    /// Sends SIGTERM, waits `pause`, sends SIGTERM again and waits for the exit code.
    pub fn terminate_twice(mut self, pause: Duration) -> Option<i32> {
        signal(&self.child, "TERM");
        std::thread::sleep(pause);
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "still shutting down"
        );
        signal(&self.child, "TERM");
        wait_exit(&mut self.child, Duration::from_secs(5))
    }

    /// Kills the runtime without warning, as a crash would.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the runtime did not exit within {limit:?}");
}

/// Runs a scenario script of `tests/clients` with the real `socket.io-client` and
/// returns the JSON it printed. Panics with the script's output when it fails.
pub fn node(script: &str, runtime: &Runtime, args: &Value) -> Value {
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    assert!(
        clients.join("node_modules/socket.io-client").exists(),
        "run `npm ci` in tests/clients (scripts/test does it)"
    );
    let log_dir = tempfile::tempdir().unwrap();
    let protocol_log = log_dir.path().join("protocol.ndjson");
    let output = Command::new("node")
        .arg(clients.join(script))
        .env("RUNTIME_URL", &runtime.url)
        .env("PROTOCOL_LOG", &protocol_log)
        .env("SCRIPT_ARGS", args.to_string())
        // A guard against hangs, not a performance bound: creates run sandboxes.
        .env("SCRIPT_TIMEOUT_MS", "60000")
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}\n--- runtime log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        runtime.log()
    );
    let seen = std::fs::read_to_string(&protocol_log).unwrap_or_default();
    crate::spec::check_socketio(script, &seen);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stdout}"))
}

/// A minimal HTTP client for the REST API. Every exchange is checked against the
/// runtime's OpenAPI document ([`crate::spec::check`]), except on a client made
/// [`Http::off_spec`] to probe what the document does not describe.
pub struct Http {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    on_spec: bool,
}

impl Http {
    pub fn new(runtime: &Runtime) -> Self {
        Http {
            client: reqwest::Client::new(),
            base: runtime.url.clone(),
            token: None,
            on_spec: true,
        }
    }

    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// This client's exchanges are not checked against the OpenAPI document: for tests
    /// of unknown routes and wrong methods.
    pub fn off_spec(mut self) -> Self {
        self.on_spec = false;
        self
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.unwrap();
        let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if self.on_spec {
            crate::spec::check(&crate::spec::Exchange {
                method: method.as_str(),
                target: path,
                request: body.as_ref(),
                status,
                content_type: content_type.as_deref(),
                body: &answer,
            });
        }
        (status, answer)
    }

    /// Creates a session of `agent_type` and returns its id.
    pub async fn create_session(&self, agent_type: &str) -> String {
        let (status, created) = self
            .post(
                "/v1/sessions",
                serde_json::json!({ "agentType": agent_type }),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["session"]["status"], "idle", "{created}");
        created["session"]["id"].as_str().unwrap().to_owned()
    }

    /// Sends `text` to session `id`, waits for its turn and returns the `result` line.
    pub async fn turn(&self, id: &str, text: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("/v1/sessions/{id}/messages"),
                serde_json::json!({ "content": text, "wait": true }),
            )
            .await;
        assert_eq!(status, 200, "{text}: {body}");
        assert!(body["messageId"].is_string(), "{body}");
        body["result"].clone()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
}

/// Whether this host can isolate local sandboxes with a private network: bubblewrap and
/// slirp4netns are on PATH.
pub fn isolation_available() -> bool {
    ["bwrap", "slirp4netns"].iter().all(|program| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
    })
}
