//! Soak: a sustained update load where every request carries a fresh
//! `clientRequestToken` (as the AWS SDKs send), to show that the data
//! directory stops growing once tokens expire and are swept.
//!
//! Run: `cargo bench --bench soak` (about 2 minutes). Settings through the
//! environment: `SOAK_SECONDS` (120), `SOAK_CLIENTS` (8), `SOAK_TOKEN_TTL`
//! (seconds a token is kept, 10), `SOAK_ASSOCIATIONS` (100).
//! Traffic goes only to 127.0.0.1; the server runs on a fresh temp dir.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes of all files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn metric(base: &str, name: &str) -> u64 {
    let page = ureq::get(&format!("{base}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

fn post(agent: &ureq::Agent, url: &str, body: serde_json::Value) -> serde_json::Value {
    agent
        .post(url)
        .send_json(body)
        .unwrap()
        .into_json()
        .unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and `cargo test --benches` probes
    }
    let seconds = setting("SOAK_SECONDS", 120);
    let clients = setting("SOAK_CLIENTS", 8);
    let ttl = setting("SOAK_TOKEN_TTL", 10);
    let associations = setting("SOAK_ASSOCIATIONS", 100);

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[idempotency]\ntoken_ttl_seconds = {ttl}\nsweep_interval_seconds = 1\n"),
    )
    .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_pod-identity-store"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("pod-identity-store listening on ")
        .unwrap()
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    post(
        &agent,
        &format!("{base}/clusters"),
        serde_json::json!({"name": "soak", "roleArn": "arn:aws:iam::123456789012:role/r", "resourcesVpcConfig": {}}),
    );
    let ids: Vec<String> = (0..associations)
        .map(|i| {
            let a = post(
                &agent,
                &format!("{base}/clusters/soak/pod-identity-associations"),
                serde_json::json!({"namespace": "soak", "serviceAccount": format!("sa-{i}"), "roleArn": "arn:aws:iam::123456789012:role/r"}),
            );
            a["association"]["associationId"].as_str().unwrap().to_owned()
        })
        .collect();
    let ids = Arc::new(ids);

    println!("soak: {seconds} s, {clients} clients, tokens kept {ttl} s, {associations} associations, data in a temp dir");
    println!(
        "{:>8} {:>10} {:>10} {:>12}",
        "seconds", "updates", "tokens", "data bytes"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let updates = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let (stop, updates, ids, base, agent) = (stop.clone(), updates.clone(), ids.clone(), base.clone(), agent.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let id = &ids[(n as usize * 7 + c as usize) % ids.len()];
                    post(
                        &agent,
                        &format!("{base}/clusters/soak/pod-identity-associations/{id}"),
                        serde_json::json!({"roleArn": format!("arn:aws:iam::123456789012:role/r{}", n % 2), "clientRequestToken": format!("{c}-{n}")}),
                    );
                    updates.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let started = Instant::now();
    let mut samples = Vec::new();
    let every = Duration::from_secs((seconds / 12).max(1));
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(every);
        let sample = (
            started.elapsed().as_secs(),
            updates.load(Ordering::Relaxed),
            metric(&base, "pod_identity_store_tokens"),
            dir_bytes(&data),
        );
        println!(
            "{:>8} {:>10} {:>10} {:>12}",
            sample.0, sample.1, sample.2, sample.3
        );
        samples.push(sample);
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let total = updates.load(Ordering::Relaxed);
    let _ = server.kill();
    let _ = server.wait();

    let rate = total as f64 / started.elapsed().as_secs_f64();
    let bound = (rate * (ttl + 2) as f64) as u64;
    let max_tokens = samples.iter().map(|s| s.2).max().unwrap_or(0);
    let half = samples.len() / 2;
    let grew_late = samples[half..].iter().map(|s| s.3).max().unwrap_or(0);
    let early = samples[..half].iter().map(|s| s.3).max().unwrap_or(0);
    println!("updates: {total} ({rate:.0}/s), each with a fresh token");
    println!("tokens held at most: {max_tokens} (rate x (ttl + sweep) = {bound})");
    println!("data dir: {} bytes at the end; largest in the first half {early}, in the second half {grew_late}", dir_bytes(&data));
}
