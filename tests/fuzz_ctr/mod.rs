//! One input of the `criteo` and `movielens` fuzz targets: how its bytes reach the
//! readers and what must hold of the answer. Shared, so that the fuzzers
//! (`fuzz/fuzz_targets/criteo.rs`, `fuzz/fuzz_targets/movielens.rs`) and the tests that
//! replay their findings (`tests/criteo_reader.rs`, `tests/movielens_reader.rs`, files
//! under `tests/data/fuzz/criteo/` and `tests/data/fuzz/movielens/`) check exactly the
//! same thing.
//!
//! Every answer must be examples or a `DataError` naming the input, never a panic, and
//! examples must be what they claim: one row per field, every row inside the table (and,
//! for MovieLens, inside its field's block), labels 0 or 1, values finite. Each input is
//! read twice, from a slice and from a source that hands out at most 7 bytes per
//! `read`: a read that succeeds must give the same examples both ways.

#![allow(dead_code)] // each test file uses one of the two checks

#[path = "../fuzz_common/mod.rs"]
mod fuzz_common;

use std::io::BufReader;
use std::path::Path;

use agdlab::data::criteo::{read_criteo_from, CriteoOptions, IntegerEncoding, NUM_FIELDS};
use agdlab::data::movielens::MovieLens;
use agdlab::data::{CtrExamples, DataError, DataErrorKind, Skipped};
use fuzz_common::{presented, SmallReads};

/// `criteo`: the first byte is a control byte, the rest is the file.
///
/// ```text
/// bits 0-1  0: the bytes as they are; 1: gzip'd by the harness; 2: gzip'd as two
///           members; 3: the first half gzip'd, the second half after it as it is
/// bit 2     integers log-transformed (else bucketed)
/// bit 3     skip malformed lines (else stop at the first)
/// bits 4-7  k: a table of 2^k rows; k = 15 also reads at most 2 examples
/// ```
pub fn check_criteo(input: &[u8]) {
    let Some((&control, bytes)) = input.split_first() else {
        return;
    };
    let file = presented(control & 0b11, bytes);
    let k = control >> 4;
    let options = CriteoOptions {
        table_size: 1 << k,
        integers: if control & 0b100 != 0 {
            IntegerEncoding::Log
        } else {
            IntegerEncoding::Bucket
        },
        skip_malformed: control & 0b1000 != 0,
        max_examples: (k == 15).then_some(2),
    };
    let name = Path::new("fuzz input");
    let from_slice = read_criteo_from(&file[..], name, &options);
    let in_small_reads = read_criteo_from(BufReader::new(SmallReads(&file)), name, &options);
    for answer in [&from_slice, &in_small_reads] {
        match answer {
            Ok((examples, skipped)) => {
                check_examples(
                    examples,
                    NUM_FIELDS,
                    options.table_size,
                    options.integers == IntegerEncoding::Log,
                );
                check_skipped(skipped, options.skip_malformed);
                assert!(options.max_examples.is_none_or(|max| examples.len() <= max));
            }
            Err(e) => check_error(e, name),
        }
    }
    compare(&from_slice, &in_small_reads, options.max_examples.is_some());
}

