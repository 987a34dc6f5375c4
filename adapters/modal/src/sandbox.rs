//! One Modal sandbox: files and processes through its command router, terminate through
//! the control plane.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::{
    AdapterError, AdapterResult, AgentProcess, CommandSpec, ExitStatus, FileStat, FileTree,
    RelPath, Sandbox, SandboxDir, async_trait,
};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::config::SESSION_TAG;
use crate::control::{Call, ControlPlane};
use crate::files;
use crate::grpc::adapter_error;
use crate::life::Life;
use crate::proto::{self, rpc};
use crate::router::Router;

/// How long a file transfer may take.
const TRANSFER_DEADLINE: Duration = Duration::from_secs(600);
/// How long `terminate` waits to see the sandbox end.
const TERMINATE_PATIENCE: Duration = Duration::from_secs(15);

/// What is known about a sandbox when a handle on it is made.
pub(crate) struct Parts {
    pub id: String,
    pub task_id: String,
    pub workspace: String,
    pub agent_home: String,
    pub sandbox_token: Option<String>,
    pub access: Option<proto::CommandRouterAccess>,
    /// The Modal environment, for `SandboxTagsSetV2`.
    pub environment: String,
    /// The sandbox's tags, all of which `assign` sends again.
    pub tags: Vec<proto::SandboxTag>,
}

/// A handle on one sandbox. Handles on the same sandbox may coexist.
pub(crate) struct ModalSandbox {
    id: String,
    task_id: String,
    workspace: String,
    agent_home: String,
    sandbox_token: Option<String>,
    control: Arc<ControlPlane>,
    router: Arc<Router>,
    /// Watches the sandbox while this handle or any of its processes lives.
    life: Life,
    environment: String,
    /// The sandbox's tags as last set.
    tags: std::sync::Mutex<Vec<proto::SandboxTag>>,
}

/// What a command printed and how it ended.
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: ExitStatus,
}

impl ModalSandbox {
    /// A handle; starts watching the sandbox.
    pub fn new(control: Arc<ControlPlane>, parts: Parts) -> AdapterResult<Self> {
        let router = Router::new(
            Arc::clone(&control),
            parts.id.clone(),
            parts.sandbox_token.clone(),
            parts.access,
        )?;
        let life = Life::watch(
            Arc::clone(&control),
            parts.id.clone(),
            parts.sandbox_token.clone(),
        );
        Ok(ModalSandbox {
            id: parts.id,
            task_id: parts.task_id,
            workspace: parts.workspace,
            agent_home: parts.agent_home,
            sandbox_token: parts.sandbox_token,
            control,
            router: Arc::new(router),
            life,
            environment: parts.environment,
            tags: std::sync::Mutex::new(parts.tags),
        })
    }

    /// Creates both directories and places the initial files, in one command.
    pub async fn place(&self, workspace: &FileTree, agent_home: &FileTree) -> AdapterResult<()> {
        let trees = [
            self.placed(SandboxDir::Workspace, workspace),
            self.placed(SandboxDir::AgentHome, agent_home),
        ];
        self.unpack(&trees).await
    }

    /// The agent's home holds the token of the runtime's tools: only its owner reads it.
    fn placed<'a>(&'a self, dir: SandboxDir, tree: &'a FileTree) -> files::Placed<'a> {
        files::Placed {
            dir: self.dir(dir),
            tree,
            owner_only: dir == SandboxDir::AgentHome,
        }
    }

    fn dir(&self, dir: SandboxDir) -> &str {
        match dir {
            SandboxDir::Workspace => &self.workspace,
            SandboxDir::AgentHome => &self.agent_home,
        }
    }

