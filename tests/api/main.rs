//! Integration tests: each starts the real `pod-identity-store` binary on
//! 127.0.0.1 port 0 with a fresh temporary data directory and talks HTTP to
//! it, as a user's AWS client would.

mod helpers;

mod associations;
mod cluster_state;
mod clusters;
mod concurrency;
mod config;
mod durability;
mod errors;
mod idempotency;
mod sdk;
mod startup;
mod update;
mod upgrade;
