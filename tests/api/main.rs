//! Integration tests: each starts the real `pod-identity-store` binary on
//! 127.0.0.1 port 0 with a fresh temporary data directory and talks HTTP to
//! it, as a user's AWS client would.

mod helpers;
mod stand_in;

mod agent;
mod associations;
mod auth;
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
mod faults;
mod idempotency;
mod list;
mod observability;
mod quota;
mod refusals;
mod sdk;
mod sdk_eks_auth;
mod service;
mod session_members;
mod slow_clients;
mod startup;
mod storage_faults;
mod sts_provider;
mod tags;
mod tls;
mod tools;
mod update;
mod upgrade;
mod validation;
