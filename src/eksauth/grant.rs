//! What a credential provider (`local` or `sts`) issued, kept until it
//! expires so that `GET /admin/v1/credentials/{accessKeyId}` can say what
//! the credentials were for.

use super::provider::{IssuedCredentials, RoleRequest};
use super::token::VerifiedToken;
use crate::domain::{Association, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialGrant {
    pub access_key_id: String,
    pub expiration: Timestamp,
    /// The role the credentials are for: the target role when chained.
    pub role_arn: String,
    /// The association's `roleArn` when the credentials are the target role's.
    pub source_role_arn: Option<String>,
    pub external_id: Option<String>,
    pub session_name: String,
    pub session_tags: Vec<(String, String)>,
    pub transitive_tag_keys: Vec<String>,
    pub policy: Option<String>,
    pub association_arn: String,
    pub cluster: String,
    pub namespace: String,
    pub service_account: String,
    pub pod_name: String,
    pub pod_uid: String,
}

impl CredentialGrant {
    pub fn new(
        credentials: &IssuedCredentials,
        request: &RoleRequest,
        association: &Association,
        association_arn: String,
        token: &VerifiedToken,
    ) -> CredentialGrant {
        let (role_arn, source_role_arn) = match &request.target_role_arn {
            Some(target) => (target.clone(), Some(request.role_arn.clone())),
            None => (request.role_arn.clone(), None),
        };
        CredentialGrant {
            access_key_id: credentials.access_key_id.clone(),
            expiration: credentials.expiration,
            role_arn,
            source_role_arn,
            external_id: request.external_id.clone(),
            session_name: request.session_name.clone(),
            session_tags: request.session_tags.clone(),
            transitive_tag_keys: request.transitive_tag_keys.clone(),
            policy: request.policy.clone(),
            association_arn,
            cluster: association.cluster.to_string(),
            namespace: token.namespace.to_string(),
            service_account: token.service_account.to_string(),
            pod_name: token.pod_name.clone(),
            pod_uid: token.pod_uid.clone(),
        }
    }
}
