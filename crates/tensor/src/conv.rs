//! 2-D convolution (NCHW input, PyTorch's `[out, in/groups, kh, kw]` weights): im2col
//! lowering plus `sgemm`, and both backward passes.
//!
//! # The lowering
//!
//! For one image and one group, the input patches every output pixel sees are laid out
//! as the columns of a matrix (im2col): row `(c, ki, kj)`, column `(oy, ox)` holds
//! `x[c, oy·sh + ki·dh - ph, ox·sw + kj·dw - pw]` (zero in the padding). With
//! `K = in/groups·kh·kw` rows and `N = out_h·out_w` columns, the convolution is one
//! product straight into the image's output planes, which are row-major `[out, N]`:
//!
//! ```text
//! forward      Y_g [out_g, N]  = W_g [out_g, K] · cols_g [K, N]          (+ bias)
//! input grad   dcols_g [K, N]  = W_gᵀ · dY_g,  then col2im adds dcols_g into dX
//! weight grad  dW_g [out_g, K] += dY_g · cols_gᵀ     (accumulated over the images)
//! bias grad    db[o]           = Σ over images and pixels of dY[o]
//! ```
//!
//! col2im is the adjoint of im2col: every column entry is added back to the input pixel
//! it was copied from. A 1x1 convolution with stride 1 and no padding needs no lowering:
//! an image's `[in, H·W]` planes are already its column matrix.
//!
//! # Threads and memory
//!
//! Images are independent, so the forward pass and the input gradient run one image
//! per task on rayon's pool, each task lowering into its thread's own scratch buffer
//! (one image's columns: `K·N` floats, reused from call to call). Every product is a
//! serial [`sgemm`] call, so threads never nest.
//!
//! Small outputs are multiplied several images at a time: with `N` below
//! [`PRODUCT_COLUMNS`], `count` images are lowered side by side into one `[K, count·N]`
//! matrix, so one product covers them all and `sgemm` packs the weights once instead of
//! once per image, with fewer ragged edge tiles (at ResNet-20's 7x7 stage, `N = 49`
//! against `K = 576`: 45 -> 60 GFLOP/s for the raw product at 8 images). The forward
//! product lands in a scratch `[out_g, count·N]` and each image's columns are copied to
//! its planes; the weight gradient gathers the images' output gradients side by side
//! the same way, so its inner dimension is `count·N` rather than `N`. The backward pass re-lowers the input
//! rather than keeping every image's columns from the forward pass (for ResNet-20's
//! first stage that would be 58 MB per layer).
//!
//! Which kernel runs a product: [`sgemm`] sends those with few rows of C to the
//! packing-free kernels of [`crate::skinny_gemm`], which read the operands where they lie.
//! So the forward product `W · columns` with up to 32 output channels (up to 64 in two
//! bands of rows, `banded_sgemm`), and the weight gradient `dY · columnsᵀ` with up to
//! 64, multiply the freshly lowered columns directly; `matrixmultiply` would copy them a
//! second time into its packed panels, which for ResNet-20's 16-channel stage cost as
//! much as the multiply-adds (`perf` at one thread: 16% of a training step was packing
//! inside the weight gradient).
//!
//! Stride-1 products with few output channels skip im2col altogether (see
//! `ShiftedInput`): the input is copied once per horizontal kernel tap, moved by the
//! tap's offset and between zero rows, and row `(c, ki, kj)` of the column matrix is then
//! a contiguous run of copy `kj`, from row `ki` on, which the product reads in place
//! ([`crate::gemm::sgemm_rows`]). Its columns are exactly the output pixels, so it is
//! written straight into the output planes. This covers the forward pass and, through
//! its form as a convolution, the input gradient of ResNet-20's first two stages and of
//! LeNet's second layer (2.0x and 2.3-2.5x faster than through im2col at one thread). The
//! weight gradient `dY · columnsᵀ` reads the copies and dY in place the same way
//! ([`crate::gemm::sgemm_bt_rows`]) where an image is a product of its own.
//!
//! The weight gradient sums over the batch. It is accumulated with `sgemm` (beta = 1)
//! over runs of [`WEIGHT_GRAD_IMAGES`] images: the first run straight into the
//! gradient buffer, each further run (there are `batch / 16` at most) into one partial
//! of the weight's size, added in at the end in order. No per-image weight gradient is
//! ever materialised, and since the runs do not depend on the number of threads, the
//! result is bit-identical whatever that number is.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::gemm::{sgemm, sgemm_bt_rows, sgemm_rows, MatMut, MatRef};
use crate::matmul::PARALLEL_MULADDS;
use crate::parallel::{filled, planes_of};
use crate::skinny_gemm;
use crate::tensor::Tensor;

/// Images per run of the weight gradient's accumulation (see the module documentation).
pub const WEIGHT_GRAD_IMAGES: usize = 16;

/// Columns a product should have at least: images whose outputs are smaller are lowered
/// side by side into one column matrix and multiplied together (see the module
/// documentation).
pub const PRODUCT_COLUMNS: usize = 392;

/// Images per task of a forward product through [`ShiftedInput`]: each is its own
/// product, and the task zeroes its copies' padding rows once for all of them.
const SHIFTED_RUN: usize = 8;

/// Output pixels a forward product through [`ShiftedInput`] needs at least. Smaller
/// outputs go through im2col, several images to a product, whose longer rows the
/// kernel runs faster (ResNet-20's 7x7 stage: 166 against 162 GFLOP/s at two threads;
/// its 14x14 stage went the other way, 181 against 174).
const SHIFTED_MIN_PIXELS: usize = 64;

/// Floats that fit a typical L1 data cache (32 KiB).
const L1_FLOATS: usize = 8192;

