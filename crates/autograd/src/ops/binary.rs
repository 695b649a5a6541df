//! Binary arithmetic with NumPy broadcasting.

use agdlab_tensor::elementwise::relu_grad;
use agdlab_tensor::layout::broadcast_shape;
use agdlab_tensor::Tensor;

use crate::var::Var;

/// Broadcast both operands to their common shape (recording broadcast nodes).
fn broadcast_pair(op: &str, a: &Var, b: &Var) -> (Var, Var) {
    let shape = broadcast_shape(a.shape(), b.shape()).unwrap_or_else(|| {
        panic!(
            "{op}: shapes {:?} and {:?} do not broadcast",
            a.shape(),
            b.shape()
        )
    });
    (a.broadcast_to(&shape), b.broadcast_to(&shape))
}

impl Var {
    /// `a + b`.  d/da = 1, d/db = 1.
    pub fn add(&self, other: &Var) -> Var {
        let (a, b) = broadcast_pair("add", self, other);
        let out = a.value().add(b.value());
        Var::record("add", out, &[&a, &b], |g, grads| {
            grads.add(0, || g.clone());
            grads.add(1, || g);
        })
    }

    /// `max(a + b, 0)` in one pass: a residual connection and the ReLU after it (a
    /// ResNet block's `relu(F(x) + x)`), where `add` then `relu` would write the sum and
    /// read it back. d/da = d/db = 1 where the output is positive, else 0 (the gradient
    /// masked once, by [`relu_grad`], and shared by both inputs). NaN stays NaN, as in
    /// [`Var::relu`].
    pub fn add_relu(&self, other: &Var) -> Var {
        let (a, b) = broadcast_pair("add_relu", self, other);
        let out = a.value().zip_map(b.value(), "add_relu", |x, y| {
            let sum = x + y;
            if sum < 0.0 {
                0.0
            } else {
                sum
            }
        });
        let output = out.clone();
        Var::record("add_relu", out, &[&a, &b], move |g, grads| {
            let masked = relu_grad(&g, &output);
            grads.add(0, || masked.clone());
            grads.add(1, || masked);
        })
    }

    /// `a - b`.  d/da = 1, d/db = -1.
    pub fn sub(&self, other: &Var) -> Var {
        let (a, b) = broadcast_pair("sub", self, other);
        let out = a.value().sub(b.value());
        Var::record("sub", out, &[&a, &b], |g, grads| {
            grads.add(1, || g.neg());
            grads.add(0, || g);
        })
    }

    /// `a * b`.  d/da = b, d/db = a.
    pub fn mul(&self, other: &Var) -> Var {
        let (a, b) = broadcast_pair("mul", self, other);
        let out = a.value().mul(b.value());
        let (av, bv) = (a.value().clone(), b.value().clone());
        Var::record("mul", out, &[&a, &b], move |g, grads| {
            grads.add(0, || g.mul(&bv));
            grads.add(1, || g.mul(&av));
        })
    }

    /// `a / b`.  d/da = 1/b, d/db = -a/b².
    pub fn div(&self, other: &Var) -> Var {
        let (a, b) = broadcast_pair("div", self, other);
        let out = a.value().div(b.value());
        let (av, bv) = (a.value().clone(), b.value().clone());
        Var::record("div", out, &[&a, &b], move |g, grads| {
            grads.add(0, || g.div(&bv));
            grads.add(1, || g.mul(&av).div(&bv.sqr()).neg());
        })
    }

    /// Element-wise maximum. The gradient goes to `a` where `a >= b`, else to `b`
    /// (ties go to `a`).
    pub fn maximum(&self, other: &Var) -> Var {
        let (a, b) = broadcast_pair("maximum", self, other);
        let out = a.value().maximum(b.value());
        let a_wins = a.value().ge(b.value());
        Var::record("maximum", out, &[&a, &b], move |g, grads| {
            grads.add(0, || g.mul(&a_wins));
            grads.add(1, || g.mul(&a_wins.map(|w| 1.0 - w)));
        })
    }

    /// Element-wise minimum. The gradient goes to `a` where `a <= b`, else to `b`.
    pub fn minimum(&self, other: &Var) -> Var {
        self.neg().maximum(&other.neg()).neg()
    }

    /// Pick `on_true` where `mask != 0`, else `on_false` (mask is a constant).
    /// PyTorch equivalent: `torch.where(mask, a, b)`.
    pub fn where_cond(mask: &Tensor, on_true: &Var, on_false: &Var) -> Var {
        let (a, b) = broadcast_pair("where_cond", on_true, on_false);
        let mask = mask.broadcast_to(a.shape()).contiguous();
        let out = mask.where_cond(a.value(), b.value());
        Var::record("where_cond", out, &[&a, &b], move |g, grads| {
            grads.add(0, || g.mul(&mask.map(|m| (m != 0.0) as u8 as f32)));
            grads.add(1, || g.mul(&mask.map(|m| (m == 0.0) as u8 as f32)));
        })
    }
}

macro_rules! var_operator {
    ($trait:ident, $method:ident) => {
        impl std::ops::$trait<&Var> for &Var {
            type Output = Var;
            fn $method(self, rhs: &Var) -> Var {
                Var::$method(self, rhs)
            }
        }
    };
}
var_operator!(Add, add);
var_operator!(Sub, sub);
var_operator!(Mul, mul);
var_operator!(Div, div);
