//! Schema 1's formats, frozen: plain fields only, so that no domain type
//! can change them. Read only by the 1 → 2 migration.
//!
//! One thing outside this module shapes their bytes: a cluster's status is
//! a `StatusCode`, shared with today's formats, so its table
//! (`codes::STATUS_CODES`) must keep schema 1's codes, which it does: they
//! are the codes of every schema (pinned by `golden`'s `cluster.1` lines).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Record, StatusCode};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub name: String,
    pub role_arn: String,
    pub version: String,
    pub tags: BTreeMap<String, String>,
    pub created_at: i64,
    pub status: StatusCode,
    pub activate_at: Option<i64>,
    pub generation: u64,
}

impl Record for ClusterRecord {
    const FORMAT: u8 = 1;
    const WHAT: &'static str = "cluster (format 1)";
}

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
}

impl Record for AssociationRecord {
    const FORMAT: u8 = 1;
    const WHAT: &'static str = "association (format 1)";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SavedResponse {
    Cluster(ClusterRecord),
    Association(AssociationRecord),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub fingerprint: Vec<u8>,
    pub expires_at: i64,
    pub response: SavedResponse,
}

impl Record for TokenRecord {
    const FORMAT: u8 = 1;
    const WHAT: &'static str = "token (format 1)";
}

/// Schema 2's cluster: the counter and the deletion flag start empty.
pub fn upgrade_cluster(old: ClusterRecord, association_count: u64) -> super::ClusterRecord {
    super::ClusterRecord {
        name: old.name,
        role_arn: old.role_arn,
        version: old.version,
        tags: old.tags,
        created_at: old.created_at,
        status: old.status,
        activate_at: old.activate_at,
        association_count,
        deleting: false,
    }
}

/// Schema 2's association: the newer members at their defaults.
pub fn upgrade_association(
    old: AssociationRecord,
    create_token: Option<Vec<u8>>,
) -> super::AssociationRecord {
    super::AssociationRecord {
        cluster: old.cluster,
        id: old.id,
        namespace: old.namespace,
        service_account: old.service_account,
        role_arn: old.role_arn,
        tags: old.tags,
        created_at: old.created_at,
        modified_at: old.modified_at,
        disable_session_tags: false,
        target_role_arn: None,
        external_id: None,
        policy: None,
        create_token,
    }
}

pub fn upgrade_token(old: TokenRecord) -> super::TokenRecord {
    super::TokenRecord {
        fingerprint: old.fingerprint,
        expires_at: old.expires_at,
        response: match old.response {
            SavedResponse::Cluster(c) => super::SavedResponse::Cluster(upgrade_cluster(c, 0)),
            SavedResponse::Association(a) => {
                super::SavedResponse::Association(upgrade_association(a, None))
            }
        },
    }
}