/// Stride, padding, dilation and groups of a 2-D convolution; `[height, width]` pairs.
/// `Default` is PyTorch's: stride 1, padding 0, dilation 1, one group.
///
/// PyTorch equivalent: the `stride`, `padding`, `dilation` and `groups` arguments of
/// `torch.nn.functional.conv2d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dSpec {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Default for Conv2dSpec {
    fn default() -> Conv2dSpec {
        Conv2dSpec {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl Conv2dSpec {
    /// The same stride along both axes (builder style).
    pub fn stride(self, stride: usize) -> Conv2dSpec {
        Conv2dSpec {
            stride: [stride, stride],
            ..self
        }
    }

    /// The same zero padding on all four sides.
    pub fn padding(self, padding: usize) -> Conv2dSpec {
        Conv2dSpec {
            padding: [padding, padding],
            ..self
        }
    }

    /// The same dilation along both axes.
    pub fn dilation(self, dilation: usize) -> Conv2dSpec {
        Conv2dSpec {
            dilation: [dilation, dilation],
            ..self
        }
    }

    /// Split the channels into `groups` independent convolutions.
    pub fn groups(self, groups: usize) -> Conv2dSpec {
        Conv2dSpec { groups, ..self }
    }
}

/// The sizes of one convolution, checked against each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub spec: Conv2dSpec,
}

impl ConvGeometry {
    /// Check an input shape `[n, in, h, w]` against a weight shape `[out, in/groups, kh,
    /// kw]` and work out the output size `(h + 2p - d·(k-1) - 1)/s + 1` per axis.
    ///
    /// # Panics
    /// With `op` and both shapes in the message: ranks other than 4, a zero stride,
    /// dilation or group count, channel counts that `groups` does not divide or that do
    /// not match, a kernel larger than the padded input.
    pub fn new(op: &str, input: &[usize], weight: &[usize], spec: Conv2dSpec) -> ConvGeometry {
        assert!(
            input.len() == 4 && weight.len() == 4,
            "{op}: needs input [n, c, h, w] and weight [out, in/groups, kh, kw], got {input:?} and {weight:?}"
        );
        let Conv2dSpec {
            stride,
            padding,
            dilation,
            groups,
        } = spec;
        assert!(
            stride.iter().chain(&dilation).all(|&s| s > 0) && groups > 0,
            "{op}: stride {stride:?}, dilation {dilation:?} and groups {groups} must be positive"
        );
        let (batch, in_channels, in_h, in_w) = (input[0], input[1], input[2], input[3]);
        let (out_channels, kernel_h, kernel_w) = (weight[0], weight[2], weight[3]);
        assert!(
            in_channels % groups == 0
                && out_channels % groups == 0
                && weight[1] * groups == in_channels,
            "{op}: input {input:?} and weight {weight:?} do not fit {groups} group(s): the weight's \
             second dim must be in_channels/groups and both channel counts divisible by groups"
        );
        let out_size = |size: usize, k: usize, axis: usize| {
            let span = dilation[axis] * (k.max(1) - 1) + 1;
            let padded = size + 2 * padding[axis];
            assert!(
                k > 0 && padded >= span,
                "{op}: kernel {weight:?} (dilation {dilation:?}) is larger than the padded input \
                 {input:?} (padding {padding:?})"
            );
            (padded - span) / stride[axis] + 1
        };
        let out_h = out_size(in_h, kernel_h, 0);
        let out_w = out_size(in_w, kernel_w, 1);
        ConvGeometry {
            batch,
            in_channels,
            in_h,
            in_w,
            out_channels,
            kernel_h,
            kernel_w,
            out_h,
            out_w,
            spec,
        }
    }

    /// `[n, out, out_h, out_w]`.
    pub fn output_shape(&self) -> [usize; 4] {
        [self.batch, self.out_channels, self.out_h, self.out_w]
    }

    /// `[n, in, h, w]`.
    pub fn input_shape(&self) -> [usize; 4] {
        [self.batch, self.in_channels, self.in_h, self.in_w]
    }

    /// `[out, in/groups, kh, kw]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.group_in(),
            self.kernel_h,
            self.kernel_w,
        ]
    }

    /// Input channels per group.
    pub fn group_in(&self) -> usize {
        self.in_channels / self.spec.groups
    }

    /// Output channels per group.
    pub fn group_out(&self) -> usize {
        self.out_channels / self.spec.groups
    }

    /// `K`: rows of one group's column matrix, `in/groups · kh · kw`.
    pub fn col_rows(&self) -> usize {
        self.group_in() * self.kernel_h * self.kernel_w
    }

    /// `N`: pixels of one output plane, the columns of the column matrix.
    pub fn out_pixels(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Pixels of one input plane.
    pub fn in_pixels(&self) -> usize {
        self.in_h * self.in_w
    }

    /// Multiply-adds of the forward pass (each backward product costs as many).
    pub fn muladds(&self) -> usize {
        self.batch * self.out_channels * self.out_pixels() * self.col_rows()
    }

    /// A 1x1 kernel with stride 1 and no padding: the image is its own column matrix.
    pub fn is_pointwise(&self) -> bool {
        let s = &self.spec;
        self.kernel_h == 1 && self.kernel_w == 1 && s.stride == [1, 1] && s.padding == [0, 0]
    }

    /// The per-group products as `sgemm` sees them, `(m, k, n)` for the forward pass:
    /// `[out_g, K] · [K, N]`, `batch · groups` of them.
    pub fn gemm_sizes(&self) -> (usize, usize, usize) {
        (self.group_out(), self.col_rows(), self.out_pixels())
    }

    /// The input gradient as a stride-1 convolution of the output gradient (see
    /// [`conv2d_input_grad`]), when this convolution has stride 1, is not pointwise, and
    /// its padding is at most `d·(k-1)` on both axes.
    fn input_grad_as_convolution(&self) -> Option<ConvGeometry> {
        let Conv2dSpec {
            stride,
            padding,
            dilation,
            groups,
        } = self.spec;
        let spans = [
            dilation[0] * (self.kernel_h - 1),
            dilation[1] * (self.kernel_w - 1),
        ];
        if stride != [1, 1] || self.is_pointwise() || padding[0] > spans[0] || padding[1] > spans[1]
        {
            return None;
        }
        let spec = Conv2dSpec {
            stride,
            padding: [spans[0] - padding[0], spans[1] - padding[1]],
            dilation,
            groups,
        };
        let input = [self.batch, self.out_channels, self.out_h, self.out_w];
        let weight = [
            self.in_channels,
            self.group_out(),
            self.kernel_h,
            self.kernel_w,
        ];
        let transposed = ConvGeometry::new("conv2d_input_grad", &input, &weight, spec);
        debug_assert_eq!([transposed.out_h, transposed.out_w], [self.in_h, self.in_w]);
        Some(transposed)
    }

    /// How many images share one product: enough that it has about
    /// [`PRODUCT_COLUMNS`] columns (ResNet-20 on 28x28: 8 images of 7x7 outputs, 2 of
    /// 14x14, 1 of 28x28); 1 for a pointwise convolution, whose images are their own
    /// column matrices.
    pub fn images_per_product(&self) -> usize {
        if self.is_pointwise() || self.out_pixels() == 0 {
            return 1;
        }
        (PRODUCT_COLUMNS / self.out_pixels()).clamp(1, self.batch.max(1))
    }

    fn parallel(&self) -> bool {
        self.batch > 1 && rayon::current_num_threads() > 1 && self.muladds() >= PARALLEL_MULADDS
    }
}

