//! The durable store: the only module that talks to sled.
//!
//! Layout (names in `keys`): one tree per kind of record, all keyed so that a
//! cluster's records form one key range; the bytes of each record are the
//! store's own (`records`). Every change that touches several keys is made
//! in one sled transaction over all trees, run by the one writer thread
//! (which writes queued together may share: `writer`), and every write is
//! answered only after the group commit (`commit`) made it durable.
//!
//! One file per resource (`clusters`, `associations`, `tags`, `tokens`, with
//! `idempotency` for client request tokens): each holds the async methods of
//! `Store` that the API calls and, beside them, the bodies they run. A body
//! that runs in a transaction is named `*_tx`, one that reads outside any
//! transaction `read_*`, so that no body shares the name of the method that
//! queues it.
//!
//! # Limits
//! - sled 0.34.7 runs transactions one at a time (a global lock), and a
//!   transaction closure cannot read a tree outside the transaction without
//!   deadlocking, so scans happen before a transaction and are re-checked in it.
//! - A reader can see a write a moment before it is durable (while its
//!   writer waits for the flush); the writer's client hears success only after.
//! - sled 0.34 has no snapshots and its iterators see writes made while they
//!   run, so a consistent copy of several trees (the export) stops every
//!   write transaction for as long as it copies them (`Inner::writers`).
//! - The first storage failure stops every write until the server restarts
//!   (`GroupCommit::fail`): a full disk does not recover when space comes
//!   back. A flush that sled never finishes, without an error, is not
//!   noticed: its writers wait for it.

mod associations;
mod check;
mod clusters;
mod commit;
mod eks_auth;
mod error;
mod files;
#[cfg(test)]
mod golden;
mod idempotency;
pub mod keys;
pub mod migrate;
mod open;
pub mod records;
mod snapshot;
mod tags;
mod tokens;
mod tx;
mod writer;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

pub use associations::AssociationFilter;
pub use check::{check, CheckReport};
pub use eks_auth::PodIdentityTarget;
pub use error::StoreError;
pub use open::{stored_compressed, write_recovery_snapshot};
pub use snapshot::{contents, ImportSource, Imported, Snapshot, StoreContents};
pub use tokens::SweepCursor;

use crate::domain::{AwsIdentity, ClusterStatus};
use commit::{FailureKind, GroupCommit};
use records::{decode, ClusterRecord};
use tx::{Tx, TxResult};
use writer::{Writer, Writing};

/// The rules the store applies inside its transactions.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub identity: AwsIdentity,
    pub writable_states: Vec<ClusterStatus>,
    pub token_ttl_seconds: u64,
    pub activation_delay_ms: u64,
    pub associations_per_cluster: u64,
    /// Bytes of sled's page cache (`store.cache_capacity_bytes`).
    pub cache_capacity_bytes: u64,
    /// Whether a store created by `Store::open` compresses its pages (`store.compression`).
    pub compression: bool,
    /// How often sled's flush thread cleans its log in a store opened by
    /// `Store::open` (the server, `migrate`), in milliseconds; 0: never
    /// (`store.segment_cleaning_interval_ms`).
    pub segment_cleaning_interval_ms: u64,
}

#[cfg(test)]
impl StoreSettings {
    /// The server's default rules, for the store's own tests.
    pub(crate) fn for_tests() -> Self {
        StoreSettings {
            identity: AwsIdentity::new("us-east-1", "123456789012"),
            writable_states: vec![ClusterStatus::Active, ClusterStatus::Updating],
            token_ttl_seconds: 86_400,
            activation_delay_ms: 0,
            associations_per_cluster: 5_000,
            cache_capacity_bytes: 64 << 20,
            compression: false,
            segment_cleaning_interval_ms: 0,
        }
    }
}

/// See `Store::health`.
pub struct Health(Arc<GroupCommit>);

impl Health {
    pub fn is_writable(&self) -> bool {
        self.0.is_healthy()
    }
}

/// Whether `error` is the storage engine failing (its I/O, damage it
/// found), rather than a refused request or a bug of ours.
fn is_storage_failure(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Engine(
            sled::Error::Io(_) | sled::Error::Corruption { .. } | sled::Error::ReportableBug(_)
        )
    )
}

