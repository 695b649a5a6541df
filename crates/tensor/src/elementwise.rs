//! Element-wise ops: unary math, binary ops with NumPy broadcasting, comparisons.
//!
//! Binary ops broadcast both operands to a common shape as stride-0 views, then run one
//! kernel over equal shapes. The kernel has a contiguous fast path (a plain slice loop)
//! and a strided path ([`parallel::zip_strided`]) that walks rows of the last dimension,
//! so the common "matrix + bias row" case touches each element once with no index
//! arithmetic inside the row, and transposed operands in cache-sized tiles. Unary ops
//! read a strided view in place the same way ([`parallel::map_strided`]), with no copy
//! first.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::layout::broadcast_shape;
use crate::parallel;
use crate::tensor::Tensor;

impl Tensor {
    /// Apply `f` to every element, producing a contiguous tensor. A strided view is read
    /// in place, with no `contiguous()` copy first.
    pub fn map(&self, f: impl Fn(f32) -> f32 + Sync) -> Tensor {
        let data = match self.as_slice() {
            Some(slice) => parallel::map_slice(slice, f),
            None => parallel::map_strided(self.storage(), self.layout(), f),
        };
        Tensor::from_contiguous(data, self.shape())
    }

    /// Combine two tensors element by element after broadcasting them.
    ///
    /// # Panics
    /// When the shapes do not broadcast; the message names `op` and both shapes.
    pub fn zip_map(&self, other: &Tensor, op: &str, f: impl Fn(f32, f32) -> f32 + Sync) -> Tensor {
        let shape = broadcast_shape(self.shape(), other.shape()).unwrap_or_else(|| {
            panic!(
                "{op}: shapes {:?} and {:?} do not broadcast",
                self.shape(),
                other.shape()
            )
        });
        let (a, b) = (self.broadcast_to(&shape), other.broadcast_to(&shape));
        if let (Some(x), Some(y)) = (a.as_slice(), b.as_slice()) {
            return Tensor::from_contiguous(parallel::zip_slices(x, y, f), &shape);
        }
        let out = parallel::zip_strided((a.storage(), a.layout()), (b.storage(), b.layout()), f);
        Tensor::from_contiguous(out, &shape)
    }

    /// `self[i] = f(self[i], other[i])` in place, broadcasting `other` to `self`'s shape.
    /// Copy-on-write: other tensors sharing the storage are not affected.
    ///
    /// # Panics
    /// When `other` does not broadcast to `self`'s shape.
    pub fn zip_assign(&mut self, other: &Tensor, op: &str, f: impl Fn(f32, f32) -> f32 + Sync) {
        let shape = self.shape().to_vec();
        let compatible = broadcast_shape(&shape, other.shape()).as_deref() == Some(&shape[..]);
        assert!(
            compatible,
            "{op}: cannot broadcast {:?} into {shape:?}",
            other.shape()
        );
        let other = other.broadcast_to(&shape);
        let dst = self.data_mut();
        match other.as_slice() {
            Some(src) => parallel::zip_assign(dst, src, f),
            None => {
                let src = other.contiguous();
                parallel::zip_assign(dst, src.as_slice().expect("contiguous"), f)
            }
        }
    }

    /// In-place `self += other` (with broadcasting of `other`).
    pub fn add_assign(&mut self, other: &Tensor) {
        self.zip_assign(other, "add_assign", |a, b| a + b);
    }

    // --- binary arithmetic -------------------------------------------------------

