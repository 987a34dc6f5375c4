//! A command of a fake sandbox: a local process group, its output kept whole.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use agent_runtime_modal::proto::TaskExecStdioReadResponse;
use agent_runtime_modal::proto::exit_status::ExitStatus;
use rustix::process::{Pid, Signal};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Mutex, mpsc, watch};
use tonic::Status;

use super::service::Messages;

/// Largest chunk sent in one stdout or stderr message.
const CHUNK: usize = 4096;
/// The exit code of a command that could not be started, as a shell reports it.
const NOT_STARTED: i32 = 127;

/// Everything a stream has produced so far.
#[derive(Default)]
pub(super) struct Output {
    data: Vec<u8>,
    closed: bool,
}

struct Stdin {
    pipe: Option<ChildStdin>,
    written: u64,
}

/// One command.
pub(super) struct Process {
    pgid: Option<i32>,
    stdout: watch::Sender<Output>,
    stderr: watch::Sender<Output>,
    stdin: Mutex<Stdin>,
    exit: watch::Sender<Option<ExitStatus>>,
}

impl Process {
    /// Starts `args` in `cwd` with exactly `env`, in a new process group. A command that
    /// cannot start becomes one that failed with code 127 and said why on stderr.
    pub fn start(args: &[String], cwd: &Path, env: &BTreeMap<String, String>) -> Arc<Process> {
        let process = Arc::new(Process {
            pgid: None,
            stdout: watch::channel(Output::default()).0,
            stderr: watch::channel(Output::default()).0,
            stdin: Mutex::new(Stdin {
                pipe: None,
                written: 0,
            }),
            exit: watch::channel(None).0,
        });
        let Some((program, rest)) = args.split_first() else {
            return process.failed("no command given");
        };
        let mut command = Command::new(program);
        command
            .args(rest)
            .current_dir(cwd)
            .env_clear()
            .envs(env)
            .process_group(0);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match command.spawn() {
            Ok(child) => Process::running(child),
            Err(error) => process.failed(&format!("cannot run {program}: {error}")),
        }
    }

    fn failed(self: Arc<Self>, why: &str) -> Arc<Process> {
        self.stderr.send_modify(|out| {
            out.data
                .extend_from_slice(format!("fake Modal: {why}\n").as_bytes())
        });
        for output in [&self.stdout, &self.stderr] {
            output.send_modify(|out| out.closed = true);
        }
        self.exit.send_replace(Some(ExitStatus::Code(NOT_STARTED)));
        self
    }

    fn running(mut child: Child) -> Arc<Process> {
        let process = Arc::new(Process {
            pgid: child.id().and_then(|pid| i32::try_from(pid).ok()),
            stdout: watch::channel(Output::default()).0,
            stderr: watch::channel(Output::default()).0,
            stdin: Mutex::new(Stdin {
                pipe: child.stdin.take(),
                written: 0,
            }),
            exit: watch::channel(None).0,
        });
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(collect(stdout, process.stdout.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(collect(stderr, process.stderr.clone()));
        }
        let exit = process.exit.clone();
        tokio::spawn(async move {
            use std::os::unix::process::ExitStatusExt;
            let status = match child.wait().await {
                Ok(status) => match (status.code(), status.signal()) {
                    (Some(code), _) => ExitStatus::Code(code),
                    (None, Some(signal)) => ExitStatus::Signal(signal),
                    (None, None) => ExitStatus::Code(-1),
                },
                Err(_) => ExitStatus::Code(-1),
            };
            exit.send_replace(Some(status));
        });
        process
    }

    /// Kills the whole process group.
    pub fn kill(&self) {
        // The group this process leads, which the fake created; never group 1.
        if let Some(pgid) = self.pgid.filter(|pgid| *pgid > 1).and_then(Pid::from_raw) {
            // A group already gone is what was wanted.
            let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
        }
    }

    /// Writes `data` at `offset`: bytes already written are skipped, a gap is refused.
    pub async fn write_stdin(&self, offset: u64, data: &[u8], eof: bool) -> Result<(), Status> {
        let mut stdin = self.stdin.lock().await;
        if offset > stdin.written {
            return Err(Status::out_of_range(format!(
                "stdin offset {offset} > {} written",
                stdin.written
            )));
        }
        let skip = usize::try_from(stdin.written - offset).unwrap_or(usize::MAX);
        if skip < data.len() {
            let pipe = stdin
                .pipe
                .as_mut()
                .ok_or_else(|| Status::failed_precondition("stdin is closed"))?;
            pipe.write_all(&data[skip..])
                .await
                .map_err(|e| Status::failed_precondition(format!("writing stdin: {e}")))?;
            stdin.written += (data.len() - skip) as u64;
        }
        if eof {
            stdin.pipe = None;
        }
        Ok(())
    }

    /// The output of `fd` (0 stdout, 1 stderr) from `offset`, following it until it closes;
    /// with `break_after_first`, the stream fails with that status after its first chunk.
    pub fn read(
        &self,
        fd: i32,
        offset: u64,
        break_after_first: Option<Status>,
    ) -> Messages<TaskExecStdioReadResponse> {
        let output = if fd == 1 {
            self.stderr.subscribe()
        } else {
            self.stdout.subscribe()
        };
        let (sender, receiver) = mpsc::channel(4);
        tokio::spawn(follow(
            output,
            usize::try_from(offset).unwrap_or(usize::MAX),
            break_after_first,
            sender,
        ));
        receiver
    }

    /// The exit status once the process has ended.
    pub async fn wait(&self) -> ExitStatus {
        let mut exit = self.exit.subscribe();
        let status = exit.wait_for(Option::is_some).await.ok().and_then(|s| *s);
        status.unwrap_or(ExitStatus::Code(-1))
    }
}

async fn collect(mut pipe: impl AsyncRead + Unpin, output: watch::Sender<Output>) {
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(read @ 1..) = pipe.read(&mut buffer).await {
        output.send_modify(|out| out.data.extend_from_slice(&buffer[..read]));
    }
    output.send_modify(|out| out.closed = true);
}

async fn follow(
    mut output: watch::Receiver<Output>,
    mut offset: usize,
    mut break_after_first: Option<Status>,
    sender: mpsc::Sender<Result<TaskExecStdioReadResponse, Status>>,
) {
    loop {
        let (chunk, finished) = {
            let out = output.borrow_and_update();
            let end = out.data.len().min(offset.saturating_add(CHUNK));
            let chunk = out
                .data
                .get(offset..end)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            (chunk, out.closed && end >= out.data.len())
        };
        if !chunk.is_empty() {
            offset += chunk.len();
            if sender
                .send(Ok(TaskExecStdioReadResponse { data: chunk }))
                .await
                .is_err()
            {
                return;
            }
            if let Some(status) = break_after_first.take() {
                let _ = sender.send(Err(status)).await;
                return;
            }
            continue;
        }
        if finished || output.changed().await.is_err() {
            return;
        }
    }
}
