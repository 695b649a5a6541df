//! Finite-difference gradient checking, exported for every crate's tests.
//!
//! For a function `f` of some input tensors, draw a random cotangent `c` shaped like
//! `f`'s output, and compare the backward pass's gradient of `L = Σ c·f(x)` with central
//! differences of `L`. Random cotangents (not `.sum()`) catch backward passes that are
//! wrong only in how they weight output elements. Differences use Richardson
//! extrapolation, `(4·D(h/2) - D(h))/3`, which cancels the `h²` error term so a larger
//! step keeps f32 rounding small; `L` is accumulated in f64.
//!
//! Inputs may be any strided view (transposed, narrowed, permuted): the check perturbs
//! one element of the view while keeping its layout, so backward passes are exercised
//! on exactly the layouts given.

use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::tape::Tape;
use crate::var::Var;

/// Settings of [`check_gradients`].
#[derive(Clone, Debug)]
pub struct GradCheck {
    /// Finite-difference step.
    pub eps: f32,
    /// Allowed relative error.
    pub rtol: f64,
    /// Allowed absolute error.
    pub atol: f64,
    /// Seed of the random cotangent.
    pub seed: u64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            eps: 1e-2,
            rtol: 2e-3,
            atol: 2e-3,
            seed: 0,
        }
    }
}

/// Check `f`'s backward pass against finite differences at `inputs`.
///
/// # Errors
/// A message naming the input, the element, and both gradients at the first mismatch.
pub fn check_gradients(
    f: impl Fn(&[Var]) -> Var,
    inputs: &[Tensor],
    config: &GradCheck,
) -> Result<(), String> {
    let tape = Tape::new();
    let leaves: Vec<Var> = inputs.iter().map(|x| tape.leaf(x.clone())).collect();
    let output = f(&leaves);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let cotangent = Tensor::normal(output.shape(), 0.0, 1.0, &mut rng);
    let grads = output.backward_with(cotangent.clone());

    let loss = |xs: &[Tensor]| -> f64 {
        let consts: Vec<Var> = xs.iter().map(|x| Var::constant(x.clone())).collect();
        let y = f(&consts).value().to_vec();
        y.iter()
            .zip(cotangent.to_vec())
            .map(|(&y, c)| y as f64 * c as f64)
            .sum()
    };
    let central = |xs: &mut Vec<Tensor>, which: usize, index: &[usize], h: f32| -> f64 {
        let x = inputs[which].get(index);
        let (up, down) = (x + h, x - h);
        xs[which] = inputs[which].with_element(index, up);
        let l_up = loss(xs);
        xs[which] = inputs[which].with_element(index, down);
        let l_down = loss(xs);
        xs[which] = inputs[which].clone();
        (l_up - l_down) / (up as f64 - down as f64)
    };

    for (which, input) in inputs.iter().enumerate() {
        let analytic = grads
            .wrt(&leaves[which])
            .cloned()
            .unwrap_or_else(|| Tensor::zeros(input.shape()))
            .to_vec();
        let mut xs = inputs.to_vec();
        for (flat, index) in multi_indices(input.shape()).enumerate() {
            let d_h = central(&mut xs, which, &index, config.eps);
            let d_half = central(&mut xs, which, &index, config.eps / 2.0);
            let numeric = (4.0 * d_half - d_h) / 3.0;
            let got = analytic[flat] as f64;
            if (got - numeric).abs() > config.atol + config.rtol * numeric.abs().max(got.abs()) {
                return Err(format!(
                    "input {which} (shape {:?}) element {index:?}: backward gives {got:.6}, finite differences give {numeric:.6}",
                    input.shape()
                ));
            }
        }
    }
    Ok(())
}

/// All multi-indices of `shape` in row-major order.
fn multi_indices(shape: &[usize]) -> impl Iterator<Item = Vec<usize>> + '_ {
    let total: usize = shape.iter().product();
    (0..total).map(move |mut flat| {
        let mut index = vec![0; shape.len()];
        for (slot, &dim) in index.iter_mut().zip(shape).rev() {
            *slot = flat % dim;
            flat /= dim;
        }
        index
    })
}