impl Tensor {
    /// 2-D convolution of `self: [n, in, h, w]` with `weight: [out, in/groups, kh, kw]`
    /// and an optional `bias: [out]`, giving `[n, out, out_h, out_w]` (see
    /// [`ConvGeometry::new`] for the output size). Inputs of any layout are read through
    /// a contiguous copy when they are not contiguous.
    ///
    /// PyTorch equivalent: `torch.nn.functional.conv2d(x, weight, bias, stride, padding,
    /// dilation, groups)`.
    ///
    /// # Panics
    /// When the shapes do not fit (see [`ConvGeometry::new`]) or the bias is not `[out]`.
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, spec: Conv2dSpec) -> Tensor {
        conv2d(self, weight, bias, spec)
    }
}

/// See [`Tensor::conv2d`].
///
/// # Panics
/// As [`Tensor::conv2d`].
pub fn conv2d(input: &Tensor, weight: &Tensor, bias: Option<&Tensor>, spec: Conv2dSpec) -> Tensor {
    let geo = ConvGeometry::new("conv2d", input.shape(), weight.shape(), spec);
    let (x, w) = (input.contiguous(), weight.contiguous());
    let (x, w) = (
        x.as_slice().expect("contiguous"),
        w.as_slice().expect("contiguous"),
    );
    let len = geo.batch * geo.out_channels * geo.out_pixels();
    let mut out = match bias {
        Some(b) => {
            assert_eq!(
                b.shape(),
                &[geo.out_channels],
                "conv2d: bias {:?} does not fit weight {:?}",
                b.shape(),
                weight.shape()
            );
            let b = b.to_vec();
            planes_of(len, geo.out_pixels(), |p| b[p % geo.out_channels])
        }
        None => filled(len, 0.0),
    };
    convolve_into(&geo, x, w, &mut out, if bias.is_some() { 1.0 } else { 0.0 });
    Tensor::from_contiguous(out, &geo.output_shape())
}

/// `out = conv(x, w) + beta·out` for every image, `x`, `w` and `out` row-major.
///
/// Images are taken [`ConvGeometry::images_per_product`] at a time: one image's product
/// goes straight into its output planes; several images are lowered side by side
/// (`cols: [K, count·N]`), multiplied in one product into a scratch `[out_g, count·N]`,
/// and each image's `N` columns are then copied (or added, with `beta = 1`) into its
/// planes.
fn convolve_into(geo: &ConvGeometry, x: &[f32], w: &[f32], out: &mut [f32], beta: f32) {
    let per_in = geo.in_channels * geo.in_pixels();
    let per_out = geo.out_channels * geo.out_pixels();
    let (m, k, n) = geo.gemm_sizes();
    // With few output channels `sgemm` runs the packing-free kernel, which reads W's
    // rows as they lie. Otherwise matrixmultiply packs its left operand fastest when it
    // is column-major: hand it Wᵀ, copied once here for all images.
    let w_t = (!in_skinny_bands(m, k)).then(|| transpose_blocks(w, geo.spec.groups, m, k));
    let shifted = ShiftedInput::new(geo)
        .filter(|_| skinny_gemm::qualifies(m, k, 1, 1) && n >= SHIFTED_MIN_PIXELS);
    let run = match shifted {
        Some(_) => SHIFTED_RUN,
        None => geo.images_per_product(),
    };
    over_images(geo, run, out, per_out, |first, y| {
        let count = y.len() / per_out;
        let images = &x[first * per_in..(first + count) * per_in];
        for g in 0..geo.spec.groups {
            let w_g = match &w_t {
                None => MatRef::row_major(w, g * m * k, m, k),
                Some(w_t) => MatRef::row_major(w_t, g * m * k, k, m).t(),
            };
            if let Some(shifted) = &shifted {
                with_scratch(shifted.len(geo), |copies| {
                    copies.fill(0.0);
                    for (image, y_image) in
                        images.chunks_exact(per_in).zip(y.chunks_exact_mut(per_out))
                    {
                        shifted.fill(geo, image, g, copies);
                        sgemm_rows(
                            1.0,
                            w_g,
                            copies,
                            &shifted.row_starts,
                            beta,
                            MatMut::row_major(y_image, g * m * n, m, n),
                        );
                    }
                });
            } else if count == 1 && geo.is_pointwise() {
                let y_g = MatMut::row_major(y, g * m * n, m, n);
                sgemm(
                    1.0,
                    w_g,
                    MatRef::row_major(images, g * k * n, k, n),
                    beta,
                    y_g,
                );
            } else if count == 1 {
                with_scratch(k * n, |cols| {
                    im2col(geo, images, g, cols, n);
                    banded_sgemm(
                        1.0,
                        w_g,
                        MatRef::row_major(cols, 0, k, n),
                        beta,
                        MatMut::row_major(y, g * m * n, m, n),
                    );
                });
            } else {
                let width = count * n;
                with_scratch(k * width + m * width, |scratch| {
                    let (cols, product) = scratch.split_at_mut(k * width);
                    for (i, image) in images.chunks_exact(per_in).enumerate() {
                        im2col(geo, image, g, &mut cols[i * n..], width);
                    }
                    banded_sgemm(
                        1.0,
                        w_g,
                        MatRef::row_major(cols, 0, k, width),
                        0.0,
                        MatMut::row_major(product, 0, m, width),
                    );
                    for (i, y_image) in y.chunks_exact_mut(per_out).enumerate() {
                        for (r, y_row) in y_image[g * m * n..][..m * n]
                            .chunks_exact_mut(n)
                            .enumerate()
                        {
                            store_scaled(y_row, &product[r * width + i * n..][..n], beta);
                        }
                    }
                });
            }
        }
    });
}

