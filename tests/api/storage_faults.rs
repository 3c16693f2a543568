//! Storage failures: fail points inside the store (the tests build the
//! crate with its `failpoints` feature) and a real full disk on a small
//! tmpfs. After a failure every write in flight answers at once, writes
//! answer `500 ServerException` saying the store cannot write, `/readyz`
//! says why, reads and `/metrics` go on, SIGTERM stops the server in time
//! with the cause, and every write acknowledged before is there after a
//! restart.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{command, role, run_to_exit, sample, TestApp};

/// How long a request may take to be answered once the store failed.
const ANSWER_BOUND: Duration = Duration::from_secs(3);
/// `server.shutdown_timeout_seconds` by default, and a margin for the stop.
const STOP_BOUND: Duration = Duration::from_secs(12);
/// What the OS says of a full disk; the fail points inject the same error.
const NO_SPACE: &str = "No space left on device";

/// One answer, whatever its status, and how long it took.
#[derive(Debug)]
struct Reply {
    status: u16,
    error_type: Option<String>,
    body: Value,
    took: Duration,
}

impl Reply {
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

/// A request with a timeout of its own; `Err` when no answer came.
fn call(base: &str, method: &str, path: &str, body: Option<&Value>) -> Result<Reply, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build();
    let request = agent.request(method, &format!("{base}{path}"));
    let started = Instant::now();
    let result = match body {
        Some(body) => request.send_json(body.clone()),
        None => request.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("{method} {path}: no answer: {e}")),
    };
    let status = response.status();
    let error_type = response.header("x-amzn-errortype").map(str::to_owned);
    let text = response.into_string().unwrap_or_default();
    Ok(Reply {
        status,
        error_type,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        took: started.elapsed(),
    })
}

/// Creates an association for `sa` in cluster `c1`.
fn create(base: &str, sa: &str) -> Result<Reply, String> {
    let body = json!({"namespace": "ns", "serviceAccount": sa, "roleArn": role("r")});
    call(
        base,
        "POST",
        "/clusters/c1/pod-identity-associations",
        Some(&body),
    )
}

/// Checks a write's answer after or during a failure: a success, or the
/// store's refusal; returns the association ID of a success.
#[track_caller]
fn acknowledged_or_refused(reply: &Reply) -> Option<String> {
    match reply.status {
        200 => Some(
            reply.body["association"]["associationId"]
                .as_str()?
                .to_owned(),
        ),
        500 => {
            assert_eq!(reply.error_type.as_deref(), Some("ServerException"));
            let message = reply.message();
            assert!(
                message.contains("The store cannot write")
                    && message.contains("nothing was acknowledged"),
                "{message}"
            );
            None
        }
        other => panic!("a write answered {other}: {}", reply.body),
    }
}

/// Arms a fail point of the running server.
fn arm(app: &TestApp, name: &str, actions: &str) {
    let armed = ureq::put(&format!("{}/admin/v1/failpoints/{name}", app.base))
        .send_string(actions)
        .unwrap_or_else(|e| panic!("arming {name}: {e}"));
    assert_eq!(armed.status(), 200);
}

/// `/readyz` after a failure: 503 with the `cause` and what to do.
#[track_caller]
fn assert_not_ready(base: &str, cause: &str) {
    let ready = call(base, "GET", "/readyz", None).expect("/readyz answers");
    let text = ready.body.as_str().unwrap_or_default().to_owned();
    assert_eq!(ready.status, 503, "{text}");
    assert!(text.contains("the store cannot write"), "{text}");
    assert!(text.contains(cause), "{text}");
    assert!(text.contains("restart"), "{text}");
}

/// `/metrics` answers and counts the failure under `kind` (any kind: `None`).
#[track_caller]
fn assert_failure_counted(base: &str, kind: Option<&str>) {
    let page = call(base, "GET", "/metrics", None).expect("/metrics answers");
    assert_eq!(page.status, 200);
    assert!(page.took < ANSWER_BOUND, "/metrics took {:?}", page.took);
    let page = page.body.as_str().unwrap_or_default().to_owned();
    let kinds = ["transaction", "flush", "fsync", "witness", "sweep", "read"];
    let count: f64 = kinds
        .iter()
        .filter(|k| kind.is_none_or(|kind| kind == **k))
        .map(|k| {
            let series = format!("pod_identity_store_storage_failures_total{{kind=\"{k}\"}}");
            sample(&page, &series).unwrap_or_else(|| panic!("no {series} in\n{page}"))
        })
        .sum();
    assert!(count >= 1.0, "no failure of kind {kind:?} counted:\n{page}");
}

