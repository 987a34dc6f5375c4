//! Serving: everything between a loaded config and a running server. The server is a
//! function of a listener and a shutdown future, so tests run it on port 0 with their
//! own shutdown.

use std::future::Future;

use tokio::net::TcpListener;

use crate::catalog;
use crate::config::Config;
use crate::runtime::SessionManager;
use crate::transport::{self, AppState};

/// Why the runtime could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// An adapter could not be built.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Adapters(Vec<catalog::CatalogError>),
    /// The agent program is missing.
    #[error("{0}")]
    AgentMissing(String),
    /// The server failed.
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the runtime from `config` and serves on `listener` until `shutdown` resolves;
/// then stops every session (final sync included) and returns.
pub async fn serve(
    config: Config,
    config_path: &std::path::Path,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let settings = catalog::runtime_settings(&config);
    catalog::find_agent_command(&settings).map_err(|problem| {
        ServeError::AgentMissing(format!(
            "{problem}.\nInstall Claude Code (npm install -g @anthropic-ai/claude-code) or set \
             `command` under [agent] in {} to the program's path.",
            config_path.display()
        ))
    })?;
    let adapters = catalog::build_adapters(&config)
        .await
        .map_err(ServeError::Adapters)?;
    let manager = SessionManager::new(adapters, settings);
    match manager.recover().await {
        Ok(recovered) if recovered != Default::default() => tracing::info!(
            sessions = recovered.sessions,
            sandboxes = recovered.sandboxes,
            "recovered sessions left live by an earlier run"
        ),
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "startup recovery failed; sessions stay as they are"),
    }
    let state = AppState {
        max_payload: config.server.max_payload.as_usize(),
        ..AppState::new(manager.clone(), catalog::authenticator(&config.auth))
    };
    tracing::info!(address = %listener.local_addr()?, "agent-runtime is listening");
    let served = transport::serve(listener, state, shutdown).await;
    tracing::info!(live = manager.live_sessions(), "stopping every session");
    manager.shutdown().await;
    tracing::info!("stopped");
    Ok(served?)
}

/// Resolves on the first SIGTERM or SIGINT. A second one exits the process at once.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals; stop the runtime with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down: finishing sessions; signal again to exit at once");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
}