/// `C = alpha·A·B + beta·C` for a convolution's forward product `W_g · columns`, cut
/// into bands of at most [`skinny_gemm::MAX_ROWS`] output channels when that lets the
/// packing-free kernel take every band ([`in_skinny_bands`]): each band reads the
/// lowered columns where they lie, where one `matrixmultiply` call would first pack
/// them into its panels (ResNet-20's 64-channel 7x7 convolution: 3-4% faster, forward
/// and input gradient).
fn banded_sgemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>) {
    if !in_skinny_bands(a.rows, a.cols) {
        return sgemm(alpha, a, b, beta, c);
    }
    let band = a.rows.div_ceil(a.rows.div_ceil(skinny_gemm::MAX_ROWS));
    for first in (0..a.rows).step_by(band) {
        let rows = band.min(a.rows - first);
        let a_band = MatRef {
            offset: a.offset + first * a.row_stride,
            rows,
            ..a
        };
        let c_band = MatMut {
            data: &mut *c.data,
            offset: c.offset + first * c.row_stride,
            rows,
            ..c
        };
        sgemm(alpha, a_band, b, beta, c_band);
    }
}

/// Whether [`banded_sgemm`] cuts an `m × k` left operand into bands: up to twice
/// [`skinny_gemm::MAX_ROWS`] rows (beyond that `matrixmultiply`'s packing pays for
/// itself), each band a product the packing-free kernel takes.
fn in_skinny_bands(m: usize, k: usize) -> bool {
    m <= 2 * skinny_gemm::MAX_ROWS && skinny_gemm::qualifies(m.min(skinny_gemm::MAX_ROWS), k, 1, 1)
}

/// A stride-1 convolution lowered into `kw` shifted copies of its input instead of
/// im2col's `kh·kw`: the product reads them in place, and its columns are exactly the
/// output pixels, so it is written straight into the output planes.
///
/// Copy `kj` (one per horizontal tap) holds every input plane of the group moved left by
/// the tap's offset `kj·dw - pw`, in rows as wide as the output, between `ph` zero rows
/// above and below:
///
/// ```text
/// copy_kj[c, r, ox] = x[c, r - ph, ox + kj·dw - pw]      (0 outside the input)
/// ```
///
/// Output pixel `(oy, ox)` reads tap `(ki, kj)` of channel `c` at `copy_kj[c, oy + ki·dh,
/// ox]`, which is plane `c` of copy `kj` from row `ki·dh` on, at index `oy·out_w + ox`:
/// the output pixel's own index. So row `(c, ki, kj)` of the product's right operand is
/// a contiguous run of `N = out_h·out_w` floats of the copies, and [`sgemm_rows`] (and
/// the weight gradient's [`sgemm_bt_rows`], with dY read in place) takes it there. The
/// vertical taps share a copy; im2col would have made one per tap.
///
/// Each output element is the same chain of fused multiply-adds as through im2col, so
/// the two give the same bits.
struct ShiftedInput {
    /// Rows of one copied plane, `in_h + 2·ph`, each `out_w` wide.
    rows: usize,
    /// Where row `(c, ki, kj)` of the right operand starts in the copies, in the
    /// weight's order.
    row_starts: Vec<usize>,
    /// Input channels in a group: the planes of each copy.
    channels: usize,
}

impl ShiftedInput {
    /// The lowering for `geo`, when it applies: stride 1 and a kernel larger than 1x1
    /// (a pointwise convolution needs no lowering at all). The caller checks that its
    /// packing-free kernel takes the product.
    fn new(geo: &ConvGeometry) -> Option<ShiftedInput> {
        let Conv2dSpec {
            stride,
            padding: [ph, _],
            dilation: [dh, _],
            ..
        } = geo.spec;
        if stride != [1, 1] || geo.is_pointwise() || geo.out_pixels() == 0 {
            return None;
        }
        let (rows, channels) = (geo.in_h + 2 * ph, geo.group_in());
        let plane = rows * geo.out_w;
        let mut row_starts = Vec::with_capacity(geo.col_rows());
        for c in 0..channels {
            for ki in 0..geo.kernel_h {
                for kj in 0..geo.kernel_w {
                    row_starts.push((kj * channels + c) * plane + ki * dh * geo.out_w);
                }
            }
        }
        Some(ShiftedInput {
            rows,
            row_starts,
            channels,
        })
    }

    /// Floats in the copies of one group.
    fn len(&self, geo: &ConvGeometry) -> usize {
        geo.kernel_w * self.channels * self.rows * geo.out_w
    }

