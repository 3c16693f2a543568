//! `pod-identity-store check`: verifies a stopped store without changing it.
//!
//! It opens sled directly (taking sled's lock, so a store in use is refused),
//! runs no migration and writes no key. A store at an older schema is
//! refused with the remedy (`migrate`): its records are in formats that this
//! build only reads inside a migration, so checking them would check little
//! of what the server will see.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::keys;
use super::migrate::{self, LATEST};
use super::open::{open_db, read_identity};
use super::records::{
    decode, AssociationRecord, ClusterRecord, IndexRecord, SavedResponse, TokenRecord,
};
use super::{StoreError, Trees};
use crate::domain::{Association, AssociationId, ClusterName, Timestamp};

/// What `check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub schema: u32,
    pub clusters: usize,
    pub associations: usize,
    pub index_entries: usize,
    pub tokens: usize,
    /// Tokens past their expiry that the sweep has not removed yet (it runs
    /// every `idempotency.sweep_interval_seconds` while the server is up).
    pub expired_tokens: usize,
    /// Bytes of the records held: the keys and values of every tree.
    /// What sled's files on disk take beyond this is the engine's overhead
    /// (page headers, free space, the log not yet compacted).
    pub record_bytes: u64,
    /// Everything that is wrong, one line each.
    pub problems: Vec<String>,
    /// Things worth knowing that are not wrong.
    pub notes: Vec<String>,
}

/// An association as the checks need it.
struct Seen {
    id: AssociationId,
    /// The index key the association should have.
    index_key: Vec<u8>,
    label: String,
}

/// Checks the store in `dir`. `Err` means it could not be checked (no
/// store, in use, newer or older schema, unreadable); problems found in a
/// store that could be read are in the report. `cache_capacity_bytes` is
/// sled's page cache (`store.cache_capacity_bytes`).
pub fn check(dir: &Path, cache_capacity_bytes: u64) -> Result<CheckReport, StoreError> {
    if !dir.join("db").exists() {
        return Err(StoreError::NoStore {
            dir: dir.to_owned(),
        });
    }
    let db = open_db(dir, cache_capacity_bytes, false)?;
    let names = db.tree_names();
    for tree in [
        keys::TREE_META,
        keys::TREE_CLUSTERS,
        keys::TREE_ASSOCIATIONS,
        keys::TREE_ASSOCIATION_INDEX,
        keys::TREE_TOKENS,
    ] {
        // Opening a missing tree would create it, so look first.
        if !names.iter().any(|name| name == tree.as_bytes()) {
            return Err(StoreError::Damaged {
                dir: dir.to_owned(),
                detail: format!(
                    "it has no '{tree}' tree (was it written by pod-identity-store, and has the \
                     server ever started on it?)"
                ),
            });
        }
    }
    let trees = Trees::open(&db)?;
    read_identity(&trees.meta, dir)?;
    let schema = migrate::read_version(&trees, dir)?;
    if schema < LATEST {
        return Err(StoreError::OlderSchema {
            dir: dir.to_owned(),
            found: schema,
            latest: LATEST,
        });
    }
    let mut report = CheckReport {
        schema,
        ..CheckReport::default()
    };
    check_meta(&trees, &mut report)?;
    if trees.meta.contains_key(keys::META_IMPORT_UNFINISHED)? {
        report.problems.push(
            "an import into this store did not finish, so it holds only part of the file; move \
             the data directory away and run the import again"
                .into(),
        );
    }
    let clusters = check_clusters(&trees, &mut report)?;
    let associations = check_associations(&trees, &clusters, &mut report)?;
    check_index(&trees, &associations, &mut report)?;
    check_tokens(&trees, &clusters, &mut report)?;
    super::eks_auth::check_issuers(&trees, &clusters, &mut report)?;
    report.record_bytes = record_bytes(&trees)?;
    Ok(report)
}

/// The sum of key and value lengths over every tree. A pass of its own,
/// so that the checks above need not count what they skip.
fn record_bytes(trees: &Trees) -> Result<u64, StoreError> {
    let mut bytes = 0u64;
    for tree in [
        &trees.meta,
        &trees.clusters,
        &trees.associations,
        &trees.index,
        &trees.tokens,
        &trees.issuers,
        &trees.credentials,
    ] {
        for entry in tree.iter() {
            let (key, value) = entry?;
            bytes += (key.len() + value.len()) as u64;
        }
    }
    Ok(bytes)
}

fn check_meta(trees: &Trees, report: &mut CheckReport) -> Result<(), StoreError> {
    if let Some(secret) = trees.meta.get(keys::META_PAGE_TOKEN_SECRET)? {
        if secret.len() != 16 {
            report.problems.push(format!(
                "the page token secret is {} bytes long instead of 16",
                secret.len()
            ));
        }
    }
    Ok(())
}

/// Each cluster's key, with its record when it decodes.
pub(super) type Clusters = BTreeMap<Vec<u8>, Option<ClusterRecord>>;

fn check_clusters(trees: &Trees, report: &mut CheckReport) -> Result<Clusters, StoreError> {
    let mut clusters = BTreeMap::new();
    for entry in trees.clusters.iter() {
        let (key, bytes) = entry?;
        report.clusters += 1;
        let shown = keys::shown(&key);
        let record = match decode::<ClusterRecord>(&bytes) {
            Ok(record) => record,
            Err(e) => {
                report.problems.push(format!("cluster {shown}: {e}"));
                // Still a cluster: its associations are not orphans.
                clusters.insert(key.to_vec(), None);
                continue;
            }
        };
        if keys::cluster(&record.name()) != *key {
            report.problems.push(format!(
                "the cluster record under key {shown} is for cluster {}",
                record.name
            ));
        }
        if record.deleting {
            report.notes.push(format!(
                "cluster {} is being deleted; the server finishes the deletion at its next start",
                record.name
            ));
        }
        clusters.insert(key.to_vec(), Some(record));
    }
    Ok(clusters)
}

