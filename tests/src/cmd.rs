//! Running commands, in the root namespace or inside a lab namespace.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A `Command` that runs `args` inside network namespace `ns` via
/// `ip netns exec` (which execs in place, so the child's pid is the command's).
pub fn netns_command(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

/// A `Command` that runs `args` in network namespace `ns` with `nsenter --net`,
/// which, unlike `ip netns exec`, stays in the caller's mount namespace: a
/// bpffs the command mounts outlives it (the daemon's pinned state does), and
/// /sys is the root namespace's, not `ns`'s (the daemon never reads it).
pub fn nsenter_command(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{ns}")).arg("--").args(args);
    c
}

/// Runs `cmd` to completion; errors (with stderr) on a non-zero exit.
pub(crate) fn output_ok(mut cmd: Command) -> Result<Output> {
    let desc = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawn {desc}"))?;
    if !out.status.success() {
        bail!(
            "{desc} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(out)
}

/// Runs `args` in the root namespace and returns stdout; errors on failure.
pub fn run(args: &[&str]) -> Result<String> {
    let (prog, rest) = args.split_first().context("empty command")?;
    let mut c = Command::new(prog);
    c.args(rest);
    Ok(String::from_utf8_lossy(&output_ok(c)?.stdout).into_owned())
}

/// A spawned process that is killed (SIGKILL) and reaped when dropped. Its stdout
/// and stderr go to files, so a chatty child can never block on a full pipe.
pub struct ChildGuard {
    child: Child,
    desc: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl ChildGuard {
    /// Spawns `cmd` with stdout/stderr redirected to `<out_prefix>.out/.err`.
    pub(crate) fn spawn(mut cmd: Command, out_prefix: &Path) -> Result<ChildGuard> {
        let desc = format!("{cmd:?}");
        let stdout = out_prefix.with_extension("out");
        let stderr = out_prefix.with_extension("err");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout)?)
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()
            .with_context(|| format!("spawn {desc}"))?;
        Ok(ChildGuard {
            child,
            desc,
            stdout,
            stderr,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line, for error messages.
    pub fn desc(&self) -> &str {
        &self.desc
    }

    /// Sends `sig` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, sig: i32) -> Result<()> {
        // SAFETY: kill(2) on our own, not yet reaped, child.
        if unsafe { libc::kill(self.child.id() as libc::pid_t, sig) } != 0 {
            bail!(
                "kill({}, {sig}): {}",
                self.child.id(),
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Ok(st);
            }
            if Instant::now() >= deadline {
                bail!("{} still running after {timeout:?}", self.desc);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `sig`, then waits up to `timeout`; SIGKILLs if it does not exit.
    pub fn stop(&mut self, sig: i32, timeout: Duration) -> Result<ExitStatus> {
        if !self.is_running() {
            return Ok(self.child.wait()?);
        }
        self.signal(sig)?;
        match self.wait_timeout(timeout) {
            Ok(st) => Ok(st),
            Err(e) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                Err(e)
            }
        }
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
