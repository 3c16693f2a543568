//! Switchable faults: EKS's rough edges (throttling, errors, lost answers,
//! latency, propagation delay) on demand, for testing clients.
//!
//! Rules come from the config's `[faults]` section and from `PUT
//! /admin/v1/faults`; they live in memory only. Every random choice draws
//! from one generator seeded by `seed`, restarted by every PUT, so that the
//! same sequence of requests meets the same faults. Nothing here writes to
//! the store: an injected error either comes before the operation runs (it
//! changes nothing) or after its write is durable (`error_after_commit`),
//! and a propagation delay only changes what some readers are answered.
//!
//! With no rules, a request pays one atomic load ([`Faults::decide`]).

mod bucket;
mod overlay;
mod random;
mod rules;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bucket::TokenBucket;
use overlay::Overlay;
pub use overlay::{ListedPage, PreviousAssociation};
use random::Generator;
pub use rules::{
    FaultSpec, FaultsConfig, InjectedError, Kind, Rule, RuleError, ASSOCIATION_WRITES,
    ASSUME_ROLE_FOR_POD_IDENTITY,
};

use crate::domain::{Association, Timestamp};

/// What a rule does to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// The rule's index in the list.
    pub rule: usize,
    /// `throttle`, `error`, `error_after_commit`, `latency`.
    pub kind: &'static str,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer this error; the operation does not run.
    Refuse(InjectedError, String),
    /// Wait this long, then run the operation.
    Delay(Duration),
    /// Run the operation; if it succeeds, answer this 500 instead.
    LoseAnswer(String),
}

/// How long a change stays unseen, and whether List is held back too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropagationDelay {
    pub delay_ms: u64,
    pub lists: bool,
}

#[derive(Debug, Default)]
struct InForce {
    spec: FaultSpec,
    generator: Option<Generator>,
    /// One per rule; `Some` for throttles.
    buckets: Vec<Option<TokenBucket>>,
}

/// The rules in force, their generator and buckets, the propagation-delay
/// overlay, and the count of faults injected.
#[derive(Debug, Default)]
pub struct Faults {
    /// Whether any rule is in force: the one load a request makes when none is.
    active: AtomicBool,
    in_force: Mutex<InForce>,
    overlay: Overlay,
    /// Faults injected, by (kind, operation).
    injected: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

/// A mutex whose holder panicked: every value behind these is whole after
/// each statement, so the data is still good.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Faults {
    pub fn new(spec: FaultSpec, now: Timestamp) -> Faults {
        let faults = Faults::default();
        faults.replace(spec, now);
        faults
    }

    /// Puts `spec` in force: its generator starts again from its seed, every
    /// bucket starts full, and every change held back is seen at once.
    pub fn replace(&self, spec: FaultSpec, now: Timestamp) {
        let mut in_force = lock(&self.in_force);
        in_force.generator = Some(Generator::new(spec.seed));
        in_force.buckets = spec
            .rules
            .iter()
            .map(|rule| match rule.kind {
                Kind::Throttle {
                    rate_per_second,
                    burst,
                } => Some(TokenBucket::new(rate_per_second, burst, now)),
                _ => None,
            })
            .collect();
        self.active.store(!spec.rules.is_empty(), Ordering::SeqCst);
        in_force.spec = spec;
        self.overlay.clear();
    }

    /// Whether any rule is in force.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// The rules in force.
    pub fn spec(&self) -> FaultSpec {
        lock(&self.in_force).spec.clone()
    }

