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

/// Takes `record` apart into every field of `Type` (the pattern names them
/// all, so a field left out does not build) and asks each to be plain.
macro_rules! plain_fields {
    ($record:expr, $($type:ident)::+ { $($field:ident),+ $(,)? }) => {{
        let $($type)::+ { $($field),+ } = $record;
        $(plain($field);)+
    }};
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
    #[rustfmt::skip]
    plain_fields!(cluster, ClusterRecord {
        name, role_arn, version, tags, created_at, status, activate_at, association_count,
        deleting,
    });
    #[rustfmt::skip]
    plain_fields!(association, AssociationRecord {
        cluster, id, namespace, service_account, role_arn, tags, created_at, modified_at,
        disable_session_tags, target_role_arn, external_id, policy, create_token,
    });
    plain_fields!(index, IndexRecord { id });
    plain_fields!(
        token,
        TokenRecord {
            fingerprint,
            expires_at,
            response
        }
    );
    #[rustfmt::skip]
    plain_fields!(v1_cluster, v1::ClusterRecord {
        name, role_arn, version, tags, created_at, status, activate_at, generation,
    });
    #[rustfmt::skip]
    plain_fields!(v1_association, v1::AssociationRecord {
        cluster, id, namespace, service_account, role_arn, tags, created_at, modified_at,
    });
    plain_fields!(
        v1_token,
        v1::TokenRecord {
            fingerprint,
            expires_at,
            response
        }
    );
    // Every kind of saved answer holds one of the records above.
    match &token.response {
        SavedResponse::Cluster(_) | SavedResponse::Association(_) => {}
    }
    match &v1_token.response {
        v1::SavedResponse::Cluster(_) | v1::SavedResponse::Association(_) => {}
    }
}
