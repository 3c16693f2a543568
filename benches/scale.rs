//! Scale: the server at 1,000,000 associations, next to a small store.
//!
//! Run: `cargo bench --bench scale` (about 3 minutes on 2 cores with the
//! defaults; the export file of a million associations takes about 300 MiB
//! of disk, the import streams it). For each of two stores, a small one (1 cluster of 1,024
//! associations) and a large one (1,000,000 associations across 1,000
//! clusters), it:
//! 1. writes an export file (`src/backup/format.rs`) and loads it with the
//!    real binary's `import` command, because creating a million
//!    associations one durable request at a time would take the better part
//!    of an hour;
//! 2. runs `check` for the bytes of the records the store holds, and walks
//!    the data dir for the bytes its files take on disk;
//! 3. starts the release server and times it until it has printed its
//!    `listening on` line and `/readyz` answers 200;
//! 4. reads its resident memory (VmRSS) once it is idle and lists every
//!    association once (a warm-up, so that sled's cache, which fills
//!    lazily, holds what fits of the store, as in a server that has run for
//!    a while; `SCALE_WARMUP=0` skips it).
//!
//! With both servers up, it then measures Describe (random associations
//! across every cluster), Update (a fresh `clientRequestToken` and a roleArn
//! different from the current one, so every update writes) and List (pages
//! of 100 through one cluster at a time) at each concurrency, the two stores
//! taking turns one slice of a measurement at a time (and turns at going
//! first), so that the shared cores' drift stays out of the large ÷ small
//! ratios; it samples each server's resident memory throughout.
//!
//! Settings through the environment: `SCALE_ASSOCIATIONS` (1000000),
//! `SCALE_CLUSTERS` (1000), `SCALE_SMALL` (associations of the small store's
//! one cluster, 1024), `SCALE_SECONDS` (per measurement, 5),
//! `SCALE_SLICES` (how many turns a measurement is taken in, 5),
//! `SCALE_CONCURRENCY` (`16,64`), `SCALE_WARMUP` (1; 0 measures a cold
//! cache), `SCALE_CACHE_BYTES` (the server's
//! `--cache-capacity-bytes`; its default when unset), `SCALE_DIR` (where the
//! temp dir is made; the system temp dir by default) and `SCALE_OUTPUT` (the
//! JSON report, `target/scale.json`). Traffic goes only to 127.0.0.1; every
//! server is killed when its measurements end.
//!
//! The load generator runs on the same cores as the server. This bench
//! keeps its own copies of a few helpers of `benches/load.rs` (spawning the
//! server, percentiles) so that the two can change independently.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use tokio::sync::Barrier;

use common::http::Connection;
use common::{
    block_on, connect, list_page, process_cpu_seconds, spawn_clients, ClientResult, Summary,
};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const ROLE: &str = "arn:aws:iam::123456789012:role/scale";
const PAGE: usize = 100;
/// The time every seeded record was created at (epoch ms).
const SEEDED_AT: i64 = 1_700_000_000_000;

fn setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: expected a whole number")),
        Err(_) => default,
    }
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_pod-identity-store")
}

/// One store to measure: its shape and where it lives.
struct StoreShape {
    label: &'static str,
    clusters: usize,
    associations: usize,
}

impl StoreShape {
    fn cluster_name(&self, k: usize) -> String {
        format!("c{k:04}")
    }

    /// Association `i` is in cluster `i % clusters`, so every cluster holds
    /// an equal share (give or take one).
    fn cluster_of(&self, i: usize) -> usize {
        i % self.clusters
    }
}

/// A well-mixed 64-bit function of `x` (splitmix64): deterministic IDs that
/// are spread over the key space as random ones are, and a cheap random
/// source for the clients.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The ID of association `i`: `a-` and 17 base-36 digits, like the server's own.
fn association_id(i: usize) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut bits = u128::from(mix(i as u64)) | (u128::from(mix(!(i as u64))) << 64);
    let mut id = String::with_capacity(19);
    id.push_str("a-");
    for _ in 0..17 {
        id.push(ALPHABET[(bits % 36) as usize] as char);
        bits /= 36;
    }
    id
}