/// SIGTERM stops the failed server in time, exiting non-zero with a last
/// line that names the `cause`. Returns how long the stop took.
#[track_caller]
fn assert_stops_naming_the_cause(app: &mut TestApp, cause: &str) -> Duration {
    let started = Instant::now();
    let status = app
        .terminate_within(STOP_BOUND)
        .unwrap_or_else(|| panic!("the server did not stop within {STOP_BOUND:?} of SIGTERM"));
    assert!(!status.success(), "{status}");
    let log = std::fs::read_to_string(&app.log).unwrap_or_default();
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("pod-identity-store: stopped after a storage failure")
            && last.contains(cause),
        "last line: {last} (after {:?})",
        started.elapsed()
    );
    started.elapsed()
}

/// Every acknowledged association is there.
#[track_caller]
fn assert_all_there(base: &str, acknowledged: &[String]) {
    for id in acknowledged {
        let described = call(
            base,
            "GET",
            &format!("/clusters/c1/pod-identity-associations/{id}"),
            None,
        )
        .expect("Describe answers");
        assert_eq!(described.status, 200, "acknowledged {id} is lost");
    }
}

/// What 8 concurrent writers saw: the writes acknowledged, and the longest
/// answer of any write.
#[derive(Default)]
struct Writes {
    acknowledged: Vec<String>,
    longest: Duration,
}

/// Starts 8 writers creating associations in `c1` (service accounts
/// `{label}-w{n}-{i}`), each until the store refuses one of its writes;
/// every answer must come within `ANSWER_BOUND`, and the store must fail
/// within `within`.
fn start_writers(
    base: &str,
    label: &str,
    within: Duration,
    writes: &Arc<Mutex<Writes>>,
) -> Vec<std::thread::JoinHandle<()>> {
    let deadline = Instant::now() + within;
    (0..8)
        .map(|w| {
            let (base, writes) = (base.to_owned(), Arc::clone(writes));
            let label = format!("{label}-w{w}");
            std::thread::spawn(move || {
                for i in 0.. {
                    assert!(Instant::now() < deadline, "{label}: the store never failed");
                    let reply = create(&base, &format!("{label}-{i}"))
                        .unwrap_or_else(|e| panic!("{label}: {e}"));
                    assert!(reply.took < ANSWER_BOUND, "{label}: {reply:?}");
                    let acknowledged = acknowledged_or_refused(&reply);
                    let mut writes = writes.lock().unwrap();
                    writes.longest = writes.longest.max(reply.took);
                    match acknowledged {
                        Some(id) => writes.acknowledged.push(id),
                        None => return,
                    }
                }
            })
        })
        .collect()
}

/// The course of a fail-point test: writes acknowledged, `point` armed
/// with `actions`, 8 writers in flight until the store fails, then the
/// behaviour after the failure, a stop and a restart without the fail point.
fn fail_at(point: &str, actions: &str, kind: &str, before_arming: impl FnOnce(&Path)) {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let mut acknowledged: Vec<String> = (0..5)
        .map(|i| {
            let reply = create(&app.base, &format!("before-{i}")).unwrap();
            assert_eq!(reply.status, 200, "{reply:?}");
            acknowledged_or_refused(&reply).unwrap()
        })
        .collect();
    before_arming(&app.data_dir);
    arm(&app, point, actions);

    // Until each writer has met the failure (bounded: the witness is
    // written at most once a second).
    let writes = Arc::new(Mutex::new(Writes::default()));
    for writer in start_writers(
        &app.base,
        &point.replace("::", "-").replace('_', "-"),
        Duration::from_secs(20),
        &writes,
    ) {
        writer.join().expect("a writer thread failed");
    }
    acknowledged.append(&mut writes.lock().unwrap().acknowledged);

    // Failed for good: another write is refused at once.
    let refused = create(&app.base, "after").unwrap();
    assert_eq!(refused.status, 500, "{refused:?}");
    acknowledged_or_refused(&refused);
    assert_not_ready(&app.base, NO_SPACE);
    assert_failure_counted(&app.base, Some(kind));
    // Reads go on.
    let listed = call(
        &app.base,
        "GET",
        "/clusters/c1/pod-identity-associations",
        None,
    )
    .unwrap();
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_all_there(&app.base, &acknowledged[..1]);

    assert_stops_naming_the_cause(&mut app, NO_SPACE);
    app.start();
    assert_all_there(&app.base, &acknowledged);
    let ready = call(&app.base, "GET", "/readyz", None).unwrap();
    assert_eq!(ready.status, 200, "after the restart: {ready:?}");
}