    /// Write the copies of group `g` of `image` (`[in, h, w]`) into `copies`, whose
    /// `ph` zero rows above and below each plane must already be zero: one
    /// `copies.fill(0.0)` before the first image serves every image and group copied
    /// into the same buffer after it, since nothing is ever written there.
    fn fill(&self, geo: &ConvGeometry, image: &[f32], g: usize, copies: &mut [f32]) {
        let [ph, pw] = geo.spec.padding;
        let dw = geo.spec.dilation[1];
        let (in_h, in_w, out_w) = (geo.in_h, geo.in_w, geo.out_w);
        let plane = self.rows * out_w;
        for kj in 0..geo.kernel_w {
            // Output columns lo..hi read inside the input, from column `ox + shift`.
            let (lo, hi) = valid_outputs(out_w, in_w, 1, pw, kj * dw);
            let shift = (kj * dw) as isize - pw as isize;
            for c in 0..self.channels {
                let source = &image[(g * self.channels + c) * in_h * in_w..][..in_h * in_w];
                let copy = &mut copies[(kj * self.channels + c) * plane..][..plane];
                let inside = &mut copy[ph * out_w..][..in_h * out_w];
                if out_w == in_w {
                    // Same pitch: one shifted copy of the whole plane, then the columns
                    // whose input lies in the side padding (they picked up pixels of the
                    // neighbouring rows) are zeroed.
                    copy_shifted(source, shift, inside, 0);
                } else if lo < hi {
                    // (With lo == hi every read of the tap lies in the side padding, and
                    // `lo + shift` may be negative: the row stays all zero.)
                    let from = (lo as isize + shift) as usize;
                    for (row, src) in inside
                        .chunks_exact_mut(out_w)
                        .zip(source.chunks_exact(in_w))
                    {
                        row[lo..hi].copy_from_slice(&src[from..from + (hi - lo)]);
                    }
                }
                zero_columns(inside, out_w, lo, hi);
            }
        }
    }
}

/// `y = p + beta·y`, or a plain copy when `beta == 0` (so `y` is not read: it may hold
/// anything): one output row of a product computed into scratch.
fn store_scaled(y: &mut [f32], p: &[f32], beta: f32) {
    if beta == 0.0 {
        y.copy_from_slice(p);
    } else {
        y.iter_mut().zip(p).for_each(|(y, &p)| *y = p + beta * *y);
    }
}

/// `dx += ∂L/∂input` of a convolution, given `grad_out = ∂L/∂output`; `dx` has the
/// input's shape and is made contiguous first.
///
/// With stride 1 (and padding at most `d·(k-1)`), the input gradient is itself a
/// stride-1 convolution: of the output gradient, with the kernel flipped in space and
/// its in/out channels swapped, and padding `d·(k-1) - p`. That form is used when it
/// applies: it lowers with im2col (contiguous copies) instead of scattering with
/// col2im, and its product has `out/groups · kh · kw` as inner dimension rather than
/// `out/groups`, which `sgemm` runs much closer to its peak. Otherwise (strides above
/// 1) `dcols = Wᵀ·dY` is scattered back with col2im.
///
/// # Panics
/// When the shapes do not fit each other (see [`ConvGeometry::new`]).
pub fn conv2d_input_grad(grad_out: &Tensor, weight: &Tensor, spec: Conv2dSpec, dx: &mut Tensor) {
    let geo = ConvGeometry::new("conv2d_input_grad", dx.shape(), weight.shape(), spec);
    check_grad_out("conv2d_input_grad", &geo, grad_out);
    let (dy, w) = (grad_out.contiguous(), weight.contiguous());
    let (dy, w) = (
        dy.as_slice().expect("contiguous"),
        w.as_slice().expect("contiguous"),
    );
    if let Some(transposed) = geo.input_grad_as_convolution() {
        let flipped = flip_kernel(&geo, w);
        convolve_into(&transposed, dy, &flipped, dx.data_mut(), 1.0);
        return;
    }
    let per_in = geo.in_channels * geo.in_pixels();
    let per_out = geo.out_channels * geo.out_pixels();
    let (m, k, n) = geo.gemm_sizes();
    over_images(&geo, 1, dx.data_mut(), per_in, |i, dx_image| {
        let dy_image = &dy[i * per_out..(i + 1) * per_out];
        for g in 0..geo.spec.groups {
            let w_g_t = MatRef::row_major(w, g * m * k, m, k).t();
            let dy_g = MatRef::row_major(dy_image, g * m * n, m, n);
            if geo.is_pointwise() {
                sgemm(
                    1.0,
                    w_g_t,
                    dy_g,
                    1.0,
                    MatMut::row_major(dx_image, g * k * n, k, n),
                );
            } else {
                with_scratch(k * n, |cols| {
                    sgemm(1.0, w_g_t, dy_g, 0.0, MatMut::row_major(cols, 0, k, n));
                    col2im_add(&geo, cols, g, dx_image);
                });
            }
        }
    });
}

/// Each of `blocks` consecutive row-major `rows × cols` matrices, transposed in place
/// of the copy: `out[b][j][i] = a[b][i][j]`.
fn transpose_blocks(a: &[f32], blocks: usize, rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; a.len()];
    for (src, dst) in a
        .chunks_exact(rows * cols)
        .zip(out.chunks_exact_mut(rows * cols))
        .take(blocks)
    {
        for i in 0..rows {
            for j in 0..cols {
                dst[j * rows + i] = src[i * cols + j];
            }
        }
    }
    out
}