    /// What happens to a request of `operation` about `cluster` (`None`:
    /// its path names none): the first rule that fires decides. A throttle
    /// whose bucket has a token takes it and does not fire; the
    /// `propagation_delay` rules never fire here.
    pub fn decide(
        &self,
        operation: &'static str,
        cluster: Option<&str>,
        now: Timestamp,
    ) -> Option<Fault> {
        if !self.is_active() {
            return None;
        }
        let mut guard = lock(&self.in_force);
        let InForce {
            spec,
            generator,
            buckets,
        } = &mut *guard;
        let generator = generator.get_or_insert_with(|| Generator::new(spec.seed));
        for (index, rule) in spec.rules.iter().enumerate() {
            if !rule.applies_to(operation, cluster) {
                continue;
            }
            let injected = |what: &str| {
                format!(
                    "{what} (injected by fault rule {index}, kind {}; a test fault, not a real failure)",
                    rule.kind.name()
                )
            };
            let action = match &rule.kind {
                Kind::Throttle { .. } => {
                    let bucket = buckets[index]
                        .as_mut()
                        .expect("every throttle rule has its bucket");
                    if bucket.take(now) {
                        continue;
                    }
                    Action::Refuse(InjectedError::Throttling, injected("Rate exceeded"))
                }
                Kind::Error { error, probability } => {
                    if !generator.happens(*probability) {
                        continue;
                    }
                    let what = match error {
                        InjectedError::ServiceUnavailable => {
                            "The service is unavailable; nothing was changed. Retry the request"
                        }
                        _ => "The server failed; nothing was changed. Retry the request",
                    };
                    Action::Refuse(*error, injected(what))
                }
                Kind::ErrorAfterCommit { probability } => {
                    if !generator.happens(*probability) {
                        continue;
                    }
                    Action::LoseAnswer(injected(
                        "The server failed after completing the request, and any change it made \
                         is saved. Retry with the same clientRequestToken to get the original \
                         answer",
                    ))
                }
                Kind::Latency {
                    min_ms,
                    max_ms,
                    probability,
                } => {
                    if !generator.happens(*probability) {
                        continue;
                    }
                    Action::Delay(Duration::from_millis(generator.between(*min_ms, *max_ms)))
                }
                Kind::PropagationDelay { .. } => continue,
            };
            return Some(Fault {
                rule: index,
                kind: rule.kind.name(),
                action,
            });
        }
        None
    }

    /// Counts one injected fault for `/metrics`.
    pub fn count(&self, kind: &'static str, operation: &'static str) {
        *lock(&self.injected).entry((kind, operation)).or_default() += 1;
    }

    /// The delay of the first `propagation_delay` rule that holds back a
    /// change `operation` makes to an association of `cluster`.
    pub fn propagation_delay(&self, operation: &str, cluster: &str) -> Option<PropagationDelay> {
        if !self.is_active() {
            return None;
        }
        lock(&self.in_force)
            .spec
            .rules
            .iter()
            .find_map(|rule| match rule.kind {
                Kind::PropagationDelay { delay_ms, lists } if rule.delays(operation, cluster) => {
                    Some(PropagationDelay { delay_ms, lists })
                }
                _ => None,
            })
    }

    /// Holds back a change to the association of (`cluster`, `namespace`,
    /// `service_account`) made at `now`: until `now + delay_ms` readers see
    /// `before` (`None`: no association).
    pub fn hold_back(
        &self,
        delay: PropagationDelay,
        (cluster, namespace, service_account): (&str, &str, &str),
        before: Option<PreviousAssociation>,
        now: Timestamp,
    ) {
        self.overlay.record(
            cluster,
            namespace,
            service_account,
            before,
            now.plus_millis(delay.delay_ms),
            delay.lists,
        );
    }

    /// What AssumeRoleForPodIdentity answers from for a pod of (`cluster`,
    /// `namespace`, `service_account`): `None`, the store; `Some(None)`, no
    /// association (a Create not yet propagated); `Some(Some(a))`, `a` (the
    /// role before an Update, or an association since deleted).
    pub fn stale_view(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
        now: Timestamp,
    ) -> Option<Option<PreviousAssociation>> {
        let view = self
            .overlay
            .stale_view(cluster, namespace, service_account, now)?;
        self.count("propagation_delay", ASSUME_ROLE_FOR_POD_IDENTITY);
        log::debug!(
            "fault injected: propagation_delay, AssumeRoleForPodIdentity for {cluster}/{namespace}/\
             {service_account} answered from the state before a change"
        );
        Some(view)
    }

    /// A page of ListPodIdentityAssociations as a client still sees it while
    /// a `lists = true` rule holds changes back; `None`: the page as it is.
    pub fn stale_page(&self, page: &ListedPage<'_>, now: Timestamp) -> Option<Vec<Association>> {
        let stale = self.overlay.stale_page(page, now)?;
        self.count("propagation_delay", "ListPodIdentityAssociations");
        Some(stale)
    }

