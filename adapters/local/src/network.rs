//! The private network of a sandbox: its own namespace (made by bubblewrap), given
//! internet access by `slirp4netns`, which runs on the host, outside the namespace.
//!
//! slirp4netns is started with `--disable-host-loopback`, so the namespace's gateway does
//! not lead to the host's `127.0.0.1`: the runtime's API and every local service stay out
//! of reach. What a sandbox may reach on the host is relayed explicitly (see `relay`).
//!
//! The order matters: bubblewrap makes the namespace, reports its child's pid on its info
//! fd and then blocks on its block fd; slirp4netns attaches to that pid and reports ready;
//! only then is bubblewrap released to start the program, which therefore never sees a
//! namespace without its network.

use std::io::{PipeReader, PipeWriter, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use agent_runtime_api::{AdapterError, AdapterResult};
use tokio::io::AsyncReadExt;

/// How long bubblewrap and slirp4netns get to report.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `resolv.conf` of a private network: slirp4netns answers DNS at this address.
pub(crate) const RESOLV_CONF: &str = "nameserver 10.0.2.3\n";

/// A checked `slirp4netns`.
#[derive(Debug, Clone)]
pub(crate) struct Slirp {
    program: PathBuf,
}

impl Slirp {
    /// Finds `slirp4netns` on the runtime's PATH.
    pub fn find() -> Option<Self> {
        which::which("slirp4netns")
            .ok()
            .map(|program| Slirp { program })
    }

    /// The program's path.
    pub fn program(&self) -> &Path {
        &self.program
    }
}

/// The fds a bubblewrap with a private network is started with, and their other ends.
pub(crate) struct Handshake {
    /// Bubblewrap writes its child's pid here (its fd 3).
    info: (PipeReader, Option<PipeWriter>),
    /// Bubblewrap waits for a byte from here (its fd 4).
    block: (Option<PipeReader>, PipeWriter),
}

impl Handshake {
    /// Makes the pipes.
    pub fn new() -> AdapterResult<Self> {
        let info = std::io::pipe().map_err(pipe_error)?;
        let block = std::io::pipe().map_err(pipe_error)?;
        Ok(Handshake {
            info: (info.0, Some(info.1)),
            block: (Some(block.0), block.1),
        })
    }

    /// Makes `command` start with the bubblewrap ends of the pipes as its fds 3 and 4.
    pub fn pass_to(&self, command: &mut tokio::process::Command) {
        let info = self.info.1.as_ref().map(AsRawFd::as_raw_fd);
        let block = self.block.0.as_ref().map(AsRawFd::as_raw_fd);
        if let (Some(info), Some(block)) = (info, block) {
            pass_fds(command, [info, block]);
        }
    }

    /// After the spawn: closes the runtime's copies of bubblewrap's ends, waits for the
    /// namespace, attaches slirp4netns to it, and releases bubblewrap. The returned
    /// [`Attached`] must live as long as the program: dropping it (or the runtime's end)
    /// ends slirp4netns, which is why it needs no process group of the sandbox's.
    pub async fn attach(mut self, slirp: &Slirp) -> AdapterResult<Attached> {
        self.info.1 = None;
        self.block.0 = None;
        let (info, block) = (self.info.0, self.block.1);
        let child = within_timeout("bubblewrap's report", child_pid(info)).await?;
        // slirp4netns brings `lo` up too; were it first, the kernel would give `lo` its
        // address and bubblewrap's own loopback setup would fail. So wait for bubblewrap's.
        wait_for_loopback(child).await?;
        let (ready_reader, ready_writer) = std::io::pipe().map_err(pipe_error)?;
        let (exit_reader, exit_writer) = std::io::pipe().map_err(pipe_error)?;
        let mut command = tokio::process::Command::new(&slirp.program);
        command
            .args(["--configure", "--mtu=65520", "--disable-host-loopback"])
            .args(["--enable-seccomp", "--ready-fd=3", "--exit-fd=4"]);
        if !rustix::process::geteuid().is_root() {
            // Without privileges, slirp4netns must join the sandbox's user namespace first.
            command.arg(format!("--userns-path=/proc/{child}/ns/user"));
        }
        command
            .arg(child.to_string())
            .arg("tap0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
        pass_fds(
            &mut command,
            [ready_writer.as_raw_fd(), exit_reader.as_raw_fd()],
        );
        let mut process = command.spawn().map_err(|error| {
            AdapterError::other(format!("starting {} failed", slirp.program.display()))
                .with_source(error)
        })?;
        drop((ready_writer, exit_reader));
        let ready = within_timeout("slirp4netns to be ready", async move {
            let mut reader = async_reader(ready_reader)?;
            let mut byte = [0u8; 1];
            match reader.read(&mut byte).await {
                Ok(1) => Ok(()),
                _ => Err(AdapterError::other(
                    "slirp4netns ended before the network was ready",
                )),
            }
        })
        .await;
        if let Err(error) = ready {
            let _ = process.start_kill();
            let stderr = match process.wait_with_output().await {
                Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                Err(_) => String::new(),
            };
            return Err(AdapterError::other(format!("{error}: {stderr}")));
        }
        // Its stderr is read to the end, so a chatty slirp4netns never blocks on a full
        // pipe (and takes the sandbox's network with it); it is reaped when it ends.
        let stderr = process.stderr.take();
        tokio::spawn(async move {
            if let Some(stderr) = stderr {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::debug!(%line, "slirp4netns");
                }
            }
            let _ = process.wait().await;
        });
        let mut block = block;
        block
            .write_all(b"1")
            .map_err(|error| AdapterError::other("releasing bubblewrap").with_source(error))?;
        Ok(Attached { _exit: exit_writer })
    }
}

/// A running slirp4netns; it ends when this is dropped (or the runtime dies).
pub(crate) struct Attached {
    _exit: PipeWriter,
}

/// Waits until the namespace of `pid` has its loopback up, which bubblewrap does right
/// after it made the namespace: the local route to 127.0.0.1 exists from then on.
async fn wait_for_loopback(pid: u32) -> AdapterResult<()> {
    let routes = format!("/proc/{pid}/net/fib_trie");
    let deadline = tokio::time::Instant::now() + REPORT_TIMEOUT;
    loop {
        match tokio::fs::read_to_string(&routes).await {
            Ok(text) if text.contains("127.0.0.1") => return Ok(()),
            Ok(_) => {}
            Err(error) => {
                return Err(AdapterError::other(format!(
                    "the sandbox ended while its network was made ({error})"
                )));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(AdapterError::other(
                "bubblewrap did not set up the sandbox's loopback",
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Reads bubblewrap's info JSON up to its end and takes `child-pid` from it.
async fn child_pid(info: PipeReader) -> AdapterResult<u32> {
    let mut info = async_reader(info)?;
    let mut text = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let read = info
            .read(&mut chunk)
            .await
            .map_err(|error| AdapterError::other("reading bubblewrap's info").with_source(error))?;
        if read == 0 {
            break;
        }
        text.extend_from_slice(&chunk[..read]);
        // Bubblewrap may keep the fd open; a complete object is enough.
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&text) {
            return value["child-pid"]
                .as_u64()
                .and_then(|pid| u32::try_from(pid).ok())
                .ok_or_else(|| {
                    AdapterError::other(format!("bubblewrap's info has no child-pid: {value}"))
                });
        }
    }
    Err(AdapterError::other(
        "bubblewrap ended before it made the sandbox",
    ))
}

/// Makes `command`'s fds 3, 4, … copies of `fds`, inherited across exec.
fn pass_fds<const N: usize>(command: &mut tokio::process::Command, fds: [RawFd; N]) {
    // SAFETY: the closure runs in the child between fork and exec and calls only fcntl and
    // dup2, which are async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            // First out of the way (a source may be 3 or 4 itself), then into place; dup2
            // leaves the copy without close-on-exec.
            let mut high = [0; N];
            for (slot, fd) in high.iter_mut().zip(fds) {
                *slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 64);
                if *slot < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (target, fd) in (3..).zip(high) {
                if libc::dup2(fd, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Waits for `work` up to [`REPORT_TIMEOUT`]; a wait given up on drops `work`, which
/// closes its end of the pipe it read.
async fn within_timeout<T>(
    what: &str,
    work: impl std::future::Future<Output = AdapterResult<T>>,
) -> AdapterResult<T> {
    tokio::time::timeout(REPORT_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| {
            Err(AdapterError::other(format!(
                "waited {REPORT_TIMEOUT:?} for {what} in vain"
            )))
        })
}

/// A pipe's read end, read without blocking a thread.
fn async_reader(pipe: PipeReader) -> AdapterResult<tokio::net::unix::pipe::Receiver> {
    tokio::net::unix::pipe::Receiver::from_owned_fd(pipe.into())
        .map_err(|error| AdapterError::other("reading a pipe").with_source(error))
}

fn pipe_error(error: std::io::Error) -> AdapterError {
    AdapterError::other("making a pipe").with_source(error)
}