/// A handle to the open store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Trees {
    meta: sled::Tree,
    clusters: sled::Tree,
    associations: sled::Tree,
    index: sled::Tree,
    tokens: sled::Tree,
    issuers: sled::Tree,
    /// Not in the transactions: each credential is one independent key.
    credentials: sled::Tree,
}

impl Trees {
    fn open(db: &sled::Db) -> Result<Trees, StoreError> {
        Ok(Trees {
            meta: db.open_tree(keys::TREE_META)?,
            clusters: db.open_tree(keys::TREE_CLUSTERS)?,
            associations: db.open_tree(keys::TREE_ASSOCIATIONS)?,
            index: db.open_tree(keys::TREE_ASSOCIATION_INDEX)?,
            tokens: db.open_tree(keys::TREE_TOKENS)?,
            issuers: db.open_tree(keys::TREE_ISSUERS)?,
            credentials: db.open_tree(keys::TREE_CREDENTIALS)?,
        })
    }
}

struct Inner {
    dir: PathBuf,
    db: sled::Db,
    trees: Trees,
    commit: Arc<GroupCommit>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    /// Runs every write transaction.
    writer: Writer,
    settings: StoreSettings,
    page_token_secret: [u8; 16],
    /// Every write transaction holds this shared (`writer::transact`); a
    /// snapshot holds it exclusively while it copies the trees, so that it
    /// sees the store between two transactions and never in the middle of a
    /// scan that a transaction changed under it.
    writers: Arc<RwLock<()>>,
}

/// How long `Store::close` waits for the group-commit thread of a failed store.
const CLOSE_WAIT_AFTER_FAILURE: std::time::Duration = std::time::Duration::from_secs(1);

/// The longest `/metrics` waits for the store's contents.
const STATS_READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// What a read of `kind` was doing, for the failure's text.
fn kind_action(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Sweep => "reading the client request tokens to sweep",
        _ => "reading the store",
    }
}

/// One page of a listing and whether more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    pub more: bool,
}

/// What the store holds, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub clusters: u64,
    pub associations: u64,
    pub tokens: u64,
    pub flushes: u64,
    pub writes_flushed: u64,
    pub write_groups: u64,
    /// Storage failures met since the server started, by kind (`FailureKind`).
    pub storage_failures: Vec<(&'static str, u64)>,
    /// Whether `clusters`, `associations` and `tokens` were read: false when
    /// the store failed to read them (the counters above are still true).
    pub contents_read: bool,
}

impl Store {
    /// A secret of this store, to sign the `nextToken`s it hands out, so a
    /// token that it did not issue is recognised (and tokens stay valid
    /// across restarts).
    pub fn page_token_secret(&self) -> [u8; 16] {
        self.inner.page_token_secret
    }

    /// Whether the store accepts writes: false once it met a storage failure.
    pub fn is_writable(&self) -> bool {
        self.inner.commit.is_healthy()
    }

    /// The storage failure that stopped the writes, if one did: what
    /// `/readyz` and every refused write say.
    pub fn failure(&self) -> Option<Arc<str>> {
        self.inner.commit.failure()
    }

    /// Tells whether the store accepts writes, like `is_writable`, without
    /// keeping the store open: for a thread that outlives the server (the
    /// systemd watchdog), which must not hold sled's files after `close`.
    pub fn health(&self) -> Health {
        Health(Arc::clone(&self.inner.commit))
    }

    /// Makes everything durable and stops the group commit. Later writes fail.
    ///
    /// On a store that failed (`failure`) it flushes nothing more and waits
    /// for the group-commit thread only briefly (it may be held up inside
    /// sled by the failing disk), and answers the failure: every write
    /// acknowledged before it is on disk, nothing after it was acknowledged.
    pub fn close(&self) -> Result<(), StoreError> {
        self.inner.commit.stop();
        let flusher = self
            .inner
            .flusher
            .lock()
            .expect("flusher lock poisoned")
            .take();
        if let Some(flusher) = flusher {
            let commit = &self.inner.commit;
            let started = std::time::Instant::now();
            let joined = crate::failure::join_or_give_up(flusher, || {
                !commit.is_healthy() && started.elapsed() >= CLOSE_WAIT_AFTER_FAILURE
            });
            if joined == Some(false) {
                return Err(StoreError::Internal(
                    "the group-commit thread panicked".into(),
                ));
            }
        }
        if let Some(failure) = self.failure() {
            return Err(StoreError::Unwritable(failure));
        }
        open::sync_now(&self.inner.db, &self.inner.dir)?;
        let seq = open::commit_seq(&self.inner.trees.meta)?;
        files::write_witness(&self.inner.dir, seq)
            .map_err(|e| StoreError::io("record the durable write count", &self.inner.dir, e))
    }

