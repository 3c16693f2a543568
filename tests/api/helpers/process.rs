//! The binary as a process: a command with a clean environment, a server
//! waited for until it prints its ready line, a command run to its end.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The one line the server prints on stdout once it serves.
pub const READY_PREFIX: &str = "pod-identity-store listening on http://";
/// The same line of a server with `server.tls` set.
pub const READY_PREFIX_TLS: &str = "pod-identity-store listening on https://";
/// How long a start-up (or a command expected to exit) may take.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The environment variables that configure the server; cleared in every
/// child unless a test sets one on purpose.
pub const ENV_VARS: [&str; 3] = [
    "POD_IDENTITY_STORE_LISTEN",
    "POD_IDENTITY_STORE_DATA_DIR",
    "POD_IDENTITY_STORE_CONFIG",
];

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pod-identity-store")
}

/// A command for the binary with the configuring environment variables
/// cleared; `env` then sets the ones a test wants.
pub fn command<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, OsString)]) -> Command {
    let mut cmd = Command::new(bin());
    for var in ENV_VARS {
        cmd.env_remove(var);
    }
    cmd.args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd
}

pub(super) fn read_to_string_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// A running server process. Dropping it kills the process (SIGKILL).
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Lines printed on stdout before the ready line (there should be none).
    pub stdout_before_ready: Vec<String>,
}

impl Server {
    /// Spawns `cmd` and waits (at most [`START_TIMEOUT`]) for the ready line.
    /// Stderr goes (appended) to `log`, so the child never blocks on a full pipe.
    pub fn start(cmd: Command, log: &Path) -> Result<Server, String> {
        Self::start_until(cmd, log, READY_PREFIX)
    }

    /// [`Server::start`] of a process whose ready line starts with
    /// `ready_prefix` followed by its address (the agent's, say).
    pub fn start_until(mut cmd: Command, log: &Path, ready_prefix: &str) -> Result<Server, String> {
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, lines) = mpsc::channel::<String>();
        // Reads stdout to its end, so the server never blocks writing it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut before_ready = Vec::new();
        loop {
            match lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => match line.strip_prefix(ready_prefix).or_else(|| {
                    // A server's line names https:// when it serves TLS.
                    (ready_prefix == READY_PREFIX)
                        .then(|| line.strip_prefix(READY_PREFIX_TLS))
                        .flatten()
                }) {
                    Some(addr) => {
                        let addr: SocketAddr = addr.trim().parse().map_err(|e| {
                            format!("the ready line {line:?} has no socket address: {e}")
                        })?;
                        return Ok(Server {
                            child,
                            addr,
                            stdout_before_ready: before_ready,
                        });
                    }
                    None => before_ready.push(line),
                },
                Err(RecvTimeoutError::Timeout) => {}
                // Stdout closed: the process is on its way out.
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "the server exited ({status}) before it was ready\nstdout: {before_ready:?}\nstderr:\n{}",
                    read_to_string_lossy(log)
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the server printed no ready line within {START_TIMEOUT:?}\nstdout: {before_ready:?}\nstderr:\n{}",
                    read_to_string_lossy(log)
                ));
            }
        }
    }
}

impl Server {
    /// Sends a signal (`TERM`, `INT`, …) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits at most `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Child::kill is SIGKILL on Unix.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a command that is expected to end, ended.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to its end (at most [`START_TIMEOUT`]; a command still running
/// then is killed and the test fails).
pub fn run_to_exit(mut cmd: Command) -> Exit {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"));
    let mut child = cmd.spawn().expect("the binary starts");
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the command did not exit within {START_TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
                read_to_string_lossy(&out_path),
                read_to_string_lossy(&err_path)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Exit {
        status,
        stdout: read_to_string_lossy(&out_path),
        stderr: read_to_string_lossy(&err_path),
    }
}
