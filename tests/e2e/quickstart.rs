//! The README's quickstart, run as it is written: the commands come from the README's
//! blocks marked `<!-- quickstart`, so the two cannot drift apart. Claude Code is the
//! pinned CLI against the fake Messages API, chosen through the environment overrides
//! the README documents (`AGENT_RUNTIME__AGENT__COMMAND`, and `ANTHROPIC_BASE_URL`,
//! which the written config passes to sandboxes).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use agent_runtime_testkit::fake_anthropic::FakeAnthropic;
use serde_json::Value;

use crate::chat::{Chat, session_id};
use crate::support::signal;

/// The build step, which this test does not repeat: cargo built the binaries it runs.
const BUILD: &str = "cargo install --locked --path .";

/// The commands of the README's quickstart blocks, in order, without their comments.
fn quickstart_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut commands = Vec::new();
    let mut rest = readme.as_str();
    while let Some(at) = rest.find("<!-- quickstart") {
        rest = &rest[at..];
        let start = rest.find("```sh\n").expect("a sh block after the marker") + "```sh\n".len();
        let block = &rest[start..];
        let end = block.find("```").expect("the block ends");
        for line in block[..end].lines() {
            let command = line.split(" #").next().unwrap_or_default().trim();
            if !command.is_empty() {
                commands.push(command.to_owned());
            }
        }
        rest = &block[end..];
    }
    commands
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_quickstart_runs_as_written() {
    let fake = FakeAnthropic::start().await;
    let Some(claude) = agent_runtime_testkit::claude_bin() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "AGENT_RUNTIME_TEST_CLAUDE is not set; scripts/test installs the pinned Claude Code"
        );
        eprintln!("SKIPPED: set AGENT_RUNTIME_TEST_CLAUDE to the pinned Claude Code CLI");
        return;
    };
    let commands = quickstart_commands();
    assert_eq!(
        commands.first().map(String::as_str),
        Some(BUILD),
        "{commands:?}"
    );
    assert!(
        commands.iter().any(|c| c == "agent-runtime")
            && commands.iter().any(|c| c.ends_with("agent-runtime chat")),
        "the quickstart serves and chats: {commands:?}"
    );

    let home = tempfile::tempdir().unwrap();
    let clone = home.path().join("clone");
    std::fs::create_dir(&clone).unwrap();
    let binaries = Path::new(env!("CARGO_BIN_EXE_agent-runtime"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        binaries.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let fake_address = fake.base_url().trim_start_matches("http://").to_owned();
    let mut env: Vec<(String, String)> = vec![
        ("HOME".into(), home.path().display().to_string()),
        ("PATH".into(), path),
        ("ANTHROPIC_API_KEY".into(), "test-key".into()),
        ("ANTHROPIC_BASE_URL".into(), fake.base_url()),
        (
            "AGENT_RUNTIME__AGENT__COMMAND".into(),
            claude.display().to_string(),
        ),
        // The fake API is on this host's loopback, which sandboxes reach only when told.
        (
            "AGENT_RUNTIME__SANDBOX__HOST_SERVICES".into(),
            format!("[\"{fake_address}\"]"),
        ),
        // Any free port instead of 4000, which another test may hold; its address is read
        // from the log.
        ("AGENT_RUNTIME__SERVER__LISTEN".into(), "127.0.0.1:0".into()),
        ("AGENT_RUNTIME__LOG__FORMAT".into(), "json".into()),
    ];
    let shell = |line: &str, cwd: &Path, env: &[(String, String)]| {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(line)
            .current_dir(cwd)
            .env_remove("AGENT_RUNTIME_CONFIG")
            .env_remove("AGENT_RUNTIME_URL")
            .env_remove("AGENT_RUNTIME_TOKEN")
            .env_remove("RUST_LOG")
            .envs(env.iter().map(|(k, v)| (k, v)));
        command
    };

    let mut cwd: PathBuf = clone.clone();
    let mut server = None;
    let mut chat_output = None;
    for line in commands.iter().skip(1) {
        if let Some(dir) = line.strip_prefix("cd ") {
            let output = shell(&format!("cd {dir} && pwd"), &cwd, &env)
                .output()
                .unwrap();
            assert!(output.status.success(), "{line}");
            cwd = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
        } else if line == "agent-runtime" {
            let mut child = shell(&format!("exec {line}"), &cwd, &env)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let address = listening_address(child.stderr.take().unwrap());
            env.push(("AGENT_RUNTIME_URL".into(), format!("http://{address}")));
            server = Some(Server(child));
        } else if line.ends_with("agent-runtime chat") {
            let mut chat = Chat::spawn(shell(line, &cwd, &env));
            chat.send("hello from the quickstart");
            chat.send(r#"TOOL:Bash {"command":"printf quickstart > quickstart.txt"}"#);
            chat.send("y");
            chat_output = Some(chat.finish());
        } else {
            let output = shell(line, &cwd, &env).output().unwrap();
            assert!(
                output.status.success(),
                "{line}:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    let (code, output) = chat_output.expect("the quickstart chats");
    assert_eq!(code, Some(0), "{output}");
    let streamed = output
        .lines()
        .filter(|l| *l == "echo: hello from the quickstart")
        .count();
    assert_eq!(streamed, 1, "{output}");
    assert!(
        output.contains("? Bash printf quickstart > quickstart.txt — allow?"),
        "{output}"
    );
    assert!(output.contains("· created quickstart.txt"), "{output}");
    let id = session_id(&output);
    assert!(
        home.path().join("agents/data/storage").exists(),
        "the session's files are kept under ~/agents/data"
    );
    let url = &env
        .iter()
        .find(|(k, _)| k == "AGENT_RUNTIME_URL")
        .unwrap()
        .1;
    let file = reqwest::get(format!("{url}/v1/sessions/{id}/files/quickstart.txt"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(file, "quickstart");
    // The console the README sends people to is served on the loopback bind init writes.
    let page = reqwest::get(format!("{url}/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<script type=\"module\"")
    );

    let mut server = server.take().expect("the quickstart serves");
    signal(&server.0, "TERM");
    let status = server.0.wait().unwrap();
    assert!(status.success(), "the runtime shut down cleanly: {status}");
}

/// The runtime the quickstart started; killed if the test fails before it stops it.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Reads the runtime's JSON log until it says where it listens; keeps draining it after.
fn listening_address(stderr: std::process::ChildStderr) -> String {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(entry) = serde_json::from_str::<Value>(&line)
                && entry["fields"]["message"] == "agent-runtime is listening"
            {
                let _ = sender.send(Ok(entry["fields"]["address"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()));
            }
            log.push(line);
        }
        let _ = sender.send(Err(log.join("\n")));
    });
    match receiver.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(address)) => address,
        Ok(Err(log)) => panic!("the runtime exited:\n{log}"),
        Err(_) => panic!("the runtime did not start"),
    }
}
