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
mod tests {
    use super::*;
    use crate::store::open::open_db;
    use crate::store::tx::abort;
    use tokio::sync::oneshot;

    struct Fixture {
        _dir: tempfile::TempDir,
        trees: Trees,
        writers: Arc<RwLock<()>>,
        commit: Arc<GroupCommit>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path(), 1 << 20, false).unwrap();
        let trees = Trees::open(&db).unwrap();
        let (commit, _flusher) = GroupCommit::start(db, trees.meta.clone(), dir.path()).unwrap();
        Fixture {
            _dir: dir,
            trees,
            writers: Arc::new(RwLock::new(())),
            commit,
        }
    }

    type Answer = oneshot::Receiver<Result<bool, StoreError>>;
    type Body = Box<dyn Fn(&Tx<'_>) -> TxResult<bool> + Send>;

    /// A grouped write whose body is `body`, and where its answer arrives.
    fn grouped(
        commit: &Arc<GroupCommit>,
        body: impl Fn(&Tx<'_>) -> TxResult<bool> + Send + 'static,
    ) -> (Box<dyn Grouped>, Answer) {
        let (answer, answered) = oneshot::channel();
        let write = GroupedWrite {
            body,
            outcome: RefCell::new(None),
            answer,
            _queued: commit.queue_write(),
        };
        (Box::new(write), answered)
    }

    fn refused() -> ConflictableTransactionError<StoreError> {
        abort(StoreError::Internal("refused".into()))
    }

    #[test]
    fn a_group_commits_its_writes_together_and_a_refused_write_changes_nothing() {
        let f = fixture();
        let bodies: Vec<Body> = vec![
            // 0: writes a key.
            Box::new(|tx| Ok(tx.clusters.insert("a", "1")?.is_none())),
            // 1: refused before it writes: the group goes on without it.
            Box::new(|_| Err(refused())),
            // 2: refused after it wrote: the group runs again without it.
            Box::new(|tx| {
                tx.clusters.insert("b", "2")?;
                Err(refused())
            }),
            // 3: panics after it wrote.
            Box::new(|tx| {
                tx.clusters.insert("c", "3")?;
                panic!("a bug in a write")
            }),
            // 4: sees the write of 0, made earlier in the same transaction.
            Box::new(|tx| {
                let saw_a = tx.clusters.get("a")?.is_some();
                tx.clusters.insert("d", "4")?;
                Ok(saw_a)
            }),
        ];
        let (group, answers): (Vec<_>, Vec<_>) = bodies
            .into_iter()
            .map(|body| grouped(&f.commit, body))
            .unzip();

        run_group(&f.trees, &f.writers, &f.commit, group);

        let answers: Vec<_> = answers
            .into_iter()
            .map(|mut answer| answer.try_recv().expect("every write is answered"))
            .collect();
        assert!(matches!(answers[0], Ok(true)));
        assert!(matches!(&answers[1], Err(StoreError::Internal(m)) if m == "refused"));
        assert!(matches!(&answers[2], Err(StoreError::Internal(m)) if m == "refused"));
        assert!(matches!(&answers[3], Err(StoreError::Internal(m)) if m.contains("unexpectedly")));
        assert!(matches!(answers[4], Ok(true)), "{:?}", answers[4]);
        let keys: Vec<_> = f.trees.clusters.iter().keys().map(Result::unwrap).collect();
        assert_eq!(keys, [&b"a"[..], b"d"].map(sled::IVec::from));

        // Only the two committed writes count for the group commit.
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f.commit.covering_flush())
            .unwrap();
        let flushed = f
            .commit
            .stats
            .writes_flushed
            .load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(flushed, 2 + 1, "two writes and the flush's own count");
    }

    #[tokio::test]
    async fn after_a_storage_failure_every_waiting_write_hears_it_at_once_and_none_runs() {
        let f = fixture();
        let writer = Writer::start(f.trees.clone(), f.writers.clone(), f.commit.clone()).unwrap();
        // The writer thread held up (as inside sled on a failing disk).
        let (release, held) = mpsc::channel::<()>();
        let holding = writer.run(f.commit.queue_write(), move |_| {
            held.recv().ok();
            Ok(())
        });
        let waiting = writer.run_grouped(f.commit.queue_write(), |tx| {
            tx.clusters.insert("key", "value")?;
            Ok(())
        });
        let commit = Arc::clone(&f.commit);
        let failing = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            commit.fail(
                FailureKind::Flush,
                "flushing the store failed: disk on fire",
            );
        });
        let (holding, waiting) = tokio::join!(holding, waiting);
        failing.join().unwrap();
        for answer in [waiting, holding] {
            assert!(
                matches!(&answer, Err(StoreError::Unwritable(m)) if m.contains("disk on fire")),
                "{answer:?}"
            );
        }
        release.send(()).unwrap();
        let later = writer.run(f.commit.queue_write(), |writing| {
            writing.transact(|tx| Ok(tx.clusters.insert("later", "1")?))
        });
        assert!(matches!(later.await, Err(StoreError::Unwritable(_))));
        // Once the thread has run every job queued before this one, the
        // grouped write was answered without running.
        let (done, drained) = mpsc::channel();
        writer
            .send(Job::Alone(
                Box::new(move |_| done.send(()).unwrap()),
                Work::Upkeep,
            ))
            .unwrap();
        drained.recv().unwrap();
        assert!(!f.trees.clusters.contains_key("key").unwrap());
        assert!(!f.trees.clusters.contains_key("later").unwrap());
        assert_eq!(f.commit.failures()[1], ("flush", 1));
    }

    #[tokio::test]
    async fn jobs_run_in_order_and_a_panicking_job_fails_alone() {
        let f = fixture();
        let writer = Writer::start(f.trees.clone(), f.writers.clone(), f.commit.clone()).unwrap();
        let first = writer.run(f.commit.queue_write(), |_| Ok(1)).await.unwrap();
        let panicked = writer.run(f.commit.queue_write(), |_| -> Result<(), StoreError> {
            panic!("boom")
        });
        assert!(matches!(panicked.await, Err(StoreError::Internal(_))));
        let grouped = writer
            .run_grouped(f.commit.queue_write(), move |tx| {
                tx.clusters.insert("key", "value")?;
                Ok(first + 1)
            })
            .await
            .unwrap();
        assert_eq!(grouped, 2);
        assert!(f.trees.clusters.contains_key("key").unwrap());
    }
}
