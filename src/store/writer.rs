//! The writer: one thread that runs every write transaction.
//!
//! sled 0.34 runs transactions one at a time anyway (a global lock), so
//! handing them all to one thread loses no parallelism. It spares each
//! waiting write a thread of tokio's blocking pool and the contention of
//! dozens of those threads on sled's lock.
//!
//! It is the only way to run a transaction: `transact` is private to this
//! module, and a job that runs alone gets it through a `Writing` that only
//! this thread makes. Every job is queued with a `QueuedWrite`, held until
//! the job is done, so while any transaction waits or runs,
//! `GroupCommit::writes_in_flight` is true: that is what lets a lookup run
//! on an HTTP worker when it is false (`Store::lookup`). The request writes,
//! DeleteCluster's two steps, the token sweep, the deletions finished at
//! open and the import all come this way. Only the schema steps at open run
//! their transactions elsewhere (`migrate`), before this thread starts and
//! before anything can read the store.
//!
//! # Grouped writes
//! Most writes are one transaction each (`Store::write_grouped`). The thread
//! takes every such write queued at the moment, up to `MAX_GROUP`, and runs
//! their bodies one after another inside *one* sled transaction. A sled
//! transaction has a fixed cost well above that of the keys it writes (at
//! its commit sled seals and writes out its log buffer twice, waking its
//! I/O threads each time), so under load the writes share it.
//!
//! Each write still gets its own answer, and a write that is refused changes
//! nothing:
//! - A body refused before it wrote a key (the usual case: the checks come
//!   first) is simply left out; the others go on in the same transaction.
//! - A body refused after it wrote, or that panicked, aborts the transaction,
//!   which then runs again without it. The writes before it see the same
//!   store as before, so they get the same answers.
//!
//! A body sees the writes of the bodies before it in the group (sled's
//! transactions read their own writes), just as if they had run one by one.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, PoisonError, RwLock};

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::commit::{FailureKind, GroupCommit, QueuedWrite};
use super::tx::{Tx, TxResult, TxTree};
use super::{StoreError, Trees};

/// How often a blocked caller of `run_blocking` looks whether the store failed.
const FAILURE_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// The most writes that share one transaction. A larger group makes its
/// first write wait longer for the last one's body.
const MAX_GROUP: usize = 64;

enum Job {
    /// Runs on its own (it scans, or takes several transactions).
    Alone(Box<dyn FnOnce(&Writing<'_>) + Send>, Work),
    Grouped(Box<dyn Grouped>),
}

/// Whose work a job is, for the write counts (`CommitStats`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Work {
    /// A client's write: counted as a write and a write group, and in the
    /// store's write count, which its durability waits for.
    Client,
    /// The store's own upkeep (the sweep, the deletions finished at open,
    /// the import): counted nowhere, so that the write metrics say what the
    /// clients cost. Nothing waits for its durability; a job that needs the
    /// store's write count to cover it counts itself (the import).
    Upkeep,
}

/// What a job that runs alone may do: run transactions, one after another,
/// and (the import) write to the trees directly. Made only by the writer
/// thread, for the job it runs.
pub(super) struct Writing<'a> {
    trees: &'a Trees,
    writers: &'a RwLock<()>,
    commit: &'a GroupCommit,
}

impl Writing<'_> {
    /// One transaction over every data tree.
    pub(super) fn transact<T>(
        &self,
        body: impl Fn(&Tx<'_>) -> TxResult<T>,
    ) -> Result<T, StoreError> {
        if let Some(failure) = self.commit.failure() {
            return Err(StoreError::Unwritable(failure));
        }
        transact(self.trees, self.writers, body).map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => transaction_failed(self.commit, &e),
        })
    }

    /// The trees, for a job that writes without a transaction (the import).
    pub(super) fn trees(&self) -> &Trees {
        self.trees
    }
}

