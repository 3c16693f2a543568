//! The token sweep: removes the client request tokens that have expired,
//! so the token tree stays bounded although SDKs send a fresh token with
//! every call.

use std::ops::Bound;
use std::time::{Duration, Instant};

use super::commit::WritesComing;
use super::keys;
use super::records::token_expires_at;
use super::tx::{Tx, TxResult};
use super::{Inner, Store, StoreError};
use crate::domain::Timestamp;

/// Where the token sweep stopped: the last token key it read, `None` to
/// start from the first (`Store::sweep_expired_tokens`).
#[derive(Debug, Default)]
pub struct SweepCursor(Option<sled::IVec>);

/// How many tokens the sweep reads, and at most removes, per transaction.
const SWEEP_BATCH: usize = 1_000;

impl Store {
    /// Removes the tokens expired by `now`, going on from `cursor` through
    /// the token tree a batch at a time, for about `budget` at most; the
    /// next call goes on from where this one stopped, and after the last
    /// token starts over. Returns how many it removed. Not waited on for
    /// durability: a sweep lost in a crash is simply done again.
    ///
    /// The budget bounds the work of one call however many tokens are held
    /// (a day of writes at a steady rate can be millions); a token past its
    /// expiry is free again whether or not it was removed yet
    /// (`Idempotency::replay`). Blocks the calling thread (the sweeper's
    /// own): each batch is read here, then removed by a transaction on the
    /// writer thread, like every write. From the read of a batch that has
    /// expired tokens through its removal the call counts as a write in
    /// flight, so lookups run off the HTTP workers meanwhile; while it only
    /// reads live tokens, they stay on the workers.
    pub fn sweep_expired_tokens(
        &self,
        now: Timestamp,
        cursor: &mut SweepCursor,
        budget: Duration,
    ) -> Result<usize, StoreError> {
        self.sweep_in_batches(now, cursor, budget, SWEEP_BATCH)
    }

    fn sweep_in_batches(
        &self,
        now: Timestamp,
        cursor: &mut SweepCursor,
        budget: Duration,
        batch: usize,
    ) -> Result<usize, StoreError> {
        let started = Instant::now();
        let mut removed = 0;
        // Counted as a write in flight (`GroupCommit::writes_coming`) only
        // while there is something to remove: from the read of a batch with
        // expired tokens through its removal, and on while the batches after
        // it have some too, so that no lookup starts on an HTTP worker
        // between two removals and then waits for the next one. A pass over
        // tokens that are all live leaves the lookups on the workers.
        let mut sweeping: Option<WritesComing> = None;
        loop {
            let after = cursor.0.take();
            let read = self.inner.read_expired_tokens(now, after.as_deref(), batch);
            let (mut expired, mut last) = self.observe(super::commit::FailureKind::Sweep, read)?;
            if !expired.is_empty() && sweeping.is_none() {
                // A lookup may have started on a worker during that read,
                // seeing nothing in flight. Reading the batch again, now in
                // flight, gives it the time to end before the removal queues.
                sweeping = Some(self.inner.commit.writes_coming());
                let read = self.inner.read_expired_tokens(now, after.as_deref(), batch);
                (expired, last) = self.observe(super::commit::FailureKind::Sweep, read)?;
            }
            if expired.is_empty() {
                sweeping = None;
            } else {
                removed += self.remove_expired_tokens(now, expired)?;
            }
            cursor.0 = last;
            if cursor.0.is_none() || started.elapsed() >= budget {
                return Ok(removed);
            }
        }
    }

    /// Removes those of `keys` that are still expired, in one transaction
    /// on the writer thread.
    fn remove_expired_tokens(
        &self,
        now: Timestamp,
        keys: Vec<sled::IVec>,
    ) -> Result<usize, StoreError> {
        self.write_blocking(move |_, writing| {
            writing.transact(|tx| remove_expired_tokens_tx(tx, now, &keys))
        })
    }
}

