//! Commands run through the command router, bridged into [`AgentProcess`] pipes.
//!
//! stdout and stderr are server streams read from a byte offset; a stream that breaks is
//! reopened at the number of bytes already delivered, so nothing is lost or repeated. A
//! stream the router refuses midway (its JWT expired while it was open) is reopened the
//! same way with fresh access, once per break, as Modal's own client does.
//! stdin is sent in chunks, each at the offset it starts at, which makes retries
//! idempotent. `exit` races the command's own wait against the sandbox's end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime_api::{AdapterResult, AgentProcess, ExitStatus};
use backon::BackoffBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tonic::Code;

use crate::control::UNARY_DEADLINE;
use crate::grpc::{ROUTER_RETRY, adapter_error, is_transient};
use crate::life::Life;
use crate::proto::{self, exit_status, rpc};
use crate::router::Router;

/// Bytes buffered in each pipe between the gRPC streams and the process's user.
const PIPE_BUFFER: usize = 256 * 1024;
/// Largest stdin chunk sent in one call.
const STDIN_CHUNK: usize = 256 * 1024;
/// The deadline of one `TaskExecWait` long poll.
const WAIT_DEADLINE: Duration = Duration::from_secs(60);
/// The signal reported for a process whose sandbox ended under it (SIGKILL).
const KILLED: i32 = 9;

/// One started command.
struct Exec {
    router: Arc<Router>,
    task_id: String,
    exec_id: String,
}

/// Starts `args` in the sandbox's task with `env` added to the sandbox's environment.
pub(crate) async fn spawn(
    router: &Arc<Router>,
    life: &Life,
    task_id: &str,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    workdir: &str,
) -> AdapterResult<AgentProcess> {
    let exec = Arc::new(Exec {
        router: Arc::clone(router),
        task_id: task_id.to_owned(),
        // The client picks the id; it makes a retried start idempotent.
        exec_id: uuid::Uuid::new_v4().to_string(),
    });
    let start = proto::TaskExecStartRequest {
        task_id: exec.task_id.clone(),
        exec_id: exec.exec_id.clone(),
        command_args: args,
        stdout_config: proto::PIPE,
        stderr_config: proto::PIPE,
        workdir: Some(workdir.to_owned()),
        env,
    };
    router
        .unary::<_, proto::Empty>(rpc::TASK_EXEC_START, start, UNARY_DEADLINE)
        .await
        .map_err(|status| adapter_error("starting a command", &status))?;
    let (stdout, stdout_sink) = tokio::io::duplex(PIPE_BUFFER);
    let (stderr, stderr_sink) = tokio::io::duplex(PIPE_BUFFER);
    let (stdin, stdin_source) = tokio::io::duplex(PIPE_BUFFER);
    tokio::spawn(read_output(
        Arc::clone(&exec),
        proto::FD_STDOUT,
        stdout_sink,
    ));
    tokio::spawn(read_output(
        Arc::clone(&exec),
        proto::FD_STDERR,
        stderr_sink,
    ));
    tokio::spawn(write_input(Arc::clone(&exec), stdin_source));
    Ok(AgentProcess {
        stdin: Box::pin(stdin),
        stdout: Box::pin(stdout),
        stderr: Box::pin(stderr),
        exit: Box::pin(wait_exit(exec, life.clone())),
    })
}

/// Copies one output stream into `sink` until the stream ends, reopening it at the bytes
/// delivered so far after a transient failure. Dropping `sink` gives the reader EOF.
async fn read_output(exec: Arc<Exec>, fd: i32, mut sink: DuplexStream) {
    let mut offset = 0u64;
    // Consecutive breaks without output in between; reset by every chunk.
    let mut delays = ROUTER_RETRY.build();
    // Whether access was fetched again since the last chunk; a second refusal is final.
    let mut reauthorized = false;
    loop {
        let request = proto::TaskExecStdioReadRequest {
            task_id: exec.task_id.clone(),
            exec_id: exec.exec_id.clone(),
            offset,
            file_descriptor: fd,
        };
        let stream = exec
            .router
            .stream::<_, proto::TaskExecStdioReadResponse>(rpc::TASK_EXEC_STDIO_READ, request)
            .await;
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(status) => return lost(&exec, fd, offset, &status),
        };
        loop {
            match stream.message().await {
                Ok(Some(chunk)) => {
                    delays = ROUTER_RETRY.build();
                    reauthorized = false;
                    if sink.write_all(&chunk.data).await.is_err() {
                        return; // Nobody reads this pipe any more.
                    }
                    offset += chunk.data.len() as u64;
                }
                Ok(None) => return, // The process closed it.
                Err(status) if status.code() == Code::Unauthenticated && !reauthorized => {
                    tracing::debug!(exec = %exec.exec_id, fd, offset,
                        "router refused the output stream's JWT; resuming with fresh access");
                    exec.router.expire_access().await;
                    reauthorized = true;
                    break;
                }
                Err(status) if is_transient(status.code()) => {
                    let Some(delay) = delays.next() else {
                        return lost(&exec, fd, offset, &status);
                    };
                    tracing::debug!(exec = %exec.exec_id, fd, offset, grpc_message = status.message(),
                        "output stream broke; resuming at the offset");
                    tokio::time::sleep(delay).await;
                    break;
                }
                Err(status) => return lost(&exec, fd, offset, &status),
            }
        }
    }
}