    /// PyTorch equivalent: `a + b`.
    pub fn add(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "add", |a, b| a + b)
    }
    /// PyTorch equivalent: `a - b`.
    pub fn sub(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "sub", |a, b| a - b)
    }
    /// PyTorch equivalent: `a * b`.
    pub fn mul(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "mul", |a, b| a * b)
    }
    /// PyTorch equivalent: `a / b`.
    pub fn div(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "div", |a, b| a / b)
    }
    /// PyTorch equivalent: `torch.maximum(a, b)`.
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "maximum", f32::max)
    }
    /// PyTorch equivalent: `torch.minimum(a, b)`.
    pub fn minimum(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "minimum", f32::min)
    }

    // --- comparisons: masks of 0.0 / 1.0 ----------------------------------------

    /// `1.0` where `a > b`, else `0.0`.
    pub fn gt(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "gt", |a, b| (a > b) as u8 as f32)
    }
    /// `1.0` where `a >= b`, else `0.0`.
    pub fn ge(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "ge", |a, b| (a >= b) as u8 as f32)
    }
    /// `1.0` where `a < b`, else `0.0`.
    pub fn lt(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "lt", |a, b| (a < b) as u8 as f32)
    }
    /// `1.0` where `a == b`, else `0.0`.
    pub fn eq_mask(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "eq", |a, b| (a == b) as u8 as f32)
    }

    /// Pick from `on_true` where `self != 0`, else from `on_false`; all three broadcast.
    /// PyTorch equivalent: `torch.where(mask, a, b)`.
    pub fn where_cond(&self, on_true: &Tensor, on_false: &Tensor) -> Tensor {
        let shape = broadcast_shape(self.shape(), on_true.shape())
            .and_then(|s| broadcast_shape(&s, on_false.shape()))
            .unwrap_or_else(|| {
                panic!(
                    "where_cond: shapes {:?}, {:?} and {:?} do not broadcast",
                    self.shape(),
                    on_true.shape(),
                    on_false.shape()
                )
            });
        let mask = self.broadcast_to(&shape).contiguous();
        let t = on_true.broadcast_to(&shape).contiguous();
        let f = on_false.broadcast_to(&shape).contiguous();
        let (m, t, f) = (
            mask.as_slice().unwrap(),
            t.as_slice().unwrap(),
            f.as_slice().unwrap(),
        );
        let data = m
            .iter()
            .zip(t)
            .zip(f)
            .map(|((&m, &t), &f)| if m != 0.0 { t } else { f })
            .collect();
        Tensor::from_contiguous(data, &shape)
    }

    /// Replace elements where `mask != 0` by `value`. PyTorch: `t.masked_fill(mask, v)`.
    pub fn masked_fill(&self, mask: &Tensor, value: f32) -> Tensor {
        self.zip_map(mask, "masked_fill", |x, m| if m != 0.0 { value } else { x })
    }

    // --- scalar arithmetic -------------------------------------------------------

    pub fn add_scalar(&self, s: f32) -> Tensor {
        self.map(|x| x + s)
    }
    pub fn mul_scalar(&self, s: f32) -> Tensor {
        self.map(|x| x * s)
    }

    // --- unary math --------------------------------------------------------------

    pub fn neg(&self) -> Tensor {
        self.map(|x| -x)
    }
    /// Vectorised (see [`crate::exp`]): within 2 ulp of the true value.
    pub fn exp(&self) -> Tensor {
        self.map(crate::exp::exp)
    }
    pub fn log(&self) -> Tensor {
        self.map(f32::ln)
    }
    pub fn sqrt(&self) -> Tensor {
        self.map(f32::sqrt)
    }
    pub fn sqr(&self) -> Tensor {
        self.map(|x| x * x)
    }
    pub fn recip(&self) -> Tensor {
        self.map(|x| 1.0 / x)
    }
    /// Hyperbolic tangent, within 2 ulp (see [`tanh`]).
    pub fn tanh(&self) -> Tensor {
        self.map(tanh)
    }
    /// `1 / (1 + e^-x)`, evaluated without overflow for large `|x|`.
    pub fn sigmoid(&self) -> Tensor {
        self.map(sigmoid)
    }
    /// `max(x, 0)`, with NaN staying NaN (as PyTorch's `relu`; `f32::max` would turn
    /// it into 0 and hide it from every later check).
    pub fn relu(&self) -> Tensor {
        self.map(|x| if x < 0.0 { 0.0 } else { x })
    }
    pub fn abs(&self) -> Tensor {
        self.map(f32::abs)
    }
    /// `-1`, `0` or `1` by sign (0 at 0, as `torch.sign`).
    pub fn sign(&self) -> Tensor {
        self.map(|x| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        })
    }
    /// `x^p` for a constant exponent. PyTorch equivalent: `t.pow(p)`.
    pub fn powf(&self, p: f32) -> Tensor {
        self.map(|x| x.powf(p))
    }
    /// Gauss error function (max error about 1e-7).
    pub fn erf(&self) -> Tensor {
        self.map(erf)
    }
    /// Clamp into `[min, max]`. PyTorch equivalent: `t.clamp(min, max)`.
    pub fn clamp(&self, min: f32, max: f32) -> Tensor {
        assert!(min <= max, "clamp: min {min} above max {max}");
        self.map(|x| x.clamp(min, max))
    }
}

/// ReLU's backward in one pass: `dy` where the ReLU's output `y > 0`, else 0 (as
/// PyTorch's `threshold_backward`: a NaN or infinite `dy` is dropped where the ReLU was
/// off, not turned into NaN by a multiplication with 0). `Var::relu` and a batch norm
/// fused with a ReLU mask their output gradient this way.
///
/// # Panics
/// When the shapes differ.
pub fn relu_grad(grad_out: &Tensor, relu_output: &Tensor) -> Tensor {
    assert_eq!(
        relu_output.shape(),
        grad_out.shape(),
        "relu_grad: output and gradient shapes differ"
    );
    grad_out.zip_map(
        relu_output,
        "relu_grad",
        |g, y| if y > 0.0 { g } else { 0.0 },
    )
}

