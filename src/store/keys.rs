//! Tree names and the key codec: the only place that knows how keys are laid out.
//!
//! Keys are built from string parts joined by a 0x00 byte. No part can
//! contain 0x00 (cluster names, namespaces, service accounts and association
//! IDs are validated ASCII), and 0x00 sorts before every allowed byte, so
//! byte order is the order of the parts compared one by one: all of a
//! cluster's keys form one contiguous range starting with `cluster 0x00`.
//! Token strings are free-form but always the *last* part, so they cannot
//! break that property.

use crate::domain::{
    AssociationId, ClientRequestToken, ClusterName, Namespace, ServiceAccountName,
};

pub const TREE_META: &str = "meta";
pub const TREE_CLUSTERS: &str = "clusters";
pub const TREE_ASSOCIATIONS: &str = "associations";
pub const TREE_ASSOCIATION_INDEX: &str = "association_index";
pub const TREE_TOKENS: &str = "tokens";
/// Schema 4: each cluster's token issuer, keyed like `clusters`.
pub const TREE_ISSUERS: &str = "cluster_issuers";
/// Schema 4: credentials a provider issued, keyed by access key ID.
pub const TREE_CREDENTIALS: &str = "credentials";
/// Schemas 1 and 2 only: an expiry-time index of the tokens, removed by
/// schema 3 (the sweep now reads each token's expiry from its record).
pub const TREE_TOKEN_EXPIRY: &str = "token_expiry";

/// Meta keys.
pub const META_SCHEMA_VERSION: &[u8] = b"schema_version";
pub const META_WRITTEN_BY: &[u8] = b"written_by";
pub const META_PAGE_TOKEN_SECRET: &[u8] = b"page_token_secret";
/// How many writes the group commit had counted when it last flushed (u64,
/// big-endian; it only grows); see `files::WITNESS_FILE`.
pub const META_COMMIT_SEQ: &[u8] = b"commit_seq";
/// Present while an import is writing: a store that holds it was left by an
/// import that did not finish, and is refused (`Store::open`).
pub const META_IMPORT_UNFINISHED: &[u8] = b"import_unfinished";
/// The store's ID, also written to the `store-id` file beside sled's files.
pub const META_STORE_ID: &[u8] = b"store_id";

const SEP: u8 = 0x00;

fn join(parts: &[&[u8]]) -> Vec<u8> {
    let len = parts.iter().map(|p| p.len() + 1).sum::<usize>();
    let mut key = Vec::with_capacity(len);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(SEP);
        }
        key.extend_from_slice(part);
    }
    key
}

/// `clusters`: cluster name.
pub fn cluster(name: &ClusterName) -> Vec<u8> {
    name.as_str().as_bytes().to_vec()
}

/// The prefix shared by every key of one cluster in the associations, index and token trees.
pub fn cluster_prefix(name: &ClusterName) -> Vec<u8> {
    join(&[name.as_str().as_bytes(), b""])
}

/// `associations`: cluster, association ID.
pub fn association(cluster: &ClusterName, id: &AssociationId) -> Vec<u8> {
    join(&[cluster.as_str().as_bytes(), id.as_str().as_bytes()])
}

/// [`association`] from a record's strings, which need not be valid names.
pub fn association_bytes(cluster: &str, id: &str) -> Vec<u8> {
    join(&[cluster.as_bytes(), id.as_bytes()])
}

/// `association_index`: cluster, namespace, service account → association ID.
pub fn association_index(
    cluster: &ClusterName,
    namespace: &Namespace,
    service_account: &ServiceAccountName,
) -> Vec<u8> {
    join(&[
        cluster.as_str().as_bytes(),
        namespace.as_str().as_bytes(),
        service_account.as_str().as_bytes(),
    ])
}

/// Splits an `association_index` key into cluster, namespace and service
/// account; `None` when it does not have exactly those three parts.
pub fn split_association_index(key: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut parts = key.split(|b| *b == SEP);
    let cluster = parts.next()?;
    let namespace = parts.next()?;
    let service_account = parts.next()?;
    match parts.next() {
        None => Some((cluster, namespace, service_account)),
        Some(_) => None,
    }
}

/// The cluster a key of the associations, index or token tree belongs to:
/// its first part, which is that cluster's key in the `clusters` tree.
pub fn cluster_of(key: &[u8]) -> &[u8] {
    match key.iter().position(|b| *b == SEP) {
        Some(end) => &key[..end],
        None => key,
    }
}

/// A key for a person to read: its parts joined by `/`, bytes that are not
/// UTF-8 replaced.
pub fn shown(key: &[u8]) -> String {
    key.split(|b| *b == SEP)
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join("/")
}

/// What a `clientRequestToken` was sent with: tokens are scoped to the
/// operation and the resource, so one token reused on another operation or
/// association is simply another token.
#[derive(Debug, Clone, Copy)]
pub enum TokenScope<'a> {
    CreateCluster,
    CreateAssociation,
    UpdateAssociation(&'a AssociationId),
}

