//! Fuzz target `ptb`: arbitrary bytes into the PTB reader, `Ptb::from_texts`, and the
//! batching of what it reads.
//!
//! How an input becomes the three files (cut at `0xFF` bytes) and what must hold of the
//! answer is in `tests/fuzz_ptb/mod.rs`, shared with the regression test that replays
//! this target's findings on stable (`tests/ptb.rs`).
//!
//! ```text
//! cargo fuzz run ptb -s none -- -runs=1000000
//! ```

#![no_main]

#[path = "../../tests/fuzz_ptb/mod.rs"]
mod fuzz_ptb;

libfuzzer_sys::fuzz_target!(|input: &[u8]| fuzz_ptb::check(input));
