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
}

impl<'a> ClusterShape<'a> {
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
