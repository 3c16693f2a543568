//! Opening a store: sled's settings, the checks that refuse a data
//! directory that lost what it held, and the start of the group commit and
//! the writer.

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use super::commit::GroupCommit;
use super::writer::Writer;
use super::{files, keys, migrate, Inner, Store, StoreError, StoreSettings, Trees};

/// Opens sled in `dir`, creating the directory and the store when missing.
/// Does not run migrations.
///
/// `cache_capacity_bytes` bounds sled's page cache, which is most of the
/// server's resident memory on a large store: sled keeps pages it has read
/// until the cache is full (its default is 1 GiB), so a store larger than
/// the cache keeps the cache full once its pages have been read.
///
/// A store created here compresses its pages when `compress_new` says so;
/// sled refuses to open a store with another setting than it was created
/// with, so an existing one is opened with its own.
///
/// sled's own flush thread is off: the commands that open a store for a
/// moment (`check`, `migrate`'s look at what is pending, the recovery
/// snapshot, import's look for existing contents) have no log to clean.
pub(super) fn open_db(
    dir: &Path,
    cache_capacity_bytes: u64,
    compress_new: bool,
) -> Result<sled::Db, StoreError> {
    open_db_cleaning(dir, cache_capacity_bytes, compress_new, None)
}

/// How often sled's flush thread runs while `import` writes, in
/// milliseconds: often, because an import is a stream of inserts, and the
/// more often the thread cleans sled's log, the smaller the data file the
/// import leaves (docs/performance.md has the measurements).
const IMPORT_SEGMENT_CLEANING_MS: u64 = 10;

/// [`open_db`], with sled's own flush thread every `cleaning_every_ms`
/// milliseconds (`None`: off), which is what cleans sled's log.
///
/// sled 0.34 appends every write to its log, in 512 KiB segments, and
/// reuses a segment once nothing in it is live. It moves the live pages out
/// of a segment that is at most half live from that thread, and otherwise
/// only one page each time a writer rewrites a node, which does not keep up
/// with a stream of inserts: each leaves old versions of nodes in the
/// segments it writes, and without the thread the file grows instead.
/// Each run of the thread also writes out sled's log buffer and fsyncs the
/// data file; the server's own group commit does not rely on either.
fn open_db_cleaning(
    dir: &Path,
    cache_capacity_bytes: u64,
    compress_new: bool,
    cleaning_every_ms: Option<u64>,
) -> Result<sled::Db, StoreError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::io("create the data directory", dir, e))?;
    let fresh = !dir.join("db").exists();
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_capacity_bytes)
        .flush_every_ms(cleaning_every_ms)
        // zstd per page, at level 1, the cheapest (`store.compression`, off
        // by default: it slows durable writes; docs/performance.md).
        .use_compression(if fresh {
            compress_new
        } else {
            stored_compressed(dir)
        })
        .compression_factor(1)
        .open()
        .map_err(|e| match e {
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                StoreError::Locked {
                    dir: dir.to_owned(),
                }
            }
            sled::Error::Io(io) => {
                StoreError::io("open the store", dir, super::error::readable_io(io))
            }
            // sled's message says no more than "corrupted data at offset None".
            sled::Error::Corruption { .. } => StoreError::Damaged {
                dir: dir.to_owned(),
                detail: "its data file is damaged, or shorter than sled's recovery snapshot of it \
                         (was it truncated, overwritten or replaced by an older copy?), or its \
                         `conf` file no longer matches it; restore the data directory from a \
                         backup, or move it away to start with an empty store"
                    .into(),
            },
            sled::Error::Unsupported(_) | sled::Error::ReportableBug(_) => StoreError::Damaged {
                dir: dir.to_owned(),
                detail: e.to_string(),
            },
            other => StoreError::Engine(other),
        })?;
    if fresh {
        // sled does not fsync its `conf`, which says whether the store is
        // compressed: lost, the store would be opened with the wrong setting.
        let conf = dir.join("conf");
        File::open(&conf)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io("fsync sled's settings file", &conf, e))?;
        // The new files' directory entries must survive a power cut too.
        sync_dir(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(db)
}

