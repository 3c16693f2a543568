//! The store's side of export and import: a consistent snapshot of a
//! running store, and loading clusters and associations into an empty one.
//! The file format is `crate::backup`'s business; this module only sees
//! domain values.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::PoisonError;

use super::files::DataFiles;
use super::keys;
use super::open::open_db;
use super::records::{decode, encode, AssociationRecord, ClusterRecord, IndexRecord};
use super::writer::Writing;
use super::{Inner, Store, StoreError, Trees};
use crate::domain::{Association, Cluster, ClusterName, Timestamp};

/// The clusters and associations of a store at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// When the copy was taken (the server's clock).
    pub taken_at: Timestamp,
    /// In name order.
    pub clusters: Vec<Cluster>,
    /// In key order: by cluster, then by ID.
    pub associations: Vec<Association>,
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub clusters: usize,
    pub associations: usize,
    pub index_entries: usize,
}

/// How much a store holds, read without changing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreContents {
    pub clusters: usize,
    pub associations: usize,
}

impl StoreContents {
    pub fn is_empty(&self) -> bool {
        self.clusters == 0 && self.associations == 0
    }
}

impl Store {
    /// A consistent copy of every cluster and association, taken while no
    /// write transaction runs.
    ///
    /// # Guarantee
    /// The snapshot is the store as it was between two write transactions:
    /// every write is in it entirely or not at all, and the index agrees
    /// with it. Writers wait while the trees are copied (a walk over the
    /// two trees in memory; decoding happens after they resume), then carry
    /// on. The snapshot is returned only once a flush that started after the
    /// copy has finished, so everything in it is durable: an export never
    /// holds a write that a crash could still take back.
    ///
    /// Clusters being deleted (the first step of DeleteCluster done, or a
    /// restart still to finish it) are left out with their associations: they
    /// are as good as gone.
    ///
    /// # Limits
    /// The whole snapshot is held in memory (it is the caller that streams it).
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let snapshot = self.read(|inner| inner.read_snapshot()).await?;
        self.inner.commit.covering_flush().await?;
        Ok(snapshot)
    }

    /// Loads clusters and associations into this store, which must be empty,
    /// rebuilding the index entries and each cluster's association count.
    ///
    /// Everything is checked before anything is written; then the records go
    /// in key order, one tree at a time, under a marker
    /// (`keys::META_IMPORT_UNFINISHED`) removed at the end. A store left by
    /// an import that did not finish keeps the marker and is refused, so an
    /// import is served whole or not at all.
    ///
    /// It is durable once [`Store::close`] returned (the caller closes the
    /// store when done). Clusters are stored with their status and times as
    /// given; associations without a create token (tokens are not imported).
    ///
    /// Open the store with [`Store::open_for_import`], so that sled cleans
    /// its log as the import writes; opened with [`Store::open`], the import
    /// works but leaves a larger data dir.
    ///
    /// The checks and the encoding run on the caller's thread; the writes,
    /// like every write, on the writer thread, which this call waits for.
    pub fn import(
        &self,
        clusters: &[Cluster],
        associations: &[Association],
    ) -> Result<Imported, StoreError> {
        let records = self.inner.prepare_import(clusters, associations)?;
        self.write_blocking(move |s, writing| s.write_import(writing, records))?;
        Ok(Imported {
            clusters: clusters.len(),
            associations: associations.len(),
            index_entries: associations.len(),
        })
    }
}

/// The records of an import, checked and encoded: (key, value) per tree.
struct ImportRecords {
    clusters: Vec<(Vec<u8>, Vec<u8>)>,
    associations: Vec<(Vec<u8>, Vec<u8>)>,
    index: Vec<(Vec<u8>, Vec<u8>)>,
}

/// How many passes [`insert_in_key_order`] makes over the sorted records.
const IMPORT_PASSES: usize = 3;