fn lost(exec: &Exec, fd: i32, offset: u64, status: &tonic::Status) {
    // After the sandbox ended this is expected; the reader sees the end of the stream.
    tracing::debug!(exec = %exec.exec_id, fd, offset, code = ?status.code(),
        grpc_message = status.message(), "output stream ended by an error");
}

/// Sends what is written to the process's stdin, then EOF once the writer closes it.
async fn write_input(exec: Arc<Exec>, mut source: DuplexStream) {
    let mut offset = 0u64;
    let mut buffer = vec![0u8; STDIN_CHUNK];
    loop {
        // A read error cannot happen on a duplex pipe; treat it like EOF.
        let read = source.read(&mut buffer).await.unwrap_or(0);
        let request = proto::TaskExecStdinWriteRequest {
            task_id: exec.task_id.clone(),
            exec_id: exec.exec_id.clone(),
            offset,
            data: buffer[..read].to_vec(),
            eof: read == 0,
        };
        let sent = exec
            .router
            .unary::<_, proto::Empty>(rpc::TASK_EXEC_STDIN_WRITE, request, UNARY_DEADLINE)
            .await;
        if let Err(status) = sent {
            // The process is gone or no longer reads; dropping `source` makes the writer's
            // next write fail instead of blocking.
            tracing::debug!(exec = %exec.exec_id, code = ?status.code(),
                grpc_message = status.message(), "stdin closed by an error");
            return;
        }
        if read == 0 {
            return;
        }
        offset += read as u64;
    }
}

/// The command's status, or SIGKILL when its sandbox ended first.
async fn wait_exit(exec: Arc<Exec>, life: Life) -> ExitStatus {
    let killed = ExitStatus {
        code: None,
        signal: Some(KILLED),
    };
    tokio::select! {
        biased;
        status = wait_exec(&exec) => match status {
            Some(status) => status,
            // The router no longer knows the command: the sandbox is (nearly) gone.
            None => match tokio::time::timeout(Duration::from_secs(10), life.ended()).await {
                Ok(_) => killed,
                Err(_) => ExitStatus { code: None, signal: None },
            },
        },
        end = life.ended() => {
            tracing::debug!(exec = %exec.exec_id, end_message = %end.message, "sandbox ended under a command");
            killed
        }
    }
}

/// Long-polls `TaskExecWait` until it answers; `None` when the router refuses for good.
async fn wait_exec(exec: &Exec) -> Option<ExitStatus> {
    let mut failures = 0u32;
    loop {
        let request = proto::TaskExecWaitRequest {
            task_id: exec.task_id.clone(),
            exec_id: exec.exec_id.clone(),
        };
        let answer = exec
            .router
            .unary::<_, proto::TaskExecWaitResponse>(rpc::TASK_EXEC_WAIT, request, WAIT_DEADLINE)
            .await;
        let pause = match answer {
            Ok(response) => match response.exit_status {
                Some(exit_status::ExitStatus::Code(code)) => {
                    return Some(ExitStatus {
                        code: Some(code),
                        signal: None,
                    });
                }
                Some(exit_status::ExitStatus::Signal(signal)) => {
                    return Some(ExitStatus {
                        code: None,
                        signal: Some(signal),
                    });
                }
                None => Duration::from_millis(500),
            },
            Err(status) if status.code() == Code::DeadlineExceeded => Duration::ZERO,
            Err(status) if !is_transient(status.code()) => {
                tracing::debug!(exec = %exec.exec_id, code = ?status.code(),
                    grpc_message = status.message(), "waiting for the command failed");
                return None;
            }
            Err(_) => {
                failures += 1;
                Duration::from_secs(u64::from(failures.min(10)))
            }
        };
        tokio::time::sleep(pause).await;
    }
}
