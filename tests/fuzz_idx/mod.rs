//! One input of the `idx` fuzz target: how its bytes reach the IDX reader and what must
//! hold of the answer. Shared, so that the fuzzer (`fuzz/fuzz_targets/idx.rs`) and the
//! regression test replaying its findings (`tests/mnist_loader.rs`, files under
//! `tests/data/fuzz/idx/`) check exactly the same thing.
//!
//! The first input byte is a control byte; the rest is the file. The control byte
//! chooses how the file reaches the reader, so that the gzip paths are exercised
//! without the fuzzer having to discover deflate first:
//!
//! ```text
//! bits 0-1  0: the bytes as they are (raw IDX, or whatever gzip the fuzzer builds)
//!           1: gzip'd by the harness, one member
//!           2: gzip'd by the harness as two members, split in the middle
//!           3: the first half gzip'd, then the second half as it is (junk after
//!              the gzip stream, unless it happens to be gzip)
//! bits 2-3  the expected item shape: 0 or 3 labels [n], 1 images [n, 28, 28],
//!           2 small items [n, 2, 3]
//! bits 4-7  0: read every item; k > 0: read at most k - 1 items
//! ```
//!
//! The reader must answer with an array or a `DataError`, never a panic, and an array
//! must be what it says it is. Each file is read twice, from a slice and from a source
//! that hands out at most 7 bytes per `read`: how a source chunks its bytes must not
//! change an array that is read. It may change *which* error is reported: the gzip
//! decoder decodes some kilobytes ahead of what is asked for, so with all bytes at
//! hand it can meet a corrupt deflate stream before the header is checked, and with a
//! limit it can meet corruption just after the items asked for, which a reader given
//! 7 bytes at a time never reaches.

#[path = "../fuzz_common/mod.rs"]
mod fuzz_common;

use std::path::Path;

use agdlab::data::mnist::{read_idx_u8_from, IdxArray};
use agdlab::data::{DataError, DataErrorKind};
use fuzz_common::{presented, SmallReads};

/// Read `input` as the control byte says and panic if an answer breaks a rule above.
pub fn check(input: &[u8]) {
    let Some((&control, bytes)) = input.split_first() else {
        return;
    };
    let file = presented(control & 0b11, bytes);
    let (inner_dims, what): (&[u32], &'static str) = match (control >> 2) & 0b11 {
        1 => (&[28, 28], "images of 28x28"),
        2 => (&[2, 3], "items of 2x3"),
        _ => (&[], "labels"),
    };
    let max_items = match control >> 4 {
        0 => None,
        k => Some(usize::from(k) - 1),
    };
    let name = Path::new("fuzz input");

    let from_slice = read_idx_u8_from(&file[..], name, inner_dims, what, max_items);
    let in_small_reads = read_idx_u8_from(SmallReads(&file), name, inner_dims, what, max_items);
    for answer in [&from_slice, &in_small_reads] {
        match answer {
            Ok(array) => check_array(array, inner_dims, max_items),
            Err(e) => {
                assert_eq!(e.path(), name);
                let _shown = e.to_string();
            }
        }
    }
    match (&from_slice, &in_small_reads) {
        (Ok(a), Ok(b)) => assert_eq!(
            a, b,
            "the same file read 7 bytes at a time gave another array"
        ),
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => {
            // Only a limit leaves bytes unread, and only the gzip decoder reads ahead.
            assert!(
                max_items.is_some() && matches!(e.kind(), DataErrorKind::Gzip(_)),
                "read from a slice: {}; read 7 bytes at a time: {}",
                summary(&from_slice),
                summary(&in_small_reads)
            );
        }
    }
}

/// An array holds the items it says, of the shape asked for.
fn check_array(array: &IdxArray, inner_dims: &[u32], max_items: Option<usize>) {
    let inner: Vec<usize> = inner_dims.iter().map(|&d| d as usize).collect();
    assert_eq!(array.dims[1..], inner[..], "inner dimensions");
    let count = array.dims[0];
    assert_eq!(
        array.items,
        max_items.map_or(count, |k| k.min(count)),
        "items read"
    );
    assert_eq!(
        array.data.len(),
        array.items * inner.iter().product::<usize>(),
        "payload length"
    );
}

fn summary(answer: &Result<IdxArray, DataError>) -> String {
    match answer {
        Ok(array) => format!("{:?} with {} items", array.dims, array.items),
        Err(e) => e.to_string(),
    }
}