/// `W'[g·in_g + c, o, ki, kj] = W[g·out_g + o, c, kh-1-ki, kw-1-kj]`: the kernel of the
/// input gradient as a convolution, `[in, out/groups, kh, kw]`.
fn flip_kernel(geo: &ConvGeometry, w: &[f32]) -> Vec<f32> {
    let (kh, kw, in_g, out_g) = (geo.kernel_h, geo.kernel_w, geo.group_in(), geo.group_out());
    let mut flipped = vec![0.0f32; w.len()];
    for g in 0..geo.spec.groups {
        for o in 0..out_g {
            for c in 0..in_g {
                for ki in 0..kh {
                    for kj in 0..kw {
                        let from = (((g * out_g + o) * in_g + c) * kh + ki) * kw + kj;
                        let to = (((g * in_g + c) * out_g + o) * kh + (kh - 1 - ki)) * kw
                            + (kw - 1 - kj);
                        flipped[to] = w[from];
                    }
                }
            }
        }
    }
    flipped
}

/// `dw += ∂L/∂weight` of a convolution, given `grad_out = ∂L/∂output` and the forward
/// input; accumulated over the batch with `sgemm` (beta = 1) as the module documentation
/// describes. `dw` has the weight's shape and is made contiguous first.
///
/// # Panics
/// When the shapes do not fit each other (see [`ConvGeometry::new`]).
pub fn conv2d_weight_grad(grad_out: &Tensor, input: &Tensor, spec: Conv2dSpec, dw: &mut Tensor) {
    let geo = ConvGeometry::new("conv2d_weight_grad", input.shape(), dw.shape(), spec);
    check_grad_out("conv2d_weight_grad", &geo, grad_out);
    let (dy, x) = (grad_out.contiguous(), input.contiguous());
    let (dy, x) = (
        dy.as_slice().expect("contiguous"),
        x.as_slice().expect("contiguous"),
    );
    let per_in = geo.in_channels * geo.in_pixels();
    let per_out = geo.out_channels * geo.out_pixels();
    let (m, k, n) = geo.gemm_sizes();
    let w_len = dw.numel();
    let runs = geo.batch.div_ceil(WEIGHT_GRAD_IMAGES);
    if runs == 0 {
        return;
    }

    // One run of images: accumulate its products into `target` (which already holds a
    // sum when `fresh` is false), through im2col.
    let accumulate_im2col = |run: usize, target: &mut [f32], fresh: bool| {
        let images = run * WEIGHT_GRAD_IMAGES..((run + 1) * WEIGHT_GRAD_IMAGES).min(geo.batch);
        // Products of `images_per_product` images each: their columns side by side in
        // `cols: [K, count·N]` and their output gradients in `dys: [out_g, count·N]`.
        let per_product = geo.images_per_product();
        for (nth, first) in images.clone().step_by(per_product).enumerate() {
            let beta = if fresh && nth == 0 { 0.0 } else { 1.0 };
            let count = per_product.min(images.end - first);
            for g in 0..geo.spec.groups {
                let dw_g = MatMut::row_major(target, g * m * k, m, k);
                if count == 1 {
                    let (image, dy_image) = (
                        &x[first * per_in..][..per_in],
                        &dy[first * per_out..][..per_out],
                    );
                    let dy_g = MatRef::row_major(dy_image, g * m * n, m, n);
                    if geo.is_pointwise() {
                        sgemm(
                            1.0,
                            dy_g,
                            MatRef::row_major(image, g * k * n, k, n).t(),
                            beta,
                            dw_g,
                        );
                    } else {
                        with_scratch(k * n, |cols| {
                            im2col(&geo, image, g, cols, n);
                            sgemm(1.0, dy_g, MatRef::row_major(cols, 0, k, n).t(), beta, dw_g);
                        });
                    }
                    continue;
                }
                let width = count * n;
                with_scratch(k * width + m * width, |scratch| {
                    let (cols, dys) = scratch.split_at_mut(k * width);
                    for i in 0..count {
                        let image = first + i;
                        im2col(
                            &geo,
                            &x[image * per_in..][..per_in],
                            g,
                            &mut cols[i * n..],
                            width,
                        );
                        let dy_g = &dy[image * per_out + g * m * n..][..m * n];
                        for (r, dy_row) in dy_g.chunks_exact(n).enumerate() {
                            dys[r * width + i * n..][..n].copy_from_slice(dy_row);
                        }
                    }
                    let dys = MatRef::row_major(dys, 0, m, width);
                    sgemm(
                        1.0,
                        dys,
                        MatRef::row_major(cols, 0, k, width).t(),
                        beta,
                        dw_g,
                    );
                });
            }
        }
    };

    // Stride 1 with few output channels: no im2col (see `ShiftedInput`). Each image is
    // one product `dY · columnsᵀ`, accumulated into the target, that reads the output
    // gradient and the input's shifted copies where they lie. Every band of 4 output
    // channels passes over all the copies, so this pays where an image is a product of
    // its own anyway, or where the copies stay in the L1 cache: LeNet's second layer
    // (17 KB of copies) 49 against 39 GFLOP/s through im2col at one thread, but
    // ResNet-20's 32-channel 14x14 layer (86 KB) 140 against 165 at two.
    let shifted = ShiftedInput::new(&geo).filter(|shifted| {
        skinny_gemm::qualifies_bt(m, 1, 1)
            && (geo.images_per_product() == 1 || shifted.len(&geo) <= L1_FLOATS)
    });
    let accumulate_shifted =
        |shifted: &ShiftedInput, run: usize, target: &mut [f32], fresh: bool| {
            let images = run * WEIGHT_GRAD_IMAGES..((run + 1) * WEIGHT_GRAD_IMAGES).min(geo.batch);
            with_scratch(shifted.len(&geo), |copies| {
                copies.fill(0.0);
                for (nth, image) in images.enumerate() {
                    let beta = if fresh && nth == 0 { 0.0 } else { 1.0 };
                    for g in 0..geo.spec.groups {
                        shifted.fill(&geo, &x[image * per_in..][..per_in], g, copies);
                        sgemm_bt_rows(
                            1.0,
                            MatRef::row_major(dy, image * per_out + g * m * n, m, n),
                            copies,
                            &shifted.row_starts,
                            beta,
                            MatMut::row_major(target, g * m * k, m, k),
                        );
                    }
                }
            });
        };
    let accumulate = |run: usize, target: &mut [f32], fresh: bool| match &shifted {
        Some(shifted) => accumulate_shifted(shifted, run, target, fresh),
        None => accumulate_im2col(run, target, fresh),
    };

    let dw = dw.data_mut();
    let mut partials = vec![0.0f32; (runs - 1) * w_len];
    let mut targets: Vec<(usize, &mut [f32])> = vec![(0, dw)];
    targets.extend(
        partials
            .chunks_mut(w_len)
            .enumerate()
            .map(|(r, p)| (r + 1, p)),
    );
    if geo.parallel() && runs > 1 {
        targets
            .into_par_iter()
            .for_each(|(run, target)| accumulate(run, target, run > 0));
    } else {
        targets
            .into_iter()
            .for_each(|(run, target)| accumulate(run, target, run > 0));
    }
    for partial in partials.chunks(w_len) {
        dw.iter_mut().zip(partial).for_each(|(d, p)| *d += p);
    }
}

