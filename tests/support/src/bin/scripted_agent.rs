//! `scripted-agent`: a deterministic stand-in for the Claude Code CLI.
//!
//! It speaks Claude Code's bidirectional stream-json protocol on stdin/stdout, accepts the
//! same flags, keeps a transcript where Claude Code keeps it and resumes from it, so the
//! runtime's tests can exercise the whole agent life cycle in milliseconds and offline.
//! The prompt text selects what a turn does; see `turn.rs` for the directives.
//!
//! # Layout
//! - `args`: the flags it acts on (others are accepted and ignored).
//! - `control`: the stdin reader and the state control requests change.
//! - `turn`: one turn per user message, driven by a directive.
//! - `transcript`: the JSONL transcript and resume.
//! - `shapes`: output lines, copied from real captures.

#[path = "scripted_agent/args.rs"]
mod args;
#[path = "scripted_agent/control.rs"]
mod control;
#[path = "scripted_agent/shapes.rs"]
mod shapes;
#[path = "scripted_agent/transcript.rs"]
mod transcript;
#[path = "scripted_agent/turn.rs"]
mod turn;

use std::sync::{Arc, mpsc};

use control::{Control, Input};
use transcript::{OpenError, Transcript};

/// Model reported when `--model` is not given.
const DEFAULT_MODEL: &str = "claude-scripted";

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let args = args::parse(std::env::args().skip(1));
    if args.version {
        println!("0.0.0-scripted (Claude Code)");
        return 0;
    }
    let cwd = match std::env::current_dir() {
        Ok(dir) => dir.to_string_lossy().into_owned(),
        Err(err) => {
            eprintln!("Error: cannot read the working directory: {err}");
            return 1;
        }
    };
    let transcript = match Transcript::open(&args, &cwd) {
        Ok(transcript) => transcript,
        Err(err) => return report_open_error(err),
    };
    exit_on_sigterm();
    let model = args.model.unwrap_or_else(|| DEFAULT_MODEL.to_owned());
    let mode = args.permission_mode.unwrap_or_else(|| "default".to_owned());
    let control = Arc::new(Control::new(model, mode));
    let (turns, queue) = mpsc::channel();
    control::spawn_reader(Arc::clone(&control), turns);
    let mut agent = turn::Agent::new(transcript, cwd, control);
    // The channel closes at stdin EOF, after every message sent before it was queued,
    // so a turn running at EOF (and any queued behind it) still finishes.
    while let Ok(Input::User(content)) = queue.recv() {
        agent.run_turn(&content);
    }
    0
}

fn report_open_error(err: OpenError) -> i32 {
    match err {
        OpenError::InUse(id) => eprintln!("Error: Session ID {id} is already in use."),
        OpenError::NotFound(id) => {
            let message = format!("No conversation found with session ID: {id}");
            eprintln!("{message}");
            let line = shapes::result_error(&shapes::uuid(), None, &[message], 0);
            shapes::emit(&line);
        }
    }
    1
}

/// Exits with rc 0 on SIGTERM, as Claude Code does. A tiny runtime on its own thread
/// keeps the rest of the program on plain threads and startup fast.
fn exit_on_sigterm() {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("scripted-agent: no SIGTERM handler: {err}");
            return;
        }
    };
    // Registered before the thread starts so a SIGTERM right after spawn is not missed.
    let registered = runtime.block_on(async { signal(SignalKind::terminate()) });
    let mut sigterm = match registered {
        Ok(sigterm) => sigterm,
        Err(err) => {
            eprintln!("scripted-agent: no SIGTERM handler: {err}");
            return;
        }
    };
    std::thread::spawn(move || {
        runtime.block_on(sigterm.recv());
        std::process::exit(0);
    });
}
