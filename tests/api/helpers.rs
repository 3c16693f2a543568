//! The test harness: starts the real `pod-identity-store` binary on
//! 127.0.0.1 port 0 with a fresh temporary data directory and talks HTTP to
//! it, one helper per endpoint.
//!
//! Every answer goes through [`check_answer`], which holds the rules every
//! response must keep whatever the request: never a 5xx, always an
//! `x-amzn-requestid`, and errors always in the restJson1 error form.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tempfile::TempDir;

/// The account every ARN carries by default.
pub const ACCOUNT: &str = "123456789012";
/// The one line the server prints on stdout once it serves.
pub const READY_PREFIX: &str = "pod-identity-store listening on http://";
/// The same line of a server with `server.tls` set.
pub const READY_PREFIX_TLS: &str = "pod-identity-store listening on https://";
/// How long a start-up (or a command expected to exit) may take.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one HTTP request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The environment variables that configure the server; cleared in every
/// child unless a test sets one on purpose.
pub const ENV_VARS: [&str; 3] = [
    "POD_IDENTITY_STORE_LISTEN",
    "POD_IDENTITY_STORE_DATA_DIR",
    "POD_IDENTITY_STORE_CONFIG",
];
/// The cluster states of the Model, in its order.
pub const ALL_STATUSES: [&str; 6] = [
    "CREATING", "ACTIVE", "DELETING", "FAILED", "UPDATING", "PENDING",
];
/// What the message of a refused change to an immutable member says.
pub const IMMUTABLE_RULE: &str = "cannot be moved between clusters, namespaces or service accounts";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pod-identity-store")
}

/// An IAM role ARN in the server's default account.
pub fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// Seconds since the epoch on the test's clock.
pub fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
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

