//! Bubblewrap: the check that it works on this host, and the command line that runs a
//! program in a sandbox of its own.
//!
//! The sandbox sees a filesystem made only of binds: the system directories and a few
//! files of `/etc` read-only, the program's own directory and the configured read-only
//! paths, and the sandbox's workspace and home, writable, at their host paths. It has its
//! own user, mount, pid, ipc, uts and cgroup namespaces, no capabilities and, with a private
//! network, its own network namespace (see `network`).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use agent_runtime_api::{AdapterError, AdapterResult};

use crate::InitProgram;
use crate::network::Slirp;

/// How to fix a host without a working bubblewrap; appended to every such error.
const HOW_TO_FIX: &str = "install bubblewrap (`apt-get install bubblewrap` on Debian and \
    Ubuntu); only if agents may read everything the runtime can, set isolation = \
    \"dangerously-none\" in the sandbox configuration";

/// System directories bound read-only (or recreated as the symlinks they are).
const SYSTEM_PATHS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// The parts of `/etc` programs need to run, resolve names and check certificates. The rest
/// of `/etc` (shadow, host keys, service configs) stays out.
const ETC_PATHS: &[&str] = &[
    "/etc/alternatives",
    "/etc/bash.bashrc",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/debian_version",
    "/etc/gai.conf",
    "/etc/group",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/inputrc",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/mime.types",
    "/etc/nsswitch.conf",
    "/etc/os-release",
    "/etc/passwd",
    "/etc/pki",
    "/etc/profile",
    "/etc/ssl",
    "/etc/terminfo",
    "/etc/timezone",
];

/// Where the sandbox's own runtime files appear inside it.
const INSIDE_RUN: &str = "/run/agent-runtime";

/// A loopback address inside the sandbox whose connections go to a unix socket outside.
#[derive(Debug, Clone)]
pub(crate) struct Relay {
    /// The address inside the sandbox.
    pub address: SocketAddr,
    /// The unix socket on the host.
    pub socket: PathBuf,
}

/// A checked, working `bwrap`, and what every sandbox gets bound.
#[derive(Debug, Clone)]
pub(crate) struct Bubblewrap {
    program: PathBuf,
    /// The binds every sandbox gets: system paths, `/etc` files, `resolv.conf` and the
    /// configured read-only paths.
    binds: Vec<OsString>,
    /// With a private network: what gives it internet access.
    slirp: Option<Slirp>,
    /// The program that relays loopback connections out; needed when `relays` is not empty.
    init: Option<InitProgram>,
    relays: Vec<Relay>,
}

/// What [`Bubblewrap::new`] is made from.
pub(crate) struct BubblewrapParts {
    pub read_only: Vec<PathBuf>,
    pub slirp: Option<Slirp>,
    pub resolv_conf: Option<PathBuf>,
    pub init: Option<InitProgram>,
    pub relays: Vec<Relay>,
}

/// Finds `bwrap` on the runtime's PATH and runs it once with the options sandboxes use.
pub(crate) fn find() -> AdapterResult<PathBuf> {
    let program = which::which("bwrap").map_err(|_| {
        AdapterError::invalid_input(format!(
            "isolating sandboxes needs `bwrap`, which is not on PATH; {HOW_TO_FIX}"
        ))
    })?;
    let output = std::process::Command::new(&program)
        .args(Line::mirroring(SYSTEM_PATHS).0)
        .args(["--dev", "/dev", "--proc", "/proc"])
        .args(["--unshare-all", "--unshare-user", "--cap-drop", "ALL"])
        .args(["--die-with-parent", "--", "/usr/bin/env", "true"])
        .stdin(Stdio::null())
        .output()
        .map_err(|error| {
            AdapterError::invalid_input(format!(
                "running {} failed: {error}; {HOW_TO_FIX}",
                program.display()
            ))
        })?;
    if !output.status.success() {
        return Err(AdapterError::invalid_input(format!(
            "{} does not work on this host ({}: {}); on hosts that restrict unprivileged \
             user namespaces (Ubuntu 23.10 and later) run `sysctl \
             kernel.apparmor_restrict_unprivileged_userns=0`; otherwise {HOW_TO_FIX}",
            program.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
        )));
    }
    Ok(program)
}

impl Bubblewrap {
    /// A sandbox maker around the checked `program`.
    pub fn new(program: PathBuf, parts: BubblewrapParts) -> Self {
        // What every sandbox gets bound is looked up once, not at every spawn.
        let mut binds = Line::mirroring(SYSTEM_PATHS);
        binds.0.extend(Line::mirroring(ETC_PATHS).0);
        match &parts.resolv_conf {
            Some(resolv_conf) => binds.push([
                "--ro-bind".as_ref(),
                resolv_conf.as_os_str(),
                "/etc/resolv.conf".as_ref(),
            ]),
            None => binds.mirror(Path::new("/etc/resolv.conf")),
        }
        for path in &parts.read_only {
            binds.push(["--ro-bind".as_ref(), path.as_os_str(), path.as_os_str()]);
        }
        Bubblewrap {
            program,
            binds: binds.0,
            slirp: parts.slirp,
            init: parts.init,
            relays: parts.relays,
        }
    }

