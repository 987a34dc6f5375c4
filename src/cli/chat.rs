//! `agent-runtime chat [PROFILE]`: a terminal client of a running runtime, over REST and
//! SSE. It creates a session (or resumes `--session ID`), sends each line read from stdin
//! as a message, shows the turn as it streams, asks the agent's requests inline, and
//! reads the next line when the turn is over. Ctrl-C interrupts the turn; a second Ctrl-C,
//! or Ctrl-C with no turn running, quits; so does the end of stdin. Stdin need not be a
//! terminal, so a script can pipe a conversation in.
//!
//! # Layout
//! - `client`: the REST calls.
//! - `follow`: the event stream, resumed by seq across reconnects.
//! - `render`: how events look.
//! - `ask`: the person's answers to permissions and questions.

mod ask;
mod client;
mod follow;
mod render;

use std::collections::{HashSet, VecDeque};
use std::io::IsTerminal;
use std::process::ExitCode;

use serde_json::Value;
use tokio::sync::mpsc;

use self::ask::{Asking, Step};
use self::client::{ApiError, Client};
use self::follow::Feed;
use self::render::Screen;
use crate::cli::ChatArgs;

/// The exit code after Ctrl-C, as shells report a process ended by SIGINT.
const INTERRUPTED: u8 = 130;

/// Runs `chat`; prints what went wrong and exits non-zero on a failure.
pub async fn run(args: ChatArgs) -> ExitCode {
    match chat(args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("agent-runtime chat: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn chat(args: ChatArgs) -> Result<ExitCode, String> {
    let client = Client::new(&args.url, args.token.clone())?;
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut screen = Screen::new(color);
    // Ctrl-C is the chat's from here on; while the session starts, it quits.
    let mut interrupts = interrupts();
    let (session, events) = tokio::select! {
        opened = open(&client, &args, &mut screen) => opened?,
        Some(()) = interrupts.recv() => return Ok(ExitCode::from(INTERRUPTED)),
    };
    let id = session["id"].as_str().unwrap_or_default().to_owned();
    screen.note(&format!(
        "session {id} · profile {} · {}",
        session["agentType"].as_str().unwrap_or("?"),
        session["status"].as_str().unwrap_or("?"),
    ));
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        screen.note("type a message and press Enter · Ctrl-C interrupts a turn · Ctrl-D quits");
    }
    let mut chat = Chat {
        client,
        id: id.clone(),
        screen,
        interactive,
        own: HashSet::new(),
        turn: None,
        interrupting: false,
        requests: VecDeque::new(),
        closed: HashSet::new(),
        asking: None,
    };
    // A turn already running (another client's, or one this chat left) is waited for
    // before the next message, like one of its own.
    if matches!(session["status"].as_str(), Some("running" | "waiting")) {
        chat.turn = Some(session["lastSeq"].as_u64().unwrap_or_default());
    }
    for pending in session["pending"].as_array().cloned().unwrap_or_default() {
        chat.requests.push_back(pending);
    }
    let code = chat.run(events, stdin_lines(), interrupts).await;
    chat.screen.note(&format!(
        "resume this session with: agent-runtime chat --session {id}"
    ));
    Ok(code)
}

/// Creates the session, or finds `--session` and resumes it if it is not live; follows
/// its events from its last seq, so the resume's own status changes show.
async fn open(
    client: &Client,
    args: &ChatArgs,
    screen: &mut Screen,
) -> Result<(Value, mpsc::UnboundedReceiver<Feed>), String> {
    let text = |e: ApiError| e.to_string();
    if let Some(id) = &args.session {
        let session = client.session(id).await.map_err(text)?;
        let last = session["lastSeq"].as_u64().unwrap_or_default();
        let events = follow::spawn(client.clone(), id.clone(), last);
        let session = if matches!(session["status"].as_str(), Some("stopped" | "failed")) {
            screen.note(&format!("resuming session {id}…"));
            client.resume(id).await.map_err(text)?
        } else {
            session
        };
        return Ok((session, events));
    }
    let metadata = match &args.metadata {
        None => None,
        Some(json) => match serde_json::from_str::<Value>(json) {
            Ok(value @ Value::Object(_)) => Some(value),
            _ => return Err(format!("--metadata must be a JSON object, got {json}")),
        },
    };
    let profile = match &args.profile {
        Some(profile) => profile.clone(),
        None => only_profile(client).await?,
    };
    screen.note(&format!("starting a session of {profile}…"));
    let session = client.create(&profile, metadata).await.map_err(text)?;
    let id = session["id"].as_str().unwrap_or_default().to_owned();
    let last = session["lastSeq"].as_u64().unwrap_or_default();
    Ok((session, follow::spawn(client.clone(), id, last)))
}

/// The profile to use when none is named: the only one there is.
async fn only_profile(client: &Client) -> Result<String, String> {
    let mut names = client.profiles().await.map_err(|e| e.to_string())?;
    match names.len() {
        1 => Ok(names.remove(0)),
        0 => {
            Err("the runtime has no profile; add one with `agent-runtime profiles new NAME`".into())
        }
        _ => Err(format!(
            "name a profile: agent-runtime chat PROFILE (one of {})",
            names.join(", ")
        )),
    }
}

/// Lines of stdin, read on a thread of their own; the channel closes at its end.
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// One message per Ctrl-C.
fn interrupts() -> mpsc::UnboundedReceiver<()> {
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if sender.send(()).is_err() {
                break;
            }
        }
    });
    receiver
}