/// Writes the export file of `shape` (header, clusters, associations, end
/// line: `src/backup/format.rs`); returns every association's URL path.
fn write_export(shape: &StoreShape, path: &Path) -> Vec<String> {
    let mut out = BufWriter::new(File::create(path).unwrap());
    let mut line = |value: Value| {
        serde_json::to_writer(&mut out, &value).unwrap();
        out.write_all(b"\n").unwrap();
    };
    line(json!({
        "format": "pod-identity-store-export", "version": 1, "schema": 2,
        "exportedAt": SEEDED_AT, "region": REGION, "accountId": ACCOUNT,
    }));
    for k in 0..shape.clusters {
        line(json!({
            "type": "cluster", "name": shape.cluster_name(k),
            "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/eks"), "version": "1.33",
            "tags": {}, "createdAt": SEEDED_AT, "status": "ACTIVE", "activateAt": null,
        }));
    }
    let mut paths = Vec::with_capacity(shape.associations);
    for i in 0..shape.associations {
        let cluster = shape.cluster_name(shape.cluster_of(i));
        let id = association_id(i);
        line(json!({
            "type": "association", "clusterName": cluster, "associationId": id,
            "namespace": "scale", "serviceAccount": format!("sa-{}", i / shape.clusters),
            "roleArn": format!("{ROLE}0"), "tags": {},
            "createdAt": SEEDED_AT, "modifiedAt": SEEDED_AT,
            "disableSessionTags": false, "targetRoleArn": null, "externalId": null,
            "policy": null,
        }));
        paths.push(format!(
            "/clusters/{cluster}/pod-identity-associations/{id}"
        ));
    }
    line(json!({"type": "end", "clusters": shape.clusters, "associations": shape.associations}));
    out.into_inner().unwrap().sync_all().unwrap();
    paths
}

/// The binary with the bench's config file and data dir (and the cache
/// size, when `SCALE_CACHE_BYTES` is set).
fn command(config: &Path, data: &Path, cache_bytes: Option<u64>) -> Command {
    let mut cmd = Command::new(binary());
    cmd.arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn");
    if let Some(bytes) = cache_bytes {
        cmd.arg("--cache-capacity-bytes").arg(bytes.to_string());
    }
    cmd
}

/// The resident memory of `pid` now and its peak so far (VmRSS, VmHWM), in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Runs `cmd` to its end; returns its stdout, its run time and the peak
/// resident memory seen while it ran (sampled every 50 ms from VmHWM).
fn run_timed(mut cmd: Command, what: &str) -> (String, f64, u64) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        peak = peak.max(memory(pid).1);
        std::thread::sleep(Duration::from_millis(50));
    };
    let seconds = started.elapsed().as_secs_f64();
    let out = reader.join().unwrap();
    let err = err_reader.join().unwrap();
    assert!(status.success(), "{what} failed: {out}{err}");
    (out, seconds, peak)
}

/// The data dir's files: (apparent bytes, bytes allocated on disk, each
/// file with its apparent size).
fn dir_size(dir: &Path) -> (u64, u64, Vec<(String, u64)>) {
    use std::os::unix::fs::MetadataExt;
    let (mut apparent, mut allocated, mut files) = (0, 0, Vec::new());
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                apparent += meta.len();
                allocated += meta.blocks() * 512;
                let name = entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .display()
                    .to_string();
                files.push((name, meta.len()));
            }
        }
    }
    files.sort();
    (apparent, allocated, files)
}

/// The server process, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server on a free port; returns it with the seconds until its
/// `listening on` line and until `/readyz` first answered 200.
fn start_server(mut cmd: Command) -> (Server, f64, f64) {
    let started = Instant::now();
    let mut child = cmd
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let listening_s = started.elapsed().as_secs_f64();
    let base = line
        .trim()
        .strip_prefix("pod-identity-store listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from the server: {line:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let server = Server { child, base };
    let readyz = format!("{}/readyz", server.base);
    loop {
        // Any error (503 while not ready) is `Err`: only a 200 ends the wait.
        if ureq::get(&readyz).call().is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the server was not ready within 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let ready_s = started.elapsed().as_secs_f64();
    (server, listening_s, ready_s)
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Describe,
    Update,
    List,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Describe => "Describe",
            Op::Update => "Update",
            Op::List => "List (page of 100)",
        }
    }
}

