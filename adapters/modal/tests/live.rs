//! The Modal provider against Modal itself, with the operator's own token: the shared
//! sandbox contract suite (create with files and environment, file transfer, processes and
//! their signals, listing and reopening by tag, handing a sandbox to another session,
//! terminate). Ignored by default; `scripts/modal-live-smoke` runs it.
//!
//! It uses a small public image (`debian:12-slim`, which has the `sh`, GNU `tar` and GNU
//! `find` file transfer needs) in the app `agent-runtime-smoke` (or `$MODAL_SMOKE_APP`),
//! terminates every sandbox it makes, and costs a few sandbox-minutes.

use std::time::Duration;

use agent_runtime_api::SandboxProvider;
use agent_runtime_api::contract::Behaviour;
use agent_runtime_modal::{ImageConfig, ModalConfig, ModalSandboxProvider};

fn config() -> ModalConfig {
    let mut config = ModalConfig {
        app: std::env::var("MODAL_SMOKE_APP").unwrap_or_else(|_| "agent-runtime-smoke".into()),
        image: ImageConfig {
            tag: "debian:12-slim".into(),
            commands: Vec::new(),
        },
        timeout: Duration::from_secs(15 * 60),
        idle_timeout: Duration::from_secs(5 * 60),
        tags: [("purpose".to_owned(), "smoke-test".to_owned())].into(),
        ..ModalConfig::default()
    };
    if let Ok(url) = std::env::var("MODAL_SERVER_URL") {
        config.server_url = url;
    }
    config
}

/// Runs `behaviour` against Modal; each behaviour terminates every sandbox it makes.
async fn on_modal(behaviour: Behaviour<dyn SandboxProvider>) {
    let config = config();
    let problems = agent_runtime_modal::check_offline(&config);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let provider = ModalSandboxProvider::new(config).expect("provider");
    behaviour.check(&provider).await;
    if let Some(timings) = provider.last_create_timings() {
        println!(
            "{}: last create on Modal: image {:?}, SandboxCreateV2 {:?}, first command {:?}",
            behaviour.name(),
            timings.image,
            timings.sandbox,
            timings.ready
        );
    }
}

agent_runtime_api::sandbox_contract!(
    #[ignore = "needs a Modal account: scripts/modal-live-smoke runs it with MODAL_TOKEN_ID and MODAL_TOKEN_SECRET"]
    modal_itself,
    with on_modal
);
