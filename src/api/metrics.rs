//! Request metrics and the `/metrics` page (Prometheus text format 0.0.4).
//!
//! Counters are plain atomics in fixed arrays indexed by operation and
//! status, so recording a request takes no lock.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::router::OPERATIONS;
use crate::store::StoreStats;

/// The statuses this server answers with; anything else counts as "other".
const STATUSES: [u16; 11] = [200, 400, 404, 405, 409, 413, 415, 429, 500, 503, 0];
/// Latency bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

const OPS: usize = OPERATIONS.len();

/// The outcomes of AssumeRoleForPodIdentity: success, each error type of the
/// EKS Auth model this server sends, and anything else.
pub const POD_IDENTITY_OUTCOMES: [&str; 10] = [
    "success",
    "InvalidParameterException",
    "InvalidRequestException",
    "InvalidTokenException",
    "ExpiredTokenException",
    "AccessDeniedException",
    "ResourceNotFoundException",
    "ServiceUnavailableException",
    "ServerException",
    "other",
];

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[derive(Default)]
struct Histogram {
    /// Cumulative counts are computed when rendering; each slot counts one bucket.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

pub struct Metrics {
    requests: [[AtomicU64; STATUSES.len()]; OPS],
    latency: [Histogram; OPS],
    pod_identity: [AtomicU64; POD_IDENTITY_OUTCOMES.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency: std::array::from_fn(|_| Histogram::default()),
            pod_identity: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Metrics {
    pub fn record(&self, operation: &str, status: u16, elapsed: Duration) {
        let op = OPERATIONS
            .iter()
            .position(|o| *o == operation)
            .unwrap_or(OPS - 1);
        let st = STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(STATUSES.len() - 1);
        self.requests[op][st].fetch_add(1, Relaxed);
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.latency[op].buckets[bucket].fetch_add(1, Relaxed);
        self.latency[op]
            .sum_micros
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    /// Counts one AssumeRoleForPodIdentity call by its outcome: `success`
    /// or the error type it answered.
    pub fn record_pod_identity(&self, outcome: &str) {
        let i = POD_IDENTITY_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(POD_IDENTITY_OUTCOMES.len() - 1);
        self.pod_identity[i].fetch_add(1, Relaxed);
    }

    /// The page, with the store's figures.
    pub fn render(&self, store: &StoreStats) -> String {
        let mut out = String::with_capacity(16 * 1024);
        header(
            &mut out,
            "pod_identity_store_requests_total",
            "counter",
            "Requests answered, by operation and HTTP status.",
        );
        for (op, row) in OPERATIONS.iter().zip(&self.requests) {
            for (status, count) in STATUSES.iter().zip(row) {
                let count = count.load(Relaxed);
                if count > 0 {
                    let status = if *status == 0 {
                        "other".to_owned()
                    } else {
                        status.to_string()
                    };
                    let _ = writeln!(
                        out,
                        "pod_identity_store_requests_total{{operation=\"{op}\",status=\"{status}\"}} {count}"
                    );
                }
            }
        }
        header(
            &mut out,
            "pod_identity_store_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its answer, by operation.",
        );
        for (op, histogram) in OPERATIONS.iter().zip(&self.latency) {
            let counts: Vec<u64> = histogram.buckets.iter().map(|b| b.load(Relaxed)).collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(&counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "pod_identity_store_request_duration_seconds_bucket{{operation=\"{op}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let sum = histogram.sum_micros.load(Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "pod_identity_store_request_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {total}\n\
                 pod_identity_store_request_duration_seconds_sum{{operation=\"{op}\"}} {sum}\n\
                 pod_identity_store_request_duration_seconds_count{{operation=\"{op}\"}} {total}"
            );
        }
        header(
            &mut out,
            "pod_identity_store_assume_role_for_pod_identity_total",
            "counter",
            "AssumeRoleForPodIdentity calls, by outcome: success or the error type answered.",
        );
        for (outcome, count) in POD_IDENTITY_OUTCOMES.iter().zip(&self.pod_identity) {
            let _ = writeln!(
                out,
                "pod_identity_store_assume_role_for_pod_identity_total{{outcome=\"{outcome}\"}} {}",
                count.load(Relaxed)
            );
        }
        let gauges: [(&str, &str, u64); 3] = [
            (
                "pod_identity_store_clusters",
                "Clusters stored.",
                store.clusters,
            ),
            (
                "pod_identity_store_associations",
                "Pod identity associations stored.",
                store.associations,
            ),
            (
                "pod_identity_store_tokens",
                "Client request tokens held (live and not yet swept).",
                store.tokens,
            ),
        ];
        // Left out, rather than shown as 0, when the store could not read them.
        for (name, help, value) in gauges.into_iter().filter(|_| store.contents_read) {
            header(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {value}");
        }
        header(
            &mut out,
            "pod_identity_store_storage_failures_total",
            "counter",
            "Storage failures met, by kind (transaction, flush, fsync, witness, sweep, read); \
             the first one stops the writes until the server restarts (/readyz says why).",
        );
        for (kind, count) in &store.storage_failures {
            let _ = writeln!(
                out,
                "pod_identity_store_storage_failures_total{{kind=\"{kind}\"}} {count}"
            );
        }
        header(
            &mut out,
            "pod_identity_store_flushes_total",
            "counter",
            "Group commits: sled flushes each followed by an fsync of the data file.",
        );
        let _ = writeln!(out, "pod_identity_store_flushes_total {}", store.flushes);
        header(
            &mut out,
            "pod_identity_store_writes_flushed_total",
            "counter",
            "Write transactions made durable; divided by the flushes, the writes per flush.",
        );
        let _ = writeln!(
            out,
            "pod_identity_store_writes_flushed_total {}",
            store.writes_flushed
        );
        header(
            &mut out,
            "pod_identity_store_write_groups_total",
            "counter",
            "Groups of writes that shared one sled transaction (a write that ran alone is a group \
             of one); the writes divided by the groups, the writes per transaction.",
        );
        let _ = writeln!(
            out,
            "pod_identity_store_write_groups_total {}",
            store.write_groups
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_operation_and_status_and_timed_in_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.record(
            "DescribePodIdentityAssociation",
            200,
            Duration::from_micros(300),
        );
        metrics.record(
            "DescribePodIdentityAssociation",
            200,
            Duration::from_millis(3),
        );
        metrics.record(
            "DescribePodIdentityAssociation",
            404,
            Duration::from_micros(100),
        );
        metrics.record("nonsense", 299, Duration::from_secs(9));
        let page = metrics.render(&StoreStats::default());
        for line in [
            r#"pod_identity_store_requests_total{operation="DescribePodIdentityAssociation",status="200"} 2"#,
            r#"pod_identity_store_requests_total{operation="DescribePodIdentityAssociation",status="404"} 1"#,
            r#"pod_identity_store_requests_total{operation="-",status="other"} 1"#,
            r#"pod_identity_store_request_duration_seconds_bucket{operation="DescribePodIdentityAssociation",le="0.0005"} 2"#,
            r#"pod_identity_store_request_duration_seconds_bucket{operation="DescribePodIdentityAssociation",le="0.005"} 3"#,
            r#"pod_identity_store_request_duration_seconds_bucket{operation="-",le="+Inf"} 1"#,
            r#"pod_identity_store_request_duration_seconds_count{operation="DescribePodIdentityAssociation"} 3"#,
        ] {
            assert!(page.lines().any(|l| l == line), "missing {line}\n{page}");
        }
    }

    #[test]
    fn assume_role_for_pod_identity_calls_are_counted_by_outcome() {
        let metrics = Metrics::default();
        metrics.record_pod_identity("success");
        metrics.record_pod_identity("success");
        metrics.record_pod_identity("ExpiredTokenException");
        metrics.record_pod_identity("SomethingNew");
        let page = metrics.render(&StoreStats::default());
        for line in [
            r#"pod_identity_store_assume_role_for_pod_identity_total{outcome="success"} 2"#,
            r#"pod_identity_store_assume_role_for_pod_identity_total{outcome="ExpiredTokenException"} 1"#,
            r#"pod_identity_store_assume_role_for_pod_identity_total{outcome="InvalidTokenException"} 0"#,
            r#"pod_identity_store_assume_role_for_pod_identity_total{outcome="other"} 1"#,
        ] {
            assert!(page.lines().any(|l| l == line), "missing {line}\n{page}");
        }
    }
}
