//! Schema versions and the ordered steps between them.
//!
//! The store keeps its schema version in the `meta` tree. On open, every
//! step above that version runs in order; each step's changes and the new
//! version are written in one transaction, so a crash leaves the store at
//! the old version or the new one, never between. Each step has a note in
//! `migrations/` named after it (a test keeps the two lists equal).

use std::path::Path;

use std::collections::HashMap;

use sled::transaction::ConflictableTransactionError;
use sled::{Batch, Transactional};

use super::eks_auth::IssuerRecord;
use super::keys::{self, META_SCHEMA_VERSION, META_WRITTEN_BY};
use super::open::{open_db, sync_now};
use super::records::{decode, encode, v1};
use super::{StoreError, Trees};
use crate::eksauth::ClusterIssuer;

/// The changes one step makes, per tree.
#[derive(Default)]
pub struct Changes {
    pub clusters: Batch,
    pub associations: Batch,
    pub index: Batch,
    pub tokens: Batch,
    pub issuers: Batch,
}

/// One schema step: from `version - 1` to `version`.
pub struct Step {
    pub version: u32,
    /// Also the file name (without `.md`) of the step's note in `migrations/`.
    pub name: &'static str,
    pub summary: &'static str,
    /// Reads the store (no writer runs during migrations) and returns the
    /// changes to write together with the new version.
    plan: fn(&Trees) -> Result<Changes, StoreError>,
}

pub const STEPS: &[Step] = &[
    Step {
        version: 1,
        name: "0001-initial-schema",
        summary: "create the clusters, associations, association_index, tokens and token_expiry trees",
        plan: |_| Ok(Changes::default()),
    },
    Step {
        version: 2,
        name: "0002-session-members-and-counters",
        summary: "store disableSessionTags, targetRoleArn, externalId and policy with every association, \
                  count each cluster's associations, and link each association to its create token",
        plan: schema_2,
    },
    Step {
        version: 3,
        name: "0003-tokens-swept-by-scan",
        summary: "drop the token_expiry tree: the sweep reads each token's expiry from its record",
        // The tree goes after the step (`drop_retired_trees`): a transaction cannot drop one.
        plan: |_| Ok(Changes::default()),
    },
    Step {
        version: 4,
        name: "0004-cluster-token-issuers",
        summary: "give every cluster a token issuer: an RS256 signing key pair and an issuer ID \
                  (tree cluster_issuers); add the credentials tree",
        plan: schema_4,
    },
];

/// Trees that a step made useless, each with the version from which the
/// store no longer has it.
const RETIRED_TREES: &[(u32, &str)] = &[(3, keys::TREE_TOKEN_EXPIRY)];

/// Schema 3 → 4: every cluster gets a token issuer, as new clusters do at
/// creation. The credentials tree starts empty (sled creates it on open).
fn schema_4(trees: &Trees) -> Result<Changes, StoreError> {
    let mut changes = Changes::default();
    for entry in trees.clusters.iter() {
        let (key, _) = entry?;
        if trees.issuers.contains_key(&key)? {
            continue;
        }
        let issuer = ClusterIssuer::generate()
            .map_err(|e| StoreError::Internal(format!("cannot make a signing key: {e}")))?;
        changes
            .issuers
            .insert(key, encode(&IssuerRecord::new(&issuer)));
    }
    Ok(changes)
}

/// Schema 1 → 2: every record moves to format 2 (`records::v1` has the
/// frozen format 1 and the conversions).
fn schema_2(trees: &Trees) -> Result<Changes, StoreError> {
    let mut changes = Changes::default();
    let mut create_tokens: HashMap<(String, String), Vec<u8>> = HashMap::new();
    for entry in trees.tokens.iter() {
        let (key, bytes) = entry?;
        let token: v1::TokenRecord = decode(&bytes)?;
        if let (true, v1::SavedResponse::Association(created)) =
            (keys::is_association_create_token(&key), &token.response)
        {
            create_tokens.insert((created.cluster.clone(), created.id.clone()), key.to_vec());
        }
        changes
            .tokens
            .insert(key, encode(&v1::upgrade_token(token)));
    }
    let mut counts: HashMap<String, u64> = HashMap::new();
    for entry in trees.associations.iter() {
        let (key, bytes) = entry?;
        let association: v1::AssociationRecord = decode(&bytes)?;
        *counts.entry(association.cluster.clone()).or_default() += 1;
        let create_token =
            create_tokens.remove(&(association.cluster.clone(), association.id.clone()));
        changes.associations.insert(
            key,
            encode(&v1::upgrade_association(association, create_token)),
        );
    }
    for entry in trees.clusters.iter() {
        let (key, bytes) = entry?;
        let cluster: v1::ClusterRecord = decode(&bytes)?;
        let count = counts.get(&cluster.name).copied().unwrap_or(0);
        changes
            .clusters
            .insert(key, encode(&v1::upgrade_cluster(cluster, count)));
    }
    Ok(changes)
}