/// `tokens`: cluster, scope, token.
pub fn token(cluster: &ClusterName, scope: TokenScope<'_>, token: &ClientRequestToken) -> Vec<u8> {
    let cluster = cluster.as_str().as_bytes();
    let token = token.as_str().as_bytes();
    match scope {
        TokenScope::CreateCluster => join(&[cluster, b"cluster.create", token]),
        TokenScope::CreateAssociation => join(&[cluster, b"association.create", token]),
        TokenScope::UpdateAssociation(id) => join(&[
            cluster,
            b"association.update",
            id.as_str().as_bytes(),
            token,
        ]),
    }
}

/// Whether a key of the `tokens` tree is a CreatePodIdentityAssociation token.
pub fn is_association_create_token(key: &[u8]) -> bool {
    key.split(|b| *b == SEP).nth(1) == Some(b"association.create")
}

/// The `associations` key of the association an Update token's key names;
/// `None` for any other key.
pub fn update_token_association(key: &[u8]) -> Option<Vec<u8>> {
    let mut parts = key.split(|b| *b == SEP);
    let cluster = parts.next()?;
    if parts.next()? != b"association.update" {
        return None;
    }
    Some(join(&[cluster, parts.next()?]))
}

/// The prefix of every Update token of one association.
pub fn association_update_tokens(cluster: &ClusterName, id: &AssociationId) -> Vec<u8> {
    join(&[
        cluster.as_str().as_bytes(),
        b"association.update",
        id.as_str().as_bytes(),
        b"",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ClusterName {
        ClusterName::parse("name", s).unwrap()
    }

    fn id(s: &str) -> AssociationId {
        AssociationId::parse(s).unwrap()
    }

    #[test]
    fn a_clusters_keys_share_one_prefix_that_no_other_cluster_has() {
        let a = association(&name("prod"), &id("a-aaaaaaaaaaaaaaaaa"));
        let b = association(&name("prod-2"), &id("a-aaaaaaaaaaaaaaaaa"));
        assert!(a.starts_with(&cluster_prefix(&name("prod"))));
        assert!(!b.starts_with(&cluster_prefix(&name("prod"))));
    }

    #[test]
    fn an_update_token_names_its_association() {
        let (c, a) = (name("prod"), id("a-aaaaaaaaaaaaaaaaa"));
        let token = ClientRequestToken::parse("t-1").unwrap();
        assert_eq!(
            update_token_association(&super::token(&c, TokenScope::UpdateAssociation(&a), &token)),
            Some(association(&c, &a))
        );
        assert_eq!(
            update_token_association(&super::token(&c, TokenScope::CreateAssociation, &token)),
            None
        );
    }

    #[test]
    fn key_order_is_cluster_order_then_id_order() {
        let mut keys = [
            association(&name("prod-2"), &id("a-aaaaaaaaaaaaaaaaa")),
            association(&name("prod"), &id("a-zzzzzzzzzzzzzzzzz")),
            association(&name("prod"), &id("a-00000000000000000")),
        ];
        keys.sort();
        assert_eq!(
            keys[0],
            association(&name("prod"), &id("a-00000000000000000"))
        );
        assert_eq!(
            keys[1],
            association(&name("prod"), &id("a-zzzzzzzzzzzzzzzzz"))
        );
        assert_eq!(
            keys[2],
            association(&name("prod-2"), &id("a-aaaaaaaaaaaaaaaaa"))
        );
    }

    #[test]
    fn an_index_key_splits_back_into_its_three_parts() {
        let key = association_index(
            &name("c1"),
            &Namespace::parse("default").unwrap(),
            &ServiceAccountName::parse("app").unwrap(),
        );
        assert_eq!(
            split_association_index(&key),
            Some((&b"c1"[..], &b"default"[..], &b"app"[..]))
        );
        assert_eq!(shown(&key), "c1/default/app");
        assert_eq!(split_association_index(b"c1\0default"), None);
        assert_eq!(split_association_index(b"c1\0a\0b\0c"), None);
    }

    #[test]
    fn tokens_are_scoped_by_operation_and_association() {
        let t = ClientRequestToken::parse("t").unwrap();
        let c = name("c");
        let one = id("a-aaaaaaaaaaaaaaaaa");
        let two = id("a-bbbbbbbbbbbbbbbbb");
        let keys = [
            token(&c, TokenScope::CreateCluster, &t),
            token(&c, TokenScope::CreateAssociation, &t),
            token(&c, TokenScope::UpdateAssociation(&one), &t),
            token(&c, TokenScope::UpdateAssociation(&two), &t),
        ];
        assert!(is_association_create_token(&keys[1]));
        assert!(!is_association_create_token(&keys[0]) && !is_association_create_token(&keys[2]));
        assert!(keys[2].starts_with(&association_update_tokens(&c, &one)));
        assert!(!keys[3].starts_with(&association_update_tokens(&c, &one)));
        for (i, a) in keys.iter().enumerate() {
            assert!(a.starts_with(&cluster_prefix(&c)));
            assert_eq!(cluster_of(a), cluster(&c));
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
