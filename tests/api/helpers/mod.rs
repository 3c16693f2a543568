//! The test harness: starts the real `pod-identity-store` binary on
//! 127.0.0.1 port 0 with a fresh temporary data directory and talks HTTP to
//! it, one helper per endpoint. By concern:
//!
//! - `process`: the binary as a process (spawn, wait for the ready line, run to exit);
//! - `http`: an answer, the rules every answer keeps, the generic client;
//! - `endpoints`: one client helper per endpoint, and the givens;
//! - `app`: [`TestApp`], a server with its own temporary directory;
//! - `store`: looking inside a stopped store with sled itself;
//! - `fixtures`: the default account, ARNs, JSON member readers.

mod app;
mod endpoints;
mod fixtures;
mod http;
mod process;
mod store;

pub use app::TestApp;
pub use fixtures::{
    cluster_arn, now_seconds, role, s, sample, ts, ACCOUNT, ALL_STATUSES, CLOCK_CONTROL,
    IMMUTABLE_RULE,
};
pub use http::{check_answer, encode, query, Answer, Client, INJECTED, REQUEST_TIMEOUT};
pub use process::{command, run_to_exit, Exit, Server, START_TIMEOUT};
pub use store::{newest_snapshot_lsn, open_store_directly, stored_counts, StoredCounts};
