//! Per-channel kernels of batch normalisation over `[n, c, *]` tensors: statistics, the
//! normalising affine map, and the sums its backward pass needs.
//!
//! Channel `c` of an `[n, c, l]` tensor (trailing dimensions flattened into `l`) is `n`
//! runs of `l` contiguous elements, one per image: a plane. Every loop here walks planes,
//! split across rayon's pool when the tensor is large; per-plane sums are f32 over
//! 8 lanes, combined per channel in f64, so the statistics of a 100,000-element
//! channel keep their precision. The mean and variance take one pass over memory: each
//! plane's sum, then its squared deviations from its own mean while it is in cache,
//! combined per channel in f64 (Chan, Golub and LeVeque's pairwise update). Like two
//! passes (the mean first, then the squared deviations from it), this stays accurate
//! when the mean is large next to the spread, which the one-pass `Σx² - (Σx)²/m` does
//! not.

use rayon::prelude::*;

use crate::parallel::{map_planes, worth_parallel, zip_planes};
use crate::tensor::Tensor;

/// `[n, c, l]` of a tensor of rank ≥ 2 (the trailing dimensions flattened).
///
/// # Panics
/// When the rank is below 2; the message names `op`.
pub fn channel_layout(op: &str, shape: &[usize]) -> [usize; 3] {
    assert!(shape.len() >= 2, "{op}: needs [n, c, ...], got {shape:?}");
    [shape[0], shape[1], shape[2..].iter().product()]
}

/// Sum of a run in f32 over 8 lanes (vectorised), returned as f64.
fn lane_sum(xs: impl Iterator<Item = f32>) -> f64 {
    let mut lanes = [0.0f32; 8];
    for (i, x) in xs.enumerate() {
        lanes[i % 8] += x;
    }
    lanes.iter().map(|&v| v as f64).sum()
}

fn plane_sum(plane: &[f32]) -> f64 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = plane.chunks_exact(8);
    for chunk in &mut chunks {
        for (l, &x) in lanes.iter_mut().zip(chunk) {
            *l += x;
        }
    }
    lanes.iter().map(|&v| v as f64).sum::<f64>() + lane_sum(chunks.remainder().iter().copied())
}

/// `f(channel, plane)` summed per channel: one value per plane (in parallel when
/// large), then added up per channel in f64.
fn per_channel(
    x: &[f32],
    [n, c, l]: [usize; 3],
    f: impl Fn(usize, &[f32]) -> f64 + Sync,
) -> Vec<f64> {
    let mut sums = vec![0.0f64; c];
    if l == 0 || c == 0 {
        return sums;
    }
    let plane_value = |(p, plane): (usize, &[f32])| f(p % c, plane);
    let per_plane: Vec<f64> = if worth_parallel(x.len()) {
        x.par_chunks(l).enumerate().map(plane_value).collect()
    } else {
        x.chunks(l).enumerate().map(plane_value).collect()
    };
    debug_assert_eq!(per_plane.len(), n * c);
    for (p, v) in per_plane.into_iter().enumerate() {
        sums[p % c] += v;
    }
    sums
}

/// Per-channel sums of two tensors of one shape, `Σ f(a, b)` over each channel's
/// elements, for a pair of plane loops fused into one pass.
fn per_channel_pair(
    a: &[f32],
    b: &[f32],
    layout: [usize; 3],
    f: impl Fn(usize, &[f32], &[f32]) -> (f64, f64) + Sync,
) -> (Vec<f64>, Vec<f64>) {
    let [_, c, l] = layout;
    let mut sums = (vec![0.0f64; c], vec![0.0f64; c]);
    if l == 0 || c == 0 {
        return sums;
    }
    let plane_value = |(p, (a, b)): (usize, (&[f32], &[f32]))| f(p % c, a, b);
    let per_plane: Vec<(f64, f64)> = if worth_parallel(a.len()) {
        a.par_chunks(l)
            .zip(b.par_chunks(l))
            .enumerate()
            .map(plane_value)
            .collect()
    } else {
        a.chunks(l)
            .zip(b.chunks(l))
            .enumerate()
            .map(plane_value)
            .collect()
    };
    for (p, (u, v)) in per_plane.into_iter().enumerate() {
        sums.0[p % c] += u;
        sums.1[p % c] += v;
    }
    sums
}

/// The per-channel sum of `[n, c, ...]`: `[c]`. PyTorch equivalent: `x.sum((0, 2, 3))`
/// for NCHW.
///
/// # Panics
/// When the rank is below 2.
pub fn channel_sums(x: &Tensor) -> Tensor {
    let layout = channel_layout("channel_sums", x.shape());
    let x = x.contiguous();
    let sums = per_channel(x.as_slice().expect("contiguous"), layout, |_, plane| {
        plane_sum(plane)
    });
    Tensor::from_contiguous(sums.into_iter().map(|s| s as f32).collect(), &[layout[1]])
}

