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