/// One transaction over every data tree, holding `writers` shared (see
/// `Inner::writers`). Never nested: a second shared lock in the same thread
/// can queue behind a waiting snapshot that waits for the first one.
fn transact<T, E>(
    trees: &Trees,
    writers: &RwLock<()>,
    body: impl Fn(&Tx<'_>) -> Result<T, ConflictableTransactionError<E>>,
) -> Result<T, TransactionError<E>> {
    fail::fail_point!("store::transaction", |_| Err(TransactionError::Storage(
        sled::Error::Io(super::files::injected_error())
    )));
    // The guard protects no data, so a panic elsewhere leaves nothing to distrust.
    let _writing = writers.read().unwrap_or_else(PoisonError::into_inner);
    let t = trees;
    (
        &t.clusters,
        &t.associations,
        &t.index,
        &t.tokens,
        &t.issuers,
    )
        .transaction(|(clusters, associations, index, tokens, issuers)| {
            let writes = Cell::new(0);
            let tree = |tree| TxTree {
                tree,
                writes: &writes,
            };
            body(&Tx {
                clusters: tree(clusters),
                associations: tree(associations),
                index: tree(index),
                tokens: tree(tokens),
                issuers: tree(issuers),
                writes: &writes,
            })
        })
}

pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
    /// Counts every client write that succeeded, before its caller hears of it.
    commit: Arc<GroupCommit>,
}

impl Writer {
    /// Starts the thread; it ends when the `Writer` is dropped and its queue
    /// is empty. Grouped writes run over `trees`, holding `writers` shared
    /// like every transaction. Every client write is counted in `commit`
    /// once it succeeded, before its caller hears of it (`Work`).
    pub(super) fn start(
        trees: Trees,
        writers: Arc<RwLock<()>>,
        commit: Arc<GroupCommit>,
    ) -> std::io::Result<Writer> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let counter = Arc::clone(&commit);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                let mut next = None;
                while let Some(job) = next.take().or_else(|| jobs.recv().ok()) {
                    match job {
                        Job::Alone(job, work) => {
                            let writing = Writing {
                                trees: &trees,
                                writers: &writers,
                                commit: &commit,
                            };
                            // A job that panics has dropped its answer channel, so
                            // its caller gets an error; the jobs after it still run.
                            if catch_unwind(AssertUnwindSafe(|| job(&writing))).is_err() {
                                log::error!("a write transaction panicked; the write was not made");
                            }
                            if work == Work::Client {
                                commit.stats.write_groups.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Job::Grouped(first) => {
                            let mut group = vec![first];
                            next = gather(&jobs, &mut group);
                            // Each body runs under its own `catch_unwind`; this one
                            // is for sled's commit. The group's callers then get an
                            // error (their answer channels are dropped); later writes
                            // still run.
                            let run = || run_group(&trees, &writers, &commit, group);
                            if catch_unwind(AssertUnwindSafe(run)).is_err() {
                                log::error!(
                                    "committing a group of writes panicked; none of them was made"
                                );
                            }
                            commit.stats.write_groups.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })?;
        Ok(Writer {
            queue,
            commit: counter,
        })
    }

    /// Runs `job` alone on the writer thread and returns its result. `queued`
    /// is released after the write was counted in the group commit.
    pub(super) async fn run<T, F>(&self, queued: QueuedWrite, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Writing<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.send_alone(queued, Work::Client, job, move |result| {
            // The caller may have gone (its client hung up): the write stands.
            let _ = answer.send(result);
        })?;
        self.answer(answered).await
    }

    /// The answer of a queued write, or the store's failure as soon as it
    /// fails: a writer thread held up inside sled by a failing disk must not
    /// hold up the client too.
    async fn answer<T>(
        &self,
        answered: tokio::sync::oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::select! {
            biased;
            answer = answered => answer.map_err(|_| failed_unexpectedly())?,
            failure = self.commit.failed() => Err(StoreError::Unwritable(failure)),
        }
    }

    /// Like `run`, for the store's upkeep, whose callers are not async (the
    /// sweep's thread, the store's opening, an import): blocks its thread
    /// until the job is done. Counted as no write (`Work::Upkeep`).
    pub(super) fn run_blocking<T, F>(&self, queued: QueuedWrite, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Writing<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = mpsc::sync_channel(1);
        self.send_alone(queued, Work::Upkeep, job, move |result| {
            let _ = answer.send(result);
        })?;
        // Like `answer`, for a thread: looks at the store's health now and then.
        loop {
            match answered.recv_timeout(FAILURE_POLL) {
                Ok(answer) => return answer,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(failed_unexpectedly()),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(failure) = self.commit.failure() {
                        return Err(StoreError::Unwritable(failure));
                    }
                }
            }
        }
    }

    fn send_alone<T, F>(
        &self,
        queued: QueuedWrite,
        work: Work,
        job: F,
        answer: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError>
    where
        F: FnOnce(&Writing<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let commit = Arc::clone(&self.commit);
        let job = move |writing: &Writing<'_>| {
            let result = job(writing);
            if result.is_ok() && work == Work::Client {
                commit.note_write();
            }
            // No longer in flight once counted, and before the caller hears
            // of it: a lookup it makes next runs as after any write.
            drop(queued);
            answer(result);
        };
        self.send(Job::Alone(Box::new(job), work))
    }

    /// Runs `body` inside a transaction shared with other grouped writes,
    /// and returns its result once that transaction committed. `queued` is
    /// released after the write was counted in the group commit.
    pub(super) async fn run_grouped<T, F>(
        &self,
        queued: QueuedWrite,
        body: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Tx<'_>) -> TxResult<T> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.send(Job::Grouped(Box::new(GroupedWrite {
            body,
            outcome: RefCell::new(None),
            answer,
            _queued: queued,
        })))?;
        self.answer(answered).await
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        self.queue
            .send(job)
            .map_err(|_| StoreError::Internal("the store's writer thread has stopped".into()))
    }
}

