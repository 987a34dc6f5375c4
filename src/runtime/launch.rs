//! Bringing a session to life: profile → sandbox → agent → ready. Shared by create and
//! resume; the difference is where the workspace and the conversation come from.

use std::sync::Arc;

use agent_runtime_api::{FileTree, RelPath, Sandbox, SandboxDir, SandboxSpec, SessionRecord};

use super::actor::{AgentIo, Launched, collect_stderr};
use super::workspace;
use super::{Inner, StartTimings};
use crate::agent::{
    AgentLine, AgentStart, Conversation, Line, LineReader, PreparedAgent, RuntimeTools,
};
use crate::error::{ErrorCode, RuntimeError};
use crate::profiles::{OnUnlistedTool, Profile, RenderContext, RenderedProfile};
use crate::tools::ToolSession;

/// Whether the session is new or continues from what storage holds of it (a resume, and
/// a fork's first start: a fork's files and transcript were copied under its id).
pub(crate) enum Start {
    New,
    Resume,
}

/// The stored transcript a session's agent continues from.
enum Continued {
    /// The session's own conversation: resumed as it is.
    Own(bytes::Bytes),
    /// The source's conversation of a fork that has no transcript of its own yet: it
    /// goes on under the session's own conversation id.
    Base {
        agent_session_id: String,
        bytes: bytes::Bytes,
    },
}

/// Loads and parses the profile named `agent_type`.
pub(crate) async fn load_profile(inner: &Inner, agent_type: &str) -> Result<Profile, RuntimeError> {
    Ok(Profile::load(inner.adapters.profiles.as_ref(), agent_type).await?)
}

/// Renders the profile for this session.
pub(crate) fn render(
    inner: &Inner,
    profile: &Profile,
    record: &SessionRecord,
) -> Result<RenderedProfile, RuntimeError> {
    let context = RenderContext {
        session_id: &record.id,
        metadata: &record.metadata,
        vars: &inner.settings.vars,
    };
    Ok(profile.render(&context)?)
}

/// Creates the sandbox, starts the agent and waits until it answers `initialize`.
/// On failure, whatever was created is torn down again.
pub(crate) async fn launch(
    inner: &Arc<Inner>,
    record: &SessionRecord,
    rendered: RenderedProfile,
    start: Start,
) -> Result<Launched, RuntimeError> {
    let key = session_key(&record.id)?;
    let mut clock = PhaseClock::start();
    let blobs = inner.adapters.blobs.as_ref();
    let mut workspace_files = rendered.workspace.clone();
    let mut transcript = None;
    let mut stored = FileTree::default();
    let mut stale_control: Vec<RelPath> = Vec::new();
    if let Start::Resume = start {
        // Stored files win over the profile's: the agent may have edited them. Not the
        // control files, which are the profile's alone: an agent must not leave itself
        // hooks or permissions for its next life.
        stored = workspace::restore_workspace(blobs, &key)
            .await
            .map_err(|e| RuntimeError::storage("restoring the workspace", e))?;
        let (control, kept) = std::mem::take(&mut stored.files)
            .into_iter()
            .partition(|file| inner.agent.is_control_file(&file.path));
        stored.files = kept;
        stale_control = control.into_iter().map(|file| file.path).collect();
        for file in &stored.files {
            workspace_files.insert(file.path.clone(), file.contents.clone());
        }
        transcript = stored_conversation(blobs, &key, record)
            .await
            .map_err(|e| RuntimeError::storage("restoring the transcript", e))?;
    }
    let mut env = inner.settings.sandbox_env.clone();
    env.extend(rendered.env.clone());
    let spec = SandboxSpec {
        session_id: record.id.clone(),
        owner_tag: inner.settings.instance_tag.clone(),
        profile: rendered.name.clone(),
        workspace: workspace_files,
        agent_home: FileTree::default(),
        env,
    };
    let prepare = clock.lap();
    let sandbox: Arc<dyn Sandbox> = inner
        .adapters
        .sandboxes
        .create(&spec)
        .await
        .map_err(|e| {
            RuntimeError::new(
                ErrorCode::SandboxFailed,
                format!("creating the sandbox failed: {e}"),
            )
        })?
        .into();
    let sandbox_time = clock.lap();
    match start_agent(inner, record, &rendered, sandbox.clone(), transcript).await {
        Ok((io, new_agent_session_id)) => {
            let timings = StartTimings {
                prepare,
                sandbox: sandbox_time,
                agent: clock.lap(),
            };
            let snapshot =
                workspace::snapshot(sandbox.as_ref(), inner.settings.limits.workspace_files)
                    .await
                    .unwrap_or_default();
            // What was just restored is what the store holds. The agent's control files
            // it also holds are replaced or removed by the next sync.
            let mut synced = workspace::synced_from(&stored, &snapshot);
            for path in stale_control {
                synced.insert(path, workspace::SyncedFile::stale());
            }
            Ok(Launched {
                ask: rendered.on_unlisted_tool == OnUnlistedTool::Ask,
                answer_timeout: rendered.answer_timeout,
                key,
                new_agent_session_id,
                sandbox,
                io,
                snapshot,
                synced,
                timings,
            })
        }
        Err(error) => {
            inner.revoke_tools(&record.id);
            if let Err(e) = sandbox.terminate().await {
                tracing::warn!(session_id = %record.id, error = %e, "terminating a failed sandbox failed");
            }
            Err(error)
        }
    }
}

