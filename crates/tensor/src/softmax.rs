//! Softmax, log-softmax and log-sum-exp along one dimension, numerically stable.
//!
//! Each row (the elements along `dim`) is shifted by its maximum before `exp`, so
//! `exp` never overflows: `softmax(x) = exp(x - m) / Σ exp(x - m)` and
//! `logsumexp(x) = m + ln Σ exp(x - m)` with `m = max(x)`. When `dim` is the last
//! dimension of a contiguous tensor the rows are slices of the buffer and are used in
//! place; otherwise `dim` is moved last (one copy), the rows are computed, and the
//! result is copied back into the original dimension order. Results are contiguous.

use rayon::prelude::*;

use std::mem::MaybeUninit;

use crate::exp::{exp_shifted_init, exp_shifted_into, sum_exp_shifted};
use crate::parallel::{filled_buffer, worth_parallel, MIN_CHUNK};
use crate::reduce::dim_last_order;
use crate::tensor::Tensor;

impl Tensor {
    /// `exp(x) / Σ exp(x)` along `dim`; every row sums to 1.
    ///
    /// PyTorch equivalent: `torch.softmax(t, dim)`.
    ///
    /// # Panics
    /// When `dim` is out of range.
    pub fn softmax(&self, dim: usize) -> Tensor {
        self.map_rows("softmax", dim, |x, out| {
            let scale = (1.0 / exp_shifted_into(x, row_shift(x), out)) as f32;
            out.iter_mut().for_each(|o| *o *= scale);
        })
    }

    /// `softmax` along the last dimension and each row's `logsumexp`, from one pass of
    /// `exp`. The probabilities are contiguous with `self`'s shape; the log-sum-exps are
    /// one per row, in row-major order.
    ///
    /// PyTorch equivalent: `(torch.softmax(t, -1), torch.logsumexp(t, -1))`.
    ///
    /// # Panics
    /// When the tensor is a scalar.
    pub fn softmax_with_logsumexp(&self) -> (Tensor, Vec<f32>) {
        self.softmax_rows_then(|_, row, inv_sum| row.iter_mut().for_each(|e| *e *= inv_sum))
    }

    /// The rows of `exp(x - max)` along the last dimension, each handed to
    /// `finish(i, row, 1/Σ row)` while it is still in cache, and each row's `logsumexp`.
    /// `finish` leaves in row `i` (in row-major order) whatever the result holds there:
    /// [`Tensor::softmax_with_logsumexp`] scales it into probabilities; cross-entropy
    /// forms its gradient `(p - q)/N` in the same pass, so that a 10,000-word model's
    /// 28 MB of probabilities are not written once and then read and rewritten.
    ///
    /// # Panics
    /// When the tensor is a scalar.
    pub fn softmax_rows_then(
        &self,
        finish: impl Fn(usize, &mut [f32], f32) + Sync,
    ) -> (Tensor, Vec<f32>) {
        assert!(
            self.rank() >= 1,
            "softmax_rows_then: needs rank >= 1, got shape {:?}",
            self.shape()
        );
        let len = self.shape()[self.rank() - 1];
        let rows = self.contiguous();
        let data = rows.as_slice().expect("contiguous");
        // One per row; a row of no terms has log-sum-exp -inf (as `logsumexp` gives).
        let row_count: usize = self.shape()[..self.rank() - 1].iter().product();
        let mut lse = vec![if len == 0 { f32::NEG_INFINITY } else { 0.0 }; row_count];
        let row = |i: usize, x: &[f32], out: &mut [MaybeUninit<f32>], lse: &mut f32| {
            let shift = row_shift(x);
            let (out, sum) = exp_shifted_init(x, shift, out);
            finish(i, out, (1.0 / sum) as f32);
            *lse = shift + sum.ln() as f32;
        };
        // The output is written row by row, never zeroed first.
        let fill = |probs: &mut [MaybeUninit<f32>]| {
            if len == 0 {
                return;
            }
            if worth_parallel(data.len()) {
                data.par_chunks(len)
                    .zip(probs.par_chunks_mut(len))
                    .zip(lse.par_iter_mut())
                    .enumerate()
                    .with_min_len((MIN_CHUNK / len).max(1))
                    .for_each(|(i, ((x, out), lse))| row(i, x, out, lse));
            } else {
                data.chunks(len)
                    .zip(probs.chunks_mut(len))
                    .zip(lse.iter_mut())
                    .enumerate()
                    .for_each(|(i, ((x, out), lse))| row(i, x, out, lse));
            }
        };
        // SAFETY: `probs` has `data.len()` elements, cut into the rows of `data` (none
        // when `len == 0`, and then `data` is empty too), and `exp_shifted_init` writes
        // every element of each row.
        let probs = unsafe { filled_buffer(data.len(), fill) };
        (Tensor::from_contiguous(probs, self.shape()), lse)
    }