/// Moves the store to its failed state after a transaction met `error`;
/// the error to answer the write with.
fn transaction_failed(commit: &GroupCommit, error: &sled::Error) -> StoreError {
    StoreError::Unwritable(commit.fail(
        FailureKind::Transaction,
        &format!(
            "a write transaction failed: {}",
            super::error::engine_cause(error)
        ),
    ))
}

/// The answer of a write whose job panicked or was dropped.
fn failed_unexpectedly() -> StoreError {
    StoreError::Internal("a write transaction failed unexpectedly".into())
}

/// Adds the grouped writes queued behind the first one to `group`, up to
/// `MAX_GROUP`, and returns the first job that must run alone, if any. It
/// does not wait for more: a client writing alone is never held back.
fn gather(jobs: &mpsc::Receiver<Job>, group: &mut Vec<Box<dyn Grouped>>) -> Option<Job> {
    while group.len() < MAX_GROUP {
        match jobs.try_recv() {
            Ok(Job::Grouped(job)) => group.push(job),
            Ok(alone) => return Some(alone),
            Err(_) => return None,
        }
    }
    None
}

/// How a body's run ended when it did not succeed: `Abort(())` when it was
/// refused (its error is its answer), else sled's `Conflict` (run the
/// transaction again) or `Storage` (it failed).
type Refusal = ConflictableTransactionError<()>;

