use std::fmt;
use std::str::FromStr;

use super::{ClusterName, DomainError, RoleArn, Tags, Timestamp};

/// The Model's `ClusterStatus` enum, with its exact wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterStatus {
    Creating,
    Active,
    Deleting,
    Failed,
    Updating,
    Pending,
}

impl ClusterStatus {
    pub const ALL: [ClusterStatus; 6] = [
        ClusterStatus::Creating,
        ClusterStatus::Active,
        ClusterStatus::Deleting,
        ClusterStatus::Failed,
        ClusterStatus::Updating,
        ClusterStatus::Pending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::Creating => "CREATING",
            ClusterStatus::Active => "ACTIVE",
            ClusterStatus::Deleting => "DELETING",
            ClusterStatus::Failed => "FAILED",
            ClusterStatus::Updating => "UPDATING",
            ClusterStatus::Pending => "PENDING",
        }
    }
}

impl fmt::Display for ClusterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClusterStatus {
    type Err = DomainError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        ClusterStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| {
                DomainError::InvalidParameter(format!(
                "status {value} is not a cluster status; use one of CREATING, ACTIVE, DELETING, \
                 FAILED, UPDATING, PENDING.", value = crate::domain::shown(value)))
            })
    }
}

/// The Kubernetes version a cluster gets when CreateCluster names none.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.33";

/// A cluster's Kubernetes `version`: 1 to 16 characters. The server only
/// stores and echoes it, so the rule is just a bound on its size.
pub fn parse_kubernetes_version(member: &str, value: &str) -> Result<String, DomainError> {
    if value.is_empty() || value.len() > 16 {
        return Err(DomainError::InvalidParameter(format!(
            "{member} {value} is not a Kubernetes version; use a version such as \
             {DEFAULT_KUBERNETES_VERSION}.",
            value = crate::domain::shown(value)
        )));
    }
    Ok(value.to_owned())
}

/// What CreateCluster asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCluster {
    pub name: ClusterName,
    pub role_arn: RoleArn,
    pub version: String,
    pub tags: Tags,
}

/// A cluster, as far as Pod Identity needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: ClusterName,
    pub role_arn: RoleArn,
    pub version: String,
    pub tags: Tags,
    pub created_at: Timestamp,
    /// The status as last stored.
    pub status: ClusterStatus,
    /// When a `CREATING` cluster counts as `ACTIVE`. `None` once a status was
    /// set explicitly, which then stays until it is set again.
    pub activate_at: Option<Timestamp>,
}

impl Cluster {
    pub fn new(request: NewCluster, now: Timestamp, activation_delay_ms: u64) -> Cluster {
        Cluster {
            name: request.name,
            role_arn: request.role_arn,
            version: request.version,
            tags: request.tags,
            created_at: now,
            status: ClusterStatus::Creating,
            activate_at: Some(now.plus_millis(activation_delay_ms)),
        }
    }

    /// The status a reader sees at `now`: a new cluster is `CREATING` until its
    /// activation time, then `ACTIVE`, without a write having to happen.
    pub fn status_at(&self, now: Timestamp) -> ClusterStatus {
        match (self.status, self.activate_at) {
            (ClusterStatus::Creating, Some(at)) if now >= at => ClusterStatus::Active,
            (status, _) => status,
        }
    }

    /// Sets a status explicitly (admin route, start-up presets); it stays.
    pub fn set_status(&mut self, status: ClusterStatus) {
        self.status = status;
        self.activate_at = None;
    }

    /// Association writes are allowed only in the configured states.
    pub fn check_writable(
        &self,
        now: Timestamp,
        writable: &[ClusterStatus],
    ) -> Result<(), DomainError> {
        let status = self.status_at(now);
        if writable.contains(&status) {
            return Ok(());
        }
        let writable = writable
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        Err(DomainError::ClusterNotWritable {
            cluster: self.name.clone(),
            status,
            writable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AwsIdentity;

    fn cluster(delay_ms: u64) -> Cluster {
        let identity = AwsIdentity::new("us-east-1", "123456789012");
        let request = NewCluster {
            name: ClusterName::parse("name", "c1").unwrap(),
            role_arn: RoleArn::parse_in_account(
                "roleArn",
                "arn:aws:iam::123456789012:role/eks",
                &identity,
            )
            .unwrap(),
            version: DEFAULT_KUBERNETES_VERSION.into(),
            tags: Tags::default(),
        };
        Cluster::new(request, Timestamp::from_millis(1_000), delay_ms)
    }

    #[test]
    fn a_new_cluster_is_creating_until_its_activation_delay_has_passed() {
        let c = cluster(500);
        assert_eq!(
            c.status_at(Timestamp::from_millis(1_499)),
            ClusterStatus::Creating
        );
        assert_eq!(
            c.status_at(Timestamp::from_millis(1_500)),
            ClusterStatus::Active
        );
    }

    #[test]
    fn a_status_set_explicitly_stays() {
        let mut c = cluster(0);
        c.set_status(ClusterStatus::Creating);
        assert_eq!(
            c.status_at(Timestamp::from_millis(99_999)),
            ClusterStatus::Creating
        );
    }

    #[test]
    fn writes_are_refused_outside_the_writable_states_naming_cluster_and_state() {
        let mut c = cluster(0);
        let writable = [ClusterStatus::Active, ClusterStatus::Updating];
        assert!(c
            .check_writable(Timestamp::from_millis(1_000), &writable)
            .is_ok());
        c.set_status(ClusterStatus::Deleting);
        let err = c
            .check_writable(Timestamp::from_millis(1_000), &writable)
            .unwrap_err()
            .to_string();
        assert!(err.contains("c1") && err.contains("DELETING"), "{err}");
    }

    #[test]
    fn a_kubernetes_version_has_1_to_16_characters() {
        assert_eq!(parse_kubernetes_version("version", "1.33").unwrap(), "1.33");
        assert!(parse_kubernetes_version("version", "").is_err());
        assert!(parse_kubernetes_version("version", &"1".repeat(17)).is_err());
    }

    #[test]
    fn status_names_round_trip() {
        for status in ClusterStatus::ALL {
            assert_eq!(status.as_str().parse::<ClusterStatus>().unwrap(), status);
        }
        assert!("active".parse::<ClusterStatus>().is_err());
    }
}
