//! The actor that owns one live session: its sandbox, its agent process and its
//! [`SessionLog`]. Through the log it alone writes the session's events and record while
//! the session is live, so neither needs a lock.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use agent_runtime_api::{
    AdapterError, ErrorKind, ExitStatus, RelPath, Sandbox, SandboxDir, SessionRecord, SessionStatus,
};
use chrono::Utc;
use serde_json::value::RawValue;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::budget;
use super::log::SessionLog;
use super::payload::EventErrorCode;
use super::workspace::{self, Snapshot, Synced};
use super::{FileDownload, FileInfo, Inner, MessageAccepted, MessageContent};
use crate::agent::{AgentLine, AgentProtocol, Line, LineReader, NotAnObject, TurnResult};
use crate::error::{ErrorCode, RuntimeError};

mod ending;
mod fork;
mod output;
mod requests;
mod sync;

pub(crate) use fork::ForkPoint;
pub(crate) use output::collect_stderr;
pub(crate) use requests::PendingView;
use requests::Requests;
use sync::wait_sync;

/// How long a stopping agent gets to exit after its stdin closed.
const EXIT_GRACE: Duration = Duration::from_secs(10);
/// How long a stopping session waits for storage to come back for its final sync.
const FINAL_SYNC_PATIENCE: Duration = Duration::from_secs(60);
/// The most messages waiting for one session's agent; more are refused.
const MAX_QUEUED_MESSAGES: usize = 100;
/// The most stderr kept for error messages.
const STDERR_TAIL_BYTES: usize = 4096;

type Reply<T> = oneshot::Sender<Result<T, RuntimeError>>;

/// What the rest of the runtime can ask of a live session.
pub(crate) enum Command {
    Message {
        message_id: String,
        content: MessageContent,
        reply: Reply<MessageAccepted>,
        /// Gets the turn's `result` line, when the caller waits for it.
        done: Option<oneshot::Sender<Box<RawValue>>>,
    },
    Interrupt {
        reply: Reply<SessionRecord>,
    },
    /// An admin sets new limits; the reply is the saved record.
    SetBudget {
        budget: agent_runtime_api::Budget,
        reply: Reply<SessionRecord>,
    },
    Stop {
        reason: &'static str,
        /// Stop only if nothing happened in the session for this long (the idle sweeper's
        /// stop; a message may have arrived since it looked).
        idle_for: Option<Duration>,
        reply: Reply<SessionRecord>,
    },
    Record {
        reply: Reply<SessionRecord>,
    },
    Files {
        reply: Reply<Vec<FileInfo>>,
    },
    ReadFile {
        path: RelPath,
        reply: Reply<FileDownload>,
    },
    /// A client answers a request of the agent's.
    Answer {
        request_id: String,
        /// The principal who answers, named in the `answer` event.
        by: Arc<str>,
        answer: super::Answer,
        /// The `answer` event's seq.
        reply: Reply<u64>,
    },
    /// Copy the idle session's workspace files and transcript under the fork's key
    /// `into`; the reply says where the fork starts.
    Fork {
        into: RelPath,
        reply: Reply<ForkPoint>,
    },
    /// A runtime-served tool failed; the session's clients hear of it.
    ToolFailed {
        tool: String,
        message: String,
    },
}

/// The manager's handle on a live session.
#[derive(Clone)]
pub(crate) struct SessionHandle {
    pub(crate) owner: Arc<str>,
    pub(crate) commands: mpsc::Sender<Command>,
    /// Unix millis of the last message or agent output; read by the idle sweeper.
    pub(crate) last_activity: Arc<AtomicI64>,
    /// Whether a turn runs or messages wait; a busy session is never idle. A turn that
    /// waits for a person's answer is running, so it is busy too.
    pub(crate) busy: Arc<AtomicBool>,
    /// The request events that wait for an answer, as the actor last published them.
    pub(crate) pending: PendingView,
}

impl SessionHandle {
    /// Resolves once the session's actor is gone: it left the live set and let go of
    /// the record after its last save. An ending actor refuses commands (its channel is
    /// closed) before it is gone; what comes after it must wait for this.
    pub(crate) async fn ended(&self) {
        // The pending view's sender is the actor's; it is dropped with the actor.
        let mut actor_alive = self.pending.clone();
        while actor_alive.changed().await.is_ok() {}
    }
}

