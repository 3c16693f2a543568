//! Output shapes, with the Model's member names (spec §3).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::{Association, AwsIdentity, Cluster, ClusterStatus};

/// `PodIdentityAssociation`. `ownerArn` is never sent: no add-ons here.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodIdentityAssociation<'a> {
    cluster_name: &'a str,
    namespace: &'a str,
    service_account: &'a str,
    role_arn: &'a str,
    association_arn: String,
    association_id: &'a str,
    tags: &'a BTreeMap<String, String>,
    /// Epoch seconds (restJson1's default timestamp format).
    created_at: f64,
    modified_at: f64,
    /// Always sent; `false` unless set (the default: session tags on).
    disable_session_tags: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_role_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a str>,
}

impl<'a> PodIdentityAssociation<'a> {
    pub fn new(a: &'a Association, identity: &AwsIdentity) -> Self {
        PodIdentityAssociation {
            cluster_name: a.cluster.as_str(),
            namespace: a.namespace.as_str(),
            service_account: a.service_account.as_str(),
            role_arn: a.role_arn.as_str(),
            association_arn: a.arn(identity),
            association_id: a.id.as_str(),
            tags: a.tags.as_map(),
            created_at: a.created_at.as_epoch_seconds(),
            modified_at: a.modified_at.as_epoch_seconds(),
            disable_session_tags: a.disable_session_tags,
            target_role_arn: a.target_role_arn.as_ref().map(|r| r.as_str()),
            external_id: a.external_id.as_deref(),
            policy: a.policy.as_ref().map(|p| p.as_str()),
        }
    }
}

/// `PodIdentityAssociationSummary`, the items of ListPodIdentityAssociations.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodIdentityAssociationSummary<'a> {
    cluster_name: &'a str,
    namespace: &'a str,
    service_account: &'a str,
    association_arn: String,
    association_id: &'a str,
}

impl<'a> PodIdentityAssociationSummary<'a> {
    pub fn new(a: &'a Association, identity: &AwsIdentity) -> Self {
        PodIdentityAssociationSummary {
            cluster_name: a.cluster.as_str(),
            namespace: a.namespace.as_str(),
            service_account: a.service_account.as_str(),
            association_arn: a.arn(identity),
            association_id: a.id.as_str(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAssociationsOutput<'a> {
    pub associations: Vec<PodIdentityAssociationSummary<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ListTagsOutput<'a> {
    pub tags: &'a BTreeMap<String, String>,
}

/// The output of TagResource and UntagResource: no members, sent as `{}`.
#[derive(Debug, Serialize)]
pub struct Empty {}

/// The `{"association": …}` output of Create, Describe, Update and Delete.
#[derive(Debug, Serialize)]
pub struct AssociationOutput<'a> {
    pub association: PodIdentityAssociation<'a>,
}

/// `Cluster`, the members a testbed needs (spec §3.4).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterShape<'a> {
    name: &'a str,
    arn: String,
    created_at: f64,
    version: &'a str,
    role_arn: &'a str,
    status: ClusterStatus,
    tags: &'a BTreeMap<String, String>,
    /// DescribeCluster's: the cluster's token issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<Identity>,
}

/// `Identity`: `{"oidc": {"issuer": URL}}`.
#[derive(Debug, Serialize)]
pub struct Identity {
    oidc: Oidc,
}

#[derive(Debug, Serialize)]
pub struct Oidc {
    issuer: String,
}

impl<'a> ClusterShape<'a> {
    /// The cluster with its issuer URL, as DescribeCluster answers it.
    pub fn with_issuer(mut self, issuer: String) -> Self {
        self.identity = Some(Identity {
            oidc: Oidc { issuer },
        });
        self
    }