    /// The program to start instead of the sandboxed one.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// With a private network, what attaches it (see `network`) while bubblewrap waits
    /// on its block fd.
    pub fn slirp(&self) -> Option<&Slirp> {
        self.slirp.as_ref()
    }

    /// The arguments that run `program args` in the sandbox whose writable directories are
    /// `workspace` and `home`. Both keep their paths inside, so the paths the runtime
    /// reports are the ones processes see. With a private network, bubblewrap reports its
    /// child on fd 3 and waits for a byte on fd 4 before it starts the program.
    pub fn args(
        &self,
        workspace: &Path,
        home: &Path,
        program: &Path,
        args: &[String],
    ) -> Vec<OsString> {
        let mut line = Line(self.binds.clone());
        // The program's own directory, unless the system paths hold it already.
        let program = std::fs::canonicalize(program).unwrap_or_else(|_| program.to_path_buf());
        if let Some(dir) = program.parent()
            && !SYSTEM_PATHS.iter().any(|system| dir.starts_with(system))
        {
            line.push(["--ro-bind".as_ref(), dir.as_os_str(), dir.as_os_str()]);
        }
        line.push(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"].map(OsString::from));
        line.push([
            "--bind".as_ref(),
            workspace.as_os_str(),
            workspace.as_os_str(),
        ]);
        line.push(["--bind".as_ref(), home.as_os_str(), home.as_os_str()]);
        // No --new-session: it would move the command out of the process group that
        // terminate signals; bubblewrap itself starts in a session of its own, without a
        // controlling terminal (see `LocalSandbox::command`). --die-with-parent ends everything inside when bwrap itself
        // dies (killed, or with the runtime), which is why terminate spares bwrap the
        // SIGTERM it sends to the processes inside.
        line.push(
            [
                "--unshare-user",
                "--unshare-ipc",
                "--unshare-pid",
                "--unshare-uts",
            ]
            .map(OsString::from),
        );
        line.push(
            [
                "--unshare-cgroup-try",
                "--cap-drop",
                "ALL",
                "--die-with-parent",
            ]
            .map(OsString::from),
        );
        line.push(["--hostname", "sandbox"].map(OsString::from));
        if self.slirp.is_some() {
            line.push(["--unshare-net", "--info-fd", "3", "--block-fd", "4"].map(OsString::from));
        }
        line.push(["--chdir".as_ref(), workspace.as_os_str()]);
        let relayed = self.slirp.is_some() && !self.relays.is_empty();
        if let (Some(init), true) = (&self.init, relayed) {
            let inside_init = format!("{INSIDE_RUN}/init");
            line.push([
                "--ro-bind".as_ref(),
                init.program.as_os_str(),
                inside_init.as_ref(),
            ]);
            let mut forwards = Vec::new();
            for (index, relay) in self.relays.iter().enumerate() {
                let inside = format!("{INSIDE_RUN}/relay-{index}.sock");
                line.push([
                    "--ro-bind".as_ref(),
                    relay.socket.as_os_str(),
                    inside.as_ref(),
                ]);
                forwards.push(format!("{}={inside}", relay.address));
            }
            line.push(["--", inside_init.as_str()].map(OsString::from));
            line.push(init.args.iter().map(OsString::from));
            for forward in forwards {
                line.push(["--forward", forward.as_str()].map(OsString::from));
            }
        }
        line.push(["--".as_ref(), program.as_os_str()]);
        line.push(args.iter().map(OsString::from));
        line.0
    }
}

/// A command line being built.
#[derive(Default)]
struct Line(Vec<OsString>);

impl Line {
    /// The binds that make each of `paths` appear inside as it is on the host.
    fn mirroring(paths: &[&str]) -> Self {
        let mut line = Line::default();
        for path in paths.iter().map(Path::new) {
            line.mirror(path);
        }
        line
    }

    fn push<I: Into<OsString>>(&mut self, items: impl IntoIterator<Item = I>) {
        self.0.extend(items.into_iter().map(Into::into));
    }

    /// Makes `path` appear inside as it is on the host: a symlink is recreated (bwrap
    /// follows the binds it makes), anything else bound read-only; missing paths are left out.
    fn mirror(&mut self, path: &Path) {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if meta.file_type().is_symlink() {
            if let Ok(target) = std::fs::read_link(path) {
                self.push(["--symlink".as_ref(), target.as_os_str(), path.as_os_str()]);
            }
        } else {
            self.push(["--ro-bind".as_ref(), path.as_os_str(), path.as_os_str()]);
        }
    }
}
