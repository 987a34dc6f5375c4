//! What an agent inside a bubblewrapped local sandbox with a private network can and
//! cannot reach. Each test says SKIPPED where bubblewrap or slirp4netns is missing.

use std::collections::BTreeMap;
use std::sync::Arc;

use agent_runtime_api::{CommandSpec, Sandbox, SandboxProvider, SandboxSpec};
use agent_runtime_local::{InitProgram, Isolation, LocalSandboxConfig, Network, build};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn private(
    root: &tempfile::TempDir,
    services: Vec<std::net::SocketAddr>,
) -> Option<Arc<dyn SandboxProvider>> {
    let config = LocalSandboxConfig {
        isolation: Isolation::Bubblewrap,
        network: Network::Private,
        host_services: services,
        init_program: Some(InitProgram {
            program: env!("CARGO_BIN_EXE_agent-runtime-sandbox-init").into(),
            args: Vec::new(),
        }),
        ..LocalSandboxConfig::new(root.path().join("sandboxes"))
    };
    match build(config) {
        Ok(provider) => Some(provider),
        Err(error) => {
            eprintln!("SKIPPED: no private sandbox network on this host: {error}");
            None
        }
    }
}

async fn sh(sandbox: &dyn Sandbox, script: &str) -> String {
    let command = CommandSpec {
        program: "bash".into(),
        args: vec!["-c".into(), script.into()],
        env: BTreeMap::new(),
    };
    let mut process = sandbox.spawn(&command).await.expect("spawn");
    drop(process.stdin);
    let mut out = String::new();
    process.stdout.read_to_string(&mut out).await.unwrap();
    let mut err = String::new();
    process.stderr.read_to_string(&mut err).await.unwrap();
    process.exit.await;
    format!("{out}{err}")
}

fn spec(session_id: &str) -> SandboxSpec {
    SandboxSpec {
        session_id: session_id.into(),
        owner_tag: "isolation".into(),
        env: BTreeMap::from([("PATH".to_owned(), "/usr/bin:/bin".to_owned())]),
        ..SandboxSpec::default()
    }
}

/// A TCP server on the host's loopback that answers every connection with `greeting`.
async fn greeter(greeting: &'static str) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(greeting.as_bytes()).await;
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_host_services_are_reachable_on_loopback() {
    let allowed = greeter("allowed\n").await;
    let forbidden = greeter("forbidden\n").await;
    let root = tempfile::tempdir().unwrap();
    let Some(provider) = private(&root, vec![allowed]) else {
        return;
    };
    let sandbox = provider.create(&spec("net")).await.unwrap();
    let connect = |address: std::net::SocketAddr| {
        format!(
            "exec 3<>/dev/tcp/{}/{} && head -n1 <&3 || echo refused",
            address.ip(),
            address.port()
        )
    };
    assert_eq!(
        sh(sandbox.as_ref(), &connect(allowed)).await.trim(),
        "allowed"
    );
    let out = sh(sandbox.as_ref(), &connect(forbidden)).await;
    assert!(
        out.contains("refused") && !out.contains("forbidden"),
        "{out}"
    );
    // Nor through the private network's gateway, which leads to the host.
    let gateway = format!(
        "grep -c 10.0.2.100 /proc/net/fib_trie; exec 3<>/dev/tcp/10.0.2.2/{} && head -n1 <&3 || echo refused",
        forbidden.port()
    );
    let out = sh(sandbox.as_ref(), &gateway).await;
    let (configured, rest) = out.split_once('\n').unwrap();
    assert!(
        configured.parse::<u32>().unwrap() > 0,
        "the network has its address: {out}"
    );
    assert!(
        rest.contains("refused") && !rest.contains("forbidden"),
        "{out}"
    );
    sandbox.terminate().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_is_out_of_sight() {
    let root = tempfile::tempdir().unwrap();
    let Some(provider) = private(&root, Vec::new()) else {
        return;
    };
    let other = provider.create(&spec("other")).await.unwrap();
    std::fs::write(format!("{}/secret.txt", other.workspace_path()), "other's").unwrap();
    let sandbox = provider.create(&spec("me")).await.unwrap();
    let runtime_pid = std::process::id();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let script = format!(
        "cat {other}/secret.txt 2>/dev/null; ls {root} 2>/dev/null | grep -v '^me-'; \
         cat /proc/{runtime_pid}/environ 2>/dev/null | tr '\\0' '\\n' | head -n1; \
         kill -0 {runtime_pid} 2>/dev/null && echo signalled; \
         ls {home} 2>/dev/null; cat /etc/shadow 2>/dev/null | head -n1; \
         ls /proc | grep -c '^[0-9]'; id -u; \
         mknod /tmp/disk b 8 0 2>/dev/null && echo made-a-device; echo end",
        other = other.workspace_path(),
        root = root.path().join("sandboxes").display(),
    );
    let out = sh(sandbox.as_ref(), &script).await;
    let lines: Vec<&str> = out.lines().collect();
    // Only: the number of processes it sees (itself and its pipeline), its uid, and "end".
    assert_eq!(lines.len(), 3, "the sandbox saw more than it should: {out}");
    assert!(lines[0].parse::<u32>().unwrap() < 8, "{out}");
    assert_eq!(lines[2], "end", "{out}");
    sandbox.terminate().await.unwrap();
    other.terminate().await.unwrap();
}

/// Field `n` (1-based, as `man proc` counts) of `/proc/<pid>/stat`.
fn stat_field(pid: i64, n: usize) -> i64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &text[text.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(n - 3).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxed_processes_have_no_controlling_terminal() {
    let root = tempfile::tempdir().unwrap();
    let plain = build(LocalSandboxConfig {
        isolation: Isolation::DangerouslyNone,
        ..LocalSandboxConfig::new(root.path().join("plain"))
    })
    .unwrap();
    let mut providers = vec![(root.path().join("plain"), plain)];
    if let Some(isolated) = private(&root, Vec::new()) {
        providers.push((root.path().join("sandboxes"), isolated));
    }
    for (dir, provider) in providers {
        let sandbox = provider.create(&spec("tty")).await.unwrap();
        let command = CommandSpec {
            program: "sleep".into(),
            args: vec!["30".into()],
            env: BTreeMap::new(),
        };
        let _process = sandbox.spawn(&command).await.unwrap();
        let marker = std::fs::read_to_string(dir.join(sandbox.id()).join("sandbox.json")).unwrap();
        let marker: serde_json::Value = serde_json::from_str(&marker).unwrap();
        let leader = marker["process_groups"][0]["pgid"].as_i64().unwrap();
        // A session of its own (so no terminal of the runtime's can be its controlling
        // one, and TIOCSTI into the operator's shell is out of reach), and no terminal.
        assert_eq!(
            stat_field(leader, 6),
            leader,
            "the leader leads its own session"
        );
        assert_eq!(stat_field(leader, 7), 0, "no controlling terminal");
        sandbox.terminate().await.unwrap();
    }
}
