//! Values every test uses: the default account and its ARNs, the Model's
//! cluster states, and readers of JSON members.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The account every ARN carries by default.
pub const ACCOUNT: &str = "123456789012";
/// The cluster states of the Model, in its order.
pub const ALL_STATUSES: [&str; 6] = [
    "CREATING", "ACTIVE", "DELETING", "FAILED", "UPDATING", "PENDING",
];
/// What the message of a refused change to an immutable member says.
pub const IMMUTABLE_RULE: &str = "cannot be moved between clusters, namespaces or service accounts";

/// The config that serves `POST /admin/v1/clock`, for tests that need time
/// to pass; append it to the rest of a test's config.
pub const CLOCK_CONTROL: &str = "[testing]\nclock_control = true\n";

/// An IAM role ARN in the server's default account.
pub fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// Seconds since the epoch on the test's clock.
pub fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
}

/// The ARN of a cluster of the server's default identity.
pub fn cluster_arn(name: &str) -> String {
    format!("arn:aws:eks:us-east-1:{ACCOUNT}:cluster/{name}")
}

/// A string member of a JSON object.
#[track_caller]
pub fn s<'a>(value: &'a Value, member: &str) -> &'a str {
    value[member]
        .as_str()
        .unwrap_or_else(|| panic!("{member} is not a string in {value}"))
}

/// A timestamp member (epoch seconds, a JSON number).
#[track_caller]
pub fn ts(value: &Value, member: &str) -> f64 {
    value[member]
        .as_f64()
        .unwrap_or_else(|| panic!("{member} is not a number in {value}"))
}

/// The value of an unlabelled or labelled sample line of a `/metrics` page.
pub fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
