//! Serving: everything between a loaded config and a running server. The server is a
//! function of a listener and a shutdown future, so tests run it on port 0 with their
//! own shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::catalog;
use crate::config::{Config, SandboxConfig};
use crate::metrics::Metrics;
use crate::runtime::{SessionManager, ToolHost};
use crate::tools;
use crate::transport::origin::{self, GuardConfig, RequestGuard};
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
    /// `server.public_url` is not a URL, or an allowed origin or host is malformed.
    #[error("[server] {0}")]
    Server(String),
    /// The authenticator could not be built.
    #[error("{0}")]
    Auth(String),
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
    let mut settings = catalog::runtime_settings(&config);
    if let SandboxConfig::Local(_) = &config.sandbox {
        // Other sandboxes bring the agent in their image.
        catalog::find_agent_command(&settings).map_err(|problem| {
            ServeError::AgentMissing(format!(
                "{problem}.\nInstall Claude Code (npm install -g @anthropic-ai/claude-code) or set \
                 `command` under [agent] in {} to the program's path.",
                config_path.display()
            ))
        })?;
    }
    // Local sandboxes reach /mcp through a unix socket that serves nothing else.
    let sandbox_socket = match &config.sandbox {
        // Named after this process, so another runtime's socket is never taken over.
        SandboxConfig::Local(local) => Some(
            local
                .root
                .join(format!(".runtime-{}.sock", std::process::id())),
        ),
        SandboxConfig::Modal(_) => None,
    };
    let link = sandbox_socket
        .clone()
        .map(|socket| -> std::io::Result<_> {
            Ok(agent_runtime_local::RuntimeLink {
                address: reachable(listener.local_addr()?),
                socket,
            })
        })
        .transpose()?;
    let metrics = Arc::new(Metrics::new(catalog::sandbox_kind(&config.sandbox)));
    let mut adapters = catalog::build_adapters(&config, link, &metrics)
        .await
        .map_err(ServeError::Adapters)?;
    let warm_pool = catalog::warm_pool(&config, &mut adapters, &settings, &metrics);
    let sandbox_listener = sandbox_socket
        .as_deref()
        .map(agent_runtime_local::bind_socket)
        .transpose()?;
    let tool_sessions = Arc::new(tools::ToolSessions::new());
    let public_url = config
        .server
        .public_url
        .as_deref()
        .map(|url| url.trim_end_matches('/'));
    settings.tools = Some(ToolHost {
        sessions: tool_sessions.clone(),
        base_url: match public_url {
            Some(url) => url.to_owned(),
            None => format!("http://{}", reachable(listener.local_addr()?)),
        },
    });
    let auth =
        catalog::authenticator(&config.auth, adapters.store.clone()).map_err(ServeError::Auth)?;
    let manager = SessionManager::with_metrics(adapters, settings, metrics);
    let mut tools_state = tools::ToolsState::new(
        tool_sessions,
        tools::http_client(),
        manager.tool_failure_sink(),
    );
    tools_state.allowed_hosts = mcp_allowed_hosts(&config, public_url)?;
    let guard = request_guard(&config, listener.local_addr()?, public_url)?;
    tools_state.convex =
        catalog::convex_caller(&config).map_err(|error| ServeError::Adapters(vec![error]))?;
    match manager.recover().await {
        Ok(recovered) if recovered != Default::default() => tracing::info!(
            sessions = recovered.sessions,
            sandboxes = recovered.sandboxes,
            "recovered sessions left live by an earlier run"
        ),
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "startup recovery failed; sessions stay as they are"),
    }
    // After recovery, which reaps every sandbox of this runtime's owner tag.
    if let Some(pool) = &warm_pool {
        pool.start();
    }
    let address = listener.local_addr()?;
    let console = console_enabled(config.server.console, address);
    let state = AppState {
        max_payload: config.server.max_payload.as_usize(),
        tools: Some(tools_state),
        guard,
        console,
        ..AppState::new(manager.clone(), auth)
    };
    tracing::info!(%address, "agent-runtime is listening");
    if console {
        tracing::info!(url = %format!("http://{}/", reachable(address)), "web console");
        if address.ip().is_unspecified()
            && public_url.is_none()
            && config.server.allowed_origins.is_none()
        {
            tracing::warn!(
                "the web console's page cannot call a runtime on a wildcard address unless its \
                 origin is allowed: set server.public_url to the address people open, or \
                 server.allowed_origins"
            );
        }
    }
    let served = transport::serve(listener, sandbox_listener, state, shutdown).await;
    tracing::info!(live = manager.live_sessions(), "stopping every session");
    manager.shutdown().await;
    if let Some(pool) = &warm_pool {
        pool.drain().await;
    }
    if let Some(path) = &sandbox_socket {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("stopped");
    Ok(served?)
}

/// The `Host` values `/mcp` accepts (rmcp's own check): loopback names, `public_url`'s
/// host and `server.allowed_hosts`; empty, which rmcp reads as any, when that holds `"*"`.
fn mcp_allowed_hosts(config: &Config, public_url: Option<&str>) -> Result<Vec<String>, ServeError> {
    let configured = config.server.allowed_hosts.iter().flatten();
    if configured.clone().any(|host| host == origin::ANY) {
        return Ok(Vec::new());
    }
    let mut hosts = tools::allowed_hosts_for(public_url).map_err(ServeError::Server)?;
    hosts.extend(configured.cloned());
    Ok(hosts)
}

/// The `Origin`/`Host` guard for the bound address; warns when every page is allowed.
fn request_guard(
    config: &Config,
    listen: std::net::SocketAddr,
    public_url: Option<&str>,
) -> Result<RequestGuard, ServeError> {
    let guard = RequestGuard::new(&GuardConfig {
        listen: Some(listen),
        public_url: public_url.map(str::to_owned),
        allowed_origins: config.server.allowed_origins.clone(),
        allowed_hosts: config.server.allowed_hosts.clone(),
    })
    .map_err(ServeError::Server)?;
    if guard.allows_any_origin() {
        tracing::warn!(
            "server.allowed_origins contains \"*\": every web page its users open may call this runtime"
        );
    }
    Ok(guard)
}

/// Whether the web console is served: as configured, else only on a loopback bind (a
/// loopback runtime is the developer's own; elsewhere the console is asked for).
fn console_enabled(configured: Option<bool>, listen: std::net::SocketAddr) -> bool {
    configured.unwrap_or_else(|| listen.ip().to_canonical().is_loopback())
}

/// The address a local sandbox uses to reach a listener: a wildcard bind is reached over
/// loopback.
fn reachable(address: std::net::SocketAddr) -> std::net::SocketAddr {
    match address.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            (std::net::Ipv4Addr::LOCALHOST, address.port()).into()
        }
        ip if ip.is_unspecified() => (std::net::Ipv6Addr::LOCALHOST, address.port()).into(),
        _ => address,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_on_by_default_only_on_loopback() {
        let table = [
            (None, "127.0.0.1:4000", true),
            (None, "[::1]:4000", true),
            (None, "[::ffff:127.0.0.1]:4000", true),
            (None, "0.0.0.0:4000", false),
            (None, "10.0.0.5:4000", false),
            (Some(true), "0.0.0.0:4000", true),
            (Some(false), "127.0.0.1:4000", false),
        ];
        for (configured, listen, expected) in table {
            let listen = listen.parse().unwrap();
            assert_eq!(
                console_enabled(configured, listen),
                expected,
                "{configured:?} {listen}"
            );
        }
    }
}