/// A grouped write, whatever its result type.
trait Grouped: Send {
    /// Runs the body in `tx` and keeps its result for `answer`.
    fn run(&self, tx: &Tx<'_>) -> Result<(), Refusal>;
    /// Sets the answer to `error` (the body panicked, or the transaction failed).
    fn fail(&self, error: StoreError);
    /// Whether the kept result is a success: the write is in the committed transaction.
    fn succeeded(&self) -> bool;
    /// Sends the kept result to the caller.
    fn answer(self: Box<Self>);
}

struct GroupedWrite<T, F> {
    body: F,
    /// The result of the body's latest run: sled may run a transaction more
    /// than once, and a group runs again without a write that aborted it.
    outcome: RefCell<Option<Result<T, StoreError>>>,
    answer: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
    _queued: QueuedWrite,
}

impl<T, F> Grouped for GroupedWrite<T, F>
where
    T: Send,
    F: Fn(&Tx<'_>) -> TxResult<T> + Send,
{
    fn run(&self, tx: &Tx<'_>) -> Result<(), Refusal> {
        let (outcome, ended) = match (self.body)(tx) {
            Ok(value) => (Ok(value), Ok(())),
            Err(ConflictableTransactionError::Abort(e)) => (Err(e), Err(Refusal::Abort(()))),
            Err(ConflictableTransactionError::Storage(e)) => return Err(Refusal::Storage(e)),
            Err(_) => return Err(Refusal::Conflict),
        };
        *self.outcome.borrow_mut() = Some(outcome);
        ended
    }

    fn fail(&self, error: StoreError) {
        *self.outcome.borrow_mut() = Some(Err(error));
    }

    fn succeeded(&self) -> bool {
        matches!(*self.outcome.borrow(), Some(Ok(_)))
    }

    fn answer(self: Box<Self>) {
        let GroupedWrite {
            outcome,
            answer,
            _queued: queued,
            ..
        } = *self;
        let outcome = outcome.into_inner().unwrap_or_else(|| {
            Err(StoreError::Internal(
                "a write was never run by its transaction".into(),
            ))
        });
        // Counted already (`run_group`); no longer in flight before the
        // caller hears of it.
        drop(queued);
        // The caller may have gone (its client hung up): the write stands.
        let _ = answer.send(outcome);
    }
}

/// Runs `group` in one transaction (see the module's docs), counts the
/// committed writes in `commit`, then answers every write.
fn run_group(
    trees: &Trees,
    writers: &RwLock<()>,
    commit: &GroupCommit,
    group: Vec<Box<dyn Grouped>>,
) {
    // A failed store runs no transaction: none could be made durable.
    if let Some(failure) = commit.failure() {
        for write in group {
            write.fail(StoreError::Unwritable(Arc::clone(&failure)));
            write.answer();
        }
        return;
    }
    let mut left_out = vec![false; group.len()];
    let committed = loop {
        if left_out.iter().all(|&out| out) {
            break Ok(());
        }
        let result = transact(trees, writers, |tx| {
            for (i, write) in group.iter().enumerate().filter(|(i, _)| !left_out[*i]) {
                let before = tx.writes();
                match catch_unwind(AssertUnwindSafe(|| write.run(tx))) {
                    Ok(Ok(())) => {}
                    // Refused before it wrote: the others go on without it.
                    Ok(Err(Refusal::Abort(()))) if tx.writes() == before => {}
                    // Refused after it wrote: run the group again without it.
                    Ok(Err(Refusal::Abort(()))) => {
                        return Err(ConflictableTransactionError::Abort(i))
                    }
                    Ok(Err(Refusal::Storage(e))) => {
                        return Err(ConflictableTransactionError::Storage(e))
                    }
                    Ok(Err(_)) => return Err(ConflictableTransactionError::Conflict),
                    Err(_) => {
                        log::error!("a write transaction panicked; the write was not made");
                        write.fail(failed_unexpectedly());
                        return Err(ConflictableTransactionError::Abort(i));
                    }
                }
            }
            Ok(())
        });
        match result {
            Ok(()) => break Ok(()),
            Err(TransactionError::Abort(i)) => left_out[i] = true,
            Err(TransactionError::Storage(e)) => break Err(transaction_failed(commit, &e)),
        }
    };
    for (write, left_out) in group.into_iter().zip(left_out) {
        match &committed {
            Err(StoreError::Unwritable(failure)) if !left_out => {
                write.fail(StoreError::Unwritable(Arc::clone(failure)))
            }
            Err(e) if !left_out => write.fail(StoreError::Internal(e.to_string())),
            _ if write.succeeded() => commit.note_write(),
            _ => {}
        }
        write.answer();
    }
}

#[cfg(test)]
mod tests;
