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

/// Running property tests within a bound of time.
#[cfg(test)]
pub(crate) mod props {
    use std::fmt::Debug;
    use std::time::{Duration, Instant};

    use proptest::strategy::Strategy;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    /// What one property may take: cases past it are skipped (and said so),
    /// so that a slow machine makes the test weaker, never endless.
    const TIME_LIMIT: Duration = Duration::from_secs(20);

    /// Checks `property` on `cases` values drawn from `strategy` (fresh ones
    /// each run), shrinking a failure to a small example for at most 10 s.
    pub fn check<S>(
        name: &str,
        cases: u32,
        strategy: S,
        property: impl Fn(S::Value) -> Result<(), TestCaseError>,
    ) where
        S: Strategy,
        S::Value: Debug,
    {
        let config = Config {
            cases,
            max_shrink_time: 10_000,
            failure_persistence: None,
            ..Config::default()
        };
        let started = Instant::now();
        let skipped = std::cell::Cell::new(0u32);
        let result = TestRunner::new(config).run(&strategy, |value| {
            if started.elapsed() > TIME_LIMIT {
                skipped.set(skipped.get() + 1);
                return Ok(());
            }
            property(value)
        });
        if let Err(e) = result {
            panic!("property {name} does not hold: {e}");
        }
        if skipped.get() > 0 {
            eprintln!(
                "property {name}: {} of {cases} cases skipped past the {TIME_LIMIT:?} limit",
                skipped.get()
            );
        }
    }
}