/// `∂L/∂bias` of a convolution: the sum of `grad_out: [n, out, h, w]` over images and
/// pixels, `[out]`.
///
/// # Panics
/// When `grad_out` is not of rank 4.
pub fn conv2d_bias_grad(grad_out: &Tensor) -> Tensor {
    assert_eq!(
        grad_out.rank(),
        4,
        "conv2d_bias_grad: needs [n, out, h, w], got {:?}",
        grad_out.shape()
    );
    grad_out.sum_dims(&[0, 2, 3], false)
}

fn check_grad_out(op: &str, geo: &ConvGeometry, grad_out: &Tensor) {
    assert_eq!(
        grad_out.shape(),
        &geo.output_shape(),
        "{op}: output gradient {:?} does not fit input {:?} and weight {:?}",
        grad_out.shape(),
        geo.input_shape(),
        geo.weight_shape()
    );
}

/// Run `f(first image, the slice of out of its run)` over runs of `count` images (the
/// last run may be shorter), `per_image` elements of `out` each; one run per rayon task
/// when the convolution is large enough.
fn over_images(
    geo: &ConvGeometry,
    count: usize,
    out: &mut [f32],
    per_image: usize,
    f: impl Fn(usize, &mut [f32]) + Sync,
) {
    if per_image == 0 {
        return;
    }
    if geo.parallel() {
        out.par_chunks_mut(count * per_image)
            .enumerate()
            .for_each(|(run, o)| f(run * count, o));
    } else {
        out.chunks_mut(count * per_image)
            .enumerate()
            .for_each(|(run, o)| f(run * count, o));
    }
}

thread_local! {
    /// Each thread's column matrix, kept between calls (one image's worth).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` on this thread's scratch buffer of `len` floats (old contents: garbage).
///
/// # Panics
/// When called from inside `f` on the same thread; the callers here only run `sgemm`,
/// im2col and col2im inside, none of which comes back here or hands work to rayon.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut buffer = cell.borrow_mut();
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        f(&mut buffer[..len])
    })
}

