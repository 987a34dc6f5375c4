//! `fake-anthropic`: serves the fake Messages API on a port for manual runs.
//!
//! Usage: `fake-anthropic [--port N] [--delay-ms N]`, then point a client at it with
//! `ANTHROPIC_BASE_URL=http://127.0.0.1:N`. Stops on Ctrl-C.

use std::time::Duration;

use agent_runtime_testkit::fake_anthropic::FakeAnthropic;

/// The port Claude Code's reference notes use for a fake API.
const DEFAULT_PORT: u16 = 8765;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (port, delay_ms) = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("fake-anthropic: {message}\nusage: fake-anthropic [--port N] [--delay-ms N]");
            std::process::exit(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("fake-anthropic: cannot bind 127.0.0.1:{port}: {err}");
            std::process::exit(1);
        }
    };
    let fake = match FakeAnthropic::from_listener(listener) {
        Ok(fake) => fake,
        Err(err) => {
            eprintln!("fake-anthropic: {err}");
            std::process::exit(1);
        }
    };
    fake.set_delay(Duration::from_millis(delay_ms));
    println!("fake Messages API listening on {}", fake.base_url());
    if let Err(err) = tokio::signal::ctrl_c().await {
        eprintln!("fake-anthropic: cannot wait for Ctrl-C: {err}");
    }
}

fn parse(args: impl Iterator<Item = String>) -> Result<(u16, u64), String> {
    let mut port = DEFAULT_PORT;
    let mut delay_ms = 0;
    let mut args = args;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => {
                port = value
                    .parse()
                    .map_err(|e| format!("bad --port {value}: {e}"))?
            }
            "--delay-ms" => {
                delay_ms = value
                    .parse()
                    .map_err(|e| format!("bad --delay-ms {value}: {e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok((port, delay_ms))
}
