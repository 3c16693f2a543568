//! How a failure reaches a person: an error with every cause on one line,
//! a panic as one log line, and a storage-engine panic as an error.
//!
//! Below `startup`, `backup` and `main`, which all use it; it knows only the
//! store's error type.

use std::any::Any;
use std::cell::Cell;
use std::error::Error;
use std::path::Path;

use crate::store::StoreError;

/// `error` and its `source()` chain on one line, each cause once: a cause
/// whose text its error's message already shows (`"could not write x: {source}"`)
/// is not repeated, so the OS's or the engine's own words ("No space left
/// on device") appear exactly once.
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The message a panic was raised with, when it has one (`panic!` with a
/// literal gives a `&str`, with arguments a `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}

/// Joins `thread`, unless `give_up` (asked every few milliseconds) says to
/// stop waiting: a thread held up inside a failing storage engine must not
/// hold up a shutdown. `Some(true)`: it ended; `Some(false)`: it panicked;
/// `None`: given up, the thread goes on alone.
pub fn join_or_give_up(
    thread: std::thread::JoinHandle<()>,
    give_up: impl Fn() -> bool,
) -> Option<bool> {
    while !thread.is_finished() {
        if give_up() {
            log::warn!(
                "thread {} did not end; stopping without it",
                thread.thread().name().unwrap_or("(unnamed)")
            );
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Some(thread.join().is_ok())
}

thread_local! {
    /// Set while a panic is caught and reported as an error.
    static QUIET_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, which reads the store in `dir`, turning a panic into a
/// `Damaged` error. sled 0.34 can panic on a damaged data file instead of
/// returning an error; the user gets one clear line, not a backtrace.
pub fn without_engine_panics<T, E: From<StoreError>>(
    dir: &Path,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let outcome = QUIET_PANICS.with(|quiet| {
        quiet.set(true);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        quiet.set(false);
        outcome
    });
    outcome.unwrap_or_else(|panic| {
        let detail =
            panic_message(panic.as_ref()).unwrap_or("the storage engine stopped while reading it");
        Err(StoreError::Damaged {
            dir: dir.to_owned(),
            detail: detail.to_owned(),
        }
        .into())
    })
}

/// Logs a panic as one line (no backtrace), unless it is caught on purpose.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if QUIET_PANICS.with(Cell::get) {
            return;
        }
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = panic_message(info.payload()).unwrap_or("(no message)");
        log::error!("internal error (panic){location}: {message}");
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("could not write the witness at /d: {source}")]
    struct Shows {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the storage engine failed")]
    struct Hides(#[source] std::io::Error);

    fn no_space() -> std::io::Error {
        std::io::Error::from_raw_os_error(28)
    }

    #[test]
    fn a_cause_the_message_already_shows_is_not_repeated() {
        let text = chain(&Shows { source: no_space() });
        assert_eq!(text.matches("No space left on device").count(), 1, "{text}");
    }

    #[test]
    fn a_cause_the_message_hides_is_appended() {
        let text = chain(&Hides(no_space()));
        assert!(
            text.starts_with("the storage engine failed: No space left on device"),
            "{text}"
        );
    }

    #[test]
    fn an_engine_panic_becomes_a_damaged_store_error_with_its_message() {
        let dir = Path::new("/nowhere");
        let result: Result<(), StoreError> =
            without_engine_panics(dir, || panic!("bad page at {}", 42));
        let text = result.unwrap_err().to_string();
        assert!(
            text.contains("damaged") && text.contains("bad page at 42"),
            "{text}"
        );
        let result: Result<(), StoreError> = without_engine_panics(dir, || panic!("literal"));
        assert!(result.unwrap_err().to_string().contains("literal"));
    }
}