/// The output positions `o` in `0..out` whose input position `o·stride + offset -
/// pad` lies in `0..size` (a contiguous range, possibly empty).
fn valid_outputs(
    out: usize,
    size: usize,
    stride: usize,
    pad: usize,
    offset: usize,
) -> (usize, usize) {
    let lo = if pad > offset {
        (pad - offset).div_ceil(stride)
    } else {
        0
    };
    let hi = if size + pad > offset {
        ((size - 1 + pad - offset) / stride + 1).min(out)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// Lower group `g` of one image (`[in, h, w]`, row-major) into the `K × N` block at the
/// start of `cols`, whose rows are `row_stride` apart (`N` for one image's matrix, more
/// when images are lowered side by side).
///
/// With stride 1 and an output as wide as the input (a "same" convolution), an input
/// row and an output row have the same pitch, so each row of `cols` is one shifted
/// copy of the input plane (then the side-padding columns are zeroed); otherwise it is
/// gathered output row by output row.
fn im2col(geo: &ConvGeometry, image: &[f32], g: usize, cols: &mut [f32], row_stride: usize) {
    let ConvGeometry {
        in_h,
        in_w,
        out_h,
        out_w,
        kernel_h,
        kernel_w,
        ..
    } = *geo;
    let Conv2dSpec {
        stride: [sh, sw],
        padding: [ph, pw],
        dilation: [dh, dw],
        ..
    } = geo.spec;
    let n = out_h * out_w;
    let same_pitch = sh == 1 && sw == 1 && out_w == in_w;
    for c in 0..geo.group_in() {
        let plane = &image[(g * geo.group_in() + c) * in_h * in_w..][..in_h * in_w];
        for ki in 0..kernel_h {
            let (oy_lo, oy_hi) = valid_outputs(out_h, in_h, sh, ph, ki * dh);
            for kj in 0..kernel_w {
                let (ox_lo, ox_hi) = valid_outputs(out_w, in_w, sw, pw, kj * dw);
                let row = &mut cols[((c * kernel_h + ki) * kernel_w + kj) * row_stride..][..n];
                row[..oy_lo * out_w].fill(0.0);
                row[oy_hi * out_w..].fill(0.0);
                if same_pitch {
                    // Output row oy reads input row oy + ki·dh - ph from column kj·dw - pw
                    // on: one shift for the whole block of valid rows.
                    let shift = (ki * dh) as isize * in_w as isize - (ph * in_w) as isize
                        + (kj * dw) as isize
                        - pw as isize;
                    copy_shifted(
                        plane,
                        shift,
                        &mut row[oy_lo * out_w..oy_hi * out_w],
                        oy_lo * out_w,
                    );
                    // The columns whose input lies in the side padding picked up pixels of
                    // the neighbouring rows: zero them.
                    zero_columns(&mut row[oy_lo * out_w..oy_hi * out_w], out_w, ox_lo, ox_hi);
                    continue;
                }
                zero_columns(&mut row[oy_lo * out_w..oy_hi * out_w], out_w, ox_lo, ox_hi);
                for oy in oy_lo..oy_hi {
                    if ox_lo == ox_hi {
                        break;
                    }
                    let dst = &mut row[oy * out_w + ox_lo..oy * out_w + ox_hi];
                    let src = &plane[(oy * sh + ki * dh - ph) * in_w..][..in_w];
                    let ix0 = ox_lo * sw + kj * dw - pw;
                    if sw == 1 {
                        // An inline loop: rows are short, a `memcpy` call per row costs more.
                        dst.iter_mut().zip(&src[ix0..]).for_each(|(d, s)| *d = *s);
                    } else {
                        for (d, s) in dst.iter_mut().zip(src[ix0..].iter().step_by(sw)) {
                            *d = *s;
                        }
                    }
                }
            }
        }
    }
}

/// Zero the columns `..lo` and `hi..` of every row of `rows` (row-major, `width` wide):
/// the output positions whose input lies in the side padding. Written column by column
/// (one store per row), since a `fill` of one or two elements per row would be a
/// `memset` call each.
fn zero_columns(rows: &mut [f32], width: usize, lo: usize, hi: usize) {
    for col in (0..lo.min(width)).chain(hi.max(lo)..width) {
        for r in rows.iter_mut().skip(col).step_by(width) {
            *r = 0.0;
        }
    }
}

/// `dst[i] = plane[first + i + shift]` where that index lies in the plane, else 0.
fn copy_shifted(plane: &[f32], shift: isize, dst: &mut [f32], first: usize) {
    let len = dst.len() as isize;
    let from = first as isize + shift;
    // The part of `dst` whose source index lies in 0..plane.len().
    let start = (-from).clamp(0, len);
    let end = (plane.len() as isize - from).clamp(start, len);
    let (start, end) = (start as usize, end as usize);
    dst[..start].fill(0.0);
    dst[end..].fill(0.0);
    let source = (from + start as isize) as usize;
    dst[start..end].copy_from_slice(&plane[source..source + (end - start)]);
}

/// The adjoint of [`im2col`]: add every entry of `cols: [K, N]` into the pixel of group
/// `g` of `image_grad` (`[in, h, w]`) it was copied from.
fn col2im_add(geo: &ConvGeometry, cols: &[f32], g: usize, image_grad: &mut [f32]) {
    let ConvGeometry {
        in_h,
        in_w,
        out_h,
        out_w,
        kernel_h,
        kernel_w,
        ..
    } = *geo;
    let Conv2dSpec {
        stride: [sh, sw],
        padding: [ph, pw],
        dilation: [dh, dw],
        ..
    } = geo.spec;
    let n = out_h * out_w;
    for c in 0..geo.group_in() {
        let plane = &mut image_grad[(g * geo.group_in() + c) * in_h * in_w..][..in_h * in_w];
        for ki in 0..kernel_h {
            let (oy_lo, oy_hi) = valid_outputs(out_h, in_h, sh, ph, ki * dh);
            for kj in 0..kernel_w {
                let (ox_lo, ox_hi) = valid_outputs(out_w, in_w, sw, pw, kj * dw);
                if ox_lo == ox_hi {
                    continue;
                }
                let row = &cols[((c * kernel_h + ki) * kernel_w + kj) * n..][..n];
                for oy in oy_lo..oy_hi {
                    let src = &row[oy * out_w + ox_lo..oy * out_w + ox_hi];
                    let dst = &mut plane[(oy * sh + ki * dh - ph) * in_w..][..in_w];
                    let ix0 = ox_lo * sw + kj * dw - pw;
                    if sw == 1 {
                        dst[ix0..ix0 + src.len()]
                            .iter_mut()
                            .zip(src)
                            .for_each(|(d, s)| *d += s);
                    } else {
                        for (d, s) in dst[ix0..].iter_mut().step_by(sw).zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_outputs_cover_exactly_the_inside() {
        for (out, size, stride, pad, offset) in [
            (5, 5, 1, 1, 0),
            (5, 5, 1, 1, 2),
            (3, 7, 2, 1, 1),
            (4, 6, 2, 2, 0),
        ] {
            let (lo, hi) = valid_outputs(out, size, stride, pad, offset);
            for o in 0..out {
                let pos = (o * stride + offset) as isize - pad as isize;
                let inside = pos >= 0 && (pos as usize) < size;
                assert_eq!(
                    inside,
                    (lo..hi).contains(&o),
                    "{out} {size} {stride} {pad} {offset}: o={o}"
                );
            }
        }
    }

    #[test]
    fn output_size_follows_pytorch() {
        // torch: Conv2d(3, 4, 3, stride=2, padding=1)(x[1, 3, 28, 28]) -> [1, 4, 14, 14]
        let geo = ConvGeometry::new(
            "t",
            &[1, 3, 28, 28],
            &[4, 3, 3, 3],
            Conv2dSpec::default().stride(2).padding(1),
        );
        assert_eq!(geo.output_shape(), [1, 4, 14, 14]);
        // dilation 2, kernel 3 spans 5: 9 -> 5
        let geo = ConvGeometry::new(
            "t",
            &[1, 2, 9, 9],
            &[2, 1, 3, 3],
            Conv2dSpec::default().dilation(2).groups(2),
        );
        assert_eq!(geo.output_shape(), [1, 2, 5, 5]);
    }

    #[test]
    #[should_panic(expected = "do not fit 2 group(s)")]
    fn groups_must_divide_the_channels() {
        ConvGeometry::new(
            "conv2d",
            &[1, 3, 5, 5],
            &[4, 1, 3, 3],
            Conv2dSpec::default().groups(2),
        );
    }
}