impl Inner {
    /// Reads up to `batch` tokens after `after` in key order (from the first
    /// when `None`). Returns the keys of those expired by `now` and the last
    /// key read, or `None` when the tree ended before `batch` tokens.
    ///
    /// Each token's record holds its expiry, so the sweep reads every token;
    /// an index by expiry time would cost every write with a token a third
    /// key (`migrations/0003-tokens-swept-by-scan.md`).
    fn read_expired_tokens(
        &self,
        now: Timestamp,
        after: Option<&[u8]>,
        batch: usize,
    ) -> Result<(Vec<sled::IVec>, Option<sled::IVec>), StoreError> {
        // The keys after `after`, or all of them.
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let tokens = self
            .trees
            .tokens
            .range::<&[u8], _>((from, Bound::Unbounded));
        let (mut last, mut read) = (None, 0);
        let mut expired = Vec::new();
        for entry in tokens.take(batch) {
            read += 1;
            let (key, bytes) = entry?;
            match token_expires_at(&bytes) {
                Ok(expires_at) if expires_at <= now => expired.push(key.clone()),
                Ok(_) => {}
                // `check` reports it; the sweep goes on past it.
                Err(e) => log::warn!("the token sweep skips token {}: {e}", keys::shown(&key)),
            }
            last = Some(key);
        }
        Ok((expired, if read < batch { None } else { last }))
    }
}

