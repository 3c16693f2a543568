//! Load: throughput and latency of the four hot operations at concurrency 1,
//! 16 and 64, next to the disk's own fsync rate measured in the same run.
//!
//! Run: `cargo bench --bench load` (about 80 s with the defaults). It starts
//! the release server on a fresh temp data dir, seeds a cluster of 5,000
//! associations for List and a set of associations to Describe and Update,
//! then runs, for each operation and concurrency, that many clients, each
//! with its own keep-alive connection, sharing one thread per core
//! (`common::http`, a minimal async client, so that the load generator
//! leaves the shared cores to the server, as wrk does; the setup uses ureq):
//! - DescribePodIdentityAssociation;
//! - UpdatePodIdentityAssociation, durable, each with a fresh
//!   `clientRequestToken` (as the AWS SDKs send) and a roleArn that differs
//!   from the association's current one, so every update writes;
//! - CreatePodIdentityAssociation + DeletePodIdentityAssociation, one pair
//!   counted as one operation;
//! - ListPodIdentityAssociations, pages of 100 through the 5,000, following
//!   `nextToken`;
//! - AssumeRoleForPodIdentity (EKS Auth, the `local` provider), durable (the
//!   minted credentials are kept), each client cycling through service-account
//!   tokens of `POD_TOKENS` service accounts that each have an association.
//!
//! Before and after the load it writes 4 KiB blocks with an fsync after each
//! into a file beside the data dir (same file system), to know the disk's raw
//! rate of durable single-stream writes; for the durable operations it reads
//! the server's group-commit counters before and after, for the writes per
//! flush. It also reads the server's CPU time from /proc, since the clients
//! share its cores: requests per server CPU second are the figure per core.
//!
//! Settings through the environment: `LOAD_SECONDS` (per measurement, 5),
//! `LOAD_CONCURRENCY` (`1,16,64`), `LOAD_OPS` (some of
//! `describe,update,create-delete,list,assume-role`; all by default),
//! `LOAD_FSYNC_SECONDS` (2), `LOAD_DIR`
//! (where the temp dir is made; the system temp dir by default),
//! `LOAD_OUTPUT` (the JSON report, `target/load.json`), `LOAD_SERVER_LOG`
//! (the server's `RUST_LOG`, `warn`; its log goes to this bench's stderr),
//! `LOAD_AUTH`: `none` (the default), `sigv4` (the server checks SigV4
//! signatures against a generated key file, and every request, seeding
//! included, is signed), or `both` (the whole run unsigned, then again
//! signed on a fresh server, with the signed/unsigned ratio of each
//! measurement). The clients sign with the server's own `auth::sigv4`
//! functions, the cheapest correct signer at hand: they share the cores.
//!
//! `LOAD_FAULTS_AB=1` (the cost of the fault rules' check: each Describe
//! measurement is made four times, alternating between no rules, the
//! server's default, and one fault rule in force that matches no request,
//! which takes the check past its one atomic load; see `docs/faults.md`).
//! Traffic goes only to 127.0.0.1; the server is killed at the end.
//!
//! The load generator runs on the same cores as the server, so on a small
//! machine the figures are those of server and clients together.

mod common;

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use tokio::sync::Barrier;

use common::http::Sign;
use common::{connect, list_page, process_cpu_seconds, spawn_clients, ClientResult, Summary};
use pod_identity_store::auth::sigv4;

const ROLE: &str = "arn:aws:iam::123456789012:role/load";
/// The List cluster: as many associations as EKS allows in one cluster.
const LIST_SIZE: usize = 5000;
const PAGE: usize = 100;
/// Associations for Describe and Update; each Update client owns a disjoint
/// share of them, so it knows the current roleArn and can always change it.
const HOT_SIZE: usize = 1024;
/// Service accounts with an association and a token, for AssumeRoleForPodIdentity.
const POD_TOKENS: usize = 64;
const ASSUME_ROLE_PATH: &str = "/clusters/pods/assume-role-for-pod-identity";

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The server process, killed when the bench ends or panics.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The bench's one key (`LOAD_AUTH=sigv4`), in the key file it writes.
const ACCESS_KEY_ID: &str = "AKIDLOADBENCH0000001";
const SECRET: &str = "load/bench+secret0000000000000000000000001";
const REGION: &str = "us-east-1";