/// What the clients share for one store.
struct Target {
    addr: SocketAddr,
    /// Every association's URL path, by its number.
    paths: Vec<String>,
    /// The roleArn suffix (0 or 1) each association holds now.
    roles: Vec<AtomicBool>,
    /// The clusters' names, for List.
    clusters: Vec<String>,
}

/// One client, `c` of `clients`, running `op` for `seconds` after the barrier.
async fn client(
    op: Op,
    c: usize,
    clients: usize,
    slice: usize,
    target: &Target,
    barrier: &Barrier,
    seconds: f64,
) -> ClientResult {
    let conn = connect(target.addr, None).await;
    let total = target.paths.len();
    // Update clients each own the associations numbered c, c + clients, ...,
    // so that each knows the current roleArn of the ones it changes.
    let owned = total.div_ceil(clients).max(1);
    let mut random = mix(c as u64 ^ (clients as u64) << 32 ^ (slice as u64) << 48);
    let mut next = move |bound: usize| {
        random = mix(random);
        (random % bound as u64) as usize
    };
    let mut list_path = String::new();
    let mut next_token: Option<String> = None;
    let mut out = ClientResult::default();

    barrier.wait().await;
    let mut conn = match conn {
        Ok(conn) => conn,
        Err(e) => return ClientResult::failed(e),
    };
    let started = Instant::now();
    let mut n = 0usize;
    while !out.broken && started.elapsed().as_secs_f64() < seconds {
        n += 1;
        let t0 = Instant::now();
        match op {
            Op::Describe => {
                let path = &target.paths[next(total)];
                let r = conn.send("GET", path, None).await.map(drop);
                out.record(t0, r);
            }
            Op::Update => {
                let i = (c + clients * next(owned)) % total;
                if i % clients != c {
                    continue; // past the end: another client's
                }
                // This client alone updates association `i`, so flipping the
                // flag tracks its roleArn exactly.
                let role = !target.roles[i].fetch_xor(true, Ordering::Relaxed);
                let body = format!(
                    r#"{{"roleArn":"{ROLE}{}","clientRequestToken":"scale-{clients}-{c}-{slice}-{n}"}}"#,
                    u8::from(role)
                );
                let r = conn
                    .send("POST", &target.paths[i], Some(&body))
                    .await
                    .map(drop);
                out.record(t0, r);
            }
            Op::List => {
                if next_token.is_none() {
                    let cluster = &target.clusters[next(target.clusters.len())];
                    list_path =
                        format!("/clusters/{cluster}/pod-identity-associations?maxResults={PAGE}");
                }
                let r = list_page(&mut conn, &list_path, next_token.as_deref()).await;
                next_token = out.record(t0, r).flatten();
            }
        }
    }
    out
}

struct Measurement {
    op: Op,
    concurrency: usize,
    seconds: f64,
    rps: f64,
    /// Requests, latencies and errors, as the clients saw them.
    latency: Summary,
    /// The server's largest resident memory sampled during the measurement.
    peak_rss: u64,
    /// The server's CPU time per request (µs): less sensitive than req/s to
    /// whatever else runs on the shared cores.
    server_cpu_us: f64,
}

/// What one slice of a measurement saw.
struct Slice {
    results: Vec<ClientResult>,
    seconds: f64,
    server_cpu_s: f64,
    peak_rss: u64,
}

/// Runs `clients` clients of `op` for `seconds`, sampling the server's
/// memory and reading its CPU time.
fn measure_slice(
    op: Op,
    clients: usize,
    slice: usize,
    target: &Arc<Target>,
    pid: u32,
    seconds: f64,
) -> Slice {
    let running = {
        let target = target.clone();
        spawn_clients(clients, move |c, start| {
            let target = target.clone();
            async move { client(op, c, clients, slice, &target, &start, seconds).await }
        })
    };
    // Resident memory sampled every 100 ms while the clients run.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(memory(pid).0, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let cpu_before = process_cpu_seconds(pid);
    running.start();
    let started = Instant::now();
    let results = running.join();
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    Slice {
        results,
        seconds,
        server_cpu_s: process_cpu_seconds(pid) - cpu_before,
        peak_rss: peak.load(Ordering::Relaxed),
    }
}