    /// `x - logsumexp(x)` along `dim`, without forming `softmax` (stays finite where
    /// `ln(softmax)` would underflow to `-inf`).
    ///
    /// PyTorch equivalent: `torch.log_softmax(t, dim)`.
    ///
    /// # Panics
    /// When `dim` is out of range.
    pub fn log_softmax(&self, dim: usize) -> Tensor {
        self.map_rows("log_softmax", dim, |x, out| {
            let lse = logsumexp_row(x);
            for (o, &v) in out.iter_mut().zip(x) {
                *o = v - lse;
            }
        })
    }

    /// `ln Σ exp(x)` along `dim`; with `keepdim` the dimension stays as size 1.
    ///
    /// PyTorch equivalent: `torch.logsumexp(t, dim, keepdim)`.
    ///
    /// # Panics
    /// When `dim` is out of range.
    pub fn logsumexp(&self, dim: usize, keepdim: bool) -> Tensor {
        self.check_dim("logsumexp", dim);
        let len = self.shape()[dim];
        let rows = self.rows_last("logsumexp", dim);
        let data = rows.as_slice().expect("contiguous");
        let mut shape = self.shape().to_vec();
        if keepdim {
            shape[dim] = 1;
        } else {
            shape.remove(dim);
        }
        if len == 0 {
            // The sum of no terms is 0, its log -inf (as in PyTorch).
            return Tensor::full(&shape, f32::NEG_INFINITY);
        }
        let values: Vec<f32> = if worth_parallel(data.len()) {
            data.par_chunks(len)
                .with_min_len((MIN_CHUNK / len).max(1))
                .map(logsumexp_row)
                .collect()
        } else {
            data.chunks(len).map(logsumexp_row).collect()
        };
        Tensor::from_contiguous(values, &shape)
    }

    /// This tensor with `dim` moved last (the others keep their order), contiguous:
    /// a view when it already is.
    fn rows_last(&self, op: &str, dim: usize) -> Tensor {
        self.check_dim(op, dim);
        self.permute(&dim_last_order(self.rank(), dim)).contiguous()
    }

    /// Apply `f(row, out_row)` to every row along `dim`; the result has `self`'s shape.
    fn map_rows(&self, op: &str, dim: usize, f: impl Fn(&[f32], &mut [f32]) + Sync) -> Tensor {
        let last = self.rank().saturating_sub(1);
        let rows = self.rows_last(op, dim);
        let len = self.shape()[dim];
        let data = rows.as_slice().expect("contiguous");
        let mut out = vec![0.0; data.len()];
        if len > 0 {
            if worth_parallel(data.len()) {
                out.par_chunks_mut(len)
                    .zip(data.par_chunks(len))
                    .with_min_len((MIN_CHUNK / len).max(1))
                    .for_each(|(o, x)| f(x, o));
            } else {
                out.chunks_mut(len)
                    .zip(data.chunks(len))
                    .for_each(|(o, x)| f(x, o));
            }
        }
        let result = Tensor::from_contiguous(out, rows.shape());
        if dim == last {
            result
        } else {
            // Undo `dim_last_order`: the last dimension goes back to `dim`.
            let mut back: Vec<usize> = (0..last).collect();
            back.insert(dim, last);
            result.permute(&back).contiguous()
        }
    }
}

/// The row maximum to subtract before `exp`, or 0 when it is infinite (all `-inf`
/// rows then give `exp = 0`, and `+inf` propagates as in PyTorch).
fn row_shift(x: &[f32]) -> f32 {
    // Eight independent lanes, so the loop vectorises.
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut groups = x.chunks_exact(8);
    for group in &mut groups {
        for (lane, &v) in lanes.iter_mut().zip(group) {
            *lane = lane.max(v);
        }
    }
    let max = lanes
        .iter()
        .chain(groups.remainder())
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    if max.is_finite() {
        max
    } else {
        0.0
    }
}

/// `ln Σ exp(x)` of one row (`exp` dominates the cost).
fn logsumexp_row(x: &[f32]) -> f32 {
    let shift = row_shift(x);
    shift + sum_exp_shifted(x, shift).ln() as f32
}
