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
    /// `associations` yields the associations afresh each time it is called
    /// (the import reads its file once per pass: [`IMPORT_PASSES`]), the
    /// same ones in the same order every time, each cluster's together and
    /// ideally in key order, as an export lists them; the caller has
    /// checked them. So memory does not grow with their number: at most
    /// one cluster's index entries are held at a time.
    ///
    /// The clusters are checked before anything is written; then the records
    /// go under a marker (`keys::META_IMPORT_UNFINISHED`) removed at the end.
    /// Whatever goes wrong after the marker (an association of a cluster not
    /// given, a key given twice, more than `limits.associations_per_cluster`
    /// in a cluster, a source that fails: the file changed between passes)
    /// leaves the marker, and a store left by an import that did not finish
    /// is refused, so an import is served whole or not at all.
    ///
    /// It is durable once [`Store::close`] returned (the caller closes the
    /// store when done). Clusters are stored with their status and times as
    /// given; associations without a create token (tokens are not imported).
    ///
    /// Open the store with [`Store::open_for_import`], so that sled cleans
    /// its log as the import writes; opened with [`Store::open`], the import
    /// works but leaves a larger data dir.
    ///
    /// The writes, like every write, run on the writer thread, which this
    /// call waits for.
    pub fn import(
        &self,
        clusters: Vec<Cluster>,
        associations: ImportSource,
    ) -> Result<Imported, StoreError> {
        self.inner.check_import(&clusters)?;
        self.write_blocking(move |s, writing| s.write_import(writing, clusters, associations))
    }
}

/// The associations of an import: each call starts a fresh pass over them.
/// An `Err` (as a pass or as an item) stops the import with its message.
pub type ImportSource = Box<
    dyn FnMut() -> Result<Box<dyn Iterator<Item = Result<Association, String>>>, String> + Send,
>;

/// How many passes an import makes over its associations.
const IMPORT_PASSES: u64 = 3;

/// The records of one tree's import held to be sorted together (one
/// cluster's index entries), in one pass.
struct Run<'t> {
    tree: &'t sled::Tree,
    pass: u64,
    /// The place in the whole sequence of the first record held.
    position: u64,
    records: Vec<(Vec<u8>, Vec<u8>)>,
    what: &'static str,
}

impl Run<'_> {
    /// Inserts this pass's share of the records held, and lets them go.
    fn insert(&mut self) -> Result<(), StoreError> {
        insert_pass(
            self.tree,
            &mut self.records,
            &mut self.position,
            self.pass,
            self.what,
        )
    }
}