/// One measurement from its slices.
fn measurement(op: Op, clients: usize, slices: Vec<Slice>) -> Measurement {
    let seconds: f64 = slices.iter().map(|s| s.seconds).sum();
    let server_cpu_s: f64 = slices.iter().map(|s| s.server_cpu_s).sum();
    let peak_rss = slices.iter().map(|s| s.peak_rss).max().unwrap_or(0);
    let summary = Summary::of(slices.into_iter().flat_map(|s| s.results).collect());
    Measurement {
        op,
        concurrency: clients,
        seconds,
        rps: summary.requests as f64 / seconds,
        peak_rss,
        server_cpu_us: server_cpu_s * 1e6 / summary.requests.max(1) as f64,
        latency: summary,
    }
}

/// Everything measured for one store.
struct StoreResult {
    label: &'static str,
    clusters: usize,
    associations: usize,
    export_bytes: u64,
    generate_s: f64,
    import_s: f64,
    import_peak_rss: u64,
    check_s: f64,
    record_bytes: u64,
    dir_apparent: u64,
    dir_allocated: u64,
    files: Vec<(String, u64)>,
    listening_s: f64,
    ready_s: f64,
    idle_rss: u64,
    warmup_s: Option<f64>,
    peak_rss: u64,
    after_rss: u64,
    measurements: Vec<Measurement>,
}

