//! A child process of the cluster: output to a log file, killed when dropped or when the test process dies.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

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

    /// Waits until something accepts connections on `address` (`host:port`).
    ///
    /// # Errors
    /// It exits first, or nothing listens within `timeout`; the error holds its log's tail.
    pub(crate) async fn wait_listening(&mut self, address: &str, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        while tokio::net::TcpStream::connect(address).await.is_err() {
            if self.exited() || Instant::now() > deadline {
                return Err(Error::NotReady { what: format!("{} on {address}", self.name), log: self.log_tail() });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
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

/// A loopback port nobody listens on now, chosen below the kernel's ephemeral range.
///
/// A port from that range (what `bind(…:0)` hands out) can be taken between this call and the server's own
/// bind: every outgoing connection of every process picks its local port there, and the kernel hands out
/// released ports again. Below the range only our own choices compete, and a process-wide cursor that starts at
/// a random offset keeps parallel tests (and parallel test processes) apart.
///
/// # Errors
/// Every port below the range is taken.
pub fn free_port() -> Result<u16, Error> {
    const LOWEST: u32 = 10_000;
    static CURSOR: AtomicU32 = AtomicU32::new(0);
    let ceiling = ephemeral_range_start().max(LOWEST + 1_000);
    let span = ceiling - LOWEST;
    let _ = CURSOR.compare_exchange(0, rand::random_range(1..span), Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..span {
        let port = LOWEST + CURSOR.fetch_add(1, Ordering::Relaxed) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return Ok(port as u16);
        }
    }
    Err(Error::Io(format!("no free loopback port in {LOWEST}..{ceiling}")))
}

/// The first port of `net.ipv4.ip_local_port_range` (32768 when it cannot be read).
fn ephemeral_range_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .filter(|&start: &u32| start <= u32::from(u16::MAX))
        .unwrap_or(32_768)
}
