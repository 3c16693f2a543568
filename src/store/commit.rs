//! Group commit: many writers, one durable flush.
//!
//! A write is durable once sled's flush *and* an fsync of sled's data file
//! (`<data dir>/db`, and any new blob file: see `files`) have run after it. On Linux sled 0.34.7's flush ends in
//! `sync_file_range`, which persists neither the file size nor the disk's
//! cache, so without the fsync a power cut can lose an acknowledged write.
//!
//! Writers do not flush. Each transaction bumps `written` after it commits;
//! a writer then asks for a flush covering `written` and awaits it. One
//! flusher thread reads `written` *before* it flushes, so every transaction
//! counted there is in sled's log buffers by then and the flush covers it;
//! writers that arrive during a flush are all covered by the next one.
//!
//! The flusher also keeps the store's write count (`keys::META_COMMIT_SEQ`,
//! see `files::WITNESS_FILE`): before each flush it stores the count of
//! writes it is about to cover. That key is written once per flush rather
//! than once per transaction, so it costs the writers nothing; it lands in
//! sled's log after every write it counts, so a log cut short before a
//! counted write also loses the count that named it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::files::{write_witness, DataFiles};
use super::keys;
use super::StoreError;

#[derive(Debug, Clone, Default)]
struct Durable {
    /// Every write numbered up to this one is on disk.
    upto: u64,
    /// The first storage failure (`GroupCommit::fail`); from then on nothing
    /// is acknowledged (after a failed fsync the kernel may have dropped the
    /// dirty pages, so retrying could report success for data that is gone).
    failure: Option<Arc<str>>,
    /// The store was closed: later writes are never flushed.
    closed: bool,
}

/// Where a storage failure happened, for `/metrics`
/// (`pod_identity_store_storage_failures_total{kind=...}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A write transaction's commit.
    Transaction,
    /// sled's flush of its log.
    Flush,
    /// The fsync of `db` or of a blob file.
    Fsync,
    /// The witness file (`files::WITNESS_FILE`).
    Witness,
    /// The token sweep's reads.
    Sweep,
    /// A read for a request.
    Read,
}

impl FailureKind {
    pub const ALL: [FailureKind; 6] = [
        FailureKind::Transaction,
        FailureKind::Flush,
        FailureKind::Fsync,
        FailureKind::Witness,
        FailureKind::Sweep,
        FailureKind::Read,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Transaction => "transaction",
            FailureKind::Flush => "flush",
            FailureKind::Fsync => "fsync",
            FailureKind::Witness => "witness",
            FailureKind::Sweep => "sweep",
            FailureKind::Read => "read",
        }
    }
}

#[derive(Default)]
struct Requests {
    /// The highest write number someone is waiting for.
    wanted: u64,
    stop: bool,
}

/// Counters for logs and metrics.
#[derive(Debug, Default)]
pub struct CommitStats {
    pub flushes: AtomicU64,
    pub writes_flushed: AtomicU64,
    /// Runs of the writer thread: a group of writes that shared one
    /// transaction, or a write that ran alone (`writer`).
    pub write_groups: AtomicU64,
}

/// The longest a flush waits for queued writes to join it (`GroupCommit::gather`).
const GATHER_WINDOW: Duration = Duration::from_millis(1);

/// The other half of the durability trace: a writer is about to be told
/// that everything up to `target` is durable (tested against the fsync lines).
fn log_acknowledgement(target: u64) {
    log::trace!(target: "pod_identity_store::durability", "acknowledging writes up to {target}");
}

/// The error of a write made after the store was closed.
fn closed() -> StoreError {
    StoreError::Internal("the store is closed".into())
}

/// Stores the write count the flush covers, then flushes sled's log.
fn flush(db: &sled::Db, meta: &sled::Tree, commit_seq: u64) -> sled::Result<()> {
    fail::fail_point!("store::flush", |_| Err(sled::Error::Io(
        super::files::injected_error()
    )));
    meta.insert(keys::META_COMMIT_SEQ, &commit_seq.to_be_bytes())?;
    db.flush().map(drop)
}

