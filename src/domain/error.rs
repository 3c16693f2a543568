use super::{AssociationId, ClusterName, ClusterStatus};

/// Every way a well-formed request can be refused by the rules of the service.
///
/// The api layer maps each variant to its EKS error type; the store returns
/// these from inside a transaction so that a refusal never writes anything.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DomainError {
    /// A member failed validation; the message names the member and the rule.
    #[error("{0}")]
    InvalidParameter(String),

    #[error("No cluster found for name: {0}.")]
    ClusterNotFound(ClusterName),

    #[error("No pod identity association found for id {id} in cluster {cluster}.")]
    AssociationNotFound {
        cluster: ClusterName,
        id: AssociationId,
    },

    #[error(
        "Cluster {cluster} already has {limit} pod identity associations, the most a cluster can \
         have; delete associations that are no longer needed before creating more."
    )]
    AssociationLimitExceeded { cluster: ClusterName, limit: u64 },

    /// A Tag API named an ARN of no existing resource.
    #[error("No resource found for ARN: {0}.")]
    TaggedResourceNotFound(String),

    #[error("Cluster already exists with name: {0}.")]
    ClusterExists(ClusterName),

    /// Same text as the real service ("Association already exists: a-…").
    #[error("Association already exists: {existing}")]
    AssociationExists {
        cluster: ClusterName,
        existing: AssociationId,
    },

    #[error(
        "Cluster {cluster} is in state {status}; pod identity associations can only be changed \
         while the cluster is in one of: {writable}. Wait for the cluster to become ACTIVE and retry."
    )]
    ClusterNotWritable {
        cluster: ClusterName,
        status: ClusterStatus,
        writable: String,
    },

    #[error(
        "The clientRequestToken {token} was already used for a different request. Send a new \
         clientRequestToken (or omit it) to make a different change."
    )]
    TokenReused { cluster: ClusterName, token: String },

    #[error(
        "{member} cannot be changed (stored: {stored}, requested: {requested}). A pod identity \
         association cannot be moved between clusters, namespaces or service accounts; delete it \
         and create a new one instead."
    )]
    ImmutableField {
        cluster: ClusterName,
        member: &'static str,
        stored: String,
        requested: String,
    },
}

impl DomainError {
    /// The cluster the error is about, for the `clusterName` member of EKS errors.
    pub fn cluster_name(&self) -> Option<&ClusterName> {
        match self {
            DomainError::InvalidParameter(_) | DomainError::TaggedResourceNotFound(_) => None,
            DomainError::ClusterNotFound(cluster)
            | DomainError::ClusterExists(cluster)
            | DomainError::AssociationNotFound { cluster, .. }
            | DomainError::AssociationExists { cluster, .. }
            | DomainError::ClusterNotWritable { cluster, .. }
            | DomainError::TokenReused { cluster, .. }
            | DomainError::ImmutableField { cluster, .. }
            | DomainError::AssociationLimitExceeded { cluster, .. } => Some(cluster),
        }
    }
}
