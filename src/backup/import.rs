//! `pod-identity-store import --data-dir DIR FILE`: loads an export into an
//! empty store.
//!
//! In this order, so that every refusal writes nothing:
//! 1. the store must be empty (looked at without creating or migrating it);
//! 2. every line of the file is read and checked (`format::read`);
//! 3. only then is the store opened (created, or migrated when older) and
//!    everything written, tree by tree in key order (in three passes, with
//!    sled cleaning its log meanwhile), under a marker that a
//!    store left by an unfinished import keeps (the server refuses it), with
//!    the index entries and each cluster's association count rebuilt;
//! 4. the store is closed: a flush and an fsync of its data file; then
//!    opened once more, so that sled writes its recovery snapshot.
//!
//! # Limits
//! The whole file is held in memory (as clusters and associations) between
//! steps 2 and 3, so memory grows with the file (`cargo bench --bench
//! scale` measures the peak; `docs/performance.md` has a run).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::format::{self, FileError};
use super::progress::Progress;
use crate::store::{self, Imported, Store, StoreError, StoreSettings};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("nothing was imported from {}: {source}", path.display())]
    File { path: PathBuf, source: FileError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Imports `file` into the store in `dir`, which must be empty or absent.
pub fn import(
    file: &Path,
    dir: &Path,
    settings: StoreSettings,
    progress: &mut Progress,
) -> Result<Imported, ImportError> {
    if let Some(contents) = store::contents(dir, settings.cache_capacity_bytes)? {
        if !contents.is_empty() {
            return Err(StoreError::NotEmpty {
                dir: dir.to_owned(),
                clusters: contents.clusters,
                associations: contents.associations,
            }
            .into());
        }
    }
    let opened = File::open(file).map_err(|source| ImportError::Open {
        path: file.to_owned(),
        source,
    })?;
    // Only for the progress bar: a size that cannot be read shows as 0.
    let total = opened.metadata().map(|m| m.len()).unwrap_or(0);
    let export = format::read(BufReader::new(opened), &settings.identity, |done| {
        progress.bytes(done, total)
    })
    .map_err(|source| ImportError::File {
        path: file.to_owned(),
        source,
    })?;
    // Opening may log (a new store is migrated to the latest schema): the
    // bar makes way for those lines first.
    progress.finish();
    let cache_capacity_bytes = settings.cache_capacity_bytes;
    let store = Store::open_for_import(dir, settings)?;
    progress.say(&format!(
        "writing clusters: {}, associations: {}",
        export.clusters.len(),
        export.associations.len()
    ));
    let imported = store.import(&export.clusters, &export.associations);
    // Closed in every case, so that what was written is on disk: after a
    // failure that is part of the file under the unfinished-import marker,
    // which the server refuses.
    let closed = store.close();
    drop(store);
    progress.finish();
    let imported = imported?;
    closed?;
    progress.say("writing the store's recovery snapshot");
    // Only for a fast first start: the import has succeeded whatever this does.
    let snapshot = crate::failure::without_engine_panics(dir, || {
        store::write_recovery_snapshot(dir, cache_capacity_bytes)
    });
    progress.finish();
    if let Err(e) = snapshot {
        log::warn!(
            "could not write the store's recovery snapshot (the import is complete): {}",
            crate::failure::chain(&e)
        );
    }
    Ok(imported)
}
