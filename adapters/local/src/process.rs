//! Program lookup, process groups and their killing.
//!
//! Every spawned process leads its own process group, so one signal reaches it and every
//! child it started. Groups are identified by their id plus the leader's start time, so a
//! group id that the kernel handed to an unrelated process later is never signalled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_runtime_api::{AdapterError, AdapterResult, ExitStatus};
use rustix::process::{Pid, Signal};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// How often `terminate` looks whether the signalled groups are gone.
const POLL: Duration = Duration::from_millis(50);
/// How long to wait for SIGKILLed groups to disappear before giving up on them.
const AFTER_KILL: Duration = Duration::from_secs(2);

/// A process group started in a sandbox, as `sandbox.json` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcessGroup {
    /// The group id, which is the leader's pid.
    pub pgid: i32,
    /// The leader's start time in clock ticks since boot (`/proc/<pid>/stat` field 22),
    /// where `/proc` exists.
    pub leader_start: Option<u64>,
    /// Whether the leader is a wrapper (bubblewrap) that takes everything inside down at
    /// once when it gets SIGTERM. It is spared the SIGTERM, so the processes inside get
    /// their grace period; it exits once they have.
    #[serde(default)]
    pub wrapper: bool,
}

impl ProcessGroup {
    /// The group led by the just-started process `pid`.
    pub fn led_by(pid: u32, wrapper: bool) -> Option<Self> {
        let pgid = i32::try_from(pid).ok()?;
        Some(ProcessGroup {
            pgid,
            leader_start: proc_stat(pgid).map(|stat| stat.starttime),
            wrapper,
        })
    }

    /// Whether the group still has a running (not zombie) member, and is still ours.
    pub fn is_running(&self) -> bool {
        if !self.may_signal() {
            return false;
        }
        if self.wrapper {
            // The leader is bubblewrap, outside the pid namespace it made: once it is gone
            // the kernel ends that namespace and everything in it (--die-with-parent), so
            // the leader alone tells, and no scan of every process in /proc is needed.
            return proc_stat(self.pgid).is_some_and(|stat| !matches!(stat.state, 'Z' | 'X'));
        }
        group_has_live_member(self.pgid)
    }

    /// Whether signalling this group can only reach the processes it was recorded for.
    fn may_signal(&self) -> bool {
        // Never group 0 or 1 (kill(0) and kill(-1) mean "my group" and "everything"), and
        // never the runtime's own group, whatever a tampered marker says.
        if self.pgid <= 1 || self.pgid == rustix::process::getpgrp().as_raw_nonzero().get() {
            return false;
        }
        match (self.leader_start, proc_stat(self.pgid)) {
            // The leader still runs: it must be the same process, not a reused pid.
            (Some(recorded), Some(now)) => recorded == now.starttime,
            // The leader is gone. Linux does not reuse a pid while a group uses it as its
            // id, so any members left are the recorded group's.
            _ => true,
        }
    }

    /// Asks the group's processes to end: SIGTERM to the group, or to every member but a
    /// wrapper leader.
    fn ask_to_end(&self) {
        if !self.wrapper || !self.may_signal() {
            return self.signal(Signal::TERM);
        }
        let Some(members) = live_members(self.pgid) else {
            return self.signal(Signal::TERM);
        };
        for pid in members.into_iter().filter(|pid| *pid != self.pgid) {
            if let Some(pid) = Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, Signal::TERM);
            }
        }
    }

    fn signal(&self, signal: Signal) {
        if !self.may_signal() {
            return;
        }
        let Some(pgid) = Pid::from_raw(self.pgid) else {
            return;
        };
        if let Err(error) = rustix::process::kill_process_group(pgid, signal)
            && error != rustix::io::Errno::SRCH
        {
            tracing::warn!(pgid = self.pgid, %error, "signalling a process group failed");
        }
    }
}

/// Sends SIGTERM to every group, waits up to `grace` for them to end, then SIGKILLs the
/// rest and waits briefly for them to go.
pub(crate) async fn kill_groups(groups: &[ProcessGroup], grace: Duration) {
    let mut running: Vec<ProcessGroup> =
        groups.iter().copied().filter(|g| g.is_running()).collect();
    for group in &running {
        group.ask_to_end();
    }
    wait_until_gone(&mut running, grace).await;
    if running.is_empty() {
        return;
    }
    for group in &running {
        tracing::debug!(
            pgid = group.pgid,
            "process group outlived SIGTERM; killing it"
        );
        group.signal(Signal::KILL);
    }
    wait_until_gone(&mut running, AFTER_KILL).await;
    for group in &running {
        tracing::warn!(
            pgid = group.pgid,
            "process group still running after SIGKILL"
        );
    }
}