/// The running agent process, as the actor holds it.
pub(crate) struct AgentIo {
    pub(crate) stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    pub(crate) stdout: LineReader,
    pub(crate) exit: Pin<Box<dyn std::future::Future<Output = ExitStatus> + Send>>,
    pub(crate) stderr_tail: Arc<std::sync::Mutex<String>>,
    /// The process's stdio protocol.
    pub(crate) protocol: Box<dyn AgentProtocol>,
}

/// What launching a session made: everything an actor starts with but its log.
pub(crate) struct Launched {
    pub(crate) key: RelPath,
    /// Whether the profile relays the agent's permission requests to the clients.
    pub(crate) ask: bool,
    /// How long a relayed request waits for an answer.
    pub(crate) answer_timeout: Duration,
    /// The conversation id the runtime chose, when the agent started a new one.
    pub(crate) new_agent_session_id: Option<String>,
    pub(crate) sandbox: Arc<dyn Sandbox>,
    pub(crate) io: AgentIo,
    pub(crate) snapshot: Snapshot,
    pub(crate) synced: Synced,
    /// How long bringing the session up took.
    pub(crate) timings: super::StartTimings,
}

pub(crate) struct Actor {
    inner: Arc<Inner>,
    id: Arc<str>,
    key: RelPath,
    log: SessionLog,
    /// Whether the profile relays the agent's permission requests to the clients.
    ask: bool,
    /// How long a relayed request waits for an answer.
    answer_timeout: Duration,
    /// The agent's requests that wait for a person.
    requests: Requests,
    /// What the agent is told with the next message it gets: the requests of its last
    /// life that expired unanswered (set on resume).
    note: Option<String>,
    sandbox: Arc<dyn Sandbox>,
    io: AgentIo,
    /// Messages accepted but not yet sent to the agent, with their waiters.
    queue: VecDeque<Queued>,
    turn_active: bool,
    /// Set once the session is ending: turns that end now start nothing new.
    stopping: bool,
    /// Whether the runtime interrupted the running turn (its failure is then expected).
    interrupted: bool,
    /// Whoever waits for the running turn's `result`.
    turn_waiter: Option<oneshot::Sender<Box<RawValue>>>,
    /// The workspace after the last turn, for `file` events.
    snapshot: Snapshot,
    /// The workspace as the blob store holds it.
    synced: Synced,
    periodic_sync: Option<JoinHandle<sync::SyncDone>>,
    /// The files the last sync left out, as reported.
    skipped: std::collections::BTreeSet<workspace::Skipped>,
    /// Whether the last periodic sync failed.
    sync_failing: bool,
    /// Whether the last listing of the workspace found more files than the limit.
    too_many_files: bool,
    last_activity: Arc<AtomicI64>,
    busy: Arc<AtomicBool>,
    stdout_open: bool,
    /// The uuid of the agent's last `assistant` line in this life: the transcript a fork
    /// copies must hold it.
    last_assistant: Option<String>,
}

/// A message accepted but not yet sent to the agent.
struct Queued {
    message_id: String,
    content: MessageContent,
    /// Whoever waits for the `result` of the turn it starts.
    done: Option<oneshot::Sender<Box<RawValue>>>,
}