/// `movielens`: the first byte is a control byte (bit 0: skip malformed lines); the rest
/// is `u.user`, then a `0xff` byte, then `u.data` (all of it is `u.user` when there is
/// no `0xff`).
pub fn check_movielens(input: &[u8]) {
    let Some((&control, bytes)) = input.split_first() else {
        return;
    };
    let (users, ratings) = match bytes.iter().position(|&b| b == 0xff) {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[][..]),
    };
    let skip = control & 1 != 0;
    let (users_name, ratings_name) = (Path::new("u.user (fuzz)"), Path::new("u.data (fuzz)"));
    let from_slice = MovieLens::from_readers(ratings, ratings_name, users, users_name, skip);
    let in_small_reads = MovieLens::from_readers(
        BufReader::new(SmallReads(ratings)),
        ratings_name,
        BufReader::new(SmallReads(users)),
        users_name,
        skip,
    );
    for answer in [&from_slice, &in_small_reads] {
        match answer {
            Ok((movielens, skipped)) => {
                let sizes = movielens.field_sizes;
                assert_eq!((sizes[2], sizes[3]), (7, 2), "age buckets and genders");
                check_examples(&movielens.examples, 5, movielens.table_size(), false);
                let mut start = 0;
                for (field, &size) in sizes.iter().enumerate() {
                    for example in movielens.examples.ids().chunks(5) {
                        let row = example[field] as usize;
                        assert!(
                            (start..start + size).contains(&row),
                            "field {field}: row {row} outside its block"
                        );
                    }
                    start += size;
                }
                check_skipped(skipped, skip);
            }
            Err(e) => assert!(
                e.path() == users_name || e.path() == ratings_name,
                "{}",
                e.path().display()
            ),
        }
    }
    let same =
        |a: &MovieLens, b: &MovieLens| a.examples == b.examples && a.field_sizes == b.field_sizes;
    match (&from_slice, &in_small_reads) {
        (Ok((a, s)), Ok((b, t))) => {
            assert!(
                same(a, b) && s.count == t.count,
                "chunking changed the examples"
            )
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "chunking changed the error"),
        _ => {
            panic!(
                "read from a slice: {}; read 7 bytes at a time: {}",
                ok(&from_slice),
                ok(&in_small_reads)
            )
        }
    }
}

fn ok<T>(answer: &Result<T, DataError>) -> String {
    answer
        .as_ref()
        .err()
        .map_or("examples".to_string(), |e| e.to_string())
}

/// Examples hold one row per field, inside the table, labels 0 or 1, finite values.
fn check_examples(examples: &CtrExamples, fields: usize, table_size: usize, with_values: bool) {
    assert_eq!(examples.num_fields(), fields);
    assert_eq!(examples.ids().len(), examples.len() * fields);
    assert!(
        examples.ids().iter().all(|&id| (id as usize) < table_size),
        "a row outside the table"
    );
    assert!(
        examples.labels().iter().all(|&y| y == 0.0 || y == 1.0),
        "a label other than 0 or 1"
    );
    match examples.values() {
        Some(values) => {
            assert!(with_values, "values where none were asked for");
            assert_eq!(values.len(), examples.ids().len());
            assert!(
                values.iter().all(|v| v.is_finite()),
                "a value that is not finite"
            );
        }
        None => assert!(!with_values, "no values where they were asked for"),
    }
}

fn check_skipped(skipped: &Skipped, skip: bool) {
    assert_eq!(skipped.count > 0, skipped.first.is_some());
    assert!(
        skip || skipped.count == 0,
        "lines skipped without being asked to"
    );
    if let Some(first) = &skipped.first {
        assert!(matches!(first.kind(), DataErrorKind::Malformed { line, .. } if *line >= 1));
        let _shown = skipped.to_string();
    }
}

fn check_error(e: &DataError, name: &Path) {
    assert_eq!(e.path(), name);
    if let DataErrorKind::Malformed { line, problem } = e.kind() {
        assert!(*line >= 1 && !problem.is_empty());
    }
    let _shown = e.to_string();
}

/// The same examples however the bytes arrive. Which error is reported may differ: the
/// gzip decoder decodes ahead of the lines asked for, so it can meet a corrupt stream
/// before a malformed line with one source and after it with the other, and with a
/// limit on the examples it can meet corruption that the other source never reaches.
fn compare(
    a: &Result<(CtrExamples, Skipped), DataError>,
    b: &Result<(CtrExamples, Skipped), DataError>,
    limited: bool,
) {
    match (a, b) {
        (Ok((x, s)), Ok((y, t))) => {
            assert!(
                x == y,
                "the same file read 7 bytes at a time gave other examples"
            );
            assert_eq!(
                s.count, t.count,
                "the same file read 7 bytes at a time skipped other lines"
            );
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => assert!(
            limited && matches!(e.kind(), DataErrorKind::Gzip(_)),
            "read from a slice: {}; read 7 bytes at a time: {}",
            ok(a),
            ok(b)
        ),
    }
}
