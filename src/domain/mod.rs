//! The EKS Pod Identity domain: validated names, ARNs, and the rules an
//! association and a cluster obey. Nothing here knows about HTTP or sled.

mod arn;
mod association;
#[cfg(test)]
pub(crate) use association::tests as association_fixtures;
mod cluster;
mod error;
mod names;
mod time;

pub use arn::{AwsIdentity, Partition, RoleArn, TaggableResource};
pub use association::{
    Association, AssociationUpdate, ImmutableClaim, NewAssociation, SessionPolicy,
};
pub use cluster::{
    parse_kubernetes_version, Cluster, ClusterStatus, NewCluster, DEFAULT_KUBERNETES_VERSION,
};
pub use error::DomainError;
pub use names::{
    AssociationId, ClientRequestToken, ClusterName, Namespace, ServiceAccountName, Tags,
};
pub use time::{Clock, Timestamp};

/// A caller's value for an error message: quoted, and cut after 64
/// characters so that a huge value does not make a huge answer.
pub fn shown(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        None => format!("'{value}'"),
        Some((cut, _)) => format!(
            "'{}…' ({} characters)",
            &value[..cut],
            value.chars().count()
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shown_values_are_quoted_and_long_ones_cut_with_their_length() {
        assert_eq!(super::shown("prod"), "'prod'");
        let long = "x".repeat(40_000);
        let shown = super::shown(&long);
        assert!(
            shown.len() < 100 && shown.contains("40000 characters"),
            "{shown}"
        );
    }
}