/// Signs requests as an AWS SDK does: SigV4 over `host` and `x-amz-date`,
/// the signing key derived once a day.
#[derive(Default)]
struct Signer {
    key: Mutex<Option<(String, [u8; 32])>>,
}

impl Signer {
    /// The `x-amz-date` and `authorization` values for a request to `host`.
    fn sign(&self, method: &str, host: &str, path_and_query: &str, body: &str) -> (String, String) {
        let now = time::OffsetDateTime::now_utc();
        let amz_date = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let date = &amz_date[..8];
        let key = {
            let mut cached = self.key.lock().unwrap();
            match &*cached {
                Some((day, key)) if day == date => *key,
                _ => {
                    let key = sigv4::signing_key(SECRET, date, REGION, "eks");
                    *cached = Some((date.to_owned(), key));
                    key
                }
            }
        };
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let request = sigv4::Request {
            method,
            path,
            query,
            headers: |name: &str| {
                let value: &[u8] = match name {
                    "host" => host.as_bytes(),
                    _ => amz_date.as_bytes(),
                };
                std::iter::once(value)
            },
        };
        let signed_headers = "host;x-amz-date";
        let canonical = sigv4::canonical_request(
            &request,
            signed_headers,
            &sigv4::payload_sha256(body.as_bytes()),
        );
        let scope = format!("{date}/{REGION}/eks/aws4_request");
        let signature =
            sigv4::signature(&key, &sigv4::string_to_sign(&amz_date, &scope, &canonical));
        let authorization = format!(
            "{} Credential={ACCESS_KEY_ID}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            sigv4::ALGORITHM
        );
        (amz_date, authorization)
    }

    /// For `common::http::Connection`, which sends `Host: 127.0.0.1`.
    fn for_connections(self: &Arc<Self>) -> Sign {
        let signer = Arc::clone(self);
        Arc::new(move |method: &str, path: &str, body: &str| {
            let (amz_date, authorization) = signer.sign(method, "127.0.0.1", path, body);
            format!("X-Amz-Date: {amz_date}\r\nAuthorization: {authorization}\r\n")
        })
    }
}

