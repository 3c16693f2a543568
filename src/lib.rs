//! pod-identity-store: a self-hosted, durable implementation of the Amazon
//! EKS Pod Identity association API.
//!
//! Data flows one way: `api` (HTTP, wire shapes, EKS errors) → `domain`
//! (validated types and rules) → `store` (sled, group commit, migrations).
//! `backup` (the export file, import) sits beside `api`: another way in.
//! `faults` (switchable EKS failure modes for testing clients) sits beside
//! `api` too: it decides what a request meets, and never writes.
//! `eksauth` (service-account tokens, credential providers) is what
//! AssumeRoleForPodIdentity uses besides the store.

pub mod agent;
pub mod api;
pub mod auth;
pub mod backup;
pub mod config;
pub mod domain;
pub mod eksauth;
pub mod failure;
pub mod faults;
pub mod startup;
pub mod store;
pub mod systemd;