/// A job that will queue writes (`GroupCommit::writes_coming`).
pub struct WritesComing(Arc<GroupCommit>);

impl Drop for WritesComing {
    fn drop(&mut self) {
        self.0.coming.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A write transaction on its way (`GroupCommit::queue_write`).
pub struct QueuedWrite(Arc<GroupCommit>);

impl Drop for QueuedWrite {
    fn drop(&mut self) {
        let commit = &self.0;
        if commit.queued.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The last queued write is done; one that failed asks for no
            // flush, so wake a flusher that may be gathering for it.
            if let Ok(_requests) = commit.requests.lock() {
                commit.wake.notify_one();
            }
        }
    }
}

pub struct GroupCommit {
    /// The write count stored when the store opened: `written` counts on from it.
    base: u64,
    written: AtomicU64,
    /// Write transactions handed to the writer thread and not finished yet.
    queued: AtomicU64,
    /// Jobs that will queue writes between their reads (`writes_coming`).
    coming: AtomicU64,
    /// A sled flush is under way (`writes_in_flight`).
    flushing: AtomicBool,
    requests: Mutex<Requests>,
    wake: Condvar,
    durable: watch::Sender<Durable>,
    /// Storage failures met, by `FailureKind` (in the order of `FailureKind::ALL`).
    failures: [AtomicU64; FailureKind::ALL.len()],
    pub stats: CommitStats,
}

impl GroupCommit {
    /// Starts the flusher thread for `db`, whose data file lives in `dir`.
    pub fn start(
        db: sled::Db,
        meta: sled::Tree,
        dir: &Path,
    ) -> Result<(Arc<GroupCommit>, JoinHandle<()>), StoreError> {
        let files = DataFiles::open(dir)
            .map_err(|e| StoreError::io("open the store's data file", dir, e))?;
        let commit = Arc::new(GroupCommit {
            base: super::open::commit_seq(&meta)?,
            written: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            coming: AtomicU64::new(0),
            flushing: AtomicBool::new(false),
            requests: Mutex::new(Requests::default()),
            wake: Condvar::new(),
            durable: watch::Sender::new(Durable::default()),
            failures: Default::default(),
            stats: CommitStats::default(),
        });
        let flusher = Arc::clone(&commit);
        let handle = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || flusher.run(&db, &meta, files))
            .map_err(|e| StoreError::io("start the group-commit thread", dir, e))?;
        Ok((commit, handle))
    }

    /// Counts one committed transaction. Call after the transaction returned.
    pub fn note_write(&self) {
        self.written.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a write transaction handed to the writer thread; the flusher
    /// waits for it (`gather`). Counted until the returned guard drops, also
    /// when the transaction fails or panics.
    pub fn queue_write(self: &Arc<Self>) -> QueuedWrite {
        self.queued.fetch_add(1, Ordering::SeqCst);
        QueuedWrite(Arc::clone(self))
    }

    /// Resolves once every transaction that committed before this call is
    /// durable. Costs nothing when no write is pending.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let target = self.written.load(Ordering::SeqCst);
        let mut state = self.durable.subscribe();
        {
            let now = state.borrow();
            if let Some(failure) = &now.failure {
                return Err(StoreError::Unwritable(Arc::clone(failure)));
            }
            if now.closed {
                return Err(closed());
            }
            if now.upto >= target {
                log_acknowledgement(target);
                return Ok(());
            }
        }
        {
            let mut requests = self.requests.lock().expect("group-commit lock poisoned");
            if requests.wanted < target {
                requests.wanted = target;
                self.wake.notify_one();
            }
        }
        let state = state
            .wait_for(|d| d.upto >= target || d.failure.is_some() || d.closed)
            .await
            .map_err(|_| closed())?;
        if state.upto >= target {
            log_acknowledgement(target);
            return Ok(());
        }
        match &state.failure {
            Some(failure) => Err(StoreError::Unwritable(Arc::clone(failure))),
            None => Err(closed()),
        }
    }

