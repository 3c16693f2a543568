//! A guard that the build enforces: every field of every record is a plain
//! value (a string, a number, a byte string, a map of strings) or a code of
//! a code table, never a domain type. A domain enum stored directly would
//! be written as its declaration index, which a reorder changes silently.

use std::collections::BTreeMap;

use super::{
    v1, AssociationRecord, ClusterRecord, IndexRecord, SavedResponse, StatusCode, TokenRecord,
};

/// The types a record's field may have.
trait Plain {}

impl Plain for String {}
impl Plain for bool {}
impl Plain for i64 {}
impl Plain for u64 {}
impl Plain for Vec<u8> {}
impl Plain for BTreeMap<String, String> {}
impl<T: Plain> Plain for Option<T> {}
/// A byte of `codes::STATUS_CODES`.
impl Plain for StatusCode {}
/// Written with its own codes (`codes::saved_response`); its records are
/// named below.
impl Plain for SavedResponse {}
/// Frozen with schema 1: its variant indexes are its codes, and its records
/// are named below.
impl Plain for v1::SavedResponse {}

fn plain<T: Plain>(_: &T) {}

/// `plain` of each field named.
macro_rules! plain {
    ($($field:ident),+) => {
        $(plain($field);)+
    };
}

/// Names every field of every record, so that a new field does not build
/// until it is named here, and a field of another type than a plain one
/// does not build at all.
#[allow(dead_code)]
fn every_field_of_every_record_is_plain(
    cluster: &ClusterRecord,
    association: &AssociationRecord,
    index: &IndexRecord,
    token: &TokenRecord,
    v1_cluster: &v1::ClusterRecord,
    v1_association: &v1::AssociationRecord,
    v1_token: &v1::TokenRecord,
) {
    let ClusterRecord {
        name,
        role_arn,
        version,
        tags,
        created_at,
        status,
        activate_at,
        association_count,
        deleting,
    } = cluster;
    plain!(
        name,
        role_arn,
        version,
        tags,
        created_at,
        status,
        activate_at,
        association_count,
        deleting
    );

    let AssociationRecord {
        cluster,
        id,
        namespace,
        service_account,
        role_arn,
        tags,
        created_at,
        modified_at,
        disable_session_tags,
        target_role_arn,
        external_id,
        policy,
        create_token,
    } = association;
    plain!(
        cluster,
        id,
        namespace,
        service_account,
        role_arn,
        tags,
        created_at,
        modified_at,
        disable_session_tags,
        target_role_arn,
        external_id,
        policy,
        create_token
    );

    let IndexRecord { id } = index;
    plain!(id);

    let TokenRecord {
        fingerprint,
        expires_at,
        response,
    } = token;
    plain!(fingerprint, expires_at, response);
    match response {
        SavedResponse::Cluster(_) | SavedResponse::Association(_) => {}
    }

    let v1::ClusterRecord {
        name,
        role_arn,
        version,
        tags,
        created_at,
        status,
        activate_at,
        generation,
    } = v1_cluster;
    plain!(
        name,
        role_arn,
        version,
        tags,
        created_at,
        status,
        activate_at,
        generation
    );

    let v1::AssociationRecord {
        cluster,
        id,
        namespace,
        service_account,
        role_arn,
        tags,
        created_at,
        modified_at,
    } = v1_association;
    plain!(
        cluster,
        id,
        namespace,
        service_account,
        role_arn,
        tags,
        created_at,
        modified_at
    );

    let v1::TokenRecord {
        fingerprint,
        expires_at,
        response,
    } = v1_token;
    plain!(fingerprint, expires_at, response);
    match response {
        v1::SavedResponse::Cluster(_) | v1::SavedResponse::Association(_) => {}
    }
}
