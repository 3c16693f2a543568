//! The server under test with its own temporary directory: spawn, stop,
//! kill, restart.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::process::read_to_string_lossy;
use super::{command, stored_counts, Client, Server, StoredCounts, START_TIMEOUT};

/// The server under test with its own temporary directory (data dir, config
/// file, stderr log). Derefs to its [`Client`].
pub struct TestApp {
    client: Client,
    server: Option<Server>,
    /// Holds the data dir, the config file and the log; removed on drop.
    _dir: TempDir,
    pub data_dir: PathBuf,
    config: Option<PathBuf>,
    env: Vec<(&'static str, OsString)>,
    pub log: PathBuf,
}

impl Deref for TestApp {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl TestApp {
    /// A server with the default settings.
    pub fn spawn() -> TestApp {
        Self::spawn_with(None)
    }

    /// A server started with `--config` naming a file holding `toml`.
    pub fn spawn_with_config(toml: &str) -> TestApp {
        Self::spawn_with(Some(toml))
    }

    /// The directories of a server that is not started yet (the data dir
    /// does not exist): for tests that prepare a store first. Its client
    /// talks to nobody until [`TestApp::start`].
    pub fn unstarted() -> TestApp {
        let dir = tempfile::tempdir().expect("a temporary directory");
        TestApp {
            client: Client::new(SocketAddr::from(([127, 0, 0, 1], 0))),
            server: None,
            data_dir: dir.path().join("data"),
            config: None,
            env: Vec::new(),
            log: dir.path().join("server.log"),
            _dir: dir,
        }
    }

    /// A server with extra environment variables (e.g. `RUST_LOG`).
    pub fn spawn_with_env(env: &[(&'static str, OsString)]) -> TestApp {
        Self::spawn_with_all(None, env.to_vec())
    }

    fn spawn_with(toml: Option<&str>) -> TestApp {
        Self::spawn_with_all(toml, Vec::new())
    }

    fn spawn_with_all(toml: Option<&str>, env: Vec<(&'static str, OsString)>) -> TestApp {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data_dir = dir.path().join("data");
        let log = dir.path().join("server.log");
        let config = toml.map(|toml| {
            let path = dir.path().join("config.toml");
            std::fs::write(&path, toml).expect("write the config file");
            path
        });
        let server = Self::launch(&data_dir, config.as_deref(), &env, &log)
            .unwrap_or_else(|e| panic!("the server did not start: {e}"));
        TestApp {
            client: Client::new(server.addr),
            server: Some(server),
            _dir: dir,
            data_dir,
            config,
            env,
            log,
        }
    }

    fn launch(
        data_dir: &Path,
        config: Option<&Path>,
        env: &[(&str, OsString)],
        log: &Path,
    ) -> Result<Server, String> {
        let mut args: Vec<OsString> = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data_dir.into(),
        ];
        if let Some(config) = config {
            args.push("--config".into());
            args.push(config.into());
        }
        Server::start(command(&args, env), log)
    }

    /// A client of the current server, to move into a thread.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Sends a signal (`HUP`, `TERM`, …) to the running server.
    pub fn signal(&self, name: &str) {
        self.server
            .as_ref()
            .expect("the server is running")
            .signal(name);
    }

    /// SIGKILLs the server and waits for it to be gone.
    pub fn kill(&mut self) {
        drop(self.server.take());
    }

    /// Stops the server as an operator would (SIGTERM) and waits for it to
    /// exit, which it does only after closing the store.
    #[track_caller]
    pub fn stop(&mut self) {
        let mut server = self.server.take().expect("the server is running");
        server.signal("TERM");
        let status = server
            .wait_exit(START_TIMEOUT)
            .unwrap_or_else(|| panic!("the server did not stop within {START_TIMEOUT:?}"));
        assert!(status.success(), "the server stopped with {status}");
    }

    /// Sends SIGTERM and waits at most `timeout` for the server to exit; its
    /// exit status, or `None` when it was still running then (it is killed).
    pub fn terminate_within(
        &mut self,
        timeout: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let mut server = self.server.take().expect("the server is running");
        server.signal("TERM");
        server.wait_exit(timeout)
    }

    /// Starts the server again on the same data dir (and config), on a new port.
    #[track_caller]
    pub fn start(&mut self) {
        assert!(self.server.is_none(), "the server is already running");
        let server = Self::launch(&self.data_dir, self.config.as_deref(), &self.env, &self.log)
            .unwrap_or_else(|e| panic!("the server did not start again: {e}"));
        self.client = Client::new(server.addr);
        self.server = Some(server);
    }

    /// SIGKILL, then start again on the same data dir.
    #[track_caller]
    pub fn restart(&mut self) {
        self.kill();
        self.start();
    }

    /// Kills the server, counts the stored records, and starts it again.
    /// Only writes acknowledged before are sure to be on disk: callers make
    /// an acknowledged write after the requests whose effect they check.
    pub fn stored_counts(&mut self) -> StoredCounts {
        self.kill();
        let counts = stored_counts(&self.data_dir);
        self.start();
        counts
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = read_to_string_lossy(&self.log);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- server stderr (last 40 lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