    async fn unpack(&self, trees: &[files::Placed<'_>]) -> AdapterResult<()> {
        let archive = files::archive(trees)?;
        let mut args = script(files::WRITE);
        for placed in trees {
            args.push(if placed.owner_only { "700" } else { "-" }.to_owned());
            args.push(placed.dir.to_owned());
        }
        let output = self.run(args, archive).await?;
        check(&output, "writing files")
    }

    /// Runs a helper command to its end, feeding `input` to its stdin.
    async fn run(&self, args: Vec<String>, input: Vec<u8>) -> AdapterResult<Output> {
        let process = self.start(args, BTreeMap::new()).await?;
        let collected = tokio::time::timeout(TRANSFER_DEADLINE, collect(process, input)).await;
        collected.map_err(|_| {
            AdapterError::unavailable(format!(
                "a file transfer in sandbox {} took longer than {TRANSFER_DEADLINE:?}",
                self.id
            ))
        })?
    }

    async fn start(
        &self,
        args: Vec<String>,
        env: BTreeMap<String, String>,
    ) -> AdapterResult<AgentProcess> {
        if let Some(end) = self.life.has_ended() {
            return Err(AdapterError::not_found(format!(
                "sandbox {} has ended: {}",
                self.id, end.message
            )));
        }
        crate::exec::spawn(
            &self.router,
            &self.life,
            &self.task_id,
            args,
            env,
            &self.workspace,
        )
        .await
    }
}

fn script(text: &str) -> Vec<String> {
    vec![
        "sh".to_owned(),
        "-c".to_owned(),
        text.to_owned(),
        "sh".to_owned(),
    ]
}

async fn collect(mut process: AgentProcess, input: Vec<u8>) -> AdapterResult<Output> {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let feed = async {
        // A process that exits without reading all its input is judged by its status.
        let _ = process.stdin.write_all(&input).await;
        let _ = process.stdin.shutdown().await;
    };
    let (_, out, err) = tokio::join!(
        feed,
        process.stdout.read_to_end(&mut stdout),
        process.stderr.read_to_end(&mut stderr)
    );
    out.and(err)
        .map_err(|e| AdapterError::other("reading command output").with_source(e))?;
    let status = process.exit.await;
    Ok(Output {
        stdout,
        stderr,
        status,
    })
}

fn check(output: &Output, what: &str) -> AdapterResult<()> {
    if output.status.success() {
        return Ok(());
    }
    Err(AdapterError::other(format!(
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

#[async_trait]
impl Sandbox for ModalSandbox {
    fn id(&self) -> &str {
        &self.id
    }

    fn workspace_path(&self) -> &str {
        &self.workspace
    }

    fn agent_home_path(&self) -> &str {
        &self.agent_home
    }

    async fn write_files(&self, dir: SandboxDir, files: &FileTree) -> AdapterResult<()> {
        self.unpack(&[self.placed(dir, files)]).await
    }

    /// One archive and one command for all the writes; tar extracts in order, so a later
    /// write of a path replaces an earlier one.
    async fn write_batch(&self, writes: &[(SandboxDir, &FileTree)]) -> AdapterResult<()> {
        let placed: Vec<files::Placed<'_>> = writes
            .iter()
            .map(|(dir, files)| self.placed(*dir, files))
            .collect();
        self.unpack(&placed).await
    }

    async fn list_files(
        &self,
        dir: SandboxDir,
        max_entries: usize,
    ) -> AdapterResult<Vec<FileStat>> {
        let mut args = script(files::LIST);
        args.push(self.dir(dir).to_owned());
        // One record more than allowed tells a directory over the limit from one at it.
        args.push(max_entries.saturating_add(1).to_string());
        let output = self.run(args, Vec::new()).await?;
        check(&output, "listing files")?;
        let listed = files::parse_listing(&output.stdout)?;
        if listed.len() > max_entries {
            return Err(AdapterError::too_large(format!(
                "{} holds more than {max_entries} files",
                self.dir(dir)
            )));
        }
        Ok(listed)
    }

    async fn read_file(
        &self,
        dir: SandboxDir,
        path: &RelPath,
        max_bytes: u64,
    ) -> AdapterResult<Bytes> {
        let mut args = script(files::READ);
        args.push(format!("{}/{path}", self.dir(dir)));
        // One byte more than allowed tells a file over the limit from one at it.
        args.push(max_bytes.saturating_add(1).to_string());
        let output = self.run(args, Vec::new()).await?;
        if output.status.code == Some(files::MISSING) {
            return Err(AdapterError::not_found(format!(
                "{path} in sandbox {}",
                self.id
            )));
        }
        check(&output, "reading a file")?;
        if output.stdout.len() as u64 > max_bytes {
            return Err(AdapterError::too_large(format!(
                "{path} in sandbox {} has more than {max_bytes} bytes",
                self.id
            )));
        }
        Ok(Bytes::from(output.stdout))
    }

    async fn spawn(&self, command: &CommandSpec) -> AdapterResult<AgentProcess> {
        if command.program.is_empty() {
            return Err(AdapterError::invalid_input("the command has no program"));
        }
        let mut args = vec![command.program.clone()];
        args.extend(command.args.iter().cloned());
        self.start(args, command.env.clone()).await
    }

    async fn assign(&self, session_id: &str) -> AdapterResult<()> {
        let mut tags = self.tags.lock().unwrap_or_else(|e| e.into_inner()).clone();
        tags.retain(|tag| tag.tag_name != SESSION_TAG);
        tags.push(proto::SandboxTag {
            tag_name: SESSION_TAG.to_owned(),
            tag_value: session_id.to_owned(),
        });
        // `SandboxTagsSetV2` replaces the sandbox's whole tag set, it does not merge: the
        // official client (`modal` 1.6.4) documents `Sandbox.set_tags` as "Setting tags
        // replaces the Sandbox's entire tag set; passing an empty dict clears all tags",
        // and sends the caller's dict as it is, without reading the old tags first. So the
        // owner and directory tags go again with the new session tag; without them,
        // `list_owned` (recovery's reaping) and `open` would no longer find the sandbox.
        let request = proto::SandboxTagsSetRequest {
            environment_name: self.environment.clone(),
            sandbox_id: self.id.clone(),
            tags: tags.clone(),
        };
        let call = Call {
            deadline: None,
            sandbox_token: self.sandbox_token.as_deref(),
        };
        self.control
            .unary::<_, proto::Empty>(rpc::SANDBOX_TAGS_SET_V2, request, call)
            .await
            .map_err(|status| adapter_error("tagging a sandbox", &status))?;
        *self.tags.lock().unwrap_or_else(|e| e.into_inner()) = tags;
        Ok(())
    }

    async fn terminate(&self) -> AdapterResult<()> {
        let request = proto::SandboxTerminateRequest {
            sandbox_id: self.id.clone(),
        };
        let call = Call {
            deadline: None,
            sandbox_token: self.sandbox_token.as_deref(),
        };
        let answer = self
            .control
            .unary::<_, proto::SandboxTerminateResponse>(rpc::SANDBOX_TERMINATE_V2, request, call)
            .await;
        match answer {
            Ok(_) => {}
            Err(status) if status.code() == Code::NotFound => return Ok(()),
            Err(status) => return Err(adapter_error("terminating a sandbox", &status)),
        }
        // Wait until Modal reports the end, so processes' exits resolve and listings agree.
        if tokio::time::timeout(TERMINATE_PATIENCE, self.life.ended())
            .await
            .is_err()
        {
            tracing::warn!(sandbox = %self.id, "terminated sandbox not reported ended yet");
        }
        Ok(())
    }
}
