//! The writer: one thread that runs every write transaction, one after another.
//!
//! sled 0.34 runs transactions one at a time anyway (a global lock), so
//! handing them all to one thread loses no parallelism. It spares each
//! waiting write a thread of tokio's blocking pool and the contention of
//! dozens of those threads on sled's lock: under load the thread takes the
//! next job from its queue without sleeping in between.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

use super::StoreError;

type Job = Box<dyn FnOnce() + Send>;

pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the thread; it ends when the `Writer` is dropped and its queue is empty.
    pub(super) fn start() -> std::io::Result<Writer> {
        let (queue, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                for job in jobs {
                    // A job that panics has dropped its answer channel, so its
                    // caller gets an error; the jobs after it still run.
                    if catch_unwind(AssertUnwindSafe(job)).is_err() {
                        log::error!("a write transaction panicked; the write was not made");
                    }
                }
            })?;
        Ok(Writer { queue })
    }

    /// Runs `job` on the writer thread and returns its result.
    pub(super) async fn run<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.queue
            .send(Box::new(move || {
                // The caller may have gone (its client hung up): the write stands.
                let _ = answer.send(job());
            }))
            .map_err(|_| StoreError::Internal("the store's writer thread has stopped".into()))?;
        answered
            .await
            .map_err(|_| StoreError::Internal("a write transaction failed unexpectedly".into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_and_a_panicking_job_fails_alone() {
        let writer = Writer::start().unwrap();
        let first = writer.run(|| Ok(1)).await.unwrap();
        let panicked = writer.run(|| -> Result<(), StoreError> { panic!("boom") });
        assert!(matches!(panicked.await, Err(StoreError::Internal(_))));
        let after = writer.run(move || Ok(first + 1)).await.unwrap();
        assert_eq!(after, 2);
    }
}