fn read_to_string_lossy(path: &Path) -> String {
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
    pub fn start(mut cmd: Command, log: &Path) -> Result<Server, String> {
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
                Ok(line) => match line
                    .strip_prefix(READY_PREFIX)
                    .or_else(|| line.strip_prefix(READY_PREFIX_TLS))
                {
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

/// One HTTP answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Answer {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub error_type: Option<String>,
    pub request_id: Option<String>,
    pub content_type: Option<String>,
    pub allow: Option<String>,
    pub text: String,
    /// The body as JSON; `Null` when it is empty or not JSON.
    pub body: Value,
}

impl Answer {
    pub fn from_response(
        method: &str,
        path: &str,
        response: ureq::Response,
    ) -> Result<Self, String> {
        let header = |name: &str| response.header(name).map(str::to_owned);
        let status = response.status();
        let error_type = header("x-amzn-errortype");
        let request_id = header("x-amzn-requestid");
        let content_type = header("content-type");
        let allow = header("allow");
        let text = response
            .into_string()
            .map_err(|e| format!("{method} {path}: cannot read the body: {e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            error_type,
            request_id,
            content_type,
            allow,
            text,
            body,
        })
    }

    /// The body of a 200 answer (the test fails on anything else).
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(
            self.status, 200,
            "{} {} expected 200, got {} {:?}: {}",
            self.method, self.path, self.status, self.error_type, self.text
        );
        &self.body
    }

    /// `association` of a 200 answer.
    #[track_caller]
    pub fn association(&self) -> Value {
        let association = self.ok()["association"].clone();
        assert!(association.is_object(), "no association in {}", self.text);
        association
    }

    /// `cluster` of a 200 answer.
    #[track_caller]
    pub fn cluster(&self) -> Value {
        let cluster = self.ok()["cluster"].clone();
        assert!(cluster.is_object(), "no cluster in {}", self.text);
        cluster
    }

    /// The message of an error answer with this status and type.
    #[track_caller]
    pub fn error(&self, status: u16, error_type: &str) -> String {
        assert_eq!(
            (self.status, self.error_type.as_deref()),
            (status, Some(error_type)),
            "{} {}: unexpected answer: {}",
            self.method,
            self.path,
            self.text
        );
        self.body["message"]
            .as_str()
            .expect("checked by check_answer")
            .to_owned()
    }

    /// The `clusterName` member of an error body.
    pub fn error_cluster(&self) -> Option<&str> {
        self.body["clusterName"].as_str()
    }
}

/// The rules every answer keeps: never a 5xx, always a request ID, JSON
/// bodies, and errors in the restJson1 form (type header, JSON `message`).
#[track_caller]
pub fn check_answer(answer: &Answer) {
    let what = format!("{} {}", answer.method, answer.path);
    assert!(
        answer.status < 500,
        "{what} answered {}: {}",
        answer.status,
        answer.text
    );
    assert!(
        answer
            .request_id
            .as_deref()
            .is_some_and(|id| !id.is_empty()),
        "{what}: no x-amzn-requestid header"
    );
    if !answer.text.is_empty() {
        assert!(
            answer
                .content_type
                .as_deref()
                .is_some_and(|ct| ct.starts_with("application/json")),
            "{what}: content-type {:?}",
            answer.content_type
        );
        assert!(
            answer.body.is_object(),
            "{what}: the body is not a JSON object: {}",
            answer.text
        );
    }
    if answer.status >= 400 {
        assert!(
            answer.error_type.as_deref().is_some_and(|t| !t.is_empty()),
            "{what} answered {} without X-Amzn-ErrorType: {}",
            answer.status,
            answer.text
        );
        assert!(
            answer.body["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what} answered {} without a message: {}",
            answer.status,
            answer.text
        );
    } else {
        assert_eq!(
            answer.error_type, None,
            "{what}: a success with an error type"
        );
    }
}

/// An HTTP client for one server address; cheap to clone into threads.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    pub base: String,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        assert!(addr.ip().is_loopback(), "tests talk to 127.0.0.1 only");
        Client {
            agent: ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT).build(),
            base: format!("http://{addr}"),
        }
    }

    /// Any request; `Err` only when no HTTP answer came (e.g. the server died).
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Answer, String> {
        let mut request = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(content_type) = content_type {
            request = request.set("Content-Type", content_type);
        }
        let result = match body {
            Some(body) => request.send_bytes(body),
            None => request.call(),
        };
        let answer = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => {
                Answer::from_response(method, path, response)?
            }
            Err(ureq::Error::Transport(e)) => return Err(format!("{method} {path}: {e}")),
        };
        check_answer(&answer);
        Ok(answer)
    }

    /// A request whose body goes with chunked transfer encoding (no Content-Length).
    #[track_caller]
    pub fn request_chunked(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Answer {
        let result = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Content-Type", content_type)
            .send(body);
        let answer = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => {
                Answer::from_response(method, path, response).unwrap_or_else(|e| panic!("{e}"))
            }
            Err(ureq::Error::Transport(e)) => panic!("no answer: {method} {path}: {e}"),
        };
        check_answer(&answer);
        answer
    }

    /// Any request; the test fails when no HTTP answer came.
    #[track_caller]
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Answer {
        self.try_request(method, path, content_type, body)
            .unwrap_or_else(|e| panic!("no answer: {e}"))
    }

    #[track_caller]
    pub fn get(&self, path: &str) -> Answer {
        self.request("GET", path, None, None)
    }

    #[track_caller]
    pub fn delete(&self, path: &str) -> Answer {
        self.request("DELETE", path, None, None)
    }

    #[track_caller]
    pub fn send_json(&self, method: &str, path: &str, body: &Value) -> Answer {
        let bytes = serde_json::to_vec(body).expect("JSON");
        self.request(method, path, Some("application/json"), Some(&bytes))
    }

    // --- one helper per endpoint -------------------------------------------

    /// CreateCluster with the members the Model requires.
    #[track_caller]
    pub fn create_cluster(&self, name: &str) -> Answer {
        self.create_cluster_with(&json!({
            "name": name,
            "roleArn": role("eks-cluster-role"),
            "resourcesVpcConfig": {},
        }))
    }

    #[track_caller]
    pub fn create_cluster_with(&self, body: &Value) -> Answer {
        self.send_json("POST", "/clusters", body)
    }

    #[track_caller]
    pub fn describe_cluster(&self, name: &str) -> Answer {
        self.get(&format!("/clusters/{name}"))
    }

    /// ListClusters; `query` is empty or starts with `?`.
    #[track_caller]
    pub fn list_clusters(&self, query: &str) -> Answer {
        self.get(&format!("/clusters{query}"))
    }

    #[track_caller]
    pub fn delete_cluster(&self, name: &str) -> Answer {
        self.delete(&format!("/clusters/{name}"))
    }

    /// The admin route that sets any cluster status.
    #[track_caller]
    pub fn set_cluster_status(&self, name: &str, status: &str) -> Answer {
        self.send_json(
            "PUT",
            &format!("/admin/v1/clusters/{name}/status"),
            &json!({ "status": status }),
        )
    }

    #[track_caller]
    pub fn create_association(&self, cluster: &str, body: &Value) -> Answer {
        self.send_json(
            "POST",
            &format!("/clusters/{cluster}/pod-identity-associations"),
            body,
        )
    }

    #[track_caller]
    pub fn describe_association(&self, cluster: &str, id: &str) -> Answer {
        self.get(&format!(
            "/clusters/{cluster}/pod-identity-associations/{id}"
        ))
    }

    #[track_caller]
    pub fn update_association(&self, cluster: &str, id: &str, body: &Value) -> Answer {
        self.send_json(
            "POST",
            &format!("/clusters/{cluster}/pod-identity-associations/{id}"),
            body,
        )
    }

    /// UpdatePodIdentityAssociation that reports a dead server as `Err`.
    pub fn try_update_association(
        &self,
        cluster: &str,
        id: &str,
        body: &Value,
    ) -> Result<Answer, String> {
        let bytes = serde_json::to_vec(body).expect("JSON");
        self.try_request(
            "POST",
            &format!("/clusters/{cluster}/pod-identity-associations/{id}"),
            Some("application/json"),
            Some(&bytes),
        )
    }

    /// ListPodIdentityAssociations; `query` is empty or starts with `?`
    /// (build it with [`query`]).
    #[track_caller]
    pub fn list_associations(&self, cluster: &str, query: &str) -> Answer {
        self.get(&format!(
            "/clusters/{cluster}/pod-identity-associations{query}"
        ))
    }

    #[track_caller]
    pub fn delete_association(&self, cluster: &str, id: &str) -> Answer {
        self.delete(&format!(
            "/clusters/{cluster}/pod-identity-associations/{id}"
        ))
    }

    /// TagResource with `{"tags": tags}`; the ARN is percent-encoded as a label.
    #[track_caller]
    pub fn tag_resource(&self, arn: &str, tags: &Value) -> Answer {
        self.tag_resource_with(arn, &json!({ "tags": tags }))
    }

    /// TagResource with any body.
    #[track_caller]
    pub fn tag_resource_with(&self, arn: &str, body: &Value) -> Answer {
        self.send_json("POST", &format!("/tags/{}", encode(arn)), body)
    }

    /// UntagResource with one `tagKeys` parameter per key.
    #[track_caller]
    pub fn untag_resource(&self, arn: &str, keys: &[&str]) -> Answer {
        let pairs: Vec<(&str, &str)> = keys.iter().map(|k| ("tagKeys", *k)).collect();
        self.delete(&format!("/tags/{}{}", encode(arn), query(&pairs)))
    }

    #[track_caller]
    pub fn list_tags(&self, arn: &str) -> Answer {
        self.get(&format!("/tags/{}", encode(arn)))
    }

    /// `GET /admin/v1/export`: the export's text. Checks what every export
    /// answer must have (200, JSON lines, a request ID); the test fails on
    /// anything else.
    #[track_caller]
    pub fn export(&self) -> String {
        self.try_export().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `GET /admin/v1/export`, with `Err` for any failure.
    pub fn try_export(&self) -> Result<String, String> {
        use std::io::Read;
        let path = "/admin/v1/export";
        let response = match self.agent.get(&format!("{}{path}", self.base)).call() {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                return Err(format!(
                    "GET {path} answered {status}: {}",
                    response.into_string().unwrap_or_default()
                ))
            }
            Err(e) => return Err(format!("GET {path}: {e}")),
        };
        let content_type = response.header("content-type").map(str::to_owned);
        if content_type.as_deref() != Some("application/x-ndjson") {
            return Err(format!("GET {path}: content-type {content_type:?}"));
        }
        if response
            .header("x-amzn-requestid")
            .is_none_or(str::is_empty)
        {
            return Err(format!("GET {path}: no x-amzn-requestid header"));
        }
        // Not `into_string`, which stops at 10 MB.
        let mut text = String::new();
        response
            .into_reader()
            .read_to_string(&mut text)
            .map_err(|e| format!("GET {path}: cannot read the body: {e}"))?;
        Ok(text)
    }

    /// Every association of a listing, following `nextToken` (at most 200
    /// pages). `filters` are extra query pairs such as `("namespace", "ns")`.
    #[track_caller]
    pub fn list_all_associations(&self, cluster: &str, filters: &[(&str, &str)]) -> Vec<Value> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..200 {
            let mut pairs = filters.to_vec();
            if let Some(token) = &token {
                pairs.push(("nextToken", token));
            }
            let page = self.list_associations(cluster, &query(&pairs)).ok().clone();
            items.extend(
                page["associations"]
                    .as_array()
                    .unwrap_or_else(|| panic!("no associations list in {page}"))
                    .iter()
                    .cloned(),
            );
            match page["nextToken"].as_str() {
                Some(next) => token = Some(next.to_owned()),
                None => return items,
            }
        }
        panic!("listing {cluster} {filters:?} did not end within 200 pages");
    }

    // --- givens -------------------------------------------------------------

    /// A new cluster, read back as ACTIVE (the default activation delay is 0).
    #[track_caller]
    pub fn given_cluster(&self, name: &str) -> Value {
        let created = self.create_cluster(name).cluster();
        assert_eq!(created["status"], "CREATING");
        let described = self.describe_cluster(name).cluster();
        assert_eq!(described["status"], "ACTIVE", "{described}");
        described
    }

    /// A new association, as Create answered it.
    #[track_caller]
    pub fn given_association(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
        role_arn: &str,
    ) -> Value {
        self.create_association(
            cluster,
            &json!({
                "namespace": namespace,
                "serviceAccount": service_account,
                "roleArn": role_arn,
            }),
        )
        .association()
    }
}