    /// Moves the store to its failed state when `result` is a storage
    /// failure met by a read of `kind`; returns `result`.
    fn observe<T>(
        &self,
        kind: FailureKind,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if let Err(e) = &result {
            if let (true, StoreError::Engine(cause)) = (is_storage_failure(e), e) {
                let cause = error::engine_cause(cause);
                self.inner
                    .commit
                    .fail(kind, &format!("{} failed: {cause}", kind_action(kind)));
            }
        }
        result
    }

    /// What the store holds. Sums the clusters' association counters (one
    /// record per cluster) and walks the token tree, so it costs more the
    /// more tokens are held: for a scrape now and then, not the hot path.
    ///
    /// Always answers: when the store cannot read its records, or takes
    /// longer than `STATS_READ_LIMIT` (a failing disk), the counters come
    /// without them (`contents_read` false).
    pub async fn stats(&self) -> StoreStats {
        let read = self.read(|s| {
            let mut contents = (0, 0, 0);
            for entry in s.trees.clusters.iter() {
                let (_, bytes) = entry?;
                contents.0 += 1;
                contents.1 += decode::<ClusterRecord>(&bytes)?.association_count;
            }
            contents.2 = s.trees.tokens.len() as u64;
            Ok(contents)
        });
        let counters = &self.inner.commit.stats;
        let mut stats = StoreStats {
            flushes: counters.flushes.load(Ordering::Relaxed),
            writes_flushed: counters.writes_flushed.load(Ordering::Relaxed),
            write_groups: counters.write_groups.load(Ordering::Relaxed),
            ..StoreStats::default()
        };
        match tokio::time::timeout(STATS_READ_LIMIT, read).await {
            Ok(Ok((clusters, associations, tokens))) => {
                stats.clusters = clusters;
                stats.associations = associations;
                stats.tokens = tokens;
                stats.contents_read = true;
            }
            Ok(Err(e)) => log::warn!(
                "/metrics without the store's contents: {}",
                crate::failure::chain(&e)
            ),
            Err(_) => log::warn!(
                "/metrics without the store's contents: reading them took over {STATS_READ_LIMIT:?}"
            ),
        }
        stats.storage_failures = self.inner.commit.failures();
        stats
    }