/// Opens the closed store in `dir` once more and closes it, so that sled
/// writes its recovery snapshot. Call it after the last `Store` handle of a
/// closed store was dropped (at the end of an import or of a clean stop).
///
/// sled 0.34 writes that snapshot only when it opens a store, and at every
/// open replays its log from the last one. Without this, the first start
/// after a large import, or after a long run, replays all that was written
/// since the store was last opened, in time that grows with the writes,
/// spent before the server answers. Nothing is written that a crash could
/// lose: the records are already on disk.
pub fn write_recovery_snapshot(dir: &Path, cache_capacity_bytes: u64) -> Result<(), StoreError> {
    // sled's threads let go of the data file a moment after its last handle
    // is dropped; its epoch collector may still hold the file until flushed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        sled::pin().flush();
        match open_db(dir, cache_capacity_bytes, false) {
            Ok(db) => {
                drop(db);
                return Ok(());
            }
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether the store in `dir` was created with compression (sled's `conf`
/// file, written at creation, says `use_compression: true`). sled opens a
/// store only with the setting it was created with.
pub fn stored_compressed(dir: &Path) -> bool {
    std::fs::read(dir.join("conf")).is_ok_and(|conf| {
        conf.windows(b"use_compression: true".len())
            .any(|w| w == b"use_compression: true")
    })
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync the directory", dir, e))
}

/// The file beside sled's that names the store (`keys::META_STORE_ID` holds
/// the same ID inside it).
const STORE_ID_FILE: &str = "store-id";

/// Refuses a data directory whose sled file lost what it held.
///
/// sled recovers from a torn log by dropping the damaged tail, so a data file
/// that was truncated, zeroed or replaced opens as an *empty* store, and a
/// server would quietly serve nothing. The store's ID lives both in sled and
/// in a file beside it; when the file names a store that sled no longer
/// holds, the data is gone and the server must not start.
fn check_identity(db: &sled::Db, meta: &sled::Tree, dir: &Path) -> Result<(), StoreError> {
    let id = match read_identity(meta, dir)? {
        Identity::Confirmed => return Ok(()),
        Identity::OnlyInStore(store_id) => store_id,
        Identity::None => {
            let id = uuid::Uuid::new_v4().to_string();
            meta.insert(keys::META_STORE_ID, id.as_bytes())?;
            sync_now(db, dir)?;
            id
        }
    };
    // sled holds the ID durably before the file names it.
    let file = dir.join(STORE_ID_FILE);
    std::fs::write(&file, format!("{id}\n"))
        .and_then(|()| std::fs::File::open(&file)?.sync_all())
        .map_err(|e| StoreError::io("write the store ID", &file, e))?;
    sync_dir(dir)
}

/// What the store's ID says, read without changing anything.
pub(super) enum Identity {
    /// The file and sled name the same store.
    Confirmed,
    /// Only sled names it (a store from before the file, or a crash before
    /// the file was written); the server writes the file.
    OnlyInStore(String),
    /// A new store: neither names one yet.
    None,
}

/// Reads the store's ID from sled and from the file beside it; a data file
/// that lost what it held, or belongs to another store, is `Damaged`.
pub(super) fn read_identity(meta: &sled::Tree, dir: &Path) -> Result<Identity, StoreError> {
    let file = dir.join(STORE_ID_FILE);
    let in_file = match std::fs::read_to_string(&file) {
        Ok(text) => Some(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(StoreError::io("read the store ID", &file, e)),
    };
    let in_store = meta
        .get(keys::META_STORE_ID)?
        .map(|id| String::from_utf8_lossy(&id).into_owned());
    let damaged = |detail: &str| StoreError::Damaged {
        dir: dir.to_owned(),
        detail: format!(
            "{detail}; restore the data directory from a backup, or move it away to start with an \
             empty store"
        ),
    };
    match (in_file, in_store) {
        (Some(file_id), Some(store_id)) if file_id == store_id => Ok(Identity::Confirmed),
        (Some(_), Some(_)) => Err(damaged(
            "its data file belongs to another store (was it replaced?)",
        )),
        (Some(_), None) => Err(damaged(
            "its data file has lost what it held (was it truncated, overwritten or replaced?)",
        )),
        (None, Some(store_id)) => Ok(Identity::OnlyInStore(store_id)),
        (None, None) => Ok(Identity::None),
    }
}

/// The store's write count, as the group commit last stored it.
pub(super) fn commit_seq(meta: &sled::Tree) -> Result<u64, StoreError> {
    decode_commit_seq(meta.get(keys::META_COMMIT_SEQ)?.as_deref())
}

/// The stored write count: absent is 0; anything but 8 bytes is damage.
fn decode_commit_seq(bytes: Option<&[u8]>) -> Result<u64, StoreError> {
    let Some(bytes) = bytes else { return Ok(0) };
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| {
        StoreError::Corrupt(format!(
            "the write count is {} bytes long instead of 8",
            bytes.len()
        ))
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Refuses a store that holds fewer writes than were once on disk: its data
/// file lost its end (see `files::WITNESS_FILE`).
fn check_witness(meta: &sled::Tree, dir: &Path) -> Result<(), StoreError> {
    let witnessed = files::read_witness(dir)
        .map_err(|e| StoreError::io("read the durable write count", dir, e))?;
    let held = commit_seq(meta)?;
    match witnessed {
        Some(witnessed) if held < witnessed => Err(StoreError::Damaged {
            dir: dir.to_owned(),
            detail: format!(
                "its data file holds {held} writes, but {witnessed} were on disk before (was it truncated or \
                 replaced by an older copy?); restore the data directory from a backup, or move it away to \
                 start with an empty store"
            ),
        }),
        _ => Ok(()),
    }
}

/// Refuses a store that an import was still writing when it stopped: it
/// holds part of the file, and serving part of an import would serve a
/// store nobody had.
fn check_import_finished(meta: &sled::Tree, dir: &Path) -> Result<(), StoreError> {
    if meta.contains_key(keys::META_IMPORT_UNFINISHED)? {
        return Err(StoreError::Damaged {
            dir: dir.to_owned(),
            detail:
                "an import into it did not finish, so it holds only part of the file; move the \
                     data directory away (or remove it) and run the import again"
                    .into(),
        });
    }
    Ok(())
}

fn page_token_secret(meta: &sled::Tree) -> Result<[u8; 16], StoreError> {
    if let Some(bytes) = meta.get(keys::META_PAGE_TOKEN_SECRET)? {
        return bytes.as_ref().try_into().map_err(|_| {
            StoreError::Corrupt(format!(
                "the page token secret is {} bytes long instead of 16",
                bytes.len()
            ))
        });
    }
    let secret = *uuid::Uuid::new_v4().as_bytes();
    meta.insert(keys::META_PAGE_TOKEN_SECRET, &secret)?;
    Ok(secret)
}

/// Flushes sled and fsyncs its data file, outside the group commit (start-up, shutdown).
pub(super) fn sync_now(db: &sled::Db, dir: &Path) -> Result<(), StoreError> {
    db.flush()?;
    files::DataFiles::open(dir)
        .and_then(|mut files| files.sync())
        .map_err(|e| StoreError::io("fsync the store's data files", dir, e))
}

/// Makes everything durable, with a write of sled's and one of a file
/// beside it on the way: a store whose disk is full is refused here, with
/// the cause, rather than opened to fail its first write. (sled can open a
/// store and flush nothing new on a full disk.) Rewrites the write count
/// and the witness with what the store holds, which changes nothing.
fn probe_writes(db: &sled::Db, meta: &sled::Tree, dir: &Path) -> Result<(), StoreError> {
    let count = commit_seq(meta)?;
    let written = meta
        .insert(keys::META_COMMIT_SEQ, &count.to_be_bytes())
        .and_then(|_| db.flush());
    written.map_err(|e| match e {
        sled::Error::Io(io) => {
            StoreError::io("write to the store", dir, super::error::readable_io(io))
        }
        other => StoreError::Engine(other),
    })?;
    files::DataFiles::open(dir)
        .and_then(|mut files| files.sync())
        .map_err(|e| StoreError::io("fsync the store's data files", dir, e))?;
    files::write_witness(dir, count)
        .map_err(|e| StoreError::io("record the durable write count", dir, e))
}

impl Store {
    /// Opens (or creates) the store in `dir`, applies pending migrations and
    /// starts the group commit.
    pub fn open(dir: &Path, settings: StoreSettings) -> Result<Store, StoreError> {
        let interval_ms = settings.segment_cleaning_interval_ms;
        Store::open_cleaning(dir, settings, (interval_ms > 0).then_some(interval_ms))
    }

    /// [`Store::open`] for [`Store::import`], with sled cleaning its log
    /// every [`IMPORT_SEGMENT_CLEANING_MS`] while the import writes,
    /// whatever the settings say. Serve nothing from it: close it, and open
    /// the store again to serve it.
    pub fn open_for_import(dir: &Path, settings: StoreSettings) -> Result<Store, StoreError> {
        Store::open_cleaning(dir, settings, Some(IMPORT_SEGMENT_CLEANING_MS))
    }

    fn open_cleaning(
        dir: &Path,
        settings: StoreSettings,
        cleaning_every_ms: Option<u64>,
    ) -> Result<Store, StoreError> {
        let db = open_db_cleaning(
            dir,
            settings.cache_capacity_bytes,
            settings.compression,
            cleaning_every_ms,
        )?;
        let trees = Trees::open(&db)?;
        check_identity(&db, &trees.meta, dir)?;
        check_witness(&trees.meta, dir)?;
        check_import_finished(&trees.meta, dir)?;
        migrate::run_pending(&db, &trees, dir)?;
        let page_token_secret = page_token_secret(&trees.meta)?;
        sync_now(&db, dir)?;
        let (commit, flusher) = GroupCommit::start(db.clone(), trees.meta.clone(), dir)?;
        let writers = Arc::new(RwLock::new(()));
        let inner = Inner {
            dir: dir.to_owned(),
            db,
            flusher: Mutex::new(Some(flusher)),
            writer: Writer::start(trees.clone(), Arc::clone(&writers), Arc::clone(&commit))
                .map_err(|e| StoreError::io("start the writer thread", dir, e))?,
            trees,
            commit,
            settings,
            page_token_secret,
            writers,
        };
        let store = Store {
            inner: Arc::new(inner),
        };
        store.finish_deletions()?;
        store.ensure_issuers()?;
        probe_writes(&store.inner.db, &store.inner.trees.meta, dir)?;
        Ok(store)
    }
}
