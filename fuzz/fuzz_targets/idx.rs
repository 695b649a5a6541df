//! Fuzz target `idx`: arbitrary bytes into the IDX reader, `read_idx_u8_from`.
//!
//! What an input means (a control byte choosing raw or gzip'd presentation, the item
//! shape and a limit, then the file) and what must hold of the answer is in
//! `tests/fuzz_idx/mod.rs`, shared with the regression test that replays this
//! target's findings on stable (`tests/mnist_loader.rs`). Allocations sized by a
//! header's claims show up as libFuzzer's out-of-memory reports (`-rss_limit_mb`,
//! `-malloc_limit_mb`).

#![no_main]

#[path = "../../tests/fuzz_idx/mod.rs"]
mod fuzz_idx;

libfuzzer_sys::fuzz_target!(|input: &[u8]| fuzz_idx::check(input));
