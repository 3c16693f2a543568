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
    data_file: File,
    blobs: PathBuf,
    /// Blob files already fsynced. sled never rewrites a blob file: it
    /// writes a new one and removes the old.
    synced_blobs: HashSet<OsString>,
}

impl DataFiles {
    pub fn open(dir: &Path) -> io::Result<DataFiles> {
        Ok(DataFiles {
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
        self.data_file.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