/// Percent-encodes a path label or query value as the SDKs do (Smithy
/// httpLabel): every byte outside `A-Z a-z 0-9 - . _ ~` becomes `%XX`.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A query string (`?k=v&k2=v2`, each part encoded), or "" with no pairs.
pub fn query(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

/// The ARN of a cluster of the server's default identity.
pub fn cluster_arn(name: &str) -> String {
    format!("arn:aws:eks:us-east-1:{ACCOUNT}:cluster/{name}")
}

/// A string member of a JSON object.
#[track_caller]
pub fn s<'a>(value: &'a Value, member: &str) -> &'a str {
    value[member]
        .as_str()
        .unwrap_or_else(|| panic!("{member} is not a string in {value}"))
}

/// A timestamp member (epoch seconds, a JSON number).
#[track_caller]
pub fn ts(value: &Value, member: &str) -> f64 {
    value[member]
        .as_f64()
        .unwrap_or_else(|| panic!("{member} is not a number in {value}"))
}

/// How many records each tree of a stopped store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredCounts {
    pub clusters: usize,
    pub associations: usize,
    pub index: usize,
    pub tokens: usize,
}

/// Counts the records of the store in `data_dir` (no server may hold it).
pub fn stored_counts(data_dir: &Path) -> StoredCounts {
    use pod_identity_store::store::keys;
    let db = open_store_directly(data_dir).expect("the store opens");
    let count = |tree: &str| db.open_tree(tree).expect("tree").len();
    StoredCounts {
        clusters: count(keys::TREE_CLUSTERS),
        associations: count(keys::TREE_ASSOCIATIONS),
        index: count(keys::TREE_ASSOCIATION_INDEX),
        tokens: count(keys::TREE_TOKENS),
    }
}

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

