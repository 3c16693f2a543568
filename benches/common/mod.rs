//! Code shared by the benchmarks (each includes it with `mod common;`).

pub mod http;