    /// The cluster as seen with `status`, which the caller decides (a new
    /// cluster answers CREATING, a deleted one DELETING).
    pub fn new(c: &'a Cluster, status: ClusterStatus, identity: &AwsIdentity) -> Self {
        ClusterShape {
            name: c.name.as_str(),
            arn: identity.cluster_arn(&c.name),
            created_at: c.created_at.as_epoch_seconds(),
            version: &c.version,
            role_arn: c.role_arn.as_str(),
            status,
            tags: c.tags.as_map(),
            identity: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ClusterOutput<'a> {
    pub cluster: ClusterShape<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListClustersOutput<'a> {
    pub clusters: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// The answer of `POST /admin/v1/clock`: the server's new "now", and how
/// many tokens the sweep removed when one was asked for.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockOutput {
    /// Epoch seconds, as every timestamp of the API.
    pub now: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swept_tokens: Option<u64>,
}

/// AssumeRoleForPodIdentity's output (EKS Auth model).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssumeRoleForPodIdentityOutput<'a> {
    pub subject: Subject<'a>,
    pub audience: &'a str,
    pub pod_identity_association: PodIdentityAssociationRef<'a>,
    pub assumed_role_user: AssumedRoleUser<'a>,
    pub credentials: Credentials<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject<'a> {
    pub namespace: &'a str,
    pub service_account: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodIdentityAssociationRef<'a> {
    pub association_arn: &'a str,
    pub association_id: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssumedRoleUser<'a> {
    pub arn: &'a str,
    pub assume_role_id: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials<'a> {
    pub session_token: &'a str,
    pub secret_access_key: &'a str,
    pub access_key_id: &'a str,
    /// Epoch seconds.
    pub expiration: f64,
}

/// `POST /admin/v1/clusters/{name}/service-account-token`'s answer.
#[derive(Debug, Serialize)]
pub struct ServiceAccountTokenOutput {
    pub token: String,
    /// Epoch seconds.
    pub expiration: f64,
}

/// `PUT /admin/v1/clusters/{name}/service-account-issuer`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountIssuerOutput<'a> {
    pub issuer: &'a str,
    /// The `kid` of each key that will be accepted (`null` for a key without one).
    pub key_ids: Vec<Option<&'a str>>,
}

/// A session tag as `GET /admin/v1/credentials/{accessKeyId}` lists it.
#[derive(Debug, Serialize)]
pub struct SessionTag<'a> {
    pub key: &'a str,
    pub value: &'a str,
}

/// `GET /admin/v1/credentials/{accessKeyId}`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsDescription<'a> {
    pub access_key_id: &'a str,
    pub role_arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_role_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<&'a str>,
    pub session_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_tags: Option<Vec<SessionTag<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transitive_tag_keys: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<&'a str>,
    pub association_arn: &'a str,
    pub cluster_name: &'a str,
    pub namespace: &'a str,
    pub service_account: &'a str,
    pub pod_name: &'a str,
    pub pod_uid: &'a str,
    /// Epoch seconds.
    pub expiration: f64,
}

impl<'a> CredentialsDescription<'a> {
    pub fn new(g: &'a crate::eksauth::CredentialGrant) -> Self {
        let tagged = !g.session_tags.is_empty();
        CredentialsDescription {
            access_key_id: &g.access_key_id,
            role_arn: &g.role_arn,
            source_role_arn: g.source_role_arn.as_deref(),
            external_id: g.external_id.as_deref(),
            session_name: &g.session_name,
            session_tags: tagged.then(|| {
                g.session_tags
                    .iter()
                    .map(|(key, value)| SessionTag { key, value })
                    .collect()
            }),
            transitive_tag_keys: tagged.then_some(g.transitive_tag_keys.as_slice()),
            policy: g.policy.as_deref(),
            association_arn: &g.association_arn,
            cluster_name: &g.cluster,
            namespace: &g.namespace,
            service_account: &g.service_account,
            pod_name: &g.pod_name,
            pod_uid: &g.pod_uid,
            expiration: g.expiration.as_epoch_seconds(),
        }
    }
}
