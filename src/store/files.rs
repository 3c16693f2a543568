//! The files a durable commit must fsync.
//!
//! sled 0.34.7 keeps its log in `<dir>/db`, and writes a node too large for
//! its log segments (over a quarter of a segment, about 128 KiB) to a file of
//! its own in `<dir>/blobs/`, which it never fsyncs. A flush covers both only
//! if both are fsynced: the new blob files (and the `blobs` directory, whose
//! entries name them) first, then the log that points at them.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub struct DataFiles {
    pub dir: PathBuf,
    data_file: File,
    blobs: PathBuf,
    /// Blob files already fsynced. sled never rewrites a blob file: it
    /// writes a new one and removes the old.
    synced_blobs: HashSet<OsString>,
}

impl DataFiles {
    pub fn open(dir: &Path) -> io::Result<DataFiles> {
        Ok(DataFiles {
            dir: dir.to_owned(),
            data_file: File::open(dir.join("db"))?,
            blobs: dir.join("blobs"),
            synced_blobs: HashSet::new(),
        })
    }

    /// Fsyncs every blob file not yet synced, then the data file. Call after
    /// sled's flush: what the flush wrote is then on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        let mut present = HashSet::new();
        let mut new_blob = false;
        match std::fs::read_dir(&self.blobs) {
            Ok(entries) => {
                for entry in entries {
                    let name = entry?.file_name();
                    if !self.synced_blobs.contains(&name) {
                        fail::fail_point!("store::fsync_blob", |_| Err(injected_error()));
                        File::open(self.blobs.join(&name))?.sync_all()?;
                        log::trace!(
                            target: "pod_identity_store::durability",
                            "fsynced blob file {}",
                            name.to_string_lossy()
                        );
                        new_blob = true;
                    }
                    present.insert(name);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if new_blob {
            File::open(&self.blobs)?.sync_all()?;
        }
        // Forget the blobs sled removed, so the set stays as small as the directory.
        self.synced_blobs = present;
        fail::fail_point!("store::fsync_db", |_| Err(injected_error()));
        self.data_file.sync_all()
    }
}

/// The witness of durable writes: a file beside sled's that says how many
/// writes were on disk at some moment (`keys::META_COMMIT_SEQ` counts them
/// inside sled: the group commit stores the count before each flush).
///
/// sled recovers from a torn log by dropping its damaged end, so a data file
/// cut short in the middle opens as an older store and would be served as if
/// nothing were lost. The witness is written only after a flush and fsync
/// that covered the count it names (at most once a second, and at a clean
/// stop), so a store that opens with a smaller count lost acknowledged writes.
pub const WITNESS_FILE: &str = "durable-writes";

pub fn read_witness(dir: &Path) -> io::Result<Option<u64>> {
    match std::fs::read_to_string(dir.join(WITNESS_FILE)) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{WITNESS_FILE} is not a number"),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces the witness atomically (write, fsync, rename, fsync the directory).
pub fn write_witness(dir: &Path, durable_writes: u64) -> io::Result<()> {
    fail::fail_point!("store::witness", |_| Err(injected_error()));
    let temporary = dir.join(format!("{WITNESS_FILE}.new"));
    std::fs::write(&temporary, format!("{durable_writes}\n"))?;
    File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, dir.join(WITNESS_FILE))?;
    File::open(dir)?.sync_all()
}

/// The error a fail point injects into the store's I/O: the one a full
/// disk gives, the failure met most in practice.
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
pub(super) fn injected_error() -> io::Error {
    io::Error::from_raw_os_error(28)
}

/// The error the read fail point injects: the disk could not be read.
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
pub(super) fn injected_read_error() -> io::Error {
    io::Error::from_raw_os_error(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_witness_round_trips_and_is_absent_until_written() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_witness(dir.path()).unwrap(), None);
        write_witness(dir.path(), 42).unwrap();
        write_witness(dir.path(), 43).unwrap();
        assert_eq!(read_witness(dir.path()).unwrap(), Some(43));
    }

    #[test]
    fn sync_covers_the_data_file_and_every_blob_file_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"log").unwrap();
        let mut files = DataFiles::open(dir.path()).unwrap();
        files.sync().unwrap(); // no blobs directory yet
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("blobs/1"), b"blob").unwrap();
        files.sync().unwrap();
        assert!(files.synced_blobs.contains(&OsString::from("1")));
        std::fs::remove_file(dir.path().join("blobs/1")).unwrap();
        files.sync().unwrap();
        assert!(files.synced_blobs.is_empty());
    }
}
