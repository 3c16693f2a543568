//! Start-up refusals: each is one clear line on stderr and a non-zero exit,
//! never a panic or a backtrace.

use std::ffi::OsString;
use std::path::Path;

use crate::helpers::{command, run_to_exit, Exit, TestApp};

fn serve(data_dir: &Path, listen: &str) -> Exit {
    let args: Vec<OsString> = vec![
        "--listen".into(),
        listen.into(),
        "--data-dir".into(),
        data_dir.into(),
    ];
    run_to_exit(command(&args, &[]))
}

/// The refusal: non-zero, one line, naming `what`, no panic.
#[track_caller]
fn assert_refused(exit: &Exit, what: &str) {
    assert!(!exit.status.success(), "it started: {}", exit.stderr);
    let lines: Vec<&str> = exit
        .stderr
        .lines()
        .filter(|l| !l.contains(" INFO "))
        .collect();
    assert_eq!(lines.len(), 1, "not one line: {}", exit.stderr);
    assert!(lines[0].contains(what), "{}", exit.stderr);
    for sign in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!exit.stderr.contains(sign), "{}", exit.stderr);
    }
}

/// A store with a few clusters, stopped.
fn stopped_store() -> TestApp {
    let mut app = TestApp::spawn();
    for name in ["c1", "c2", "c3"] {
        app.given_cluster(name);
    }
    app.kill();
    app
}

#[test]
fn a_data_file_that_lost_its_contents_is_refused_not_served_empty() {
    let app = stopped_store();
    std::fs::write(app.data_dir.join("db"), b"").unwrap();
    assert_refused(&serve(&app.data_dir, "127.0.0.1:0"), "lost what it held");
}

#[test]
fn a_data_file_overwritten_with_garbage_is_refused() {
    let app = stopped_store();
    let db = app.data_dir.join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    for (i, b) in bytes.iter_mut().enumerate().skip(64) {
        *b = (i * 7 % 251) as u8;
    }
    std::fs::write(&db, bytes).unwrap();
    assert_refused(&serve(&app.data_dir, "127.0.0.1:0"), "damaged");
}

#[test]
fn a_data_file_of_another_store_is_refused() {
    let app = stopped_store();
    let other = stopped_store();
    std::fs::copy(other.data_dir.join("db"), app.data_dir.join("db")).unwrap();
    assert_refused(
        &serve(&app.data_dir, "127.0.0.1:0"),
        "belongs to another store",
    );
}

#[test]
fn a_port_in_use_is_refused() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let exit = serve(
        &dir.path().join("data"),
        &busy.local_addr().unwrap().to_string(),
    );
    assert_refused(&exit, "cannot listen on");
}

#[test]
fn a_data_dir_that_cannot_be_created_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    assert_refused(&serve(&file.join("data"), "127.0.0.1:0"), "data directory");
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused_in_one_line() {
    let app = TestApp::spawn();
    assert_refused(
        &serve(&app.data_dir, "127.0.0.1:0"),
        "in use by another process",
    );
}

/// Cuts the data file back to `len`, as a failed copy or a restore of an
/// older file might.
fn cut_data_file(data_dir: &Path, len: u64) {
    let db = std::fs::OpenOptions::new()
        .write(true)
        .open(data_dir.join("db"))
        .unwrap();
    db.set_len(len).unwrap();
}

/// Makes 30 acknowledged writes and returns the data file's length after the
/// first 5: cut back to it, the file holds at most those (sled appends to its
/// log, and 30 small writes do not make it clean and reuse a segment).
fn store_with_writes(app: &TestApp) -> u64 {
    for i in 0..5 {
        app.given_cluster(&format!("c{i}"));
    }
    let early = std::fs::metadata(app.data_dir.join("db")).unwrap().len();
    for i in 5..30 {
        app.given_cluster(&format!("c{i}"));
    }
    early
}

#[test]
fn a_data_file_cut_short_after_a_clean_stop_is_refused() {
    let mut app = TestApp::spawn();
    let early = store_with_writes(&app);
    app.stop();
    cut_data_file(&app.data_dir, early);
    // The clean stop left sled a recovery snapshot of the whole log, which
    // the cut file no longer holds.
    assert_refused(
        &serve(&app.data_dir, "127.0.0.1:0"),
        "shorter than sled's recovery snapshot of it (was it truncated",
    );
}

#[test]
fn a_data_file_cut_short_after_a_crash_is_refused() {
    let mut app = TestApp::spawn();
    let early = store_with_writes(&app);
    // The durable write count is recorded after a flush, at most once a
    // second of the store's own (real) time, just after the writers are
    // answered: write until it covers more than the early writes.
    let witness = app.data_dir.join("durable-writes");
    let recorded = || {
        std::fs::read_to_string(&witness)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut late = 0;
    while recorded() <= 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "the durable write count was not recorded"
        );
        app.given_cluster(&format!("late{late}"));
        late += 1;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    app.kill();
    cut_data_file(&app.data_dir, early);
    assert_refused(&serve(&app.data_dir, "127.0.0.1:0"), "were on disk before");
}
