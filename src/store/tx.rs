//! What a transaction body sees: the data trees inside one sled
//! transaction, and the helpers every resource's bodies share.
//!
//! Only the writer thread opens a transaction (`writer::Writing`); the
//! resource modules write bodies that run inside one.

use std::cell::Cell;

use sled::transaction::{
    ConflictableTransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::IVec;

use super::records::{decode, Record};
use super::StoreError;
use crate::domain::DomainError;

/// The trees as seen inside one transaction.
pub(super) struct Tx<'a> {
    pub(super) clusters: TxTree<'a>,
    pub(super) associations: TxTree<'a>,
    pub(super) index: TxTree<'a>,
    pub(super) tokens: TxTree<'a>,
    pub(super) issuers: TxTree<'a>,
    pub(super) writes: &'a Cell<u64>,
}

impl Tx<'_> {
    /// How many inserts and removals this transaction has made so far.
    pub(super) fn writes(&self) -> u64 {
        self.writes.get()
    }
}

/// One tree inside a transaction. It counts the writes made through it, so
/// that the writer thread can tell a write that was refused before it
/// changed anything from one refused halfway (see `writer`).
pub(super) struct TxTree<'a> {
    pub(super) tree: &'a TransactionalTree,
    pub(super) writes: &'a Cell<u64>,
}

type TxTreeResult = Result<Option<IVec>, UnabortableTransactionError>;

impl TxTree<'_> {
    pub(super) fn get(&self, key: impl AsRef<[u8]>) -> TxTreeResult {
        self.tree.get(key)
    }

    pub(super) fn insert(
        &self,
        key: impl AsRef<[u8]> + Into<IVec>,
        value: impl Into<IVec>,
    ) -> TxTreeResult {
        self.writes.set(self.writes.get() + 1);
        self.tree.insert(key, value)
    }

    pub(super) fn remove(&self, key: impl AsRef<[u8]> + Into<IVec>) -> TxTreeResult {
        self.writes.set(self.writes.get() + 1);
        self.tree.remove(key)
    }

    /// The record at `key`, or `missing` when there is none.
    pub(super) fn record<T: Record>(
        &self,
        key: impl AsRef<[u8]>,
        missing: impl FnOnce() -> DomainError,
    ) -> TxResult<T> {
        found(self.get(key)?, missing).map_err(abort)
    }
}

pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// Ends a transaction without writing anything.
pub(super) fn abort(error: impl Into<StoreError>) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(error.into())
}

/// Ends a transaction because the request broke a rule of the service.
pub(super) fn reject(error: DomainError) -> ConflictableTransactionError<StoreError> {
    abort(error)
}

/// The record read from a tree, decoded; `missing` when there was none.
/// Every "get, decode, else not found" of the store, in or out of a
/// transaction, goes through here.
pub(super) fn found<T: Record>(
    bytes: Option<IVec>,
    missing: impl FnOnce() -> DomainError,
) -> Result<T, StoreError> {
    match bytes {
        Some(bytes) => decode(&bytes),
        None => Err(missing().into()),
    }
}

/// Every key of `tree` that starts with `prefix`. A scan: outside any
/// transaction (a transaction cannot scan).
pub(super) fn keys_with_prefix(tree: &sled::Tree, prefix: &[u8]) -> Result<Vec<IVec>, sled::Error> {
    tree.scan_prefix(prefix).keys().collect()
}
