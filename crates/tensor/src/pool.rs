//! 2-D pooling over NCHW planes: max, average and global average, with their backward
//! passes.
//!
//! Every `(image, channel)` plane is pooled on its own, so the loops run over planes,
//! split across rayon's pool when the tensor is large. Max pooling remembers, for every
//! output, which input pixel of its plane won (its index `y·w + x`); its backward adds
//! each output gradient to that pixel. Average pooling's backward spreads each output
//! gradient evenly over its window.

use rayon::prelude::*;

use crate::parallel::{filled, worth_parallel};
use crate::tensor::Tensor;

/// Window size, stride and zero/−∞ padding of a 2-D pooling; `[height, width]` pairs.
///
/// PyTorch equivalent: the `kernel_size`, `stride` and `padding` of `nn.MaxPool2d` /
/// `nn.AvgPool2d` (dilation 1, `ceil_mode=False`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dSpec {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl Pool2dSpec {
    /// A square `kernel × kernel` window with stride `kernel` (PyTorch's default) and
    /// no padding.
    pub fn new(kernel: usize) -> Pool2dSpec {
        Pool2dSpec {
            kernel: [kernel, kernel],
            stride: [kernel, kernel],
            padding: [0, 0],
        }
    }

    /// The same stride along both axes (builder style).
    pub fn stride(self, stride: usize) -> Pool2dSpec {
        Pool2dSpec {
            stride: [stride, stride],
            ..self
        }
    }

    /// The same padding on all four sides.
    pub fn padding(self, padding: usize) -> Pool2dSpec {
        Pool2dSpec {
            padding: [padding, padding],
            ..self
        }
    }

    /// `[n, c, out_h, out_w]` for an input of shape `input`:
    /// `(h + 2p - k)/s + 1` per axis.
    ///
    /// # Panics
    /// When the input is not `[n, c, h, w]`, a size or stride is zero, the padding
    /// exceeds half the window (as PyTorch refuses), or the window is larger than the
    /// padded input; the message names `op` and the shape.
    pub fn output_shape(&self, op: &str, input: &[usize]) -> [usize; 4] {
        assert_eq!(
            input.len(),
            4,
            "{op}: needs input [n, c, h, w], got {input:?}"
        );
        let mut out = [input[0], input[1], 0, 0];
        for axis in 0..2 {
            let (k, s, p) = (self.kernel[axis], self.stride[axis], self.padding[axis]);
            assert!(
                k > 0 && s > 0 && 2 * p <= k && input[2 + axis] + 2 * p >= k,
                "{op}: window {:?}, stride {:?}, padding {:?} do not fit input {input:?} (padding \
                 may be at most half the window, and the window must fit the padded input)",
                self.kernel,
                self.stride,
                self.padding
            );
            out[2 + axis] = (input[2 + axis] + 2 * p - k) / s + 1;
        }
        out
    }

    /// The input rows (or columns) of output position `o` along `axis`: clipped to the
    /// input, and the window's size counting padding.
    fn window(&self, axis: usize, o: usize, size: usize) -> (usize, usize) {
        let start = (o * self.stride[axis]) as isize - self.padding[axis] as isize;
        let end = start + self.kernel[axis] as isize;
        (start.max(0) as usize, (end.max(0) as usize).min(size))
    }
}

/// Run `f(plane, input plane, output plane)` over all planes, in parallel when large.
fn over_planes<T: Send>(
    input: &[f32],
    in_plane: usize,
    out: &mut [T],
    out_plane: usize,
    f: impl Fn(&[f32], &mut [T]) + Sync,
) {
    if out_plane == 0 || in_plane == 0 {
        return;
    }
    if worth_parallel(input.len()) {
        out.par_chunks_mut(out_plane)
            .zip(input.par_chunks(in_plane))
            .for_each(|(o, i)| f(i, o));
    } else {
        out.chunks_mut(out_plane)
            .zip(input.chunks(in_plane))
            .for_each(|(o, i)| f(i, o));
    }
}

