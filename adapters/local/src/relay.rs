//! Relays between loopback addresses inside sandboxes and services outside them.
//!
//! A sandbox with a private network reaches nothing on the host's loopback. For each
//! configured host service the provider listens on a unix socket (bound into every sandbox)
//! and connects each accepted stream to the service; inside, the sandbox's init (see
//! `init`) listens on the service's own address and connects to that socket. So a program
//! in the sandbox uses the same address as on the host, and nothing else is reachable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use agent_runtime_api::{AdapterError, AdapterResult};
use tokio::net::{TcpStream, UnixListener, UnixStream};

/// Copies bytes both ways until either side closes.
pub(crate) async fn pipe(mut inside: UnixStream, mut outside: TcpStream) {
    let _ = outside.set_nodelay(true);
    if let Err(error) = tokio::io::copy_bidirectional(&mut inside, &mut outside).await {
        tracing::debug!(%error, "a relayed connection ended with an error");
    }
}

/// Listens on `socket` and relays every connection to `service`, for as long as the
/// runtime runs. A stale socket file from an earlier run is replaced.
pub(crate) fn serve(socket: &Path, service: SocketAddr) -> AdapterResult<()> {
    let listener = bind_socket(socket).map_err(|error| {
        AdapterError::other(format!("listening on {} for {service}", socket.display()))
            .with_source(error)
    })?;
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, %service, "accepting a relayed connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            tokio::spawn(async move {
                match TcpStream::connect(service).await {
                    Ok(outside) => pipe(stream, outside).await,
                    Err(error) => {
                        tracing::debug!(%error, %service, "a sandbox's host service is not there");
                    }
                }
            });
        }
    });
    Ok(())
}

/// Listens on the unix socket `path`, replacing a socket file an earlier run left there.
pub fn bind_socket(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    UnixListener::bind(path)
}

/// The socket file of the relay to `service` inside `dir`.
pub(crate) fn socket_path(dir: &Path, service: SocketAddr) -> PathBuf {
    let name = match service {
        SocketAddr::V4(v4) => format!("{}-{}.sock", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => format!(
            "{}-{}.sock",
            v6.ip().to_string().replace(':', "_"),
            v6.port()
        ),
    };
    dir.join(name)
}
