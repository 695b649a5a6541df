//! When to use threads, and the few loops that do.
//!
//! Small tensors run serially: a rayon task costs a few microseconds, more than a
//! 10k-element add. Above [`PARALLEL_THRESHOLD`] elements, loops split into chunks of at
//! least [`MIN_CHUNK`] elements on rayon's pool. Matmul also splits its work on rayon
//! (see `matmul.rs`), so rayon is the one source of threads: `RAYON_NUM_THREADS` or a
//! `rayon::ThreadPool::install` sets how many for everything.

use rayon::prelude::*;

use crate::layout::Layout;

/// Element count above which element-wise loops and reductions go parallel.
pub const PARALLEL_THRESHOLD: usize = 1 << 15;

/// Smallest chunk of elements a parallel task gets.
pub const MIN_CHUNK: usize = 1 << 13;

/// True when a loop over `n` elements should use rayon.
#[inline]
pub fn worth_parallel(n: usize) -> bool {
    n >= PARALLEL_THRESHOLD && rayon::current_num_threads() > 1
}

/// `out[i] = f(input[i])`, in parallel chunks when large.
pub fn map_slice(input: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    if worth_parallel(input.len()) {
        input.par_iter().with_min_len(MIN_CHUNK).map(|&x| f(x)).collect()
    } else {
        input.iter().map(|&x| f(x)).collect()
    }
}

/// `out[i] = f(a[i], b[i])`, in parallel chunks when large.
pub fn zip_slices(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    debug_assert_eq!(a.len(), b.len());
    if worth_parallel(a.len()) {
        a.par_iter().zip(b.par_iter()).with_min_len(MIN_CHUNK).map(|(&x, &y)| f(x, y)).collect()
    } else {
        a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
    }
}

/// `a[i] = f(a[i], b[i])` in place, in parallel chunks when large.
pub fn zip_assign(a: &mut [f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    debug_assert_eq!(a.len(), b.len());
    if worth_parallel(a.len()) {
        a.par_iter_mut().zip(b.par_iter()).with_min_len(MIN_CHUNK).for_each(|(x, &y)| *x = f(*x, y));
    } else {
        a.iter_mut().zip(b).for_each(|(x, &y)| *x = f(*x, y));
    }
}

/// Copy a strided view into a row-major buffer, a row of the last dimension at a time
/// (a `memcpy` when the row is contiguous, a fill when it is broadcast), in parallel
/// over rows when large.
pub fn gather_strided(storage: &[f32], layout: &Layout) -> Vec<f32> {
    if let Some(range) = layout.contiguous_range() {
        return storage[range].to_vec();
    }
    let n = layout.numel();
    let rank = layout.rank();
    if n == 0 || rank == 0 {
        return layout.offsets().map(|o| storage[o]).collect();
    }
    let inner = layout.shape()[rank - 1];
    let stride = layout.strides()[rank - 1];
    let row_starts = layout.squeeze(rank - 1);
    let copy_row = |dst: &mut [f32], start: usize| match stride {
        1 => dst.copy_from_slice(&storage[start..start + inner]),
        0 => dst.fill(storage[start]),
        _ => dst.iter_mut().enumerate().for_each(|(j, d)| *d = storage[start + j * stride]),
    };
    let mut out = vec![0.0; n];
    if worth_parallel(n) && inner > 0 {
        let rows_per_task = (MIN_CHUNK / inner).max(1);
        out.par_chunks_mut(rows_per_task * inner).enumerate().for_each(|(task, chunk)| {
            let starts = row_starts.offsets().skip(task * rows_per_task);
            for (dst, start) in chunk.chunks_mut(inner).zip(starts) {
                copy_row(dst, start);
            }
        });
    } else if inner > 0 {
        for (dst, start) in out.chunks_mut(inner).zip(row_starts.offsets()) {
            copy_row(dst, start);
        }
    }
    out
}