impl Tensor {
    /// Max pooling of `[n, c, h, w]`: the largest value of every window (NaN wins, as in
    /// PyTorch), and for every output the index `y·w + x` of that value in its input
    /// plane, for the backward pass ([`max_pool2d_backward`]).
    ///
    /// PyTorch equivalent: `torch.nn.functional.max_pool2d(x, kernel, stride, padding,
    /// return_indices=True)`.
    ///
    /// # Shapes
    /// `[n, c, h, w] -> [n, c, out_h, out_w]` (see [`Pool2dSpec::output_shape`]), and as
    /// many indices.
    ///
    /// # Panics
    /// As [`Pool2dSpec::output_shape`].
    pub fn max_pool2d(&self, spec: Pool2dSpec) -> (Tensor, Vec<u32>) {
        let out_shape = spec.output_shape("max_pool2d", self.shape());
        let (h, w, oh, ow) = (self.shape()[2], self.shape()[3], out_shape[2], out_shape[3]);
        assert!(
            h * w <= u32::MAX as usize,
            "max_pool2d: planes of {h}x{w} are too large to index"
        );
        let x = self.contiguous();
        let total: usize = out_shape.iter().product();
        let mut out = vec![(0.0f32, 0u32); total];
        over_planes(
            x.as_slice().expect("contiguous"),
            h * w,
            &mut out,
            oh * ow,
            |plane, out| {
                for oy in 0..oh {
                    let (y0, y1) = spec.window(0, oy, h);
                    for ox in 0..ow {
                        let (x0, x1) = spec.window(1, ox, w);
                        let mut best = (f32::NEG_INFINITY, (y0 * w + x0) as u32);
                        for y in y0..y1 {
                            for (xi, &v) in plane[y * w + x0..y * w + x1].iter().enumerate() {
                                if v > best.0 || v.is_nan() {
                                    best = (v, (y * w + x0 + xi) as u32);
                                    if v.is_nan() {
                                        break;
                                    }
                                }
                            }
                            if best.0.is_nan() {
                                break;
                            }
                        }
                        out[oy * ow + ox] = best;
                    }
                }
            },
        );
        let (values, indices): (Vec<f32>, Vec<u32>) = out.into_iter().unzip();
        (Tensor::from_contiguous(values, &out_shape), indices)
    }

    /// Average pooling of `[n, c, h, w]`: the mean of every window, dividing by the
    /// whole window's size (padding counts as zeros: PyTorch's default
    /// `count_include_pad=True`).
    ///
    /// PyTorch equivalent: `torch.nn.functional.avg_pool2d(x, kernel, stride, padding)`.
    ///
    /// # Shapes
    /// `[n, c, h, w] -> [n, c, out_h, out_w]` (see [`Pool2dSpec::output_shape`]).
    ///
    /// # Panics
    /// As [`Pool2dSpec::output_shape`].
    pub fn avg_pool2d(&self, spec: Pool2dSpec) -> Tensor {
        let out_shape = spec.output_shape("avg_pool2d", self.shape());
        let (h, w, oh, ow) = (self.shape()[2], self.shape()[3], out_shape[2], out_shape[3]);
        let scale = 1.0 / (spec.kernel[0] * spec.kernel[1]) as f32;
        let x = self.contiguous();
        let mut out = filled(out_shape.iter().product(), 0.0);
        over_planes(
            x.as_slice().expect("contiguous"),
            h * w,
            &mut out,
            oh * ow,
            |plane, out| {
                for oy in 0..oh {
                    let (y0, y1) = spec.window(0, oy, h);
                    for ox in 0..ow {
                        let (x0, x1) = spec.window(1, ox, w);
                        let sum: f32 = (y0..y1)
                            .map(|y| plane[y * w + x0..y * w + x1].iter().sum::<f32>())
                            .sum();
                        out[oy * ow + ox] = sum * scale;
                    }
                }
            },
        );
        Tensor::from_contiguous(out, &out_shape)
    }