/// Starts the release server on `data`; with `signed`, it checks SigV4
/// signatures against a key file written beside `data`.
fn start_server(data: &Path, signed: bool) -> (Server, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pod-identity-store"));
    command
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data);
    if signed {
        use std::os::unix::fs::PermissionsExt;
        let dir = data.parent().unwrap();
        let credentials = dir.join("credentials");
        std::fs::write(
            &credentials,
            format!(
                "[load]\naws_access_key_id = {ACCESS_KEY_ID}\naws_secret_access_key = {SECRET}\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = dir.join("auth.toml");
        std::fs::write(
            &config,
            format!(
                "[auth]\nmode = \"sigv4\"\ncredentials_file = {:?}\n",
                credentials.display().to_string()
            ),
        )
        .unwrap();
        command.arg("--config").arg(config);
    }
    let mut child = command
        // `LOAD_SERVER_LOG` (a `RUST_LOG` filter) shows the server's own
        // view, e.g. `pod_identity_store::store::commit=trace` for each flush.
        .env(
            "RUST_LOG",
            std::env::var("LOAD_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server(child);
    let base = line
        .trim()
        .strip_prefix("pod-identity-store listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from the server: {line:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    (server, base)
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .max_idle_connections_per_host(1)
        .build()
}

/// The group-commit counters: (flushes, writes flushed, write groups).
fn commit_counters(base: &str) -> (u64, u64, u64) {
    let page = ureq::get(&format!("{base}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let metric = |name: &str| {
        page.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics")) as u64
    };
    (
        metric("pod_identity_store_flushes_total"),
        metric("pod_identity_store_writes_flushed_total"),
        metric("pod_identity_store_write_groups_total"),
    )
}

/// CPU time used so far: the server process's CPU seconds, and the whole
/// machine's busy and total ticks, from /proc. The clients run on the same
/// cores, so the server's share says how much of the machine it got, and
/// requests per server CPU second are the figure per core.
fn cpu_times(pid: u32) -> (f64, u64, u64) {
    let machine = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = machine
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = cpu.iter().take(8).sum();
    // idle and iowait are the 4th and 5th numbers.
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    (process_cpu_seconds(pid), total - idle, total)
}

/// One client's view of one request: Ok(body) on 2xx, Err(what) otherwise.
fn send(request: ureq::Request, body: Option<&str>) -> Result<String, String> {
    let result = match body {
        Some(b) => request
            .set("Content-Type", "application/json")
            .send_string(b),
        None => request.call(),
    };
    match result {
        // Reading the body to its end returns the connection to the agent's pool.
        Ok(response) => {
            let mut text = String::new();
            response
                .into_reader()
                .read_to_string(&mut text)
                .map_err(|e| format!("reading the body: {e}"))?;
            Ok(text)
        }
        Err(ureq::Error::Status(code, response)) => {
            let kind = response.header("X-Amzn-ErrorType").unwrap_or("").to_owned();
            let text = response.into_string().unwrap_or_default();
            Err(format!("{code} {kind} {text}"))
        }
        Err(e) => Err(format!("transport: {e}")),
    }
}

fn must(result: Result<String, String>) -> Value {
    serde_json::from_str(&result.unwrap_or_else(|e| panic!("seeding failed: {e}"))).unwrap()
}

/// A setup request (ureq), signed when `signer` is given.
fn call(
    agent: &ureq::Agent,
    base: &str,
    signer: Option<&Signer>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<String, String> {
    let mut request = agent.request(method, &format!("{base}{path}"));
    if let Some(signer) = signer {
        let host = base.strip_prefix("http://").unwrap_or(base);
        let (amz_date, authorization) = signer.sign(method, host, path, body.unwrap_or(""));
        request = request
            .set("X-Amz-Date", &amz_date)
            .set("Authorization", &authorization);
    }
    send(request, body)
}

fn create_cluster(agent: &ureq::Agent, base: &str, signer: Option<&Signer>, name: &str) {
    let body = json!({"name": name, "roleArn": ROLE, "resourcesVpcConfig": {}}).to_string();
    must(call(agent, base, signer, "POST", "/clusters", Some(&body)));
}

/// Creates `count` associations in `cluster` from `threads` concurrent
/// clients; returns their IDs in creation order of their service accounts.
fn seed(
    base: &str,
    signer: Option<&Arc<Signer>>,
    cluster: &str,
    count: usize,
    threads: usize,
) -> Vec<String> {
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (base, cluster, signer) = (base.to_owned(), cluster.to_owned(), signer.cloned());
            std::thread::spawn(move || {
                let agent = agent();
                let path = format!("/clusters/{cluster}/pod-identity-associations");
                (t..count)
                    .step_by(threads)
                    .map(|i| {
                        let body = json!({"namespace": "load", "serviceAccount": format!("sa-{i}"), "roleArn": format!("{ROLE}0")});
                        let a = must(call(&agent, &base, signer.as_deref(), "POST", &path, Some(&body.to_string())));
                        (i, a["association"]["associationId"].as_str().unwrap().to_owned())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<(usize, String)> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    ids.sort();
    ids.into_iter().map(|(_, id)| id).collect()
}

/// An AssumeRoleForPodIdentity body with a token of cluster `pods` for each
/// service account `sa-0` … of namespace `load` (`seed`'s).
fn pod_tokens(agent: &ureq::Agent, base: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let body = json!({"namespace": "load", "serviceAccount": format!("sa-{i}"),
                              "podName": format!("pod-{i}"), "expirationSeconds": 86400});
            let answer = must(send(
                agent.post(&format!(
                    "{base}/admin/v1/clusters/pods/service-account-token"
                )),
                Some(&body.to_string()),
            ));
            json!({ "token": answer["token"] }).to_string()
        })
        .collect()
}

/// Writes 4 KiB at increasing offsets into a new file in `dir`, with
/// `sync_all` after each write, for `seconds`; returns fsyncs per second.
/// This is the rate one durable writer gets from the disk; group commit is
/// what lets the server's durable writes per second exceed it.
fn fsync_rate(dir: &Path, seconds: f64) -> (u64, f64) {
    let path = dir.join("fsync-probe");
    let file = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let block = [0x5au8; 4096];
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        file.write_all_at(&block, n * 4096).unwrap();
        file.sync_all().unwrap();
        n += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path).unwrap();
    (n, n as f64 / elapsed)
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Describe,
    /// Describe with a fault rule in force that matches no request.
    DescribeUnderRule,
    Update,
    CreateDelete,
    List,
    AssumeRole,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Describe => "Describe",
            Op::DescribeUnderRule => "Describe, 1 rule",
            Op::Update => "Update",
            Op::CreateDelete => "Create+Delete",
            Op::List => "List (page of 100)",
            Op::AssumeRole => "AssumeRoleForPodIdentity",
        }
    }

    fn durable(self) -> bool {
        matches!(self, Op::Update | Op::CreateDelete | Op::AssumeRole)
    }
}

#[derive(Deserialize)]
struct Created {
    association: CreatedAssociation,
}

#[derive(Deserialize)]
struct CreatedAssociation {
    #[serde(rename = "associationId")]
    association_id: String,
}

struct Shared {
    base: String,
    addr: SocketAddr,
    /// Signs every request (`LOAD_AUTH=sigv4`), or `None`.
    sign: Option<Sign>,
    server_pid: u32,
    hot: Vec<String>,
    /// The roleArn suffix (0 or 1) each hot association holds now.
    roles: Vec<AtomicBool>,
    /// AssumeRoleForPodIdentity request bodies, one per service account.
    pod_tokens: Vec<String>,
}

/// One client: runs `op` until `deadline`-long time has passed since the barrier.
async fn client(
    op: Op,
    c: usize,
    clients: usize,
    shared: &Shared,
    barrier: &Barrier,
    seconds: f64,
) -> ClientResult {
    let conn = connect(shared.addr, shared.sign.clone()).await;
    let mine: Vec<usize> = (c..shared.hot.len()).step_by(clients).collect();
    let assoc_paths: Vec<String> = mine
        .iter()
        .map(|&i| format!("/clusters/hot/pod-identity-associations/{}", shared.hot[i]))
        .collect();
    let churn_path = "/clusters/churn/pod-identity-associations";
    let list_path = format!("/clusters/list/pod-identity-associations?maxResults={PAGE}");
    let mut out = ClientResult::default();
    let mut next_token: Option<String> = None;

    barrier.wait().await;
    let mut conn = match conn {
        Ok(conn) => conn,
        Err(e) => return ClientResult::failed(e),
    };
    let started = Instant::now();
    let mut n = 0usize;
    while !out.broken && started.elapsed().as_secs_f64() < seconds {
        let k = n % mine.len();
        n += 1;
        let t0 = Instant::now();
        match op {
            Op::Describe | Op::DescribeUnderRule => {
                let r = conn.send("GET", &assoc_paths[k], None).await.map(drop);
                out.record(t0, r);
            }
            Op::Update => {
                // This client alone updates association `mine[k]` during the
                // measurement, so flipping the flag tracks its roleArn exactly.
                let role = !shared.roles[mine[k]].fetch_xor(true, Ordering::Relaxed);
                let body = format!(
                    r#"{{"roleArn":"{ROLE}{}","clientRequestToken":"update-{clients}-{c}-{n}"}}"#,
                    u8::from(role)
                );
                let r = conn
                    .send("POST", &assoc_paths[k], Some(&body))
                    .await
                    .map(drop);
                out.record(t0, r);
            }
            Op::CreateDelete => {
                let body = format!(
                    r#"{{"namespace":"churn","serviceAccount":"sa-{clients}-{c}-{n}","roleArn":"{ROLE}0","clientRequestToken":"create-{clients}-{c}-{n}"}}"#
                );
                let created = conn
                    .send("POST", churn_path, Some(&body))
                    .await
                    .and_then(|b| {
                        serde_json::from_str::<Created>(b)
                            .map(|c| c.association.association_id)
                            .map_err(|_| "create answered without an associationId".to_owned())
                    });
                let r = match created {
                    Ok(id) => conn
                        .send("DELETE", &format!("{churn_path}/{id}"), None)
                        .await
                        .map(drop),
                    Err(e) => Err(e),
                };
                out.record(t0, r);
            }
            Op::List => {
                let r = list_page(&mut conn, &list_path, next_token.as_deref()).await;
                next_token = out.record(t0, r).flatten();
            }
            Op::AssumeRole => {
                let body = &shared.pod_tokens[(c + n) % shared.pod_tokens.len()];
                let r = conn
                    .send("POST", ASSUME_ROLE_PATH, Some(body))
                    .await
                    .map(drop);
                out.record(t0, r);
            }
        }
    }
    out
}

struct Measurement {
    op: Op,
    /// Whether the requests were signed (and the server checked them).
    signed: bool,
    concurrency: usize,
    seconds: f64,
    rps: f64,
    /// Requests, latencies and errors, as the clients saw them.
    latency: Summary,
    /// Durable operations: (flushes, writes flushed, write groups) during the measurement.
    commits: Option<(u64, u64, u64)>,
    /// CPU seconds the server used during the measurement.
    server_cpu_s: f64,
    /// Share of all cores' time that was busy (server, clients and anything else).
    machine_busy: f64,
}

/// A fault rule that no request of the bench matches (no cluster has that
/// name), so it costs the check and injects nothing.
const NON_MATCHING_RULE: &str =
    r#"{"rules": [{"operations": ["*"], "clusters": ["no-such-cluster"], "kind": "error"}]}"#;

/// Puts `document` in force as the server's fault rules.
fn put_faults(base: &str, document: &str) {
    ureq::put(&format!("{base}/admin/v1/faults"))
        .set("Content-Type", "application/json")
        .send_string(document)
        .unwrap_or_else(|e| panic!("PUT /admin/v1/faults: {e}"));
}

fn measure(op: Op, clients: usize, shared: &Arc<Shared>, seconds: f64) -> Measurement {
    if op == Op::DescribeUnderRule {
        put_faults(&shared.base, NON_MATCHING_RULE);
        let m = measure(Op::Describe, clients, shared, seconds);
        put_faults(&shared.base, r#"{"rules": []}"#);
        return Measurement { op, ..m };
    }
    let before = commit_counters(&shared.base);
    let running = {
        let shared = shared.clone();
        spawn_clients(clients, move |c, start| {
            let shared = shared.clone();
            async move { client(op, c, clients, &shared, &start, seconds).await }
        })
    };
    running.start();
    let started = Instant::now();
    let cpu_before = cpu_times(shared.server_pid);
    let results = running.join();
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu_times(shared.server_pid);
    let after = commit_counters(&shared.base);

    let summary = Summary::of(results);
    Measurement {
        op,
        signed: false,
        concurrency: clients,
        seconds: elapsed,
        rps: summary.requests as f64 / elapsed,
        commits: op
            .durable()
            .then(|| (after.0 - before.0, after.1 - before.1, after.2 - before.2)),
        server_cpu_s: cpu_after.0 - cpu_before.0,
        machine_busy: (cpu_after.1 - cpu_before.1) as f64
            / (cpu_after.2 - cpu_before.2).max(1) as f64,
        latency: summary,
    }
}

/// With `LOAD_AUTH=both`: each measurement's signed rate over its unsigned one.
fn print_auth_ratios(results: &[Measurement]) {
    let pairs: Vec<(&Measurement, &Measurement)> = results
        .iter()
        .filter(|m| m.signed)
        .filter_map(|s| {
            let u = results.iter().find(|u| {
                !u.signed && u.op.name() == s.op.name() && u.concurrency == s.concurrency
            })?;
            Some((u, s))
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    println!("signed / unsigned, same run:");
    for (u, s) in pairs {
        println!(
            "  {:<19} {:>3} clients: {:>6.0} / {:>6.0} req/s = {:.3}; p99 {:.3} / {:.3} ms; server CPU per request {:.1} / {:.1} µs",
            s.op.name(),
            s.concurrency,
            s.rps,
            u.rps,
            s.rps / u.rps.max(1e-9),
            s.latency.p99_ms,
            u.latency.p99_ms,
            s.server_cpu_s / s.latency.requests.max(1) as f64 * 1e6,
            u.server_cpu_s / u.latency.requests.max(1) as f64 * 1e6
        );
    }
    println!();
}

fn print_table(results: &[&Measurement], fsyncs_per_s: f64) {
    println!();
    println!(
        "{:<19} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6} {:>8} {:>6} {:>12} {:>9} {:>11} {:>6}",
        "operation",
        "conc",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "wr/flush",
        "wr/tx",
        "wr/s÷fsync/s",
        "srv cores",
        "req/srv-cpu-s",
        "busy"
    );
    for m in results {
        let (per_flush, per_tx, per_fsync) = match m.commits {
            Some((flushes, writes, groups)) => (
                format!("{:.2}", writes as f64 / flushes.max(1) as f64),
                format!("{:.1}", writes as f64 / groups.max(1) as f64),
                format!("{:.2}", writes as f64 / m.seconds / fsyncs_per_s),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:<19} {:>5} {:>9} {:>9.0} {:>8.3} {:>8.3} {:>8.3} {:>6} {:>8} {:>6} {:>12} {:>9.2} {:>11.0} {:>5.0}%",
            m.op.name(),
            m.concurrency,
            m.latency.requests,
            m.rps,
            m.latency.p50_ms,
            m.latency.p99_ms,
            m.latency.p999_ms,
            m.latency.errors,
            per_flush,
            per_tx,
            per_fsync,
            m.server_cpu_s / m.seconds,
            m.latency.requests as f64 / m.server_cpu_s.max(1e-9),
            m.machine_busy * 100.0
        );
        for e in &m.latency.first_errors {
            println!("    error: {e}");
        }
    }
    println!();
}

/// Whether `LOAD_OPS` (a comma-separated list of `describe`, `update`,
/// `create-delete`, `list`; all when empty) names `op`.
fn selected(operations: &str, op: Op) -> bool {
    let key = match op {
        Op::Describe | Op::DescribeUnderRule => "describe",
        Op::Update => "update",
        Op::CreateDelete => "create-delete",
        Op::List => "list",
        Op::AssumeRole => "assume-role",
    };
    operations.trim().is_empty()
        || operations
            .split(',')
            .any(|o| o.trim().eq_ignore_ascii_case(key))
}

/// Start-up and seeding of one server.
struct ServerRun {
    signed: bool,
    ready_s: f64,
    seed_s: f64,
}

/// Starts a server on `data` (checking signatures when `signed`, and then
/// signing every request), seeds it, and measures each of `ops` at each
/// concurrency; the server is killed at the end.
fn run(
    data: &Path,
    signed: bool,
    ops: &[Op],
    concurrencies: &[usize],
    seconds: f64,
) -> (Vec<Measurement>, ServerRun) {
    let signer = signed.then(|| Arc::new(Signer::default()));
    let started_at = Instant::now();
    let (server, base) = start_server(data, signed);
    let server_pid = server.0.id();
    let ready_s = started_at.elapsed().as_secs_f64();
    let setup = agent();
    for cluster in ["list", "hot", "churn", "pods"] {
        create_cluster(&setup, &base, signer.as_deref(), cluster);
    }
    let seeding = Instant::now();
    let listed = seed(&base, signer.as_ref(), "list", LIST_SIZE, 16);
    let hot = seed(&base, signer.as_ref(), "hot", HOT_SIZE, 16);
    // AssumeRoleForPodIdentity is measured unsigned only: its tokens come
    // from an admin route, and its signature would be scoped to `eks-auth`.
    let pod_tokens = if signed {
        Vec::new()
    } else {
        seed(&base, None, "pods", POD_TOKENS, 16);
        pod_tokens(&setup, &base, POD_TOKENS)
    };
    let seed_s = seeding.elapsed().as_secs_f64();
    println!(
        "{}: seeded {} + {} associations in {seed_s:.1} s ({:.0}/s, 16 clients)",
        if signed { "signed" } else { "unsigned" },
        listed.len(),
        hot.len(),
        (listed.len() + hot.len()) as f64 / seed_s
    );
    let shared = Arc::new(Shared {
        addr: base
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .expect("the server's address"),
        base: base.clone(),
        sign: signer.as_ref().map(Signer::for_connections),
        server_pid,
        roles: hot.iter().map(|_| AtomicBool::new(false)).collect(),
        hot,
        pod_tokens,
    });
    let faults_ab = std::env::var_os("LOAD_FAULTS_AB").is_some_and(|v| v == "1");
    let mut results = Vec::new();
    for &op in ops.iter().filter(|&&op| !(signed && op == Op::AssumeRole)) {
        // A, B, A, B: a drift of the machine over the run hits both alike.
        let rounds = match op {
            Op::Describe if faults_ab => [Op::Describe, Op::DescribeUnderRule].repeat(2),
            _ => vec![op],
        };
        for (op, &clients) in concurrencies
            .iter()
            .flat_map(|c| rounds.iter().map(move |&op| (op, c)))
        {
            let mut m = measure(op, clients, &shared, seconds);
            m.signed = signed;
            eprintln!(
                "  {} at concurrency {}{}: {:.0}/s, {} errors",
                m.op.name(),
                m.concurrency,
                if signed { ", signed" } else { "" },
                m.rps,
                m.latency.errors
            );
            for e in &m.latency.first_errors {
                eprintln!("    error: {e}");
            }
            results.push(m);
        }
    }
    drop(server);
    (
        results,
        ServerRun {
            signed,
            ready_s,
            seed_s,
        },
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and `cargo test --benches` probes
    }
    let seconds = setting("LOAD_SECONDS", 5) as f64;
    let fsync_seconds = setting("LOAD_FSYNC_SECONDS", 2) as f64;
    let concurrencies: Vec<usize> = std::env::var("LOAD_CONCURRENCY")
        .unwrap_or_else(|_| "1,16,64".into())
        .split(',')
        .map(|c| {
            c.trim()
                .parse()
                .expect("LOAD_CONCURRENCY: a comma-separated list of numbers")
        })
        .collect();
    let operations = std::env::var("LOAD_OPS").unwrap_or_default();
    let output = std::env::var("LOAD_OUTPUT").unwrap_or_else(|_| "target/load.json".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let dir = match std::env::var_os("LOAD_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    println!(
        "load: {seconds} s per measurement, concurrency {concurrencies:?}, {cores} cores, data in {}",
        dir.path().display()
    );
    // Measured before the server starts, so nothing else writes to the disk
    // from this run; the probe file sits beside the data dir.
    let (fsyncs, fsyncs_before) = fsync_rate(dir.path(), fsync_seconds);
    println!("disk: {fsyncs_before:.0} fsyncs/s before the load (4 KiB write + fsync, {fsyncs} in {fsync_seconds} s, one stream)");

    let ops: Vec<Op> = [
        Op::Describe,
        Op::Update,
        Op::CreateDelete,
        Op::List,
        Op::AssumeRole,
    ]
    .into_iter()
    .filter(|op| selected(&operations, *op))
    .collect();
    let auth = std::env::var("LOAD_AUTH").unwrap_or_else(|_| "none".into());
    let signed_runs: &[bool] = match auth.trim() {
        "none" | "" => &[false],
        "sigv4" => &[true],
        "both" => &[false, true],
        other => panic!("LOAD_AUTH: none, sigv4 or both, not {other:?}"),
    };
    let mut results = Vec::new();
    let mut servers = Vec::new();
    for &signed in signed_runs {
        let data = dir.path().join(if signed { "data-signed" } else { "data" });
        let (measured, server) = run(&data, signed, &ops, &concurrencies, seconds);
        results.extend(measured);
        servers.push(server);
    }
    // Measured again after the load: on a shared machine one probe can land
    // in another process's burst of writes. The ratios use the better of
    // the two, the rate a single durable writer could have had.
    let (fsyncs_again, fsyncs_after) = fsync_rate(dir.path(), fsync_seconds);
    let fsyncs_per_s = fsyncs_before.max(fsyncs_after);
    println!("disk: {fsyncs_after:.0} fsyncs/s after the load ({fsyncs_again} in {fsync_seconds} s); ratios below use {fsyncs_per_s:.0}/s");

    let errors: u64 = results.iter().map(|m| m.latency.errors).sum();
    for signed in [false, true] {
        let run: Vec<&Measurement> = results.iter().filter(|m| m.signed == signed).collect();
        if !run.is_empty() {
            println!(
                "\n{}",
                if signed {
                    "signed (SigV4 checked by the server):"
                } else {
                    "unsigned:"
                }
            );
            print_table(&run, fsyncs_per_s);
        }
    }
    print_auth_ratios(&results);
    println!("wr/flush: writes made durable per group commit (server counters); wr/tx: writes per sled transaction (writes queued together share one); wr/s÷fsync/s: those writes per second over the disk's single-stream fsyncs per second.");
    println!("srv cores: the server's CPU seconds per second (the clients share the same cores); req/srv-cpu-s: requests per second of server CPU; busy: all cores, everything on the machine.");
    println!("Create+Delete is two writes per operation. errors: {errors} (any non-2xx or transport error).");

    let report = json!({
        "bench": "load",
        "date_utc": time::OffsetDateTime::now_utc().date().to_string(),
        "unix_time": time::OffsetDateTime::now_utc().unix_timestamp(),
        "git_commit": Command::new("git").args(["rev-parse", "HEAD"]).output().ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()),
        // Uncommitted changes (to the server or to this bench) make the commit alone misleading.
        "git_dirty": Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]).output().ok()
            .filter(|o| o.status.success())
            .map(|o| !o.stdout.is_empty()),
        "cores": cores,
        "settings": {
            "seconds_per_measurement": seconds,
            "concurrency": concurrencies,
            "fsync_probe_seconds": fsync_seconds,
            "list_cluster_associations": LIST_SIZE,
            "list_page_size": PAGE,
            "hot_associations": HOT_SIZE,
            "data_dir_parent": dir.path().parent().map(|p| p.display().to_string()),
        },
        "disk": {
            "block_bytes": 4096,
            "fsyncs_per_second_before_load": fsyncs_before,
            "fsyncs_before_load": fsyncs,
            "fsyncs_per_second_after_load": fsyncs_after,
            "fsyncs_after_load": fsyncs_again,
            "fsyncs_per_second": fsyncs_per_s,
        },
        "auth": auth,
        "servers": servers.iter().map(|r| json!({
            "signed": r.signed, "ready_seconds": r.ready_s, "seed_seconds": r.seed_s,
        })).collect::<Vec<_>>(),
        "errors_total": errors,
        "measurements": results.iter().map(|m| {
            let commits = m.commits.map(|(flushes, writes, groups)| json!({
                "flushes": flushes,
                "writes_flushed": writes,
                "writes_per_flush": writes as f64 / flushes.max(1) as f64,
                "write_groups": groups,
                "writes_per_transaction": writes as f64 / groups.max(1) as f64,
                "durable_writes_per_second": writes as f64 / m.seconds,
                "durable_writes_per_second_per_fsync_per_second": writes as f64 / m.seconds / fsyncs_per_s,
                "operations_per_second_per_fsync_per_second": m.rps / fsyncs_per_s,
            }));
            json!({
                "operation": m.op.name(),
                "signed": m.signed,
                "concurrency": m.concurrency,
                "requests": m.latency.requests,
                "seconds": m.seconds,
                "requests_per_second": m.rps,
                "requests_per_second_per_core": m.rps / cores.max(1) as f64,
                "latency_ms": { "p50": m.latency.p50_ms, "p99": m.latency.p99_ms, "p99_9": m.latency.p999_ms, "max": m.latency.max_ms },
                "errors": m.latency.errors,
                "first_errors": m.latency.first_errors,
                "group_commit": commits,
                "server_cpu_seconds": m.server_cpu_s,
                "server_cores_used": m.server_cpu_s / m.seconds,
                "requests_per_server_cpu_second": m.latency.requests as f64 / m.server_cpu_s.max(1e-9),
                "machine_busy_share": m.machine_busy,
            })
        }).collect::<Vec<_>>(),
    });
    if let Some(parent) = Path::new(&output).parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&output, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("JSON report: {output}");
    assert_eq!(errors, 0, "the load saw errors; see above");
}