/// Removes those of `keys` whose token is expired by `now`, checking each
/// again: one may have been reused since it was read. Returns how many it
/// removed.
fn remove_expired_tokens_tx(tx: &Tx<'_>, now: Timestamp, keys: &[sled::IVec]) -> TxResult<usize> {
    let mut removed = 0;
    for key in keys {
        let Some(bytes) = tx.tokens.get(key)? else {
            continue;
        };
        if matches!(token_expires_at(&bytes), Ok(expires_at) if expires_at <= now) {
            tx.tokens.remove(key)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use super::*;
    use crate::domain::association_fixtures::role;
    use crate::domain::{ClientRequestToken, Cluster, ClusterName, NewCluster, Tags};
    use crate::store::keys::TokenScope;
    use crate::store::records::{encode, ClusterRecord, SavedResponse, TokenRecord};
    use crate::store::tests::{open, runtime};

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn cluster_name() -> ClusterName {
        ClusterName::parse("name", "c1").unwrap()
    }

    fn new_cluster() -> NewCluster {
        NewCluster {
            name: cluster_name(),
            role_arn: role("r"),
            version: "1.31".into(),
            tags: Tags::default(),
        }
    }

    fn token_key(i: usize) -> Vec<u8> {
        // Padded, so that the keys' order is the numbers' order.
        let token = ClientRequestToken::parse(&format!("token-{i:06}")).unwrap();
        keys::token(&cluster_name(), TokenScope::CreateCluster, &token)
    }

    fn token(expires_at: Timestamp) -> Vec<u8> {
        encode(&TokenRecord {
            fingerprint: b"{}".to_vec(),
            expires_at: expires_at.as_millis(),
            response: SavedResponse::Cluster(ClusterRecord::new(&Cluster::new(
                new_cluster(),
                NOW,
                0,
            ))),
        })
    }

    /// A store holding ten tokens of cluster `c1`: every third one (0, 3, 6,
    /// 9) still live at `NOW`, the others expired (one of them at `NOW`
    /// exactly). Returns the store and the live tokens' keys.
    fn store_with_tokens(dir: &std::path::Path) -> (Store, Vec<Vec<u8>>) {
        let store = open(dir);
        let mut live = Vec::new();
        for i in 0..10 {
            let key = token_key(i);
            let expires_at = if i % 3 == 0 {
                live.push(key.clone());
                NOW.plus_seconds(1)
            } else {
                Timestamp::from_millis(NOW.as_millis() - (i % 2) as i64)
            };
            store
                .inner
                .trees
                .tokens
                .insert(key, token(expires_at))
                .unwrap();
        }
        (store, live)
    }

    fn keys_left(store: &Store) -> Vec<sled::IVec> {
        store
            .inner
            .trees
            .tokens
            .iter()
            .keys()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_sweep_goes_on_from_its_cursor_and_removes_only_the_expired() {
        let dir = tempfile::tempdir().unwrap();
        let (store, live) = store_with_tokens(dir.path());

        // No time budget: each call reads one batch of 3 keys, and the next
        // goes on from there; the fourth reaches the end and starts over.
        let mut cursor = SweepCursor::default();
        let removed: Vec<usize> = (0..4)
            .map(|_| {
                store
                    .sweep_in_batches(NOW, &mut cursor, Duration::ZERO, 3)
                    .unwrap()
            })
            .collect();
        assert_eq!(removed, [2, 2, 2, 0]);
        assert!(cursor.0.is_none(), "the pass ended, the next starts over");
        let live: Vec<sled::IVec> = live.iter().map(|k| k[..].into()).collect();
        assert_eq!(keys_left(&store), live);

        // With time to spare, one call is a whole pass.
        let mut cursor = SweepCursor::default();
        let later = NOW.plus_seconds(2);
        assert_eq!(
            store
                .sweep_in_batches(later, &mut cursor, Duration::from_secs(60), 3)
                .unwrap(),
            4
        );
        assert!(keys_left(&store).is_empty());
        store.close().unwrap();
    }

    #[test]
    fn the_sweep_counts_in_no_write_metric() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_tokens(dir.path());
        let mut cursor = SweepCursor::default();
        assert_eq!(
            store
                .sweep_expired_tokens(NOW, &mut cursor, Duration::from_secs(60))
                .unwrap(),
            6
        );
        let rt = runtime();
        // A flush covers what is pending: only its own count.
        rt.block_on(store.inner.commit.covering_flush()).unwrap();
        let stats = rt.block_on(store.stats());
        assert_eq!((stats.write_groups, stats.writes_flushed), (0, 1));
        store.close().unwrap();
    }

    #[test]
    fn a_token_reused_after_the_sweep_read_it_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_tokens(dir.path());
        let (expired, last) = store.inner.read_expired_tokens(NOW, None, 100).unwrap();
        assert_eq!(expired.len(), 6);
        assert!(last.is_none(), "ten tokens, a batch of 100: the tree ended");

        // A client sends the first expired token again before the removal.
        let reused = expired[0].clone();
        store
            .inner
            .trees
            .tokens
            .insert(&reused, token(NOW.plus_seconds(3_600)))
            .unwrap();
        assert_eq!(store.remove_expired_tokens(NOW, expired).unwrap(), 5);
        assert!(store.inner.trees.tokens.contains_key(&reused).unwrap());
        store.close().unwrap();
    }

    #[test]
    fn the_sweeps_removals_wait_at_the_writer_thread_and_count_as_writes_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_tokens(dir.path());
        // The writer thread is held by a job that waits for the gate.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let holder = {
            let store = store.clone();
            std::thread::spawn(move || {
                store.write_blocking(move |_, _| {
                    gate.recv().ok();
                    Ok(())
                })
            })
        };
        let queued = |count: u64, what: &str| {
            let started = Instant::now();
            while store.inner.commit.queued_writes() < count {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "{what} never queued"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        queued(1, "the job holding the writer thread");
        let sweeper = {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut cursor = SweepCursor::default();
                store.sweep_expired_tokens(NOW, &mut cursor, Duration::from_secs(60))
            })
        };
        queued(2, "the sweep's removal");
        assert!(store.inner.commit.writes_in_flight());
        assert_eq!(
            keys_left(&store).len(),
            10,
            "nothing removed behind the writer's back"
        );

        release.send(()).unwrap();
        holder.join().unwrap().unwrap();
        assert_eq!(sweeper.join().unwrap().unwrap(), 6);
        assert_eq!(keys_left(&store).len(), 4);
        assert!(!store.inner.commit.writes_in_flight());
        store.close().unwrap();
    }

    /// This thread's context switches so far: (voluntary, involuntary).
    /// A wait for a lock or for the disk is a voluntary one; being
    /// preempted by another thread of a busy machine an involuntary one.
    fn context_switches() -> (u64, u64) {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let count = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/thread-self/status"))
        };
        (
            count("voluntary_ctxt_switches:"),
            count("nonvoluntary_ctxt_switches:"),
        )
    }

    /// A future, and the longest that one poll of it held its thread among
    /// the polls during which the thread was not preempted (those measure
    /// the machine's load, not the store).
    struct LongestPoll<F> {
        future: Pin<Box<F>>,
        longest: Duration,
    }

    impl<F: Future> Future for LongestPoll<F> {
        type Output = (F::Output, Duration);

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let (_, preempted_before) = context_switches();
            let started = Instant::now();
            let polled = self.future.as_mut().poll(cx);
            let took = started.elapsed();
            let (_, preempted_after) = context_switches();
            if preempted_after == preempted_before {
                self.longest = self.longest.max(took);
            }
            polled.map(|output| (output, self.longest))
        }
    }

    fn longest_poll<F: Future>(future: F) -> LongestPoll<F> {
        LongestPoll {
            future: Box::pin(future),
            longest: Duration::ZERO,
        }
    }

    /// Whether a write counted itself in flight while `sweep` ran on another
    /// thread, looked at again and again until it ended.
    fn in_flight_during(
        store: &Store,
        sweep: impl FnOnce(&Store) -> usize + Send + 'static,
    ) -> (usize, bool) {
        let sweeping = Arc::new(AtomicBool::new(true));
        let sweeper = {
            let (store, sweeping) = (store.clone(), Arc::clone(&sweeping));
            std::thread::spawn(move || {
                let removed = sweep(&store);
                sweeping.store(false, Ordering::SeqCst);
                removed
            })
        };
        let (mut looks, mut seen) = (0, false);
        while sweeping.load(Ordering::SeqCst) {
            looks += 1;
            seen |= store.inner.commit.writes_in_flight();
        }
        assert!(looks > 10, "the sweep ended before it was looked at");
        (sweeper.join().unwrap(), seen)
    }

    fn insert_tokens(store: &Store, numbers: std::ops::Range<usize>, expires_at: Timestamp) {
        let bytes = token(expires_at);
        let mut batch = sled::Batch::default();
        for i in numbers {
            batch.insert(token_key(i), bytes.clone());
        }
        store.inner.trees.tokens.apply_batch(batch).unwrap();
    }

    #[test]
    fn a_sweep_with_nothing_to_remove_leaves_the_lookups_on_the_workers() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let tokens = 10 * SWEEP_BATCH;
        insert_tokens(&store, 0..tokens, NOW.plus_seconds(3_600));
        let (removed, in_flight) = in_flight_during(&store, |store| {
            // Several passes, so the looks have time to land.
            let mut removed = 0;
            for _ in 0..2 {
                let mut cursor = SweepCursor::default();
                removed += store
                    .sweep_expired_tokens(NOW, &mut cursor, Duration::from_secs(600))
                    .unwrap();
            }
            removed
        });
        assert_eq!(removed, 0);
        assert!(
            !in_flight,
            "a sweep that removed nothing counted as a write"
        );

        // The same tokens expired: the sweep counts while it removes.
        let (removed, in_flight) = in_flight_during(&store, |store| {
            let mut cursor = SweepCursor::default();
            store
                .sweep_expired_tokens(
                    NOW.plus_seconds(3_600),
                    &mut cursor,
                    Duration::from_secs(600),
                )
                .unwrap()
        });
        assert_eq!(removed, tokens);
        assert!(in_flight);
        store.close().unwrap();
    }

    /// A Describe on an HTTP worker runs its lookup on the worker's thread
    /// when no write is in flight, and on the blocking pool otherwise, where
    /// a wait costs no worker. The sweep counts as a write in flight from
    /// the read of a batch it removes from through the removal, so no lookup
    /// on the caller's thread meets one of its transactions (a thousand
    /// removals, which wait for sled's lock behind any flush): the worst of
    /// them stays far below a flush and fsync, measured first on the same
    /// store. Flushes run all along, as under client writes, so that the
    /// sweep's transactions wait for them; and the sweep crosses live tokens,
    /// when it leaves the lookups on the caller's thread, as well as expired
    /// ones. Run alone in its process (`alone_in_a_process`).
    /// Whether this is the test binary's run of `test` alone, in a process
    /// of its own; if not, runs it so and checks that it passed.
    ///
    /// sled's lock that a transaction takes as a writer and a lookup or a
    /// flush as a reader is one per process (a static), not one per store:
    /// the other tests' stores, in threads beside this one, would hold up
    /// its lookups as well.
    fn alone_in_a_process(test: &str) -> bool {
        const ALONE: &str = "POD_IDENTITY_STORE_TEST_ALONE";
        if std::env::var(ALONE).as_deref() == Ok(test) {
            return true;
        }
        let run = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--test-threads=1"])
            .env(ALONE, test)
            .output()
            .unwrap();
        let output = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success() && output.contains("1 passed"),
            "{output}{}",
            String::from_utf8_lossy(&run.stderr)
        );
        false
    }

    #[test]
    fn a_lookup_never_holds_its_thread_for_a_flush_while_the_sweep_runs() {
        if !alone_in_a_process(
            "store::tokens::tests::a_lookup_never_holds_its_thread_for_a_flush_while_the_sweep_runs",
        ) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let rt = runtime();
        rt.block_on(store.create_cluster(new_cluster(), None, NOW))
            .unwrap();
        // Batches of live tokens between runs of expired ones.
        let mut expired = 0;
        for run in 0..4 {
            let first = run * 10 * SWEEP_BATCH;
            insert_tokens(
                &store,
                first..first + 5 * SWEEP_BATCH,
                NOW.plus_seconds(3_600),
            );
            insert_tokens(
                &store,
                first + 5 * SWEEP_BATCH..first + 10 * SWEEP_BATCH,
                NOW,
            );
            expired += 5 * SWEEP_BATCH;
        }

        // What a durable write waits for: its flush and the fsync after it.
        let mut flushes: Vec<Duration> = (0..20)
            .map(|_| {
                let started = Instant::now();
                rt.block_on(store.inner.commit.covering_flush()).unwrap();
                started.elapsed()
            })
            .collect();
        flushes.sort();
        let flush = flushes[flushes.len() / 2];

        let sweeping = Arc::new(AtomicBool::new(true));
        // Flushes one after another while the sweep runs, as client writes would.
        let flusher = {
            let (store, sweeping) = (store.clone(), Arc::clone(&sweeping));
            std::thread::spawn(move || {
                let rt = runtime();
                let mut flushed = 0;
                while sweeping.load(Ordering::SeqCst) {
                    // In flight from before the flush starts, so that a
                    // lookup on this thread meets no flush of its own
                    // making: any wait it shows is the sweep's.
                    let _writing = store.inner.commit.writes_coming();
                    rt.block_on(store.inner.commit.covering_flush()).unwrap();
                    flushed += 1;
                }
                flushed
            })
        };
        let sweeper = {
            let (store, sweeping) = (store.clone(), Arc::clone(&sweeping));
            std::thread::spawn(move || {
                let mut cursor = SweepCursor::default();
                let removed =
                    store.sweep_expired_tokens(NOW, &mut cursor, Duration::from_secs(600));
                sweeping.store(false, Ordering::SeqCst);
                removed
            })
        };
        // DescribeCluster's lookup, telling where it ran.
        let describe = || {
            store.lookup(|s| {
                s.read_cluster(&cluster_name())?;
                Ok(std::thread::current().id())
            })
        };
        let here = std::thread::current().id();
        let (mut lookups, mut on_this_thread) = (0, Vec::new());
        while sweeping.load(Ordering::SeqCst) {
            let (ran_on, longest) = rt.block_on(longest_poll(describe()));
            lookups += 1;
            if ran_on.unwrap() == here {
                on_this_thread.push(longest);
            }
        }
        assert_eq!(sweeper.join().unwrap().unwrap(), expired);
        let flushed = flusher.join().unwrap();
        assert!(lookups > 10, "the sweep ended before the lookups ran");
        assert!(
            flushed >= 4,
            "only {flushed} flushes ran beside the sweep's transactions"
        );
        let worst = on_this_thread.iter().max().copied().unwrap_or_default();
        assert!(
            worst * 2 < flush,
            "a lookup held its thread for {worst:?} while the sweep ran, about as long as a \
             flush and fsync ({flush:?}); {} of {lookups} lookups ran on this thread, beside \
             {flushed} flushes",
            on_this_thread.len()
        );
        store.close().unwrap();
    }
}
