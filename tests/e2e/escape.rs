//! An agent with a shell tries to get out of its local sandbox, each way the security
//! model closes (docs/security.md), on the real binary with the default isolation: the
//! scripted agent's `sh` step, and real Claude Code's Bash tool through the fake Messages
//! API. Every attempt must fail, and the canaries the test planted must never show up.

use agent_runtime_testkit::fake_anthropic::FakeAnthropic;
use serde_json::json;

use crate::support::{Http, Runtime, Setup};

/// Planted in the runtime's environment.
const ENV_CANARY: &str = "canary-env-5b1f0c";
/// The shared secret clients authenticate with; it is in the runtime's config file.
const SECRET: &str = "canary-secret-77a2e9";
/// In the runtime user's home (`~/.ssh/id_ed25519`).
const HOME_CANARY: &str = "canary-home-a93d4e";
/// In the victim session's workspace.
const VICTIM_CANARY: &str = "canary-victim-2c8b71";

/// A runtime with shared-secret auth, a canary in its environment and in its HOME, and
/// the default `[sandbox]` isolation. `None` (with a message) where this host cannot
/// isolate; under CI that is a failure.
fn guarded_setup() -> Option<Setup> {
    if !crate::support::isolation_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "bubblewrap and slirp4netns are missing; scripts/test installs them"
        );
        eprintln!("SKIPPED: bubblewrap and slirp4netns are needed for the isolation tests");
        return None;
    }
    let mut setup = Setup::scripted();
    let home = setup.dir.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".ssh/id_ed25519"), HOME_CANARY).unwrap();
    setup
        .env
        .push(("AGENT_RUNTIME_CANARY".into(), ENV_CANARY.into()));
    setup.env.push(("HOME".into(), home.display().to_string()));
    setup.extra_toml = format!("[auth]\nmode = \"shared-secret\"\nsecret = \"{SECRET}\"\n");
    Some(setup)
}

/// One attempt: what the agent runs, and what its output must show it did not get.
struct Attempt {
    what: &'static str,
    script: String,
}

/// Every escape the security model closes, as shell scripts that print what they got.
fn attempts(runtime: &Runtime, setup: &Setup, victim_workspace: &str) -> Vec<Attempt> {
    let pid = runtime.pid();
    let dir = setup.dir.path().display().to_string();
    let port = runtime.url.rsplit(':').next().unwrap().to_owned();
    // Matches the canary without being it, so the agent's own transcript (which holds
    // this script) is no match.
    let pattern = VICTIM_CANARY.replacen("canary", "canar[y]", 1);
    vec![
        Attempt {
            what: "the runtime's environment through /proc",
            script: format!(
                "cat /proc/{pid}/environ /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; \
                 head -c 64 /proc/{pid}/cmdline 2>&1"
            ),
        },
        Attempt {
            what: "another session's files",
            script: format!(
                "cat {victim_workspace}/secret.txt 2>&1; ls -a {dir}/data/sandboxes 2>&1; \
                 grep -rs '{pattern}' {dir} /tmp /run 2>/dev/null | head -n 3"
            ),
        },
        Attempt {
            what: "the runtime's data, config and the store",
            script: format!(
                "ls -a {dir} 2>&1; cat {dir}/runtime.toml 2>&1; \
                 head -c 200 {dir}/data/runtime.db 2>&1; ls {dir}/data/storage 2>&1"
            ),
        },
        Attempt {
            what: "the host user's home",
            script: format!("cat {dir}/home/.ssh/id_ed25519 2>&1; ls -a /root 2>&1; ls -a ~ 2>&1"),
        },
        Attempt {
            what: "processes outside the sandbox",
            script: format!("kill -0 {pid} 2>&1 && echo SIGNALLED; ls /proc | grep -c '^[0-9]'"),
        },
        Attempt {
            what: "the runtime's API on loopback",
            script: format!(
                "curl -s -m 3 -H 'Authorization: Bearer {SECRET}' \
                 http://127.0.0.1:{port}/v1/sessions 2>&1; echo; \
                 curl -s -m 3 -o /dev/null -w 'mcp without token: %{{http_code}}\\n' \
                 -X POST http://127.0.0.1:{port}/mcp 2>&1"
            ),
        },
        Attempt {
            what: "other services on the host's loopback",
            script: "for target in 127.0.0.1/5432 127.0.0.1/6379 10.0.2.2/5432; do \
                     bash -c \"exec 3<>/dev/tcp/$target\" 2>/dev/null && echo OPEN $target; \
                     done; echo probed"
                .to_owned(),
        },
        Attempt {
            what: "privileges",
            script: "mknod /tmp/disk b 8 0 2>&1 && echo MADE-DEVICE; \
                     mount -t tmpfs none /mnt 2>&1 && echo MOUNTED; \
                     touch /usr/planted 2>&1 && echo WROTE-USR; echo tried"
                .to_owned(),
        },
    ]
}