/// The transcript the agent of a stored session continues from: its own conversation's,
/// else, for a fork that has none yet, the one copied from its source.
async fn stored_conversation(
    blobs: &dyn agent_runtime_api::BlobStore,
    key: &RelPath,
    record: &SessionRecord,
) -> Result<Option<Continued>, agent_runtime_api::AdapterError> {
    if let Some(agent_id) = &record.agent_session_id
        && let Some(bytes) = workspace::restore_transcript(blobs, key, agent_id).await?
    {
        return Ok(Some(Continued::Own(bytes)));
    }
    let base = record.forked_from.as_ref();
    if let Some(base) = base.and_then(|from| from.agent_session_id.as_deref())
        && let Some(bytes) = workspace::restore_transcript(blobs, key, base).await?
    {
        return Ok(Some(Continued::Base {
            agent_session_id: base.to_owned(),
            bytes,
        }));
    }
    Ok(None)
}

/// Measures consecutive phases.
struct PhaseClock(std::time::Instant);

impl PhaseClock {
    fn start() -> Self {
        Self(std::time::Instant::now())
    }

    /// The time since the last lap (or the start).
    fn lap(&mut self) -> std::time::Duration {
        let now = std::time::Instant::now();
        now - std::mem::replace(&mut self.0, now)
    }
}

/// The session id as a storage path component.
pub(crate) fn session_key(id: &str) -> Result<RelPath, RuntimeError> {
    RelPath::new(id).map_err(|e| RuntimeError::invalid(format!("sessionId: {e}")))
}

/// Starts the agent; returns its process and, when it starts a new conversation, the
/// conversation id the runtime chose for it.
async fn start_agent(
    inner: &Inner,
    record: &SessionRecord,
    rendered: &RenderedProfile,
    sandbox: Arc<dyn Sandbox>,
    transcript: Option<Continued>,
) -> Result<(AgentIo, Option<String>), RuntimeError> {
    let mut new_agent_session_id = None;
    let mut fresh_id = || {
        let id = uuid::Uuid::new_v4().to_string();
        new_agent_session_id = Some(id.clone());
        id
    };
    let conversation = match (transcript, &record.agent_session_id) {
        (Some(Continued::Own(transcript)), Some(id)) => Conversation::Resume {
            id: id.clone(),
            transcript,
        },
        (
            Some(Continued::Base {
                agent_session_id: base,
                bytes,
            }),
            own,
        ) => Conversation::Fork {
            id: match own {
                Some(own) if *own != base => own.clone(),
                _ => fresh_id(),
            },
            base,
            transcript: bytes,
        },
        // Nothing to continue: a fresh conversation, under a fresh id.
        _ => Conversation::New { id: fresh_id() },
    };
    let start = AgentStart {
        profile: rendered,
        workspace_path: sandbox.workspace_path(),
        home: sandbox.agent_home_path(),
        conversation,
        runtime_tools: runtime_tools(inner, record, rendered)?,
    };
    let PreparedAgent {
        home_files,
        command,
        protocol,
    } = inner
        .agent
        .prepare(&start)
        .map_err(|e| RuntimeError::new(ErrorCode::AgentFailed, e))?;
    sandbox
        .write_files(SandboxDir::AgentHome, &home_files)
        .await
        .map_err(|e| {
            RuntimeError::new(
                ErrorCode::SandboxFailed,
                format!("writing the agent's config failed: {e}"),
            )
        })?;
    let process = sandbox.spawn(&command).await.map_err(|e| {
        RuntimeError::new(
            ErrorCode::AgentFailed,
            format!("starting the agent `{}` failed: {e}", command.program),
        )
    })?;
    let stderr_tail = collect_stderr(record.id.as_str().into(), process.stderr);
    let mut io = AgentIo {
        stdin: Some(process.stdin),
        stdout: LineReader::new(process.stdout, inner.settings.limits.line_bytes),
        exit: process.exit,
        stderr_tail,
        protocol,
    };
    wait_ready(inner, &mut io).await?;
    Ok((io, new_agent_session_id))
}