    /// Moves the store to its failed state, once and for good: `cause` (the
    /// first one) is what `/readyz` and every refused write say from now on.
    /// Wakes every writer waiting for a flush, counts the failure by `kind`,
    /// and returns the failure that stands (an earlier one, if any).
    ///
    /// Sticky until the server restarts: after a failed flush or fsync,
    /// what sled holds in memory and what reached the disk may differ, and
    /// sled 0.34 offers no way to find out which, so no later flush could be
    /// trusted to cover the writes before it.
    pub fn fail(&self, kind: FailureKind, cause: &str) -> Arc<str> {
        let index = FailureKind::ALL
            .iter()
            .position(|k| *k == kind)
            .expect("every kind is listed");
        self.failures[index].fetch_add(1, Ordering::Relaxed);
        let mut first = false;
        self.durable.send_modify(|d| {
            if d.failure.is_none() {
                d.failure = Some(cause.into());
                first = true;
            }
        });
        if first {
            log::error!(
                "storage failure ({}): {cause}; the store accepts no writes until the server is \
                 restarted (every write acknowledged before is on disk)",
                kind.name()
            );
        } else {
            log::warn!("another storage failure ({}): {cause}", kind.name());
        }
        self.failure().expect("just set")
    }

    /// The failure that stopped the writes, if one did.
    pub fn failure(&self) -> Option<Arc<str>> {
        self.durable.borrow().failure.clone()
    }

    /// Resolves once the store has failed (`fail`); never, while it is healthy.
    pub async fn failed(&self) -> Arc<str> {
        let mut state = self.durable.subscribe();
        let failure = match state.wait_for(|d| d.failure.is_some()).await {
            Ok(d) => d.failure.clone(),
            Err(_) => None,
        };
        match failure {
            Some(failure) => failure,
            // The sender lives as long as `self`.
            None => std::future::pending().await,
        }
    }

    /// Storage failures met so far, by kind.
    pub fn failures(&self) -> Vec<(&'static str, u64)> {
        FailureKind::ALL
            .iter()
            .zip(&self.failures)
            .map(|(kind, count)| (kind.name(), count.load(Ordering::Relaxed)))
            .collect()
    }

    /// Resolves once a flush that *started after this call* has finished.
    ///
    /// It covers every transaction committed before the call, also one whose
    /// writer has not counted it yet (a writer counts after its transaction
    /// returns). Counting one write of our own forces such a flush: the
    /// flusher reads the count before it flushes. The stats count it too.
    pub async fn covering_flush(&self) -> Result<(), StoreError> {
        self.note_write();
        self.durable().await
    }

    /// Whether a write is queued at the writer thread or running, a job
    /// that queues writes by turns is under way (`writes_coming`), or a sled
    /// flush is under way.
    ///
    /// sled's flush holds its store-wide lock as a reader until the disk has
    /// the log (`sync_file_range`), a transaction waits for it as a writer,
    /// and a reader that comes while a writer waits waits too (the lock is
    /// fair). So while this is true, a lookup can wait for the disk; while it
    /// is false, it waits at most for sled's own flush thread (log cleaning,
    /// `store.segment_cleaning_interval_ms`), which takes the lock as a
    /// reader too and which this does not see, or for a write queued just
    /// after the look (`Store::lookup`).
    pub fn writes_in_flight(&self) -> bool {
        self.queued.load(Ordering::SeqCst) > 0
            || self.coming.load(Ordering::SeqCst) > 0
            || self.flushing.load(Ordering::SeqCst)
    }

    /// Counts a job that reads and queues writes by turns (the token sweep)
    /// as a write in flight for as long as the returned guard lives, also
    /// while it reads.
    ///
    /// A lookup that started on an HTTP worker while nothing was in flight
    /// can still meet a transaction queued a moment later, and then waits
    /// for it. For the sweep's removals, which come one after another, that
    /// moment would come with every batch; counted from the read before its
    /// first removal, the sweep leaves no such gap. The flusher does not
    /// wait for these (unlike `queue_write`): each write the job queues is
    /// counted on its own.
    pub fn writes_coming(self: &Arc<Self>) -> WritesComing {
        self.coming.fetch_add(1, Ordering::SeqCst);
        WritesComing(Arc::clone(self))
    }

