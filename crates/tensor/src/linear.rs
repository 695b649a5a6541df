//! A fully connected layer's forward product, `x · Wᵀ + b`, with the bias folded into
//! the product when that saves a pass over the output.
//!
//! The plain way fills the output with `b` broadcast to every row, then multiplies with
//! `beta = 1` (`C = x·Wᵀ + C`): a write of the whole output, and a read of it inside
//! the product. For a language model's decoder (`[700, 200] · [200, 10000]` at batch 20
//! × 35) that is 28 MB each way. A large product instead multiplies
//! `[x | 1] · [Wᵀ ; bᵀ]`: one more term in each sum (`b[j]·1`, the last), and the
//! output is written once. `Wᵀ` is copied row-major for it, which `matmul` would do
//! anyway for such a product (its `Reorder`), and `x` is copied column-major with its
//! column of ones (a small copy: its other side is the long one). On the PTB decoder at
//! one thread the forward product took 39.7 -> 36.2 ms and 36.6 -> 31.5 ms in two runs
//! (medians of 8, the two ways alternated).
//!
//! Each sum is the product's own followed by `+ b[j]`, as in the plain way; the two
//! agree to rounding, and give the same bits when the inner dimension is not cut into
//! blocks by `sgemm` (at most 256).

use std::mem::MaybeUninit;

use crate::matmul::{matmul_into, reorders_column_major_b};
use crate::parallel::gather_strided_into;
use crate::tensor::Tensor;

impl Tensor {
    /// `self · weightᵀ + bias` for `self: [rows, in]`, `weight: [out, in]` (PyTorch's
    /// layout) and an optional `bias: [out]`, giving `[rows, out]`. A large product
    /// folds the bias into the product (see the module documentation).
    ///
    /// PyTorch equivalent: `torch.nn.functional.linear(x, weight, bias)` (2-D `x`).
    ///
    /// # Panics
    /// When `self` or `weight` is not 2-D, or the shapes do not fit each other; the
    /// message names `linear` and the shapes.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let fits = self.rank() == 2 && weight.rank() == 2 && self.shape()[1] == weight.shape()[1];
        assert!(
            fits,
            "linear: input {:?} does not fit weight {:?} (expected [rows, {}])",
            self.shape(),
            weight.shape(),
            weight.shape().get(1).copied().unwrap_or(0)
        );
        let (rows, fan_in, fan_out) = (self.shape()[0], weight.shape()[1], weight.shape()[0]);
        let Some(bias) = bias else {
            return self.matmul(&weight.t());
        };
        assert_eq!(
            bias.shape(),
            &[fan_out],
            "linear: bias {:?} does not fit weight {:?}",
            bias.shape(),
            weight.shape()
        );
        if !folds_bias(rows, fan_in, fan_out) {
            let mut out = bias.broadcast_to(&[rows, fan_out]).contiguous();
            matmul_into(self, &weight.t(), &mut out, 1.0, 1.0);
            return out;
        }
        // `[x | 1]`, stored column-major: `xᵀ` and then a row of ones.
        let x_t = self.t();
        let ones = Tensor::ones(&[1, rows]);
        let x_ones_t = stacked_rows(&[&x_t, &ones]);
        // `[Wᵀ ; bᵀ]`, row-major: `Wᵀ` and then the bias as one more row.
        let w_t = weight.t();
        let bias_row = bias.reshape_to(&[1, fan_out]);
        let w_bias_t = stacked_rows(&[&w_t, &bias_row]);
        x_ones_t.t().matmul(&w_bias_t)
    }
}

/// True when `linear` folds the bias of a `[rows, fan_in] · [fan_in, fan_out]` product
/// into it: when the plain product `x · Wᵀ` would copy `Wᵀ` row-major anyway.
fn folds_bias(rows: usize, fan_in: usize, fan_out: usize) -> bool {
    reorders_column_major_b(rows, fan_in, fan_out)
}