/// Every association that decodes, by its key in the associations tree
/// (ordered, so that two runs print the same report).
type Associations = BTreeMap<Vec<u8>, Seen>;

fn check_associations(
    trees: &Trees,
    clusters: &Clusters,
    report: &mut CheckReport,
) -> Result<Associations, StoreError> {
    let mut associations = BTreeMap::new();
    let mut counted: HashMap<Vec<u8>, u64> = HashMap::new();
    for entry in trees.associations.iter() {
        let (key, bytes) = entry?;
        report.associations += 1;
        let record = match decode::<AssociationRecord>(&bytes) {
            Ok(record) => record,
            Err(e) => {
                report
                    .problems
                    .push(format!("association {}: {e}", keys::shown(&key)));
                continue;
            }
        };
        let record = Association::from(record);
        let label = format!(
            "association {}/{} (namespace {}, service account {})",
            record.cluster, record.id, record.namespace, record.service_account
        );
        if keys::association(&record.cluster, &record.id) != *key {
            report.problems.push(format!(
                "{label} is stored under the key of another: {}",
                keys::shown(&key)
            ));
        }
        let cluster_key = keys::cluster(&record.cluster);
        if clusters.contains_key(&cluster_key) {
            *counted.entry(cluster_key).or_default() += 1;
        } else {
            report.problems.push(format!(
                "{label} belongs to cluster {}, which does not exist",
                record.cluster
            ));
        }
        let index_key =
            keys::association_index(&record.cluster, &record.namespace, &record.service_account);
        associations.insert(
            key.to_vec(),
            Seen {
                id: record.id,
                index_key,
                label,
            },
        );
    }
    for (key, record) in clusters {
        let Some(record) = record else { continue };
        let actual = counted.get(key).copied().unwrap_or(0);
        if record.association_count != actual {
            report.problems.push(format!(
                "cluster {} counts {} associations but has {actual}",
                record.name, record.association_count
            ));
        }
    }
    Ok(associations)
}

/// The index and the associations must agree both ways: every association
/// has its entry pointing back at it, and every entry points at an
/// association of that cluster, namespace and service account.
fn check_index(
    trees: &Trees,
    associations: &Associations,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let mut index: HashMap<Vec<u8>, AssociationId> = HashMap::new();
    for entry in trees.index.iter() {
        let (key, bytes) = entry?;
        report.index_entries += 1;
        let shown = keys::shown(&key);
        let id = match decode::<IndexRecord>(&bytes) {
            Ok(record) => record.id(),
            Err(e) => {
                report.problems.push(format!("index entry {shown}: {e}"));
                continue;
            }
        };
        let cluster = keys::split_association_index(&key)
            .and_then(|(cluster, _, _)| std::str::from_utf8(cluster).ok())
            .and_then(|cluster| ClusterName::parse("cluster", cluster).ok());
        let Some(cluster) = cluster else {
            report.problems.push(format!(
                "index entry {shown} is not a cluster/namespace/service account key"
            ));
            continue;
        };
        match associations.get(&keys::association(&cluster, &id)) {
            None => report.problems.push(format!(
                "index entry {shown} points at association {cluster}/{id}, which does not exist"
            )),
            Some(seen) if seen.index_key != *key => report.problems.push(format!(
                "index entry {shown} points at {}, which is for another namespace or service account",
                seen.label
            )),
            Some(_) => {}
        }
        index.insert(key.to_vec(), id);
    }
    for association in associations.values() {
        match index.get(&association.index_key) {
            None => report
                .problems
                .push(format!("{} has no index entry", association.label)),
            Some(id) if *id != association.id => report.problems.push(format!(
                "{}: its index entry points at association {id} instead",
                association.label
            )),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Every token decodes and belongs to a cluster that exists (deleting a
/// cluster removes its tokens in the same transaction as the cluster), and
/// an association's token to an association that exists: deleting one
/// removes its create token in the same transaction. Its Update tokens go
/// too, but one whose Update raced the delete may be left behind by
/// design (`Store::delete_association`): never read, swept at expiry, so
/// only a note.
fn check_tokens(
    trees: &Trees,
    clusters: &Clusters,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let now = Timestamp::now();
    for entry in trees.tokens.iter() {
        let (key, bytes) = entry?;
        report.tokens += 1;
        let shown = keys::shown(&key);
        let cluster = keys::cluster_of(&key);
        if !clusters.contains_key(cluster) {
            report.problems.push(format!(
                "token {shown} belongs to cluster '{}', which does not exist",
                String::from_utf8_lossy(cluster)
            ));
        }
        let token = match decode::<TokenRecord>(&bytes) {
            Ok(token) => token,
            Err(e) => {
                report.problems.push(format!("token {shown}: {e}"));
                continue;
            }
        };
        if token.expires_at() <= now {
            report.expired_tokens += 1;
        }
        if let Some(association) = keys::update_token_association(&key) {
            if clusters.contains_key(cluster) && !trees.associations.contains_key(&association)? {
                report.notes.push(format!(
                    "token {shown} is of association {}, which no longer exists (an Update that \
                     raced its Delete; it is never read, and the sweep removes it when it expires)",
                    keys::shown(&association)
                ));
            }
        } else if let SavedResponse::Association(a) = &token.response {
            if clusters.contains_key(cluster)
                && !trees
                    .associations
                    .contains_key(keys::association_bytes(&a.cluster, &a.id))?
            {
                report.problems.push(format!(
                    "token {shown} answers with association {}/{}, which no longer exists",
                    a.cluster, a.id
                ));
            }
        }
    }
    Ok(())
}