/// The store opened with sled itself, as tests do to look inside it or to
/// damage it. Dropping it waits until sled has let go of its lock on the
/// data file, so that a server or command started next does not find the
/// store "in use by another process": sled closes the file only once the
/// last of its internal references is dropped, some of them later, through
/// its epoch-based garbage collection.
pub struct DirectStore {
    db: Option<sled::Db>,
    data_file: PathBuf,
}

/// The log position up to which sled's newest recovery snapshot (a file
/// `snap.<position in hex>`) covers the store; 0 without one.
pub fn newest_snapshot_lsn(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().ok()?;
            u64::from_str_radix(name.strip_prefix("snap.")?, 16).ok()
        })
        .max()
        .unwrap_or(0)
}

/// Opens (or creates) the store as the server does (`store::open_db`):
/// compressed if sled's `conf` says it was created so, else not.
pub fn open_store_directly(data_dir: &Path) -> sled::Result<DirectStore> {
    let compression = pod_identity_store::store::stored_compressed(data_dir);
    Ok(DirectStore {
        db: Some(
            sled::Config::new()
                .path(data_dir)
                .use_compression(compression)
                .compression_factor(1)
                .open()?,
        ),
        data_file: data_dir.join("db"),
    })
}

impl std::ops::Deref for DirectStore {
    type Target = sled::Db;
    fn deref(&self) -> &sled::Db {
        self.db.as_ref().expect("open until dropped")
    }
}

impl Drop for DirectStore {
    fn drop(&mut self) {
        drop(self.db.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            // Runs the garbage collection that drops sled's last references.
            sled::pin().flush();
            let free = File::open(&self.data_file).is_ok_and(|f| f.try_lock().is_ok());
            if free {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
