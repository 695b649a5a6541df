//! Fuzz target `criteo`: arbitrary bytes into the Criteo reader, `read_criteo_from`.
//!
//! What an input means (a control byte choosing raw or gzip'd presentation, the integer
//! encoding, skipping, and the table size, then the file) and what must hold of the
//! answer is in `tests/fuzz_ctr/mod.rs`, shared with the regression test that replays
//! this target's findings on stable (`tests/criteo_reader.rs`).

#![no_main]

#[path = "../../tests/fuzz_ctr/mod.rs"]
mod fuzz_ctr;

libfuzzer_sys::fuzz_target!(|input: &[u8]| fuzz_ctr::check_criteo(input));