#[test]
fn a_failed_flush_stops_the_writes_and_loses_nothing_acknowledged() {
    fail_at("store::flush", "return", "flush", |_| {});
}

#[test]
fn a_failed_fsync_of_the_data_file_stops_the_writes_and_loses_nothing_acknowledged() {
    fail_at("store::fsync_db", "return", "fsync", |_| {});
}

#[test]
fn a_failed_fsync_of_a_blob_file_stops_the_writes_and_loses_nothing_acknowledged() {
    // sled writes a blob file only for a node over 128 KiB; the group commit
    // fsyncs every file in `blobs/` it has not fsynced yet, so a new one
    // made here meets the fail point at the next flush. sled removes it at
    // the next start (its name is past the end of the log).
    fail_at("store::fsync_blob", "return", "fsync", |dir| {
        let blobs = dir.join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join("9000000000000000000"), b"blob").unwrap();
    });
}

#[test]
fn a_failed_write_transaction_stops_the_writes_and_loses_nothing_acknowledged() {
    fail_at("store::transaction", "return", "transaction", |_| {});
}

#[test]
fn a_failed_witness_write_stops_the_writes_and_loses_nothing_acknowledged() {
    fail_at("store::witness", "return", "witness", |_| {});
}

#[test]
fn a_failed_read_stops_the_writes_and_the_reads_go_on() {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let reply = create(&app.base, "before").unwrap();
    let id = acknowledged_or_refused(&reply).expect("acknowledged");
    let describe = format!("/clusters/c1/pod-identity-associations/{id}");
    arm(&app, "store::read", "1*return");

    let failed = call(&app.base, "GET", &describe, None).unwrap();
    assert_eq!(failed.status, 500, "{failed:?}");
    assert_eq!(failed.error_type.as_deref(), Some("ServerException"));
    let cause = "reading the store failed: Input/output error";
    assert_not_ready(&app.base, cause);
    assert_failure_counted(&app.base, Some("read"));
    // The read after it is served; the writes are refused.
    assert_eq!(call(&app.base, "GET", &describe, None).unwrap().status, 200);
    let refused = create(&app.base, "after").unwrap();
    assert_eq!(refused.status, 500, "{refused:?}");
    acknowledged_or_refused(&refused);

    assert_stops_naming_the_cause(&mut app, cause);
    app.start();
    assert_all_there(&app.base, &[id]);
}

/// The last line of a refused start.
#[track_caller]
fn refused_start(data_dir: &Path, failpoints: Option<&str>) -> String {
    let args: Vec<OsString> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.into(),
    ];
    let env: Vec<(&str, OsString)> = failpoints
        .map(|f| ("FAILPOINTS", f.into()))
        .into_iter()
        .collect();
    let exit = run_to_exit(command(&args, &env));
    assert!(!exit.status.success(), "it started: {}", exit.stdout);
    assert!(exit.stdout.is_empty(), "a ready line: {}", exit.stdout);
    exit.stderr.lines().last().unwrap_or_default().to_owned()
}

