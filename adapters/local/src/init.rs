//! The first program in a sandbox with a private network: it relays the sandbox's own
//! loopback addresses to unix sockets bound in from the host, then runs the real program
//! and ends with it.
//!
//! ```text
//! init [--forward ADDRESS=SOCKET]... -- PROGRAM [ARGS]...
//! ```
//!
//! It listens on every `ADDRESS` before it starts the program, so the program never finds
//! a relay missing. Termination signals are caught, not obeyed: the program gets them too
//! (they go to the whole process group) and decides how long it takes to end; the init
//! keeps relaying until then and exits the way the program did.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::{TcpListener, UnixStream};

/// Runs the init with `args` (without the program name) and returns its exit code.
pub fn sandbox_init(args: impl IntoIterator<Item = String>) -> i32 {
    let (forwards, command) = match parse(args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("sandbox init: {message}");
            return 125;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sandbox init: {error}");
            return 125;
        }
    };
    runtime.block_on(run(forwards, command))
}

type Forward = (SocketAddr, PathBuf);

fn parse(args: impl IntoIterator<Item = String>) -> Result<(Vec<Forward>, Vec<String>), String> {
    let mut args = args.into_iter();
    let mut forwards = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--forward" => {
                let value = args.next().ok_or("--forward needs ADDRESS=SOCKET")?;
                let (address, socket) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--forward {value:?} is not ADDRESS=SOCKET"))?;
                let address = address
                    .parse()
                    .map_err(|error| format!("--forward address {address:?}: {error}"))?;
                forwards.push((address, PathBuf::from(socket)));
            }
            "--" => {
                let command: Vec<String> = args.collect();
                if command.is_empty() {
                    return Err("no program after --".into());
                }
                return Ok((forwards, command));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Err("no program: expected -- PROGRAM [ARGS]...".into())
}

async fn run(forwards: Vec<Forward>, command: Vec<String>) -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    for (address, socket) in forwards {
        let listener = match TcpListener::bind(address).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("sandbox init: listening on {address}: {error}");
                return 125;
            }
        };
        tokio::spawn(relay(listener, socket));
    }
    // Handlers, not SIG_IGN: an ignored signal would stay ignored in the program.
    let signals = [
        SignalKind::terminate(),
        SignalKind::interrupt(),
        SignalKind::hangup(),
    ]
    .map(signal);
    let mut child = match tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            eprintln!("sandbox init: starting {}: {error}", command[0]);
            return 127;
        }
    };
    let _signals = signals;
    let status = match child.wait().await {
        Ok(status) => status,
        Err(error) => {
            eprintln!("sandbox init: waiting for {}: {error}", command[0]);
            return 125;
        }
    };
    use std::os::unix::process::ExitStatusExt;
    if let Some(signal) = status.signal() {
        // End the way the program did, so the runtime sees the same status.
        // SAFETY: resetting a disposition and raising a signal have no memory preconditions.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
        return 128 + signal;
    }
    status.code().unwrap_or(125)
}

async fn relay(listener: TcpListener, socket: PathBuf) {
    loop {
        let Ok((inside, _)) = listener.accept().await else {
            // Out of descriptors, say: wait rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let socket = socket.clone();
        tokio::spawn(async move {
            let _ = inside.set_nodelay(true);
            let Ok(mut outside) = UnixStream::connect(&socket).await else {
                return;
            };
            let mut inside = inside;
            let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forwards_and_the_program() {
        let args = [
            "--forward",
            "127.0.0.1:4000=/run/x.sock",
            "--",
            "claude",
            "-p",
        ];
        let (forwards, command) = parse(args.map(String::from)).unwrap();
        assert_eq!(
            forwards,
            [(
                "127.0.0.1:4000".parse().unwrap(),
                PathBuf::from("/run/x.sock")
            )]
        );
        assert_eq!(command, ["claude", "-p"]);
        for bad in [
            &["--"][..],
            &["claude"],
            &["--forward", "x=y", "--", "a"],
            &[],
        ] {
            assert!(parse(bad.iter().map(|s| s.to_string())).is_err(), "{bad:?}");
        }
    }
}