/// Per-channel mean and biased variance (divided by the count `n·l`) of `[n, c, ...]`,
/// each `[c]`, in one pass over memory (see the module documentation).
///
/// PyTorch equivalent: `x.mean((0, 2, 3))` and `x.var((0, 2, 3), unbiased=False)`.
///
/// # Panics
/// When the rank is below 2.
pub fn channel_mean_var(x: &Tensor) -> (Tensor, Tensor) {
    let [n, c, l] = channel_layout("channel_mean_var", x.shape());
    let x = x.contiguous();
    let x = x.as_slice().expect("contiguous");
    // Each plane's sum, and its squared deviations from its own mean rounded to f32
    // (`center`), the second loop reading the plane from cache.
    let plane_stats = |plane: &[f32]| {
        let sum = plane_sum(plane);
        let center = (sum / l as f64) as f32;
        let squares = lane_sum(plane.iter().map(|&v| (v - center) * (v - center)));
        (sum, center as f64, squares)
    };
    let planes: Vec<(f64, f64, f64)> = if l == 0 {
        Vec::new()
    } else if worth_parallel(x.len()) {
        x.par_chunks(l).map(plane_stats).collect()
    } else {
        x.chunks(l).map(plane_stats).collect()
    };
    let count = (n * l).max(1) as f64;
    let mut mean = vec![0.0f64; c];
    for (p, &(sum, _, _)) in planes.iter().enumerate() {
        mean[p % c] += sum;
    }
    mean.iter_mut().for_each(|m| *m /= count);
    // Per channel, Σ (v - μ)² over its planes, from each plane's squares about its
    // center a: Σ (v - a)² + 2·(a - μ)·Σ (v - a) + l·(a - μ)².
    let mut m2 = vec![0.0f64; c];
    for (p, &(sum, center, squares)) in planes.iter().enumerate() {
        let d = center - mean[p % c];
        m2[p % c] += squares + 2.0 * d * (sum - l as f64 * center) + l as f64 * d * d;
    }
    (
        Tensor::from_contiguous(mean.iter().map(|&m| m as f32).collect(), &[c]),
        Tensor::from_contiguous(
            m2.iter().map(|&s| (s / count).max(0.0) as f32).collect(),
            &[c],
        ),
    )
}

/// `y = x·scale[c] + shift[c]` on every element of channel `c` of `[n, c, ...]`: the
/// normalising map of batch norm once its statistics and affine parameters are folded
/// into one scale and one shift per channel. With `relu`, `y = max(y, 0)` in the same
/// pass (NaN staying NaN).
///
/// # Panics
/// When the rank is below 2 or `scale`/`shift` do not hold one value per channel.
pub fn channel_affine(x: &Tensor, scale: &[f32], shift: &[f32], relu: bool) -> Tensor {
    let [_, c, l] = channel_layout("channel_affine", x.shape());
    assert!(
        scale.len() == c && shift.len() == c,
        "channel_affine: {} scales and {} shifts for {c} channels of {:?}",
        scale.len(),
        shift.len(),
        x.shape()
    );
    let source = x.contiguous();
    let input = source.as_slice().expect("contiguous");
    let per_channel = |p: usize| (scale[p % c], shift[p % c]);
    let out = if relu {
        map_planes(input, l, per_channel, |x, &(s, t)| {
            let y = x * s + t;
            if y <= 0.0 {
                0.0
            } else {
                y
            }
        })
    } else {
        map_planes(input, l, per_channel, |x, &(s, t)| x * s + t)
    };
    Tensor::from_contiguous(out, x.shape())
}

/// The two per-channel sums batch norm's backward pass needs, in one pass over
/// `grad_out` and `x` (both `[n, c, ...]`): `Σ dy` and `Σ dy·(x - mean[c])`.
///
/// # Panics
/// When the shapes differ, the rank is below 2 or `mean` is not `[c]`.
pub fn batch_norm_grad_sums(grad_out: &Tensor, x: &Tensor, mean: &[f32]) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(
        grad_out.shape(),
        x.shape(),
        "batch_norm_grad_sums: gradient and input shapes differ"
    );
    let layout = channel_layout("batch_norm_grad_sums", x.shape());
    assert_eq!(
        mean.len(),
        layout[1],
        "batch_norm_grad_sums: {} means for {:?}",
        mean.len(),
        x.shape()
    );
    let (g, x) = (grad_out.contiguous(), x.contiguous());
    let (g, x) = (
        g.as_slice().expect("contiguous"),
        x.as_slice().expect("contiguous"),
    );
    per_channel_pair(g, x, layout, |ch, g, x| {
        let m = mean[ch];
        (
            plane_sum(g),
            lane_sum(g.iter().zip(x).map(|(&g, &x)| g * (x - m))),
        )
    })
}

