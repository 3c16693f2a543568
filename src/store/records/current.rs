//! The formats the store writes today (schema 3; unchanged since schema 2),
//! and their conversions to and from the domain's types.

use std::collections::BTreeMap;

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::codes::saved_response;
use super::{Record, StatusCode};
use crate::domain::{
    Association, AssociationId, Cluster, ClusterName, Namespace, RoleArn, ServiceAccountName,
    SessionPolicy, Tags, Timestamp,
};

/// A cluster (format 2, schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub name: String,
    pub role_arn: String,
    pub version: String,
    pub tags: BTreeMap<String, String>,
    /// Milliseconds since the Unix epoch, like every time stored.
    pub created_at: i64,
    pub status: StatusCode,
    pub activate_at: Option<i64>,
    /// How many associations the cluster has: the quota counter, kept in the
    /// same transaction as every create and delete so it never has to be counted.
    pub association_count: u64,
    /// Set by the first step of DeleteCluster: from then on no key is added
    /// under the cluster, and a restart finishes the deletion.
    pub deleting: bool,
}

impl Record for ClusterRecord {
    const FORMAT: u8 = 2;
    const WHAT: &'static str = "cluster";
}

impl ClusterRecord {
    /// A new cluster's record: no associations, not being deleted.
    pub fn new(cluster: &Cluster) -> Self {
        ClusterRecord {
            name: cluster.name.to_string(),
            role_arn: cluster.role_arn.to_string(),
            version: cluster.version.clone(),
            tags: cluster.tags.as_map().clone(),
            created_at: cluster.created_at.as_millis(),
            status: StatusCode::of(cluster.status),
            activate_at: cluster.activate_at.map(Timestamp::as_millis),
            association_count: 0,
            deleting: false,
        }
    }

    pub fn to_cluster(&self) -> Cluster {
        Cluster {
            name: self.name(),
            role_arn: RoleArn::from_stored(self.role_arn.clone()),
            version: self.version.clone(),
            tags: Tags::from_stored(self.tags.clone()),
            created_at: Timestamp::from_millis(self.created_at),
            status: self.status.status(),
            activate_at: self.activate_at.map(Timestamp::from_millis),
        }
    }

    pub fn name(&self) -> ClusterName {
        ClusterName::from_stored(self.name.clone())
    }

    pub fn tags(&self) -> Tags {
        Tags::from_stored(self.tags.clone())
    }

    /// Takes the status fields of `cluster`, keeping the store's bookkeeping.
    pub fn set_status_from(&mut self, cluster: &Cluster) {
        self.status = StatusCode::of(cluster.status);
        self.activate_at = cluster.activate_at.map(Timestamp::as_millis);
    }
}

/// An association (format 2, schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociationRecord {
    pub cluster: String,
    pub id: String,
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
    pub tags: BTreeMap<String, String>,
    pub created_at: i64,
    pub modified_at: i64,
    pub disable_session_tags: bool,
    pub target_role_arn: Option<String>,
    pub external_id: Option<String>,
    pub policy: Option<String>,
    /// The key of the token the association was created with, so that
    /// DeletePodIdentityAssociation can remove it.
    pub create_token: Option<Vec<u8>>,
}

impl Record for AssociationRecord {
    const FORMAT: u8 = 2;
    const WHAT: &'static str = "association";
}

impl AssociationRecord {
    pub fn new(a: &Association, create_token: Option<Vec<u8>>) -> Self {
        AssociationRecord {
            cluster: a.cluster.to_string(),
            id: a.id.to_string(),
            namespace: a.namespace.to_string(),
            service_account: a.service_account.to_string(),
            role_arn: a.role_arn.to_string(),
            tags: a.tags.as_map().clone(),
            created_at: a.created_at.as_millis(),
            modified_at: a.modified_at.as_millis(),
            disable_session_tags: a.disable_session_tags,
            target_role_arn: a.target_role_arn.as_ref().map(RoleArn::to_string),
            external_id: a.external_id.clone(),
            policy: a.policy.as_ref().map(|p| p.as_str().to_owned()),
            create_token,
        }
    }

    /// This record with the association's new state, keeping the bookkeeping.
    pub fn with(&self, a: &Association) -> Self {
        AssociationRecord::new(a, self.create_token.clone())
    }

    pub fn tags(&self) -> Tags {
        Tags::from_stored(self.tags.clone())
    }
}

impl From<AssociationRecord> for Association {
    fn from(r: AssociationRecord) -> Self {
        Association {
            cluster: ClusterName::from_stored(r.cluster),
            id: AssociationId::from_stored(r.id),
            namespace: Namespace::from_stored(r.namespace),
            service_account: ServiceAccountName::from_stored(r.service_account),
            role_arn: RoleArn::from_stored(r.role_arn),
            tags: Tags::from_stored(r.tags),
            created_at: Timestamp::from_millis(r.created_at),
            modified_at: Timestamp::from_millis(r.modified_at),
            disable_session_tags: r.disable_session_tags,
            target_role_arn: r.target_role_arn.map(RoleArn::from_stored),
            external_id: r.external_id,
            policy: r.policy.map(SessionPolicy::from_stored),
        }
    }
}

/// The value of an index entry: the association that holds the slot.
/// Unchanged since schema 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRecord {
    pub id: String,
}

impl Record for IndexRecord {
    const FORMAT: u8 = 1;
    const WHAT: &'static str = "index";
}

impl IndexRecord {
    pub fn new(id: &AssociationId) -> Self {
        IndexRecord { id: id.to_string() }
    }

    pub fn id(&self) -> AssociationId {
        AssociationId::from_stored(self.id.clone())
    }
}

/// What a request with a `clientRequestToken` answered, so that a retry gets
/// the same answer. Stored as its kind's code (`codes::saved_response`),
/// then the saved record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedResponse {
    Cluster(ClusterRecord),
    Association(AssociationRecord),
}

impl Serialize for SavedResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut pair = serializer.serialize_tuple(2)?;
        match self {
            SavedResponse::Cluster(record) => {
                pair.serialize_element(&saved_response::CLUSTER)?;
                pair.serialize_element(record)?;
            }
            SavedResponse::Association(record) => {
                pair.serialize_element(&saved_response::ASSOCIATION)?;
                pair.serialize_element(record)?;
            }
        }
        pair.end()
    }
}

impl<'de> Deserialize<'de> for SavedResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pair;

        impl<'de> Visitor<'de> for Pair {
            type Value = SavedResponse;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a saved answer: its kind's code, then its record")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SavedResponse, A::Error> {
                let code: u8 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let saved = match code {
                    saved_response::CLUSTER => seq.next_element()?.map(SavedResponse::Cluster),
                    saved_response::ASSOCIATION => {
                        seq.next_element()?.map(SavedResponse::Association)
                    }
                    other => {
                        return Err(de::Error::custom(format!(
                            "{other} is not the code of a saved answer"
                        )))
                    }
                };
                saved.ok_or_else(|| de::Error::invalid_length(1, &self))
            }
        }

        deserializer.deserialize_tuple(2, Pair)
    }
}

/// A client request token (format 2, schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The request's parameters (`fingerprint`); a retry must send the same ones.
    pub fingerprint: Vec<u8>,
    pub expires_at: i64,
    pub response: SavedResponse,
}

impl Record for TokenRecord {
    const FORMAT: u8 = 2;
    const WHAT: &'static str = "token";
}

impl TokenRecord {
    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_millis(self.expires_at)
    }
}