/// The schema version this build writes.
pub const LATEST: u32 = STEPS[STEPS.len() - 1].version;

/// What a store's schema looks like to this build.
pub struct Status {
    /// `None` when there is no store yet.
    pub current: Option<u32>,
    pub pending: Vec<&'static Step>,
}

pub(super) fn read_version(trees: &Trees, dir: &Path) -> Result<u32, StoreError> {
    let Some(bytes) = trees.meta.get(META_SCHEMA_VERSION)? else {
        // A store that has data but no version was not written by us.
        if !trees.clusters.is_empty() || !trees.associations.is_empty() {
            return Err(StoreError::Damaged {
                dir: dir.to_owned(),
                detail: "it has data but no schema version".into(),
            });
        }
        return Ok(0);
    };
    let bytes: [u8; 4] = bytes.as_ref().try_into().map_err(|_| StoreError::Damaged {
        dir: dir.to_owned(),
        detail: format!(
            "its schema version is {} bytes long instead of 4",
            bytes.len()
        ),
    })?;
    let version = u32::from_be_bytes(bytes);
    if version > LATEST {
        let written_by = trees
            .meta
            .get(META_WRITTEN_BY)?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_else(|| "an unknown version".into());
        return Err(StoreError::NewerSchema {
            dir: dir.to_owned(),
            found: version,
            supported: LATEST,
            written_by,
        });
    }
    Ok(version)
}

fn pending(current: u32) -> Vec<&'static Step> {
    STEPS.iter().filter(|s| s.version > current).collect()
}

/// Applies every pending step, in order.
pub(super) fn run_pending(db: &sled::Db, trees: &Trees, dir: &Path) -> Result<(), StoreError> {
    let current = read_version(trees, dir)?;
    for step in pending(current) {
        log::info!(
            "migrating the store at {} to schema {} ({})",
            dir.display(),
            step.version,
            step.name
        );
        let changes = (step.plan)(trees)?;
        let version = step.version.to_be_bytes();
        let written_by = env!("CARGO_PKG_VERSION").as_bytes();
        (
            &trees.meta,
            &trees.clusters,
            &trees.associations,
            &trees.index,
            &trees.tokens,
            &trees.issuers,
        )
            .transaction(|(meta, clusters, associations, index, tokens, issuers)| {
                clusters.apply_batch(&changes.clusters)?;
                associations.apply_batch(&changes.associations)?;
                index.apply_batch(&changes.index)?;
                tokens.apply_batch(&changes.tokens)?;
                issuers.apply_batch(&changes.issuers)?;
                meta.insert(META_SCHEMA_VERSION, &version)?;
                meta.insert(META_WRITTEN_BY, written_by)?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Abort(e) => e,
                sled::transaction::TransactionError::Storage(e) => StoreError::Engine(e),
            })?;
        sync_now(db, dir)?;
    }
    drop_retired_trees(db, read_version(trees, dir)?, dir)
}

/// Drops the trees that the store's schema no longer has. Run after every
/// migration, so that a tree left by a crash between a step and its drop
/// goes at the next start.
fn drop_retired_trees(db: &sled::Db, version: u32, dir: &Path) -> Result<(), StoreError> {
    let names = db.tree_names();
    let mut dropped = false;
    for &(since, tree) in RETIRED_TREES {
        if version >= since && names.iter().any(|name| name == tree.as_bytes()) {
            log::info!("dropping the '{tree}' tree, which schema {since} no longer has");
            dropped |= db.drop_tree(tree)?;
        }
    }
    if dropped {
        sync_now(db, dir)?;
    }
    Ok(())
}

/// The schema status of the store in `dir`, without changing anything (and
/// without creating a store where there is none). `cache_capacity_bytes` is
/// sled's page cache.
pub fn status(dir: &Path, cache_capacity_bytes: u64) -> Result<Status, StoreError> {
    if !dir.join("db").exists() {
        return Ok(Status {
            current: None,
            pending: pending(0),
        });
    }
    let db = open_db(dir, cache_capacity_bytes, false)?;
    let trees = Trees::open(&db)?;
    let current = read_version(&trees, dir)?;
    Ok(Status {
        current: Some(current),
        pending: pending(current),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_one_after_another_from_one() {
        for (i, step) in STEPS.iter().enumerate() {
            assert_eq!(step.version as usize, i + 1, "step {}", step.name);
            assert!(
                step.name.starts_with(&format!("{:04}-", step.version)),
                "step {}",
                step.name
            );
        }
    }

    #[test]
    fn every_step_has_its_note_in_migrations_and_every_note_its_step() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut notes: Vec<String> = std::fs::read_dir(&dir)
            .expect("migrations/ exists")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|name| name.strip_suffix(".md").map(str::to_owned))
            .filter(|name| name.as_bytes().first().is_some_and(u8::is_ascii_digit))
            .collect();
        notes.sort();
        let steps: Vec<&str> = STEPS.iter().map(|s| s.name).collect();
        assert_eq!(notes, steps);
    }
}