/// `dx = a[c]·dy + b[c]·x + d[c]` on every element of channel `c` (`grad_out` and `x`
/// of one shape `[n, c, ...]`): batch norm's input gradient with its per-channel
/// coefficients folded in.
///
/// # Panics
/// When the shapes differ, the rank is below 2 or a coefficient list is not `[c]`.
pub fn batch_norm_input_grad(
    grad_out: &Tensor,
    x: &Tensor,
    a: &[f32],
    b: &[f32],
    d: &[f32],
) -> Tensor {
    assert_eq!(
        grad_out.shape(),
        x.shape(),
        "batch_norm_input_grad: gradient and input shapes differ"
    );
    let [_, c, l] = channel_layout("batch_norm_input_grad", x.shape());
    assert!(
        a.len() == c && b.len() == c && d.len() == c,
        "batch_norm_input_grad: coefficients for {c} channels"
    );
    let (g, xs) = (grad_out.contiguous(), x.contiguous());
    let (g, xs) = (
        g.as_slice().expect("contiguous"),
        xs.as_slice().expect("contiguous"),
    );
    let per_channel = |p: usize| (a[p % c], b[p % c], d[p % c]);
    let out = zip_planes(g, xs, l, per_channel, |g, x, &(a, b, d)| a * g + b * x + d);
    Tensor::from_contiguous(out, x.shape())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_combine_planes_of_different_means() {
        // Each image's plane has its own large mean and a small spread of its own: the
        // channel's variance is mostly the spread of the plane means, which the
        // per-plane squares alone miss. 37 images of 3 channels of 5x7 (odd sizes).
        let (n, c, l) = (37, 3, 35);
        let data: Vec<f32> = (0..n * c * l)
            .map(|i| {
                let (plane, at) = (i / l, i % l);
                let (image, ch) = (plane / c, plane % c);
                1e4 * (ch as f32 + 1.0) + 3.0 * image as f32 + 0.01 * (at % 5) as f32
            })
            .collect();
        let x = Tensor::from_vec(data.clone(), &[n, c, 5, 7]).unwrap();
        let (mean, var) = channel_mean_var(&x);
        for ch in 0..c {
            let vals: Vec<f64> = data
                .chunks(l)
                .enumerate()
                .filter(|(p, _)| p % c == ch)
                .flat_map(|(_, r)| r.iter().map(|&v| v as f64))
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let v = vals.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / vals.len() as f64;
            let (got_m, got_v) = (mean.to_vec()[ch] as f64, var.to_vec()[ch] as f64);
            assert!((got_m - m).abs() < 1e-6 * m, "mean {got_m} vs {m}");
            assert!((got_v - v).abs() < 1e-4 * v, "var {got_v} vs {v}");
        }
    }

    #[test]
    fn statistics_of_a_large_offset_channel_stay_accurate() {
        // 1e4 + small spread: a one-pass E[x²] - E[x]² in f32 would lose the variance.
        let n = 64 * 100;
        let data: Vec<f32> = (0..2 * n)
            .map(|i| {
                if i % 200 < 100 {
                    1e4 + (i % 7) as f32
                } else {
                    -3.0
                }
            })
            .collect();
        let x = Tensor::from_vec(data.clone(), &[64, 2, 100]).unwrap();
        let (mean, var) = channel_mean_var(&x);
        for ch in 0..2 {
            let vals: Vec<f64> = data
                .chunks(100)
                .enumerate()
                .filter(|(p, _)| p % 2 == ch)
                .flat_map(|(_, r)| r.iter().map(|&v| v as f64))
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let v = vals.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / vals.len() as f64;
            assert!((mean.to_vec()[ch] as f64 - m).abs() < 1e-3 * m.abs().max(1.0));
            assert!(
                (var.to_vec()[ch] as f64 - v).abs() < 1e-3 * v.max(1e-3),
                "{} vs {v}",
                var.to_vec()[ch]
            );
        }
    }

    #[test]
    fn channel_sums_match_sum_dims() {
        let x =
            Tensor::from_vec((0..2 * 3 * 5).map(|v| v as f32 * 0.5).collect(), &[2, 3, 5]).unwrap();
        assert_eq!(
            channel_sums(&x).to_vec(),
            x.sum_dims(&[0, 2], false).to_vec()
        );
    }
}
