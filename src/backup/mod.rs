//! Export and import: a running server's clusters and associations as a
//! file of versioned JSON lines (`format`), and loading such a file into an
//! empty store (`import`), with a progress bar on a terminal (`progress`).

pub mod format;
pub mod import;
pub mod progress;

pub use format::{ExportLines, Header, CONTENT_TYPE, FORMAT, VERSION};
pub use import::{import, ImportError};
