//! A progress bar on stderr, drawn only when stderr is a terminal: a log
//! file or a pipe gets no control characters. Hand-written (one line redrawn
//! in place with `\r`, at most ten times a second), as a crate would add
//! more than this does.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Characters of the bar itself.
const BAR_WIDTH: usize = 30;
/// The least time between two redraws.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

pub struct Progress {
    enabled: bool,
    label: String,
    last_drawn: Option<Instant>,
    /// Characters on the line now, to blank them when a shorter line replaces it.
    drawn_len: usize,
}

impl Progress {
    /// A bar that shows itself only when stderr is a terminal.
    pub fn on_stderr(label: impl Into<String>) -> Self {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            label: label.into(),
            last_drawn: None,
            drawn_len: 0,
        }
    }

    /// `done` of `total` bytes. Redraws at most every [`REDRAW_EVERY`], and
    /// always at the end.
    pub fn bytes(&mut self, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let due = self
            .last_drawn
            .is_none_or(|at| at.elapsed() >= REDRAW_EVERY);
        if due || done >= total {
            let line = bar(&self.label, done, total);
            self.draw(&line);
        }
    }

    /// Replaces the bar with a line of text (a step without a measure).
    pub fn say(&mut self, text: &str) {
        if self.enabled {
            let line = format!("{}: {text}", self.label);
            self.draw(&line);
        }
    }

    /// Blanks the line, so that what is printed next starts clean.
    pub fn finish(&mut self) {
        if self.enabled && self.drawn_len > 0 {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\r", " ".repeat(self.drawn_len));
            let _ = err.flush();
            self.drawn_len = 0;
        }
    }

    fn draw(&mut self, line: &str) {
        let len = line.chars().count();
        let blank = self.drawn_len.saturating_sub(len);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}{}", " ".repeat(blank));
        let _ = err.flush();
        self.drawn_len = len;
        self.last_drawn = Some(Instant::now());
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `label [#####     ]  50% 1.0 MiB of 2.0 MiB`
pub fn bar(label: &str, done: u64, total: u64) -> String {
    let fraction = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).min(1.0)
    };
    let filled = ((fraction * BAR_WIDTH as f64).floor() as usize).min(BAR_WIDTH);
    format!(
        "{label} [{}{}] {:>3}% {} of {}",
        "#".repeat(filled),
        " ".repeat(BAR_WIDTH - filled),
        (fraction * 100.0).floor() as u32,
        size(done),
        size(total)
    )
}

/// A byte count for people: `512 B`, `1.5 KiB`, `20.0 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_fraction_done_and_names_both_sizes() {
        assert_eq!(
            bar("importing", 0, 2048),
            format!("importing [{}]   0% 0 B of 2.0 KiB", " ".repeat(30))
        );
        assert_eq!(
            bar("importing", 1024, 2048),
            format!(
                "importing [{}{}]  50% 1.0 KiB of 2.0 KiB",
                "#".repeat(15),
                " ".repeat(15)
            )
        );
        assert_eq!(
            bar("importing", 4096, 2048),
            format!("importing [{}] 100% 4.0 KiB of 2.0 KiB", "#".repeat(30))
        );
        assert!(bar("x", 0, 0).contains("100%"));
    }

    #[test]
    fn sizes_are_shown_in_binary_units() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(20 * 1024 * 1024), "20.0 MiB");
    }

    #[test]
    fn a_bar_off_a_terminal_draws_nothing() {
        let mut progress = Progress {
            enabled: false,
            label: "x".into(),
            last_drawn: None,
            drawn_len: 0,
        };
        progress.bytes(1, 2);
        progress.say("writing");
        assert_eq!((progress.drawn_len, progress.last_drawn), (0, None));
    }
}