async fn wait_until_gone(running: &mut Vec<ProcessGroup>, patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        running.retain(ProcessGroup::is_running);
        if running.is_empty() || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether any process of group `pgid` is alive and not a zombie.
fn group_has_live_member(pgid: i32) -> bool {
    // Signal 0 only checks that the group exists; nothing is delivered.
    let exists = Pid::from_raw(pgid)
        .is_some_and(|pgid| rustix::process::test_kill_process_group(pgid).is_ok());
    if !exists {
        // ESRCH: no such group. EPERM: none of it can be signalled by us anyway.
        return false;
    }
    // kill() also succeeds for zombies, which nobody may reap promptly (their parent is
    // gone); look at the members' states where /proc tells them.
    live_members(pgid).is_none_or(|members| !members.is_empty())
}

/// The pids of group `pgid` that are not zombies; `None` without a readable `/proc`.
fn live_members(pgid: i32) -> Option<Vec<i32>> {
    let members = procfs::process::all_processes()
        .ok()?
        .filter_map(Result::ok)
        .filter(|process| {
            process
                .stat()
                .is_ok_and(|stat| stat.pgrp == pgid && !matches!(stat.state, 'Z' | 'X'))
        })
        .map(|process| process.pid)
        .collect();
    Some(members)
}

/// `/proc/<pid>/stat`, where `/proc` tells it.
fn proc_stat(pid: i32) -> Option<procfs::process::Stat> {
    procfs::process::Process::new(pid).ok()?.stat().ok()
}

/// Finds `program` the way the sandbox's own shell would: a name with a `/` is used as it
/// is; any other name is looked up on the `PATH` of `env`, never on the runtime's.
pub(crate) fn resolve_program(
    program: &str,
    env: &BTreeMap<String, String>,
    workspace: &Path,
) -> AdapterResult<PathBuf> {
    if program.is_empty() || program.contains('\0') {
        return Err(AdapterError::invalid_input(format!(
            "invalid program name {:?}",
            program.replace('\0', "\\0")
        )));
    }
    if program.contains('/') {
        // Relative paths are relative to the working directory, which is the workspace;
        // whether the file runs is for the spawn to say.
        return Ok(workspace.join(program));
    }
    let path = env.get("PATH").map(String::as_str).unwrap_or_default();
    which::which_in(program, Some(path), workspace).map_err(|_| {
        AdapterError::invalid_input(format!(
            "command `{program}` not found on the sandbox PATH ({path:?}); install it, \
             give its full path, or add its directory to the sandbox's PATH"
        ))
    })
}

/// Converts the operating system's exit status.
pub(crate) fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus {
        code: status.code(),
        signal: status.signal(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_signals_the_own_group_or_special_ids() {
        let own = rustix::process::getpgrp().as_raw_nonzero().get();
        for pgid in [-5, 0, 1, own] {
            let group = ProcessGroup {
                pgid,
                leader_start: None,
                wrapper: false,
            };
            assert!(!group.may_signal(), "pgid {pgid} would be signalled");
        }
    }

    #[test]
    fn refuses_a_group_whose_leader_is_another_process() {
        let own = ProcessGroup::led_by(std::process::id(), false).unwrap();
        let start = own.leader_start.expect("/proc is readable here");
        let reused = ProcessGroup {
            pgid: own.pgid,
            leader_start: Some(start + 1),
            wrapper: false,
        };
        assert!(!reused.may_signal());
    }

    #[test]
    fn looks_programs_up_on_the_sandbox_path_only() {
        let workspace = Path::new("/ws");
        let env = BTreeMap::from([("PATH".to_owned(), "/nonexistent:/bin:/usr/bin".to_owned())]);
        let sh = resolve_program("sh", &env, workspace).unwrap();
        assert!(sh.ends_with("sh") && sh.is_absolute(), "{sh:?}");
        assert_eq!(
            resolve_program("./run.sh", &env, workspace).unwrap(),
            PathBuf::from("/ws/./run.sh")
        );
        let error = resolve_program("sh", &BTreeMap::new(), workspace).unwrap_err();
        assert!(
            error.to_string().contains("not found on the sandbox PATH"),
            "{error}"
        );
        assert!(matches!(
            resolve_program("", &env, workspace),
            Err(e) if e.kind() == agent_runtime_api::ErrorKind::InvalidInput
        ));
    }
}
