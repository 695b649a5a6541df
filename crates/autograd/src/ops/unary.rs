//! Element-wise unary math. Each backward multiplies the output gradient by f'(x).

use agdlab_tensor::elementwise::{relu_grad, tanh};
use agdlab_tensor::Tensor;

use crate::var::Var;

impl Var {
    /// Record an element-wise op whose derivative is the tensor `derivative`.
    fn unary(
        &self,
        name: &'static str,
        out: Tensor,
        derivative: impl FnOnce() -> Tensor + Send + 'static,
    ) -> Var {
        Var::record(name, out, &[self], move |g, grads| {
            grads.add(0, || g.mul(&derivative()))
        })
    }

    /// `-x`.  d/dx = -1.
    pub fn neg(&self) -> Var {
        Var::record("neg", self.value().neg(), &[self], |g, grads| {
            grads.add(0, || g.neg())
        })
    }

    /// `x + s`.  d/dx = 1.
    pub fn add_scalar(&self, s: f32) -> Var {
        Var::record(
            "add_scalar",
            self.value().add_scalar(s),
            &[self],
            |g, grads| grads.add(0, || g),
        )
    }

    /// `x * s`.  d/dx = s.
    pub fn mul_scalar(&self, s: f32) -> Var {
        Var::record(
            "mul_scalar",
            self.value().mul_scalar(s),
            &[self],
            move |g, grads| grads.add(0, || g.mul_scalar(s)),
        )
    }

    /// `e^x`.  d/dx = e^x (the output, saved).
    pub fn exp(&self) -> Var {
        let out = self.value().exp();
        let saved = out.clone();
        self.unary("exp", out, move || saved)
    }

    /// `ln x`.  d/dx = 1/x.
    pub fn log(&self) -> Var {
        let x = self.value().clone();
        self.unary("log", x.log(), move || x.recip())
    }

    /// `√x`.  d/dx = 1/(2√x).
    pub fn sqrt(&self) -> Var {
        let out = self.value().sqrt();
        let saved = out.clone();
        self.unary("sqrt", out, move || saved.map(|s| 0.5 / s))
    }

    /// `x²`.  d/dx = 2x.
    pub fn sqr(&self) -> Var {
        let x = self.value().clone();
        self.unary("sqr", x.sqr(), move || x.mul_scalar(2.0))
    }

    /// `x^p`.  d/dx = p·x^(p-1).
    pub fn powf(&self, p: f32) -> Var {
        let x = self.value().clone();
        self.unary("powf", x.powf(p), move || x.map(|v| p * v.powf(p - 1.0)))
    }

    /// `tanh x`.  d/dx = 1 - tanh²x.
    pub fn tanh(&self) -> Var {
        let out = self.value().tanh();
        let saved = out.clone();
        self.unary("tanh", out, move || saved.map(|t| 1.0 - t * t))
    }

    /// `σ(x) = 1/(1+e^-x)`.  d/dx = σ(1-σ).
    pub fn sigmoid(&self) -> Var {
        let out = self.value().sigmoid();
        let saved = out.clone();
        self.unary("sigmoid", out, move || saved.map(|s| s * (1.0 - s)))
    }

    /// `max(x, 0)`.  d/dx = 1 where x > 0, else 0 (PyTorch's choice at 0): the incoming
    /// gradient masked by the output in one pass ([`relu_grad`]), not multiplied by a
    /// 0/1 mask made in another.
    pub fn relu(&self) -> Var {
        let y = self.value().relu();
        let output = y.clone();
        Var::record("relu", y, &[self], move |g, grads| {
            grads.add(0, || relu_grad(&g, &output))
        })
    }

    /// `|x|`.  d/dx = sign(x) (0 at 0, as PyTorch).
    pub fn abs(&self) -> Var {
        let x = self.value().clone();
        self.unary("abs", x.abs(), move || x.sign())
    }

    /// Clamp into `[min, max]`.  d/dx = 1 inside the closed interval, else 0.
    pub fn clamp(&self, min: f32, max: f32) -> Var {
        let x = self.value().clone();
        self.unary("clamp", x.clamp(min, max), move || {
            x.map(|v| (v >= min && v <= max) as u8 as f32)
        })
    }

    /// GELU, exact: `y = x·Φ(x)` with `Φ(x) = ½(1 + erf(x/√2))`, the normal CDF.
    /// d/dx = Φ(x) + x·φ(x), with `φ(x) = e^(-x²/2)/√(2π)` the normal density. Fused: one
    /// `erf` per element forward, one `exp` backward (Hendrycks & Gimpel, "Gaussian Error
    /// Linear Units", 2016). PyTorch equivalent: `F.gelu(x)`.
    pub fn gelu(&self) -> Var {
        let x = self.value().clone();
        let cdf = x.map(|v| {
            0.5 * (1.0 + agdlab_tensor::elementwise::erf(v * std::f32::consts::FRAC_1_SQRT_2))
        });
        let out = x.mul(&cdf);
        Var::record("gelu", out, &[self], move |g, grads| {
            grads.add(0, || {
                let inv_sqrt_2pi =
                    0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2;
                let slope = x.zip_map(&cdf, "gelu", |v, phi| {
                    phi + v * inv_sqrt_2pi * (-0.5 * v * v).exp()
                });
                g.mul(&slope)
            })
        })
    }

    /// GELU's tanh approximation: `y = ½x(1 + tanh u)`, `u = √(2/π)(x + 0.044715x³)`.
    /// d/dx = ½(1 + tanh u) + ½x(1 - tanh²u)·√(2/π)(1 + 3·0.044715x²). Fused, saving
    /// `tanh u`. PyTorch equivalent: `F.gelu(x, approximate="tanh")`.
    pub fn gelu_tanh(&self) -> Var {
        const C: f32 = 0.044_715;
        let k = (2.0 / std::f32::consts::PI).sqrt();
        let x = self.value().clone();
        let th = x.map(|v| tanh(k * (v + C * v * v * v)));
        let out = x.zip_map(&th, "gelu_tanh", |v, t| 0.5 * v * (1.0 + t));
        Var::record("gelu_tanh", out, &[self], move |g, grads| {
            grads.add(0, || {
                let slope = x.zip_map(&th, "gelu_tanh", |v, t| {
                    0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * k * (1.0 + 3.0 * C * v * v)
                });
                g.mul(&slope)
            })
        })
    }

    /// Gauss error function.  d/dx = 2/√π · e^(-x²).
    pub fn erf(&self) -> Var {
        let x = self.value().clone();
        self.unary("erf", x.erf(), move || {
            x.map(|v| std::f32::consts::FRAC_2_SQRT_PI * (-v * v).exp())
        })
    }
}

impl std::ops::Neg for &Var {
    type Output = Var;
    fn neg(self) -> Var {
        Var::neg(self)
    }
}