    /// Write transactions handed to the writer thread and not finished yet.
    #[cfg(test)]
    pub fn queued_writes(&self) -> u64 {
        self.queued.load(Ordering::SeqCst)
    }

    /// Whether writes can still be made durable (no storage failure yet).
    pub fn is_healthy(&self) -> bool {
        self.durable.borrow().failure.is_none()
    }

    /// Flushes what is pending and stops the flusher thread.
    pub fn stop(&self) {
        self.requests
            .lock()
            .expect("group-commit lock poisoned")
            .stop = true;
        self.wake.notify_one();
    }

    /// Lets the writes already handed to the writer thread join this flush.
    ///
    /// Each flush costs CPU of its own, beyond the writes it covers (sled
    /// seals a log buffer and hands it to its I/O threads, which wake up,
    /// then the fsync). When many clients write at once, some writes are
    /// always queued at the writer thread, microseconds from committing:
    /// waiting for them (at most `GATHER_WINDOW`) makes fewer, larger
    /// flushes. When every writer is already waiting for this flush (one
    /// client, or a few), nothing is queued and the flush starts at once.
    fn gather<'a>(&self, mut requests: MutexGuard<'a, Requests>) -> MutexGuard<'a, Requests> {
        let deadline = Instant::now() + GATHER_WINDOW;
        loop {
            let now = Instant::now();
            if requests.stop || self.queued.load(Ordering::SeqCst) == 0 || now >= deadline {
                return requests;
            }
            // A write that commits asks for durability, which wakes us.
            requests = self
                .wake
                .wait_timeout(requests, deadline - now)
                .expect("group-commit lock poisoned")
                .0;
        }
    }

    fn run(&self, db: &sled::Db, meta: &sled::Tree, mut files: DataFiles) {
        let mut witnessed = Instant::now();
        loop {
            let stop = {
                let mut requests = self.requests.lock().expect("group-commit lock poisoned");
                while requests.wanted <= self.durable.borrow().upto && !requests.stop {
                    requests = self
                        .wake
                        .wait(requests)
                        .expect("group-commit lock poisoned");
                }
                self.gather(requests).stop
            };
            // Read before flushing: every write counted here is covered.
            let target = self.written.load(Ordering::SeqCst);
            let commit_seq = self.base + target;
            let previous = self.durable.borrow().upto;
            let started = Instant::now();
            self.flushing.store(true, Ordering::SeqCst);
            let flushed = flush(db, meta, commit_seq);
            self.flushing.store(false, Ordering::SeqCst);
            let result = flushed
                .map_err(|e| {
                    (
                        FailureKind::Flush,
                        format!(
                            "flushing the store failed: {}",
                            super::error::engine_cause(&e)
                        ),
                    )
                })
                .and_then(|()| {
                    files.sync().map_err(|e| {
                        (
                            FailureKind::Fsync,
                            format!("fsyncing the store's files failed: {e}"),
                        )
                    })
                });
            match result {
                Ok(()) => {
                    self.stats.flushes.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .writes_flushed
                        .fetch_add(target - previous, Ordering::Relaxed);
                    log::trace!(
                        target: "pod_identity_store::durability",
                        "fsynced the data file; durable up to write {target}"
                    );
                    log::trace!(
                        "flushed {} writes in {:?}",
                        target - previous,
                        started.elapsed()
                    );
                    self.durable.send_modify(|d| d.upto = d.upto.max(target));
                    // After the writers are released: the witness costs them nothing.
                    if witnessed.elapsed() >= Duration::from_secs(1) {
                        witnessed = Instant::now();
                        if let Err(e) = write_witness(&files.dir, commit_seq) {
                            self.fail(
                                FailureKind::Witness,
                                &format!("writing the durable write count failed: {e}"),
                            );
                            return;
                        }
                    }
                }
                Err((kind, cause)) => {
                    self.fail(kind, &cause);
                    return;
                }
            }
            if stop {
                // Writes made after the stop are never flushed: their writers
                // hear so instead of waiting for ever.
                self.durable.send_modify(|d| d.closed = true);
                return;
            }
        }
    }
}
