//! `pod-identity-store import --data-dir DIR FILE`: loads an export into an
//! empty store.
//!
//! In this order, so that every refusal writes nothing:
//! 1. the store must be empty (looked at without creating or migrating it);
//! 2. every line of the file is read and checked (`format::check`),
//!    including `limits.associations_per_cluster`;
//! 3. only then is the store opened (created, or migrated when older) and
//!    everything written, reading the file again once per pass (three,
//!    with sled cleaning its log meanwhile), under a marker that a store
//!    left by an unfinished import keeps (the server refuses it), with the
//!    index entries and each cluster's association count rebuilt;
//! 4. the store is closed: a flush and an fsync of its data file; then
//!    opened once more, so that sled writes its recovery snapshot.
//!
//! # Limits
//! The file is read a line at a time, never held: what the check keeps is
//! the clusters and two 96-bit digests per association (to refuse a
//! second ID or service account), which it drops before the writes; the
//! writes hold the index entries of one run of a cluster's associations
//! (at most `limits.associations_per_cluster`). sled's page
//! cache is held to [`IMPORT_CACHE_CAPACITY_BYTES`] while it writes
//! (`cargo bench --bench scale` measures the peak). A file that changes between the check
//! and the writes stops the import with the store left unfinished.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::format::{self, Entry, FileError};
use super::progress::Progress;
use crate::domain::{Association, AwsIdentity};
use crate::store::{self, ImportSource, Imported, Store, StoreError, StoreSettings};

/// sled's page cache while the import writes, at most. The writes go in
/// key order, so a small cache serves them; with the server's (1 GiB by
/// default) every page written would stay in memory, and sled counts a page
/// at its size on disk, well under what it takes in memory.
const IMPORT_CACHE_CAPACITY_BYTES: u64 = 32 << 20;

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
    let limit = settings.associations_per_cluster;
    let summary = format::check(BufReader::new(opened), &settings.identity, limit, |done| {
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
    let associations = passes_over(file, &settings.identity, limit);
    let store = Store::open_for_import(
        dir,
        StoreSettings {
            cache_capacity_bytes: cache_capacity_bytes.min(IMPORT_CACHE_CAPACITY_BYTES),
            ..settings
        },
    )?;
    progress.say(&format!(
        "writing clusters: {}, associations: {}",
        summary.clusters.len(),
        summary.associations
    ));
    let imported = store.import(summary.clusters, associations);
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

/// The associations of `file`, read and checked afresh at each call: the
/// store's passes over them.
fn passes_over(file: &Path, identity: &AwsIdentity, limit: u64) -> ImportSource {
    let (file, identity) = (file.to_owned(), identity.clone());
    Box::new(move || {
        let shown = file.display().to_string();
        let changed = move |e: &dyn std::fmt::Display| {
            format!(
                "{shown} changed during the import ({e}); the store is left unfinished: empty \
                 its directory and import again"
            )
        };
        let opened = File::open(&file).map_err(|e| changed(&e))?;
        let reader = format::Reader::new(BufReader::new(opened), &identity, limit)
            .map_err(|e| changed(&e))?
            .without_duplicate_checks();
        let associations = reader.filter_map(move |entry| match entry {
            Ok(Entry::Association(a)) => Some(Ok::<Association, String>(a)),
            Ok(Entry::Cluster(_)) => None,
            Err(e) => Some(Err(changed(&e))),
        });
        let pass: Box<dyn Iterator<Item = Result<Association, String>>> = Box::new(associations);
        Ok(pass)
    })
}
