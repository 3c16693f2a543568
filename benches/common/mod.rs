//! Code shared by the benchmarks (each includes it with `mod common;`).

pub mod http;

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use serde::Deserialize;
use tokio::sync::Barrier;

use http::{Connection, Sign};

/// Opens a keep-alive connection and sends one request on it, so that both
/// happen before the clock starts; `sign` signs its requests (a server
/// with authentication on), or `None`.
pub async fn connect(addr: std::net::SocketAddr, sign: Option<Sign>) -> Result<Connection, String> {
    let mut conn = Connection::open(addr, sign)
        .await
        .map_err(|e| format!("connecting to the server: {e}"))?;
    conn.send("GET", "/healthz", None).await?;
    Ok(conn)
}

/// The clients of one measurement, started by `spawn_clients`.
pub struct Clients {
    /// Passed by every client once connected, and by `start`.
    barrier: Arc<Barrier>,
    threads: Vec<JoinHandle<Vec<ClientResult>>>,
}

impl Clients {
    /// Returns once every client has connected: from then on they all run.
    pub fn start(&self) {
        block_on(self.barrier.wait());
    }

    /// Waits for every client to end; what each saw.
    pub fn join(self) -> Vec<ClientResult> {
        self.threads
            .into_iter()
            .flat_map(|t| t.join().expect("a client thread panicked"))
            .collect()
    }
}

/// Starts `clients` clients, client `c` being the future `client(c, start)`,
/// on one thread per core, each thread an event loop of its own that serves
/// its share of the connections (as wrk's threads do: a request batch per
/// wake-up, rather than a thread woken per answer). A client connects, then
/// waits on `start` before its first request, also when it failed to
/// connect; `Clients::start` releases them all at once.
pub fn spawn_clients<F, Fut>(clients: usize, client: F) -> Clients
where
    F: Fn(usize, Arc<Barrier>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ClientResult> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(clients + 1));
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(clients);
    let client = Arc::new(client);
    let threads = (0..threads)
        .map(|t| {
            let (client, barrier) = (Arc::clone(&client), Arc::clone(&barrier));
            std::thread::spawn(move || {
                block_on(async move {
                    let running: Vec<_> = (t..clients)
                        .step_by(threads)
                        .map(|c| tokio::spawn(client(c, Arc::clone(&barrier))))
                        .collect();
                    let mut results = Vec::with_capacity(running.len());
                    for r in running {
                        results.push(r.await.expect("a client panicked"));
                    }
                    results
                })
            })
        })
        .collect();
    Clients { barrier, threads }
}

/// Runs `future` to its end on a single-threaded runtime of its own.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("starting a runtime for the clients")
        .block_on(future)
}

/// What one client saw.
#[derive(Default)]
pub struct ClientResult {
    pub latencies_ns: Vec<u64>,
    pub errors: u64,
    pub first_errors: Vec<String>,
    /// The connection failed (`transport:` errors): the client stops, since
    /// every later request on it would fail at once, or read an answer
    /// meant for an earlier one.
    pub broken: bool,
}

impl ClientResult {
    /// A client that failed before its first request: it still reaches the
    /// barrier (so the others do not wait for ever) and reports `error`.
    pub fn failed(error: String) -> ClientResult {
        ClientResult {
            errors: 1,
            first_errors: vec![error],
            ..ClientResult::default()
        }
    }

    /// Records one request's latency and outcome; the value on success.
    pub fn record<T>(&mut self, started: Instant, outcome: Result<T, String>) -> Option<T> {
        self.latencies_ns
            .push(started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64);
        match outcome {
            Ok(value) => Some(value),
            Err(e) => {
                self.errors += 1;
                self.broken |= e.starts_with("transport:");
                if self.first_errors.len() < 3 {
                    self.first_errors.push(e);
                }
                None
            }
        }
    }
}

/// What all the clients of one measurement saw together.
pub struct Summary {
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    /// The first few errors, for the report.
    pub first_errors: Vec<String>,
}

impl Summary {
    pub fn of(results: Vec<ClientResult>) -> Summary {
        let mut all: Vec<u64> = results
            .iter()
            .flat_map(|r| r.latencies_ns.iter().copied())
            .collect();
        all.sort_unstable();
        Summary {
            requests: all.len() as u64,
            p50_ms: percentile_ms(&all, 0.50),
            p99_ms: percentile_ms(&all, 0.99),
            p999_ms: percentile_ms(&all, 0.999),
            max_ms: all.last().map_or(0.0, |&ns| ns as f64 / 1e6),
            errors: results.iter().map(|r| r.errors).sum(),
            first_errors: results
                .into_iter()
                .flat_map(|r| r.first_errors)
                .take(5)
                .collect(),
        }
    }
}

/// The `p` quantile of sorted nanosecond latencies, in milliseconds.
fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank: the smallest latency with at least p of them at or below it.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e6
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The member of a List answer the clients need; serde skips the rest
/// without building it, so the load generator spends little CPU on a page.
#[derive(Deserialize)]
struct ListPage {
    #[serde(rename = "nextToken")]
    next_token: Option<String>,
}

/// Fetches one List page: `list_path` (with its query, e.g. `maxResults`)
/// after the page `next_token` names. Returns the next page's token.
pub async fn list_page(
    conn: &mut Connection,
    list_path: &str,
    next_token: Option<&str>,
) -> Result<Option<String>, String> {
    let path = match next_token {
        Some(token) => format!("{list_path}&nextToken={}", query_escape(token)),
        None => list_path.to_owned(),
    };
    conn.send("GET", &path, None).await.map(|b| {
        serde_json::from_str::<ListPage>(b)
            .ok()
            .and_then(|p| p.next_token)
    })
}

/// The CPU seconds (user + system) process `pid` has used so far, from
/// `/proc/<pid>/stat`; 0 when it cannot be read.
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3;
    // utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 / clock_ticks_per_second()
}

/// Asked once: `getconf` is a child process, not something to run while
/// clients are measuring.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}