/// Sends `initialize` and waits for its answer: the agent is ready for messages.
async fn wait_ready(inner: &Inner, io: &mut AgentIo) -> Result<(), RuntimeError> {
    use tokio::io::AsyncWriteExt;
    let line = io.protocol.initialize("init");
    let stdin = io.stdin.as_mut().expect("stdin is open at start");
    let wrote = async {
        stdin.write_all(line.as_bytes()).await?;
        stdin.flush().await
    };
    let failed = |io: &AgentIo, what: String| {
        let stderr = io
            .stderr_tail
            .lock()
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        let detail = if stderr.is_empty() {
            String::new()
        } else {
            format!(": {stderr}")
        };
        RuntimeError::new(ErrorCode::AgentFailed, format!("{what}{detail}"))
    };
    if let Err(error) = wrote.await {
        // Give stderr a moment to say why the agent is gone.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        return Err(failed(
            io,
            format!("the agent did not accept input ({error})"),
        ));
    }
    let answered = async {
        loop {
            tokio::select! {
                line = io.stdout.next_line() => match line {
                    Ok(Some(Line::Text(text))) => {
                        if let Ok(AgentLine::ControlResponse { request_id, error }) = io.protocol.parse_line(text).map(|line| line.meaning)
                            && request_id == "init"
                        {
                            return error.map_or(Ok(()), |e| Err(format!("the agent refused to initialize: {e}")));
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return Err("the agent closed its output before it was ready".to_owned()),
                },
                status = &mut io.exit => return Err(format!("the agent exited before it was ready ({status})")),
            }
        }
    };
    match tokio::time::timeout(inner.settings.agent_ready_timeout, answered).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(what)) => {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Err(failed(io, what))
        }
        Err(_) => Err(failed(
            io,
            format!(
                "the agent did not answer initialize within {:?}",
                inner.settings.agent_ready_timeout
            ),
        )),
    }
}

/// The runtime's own MCP server for this session's `[[tools]]`, with a token that lets
/// the sandbox call exactly those tools while it lives.
fn runtime_tools(
    inner: &Inner,
    record: &SessionRecord,
    rendered: &RenderedProfile,
) -> Result<Option<RuntimeTools>, RuntimeError> {
    if rendered.tools.is_empty() {
        return Ok(None);
    }
    let Some(host) = &inner.settings.tools else {
        tracing::warn!(session_id = %record.id, "the profile declares tools, but this runtime serves none");
        return Ok(None);
    };
    let session = ToolSession {
        session_id: record.id.clone(),
        tools: rendered.tools.clone(),
        context: rendered.variables.clone(),
    };
    let token = host
        .sessions
        .issue(session)
        .map_err(|e| RuntimeError::internal("issuing the session's tool token", e))?;
    Ok(Some(RuntimeTools {
        url: format!("{}{}", host.base_url, crate::tools::MCP_PATH),
        token,
    }))
}
