//! `agent-runtime check`: validates a config without serving. Builds every adapter,
//! loads and renders every profile with sample metadata, and looks for the agent
//! program; reports every problem, not just the first.

use std::path::Path;

use crate::catalog;
use crate::config::{Config, SandboxConfig};
use crate::profiles::{Profile, RenderContext};
use crate::transport::origin::ANY;

/// The outcome of a check: what was fine and what was not.
#[derive(Debug, Default)]
pub struct Report {
    /// One line per thing that passed.
    pub passed: Vec<String>,
    /// One line per problem.
    pub problems: Vec<String>,
    /// One line per setting that works but is risky.
    pub warnings: Vec<String>,
}

/// Checks everything `config` refers to.
pub async fn check(config: &Config, config_path: &Path) -> Report {
    let mut report = Report::default();
    if config
        .server
        .allowed_origins
        .iter()
        .flatten()
        .any(|o| o == ANY)
    {
        report.warnings.push(
            "[server] allowed_origins contains \"*\": every web page the runtime's users open \
             may call it (and with auth.mode = \"none\", run agents)"
                .into(),
        );
    }
    let settings = catalog::runtime_settings(config);
    match &config.sandbox {
        SandboxConfig::Local(_) => match catalog::find_agent_command(&settings) {
            Ok(path) => report
                .passed
                .push(format!("agent command: {}", path.display())),
            Err(problem) => report.problems.push(format!(
                "{}: [agent] command: {problem}; install Claude Code or set the program's path",
                config_path.display()
            )),
        },
        SandboxConfig::Modal(modal) => {
            let problems = agent_runtime_modal::check_offline(modal);
            if problems.is_empty() {
                report
                    .passed
                    .push("sandbox (modal): settings and credentials present".into());
            }
            for problem in problems {
                report
                    .problems
                    .push(format!("[sandbox] kind = \"modal\": {problem}"));
            }
        }
    }
    match catalog::build_store(config).await {
        Ok(store) => match store.ping().await {
            Ok(()) => report.passed.push("store: reachable".into()),
            Err(error) => report
                .problems
                .push(format!("[store]: not reachable: {error}")),
        },
        Err(error) => report.problems.push(error.to_string()),
    }
    match catalog::build_storage(config) {
        Ok(_) => report.passed.push("storage: configured".into()),
        Err(error) => report.problems.push(error.to_string()),
    }
    // A remote sandbox provider was checked offline above; a local one is built here.
    if let SandboxConfig::Local(local) = &config.sandbox {
        match catalog::build_local_sandbox(local, None) {
            Ok(provider) => {
                let isolation = provider.isolation_summary();
                report
                    .passed
                    .push(format!("sandbox: ready, isolation: {isolation}"));
                if local.isolation == agent_runtime_local::Isolation::DangerouslyNone {
                    report.warnings.push(
                        "[sandbox] isolation = \"dangerously-none\": agents can read the \
                         runtime's secrets, every session's files and your home directory, and \
                         call every service on this host, the runtime's API included"
                            .into(),
                    );
                } else if !provider.has_private_network() {
                    report.warnings.push(
                        "[sandbox] sandboxes share this host's network: agents can reach every \
                         service on its loopback, the runtime's API included; install \
                         slirp4netns (or set network = \"private\")"
                            .into(),
                    );
                }
            }
            Err(error) => report.problems.push(error.to_string()),
        }
    }
    check_profiles(config, &mut report).await;
    check_jwks(config, &mut report).await;
    report
}

/// With `[auth.jwt] jwks_url`, the key set must be reachable and hold a usable key.
async fn check_jwks(config: &Config, report: &mut Report) {
    let crate::config::AuthConfig::Principals(principals) = &config.auth else {
        return;
    };
    let Some(jwt) = &principals.jwt else {
        return;
    };
    let verifier = match crate::auth::jwt::JwtVerifier::new(jwt, reqwest::Client::new()) {
        Ok(verifier) => verifier,
        Err(problem) => {
            report.problems.push(format!("[auth.jwt]: {problem}"));
            return;
        }
    };
    match verifier.check_key_set().await {
        None => report.passed.push("auth: JWTs with an HS256 secret".into()),
        Some(Ok(keys)) => report
            .passed
            .push(format!("auth: JWKS reachable, {keys} usable key(s)")),
        Some(Err(problem)) => report
            .problems
            .push(format!("[auth.jwt] jwks_url: {problem}")),
    }
}

async fn check_profiles(config: &Config, report: &mut Report) {
    let source = match catalog::build_profiles(config) {
        Ok(source) => source,
        Err(error) => {
            report.problems.push(error.to_string());
            return;
        }
    };
    let names = match source.list().await {
        Ok(names) if names.is_empty() => {
            report.problems.push("[profiles]: no profile found".into());
            return;
        }
        Ok(names) => names,
        Err(error) => {
            report
                .problems
                .push(format!("[profiles]: cannot list profiles: {error}"));
            return;
        }
    };
    for pooled in config.warm_pool.profiles.keys() {
        if !names.contains(pooled) {
            report.problems.push(format!(
                "[warm_pool.profiles] {pooled}: no profile of that name; its pool could never be filled"
            ));
        }
    }
    for name in names {
        let rendered = async {
            let bundle = source.load(&name).await.map_err(|e| e.to_string())?;
            let profile = Profile::parse(bundle).map_err(|e| e.to_string())?;
            let metadata = profile.sample_metadata();
            let context = RenderContext {
                session_id: "check-session",
                metadata: &metadata,
                vars: &config.vars,
            };
            profile.render(&context).map_err(|e| e.to_string())
        };
        match rendered.await {
            Ok(_) => report.passed.push(format!("profile {name}: renders")),
            Err(problem) => report.problems.push(format!("profile {name}: {problem}")),
        }
    }
}
