//! Integration tests: each starts the real `pod-identity-store` binary on
//! 127.0.0.1 port 0 with a fresh temporary data directory and talks HTTP to
//! it, as a user's AWS client would.

mod helpers;

mod associations;
mod clock;
mod cluster_state;
mod clusters;
mod concurrency;
mod config;
mod crash;
mod delete;
mod durability;
mod eks_auth;
mod errors;
mod idempotency;
mod list;
mod observability;
mod quota;
mod refusals;
mod sdk;
mod sdk_eks_auth;
mod service;
mod session_members;
mod startup;
mod tags;
mod tools;
mod update;
mod upgrade;
mod validation;
