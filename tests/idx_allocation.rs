//! The IDX reader must not trust the item count in a header when it allocates: a small
//! file that claims 2^31 images has to cost memory in proportion to what it holds, and
//! end in a `Truncated` error, not in an allocation of terabytes (or gigabytes: a bound
//! derived from the compressed size, 1032 times it, is still far too much).
//!
//! A counting global allocator (`agdlab::tensor::alloc_count`) measures the peak of live
//! heap bytes during each read. It sees every allocation of this test binary, so this
//! file holds a single test: no other test runs beside it.

mod common;
use common::temp_dir;

use std::fs;
use std::io::Write;

use agdlab::data::mnist::read_idx_u8;
use agdlab::data::DataErrorKind;
use agdlab::tensor::alloc_count::{measure, CountingAllocator};
use flate2::write::GzEncoder;
use flate2::Compression;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// `n` bytes that deflate cannot shrink (xorshift), so the gzip file is as large as its
/// content and a bound derived from the compressed size is large too.
fn incompressible(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn a_huge_count_in_a_small_file_allocates_only_what_the_file_holds() {
    // Header: 2^31 images of 28x28 (1.7 TB); payload: 100 images' worth, 78,400 bytes.
    let payload = incompressible(100 * 784);
    let mut idx = 0x0000_0803u32.to_be_bytes().to_vec();
    for d in [1u32 << 31, 28, 28] {
        idx.extend_from_slice(&d.to_be_bytes());
    }
    idx.extend_from_slice(&payload);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&idx).unwrap();
    let gz = gz.finish().unwrap();

    let dir = temp_dir("idx-alloc");
    let raw_path = dir.join("train-images-idx3-ubyte");
    let gz_path = dir.join("train-images-idx3-ubyte.gz");
    fs::write(&raw_path, &idx).unwrap();
    fs::write(&gz_path, &gz).unwrap();

    // Generous for the decoder's state, buffers and the error, yet far below what a
    // size derived from the header (1.7 TB) or from the gzip size (1032 x 78 kB = 81 MB)
    // would reserve.
    let bound = 8 * payload.len() + (1 << 20);
    for path in [&raw_path, &gz_path] {
        let (result, stats) = measure(|| read_idx_u8(path, &[28, 28], "images of 28x28"));
        let peak = stats.peak;
        let e = result.expect_err("a file claiming 2^31 images but holding 100 must fail");
        match e.kind() {
            DataErrorKind::Truncated {
                items,
                expected_bytes,
                found_bytes,
                ..
            } => {
                assert_eq!(*items, 1 << 31, "{e}");
                assert_eq!(*expected_bytes, (1u64 << 31) * 784, "{e}");
                assert_eq!(*found_bytes, payload.len() as u64, "{e}");
            }
            _ => panic!("{}: expected Truncated, got {e}", path.display()),
        }
        assert!(
            peak <= bound,
            "{}: reading {} payload bytes peaked at {peak} live heap bytes (bound {bound})",
            path.display(),
            payload.len()
        );
    }
}
