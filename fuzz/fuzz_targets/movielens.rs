//! Fuzz target `movielens`: arbitrary bytes into the MovieLens-100k reader,
//! `MovieLens::from_readers` (`u.user` and `u.data` cut from one input).
//!
//! How an input becomes the two files and what must hold of the answer is in
//! `tests/fuzz_ctr/mod.rs`, shared with the regression test that replays this target's
//! findings on stable (`tests/movielens_reader.rs`).

#![no_main]

#[path = "../../tests/fuzz_ctr/mod.rs"]
mod fuzz_ctr;

libfuzzer_sys::fuzz_target!(|input: &[u8]| fuzz_ctr::check_movielens(input));
