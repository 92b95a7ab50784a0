//! A child process of the cluster: output to a log file, killed when dropped or when the test process dies.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::Error;

/// A running server process.
pub(crate) struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Server {
    /// Starts `program args`, logging to `dir/<name>.log`.
    pub(crate) fn start(name: &'static str, program: &Path, args: &[String], dir: &Path) -> Result<Server, Error> {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).map_err(|e| Error::Io(format!("{}: {e}", log.display())))?;
        let err = file.try_clone().map_err(|e| Error::Io(e.to_string()))?;
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::null()).stdout(file).stderr(err);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the child when this thread ends,
        // so no server outlives a test process that is killed without unwinding.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| Error::Io(format!("{}: {e}", program.display())))?;
        Ok(Server { name, child, log })
    }

    /// Whether it has exited.
    pub(crate) fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of its log (for error messages).
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("{} log ({}):\n{}", self.name, self.log.display(), lines[lines.len().saturating_sub(30)..].join("\n"))
    }

    /// Kills it and waits for it.
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nobody listens on now.
pub(crate) fn free_port() -> Result<u16, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::Io(e.to_string()))?;
    Ok(listener.local_addr().map_err(|e| Error::Io(e.to_string()))?.port())
}
