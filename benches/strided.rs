//! Copies and element-wise ops on strided views at ResNet activation shapes, each next
//! to a contiguous copy of the same number of bytes.
//!
//! For every shape `[n, c, h, w]` (the activations after ResNet stages at batch 128,
//! and the large `[128, 16, 64, 64]`) the groups are:
//!
//! - `permute_copy`: `contiguous()` of an NCHW tensor permuted to NHWC
//!   (`permute(&[0, 2, 3, 1])`) and of an NHWC tensor permuted back to NCHW
//!   (`permute(&[0, 3, 1, 2])`);
//! - `narrow_copy`: `contiguous()` of the interior `narrow(2, 1, h - 2).narrow(3, 1, w - 2)`;
//! - `add_scalar`: `add_scalar` on the NHWC-permuted view, and on a contiguous tensor;
//! - `add`: the permuted view plus a contiguous NHWC tensor, and two contiguous tensors.
//!
//! Each group's `contiguous_copy` is `to_vec()` of a contiguous tensor with as many
//! elements as the result (an allocation and a `memcpy`), so the ratio of a line to it
//! is the cost of the strided walk. Runs with `RAYON_NUM_THREADS` rayon threads (default
//! 1); compare one thread with two:
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench strided -- --warm-up-time 1 --measurement-time 3
//! RAYON_NUM_THREADS=2 cargo bench --bench strided -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! A filter picks one shape, e.g. `-- 128x16x64x64`.

#[path = "common/pool.rs"]
mod pool;

use agdlab_tensor::Tensor;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Size rayon's global pool: `RAYON_NUM_THREADS` threads, 1 when unset, the bench's
/// thread among them (see `common/pool.rs`). With one thread the ops take the serial
/// path.
fn single_threaded_by_default() {
    pool::use_this_thread_in_the_pool(Some(1));
}

/// NCHW activation shapes: ResNet stage outputs at batch 128, and one large map.
const SHAPES: [[usize; 4]; 4] = [
    [128, 16, 32, 32],
    [128, 32, 16, 16],
    [128, 64, 8, 8],
    [128, 16, 64, 64],
];

/// NCHW -> NHWC.
const TO_NHWC: [usize; 4] = [0, 2, 3, 1];
/// NHWC -> NCHW.
const TO_NCHW: [usize; 4] = [0, 3, 1, 2];

fn strided_views(c: &mut Criterion) {
    single_threaded_by_default();
    let mut rng = StdRng::seed_from_u64(0);
    for [n, ch, h, w] in SHAPES {
        let name = format!("{n}x{ch}x{h}x{w}");
        let nchw = Tensor::uniform(&[n, ch, h, w], -1.0, 1.0, &mut rng);
        let nhwc = Tensor::uniform(&[n, h, w, ch], -1.0, 1.0, &mut rng);
        let numel = nchw.numel();

        let mut group = c.benchmark_group(format!("permute_copy/{name}"));
        group.throughput(Throughput::Bytes(4 * numel as u64));
        group.bench_function("contiguous_copy", |b| b.iter(|| nchw.to_vec()));
        group.bench_function("nchw_to_nhwc", |b| {
            b.iter(|| nchw.permute(&TO_NHWC).contiguous())
        });
        group.bench_function("nhwc_to_nchw", |b| {
            b.iter(|| nhwc.permute(&TO_NCHW).contiguous())
        });
        group.finish();

        let interior = nchw.narrow(2, 1, h - 2).narrow(3, 1, w - 2);
        let same_size = Tensor::uniform(interior.shape(), -1.0, 1.0, &mut rng);
        let mut group = c.benchmark_group(format!("narrow_copy/{name}"));
        group.throughput(Throughput::Bytes(4 * interior.numel() as u64));
        group.bench_function("contiguous_copy", |b| b.iter(|| same_size.to_vec()));
        group.bench_function("interior", |b| b.iter(|| interior.contiguous()));
        group.finish();

        let permuted = nchw.permute(&TO_NHWC);
        let mut group = c.benchmark_group(format!("add_scalar/{name}"));
        group.throughput(Throughput::Bytes(4 * numel as u64));
        group.bench_function("contiguous_copy", |b| b.iter(|| nhwc.to_vec()));
        group.bench_function("contiguous", |b| b.iter(|| nhwc.add_scalar(1.0)));
        group.bench_function("permuted", |b| b.iter(|| permuted.add_scalar(1.0)));
        group.finish();

        let mut group = c.benchmark_group(format!("add/{name}"));
        group.throughput(Throughput::Bytes(4 * numel as u64));
        group.bench_function("contiguous_copy", |b| b.iter(|| nhwc.to_vec()));
        group.bench_function("contiguous", |b| b.iter(|| nhwc.add(&nhwc)));
        group.bench_function("permuted", |b| b.iter(|| permuted.add(&nhwc)));
        group.finish();
    }
}

criterion_group!(benches, strided_views);
criterion_main!(benches);