struct Settings {
    seconds: f64,
    /// Each measurement's seconds are split into this many slices, the two
    /// stores taking turns slice by slice.
    slices: usize,
    concurrencies: Vec<usize>,
    cache_bytes: Option<u64>,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A store seeded, checked and served, ready to be measured.
struct Prepared {
    server: Server,
    target: Arc<Target>,
    data: PathBuf,
    /// Everything but the measurements and the memory after them.
    result: StoreResult,
}

/// Seeds the store of `shape`, checks it, starts its server and warms it up.
fn prepare_store(shape: &StoreShape, dir: &Path, settings: &Settings) -> Prepared {
    let export = dir.join(format!("{}.ndjson", shape.label));
    let data = dir.join(format!("{}-data", shape.label));
    // The export and the server need the per-cluster quota to fit the shape.
    let config = dir.join(format!("{}.toml", shape.label));
    let per_cluster = shape.associations.div_ceil(shape.clusters) as u64;
    std::fs::write(
        &config,
        format!(
            "[limits]\nassociations_per_cluster = {}\n",
            per_cluster.max(5000)
        ),
    )
    .unwrap();
    let cache = settings.cache_bytes;

    println!(
        "{}: {} associations across {} clusters",
        shape.label, shape.associations, shape.clusters
    );
    let started = Instant::now();
    let paths = write_export(shape, &export);
    let generate_s = started.elapsed().as_secs_f64();
    let export_bytes = std::fs::metadata(&export).unwrap().len();
    println!(
        "  export file: {:.1} MiB written in {generate_s:.1} s",
        mib(export_bytes)
    );

    let mut import = command(&config, &data, cache);
    import.arg("import").arg(&export);
    let (_, import_s, import_peak_rss) = run_timed(import, "import");
    println!(
        "  import: {import_s:.1} s, peak resident memory {:.0} MiB",
        mib(import_peak_rss)
    );
    std::fs::remove_file(&export).unwrap();

    let mut check = command(&config, &data, cache);
    check.arg("check");
    let (report, check_s, _) = run_timed(check, "check");
    let record_bytes: u64 = report
        .lines()
        .find_map(|l| l.strip_prefix("record bytes: "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("check printed no record bytes: {report}"));
    let (dir_apparent, dir_allocated, files) = dir_size(&data);
    println!(
        "  check: {check_s:.1} s; records {:.1} MiB, data dir {:.1} MiB on disk ({:.1} MiB apparent), {:.2}x",
        mib(record_bytes),
        mib(dir_allocated),
        mib(dir_apparent),
        dir_allocated as f64 / record_bytes as f64
    );

    let (server, listening_s, ready_s) = start_server(command(&config, &data, cache));
    let pid = server.child.id();
    println!("  ready in {ready_s:.3} s (listening after {listening_s:.3} s)");
    // Idle: ready and given a moment to finish whatever start-up began.
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss = memory(pid).0;
    println!("  idle resident memory {:.1} MiB", mib(idle_rss));

    let target = Arc::new(Target {
        addr: server
            .base
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .expect("the server's address"),
        roles: paths.iter().map(|_| AtomicBool::new(false)).collect(),
        paths,
        clusters: (0..shape.clusters).map(|k| shape.cluster_name(k)).collect(),
    });
    // Every association read once (a List walk through every cluster), so
    // that the measurements see the steady state rather than sled's cache
    // filling: it starts empty and fills only as pages are read, and a few
    // seconds of random Describes touch most of a million-association
    // store's leaves for the first time.
    let warmup_s = (setting("SCALE_WARMUP", 1) != 0).then(|| {
        let started = Instant::now();
        block_on(async {
            let mut conn = Connection::open(target.addr, None)
                .await
                .expect("connecting to the server");
            for cluster in &target.clusters {
                let path =
                    format!("/clusters/{cluster}/pod-identity-associations?maxResults={PAGE}");
                let mut token: Option<String> = None;
                loop {
                    token = list_page(&mut conn, &path, token.as_deref())
                        .await
                        .expect("warm-up List");
                    if token.is_none() {
                        break;
                    }
                }
            }
        });
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "  warm-up: every association listed once in {seconds:.1} s, resident memory {:.1} MiB",
            mib(memory(pid).0)
        );
        seconds
    });
    Prepared {
        server,
        target,
        data,
        result: StoreResult {
            label: shape.label,
            clusters: shape.clusters,
            associations: shape.associations,
            export_bytes,
            generate_s,
            import_s,
            import_peak_rss,
            check_s,
            record_bytes,
            dir_apparent,
            dir_allocated,
            files,
            listening_s,
            ready_s,
            idle_rss,
            warmup_s,
            peak_rss: 0,
            after_rss: 0,
            measurements: Vec::new(),
        },
    }
}

/// Measures every operation at every concurrency on each store. The stores
/// take turns in slices of a measurement (`SCALE_SLICES`, one second each by
/// default), and change who goes first at every slice, across measurements
/// too (small then large, large then small, ...): the shared cores' speed
/// drifts, and slices taken back to back keep that drift out of the large ÷
/// small ratios.
fn measure_in_turns(stores: &mut [&mut Prepared], settings: &Settings) {
    let slice_seconds = settings.seconds / settings.slices as f64;
    let mut turn = 0usize;
    for op in [Op::Describe, Op::Update, Op::List] {
        for &clients in &settings.concurrencies {
            let mut slices: Vec<Vec<Slice>> = stores.iter().map(|_| Vec::new()).collect();
            for slice in 0..settings.slices {
                let mut order: Vec<usize> = (0..stores.len()).collect();
                if turn % 2 == 1 {
                    order.reverse();
                }
                turn += 1;
                for i in order {
                    let store = &stores[i];
                    let pid = store.server.child.id();
                    slices[i].push(measure_slice(
                        op,
                        clients,
                        slice,
                        &store.target,
                        pid,
                        slice_seconds,
                    ));
                }
            }
            for (store, slices) in stores.iter_mut().zip(slices) {
                let m = measurement(op, clients, slices);
                println!(
                    "  {}: {} at concurrency {}: {:.0}/s, p50 {:.3} ms, p99 {:.3} ms, {} errors, peak resident {:.1} MiB, server CPU {:.1} µs per request",
                    store.result.label,
                    m.op.name(),
                    m.concurrency,
                    m.rps,
                    m.latency.p50_ms,
                    m.latency.p99_ms,
                    m.latency.errors,
                    mib(m.peak_rss),
                    m.server_cpu_us
                );
                for e in &m.latency.first_errors {
                    println!("    error: {e}");
                }
                store.result.measurements.push(m);
            }
        }
    }
}

/// Reads the server's memory after the measurements, stops it and removes
/// the store.
fn finish_store(store: Prepared) -> StoreResult {
    let Prepared {
        server,
        data,
        mut result,
        ..
    } = store;
    let (after_rss, peak_rss) = memory(server.child.id());
    result.after_rss = after_rss;
    result.peak_rss = peak_rss;
    drop(server);
    std::fs::remove_dir_all(&data).unwrap();
    result
}

fn print_tables(small: &StoreResult, large: &StoreResult) {
    println!();
    println!(
        "{:<28} {:>14} {:>14}",
        "",
        format!("{} store", small.label),
        format!("{} store", large.label)
    );
    let row = |name: &str, f: &dyn Fn(&StoreResult) -> String| {
        println!("{name:<28} {:>14} {:>14}", f(small), f(large));
    };
    row("associations", &|s| s.associations.to_string());
    row("clusters", &|s| s.clusters.to_string());
    row("import s", &|s| format!("{:.1}", s.import_s));
    row("import peak RSS MiB", &|s| {
        format!("{:.0}", mib(s.import_peak_rss))
    });
    row("record bytes MiB", &|s| {
        format!("{:.1}", mib(s.record_bytes))
    });
    row("data dir on disk MiB", &|s| {
        format!("{:.1}", mib(s.dir_allocated))
    });
    row("data dir ÷ records", &|s| {
        format!("{:.2}", s.dir_allocated as f64 / s.record_bytes as f64)
    });
    row("ready s", &|s| format!("{:.3}", s.ready_s));
    row("idle RSS MiB", &|s| format!("{:.1}", mib(s.idle_rss)));
    row("peak RSS under load MiB", &|s| {
        format!("{:.1}", mib(s.peak_rss))
    });
    row("RSS after load MiB", &|s| {
        format!("{:.1}", mib(s.after_rss))
    });
    println!();
    println!(
        "{:<19} {:>5} {:>10} {:>9} {:>9} {:>10} {:>9} {:>9} {:>7} {:>12} {:>6}",
        "operation",
        "conc",
        "small/s",
        "p50 ms",
        "p99 ms",
        "large/s",
        "p50 ms",
        "p99 ms",
        "large÷",
        "CPU/req s÷l",
        "errors"
    );
    for (s, l) in small.measurements.iter().zip(&large.measurements) {
        println!(
            "{:<19} {:>5} {:>10.0} {:>9.3} {:>9.3} {:>10.0} {:>9.3} {:>9.3} {:>7.2} {:>12.2} {:>6}",
            s.op.name(),
            s.concurrency,
            s.rps,
            s.latency.p50_ms,
            s.latency.p99_ms,
            l.rps,
            l.latency.p50_ms,
            l.latency.p99_ms,
            l.rps / s.rps,
            s.server_cpu_us / l.server_cpu_us,
            s.latency.errors + l.latency.errors
        );
    }
    println!();
    println!("{} store's data dir:", large.label);
    for (name, bytes) in &large.files {
        println!("  {name:<24} {:>12} bytes", bytes);
    }
    println!();
}

fn store_json(s: &StoreResult) -> Value {
    json!({
        "clusters": s.clusters,
        "associations": s.associations,
        "export_file_bytes": s.export_bytes,
        "generate_seconds": s.generate_s,
        "import_seconds": s.import_s,
        "import_peak_rss_bytes": s.import_peak_rss,
        "check_seconds": s.check_s,
        "record_bytes": s.record_bytes,
        "data_dir_bytes_on_disk": s.dir_allocated,
        "data_dir_bytes_apparent": s.dir_apparent,
        "data_dir_on_disk_per_record_byte": s.dir_allocated as f64 / s.record_bytes as f64,
        "data_dir_files": s.files.iter().map(|(name, bytes)| json!({"name": name, "bytes": bytes})).collect::<Vec<_>>(),
        "listening_seconds": s.listening_s,
        "ready_seconds": s.ready_s,
        "idle_rss_bytes": s.idle_rss,
        "warmup_seconds": s.warmup_s,
        "peak_rss_bytes": s.peak_rss,
        "after_load_rss_bytes": s.after_rss,
        "measurements": s.measurements.iter().map(|m| json!({
            "operation": m.op.name(),
            "concurrency": m.concurrency,
            "requests": m.latency.requests,
            "seconds": m.seconds,
            "requests_per_second": m.rps,
            "latency_ms": { "p50": m.latency.p50_ms, "p99": m.latency.p99_ms, "p99_9": m.latency.p999_ms, "max": m.latency.max_ms },
            "errors": m.latency.errors,
            "first_errors": m.latency.first_errors,
            "peak_rss_bytes": m.peak_rss,
            "server_cpu_us_per_request": m.server_cpu_us,
        })).collect::<Vec<_>>(),
    })
}

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and `cargo test --benches` probes
    }
    let associations = setting("SCALE_ASSOCIATIONS", 1_000_000) as usize;
    let clusters = setting("SCALE_CLUSTERS", 1000) as usize;
    let small = setting("SCALE_SMALL", 1024) as usize;
    assert!(
        associations > 0 && clusters > 0 && small > 0,
        "SCALE_ASSOCIATIONS, SCALE_CLUSTERS and SCALE_SMALL must be at least 1"
    );
    let settings = Settings {
        seconds: setting("SCALE_SECONDS", 5) as f64,
        slices: setting("SCALE_SLICES", 5).max(1) as usize,
        concurrencies: std::env::var("SCALE_CONCURRENCY")
            .unwrap_or_else(|_| "16,64".into())
            .split(',')
            .map(|c| {
                c.trim()
                    .parse()
                    .expect("SCALE_CONCURRENCY: a comma-separated list of numbers")
            })
            .collect(),
        cache_bytes: std::env::var("SCALE_CACHE_BYTES")
            .ok()
            .map(|_| setting("SCALE_CACHE_BYTES", 0)),
    };
    let output: PathBuf =
        std::env::var_os("SCALE_OUTPUT").map_or_else(|| "target/scale.json".into(), PathBuf::from);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let dir = match std::env::var_os("SCALE_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    println!(
        "scale: {} s per measurement in {} slices, concurrency {:?}, {cores} cores, cache {}, data in {}",
        settings.seconds,
        settings.slices,
        settings.concurrencies,
        settings
            .cache_bytes
            .map_or("the server's default".into(), |b| format!("{b} bytes")),
        dir.path().display()
    );

    let mut small = prepare_store(
        &StoreShape {
            label: "small",
            clusters: 1,
            associations: small,
        },
        dir.path(),
        &settings,
    );
    let mut large = prepare_store(
        &StoreShape {
            label: "large",
            clusters,
            associations,
        },
        dir.path(),
        &settings,
    );
    println!("measuring both stores in turns");
    measure_in_turns(&mut [&mut small, &mut large], &settings);
    // Both idle a moment before their memory is read.
    std::thread::sleep(Duration::from_secs(2));
    let (small, large) = (finish_store(small), finish_store(large));
    print_tables(&small, &large);

    let errors: u64 = [&small, &large]
        .iter()
        .flat_map(|s| &s.measurements)
        .map(|m| m.latency.errors)
        .sum();
    let report = json!({
        "bench": "scale",
        "date_utc": time::OffsetDateTime::now_utc().date().to_string(),
        "unix_time": time::OffsetDateTime::now_utc().unix_timestamp(),
        "git_commit": git(&["rev-parse", "HEAD"]),
        // Uncommitted changes make the commit alone misleading.
        "git_dirty": git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()),
        "cores": cores,
        "settings": {
            "seconds_per_measurement": settings.seconds,
            "slices_per_measurement": settings.slices,
            "concurrency": settings.concurrencies,
            "cache_capacity_bytes": settings.cache_bytes,
            "list_page_size": PAGE,
            "data_dir_parent": dir.path().parent().map(|p| p.display().to_string()),
        },
        "small": store_json(&small),
        "large": store_json(&large),
        "errors_total": errors,
    });
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&output, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("JSON report: {}", output.display());
    assert_eq!(errors, 0, "the scale bench saw errors; see above");
}
