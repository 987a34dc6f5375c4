//! The bubblewrap command line, and the check that bubblewrap works on this host.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use agent_runtime_api::{AdapterError, AdapterResult};

/// How to fix a host without a working bubblewrap; appended to every such error.
const HOW_TO_FIX: &str = "install bubblewrap (`apt-get install bubblewrap` on Debian and \
    Ubuntu), or set isolation = \"none\" in the sandbox configuration";

/// A checked, working `bwrap`.
#[derive(Debug, Clone)]
pub(crate) struct Bubblewrap {
    program: PathBuf,
}

impl Bubblewrap {
    /// Finds `bwrap` on the runtime's PATH and runs it once with the options sandboxes use.
    pub fn check() -> AdapterResult<Self> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let program = std::env::split_paths(&path)
            .map(|dir| dir.join("bwrap"))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| {
                AdapterError::InvalidInput(format!(
                    "isolation = \"bubblewrap\" needs `bwrap`, which is not on PATH; {HOW_TO_FIX}"
                ))
            })?;
        let output = std::process::Command::new(&program)
            .args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"])
            .args(["--unshare-all", "--share-net", "--die-with-parent", "true"])
            .stdin(Stdio::null())
            .output()
            .map_err(|error| {
                AdapterError::InvalidInput(format!(
                    "running {} failed: {error}; {HOW_TO_FIX}",
                    program.display()
                ))
            })?;
        if !output.status.success() {
            return Err(AdapterError::InvalidInput(format!(
                "{} does not work on this host ({}: {}); on hosts that restrict unprivileged \
                 user namespaces (Ubuntu 23.10 and later) run `sysctl \
                 kernel.apparmor_restrict_unprivileged_userns=0`; otherwise {HOW_TO_FIX}",
                program.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim(),
            )));
        }
        Ok(Bubblewrap { program })
    }

    /// The program to start instead of `program`.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The arguments that run `program args` in the sandbox below `root` whose writable
    /// directories are `workspace` and `home`. Both keep their paths inside, so the paths
    /// the runtime reports are the ones processes see.
    pub fn args(
        &self,
        root: &Path,
        workspace: &Path,
        home: &Path,
        program: &Path,
        args: &[String],
    ) -> Vec<OsString> {
        let mut line: Vec<OsString> = Vec::new();
        let mut push = |items: &[&std::ffi::OsStr]| line.extend(items.iter().map(OsString::from));
        push(&["--ro-bind".as_ref(), "/".as_ref(), "/".as_ref()]);
        push(&[
            "--dev".as_ref(),
            "/dev".as_ref(),
            "--proc".as_ref(),
            "/proc".as_ref(),
        ]);
        push(&["--tmpfs".as_ref(), "/tmp".as_ref()]);
        // An empty tmpfs over the root hides every other sandbox; the binds after it make
        // this sandbox's two directories reappear, writable, at their own paths.
        push(&["--tmpfs".as_ref(), root.as_os_str()]);
        push(&[
            "--bind".as_ref(),
            workspace.as_os_str(),
            workspace.as_os_str(),
        ]);
        push(&["--bind".as_ref(), home.as_os_str(), home.as_os_str()]);
        // No --new-session: it would move the command out of the process group that
        // terminate signals. --die-with-parent ends everything inside when bwrap itself
        // dies (killed, or with the runtime), which is why terminate spares bwrap the
        // SIGTERM it sends to the processes inside.
        push(&["--unshare-all".as_ref(), "--share-net".as_ref()]);
        push(&[
            "--die-with-parent".as_ref(),
            "--chdir".as_ref(),
            workspace.as_os_str(),
        ]);
        push(&["--".as_ref(), program.as_os_str()]);
        line.extend(args.iter().map(OsString::from));
        line
    }
}
