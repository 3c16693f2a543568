//! What a credential provider (`eks_auth.credentials`) is asked for and
//! what it answers: the seam between AssumeRoleForPodIdentity and the
//! `local` and `sts` providers.

use crate::domain::Timestamp;

/// The role request one AssumeRoleForPodIdentity call makes of a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRequest {
    /// The association's `roleArn`.
    pub role_arn: String,
    /// The association's `targetRoleArn`: assumed with the first role's
    /// credentials and `external_id`; the caller gets this role's credentials.
    pub target_role_arn: Option<String>,
    /// The association's `externalId`, sent with the target role's AssumeRole.
    pub external_id: Option<String>,
    /// `eks-CLUSTER-PODNAME-UUID`, cut to STS's 64 characters.
    pub session_name: String,
    /// The six session tags, in the order EKS lists them; empty when the
    /// association has `disableSessionTags`.
    pub session_tags: Vec<(String, String)>,
    /// The keys of the transitive tags (all six), empty when there are no tags.
    pub transitive_tag_keys: Vec<String>,
    /// The association's `policy`, the session policy.
    pub policy: Option<String>,
    /// `eks_auth.session_duration_seconds`.
    pub duration_seconds: u32,
}

/// Temporary credentials and whom they authenticate as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: Timestamp,
    /// `arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE-NAME/SESSION` of the
    /// role the credentials are for (the target role when chained).
    pub assumed_role_arn: String,
    /// `ROLE-ID:SESSION`.
    pub assumed_role_id: String,
}

/// Why a provider gave no credentials.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// It answered and refused (STS's AccessDenied, a malformed role…):
    /// the client gets `400 AccessDeniedException` with this message.
    #[error("{0}")]
    Refused(String),
    /// It could not be reached or failed: `503 ServiceUnavailableException`.
    #[error("{0}")]
    Unreachable(String),
}