    /// The mean of every `[h, w]` plane: `[n, c, h, w] -> [n, c]`.
    ///
    /// PyTorch equivalent: `x.mean((2, 3))`, or `nn.AdaptiveAvgPool2d(1)` followed by
    /// `nn.Flatten()`.
    ///
    /// # Panics
    /// When the input is not of rank 4.
    pub fn global_avg_pool2d(&self) -> Tensor {
        assert_eq!(
            self.rank(),
            4,
            "global_avg_pool2d: needs [n, c, h, w], got {:?}",
            self.shape()
        );
        let [n, c, h, w] = [
            self.shape()[0],
            self.shape()[1],
            self.shape()[2],
            self.shape()[3],
        ];
        let x = self.contiguous();
        let mut out = vec![0.0f32; n * c];
        let scale = 1.0 / (h * w).max(1) as f64;
        over_planes(
            x.as_slice().expect("contiguous"),
            h * w,
            &mut out,
            1,
            |plane, out| {
                out[0] = (plane.iter().map(|&v| v as f64).sum::<f64>() * scale) as f32;
            },
        );
        Tensor::from_contiguous(out, &[n, c])
    }
}

/// The backward pass of [`Tensor::max_pool2d`]: a zero tensor of `input_shape` with
/// every output gradient added at the pixel its window took its maximum from.
///
/// # Panics
/// When `grad_out` and `indices` do not hold one entry per output of an
/// `input_shape` plane set, or an index lies outside its plane.
pub fn max_pool2d_backward(grad_out: &Tensor, indices: &[u32], input_shape: &[usize]) -> Tensor {
    assert!(
        input_shape.len() == 4
            && grad_out.rank() == 4
            && grad_out.shape()[..2] == input_shape[..2]
            && indices.len() == grad_out.numel(),
        "max_pool2d_backward: gradient {:?} with {} indices does not fit input {input_shape:?}",
        grad_out.shape(),
        indices.len()
    );
    let plane = input_shape[2] * input_shape[3];
    let out_plane = grad_out.shape()[2] * grad_out.shape()[3];
    let g = grad_out.contiguous();
    let g = g.as_slice().expect("contiguous");
    let mut dx = filled(input_shape.iter().product(), 0.0);
    let scatter = |(p, dx): (usize, &mut [f32])| {
        let range = p * out_plane..(p + 1) * out_plane;
        for (&i, &v) in indices[range.clone()].iter().zip(&g[range]) {
            dx[i as usize] += v;
        }
    };
    if plane == 0 || out_plane == 0 {
        return Tensor::from_contiguous(dx, input_shape);
    }
    if worth_parallel(dx.len()) {
        dx.par_chunks_mut(plane).enumerate().for_each(scatter);
    } else {
        dx.chunks_mut(plane).enumerate().for_each(scatter);
    }
    Tensor::from_contiguous(dx, input_shape)
}

/// The backward pass of [`Tensor::avg_pool2d`]: each output gradient, divided by the
/// window's size, added to every input pixel of its window.
///
/// # Panics
/// When `grad_out` is not the output shape of `spec` on `input_shape`.
pub fn avg_pool2d_backward(grad_out: &Tensor, input_shape: &[usize], spec: Pool2dSpec) -> Tensor {
    let out_shape = spec.output_shape("avg_pool2d_backward", input_shape);
    assert_eq!(
        grad_out.shape(),
        &out_shape,
        "avg_pool2d_backward: gradient {:?} does not fit input {input_shape:?}",
        grad_out.shape()
    );
    let (h, w, oh, ow) = (input_shape[2], input_shape[3], out_shape[2], out_shape[3]);
    let scale = 1.0 / (spec.kernel[0] * spec.kernel[1]) as f32;
    let g = grad_out.contiguous();
    let mut dx = filled(input_shape.iter().product(), 0.0);
    // Planes of the input gradient are written by their own task; each reads its own
    // plane of the output gradient.
    over_planes(
        g.as_slice().expect("contiguous"),
        oh * ow,
        &mut dx,
        h * w,
        |g, dx| {
            for oy in 0..oh {
                let (y0, y1) = spec.window(0, oy, h);
                for ox in 0..ow {
                    let (x0, x1) = spec.window(1, ox, w);
                    let v = g[oy * ow + ox] * scale;
                    for y in y0..y1 {
                        dx[y * w + x0..y * w + x1].iter_mut().for_each(|d| *d += v);
                    }
                }
            }
        },
    );
    Tensor::from_contiguous(dx, input_shape)
}

