//! The command router's methods: commands as local processes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use agent_runtime_modal::proto;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::{Request, Status};

use super::process::Process;
use super::service::{Messages, streaming, unary, unimplemented};
use super::state::{FakeSandbox, State, lock, take};

/// How long one `TaskExecWait` waits before answering "still running".
const WAIT: Duration = Duration::from_secs(50);

pub(super) async fn dispatch(
    state: Arc<State>,
    method: &str,
    request: http::Request<Body>,
) -> http::Response<Body> {
    let mut stalled = state.faults.router_stalled.subscribe();
    let _ = stalled.wait_for(|stalled| !*stalled).await;
    let s = state;
    match method {
        "TaskExecStart" => unary(request, move |r| async move { exec_start(&s, r) }).await,
        "TaskExecStdinWrite" => {
            unary(request, move |r| async move { stdin_write(&s, r).await }).await
        }
        "TaskExecStdioRead" => streaming(request, move |r| async move { stdio_read(&s, r) }).await,
        "TaskExecWait" => unary(request, move |r| async move { exec_wait(&s, r).await }).await,
        other => unimplemented(other),
    }
}

/// Injected failures first, then the router JWT; the sandbox running `task_id`.
fn admit<Q>(
    state: &State,
    request: &Request<Q>,
    task_id: &str,
) -> Result<Arc<FakeSandbox>, Status> {
    state.injected_failure()?;
    state.router_sandbox(request.metadata(), task_id)
}

fn process(sandbox: &FakeSandbox, exec_id: &str) -> Result<Arc<Process>, Status> {
    let process = lock(&sandbox.processes).get(exec_id).cloned();
    process.ok_or_else(|| Status::not_found(format!("no exec {exec_id}")))
}

fn exec_start(
    state: &State,
    request: Request<proto::TaskExecStartRequest>,
) -> Result<proto::Empty, Status> {
    let sandbox = admit(state, &request, &request.get_ref().task_id)?;
    let request = request.into_inner();
    if sandbox.result().is_some() {
        return Err(Status::not_found(format!(
            "sandbox {} has ended",
            sandbox.id
        )));
    }
    if request.exec_id.is_empty() || request.command_args.is_empty() {
        return Err(Status::invalid_argument(
            "exec_id and command_args are required",
        ));
    }
    let mut processes = lock(&sandbox.processes);
    if processes.contains_key(&request.exec_id) {
        return Ok(proto::Empty {}); // The exec id makes a retried start idempotent.
    }
    let cwd = request
        .workdir
        .as_ref()
        .map(Into::into)
        .unwrap_or_else(|| sandbox.workdir.clone());
    let mut env = sandbox.env.clone();
    env.extend(request.env);
    lock(&sandbox.commands).push(request.command_args.clone());
    let process = Process::start(&request.command_args, &cwd, &env);
    processes.insert(request.exec_id, process);
    Ok(proto::Empty {})
}

async fn stdin_write(
    state: &State,
    request: Request<proto::TaskExecStdinWriteRequest>,
) -> Result<proto::Empty, Status> {
    let sandbox = admit(state, &request, &request.get_ref().task_id)?;
    let request = request.into_inner();
    let process = process(&sandbox, &request.exec_id)?;
    process
        .write_stdin(request.offset, &request.data, request.eof)
        .await?;
    Ok(proto::Empty {})
}

fn stdio_read(
    state: &State,
    request: Request<proto::TaskExecStdioReadRequest>,
) -> Result<Messages<proto::TaskExecStdioReadResponse>, Status> {
    let sandbox = admit(state, &request, &request.get_ref().task_id)?;
    let request = request.into_inner();
    let process = process(&sandbox, &request.exec_id)?;
    let stdout = request.file_descriptor == proto::FD_STDOUT;
    let mut break_it = None;
    if stdout && state.take_stream_drop() {
        state
            .counters
            .streams_dropped
            .fetch_add(1, Ordering::SeqCst);
        break_it = Some(Status::unavailable("fake Modal: stream dropped"));
    } else if stdout && take(&state.faults.refuse_streams) {
        // The JWT the stream was opened with expires while it is open.
        lock(&sandbox.router_jwts).clear();
        state
            .counters
            .streams_refused
            .fetch_add(1, Ordering::SeqCst);
        break_it = Some(Status::unauthenticated("fake Modal: router JWT expired"));
    }
    Ok(process.read(request.file_descriptor, request.offset, break_it))
}

async fn exec_wait(
    state: &State,
    request: Request<proto::TaskExecWaitRequest>,
) -> Result<proto::TaskExecWaitResponse, Status> {
    let sandbox = admit(state, &request, &request.get_ref().task_id)?;
    let process = process(&sandbox, &request.into_inner().exec_id)?;
    let exit_status = tokio::time::timeout(WAIT, process.wait()).await.ok();
    Ok(proto::TaskExecWaitResponse { exit_status })
}