/// One pass's share of `chunk`, the next records of a tree's import: sorted,
/// then each whose place in the whole sequence (`position` onwards) is
/// `pass` modulo [`IMPORT_PASSES`] is inserted, one plain insert each. Over
/// the passes every record is inserted once: the first pass inserts every
/// third record, the next two fill in the ones between. A key already in the
/// tree is refused (`what` names the kind of record).
///
/// In one pass, sled 0.34 writes each record about three times: as a
/// delta of the leaf at the tree's right-hand edge, in the new right half
/// when that leaf splits (at 17 entries), and in the left half, which stays,
/// at the next split. The first pass builds leaves spread over the whole
/// key range; the later passes add deltas to them in place, splitting each
/// about once, which leaves a smaller data file than one pass (three passes
/// did best of the counts tried: docs/performance.md).
fn insert_pass(
    tree: &sled::Tree,
    chunk: &mut Vec<(Vec<u8>, Vec<u8>)>,
    position: &mut u64,
    pass: u64,
    what: &str,
) -> Result<(), StoreError> {
    chunk.sort_unstable();
    for (key, value) in chunk.drain(..) {
        if *position % IMPORT_PASSES == pass
            && tree.insert(key.as_slice(), value.as_slice())?.is_some()
        {
            return Err(StoreError::ImportRefused(format!(
                "{what} is given twice (did the file change during the import?)"
            )));
        }
        *position += 1;
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

    /// Checks an import's clusters against the store (empty) and against
    /// themselves.
    fn check_import(&self, clusters: &[Cluster]) -> Result<(), StoreError> {
        // The caller holds sled's lock on the directory, so nothing else can
        // write between this look and the writes.
        let contents = contents_of(&self.trees);
        if !contents.is_empty() || !self.trees.index.is_empty() {
            return Err(StoreError::NotEmpty {
                dir: self.dir.clone(),
                clusters: contents.clusters,
                associations: contents.associations,
            });
        }
        let mut names = HashSet::new();
        for cluster in clusters {
            if !names.insert(&cluster.name) {
                return Err(StoreError::ImportRefused(format!(
                    "cluster {} is given twice",
                    cluster.name
                )));
            }
        }
        Ok(())
    }

    /// Writes an import (on the writer thread).
    fn write_import(
        &self,
        writing: &Writing<'_>,
        clusters: Vec<Cluster>,
        mut associations: ImportSource,
    ) -> Result<Imported, StoreError> {
        let trees = writing.trees();
        let limit = self.settings.associations_per_cluster;
        let refused = |message: String| StoreError::ImportRefused(message);
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
        let mut counts: HashMap<ClusterName, u64> =
            clusters.iter().map(|c| (c.name.clone(), 0)).collect();
        let mut total = 0;
        // Both trees in key order (in passes), one plain insert each: sled
        // then fills nodes in order, instead of touching every node in each
        // batch (a transaction applies its writes in hash order) and leaving
        // garbage in every segment. An export lists associations in key
        // order, and each cluster's index entries are sorted before they go.
        // The marker above makes the import all or nothing; sled's log keeps
        // the inserts in order, so a store that recovers the marker's
        // removal recovers every insert before it.
        for pass in 0..IMPORT_PASSES {
            let mut position = 0;
            let mut index = Run {
                tree: &trees.index,
                pass,
                position: 0,
                records: Vec::new(),
                what: "a namespace and service account",
            };
            let mut index_cluster: Option<ClusterName> = None;
            for a in associations().map_err(refused)? {
                let a = a.map_err(refused)?;
                if pass == 0 {
                    let Some(count) = counts.get_mut(&a.cluster) else {
                        return Err(refused(format!(
                            "association {} is in cluster {}, which is not imported",
                            a.id, a.cluster
                        )));
                    };
                    *count += 1;
                    total += 1;
                    if *count > limit {
                        return Err(refused(format!(
                            "cluster {} has more than {limit} associations \
                             (limits.associations_per_cluster)",
                            a.cluster
                        )));
                    }
                }
                if position % IMPORT_PASSES == pass {
                    let record = encode(&AssociationRecord::new(&a, None));
                    let key = keys::association(&a.cluster, &a.id);
                    if trees.associations.insert(key, record)?.is_some() {
                        return Err(refused(format!(
                            "association {} of cluster {} is given twice (did the file change \
                             during the import?)",
                            a.id, a.cluster
                        )));
                    }
                }
                position += 1;
                if index_cluster.as_ref() != Some(&a.cluster) {
                    index.insert()?;
                    index_cluster = Some(a.cluster.clone());
                }
                // Bounded by the limit above, checked in the first pass.
                index.records.push((
                    keys::association_index(&a.cluster, &a.namespace, &a.service_account),
                    encode(&IndexRecord::new(&a.id)),
                ));
            }
            index.insert()?;
            if pass > 0 && position != total {
                return Err(refused(format!(
                    "the file held {total} associations, then {position} \
                     (did it change during the import?)"
                )));
            }
        }
        writing.transact(|tx| {
            for cluster in &clusters {
                let mut record = ClusterRecord::new(cluster);
                record.association_count = counts[&cluster.name];
                tx.clusters
                    .insert(keys::cluster(&cluster.name), encode(&record))?;
            }
            Ok(())
        })?;
        // Counted here, once: the writer counts no upkeep job's writes
        // (`writer::Work`), but the store's write count (and the
        // `durable-writes` witness written at close) must cover the import,
        // so that a log that lost its end is told apart.
        self.commit.note_write();
        self.db.flush()?;
        files
            .sync()
            .map_err(|e| StoreError::io("fsync the imported records", &self.dir, e))?;
        trees.meta.remove(keys::META_IMPORT_UNFINISHED)?;
        let total = usize::try_from(total).expect("counted in memory");
        Ok(Imported {
            clusters: clusters.len(),
            associations: total,
            index_entries: total,
        })
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
    use crate::domain::{
        Association, AssociationId, Cluster, ClusterName, NewAssociation, NewCluster,
        ServiceAccountName,
    };
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

    /// An association of `cluster` for the service account `sa` of `default`.
    fn association(cluster: &str, id: &str, sa: &str) -> Association {
        let cluster = ClusterName::parse("name", cluster).unwrap();
        let id = AssociationId::parse(id).unwrap();
        let new = NewAssociation {
            service_account: ServiceAccountName::parse(sa).unwrap(),
            ..new_association()
        };
        Association::new(cluster, id, new, NOW).unwrap()
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
            vec![cluster("c1")],
            source(vec![association("c1", "a-aaaaaaaaaaaaaaaaa", "app")]),
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

    /// A source that yields `associations` at every pass.
    fn source(associations: Vec<Association>) -> ImportSource {
        Box::new(move || {
            let pass: Box<dyn Iterator<Item = Result<Association, String>>> =
                Box::new(associations.clone().into_iter().map(Ok));
            Ok(pass)
        })
    }

    #[test]
    fn an_import_counts_and_indexes_every_association_and_refuses_what_the_file_cannot_hold() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let associations: Vec<_> = (0..10)
            .map(|n| association("c1", &format!("a-{n:017}"), &format!("sa{n}")))
            .collect();
        let imported = store
            .import(vec![cluster("c1"), cluster("c2")], source(associations))
            .unwrap();
        assert_eq!(
            imported,
            Imported {
                clusters: 2,
                associations: 10,
                index_entries: 10
            }
        );
        assert_eq!(store.inner.trees.associations.len(), 10);
        assert_eq!(store.inner.trees.index.len(), 10);
        let c1: ClusterRecord = decode(
            &store
                .inner
                .trees
                .clusters
                .get(keys::cluster(&cluster("c1").name))
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(c1.association_count, 10);

        // Refusals after the marker keep it: the store is refused as unfinished.
        let twice = association("c1", "a-aaaaaaaaaaaaaaaaa", "app");
        for (associations, expected) in [
            (vec![association("c9", "a-aaaaaaaaaaaaaaaaa", "app")], "c9"),
            (vec![twice.clone(), twice], "given twice"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = open(dir.path());
            match store.import(vec![cluster("c1")], source(associations)) {
                Err(StoreError::ImportRefused(message)) => {
                    assert!(message.contains(expected), "{message}")
                }
                other => panic!("expected a refusal naming {expected}: {other:?}"),
            }
            assert!(store
                .inner
                .trees
                .meta
                .contains_key(keys::META_IMPORT_UNFINISHED)
                .unwrap());
        }
    }

    /// Inserts `records` as the import does, in every pass.
    fn insert_in_key_order(
        tree: &sled::Tree,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        for pass in 0..IMPORT_PASSES {
            insert_pass(tree, &mut records.clone(), &mut 0, pass, "a record")?;
        }
        Ok(())
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