/// The backward pass of [`Tensor::global_avg_pool2d`]: every pixel of plane `(i, c)`
/// gets `grad_out[i, c] / (h·w)`.
///
/// # Panics
/// When `grad_out` is not `[n, c]` of `input_shape`.
pub fn global_avg_pool2d_backward(grad_out: &Tensor, input_shape: &[usize]) -> Tensor {
    assert!(
        input_shape.len() == 4 && grad_out.shape() == &input_shape[..2],
        "global_avg_pool2d_backward: gradient {:?} does not fit input {input_shape:?}",
        grad_out.shape()
    );
    let plane = input_shape[2] * input_shape[3];
    let scale = 1.0 / plane.max(1) as f32;
    let g = grad_out.contiguous();
    let mut dx = filled(input_shape.iter().product(), 0.0);
    over_planes(
        g.as_slice().expect("contiguous"),
        1,
        &mut dx,
        plane,
        |g, dx| dx.fill(g[0] * scale),
    );
    Tensor::from_contiguous(dx, input_shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_pool_matches_hand_computed_windows() {
        // One 4x4 plane, 2x2 windows.
        let x = Tensor::from_vec(
            (0..16).map(|v| ((v * 7) % 16) as f32).collect(),
            &[1, 1, 4, 4],
        )
        .unwrap();
        let (y, idx) = x.max_pool2d(Pool2dSpec::new(2));
        // plane: 0 7 14 5 / 12 3 10 1 / 8 15 6 13 / 4 11 2 9
        assert_eq!(y.to_vec(), vec![12.0, 14.0, 15.0, 13.0]);
        assert_eq!(idx, vec![4, 2, 9, 11]);
        let dx = max_pool2d_backward(&Tensor::ones(&[1, 1, 2, 2]), &idx, &[1, 1, 4, 4]);
        assert_eq!(dx.to_vec().iter().sum::<f32>(), 4.0);
        assert_eq!(dx.get(&[0, 0, 1, 0]), 1.0);
    }

    #[test]
    fn max_pool_propagates_nan() {
        let x = Tensor::from_vec(vec![1.0, f32::NAN, 3.0, 2.0], &[1, 1, 2, 2]).unwrap();
        assert!(x.max_pool2d(Pool2dSpec::new(2)).0.item().is_nan());
    }

    #[test]
    fn avg_pool_counts_padding_as_zeros() {
        // torch.nn.functional.avg_pool2d(torch.ones(1, 1, 3, 3), 3, 1, 1)[0, 0, 0, 0] == 4/9
        let y = Tensor::ones(&[1, 1, 3, 3]).avg_pool2d(Pool2dSpec::new(3).stride(1).padding(1));
        assert!((y.get(&[0, 0, 0, 0]) - 4.0 / 9.0).abs() < 1e-6);
        assert!((y.get(&[0, 0, 1, 1]) - 1.0).abs() < 1e-6);
    }

    #[test]
    #[should_panic(expected = "at most half the window")]
    fn padding_beyond_half_the_window_is_refused() {
        Tensor::ones(&[1, 1, 4, 4]).max_pool2d(Pool2dSpec::new(2).padding(2));
    }
}