    /// Runs a lookup of a few keys: on the caller's thread (the HTTP worker)
    /// when no write is in flight, otherwise like `read`.
    ///
    /// sled answers a lookup from its page cache, or on a miss reads the
    /// page's fragments with `pread`. With no write in flight it waits for
    /// nothing else: handing it to a thread and waking the worker afterwards
    /// would cost more than the lookup itself. While a write is in flight it
    /// could wait for a flush to reach the disk
    /// (`GroupCommit::writes_in_flight`), which must not stall an HTTP
    /// worker and every connection it serves. Every write transaction runs
    /// on the writer thread and is counted in flight from before it is
    /// queued until it is done (`writer`), so "no write in flight" holds
    /// for every write there is. A panic in sled comes back as an error
    /// either way.
    ///
    /// # Limits
    /// The look is made once, before the lookup: a write queued a moment
    /// later can still hold up a lookup that already started on the worker.
    /// The token sweep, whose removals come one after another, counts as in
    /// flight from the read of a batch it removes from through the removal
    /// (`GroupCommit::writes_coming`), so that such a moment does not come
    /// with each of its batches.
    async fn lookup<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        fail::fail_point!("store::read", |_| self.observe(
            FailureKind::Read,
            Err(StoreError::Engine(sled::Error::Io(
                files::injected_read_error()
            )))
        ));
        if self.inner.commit.writes_in_flight() {
            return self.read(f).await;
        }
        let result = catch_unwind(AssertUnwindSafe(|| f(&self.inner)))
            .unwrap_or_else(|_| Err(StoreError::Internal("a store lookup panicked".into())));
        self.observe(FailureKind::Read, result)
    }

    /// Runs a read that scans off the async executor, on tokio's blocking
    /// pool: a page of a list or an export reads many pages and can take
    /// milliseconds, which the HTTP worker's other connections should not
    /// wait for.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let result = tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::Internal(format!("store task failed: {e}")))
            .and_then(|result| result);
        self.observe(FailureKind::Read, result)
    }

    /// Counts a write about to be queued at the writer thread, and the
    /// store for its job; refused on a failed store, which queues no write
    /// (none could be acknowledged).
    fn queue_write(&self) -> Result<(Arc<Inner>, commit::QueuedWrite), StoreError> {
        if let Some(failure) = self.failure() {
            return Err(StoreError::Unwritable(failure));
        }
        Ok((Arc::clone(&self.inner), self.inner.commit.queue_write()))
    }

    /// Runs a write alone on the writer thread (it scans, or takes several
    /// transactions), then waits until a group commit made it durable. Only
    /// then may the caller answer.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &Writing<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (inner, queued) = self.queue_write()?;
        let value = self
            .inner
            .writer
            .run(queued, move |writing| f(&inner, writing))
            .await?;
        self.inner.commit.durable().await?;
        Ok(value)
    }

    /// Like `write`, for the store's upkeep, whose caller is not async and
    /// does not wait for durability (the sweep, the deletions finished at
    /// open, the import): blocks its thread until the writer thread ran `f`.
    /// Its writes count in no write metric and not in the store's write
    /// count (`writer::Work::Upkeep`).
    fn write_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &Writing<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (inner, queued) = self.queue_write()?;
        self.inner
            .writer
            .run_blocking(queued, move |writing| f(&inner, writing))
    }

    /// Like `write`, for a write that is one transaction: its `body` runs
    /// inside a transaction shared with the other such writes queued at the
    /// writer thread (`writer`), so that they pay for one commit together.
    /// The body may run more than once, and must not scan.
    async fn write_grouped<T, F>(&self, body: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Inner, &Tx<'_>) -> TxResult<T> + Send + 'static,
    {
        let (inner, queued) = self.queue_write()?;
        let value = self
            .inner
            .writer
            .run_grouped(queued, move |tx| body(&inner, tx))
            .await?;
        self.inner.commit.durable().await?;
        Ok(value)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use super::*;
    use crate::domain::ClusterName;

    /// A store in `dir` with the default settings.
    pub(super) fn open(dir: &Path) -> Store {
        Store::open(dir, StoreSettings::for_tests()).unwrap()
    }

    /// A single-threaded runtime with timers, for the store's async calls.
    pub(super) fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn thread_of_lookup(store: &Store) -> std::thread::ThreadId {
        runtime()
            .block_on(store.lookup(|_| Ok(std::thread::current().id())))
            .unwrap()
    }

    #[test]
    fn a_lookup_runs_on_the_callers_thread_unless_a_write_is_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let here = std::thread::current().id();
        assert_eq!(thread_of_lookup(&store), here, "no write in flight");

        let write = store.inner.commit.queue_write();
        assert_ne!(thread_of_lookup(&store), here, "a write queued");
        drop(write);
        assert_eq!(thread_of_lookup(&store), here, "the write is done");
        store.close().unwrap();
    }

    #[test]
    fn a_lookup_that_panics_is_an_error_and_the_store_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let runtime = runtime();
        let failed =
            runtime.block_on(store.lookup(|_| -> Result<(), StoreError> { panic!("sled broke") }));
        assert!(matches!(&failed, Err(StoreError::Internal(m)) if m.contains("panicked")));
        let name = ClusterName::parse("name", "after").unwrap();
        let missing = runtime.block_on(store.cluster(name));
        assert!(
            matches!(missing, Err(StoreError::Rejected(_))),
            "{missing:?}"
        );
        store.close().unwrap();
    }
}
