use std::io;
use std::path::{Path, PathBuf};

use crate::domain::DomainError;

/// What went wrong in the store.
///
/// A variant with a cause (an I/O error, sled's error) shows it in its
/// message, so that a start-up or command-line failure that prints only the
/// message still says what the OS or sled said ("No space left on device").
/// None of them also returns it as `source()`: a log that prints the whole
/// chain then prints each cause once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request broke a rule of the service; nothing was written.
    #[error(transparent)]
    Rejected(#[from] DomainError),

    #[error(
        "the store at {dir} is in use by another process (it holds the lock on {dir}/db); stop \
         that process or choose another --data-dir"
    )]
    Locked { dir: PathBuf },

    #[error(
        "the store at {dir} has schema version {found}, written by pod-identity-store {written_by}; \
         this build supports schema versions up to {supported}. Run a newer pod-identity-store \
         (or restore a backup taken with this one)"
    )]
    NewerSchema {
        dir: PathBuf,
        found: u32,
        supported: u32,
        written_by: String,
    },

    #[error(
        "there is no store at {dir} (no {dir}/db); name the data directory of an existing store \
         with --data-dir"
    )]
    NoStore { dir: PathBuf },

    /// Met only by tools that do not migrate (`check`); the server migrates.
    #[error(
        "the store at {dir} has schema version {found}; this build checks schema version \
         {latest} only. Run `pod-identity-store migrate --data-dir {dir}` (it upgrades the store \
         in place, keeping its data), then check again"
    )]
    OlderSchema {
        dir: PathBuf,
        found: u32,
        latest: u32,
    },

    #[error(
        "the store at {dir} is not empty (clusters: {clusters}, associations: {associations}); \
         import loads only into an empty store: choose a new --data-dir, or move {dir} away first"
    )]
    NotEmpty {
        dir: PathBuf,
        clusters: usize,
        associations: usize,
    },

    /// Data handed to `Store::import` breaks a rule of the store; nothing was written.
    #[error("the data to import is inconsistent: {0}")]
    ImportRefused(String),

    #[error("the store at {dir} is damaged: {detail}")]
    Damaged { dir: PathBuf, detail: String },

    /// A stored value did not decode.
    #[error("a stored record is damaged: {0}")]
    Corrupt(String),

    #[error("could not {action} at {path}: {cause}")]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: io::Error,
    },

    #[error("the storage engine failed: {}", engine_cause(.0))]
    Engine(sled::Error),

    /// The store has failed (`GroupCommit::fail`) and takes no more writes
    /// until the server restarts; the write was not acknowledged.
    #[error("the store cannot write: {0}")]
    Unwritable(std::sync::Arc<str>),

    #[error("internal store error: {0}")]
    Internal(String),
}

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        StoreError::Engine(error)
    }
}

/// sled's error as a person should read it: its I/O errors in the OS's
/// words ("No space left on device (os error 28)") rather than sled's
/// `IO error: Os { code: 28, … }` debug form.
pub(super) fn engine_cause(error: &sled::Error) -> String {
    match error {
        sled::Error::Io(io) => match copied_os_code(io) {
            Some(code) => io::Error::from_raw_os_error(code).to_string(),
            None => io.to_string(),
        },
        other => other.to_string(),
    }
}

/// An I/O error from sled, in the OS's words (see `copied_os_code`).
pub(super) fn readable_io(error: io::Error) -> io::Error {
    match copied_os_code(&error) {
        Some(code) => io::Error::from_raw_os_error(code),
        None => error,
    }
}

/// sled hands each caller a copy of the error it met first (its global
/// error), and copies an I/O error by its debug form (`Os { code: 28, … }`):
/// the OS's error code, read back from that form.
fn copied_os_code(error: &io::Error) -> Option<i32> {
    if error.raw_os_error().is_some() {
        return None;
    }
    error
        .to_string()
        .strip_prefix("Os { code: ")?
        .split(',')
        .next()?
        .parse()
        .ok()
}

impl StoreError {
    pub fn io(action: &'static str, path: &Path, cause: io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.to_owned(),
            cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    /// The message and every `source()` after it, as the server logs them.
    fn chain(error: &StoreError) -> String {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        chain
    }

    fn disk_full() -> io::Error {
        io::Error::from_raw_os_error(28)
    }

    #[test]
    fn an_io_error_names_its_cause_once_in_the_logged_chain() {
        let error = StoreError::io("fsync the directory", Path::new("/data"), disk_full());
        let logged = chain(&error);
        assert_eq!(
            logged.matches("No space left on device").count(),
            1,
            "{logged}"
        );
        assert!(
            logged.starts_with("could not fsync the directory at /data: "),
            "{logged}"
        );
    }

    #[test]
    fn a_storage_engine_failure_says_what_sled_said() {
        let error = StoreError::from(sled::Error::Io(disk_full()));
        let shown = error.to_string();
        assert!(shown.starts_with("the storage engine failed: "), "{shown}");
        assert!(shown.contains("No space left on device"), "{shown}");
        assert!(!shown.contains("Os {"), "sled's debug form: {shown}");
        assert_eq!(chain(&error).matches("No space left on device").count(), 1);
    }

    #[test]
    fn a_copied_sled_io_error_is_read_back_into_the_os_words() {
        // What sled's `Clone` of an I/O error makes of ENOSPC.
        let copied = io::Error::new(io::ErrorKind::StorageFull, format!("{:?}", disk_full()));
        let shown = StoreError::from(sled::Error::Io(copied)).to_string();
        assert_eq!(
            shown,
            "the storage engine failed: No space left on device (os error 28)"
        );
    }
}