    /// The `pod_identity_store_faults_injected_total` family of `/metrics`.
    pub fn render_metrics(&self) -> String {
        let mut out = String::from(
            "# HELP pod_identity_store_faults_injected_total Faults injected by the fault rules, \
             by kind and operation.\n# TYPE pod_identity_store_faults_injected_total counter\n",
        );
        for ((kind, operation), count) in lock(&self.injected).iter() {
            let _ = writeln!(
                out,
                "pod_identity_store_faults_injected_total{{kind=\"{kind}\",operation=\"{operation}\"}} {count}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> FaultSpec {
        FaultSpec::from_json(value.as_object().unwrap()).unwrap()
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn with_no_rules_nothing_fires() {
        let faults = Faults::default();
        assert_eq!(faults.decide("ListClusters", None, at(0)), None);
        assert_eq!(
            faults.propagation_delay("CreatePodIdentityAssociation", "c"),
            None
        );
    }

    #[test]
    fn the_same_seed_meets_the_same_faults_after_every_replace() {
        let rules = spec(json!({"seed": 42, "rules": [
            {"operations": ["*"], "kind": "error", "probability": 0.5},
        ]}));
        let faults = Faults::new(rules.clone(), at(0));
        let run = |faults: &Faults| {
            (0..40)
                .map(|_| faults.decide("ListClusters", None, at(0)).is_some())
                .collect::<Vec<_>>()
        };
        let first = run(&faults);
        assert!(first.contains(&true) && first.contains(&false), "{first:?}");
        faults.replace(rules.clone(), at(0));
        assert_eq!(run(&faults), first);
        faults.replace(FaultSpec { seed: 43, ..rules }, at(0));
        assert_ne!(run(&faults), first);
    }

    #[test]
    fn the_first_rule_that_fires_decides() {
        let faults = Faults::new(
            spec(json!({"rules": [
                {"operations": ["ListClusters"], "kind": "throttle", "rate_per_second": 1, "burst": 2},
                {"operations": ["*"], "kind": "error", "type": "ServiceUnavailableException", "probability": 1},
            ]})),
            at(0),
        );
        // Two tokens: the throttle lets them through, the error rule fires.
        for _ in 0..2 {
            let fault = faults.decide("ListClusters", None, at(0)).unwrap();
            assert_eq!((fault.rule, fault.kind), (1, "error"));
            let Action::Refuse(error, message) = fault.action else {
                panic!("{fault:?}")
            };
            assert_eq!(error, InjectedError::ServiceUnavailable);
            assert!(
                message.contains("injected by fault rule 1, kind error"),
                "{message}"
            );
        }
        let fault = faults.decide("ListClusters", None, at(0)).unwrap();
        assert_eq!((fault.rule, fault.kind), (0, "throttle"));
        assert!(matches!(
            fault.action,
            Action::Refuse(InjectedError::Throttling, _)
        ));
        // A second later the bucket has a token again.
        assert_eq!(
            faults.decide("ListClusters", None, at(1_000)).unwrap().rule,
            1
        );
    }

    #[test]
    fn latency_is_drawn_between_its_bounds_and_lost_answers_say_how_to_recover() {
        let faults = Faults::new(
            spec(json!({"rules": [
                {"operations": ["DescribeCluster"], "kind": "latency", "min_ms": 20, "max_ms": 30},
                {"operations": ["*"], "kind": "error_after_commit"},
            ]})),
            at(0),
        );
        for _ in 0..50 {
            let fault = faults.decide("DescribeCluster", Some("c"), at(0)).unwrap();
            let Action::Delay(delay) = fault.action else {
                panic!("{fault:?}")
            };
            assert!((20..=30).contains(&delay.as_millis()), "{delay:?}");
        }
        let fault = faults.decide("CreateCluster", None, at(0)).unwrap();
        let Action::LoseAnswer(message) = fault.action else {
            panic!("{fault:?}")
        };
        assert!(message.contains("clientRequestToken"), "{message}");
    }

    #[test]
    fn replacing_the_rules_ends_every_delay_and_metrics_count_by_kind_and_operation() {
        let faults = Faults::new(
            spec(json!({"rules": [
                {"operations": ["*"], "kind": "propagation_delay", "delay_ms": 5000},
            ]})),
            at(0),
        );
        let delay = faults
            .propagation_delay("CreatePodIdentityAssociation", "c")
            .unwrap();
        assert_eq!(
            delay,
            PropagationDelay {
                delay_ms: 5000,
                lists: false
            }
        );
        faults.hold_back(delay, ("c", "ns", "sa"), None, at(0));
        assert_eq!(faults.stale_view("c", "ns", "sa", at(4_999)), Some(None));
        faults.replace(FaultSpec::default(), at(0));
        assert_eq!(faults.stale_view("c", "ns", "sa", at(1)), None);
        faults.count("throttle", "ListClusters");
        let page = faults.render_metrics();
        for line in [
            "pod_identity_store_faults_injected_total{kind=\"propagation_delay\",operation=\"AssumeRoleForPodIdentity\"} 1",
            "pod_identity_store_faults_injected_total{kind=\"throttle\",operation=\"ListClusters\"} 1",
        ] {
            assert!(page.lines().any(|l| l == line), "missing {line}\n{page}");
        }
    }
}
