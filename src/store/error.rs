use std::io;
use std::path::{Path, PathBuf};

use crate::domain::DomainError;

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

    #[error("could not {action} at {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    #[error("the storage engine failed")]
    Engine(#[from] sled::Error),

    /// A flush or fsync failed; the write may not be on disk.
    #[error("the write could not be made durable: {0}")]
    Durability(String),

    #[error("internal store error: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}
