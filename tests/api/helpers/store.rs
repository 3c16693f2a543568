//! Looking inside a store without a server: sled opened directly, record
//! counts per tree, sled's recovery snapshots.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How many records each tree of a stopped store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredCounts {
    pub clusters: usize,
    pub associations: usize,
    pub index: usize,
    pub tokens: usize,
}

/// Counts the records of the store in `data_dir` (no server may hold it).
pub fn stored_counts(data_dir: &Path) -> StoredCounts {
    use pod_identity_store::store::keys;
    let db = open_store_directly(data_dir).expect("the store opens");
    let count = |tree: &str| db.open_tree(tree).expect("tree").len();
    StoredCounts {
        clusters: count(keys::TREE_CLUSTERS),
        associations: count(keys::TREE_ASSOCIATIONS),
        index: count(keys::TREE_ASSOCIATION_INDEX),
        tokens: count(keys::TREE_TOKENS),
    }
}

/// The store opened with sled itself, as tests do to look inside it or to
/// damage it. Dropping it waits until sled has let go of its lock on the
/// data file, so that a server or command started next does not find the
/// store "in use by another process": sled closes the file only once the
/// last of its internal references is dropped, some of them later, through
/// its epoch-based garbage collection.
pub struct DirectStore {
    db: Option<sled::Db>,
    data_file: PathBuf,
}

/// The log position up to which sled's newest recovery snapshot (a file
/// `snap.<position in hex>`) covers the store; 0 without one.
pub fn newest_snapshot_lsn(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().ok()?;
            u64::from_str_radix(name.strip_prefix("snap.")?, 16).ok()
        })
        .max()
        .unwrap_or(0)
}

/// Opens (or creates) the store as the server does (`store::open_db`):
/// compressed if sled's `conf` says it was created so, else not.
pub fn open_store_directly(data_dir: &Path) -> sled::Result<DirectStore> {
    let compression = pod_identity_store::store::stored_compressed(data_dir);
    Ok(DirectStore {
        db: Some(
            sled::Config::new()
                .path(data_dir)
                .use_compression(compression)
                .compression_factor(1)
                .open()?,
        ),
        data_file: data_dir.join("db"),
    })
}

impl std::ops::Deref for DirectStore {
    type Target = sled::Db;
    fn deref(&self) -> &sled::Db {
        self.db.as_ref().expect("open until dropped")
    }
}

impl Drop for DirectStore {
    fn drop(&mut self) {
        drop(self.db.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            // Runs the garbage collection that drops sled's last references.
            sled::pin().flush();
            let free = File::open(&self.data_file).is_ok_and(|f| f.try_lock().is_ok());
            if free {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Only a handle still alive holds the file this long: fail here
        // rather than make the test wait for nothing.
        if !std::thread::panicking() {
            panic!(
                "sled still holds {} 10 s after the store was dropped: a tree or an \
                 iterator of it is still alive (a temporary of a block's last \
                 expression outlives the block's `let`s)",
                self.data_file.display()
            );
        }
    }
}