/// The chat's state.
struct Chat {
    client: Client,
    id: String,
    screen: Screen,
    interactive: bool,
    /// Seqs of the `input` events of the messages sent from here.
    own: HashSet<u64>,
    /// The seq of the `input` event of the message whose turn runs.
    turn: Option<u64>,
    /// Ctrl-C was pressed during this turn.
    interrupting: bool,
    /// Requests for a person not asked yet, oldest first.
    requests: VecDeque<Value>,
    /// Ids of requests that have an `answer` event.
    closed: HashSet<String>,
    /// The request being asked.
    asking: Option<Asking>,
}

impl Chat {
    async fn run(
        &mut self,
        mut events: mpsc::UnboundedReceiver<Feed>,
        mut lines: mpsc::UnboundedReceiver<String>,
        mut interrupts: mpsc::UnboundedReceiver<()>,
    ) -> ExitCode {
        let mut stdin_open = true;
        let mut prompted = false;
        loop {
            self.next_request();
            let wants_line = self.asking.is_some() || self.turn.is_none();
            if wants_line && !stdin_open {
                if self.asking.is_some() {
                    self.screen.note(
                        "stdin ended; the request stays pending for another client to answer",
                    );
                }
                return ExitCode::SUCCESS;
            }
            if self.interactive && wants_line && self.asking.is_none() && !prompted {
                self.screen.prompt();
                prompted = true;
            }
            tokio::select! {
                feed = events.recv() => match feed {
                    Some(Feed::Event(envelope)) => {
                        if self.event(&envelope) {
                            prompted = false;
                        }
                        self.ask_again_if_moved();
                    }
                    Some(Feed::Lost(reason)) => {
                        self.screen.note(&format!("connection lost ({reason}); reconnecting…"));
                        prompted = false;
                    }
                    Some(Feed::Back) => {
                        self.screen.note("reconnected");
                        prompted = false;
                    }
                    Some(Feed::Gone(reason)) => {
                        self.screen.error(&format!("cannot follow the session any more: {reason}"));
                        return ExitCode::FAILURE;
                    }
                    None => {
                        let reason = "the event stream ended";
                        self.screen.error(&format!("cannot follow the session any more: {reason}"));
                        return ExitCode::FAILURE;
                    }
                },
                line = lines.recv(), if wants_line => match line {
                    None => stdin_open = false,
                    Some(line) => {
                        self.screen.answered();
                        prompted = false;
                        self.line(&line).await;
                    }
                },
                Some(()) = interrupts.recv() => {
                    if self.turn.is_none() || self.interrupting {
                        self.screen.end_line();
                        return ExitCode::from(INTERRUPTED);
                    }
                    self.interrupting = true;
                    self.screen.interrupting();
                    self.screen.note("interrupting the turn (Ctrl-C again to quit)");
                    if let Err(error) = self.client.interrupt(&self.id).await {
                        self.screen.error(&error.to_string());
                    }
                }
            }
        }
    }

    /// On a terminal, asks the request being asked again when a line of output pushed
    /// its question up.
    fn ask_again_if_moved(&mut self) {
        if let Some(asking) = &self.asking
            && self.interactive
            && !self.screen.mid_line()
        {
            let prompt = asking.prompt();
            self.screen.ask(&prompt);
        }
    }

    /// Starts asking the oldest request not closed yet, if none is being asked.
    fn next_request(&mut self) {
        while self.asking.is_none() {
            let Some(envelope) = self.requests.pop_front() else {
                return;
            };
            let Some(asking) = Asking::new(&envelope) else {
                continue;
            };
            if self.closed.contains(&asking.request_id) {
                continue;
            }
            self.screen.ask(&asking.prompt());
            self.asking = Some(asking);
        }
    }

    /// Shows an event and follows its effect; true if it printed something that calls
    /// for the prompt again.
    fn event(&mut self, envelope: &Value) -> bool {
        let seq = envelope["seq"].as_u64().unwrap_or_default();
        let data = &envelope["data"];
        let prompt_shown = self.asking.is_none();
        self.screen.event(envelope, &self.own);
        match envelope["type"].as_str().unwrap_or_default() {
            "permission" | "question" => self.requests.push_back(envelope.clone()),
            "answer" => {
                let request_id = data["requestId"].as_str().unwrap_or_default().to_owned();
                if self
                    .asking
                    .as_ref()
                    .is_some_and(|a| a.request_id == request_id)
                {
                    self.asking = None;
                }
                self.closed.insert(request_id);
            }
            "status" => {
                let ended = matches!(data["status"].as_str(), Some("idle" | "stopped" | "failed"));
                if ended && self.turn.is_some_and(|input| seq > input) {
                    self.turn = None;
                    self.interrupting = false;
                }
            }
            _ => {}
        }
        prompt_shown
    }

    /// A line of the person's: an answer to the request being asked, or a message.
    async fn line(&mut self, line: &str) {
        if !self.interactive {
            // A terminal echoes what is typed; a transcript of piped input shows it too.
            let echo = if self.asking.is_some() {
                line.to_owned()
            } else {
                format!("> {line}")
            };
            self.screen.line(&echo);
        }
        if let Some(asking) = &mut self.asking {
            match asking.take(line) {
                Step::Again(prompt) => self.screen.ask(&prompt),
                Step::Done(answer) => {
                    self.asking = None;
                    match self.client.answer(&self.id, answer).await {
                        Ok(()) => {}
                        Err(error)
                            if matches!(
                                error.code(),
                                Some("request_closed" | "request_not_found")
                            ) =>
                        {
                            self.screen.note("that request was closed already");
                        }
                        Err(error) => self.screen.error(&error.to_string()),
                    }
                }
            }
            return;
        }
        let text = line.trim();
        if text.is_empty() {
            return;
        }
        match self.client.send(&self.id, text).await {
            Ok(seq) => {
                self.own.insert(seq);
                self.turn = Some(seq);
            }
            Err(error) => self.screen.error(&error.to_string()),
        }
    }
}