/// Numerically stable logistic function: with `e = exp(-|x|)` (never overflows),
/// `σ(x) = 1/(1 + e)` for `x ≥ 0` and `e/(1 + e)` below. No branch but a select, and the
/// vectorisable [`crate::exp::exp`], so loops over it vectorise.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    let e = crate::exp::exp(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 {
        s
    } else {
        e * s
    }
}

/// Hyperbolic tangent in straight-line arithmetic, so that loops over it vectorise
/// (`f32::tanh` calls the C library, which goes through `expm1f`, one element at a
/// time: ~5% of an LSTM language model's step). Cephes' `tanhf` (Moshier), as SLEEF
/// also does it:
///
/// ```text
/// |x| < 0.625:  tanh x = x + x·z·P(z),  z = x²       (degree-4 minimax P: no cancellation near 0)
/// otherwise:    tanh|x| = 1 - 2/(e^(2|x|) + 1)       (exp saturates to +inf, giving ±1 far out)
/// ```
///
/// Both are evaluated and one is selected, without a branch. Within 2 ulp of the true
/// value (tested against `f64::tanh`); `tanh(±0) = ±0`, `tanh(±inf) = ±1`, NaN stays NaN.
#[inline]
pub fn tanh(x: f32) -> f32 {
    let z = x * x;
    let mut p = -5.704_988_7e-3;
    p = p * z + 2.063_909e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328e-1;
    let small = p * z * x + x;
    let e = crate::exp::exp(2.0 * x.abs());
    let large = 1.0 - 2.0 / (e + 1.0);
    // NaN fails the comparison and takes `large`, which is NaN too. The sign is x's in
    // both forms (copied, so that tanh(-0) is -0).
    let magnitude = if x.abs() < 0.625 { small } else { large };
    magnitude.copysign(x)
}

/// Gauss error function, Abramowitz & Stegun 7.1.26 refined in f64 (|error| < 1.2e-7):
///
/// ```text
/// t = 1 / (1 + |x|/2)
/// erf |x| = 1 - t·exp(-x² - 1.26551223 + t·P(t)),   P of degree 8 (ERF_SERIES)
/// ```
pub fn erf(x: f32) -> f32 {
    // W. J. Cody's rational approximation would be tighter; this series is plenty for f32.
    let x = x as f64;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    // Horner's rule from the highest coefficient down: c₀ + t·(c₁ + t·(… + t·c₈)).
    let (highest, lower) = ERF_SERIES.split_last().expect("nine coefficients");
    let p = lower.iter().rev().fold(*highest, |acc, &c| c + t * acc);
    let y = 1.0 - t * (-x * x - 1.265_512_23 + t * p).exp();
    (if x >= 0.0 { y } else { -y }) as f32
}

/// The coefficients `c₀ … c₈` of [`erf`]'s polynomial `P(t)`, lowest degree first.
const ERF_SERIES: [f64; 9] = [
    1.000_023_68,
    0.374_091_96,
    0.096_784_18,
    -0.186_288_06,
    0.278_868_07,
    -1.135_203_98,
    1.488_515_87,
    -0.822_152_23,
    0.170_872_77,
];

macro_rules! binary_operator {
    ($trait:ident, $method:ident) => {
        impl $trait<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(self, rhs)
            }
        }
        impl $trait<Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                Tensor::$method(&self, &rhs)
            }
        }
    };
}
binary_operator!(Add, add);
binary_operator!(Sub, sub);
binary_operator!(Mul, mul);
binary_operator!(Div, div);

impl Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}

#[cfg(test)]
mod tests {
    use super::tanh;
    use crate::exp::ulps;

    #[test]
    fn tanh_is_within_two_ulps_of_the_true_value_across_the_range() {
        let mut worst = (0u32, 0.0f32);
        let mut x = -12.0f32;
        while x < 12.0 {
            for x in [x, x * 1e-3, x * 1e-6] {
                let d = ulps(tanh(x), (x as f64).tanh());
                if d > worst.0 {
                    worst = (d, x);
                }
            }
            x += 0.000_377;
        }
        assert!(worst.0 <= 2, "{} ulps at x = {}", worst.0, worst.1);
        // Either side of the switch between the polynomial and the exp form.
        for x in [0.624_999_9f32, 0.625, 0.625_000_1, -0.625] {
            assert!(
                ulps(tanh(x), (x as f64).tanh()) <= 2,
                "tanh({x}) = {}",
                tanh(x)
            );
        }
    }

    #[test]
    fn tanh_special_values() {
        assert_eq!(tanh(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh(1e30), 1.0);
        assert_eq!(tanh(-1e30), -1.0);
        assert_eq!(tanh(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
        assert!(tanh(f32::NAN).is_nan());
    }
}