/// Why the actor's loop ended.
enum Ended {
    Stopped(&'static str, Reply<SessionRecord>),
    Exited(ExitStatus),
    Abandoned,
}

impl Actor {
    /// Makes the actor; [`Actor::run`] drives it.
    pub(crate) fn new(
        inner: Arc<Inner>,
        log: SessionLog,
        parts: Launched,
    ) -> (Self, SessionHandle, mpsc::Receiver<Command>) {
        let (commands, receiver) = mpsc::channel(64);
        let last_activity = Arc::new(AtomicI64::new(Utc::now().timestamp_millis()));
        let busy = Arc::new(AtomicBool::new(false));
        let (requests, pending) = Requests::new(inner.metrics.clone());
        let handle = SessionHandle {
            owner: log.record().owner.as_str().into(),
            commands,
            last_activity: last_activity.clone(),
            busy: busy.clone(),
            pending,
        };
        let actor = Actor {
            inner,
            id: log.id().clone(),
            key: parts.key,
            log,
            ask: parts.ask,
            answer_timeout: parts.answer_timeout,
            requests,
            note: None,
            sandbox: parts.sandbox,
            io: parts.io,
            queue: VecDeque::new(),
            turn_active: false,
            turn_waiter: None,
            interrupted: false,
            stopping: false,
            snapshot: parts.snapshot,
            synced: parts.synced,
            periodic_sync: None,
            skipped: Default::default(),
            sync_failing: false,
            too_many_files: false,
            last_activity,
            busy,
            stdout_open: true,
            last_assistant: None,
        };
        (actor, handle, receiver)
    }

    /// Sets what the agent is told before its next message (see [`Actor::note`]).
    pub(crate) fn tell_next_turn(&mut self, note: Option<String>) {
        self.note = note;
    }

    /// Marks the freshly started session ready for messages.
    pub(crate) async fn become_ready(&mut self) {
        self.log.transition(SessionStatus::Idle, None).await;
    }

    /// The current record (as persisted at the last status change, plus the live seq).
    pub(crate) fn record(&self) -> &SessionRecord {
        self.log.record()
    }