/// The rows of 2-D views of one width, one view after the other, copied into a new
/// row-major tensor (a transposed view is copied in tiles, as `contiguous` does).
fn stacked_rows(parts: &[&Tensor]) -> Tensor {
    let cols = parts[0].shape()[1];
    let rows: usize = parts.iter().map(|p| p.shape()[0]).sum();
    let mut data: Vec<f32> = Vec::with_capacity(rows * cols);
    let mut at = 0;
    for part in parts {
        debug_assert_eq!(part.shape()[1], cols, "stacked_rows: widths differ");
        let len = part.numel();
        let spare: &mut [MaybeUninit<f32>] = &mut data.spare_capacity_mut()[at..at + len];
        gather_strided_into(part.storage(), part.layout(), spare);
        at += len;
    }
    // SAFETY: the parts' elements add up to `rows * cols`, the capacity, and
    // `gather_strided_into` wrote every element of each part's range, which tile
    // `0..rows * cols` in order.
    unsafe { data.set_len(rows * cols) };
    Tensor::from_contiguous(data, &[rows, cols])
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    /// `x·Wᵀ + b` in f64, from the views' elements.
    fn reference(x: &Tensor, w: &Tensor, b: &Tensor) -> Vec<f64> {
        let (x, w, b) = (x.to_vec(), w.to_vec(), b.to_vec());
        let (fan_out, fan_in) = (b.len(), w.len() / b.len());
        let rows = x.len() / fan_in;
        let mut out = Vec::with_capacity(rows * fan_out);
        for i in 0..rows {
            for j in 0..fan_out {
                let dot: f64 = (0..fan_in)
                    .map(|p| x[i * fan_in + p] as f64 * w[j * fan_in + p] as f64)
                    .sum();
                out.push(dot + b[j] as f64);
            }
        }
        out
    }

    #[test]
    fn folded_and_plain_bias_agree_with_a_reference() {
        let mut rng = StdRng::seed_from_u64(3);
        // Folded (large), plain (few rows), and folded with a transposed input view.
        for (rows, fan_in, fan_out, transposed_x) in [
            (300, 37, 250, false),
            (9, 37, 250, false),
            (260, 40, 300, true),
        ] {
            assert_eq!(
                folds_bias(rows, fan_in, fan_out),
                rows >= 256,
                "the cases cover both ways"
            );
            let x = if transposed_x {
                Tensor::normal(&[fan_in, rows], 0.0, 1.0, &mut rng).t()
            } else {
                Tensor::normal(&[rows, fan_in], 0.0, 1.0, &mut rng)
            };
            let w = Tensor::normal(&[fan_out, fan_in], 0.0, 1.0, &mut rng);
            let b = Tensor::normal(&[fan_out], 0.0, 1.0, &mut rng);
            let got = x.linear(&w, Some(&b));
            assert_eq!(got.shape(), &[rows, fan_out]);
            for (k, (g, want)) in got.to_vec().iter().zip(reference(&x, &w, &b)).enumerate() {
                let tolerance = 1e-5 * (fan_in as f64).sqrt() * (1.0 + want.abs());
                assert!(
                    (*g as f64 - want).abs() <= tolerance,
                    "rows {rows}: element {k} is {g}, expected {want}"
                );
            }
            let plain = {
                let mut out = b.broadcast_to(&[rows, fan_out]).contiguous();
                matmul_into(&x, &w.t(), &mut out, 1.0, 1.0);
                out
            };
            let bits = |t: &Tensor| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&got),
                bits(&plain),
                "rows {rows}: same bits as the plain way"
            );
        }
    }

    #[test]
    fn without_a_bias_it_is_the_product_with_the_transpose() {
        let mut rng = StdRng::seed_from_u64(4);
        let x = Tensor::normal(&[300, 20], 0.0, 1.0, &mut rng);
        let w = Tensor::normal(&[30, 20], 0.0, 1.0, &mut rng);
        assert_eq!(x.linear(&w, None).to_vec(), x.matmul(&w.t()).to_vec());
    }

    #[test]
    #[should_panic(expected = "linear: bias [29] does not fit weight [30, 20]")]
    fn a_bias_of_the_wrong_size_names_both_shapes() {
        let x = Tensor::zeros(&[4, 20]);
        x.linear(&Tensor::zeros(&[30, 20]), Some(&Tensor::zeros(&[29])));
    }
}