/// Inserts `records` into `tree` in key order, one plain insert each (see
/// `Inner::import`), in [`IMPORT_PASSES`] passes: the first inserts every
/// third record, the next two fill in the ones between.
///
/// In one pass, sled 0.34 writes each record about three times: as a
/// delta of the leaf at the tree's right-hand edge, in the new right half
/// when that leaf splits (at 17 entries), and in the left half, which stays,
/// at the next split. The first pass builds leaves spread over the whole
/// key range; the later passes add deltas to them in place, splitting each
/// about once, which leaves a smaller data file than one pass (three passes
/// did best of the counts tried: docs/performance.md).
fn insert_in_key_order(
    tree: &sled::Tree,
    mut records: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<(), sled::Error> {
    records.sort_unstable();
    for pass in 0..IMPORT_PASSES {
        for (key, value) in records.iter().skip(pass).step_by(IMPORT_PASSES) {
            tree.insert(key.as_slice(), value.as_slice())?;
        }
    }
    Ok(())
}

impl Inner {
    fn read_snapshot(&self) -> Result<Snapshot, StoreError> {
        let (taken_at, cluster_values, association_values) = {
            let _writers_wait = self.writers.write().unwrap_or_else(PoisonError::into_inner);
            let cluster_values = self
                .trees
                .clusters
                .iter()
                .values()
                .collect::<Result<Vec<_>, _>>()?;
            let association_values = self
                .trees
                .associations
                .iter()
                .values()
                .collect::<Result<Vec<_>, _>>()?;
            (Timestamp::now(), cluster_values, association_values)
        };
        let mut deleting = HashSet::new();
        let mut clusters = Vec::with_capacity(cluster_values.len());
        for bytes in &cluster_values {
            let record: ClusterRecord = decode(bytes)?;
            if record.deleting {
                deleting.insert(record.name.clone());
            } else {
                clusters.push(record.to_cluster());
            }
        }
        let mut associations = Vec::with_capacity(association_values.len());
        for bytes in &association_values {
            let record: AssociationRecord = decode(bytes)?;
            if !deleting.contains(&record.cluster) {
                associations.push(Association::from(record));
            }
        }
        Ok(Snapshot {
            taken_at,
            clusters,
            associations,
        })
    }

    /// Checks an import against the store (empty) and against itself, and
    /// encodes its records.
    fn prepare_import(
        &self,
        clusters: &[Cluster],
        associations: &[Association],
    ) -> Result<ImportRecords, StoreError> {
        // The caller holds sled's lock on the directory, so nothing else can
        // write between this look and the transaction.
        let contents = contents_of(&self.trees);
        if !contents.is_empty() || !self.trees.index.is_empty() {
            return Err(StoreError::NotEmpty {
                dir: self.dir.clone(),
                clusters: contents.clusters,
                associations: contents.associations,
            });
        }
        let refuse = |message: String| Err(StoreError::ImportRefused(message));
        let mut counts: HashMap<&ClusterName, u64> = HashMap::new();
        for cluster in clusters {
            if counts.insert(&cluster.name, 0).is_some() {
                return refuse(format!("cluster {} is given twice", cluster.name));
            }
        }
        let mut index_keys = HashSet::new();
        let mut association_keys = HashSet::new();
        for a in associations {
            let Some(count) = counts.get_mut(&a.cluster) else {
                return refuse(format!(
                    "association {} is in cluster {}, which is not imported",
                    a.id, a.cluster
                ));
            };
            *count += 1;
            if !association_keys.insert(keys::association(&a.cluster, &a.id)) {
                return refuse(format!(
                    "association {} of cluster {} is given twice",
                    a.id, a.cluster
                ));
            }
            if !index_keys.insert(keys::association_index(
                &a.cluster,
                &a.namespace,
                &a.service_account,
            )) {
                return refuse(format!(
                    "cluster {} has two associations for namespace {} and service account {}",
                    a.cluster, a.namespace, a.service_account
                ));
            }
        }
        let clusters = clusters
            .iter()
            .map(|cluster| {
                let mut record = ClusterRecord::new(cluster);
                record.association_count = counts[&cluster.name];
                (keys::cluster(&cluster.name), encode(&record))
            })
            .collect();
        let index = associations
            .iter()
            .map(|a| {
                let key = keys::association_index(&a.cluster, &a.namespace, &a.service_account);
                (key, encode(&IndexRecord::new(&a.id)))
            })
            .collect();
        let associations = associations
            .iter()
            .map(|a| {
                let record = encode(&AssociationRecord::new(a, None));
                (keys::association(&a.cluster, &a.id), record)
            })
            .collect();
        Ok(ImportRecords {
            clusters,
            associations,
            index,
        })
    }

    /// Writes an import's records (on the writer thread).
    fn write_import(
        &self,
        writing: &Writing<'_>,
        records: ImportRecords,
    ) -> Result<(), StoreError> {
        let trees = writing.trees();
        // sled's flush thread runs during an import (`Store::open_for_import`)
        // and fsyncs through a file handle of its own, only logging a failure.
        // Linux reports a failed write-back to every handle that was open when
        // it failed, so one opened here, before the first write, tells whether
        // the records reached the disk before the marker goes.
        let mut files = DataFiles::open(&self.dir)
            .map_err(|e| StoreError::io("open the store's data files", &self.dir, e))?;
        // The marker goes first: it is in sled's log before any imported
        // record, so a store that recovers some of them after a crash
        // recovers the marker too, and is refused until imported again.
        trees.meta.insert(keys::META_IMPORT_UNFINISHED, &b"1"[..])?;
        writing.transact(|tx| {
            for (key, record) in &records.clusters {
                tx.clusters.insert(&key[..], &record[..])?;
            }
            Ok(())
        })?;
        // Counted here, once: the writer counts no upkeep job's writes
        // (`writer::Work`), but the store's write count (and the
        // `durable-writes` witness written at close) must cover the import,
        // so that a log that lost its end is told apart.
        self.commit.note_write();
        // One tree at a time, in key order (in passes), one plain insert
        // each: sled then fills nodes in order, instead of touching every
        // node of both trees in each batch (a transaction applies its writes
        // in hash order) and leaving garbage in every segment. The marker above
        // makes the import all or nothing; sled's log keeps the inserts in
        // order, so a store that recovers the marker's removal recovers
        // every insert before it.
        insert_in_key_order(&trees.associations, records.associations)?;
        insert_in_key_order(&trees.index, records.index)?;
        self.db.flush()?;
        files
            .sync()
            .map_err(|e| StoreError::io("fsync the imported records", &self.dir, e))?;
        trees.meta.remove(keys::META_IMPORT_UNFINISHED)?;
        Ok(())
    }
}

fn contents_of(trees: &Trees) -> StoreContents {
    StoreContents {
        clusters: trees.clusters.len(),
        associations: trees.associations.len(),
    }
}

/// How much the store in `dir` holds, without creating, migrating or
/// otherwise changing it; `None` when there is no store there. Refuses a
/// store in use (sled's lock). `cache_capacity_bytes` is sled's page cache.
pub fn contents(
    dir: &Path,
    cache_capacity_bytes: u64,
) -> Result<Option<StoreContents>, StoreError> {
    if !dir.join("db").exists() {
        return Ok(None);
    }
    let db = open_db(dir, cache_capacity_bytes, false)?;
    let names = db.tree_names();
    // Opening a missing tree would create it; a missing tree holds nothing.
    let count = |name: &str| -> Result<usize, StoreError> {
        if names.iter().any(|t| t == name.as_bytes()) {
            Ok(db.open_tree(name)?.len())
        } else {
            Ok(0)
        }
    };
    Ok(Some(StoreContents {
        clusters: count(keys::TREE_CLUSTERS)?,
        associations: count(keys::TREE_ASSOCIATIONS)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::association_fixtures::{new_association, role};
    use crate::domain::{Association, AssociationId, Cluster, ClusterName, NewCluster};
    use crate::store::tests::open;

    const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn cluster(name: &str) -> Cluster {
        let name = ClusterName::parse("name", name).unwrap();
        Cluster::new(
            NewCluster {
                name,
                role_arn: role("eks"),
                version: "1.33".into(),
                tags: Default::default(),
            },
            NOW,
            0,
        )
    }

    fn association(cluster: &str, id: &str) -> Association {
        let cluster = ClusterName::parse("name", cluster).unwrap();
        let id = AssociationId::parse(id).unwrap();
        Association::new(cluster, id, new_association(), NOW).unwrap()
    }

    #[test]
    fn an_import_whose_records_cannot_be_fsynced_fails_and_keeps_its_unfinished_marker() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        // Syncing the data files lists `blobs` (sled's files of large
        // nodes): a file in its place makes the sync fail.
        std::fs::remove_dir_all(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("blobs"), b"").unwrap();
        let result = store.import(
            &[cluster("c1")],
            &[association("c1", "a-aaaaaaaaaaaaaaaaa")],
        );
        match result {
            Err(StoreError::Io { action, .. }) => assert_eq!(action, "fsync the imported records"),
            other => panic!("the import went on past a failed fsync: {other:?}"),
        }
        assert!(
            store
                .inner
                .trees
                .meta
                .contains_key(keys::META_IMPORT_UNFINISHED)
                .unwrap(),
            "the marker was removed although the records may not be on disk"
        );
    }

    /// `count` records shaped like associations: a 25-byte key (one of 20
    /// cluster names, then a random-looking ID) and a 100-byte value.
    fn records(count: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..count as u64)
            .map(|i| {
                let mixed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
                let key = format!("c{:04}\0a-{mixed:016x}", i % 20).into_bytes();
                (key, vec![b'v'; 100])
            })
            .collect()
    }

    fn tree_in(dir: &Path) -> (sled::Db, sled::Tree) {
        let db = open_db(dir, 64 << 20, false).unwrap();
        let tree = db.open_tree("records").unwrap();
        (db, tree)
    }

    #[test]
    fn every_record_is_inserted_once_whatever_their_number() {
        for count in [0, 1, 2, 3, 4, 5, 7, 100] {
            let dir = tempfile::tempdir().unwrap();
            let (_db, tree) = tree_in(dir.path());
            let mut expected = records(count);
            insert_in_key_order(&tree, expected.clone()).unwrap();
            expected.sort_unstable();
            let stored: Vec<_> = tree
                .iter()
                .map(|entry| {
                    let (key, value) = entry.unwrap();
                    (key.to_vec(), value.to_vec())
                })
                .collect();
            assert_eq!(stored, expected, "{count} records");
        }
    }

    /// With sled's flush thread off (as here), what sled writes depends
    /// mostly on the order of the inserts; but when its log buffers are
    /// sealed still depends on its I/O threads' timing, which a busy machine
    /// shifts, so the test asks only for a clearly smaller file.
    #[test]
    fn the_passes_leave_a_smaller_data_file_than_inserting_in_one_pass() {
        let count = 20_000;
        let one_pass = tempfile::tempdir().unwrap();
        let (db, tree) = tree_in(one_pass.path());
        let mut sorted = records(count);
        sorted.sort_unstable();
        for (key, value) in sorted {
            tree.insert(key, value).unwrap();
        }
        db.flush().unwrap();
        let one_pass_bytes = std::fs::metadata(one_pass.path().join("db")).unwrap().len();

        let passes = tempfile::tempdir().unwrap();
        let (db, tree) = tree_in(passes.path());
        insert_in_key_order(&tree, records(count)).unwrap();
        db.flush().unwrap();
        let passes_bytes = std::fs::metadata(passes.path().join("db")).unwrap().len();

        let record_bytes = count as f64 * 125.0;
        assert!(
            passes_bytes * 10 <= one_pass_bytes * 9,
            "in {IMPORT_PASSES} passes the data file took {passes_bytes} bytes ({:.2}x the \
             records), in one pass {one_pass_bytes} ({:.2}x)",
            passes_bytes as f64 / record_bytes,
            one_pass_bytes as f64 / record_bytes,
        );
    }
}