/// What no output may contain.
fn forbidden() -> Vec<String> {
    [ENV_CANARY, SECRET, HOME_CANARY, VICTIM_CANARY]
        .map(str::to_owned)
        .into_iter()
        .chain(
            [
                "SIGNALLED",
                "OPEN ",
                "MADE-DEVICE",
                "MOUNTED",
                "WROTE-USR",
                "\"sessions\"",
            ]
            .map(str::to_owned),
        )
        .collect()
}

fn assert_nothing_leaked(what: &str, output: &str, forbidden: &[String]) {
    for word in forbidden {
        assert!(
            !output.contains(word.as_str()),
            "{what}: the sandbox got {word:?}:\n{output}"
        );
    }
}

/// A victim session with a secret file in its workspace; returns its id and workspace.
async fn victim(http: &Http, setup: &Setup) -> (String, String) {
    let id = http.create_session("tester").await;
    let result = http
        .turn(&id, &format!("write secret.txt {VICTIM_CANARY}"))
        .await;
    assert_eq!(result["is_error"], false, "{result}");
    let sandboxes = setup.dir.path().join("data/sandboxes");
    let workspace = std::fs::read_dir(&sandboxes)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.file_name().unwrap().to_string_lossy().starts_with(&id))
        .expect("the victim's sandbox")
        .join("workspace");
    assert!(
        workspace.join("secret.txt").exists(),
        "the victim wrote its file"
    );
    (id, workspace.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_a_shell_cannot_get_out() {
    let Some(setup) = guarded_setup() else {
        return;
    };
    let runtime = Runtime::start(&setup);
    assert!(
        runtime.log().contains("private network"),
        "the log says which isolation is in force"
    );
    let http = Http::new(&runtime).with_token(SECRET);
    let (victim_id, victim_workspace) = victim(&http, &setup).await;
    let attacker = http.create_session("tester").await;
    let forbidden = forbidden();
    for attempt in attempts(&runtime, &setup, &victim_workspace) {
        let result = http
            .turn(&attacker, &format!("sh {}", attempt.script))
            .await;
        let output = result["result"].as_str().unwrap_or_default().to_owned();
        assert!(output.starts_with("exit "), "{}: {result}", attempt.what);
        assert_nothing_leaked(attempt.what, &output, &forbidden);
        match attempt.what {
            "another session's files" => {
                assert!(
                    !output.lines().any(|line| line.starts_with(&victim_id)),
                    "the victim's sandbox is listed: {output}"
                );
            }
            "processes outside the sandbox" => {
                let count: u32 = output.lines().last().unwrap().trim().parse().unwrap();
                assert!(count < 10, "it sees only its own processes: {output}");
            }
            "the runtime's API on loopback" => {
                // The runtime's address inside the sandbox leads only to /mcp.
                assert!(output.contains("mcp without token: 401"), "{output}");
            }
            "other services on the host's loopback" => {
                assert!(output.trim_end().ends_with("probed"), "{output}");
            }
            _ => {}
        }
    }
    // The sandbox's own work still works.
    let result = http
        .turn(&attacker, "sh echo ok > mine.txt && cat mine.txt")
        .await;
    assert_eq!(result["result"], "exit 0\nok\n", "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_with_bash_cannot_get_out() {
    let Some(mut setup) = guarded_setup() else {
        return;
    };
    let fake = FakeAnthropic::start().await;
    let Some(agent_toml) = setup.claude_agent(&fake.base_url()) else {
        return;
    };
    setup.extra_toml += &agent_toml;
    let runtime = Runtime::start(&setup);
    let http = Http::new(&runtime).with_token(SECRET);
    // One agent program per runtime: the victim's file is planted by the test itself.
    let victim_id = http.create_session("claude").await;
    let sandboxes = setup.dir.path().join("data/sandboxes");
    let victim_workspace = std::fs::read_dir(&sandboxes)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&victim_id)
        })
        .expect("the victim's sandbox")
        .join("workspace");
    std::fs::write(victim_workspace.join("secret.txt"), VICTIM_CANARY).unwrap();
    let attacker = http.create_session("claude").await;
    let forbidden = forbidden();
    for attempt in attempts(&runtime, &setup, &victim_workspace.display().to_string()) {
        let call = json!({ "command": attempt.script });
        let result = http.turn(&attacker, &format!("TOOL:Bash {call}")).await;
        let output = result["result"].as_str().unwrap_or_default().to_owned();
        assert!(
            output.starts_with("TOOL RESULT SEEN:"),
            "{}: the model got the tool's result: {result}",
            attempt.what
        );
        assert_nothing_leaked(attempt.what, &output, &forbidden);
    }
    let sent = serde_json::to_string(&fake.requests()).unwrap();
    // (The shared secret is in the scripts themselves, so it is not checked here.)
    assert!(
        !sent.contains(ENV_CANARY) && !sent.contains(HOME_CANARY) && !sent.contains(VICTIM_CANARY),
        "no canary reached the model"
    );
}