    /// Runs the session until it stops, fails or the runtime drops it.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut sync_timer = tokio::time::interval(self.inner.settings.sync_interval);
        sync_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        sync_timer.tick().await;
        let ended = loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Stop { reason, idle_for, reply }) => {
                        if idle_for.is_none_or(|idle_for| self.idle_for(idle_for)) {
                            break Ended::Stopped(reason, reply);
                        }
                        let _ = reply.send(Ok(self.record().clone()));
                    }
                    Some(command) => self.handle(command).await,
                    None => break Ended::Abandoned,
                },
                line = self.io.stdout.next_line(), if self.stdout_open => self.on_output(line).await,
                status = &mut self.io.exit => break Ended::Exited(status),
                () = requests::until(self.requests.next_deadline()) => self.expire_due().await,
                _ = sync_timer.tick(), if self.periodic_sync.is_none() => self.start_periodic_sync(),
                done = wait_sync(&mut self.periodic_sync) => self.finish_periodic_sync(done).await,
            }
        };
        // No new command is taken from here on. Callers whose commands were still queued
        // see their reply dropped, like a closed channel, and fall back to the stored
        // record or resume the session once this end is over.
        commands.close();
        while let Ok(command) = commands.try_recv() {
            drop(command);
        }
        self.stopping = true;
        match ended {
            Ended::Stopped(reason, reply) => {
                let result = self.stop(reason).await;
                let _ = reply.send(result);
            }
            Ended::Exited(status) => self.on_crash(status).await,
            Ended::Abandoned => {
                let _ = self.stop("shutdown").await;
            }
        }
    }

    /// Whether no turn runs and nothing happened for `duration`.
    fn idle_for(&self, duration: Duration) -> bool {
        let quiet_ms = Utc::now().timestamp_millis() - self.last_activity.load(Ordering::Relaxed);
        !self.busy.load(Ordering::Relaxed) && quiet_ms >= duration.as_millis() as i64
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Message {
                message_id,
                content,
                reply,
                done,
            } => {
                if let Some(refused) = budget::refusal(self.record()) {
                    let _ = reply.send(Err(refused));
                    return;
                }
                if self.queue.len() >= MAX_QUEUED_MESSAGES {
                    let refused = RuntimeError::new(
                        ErrorCode::CapacityExceeded,
                        format!(
                            "{MAX_QUEUED_MESSAGES} messages already wait for this session's agent; retry when it caught up"
                        ),
                    );
                    let _ = reply.send(Err(refused));
                    return;
                }
                let seq = self.log.input(&message_id, content.as_json()).await;
                let _ = reply.send(Ok(MessageAccepted {
                    message_id: message_id.clone(),
                    seq,
                }));
                self.touch();
                self.queue.push_back(Queued {
                    message_id,
                    content,
                    done,
                });
                if !self.turn_active {
                    self.dispatch_next().await;
                }
            }
            Command::Interrupt { reply } => {
                if self.turn_active {
                    self.interrupted = true;
                    // The log's seq makes each interrupt's request id its own.
                    let line = self
                        .io
                        .protocol
                        .interrupt(&format!("interrupt-{}", self.log.last_seq() + 1));
                    self.write_stdin(&line).await;
                }
                let _ = reply.send(Ok(self.record().clone()));
            }
            Command::SetBudget { budget, reply } => {
                self.log.set_budget(budget).await;
                let _ = reply.send(Ok(self.record().clone()));
            }
            Command::Record { reply } => {
                let _ = reply.send(Ok(self.record().clone()));
            }
            Command::Files { reply } => {
                let files = workspace::snapshot(
                    self.sandbox.as_ref(),
                    self.inner.settings.limits.workspace_files,
                )
                .await
                .map(|snapshot| {
                    snapshot
                        .into_iter()
                        .map(|(path, (size, modified_at))| FileInfo {
                            path: path.to_string(),
                            size,
                            modified_at,
                        })
                        .collect()
                })
                .map_err(|e| {
                    RuntimeError::new(
                        ErrorCode::SandboxFailed,
                        format!("listing files failed: {e}"),
                    )
                });
                let _ = reply.send(files);
            }
            Command::ReadFile { path, reply } => {
                let limit = self.inner.settings.limits.file_bytes;
                let file = self
                    .sandbox
                    .open_file(SandboxDir::Workspace, &path, limit)
                    .await
                    .map(|file| FileDownload {
                        size: file.size,
                        body: file.reader,
                    })
                    .map_err(|e| match e.kind() {
                        ErrorKind::NotFound => {
                            RuntimeError::new(ErrorCode::NotFound, format!("no file {path}"))
                        }
                        ErrorKind::TooLarge => RuntimeError::file_too_large(&path, limit),
                        // A directory, a FIFO, a symlink out of the sandbox: nothing to give.
                        ErrorKind::InvalidInput => RuntimeError::new(
                            ErrorCode::NotFound,
                            format!("{path} is not a regular file of the workspace"),
                        ),
                        _ => RuntimeError::new(
                            ErrorCode::SandboxFailed,
                            format!("reading {path} failed: {e}"),
                        ),
                    });
                let _ = reply.send(file);
            }
            Command::Answer {
                request_id,
                by,
                answer,
                reply,
            } => {
                let answered = self.answer(&request_id, &by, answer).await;
                let _ = reply.send(answered);
            }
            Command::Fork { into, reply } => {
                let _ = reply.send(self.fork_into(&into).await);
            }
            Command::ToolFailed { tool, message } => {
                let message = format!("the tool {tool} failed: {message}");
                self.log
                    .error(EventErrorCode::ToolFailed, &message, false)
                    .await;
            }
            Command::Stop { .. } => unreachable!("handled by the loop"),
        }
    }

    /// Sends the next queued message to the agent.
    async fn dispatch_next(&mut self) {
        let Some(Queued {
            content,
            done: waiter,
            ..
        }) = self.queue.pop_front()
        else {
            return;
        };
        self.turn_active = true;
        self.interrupted = false;
        self.turn_waiter = waiter;
        self.busy.store(true, Ordering::Relaxed);
        let line = match self.note.take() {
            Some(note) => self
                .io
                .protocol
                .user_message(&requests::with_note(&note, content.as_json())),
            None => self.io.protocol.user_message(content.as_json()),
        };
        self.write_stdin(&line).await;
        if self.record().status != SessionStatus::Running {
            self.log.transition(SessionStatus::Running, None).await;
        }
    }

    /// Writes one line to the agent. A failed write means the agent is gone; its exit is
    /// reported by the loop, so here it is only logged.
    async fn write_stdin(&mut self, line: &str) {
        let Some(stdin) = self.io.stdin.as_mut() else {
            return;
        };
        let written = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await
        };
        if let Err(error) = written.await {
            tracing::warn!(session_id = %self.id, %error, "writing to the agent failed");
        }
    }

    fn touch(&self) {
        self.last_activity
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }
}