#[test]
fn a_store_that_cannot_write_at_start_up_is_refused_with_the_cause_new_or_existing() {
    let mut app = TestApp::unstarted();
    let line = refused_start(&app.data_dir, Some("store::witness=return"));
    assert!(
        line.starts_with("pod-identity-store: could not record the durable write count at ")
            && line.contains(NO_SPACE),
        "{line}"
    );
    app.start();
    app.given_cluster("c1");
    app.kill();
    for failpoints in ["store::witness=return", "store::fsync_db=return"] {
        let line = refused_start(&app.data_dir, Some(failpoints));
        assert!(
            line.starts_with("pod-identity-store: ") && line.contains(NO_SPACE),
            "{failpoints}: {line}"
        );
    }
    app.start();
    assert_eq!(app.describe_cluster("c1").status, 200);
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (the test prints that it is skipped) where mounting is not
    /// allowed (not root, no tmpfs).
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system of `dir` with files until it is full, then frees
/// `headroom` bytes for the server's own writes to fill.
fn fill(dir: &Path, headroom: u64) {
    use std::io::Write;
    let mut file = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0xa5u8; 64 << 10];
    while file.write_all(&chunk).is_ok() {}
    // A file of its own takes the last pages a 64 KiB chunk did not.
    for i in 0.. {
        let Ok(mut small) = std::fs::File::create(dir.join(format!("filler-{i}"))) else {
            break;
        };
        if small
            .write_all(&[0; 4096])
            .and_then(|()| small.sync_all())
            .is_err()
        {
            break;
        }
    }
    let length = file.metadata().unwrap().len();
    file.set_len(length.saturating_sub(headroom)).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// One round of the full-disk test; false when tmpfs cannot be mounted.
fn full_disk_round(round: usize) -> bool {
    let Some(tmpfs) = Tmpfs::mount("32m") else {
        return false;
    };
    let mut app = TestApp::unstarted();
    let data_dir = tmpfs.path().join("data");
    app.data_dir = data_dir.clone();
    app.start();
    app.given_cluster("c1");

    let writes = Arc::new(Mutex::new(Writes::default()));
    let label = format!("round{round}");
    let writers = start_writers(&app.base, &label, Duration::from_secs(60), &writes);
    // Let the writers get going, then fill the disk under them.
    while writes.lock().unwrap().acknowledged.len() < 50 {
        std::thread::sleep(Duration::from_millis(5));
    }
    // A reader all along: Describe and /metrics answer in time throughout.
    // /metrics always succeeds; a Describe does where sled can still serve
    // it (a read that needs sled's log, once it failed, fails too).
    let first = writes.lock().unwrap().acknowledged[0].clone();
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let (base, writing) = (app.base.clone(), Arc::clone(&writing));
        std::thread::spawn(move || {
            let describe = format!("/clusters/c1/pod-identity-associations/{first}");
            let (mut served, mut failed, mut after, mut served_after) = (0, 0, 0, 0);
            // On after the writers met the failure, for 10 rounds of reads.
            while after < 10 {
                if !writing.load(std::sync::atomic::Ordering::SeqCst) {
                    after += 1;
                }
                let read = call(&base, "GET", &describe, None).unwrap();
                assert!(read.took < ANSWER_BOUND, "round {round}: {read:?}");
                match (read.status, read.error_type.as_deref()) {
                    (200, _) => {
                        served += 1;
                        served_after += usize::from(after > 0);
                    }
                    (500, Some("ServerException")) => failed += 1,
                    _ => panic!("round {round}: Describe answered {read:?}"),
                }
                let metrics = call(&base, "GET", "/metrics", None).unwrap();
                assert_eq!(metrics.status, 200, "round {round}: {metrics:?}");
                assert!(metrics.took < ANSWER_BOUND, "round {round}: {metrics:?}");
            }
            assert!(
                served_after > 0,
                "round {round}: no read served after the failure"
            );
            (served, failed)
        })
    };
    // Odd rounds leave the last 256 KiB for the writers to fill.
    fill(tmpfs.path(), if round % 2 == 1 { 256 << 10 } else { 0 });
    for writer in writers {
        writer.join().expect("a writer thread failed");
    }
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    let (served, failed) = reader.join().expect("the reader thread failed");
    let Writes {
        acknowledged,
        longest,
    } = std::mem::take(&mut *writes.lock().unwrap());
    assert_not_ready(&app.base, NO_SPACE);
    assert_failure_counted(&app.base, None);
    let stopped_in = assert_stops_naming_the_cause(&mut app, NO_SPACE);

    // Still full: the server refuses to start, saying why.
    let line = refused_start(&data_dir, None);
    assert!(
        line.starts_with("pod-identity-store: ") && line.contains(NO_SPACE),
        "round {round}: {line}"
    );

    // With space: every acknowledged write is there.
    let roomy = tempfile::tempdir().unwrap();
    copy_dir(&data_dir, &roomy.path().join("data"));
    app.data_dir = roomy.path().join("data");
    app.start();
    assert_all_there(&app.base, &acknowledged);
    app.kill();
    let log = std::fs::read_to_string(&app.log).unwrap_or_default();
    let failure = log
        .lines()
        .find(|l| l.contains("storage failure ("))
        .unwrap_or("(none logged)");
    eprintln!(
        "round {round}: {} writes acknowledged before the disk filled, all there; longest \
         write answer {:?}; Describe served {served}, failed {failed}; stopped \
         {stopped_in:?} after SIGTERM; {failure}",
        acknowledged.len(),
        longest
    );
    true
}

/// A real full disk, in 5 rounds (a hang showed in some runs only).
#[test]
fn a_full_disk_under_8_writers_answers_every_write_stops_in_time_and_loses_nothing() {
    for round in 0..5 {
        if !full_disk_round(round) {
            return;
        }
    }
}
