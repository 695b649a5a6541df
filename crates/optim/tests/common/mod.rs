//! Shared test harness: a deterministic gradient field evaluated identically (in f64) by
//! the implementation under test (on its f32 parameters) and by the f64 references.
#![allow(dead_code)]

use agdlab_autograd::{Gradients, Param};
use agdlab_optim::Optimizer;
use agdlab_tensor::Tensor;

/// Per-coordinate noise scales spanning three decades, so that AGD sees both small and
/// large stepwise differences (and so both of its modes).
const SCALES: [f64; 8] = [1.0, 0.3, 2.0, 0.05, 1.5, 0.01, 0.7, 3.0];

/// Gradient of coordinate `i` at step `t` (1-based): a quadratic pull plus a
/// deterministic oscillation, g = a_i·θ + c_i·sin(0.9t + 1.3i).
pub fn grad_fn(t: usize, i: usize, theta: f64) -> f64 {
    let a = 0.5 + 0.25 * (i % 5) as f64;
    let c = SCALES[i % SCALES.len()];
    a * theta + c * (0.9 * t as f64 + 1.3 * i as f64).sin()
}

/// Initial value of coordinate `i`.
pub fn theta0(i: usize) -> f64 {
    0.8 * (0.7 * i as f64).cos() + 0.05 * (i % 3) as f64
}

pub fn init32(n: usize) -> Vec<f32> {
    (0..n).map(|i| theta0(i) as f32).collect()
}

pub fn init64(n: usize) -> Vec<f64> {
    (0..n).map(theta0).collect()
}

pub fn param(values: Vec<f32>, shape: &[usize]) -> Param {
    Param::new(Tensor::from_vec(values, shape).unwrap())
}

/// Gradients of `p` (flattened coordinates) at step `t`.
pub fn grads_at(t: usize, params: &[(String, Param)]) -> Gradients {
    let mut grads = Gradients::new();
    for (_, p) in params {
        let theta = p.value().to_vec();
        let g: Vec<f32> = theta
            .iter()
            .enumerate()
            .map(|(i, &th)| grad_fn(t, i, th as f64) as f32)
            .collect();
        grads.insert(p, Tensor::from_vec(g, &p.shape()).unwrap());
    }
    grads
}

/// Run the implementation on one parameter of `n` elements for `steps` steps; the value
/// after each step.
pub fn run_impl(
    make: impl FnOnce(Vec<(String, Param)>) -> Box<dyn Optimizer>,
    n: usize,
    steps: usize,
) -> Vec<Vec<f32>> {
    let p = param(init32(n), &[n]);
    let mut opt = make(vec![("w".to_string(), p.clone())]);
    let mut out = Vec::new();
    for t in 1..=steps {
        let grads = grads_at(t, opt.params());
        opt.step(&grads).unwrap();
        out.push(p.value().to_vec());
    }
    out
}

/// Run an f64 reference `step(t, theta, grad)` on `n` coordinates; the value after each
/// step.
pub fn run_ref(
    mut step: impl FnMut(usize, &mut [f64], &[f64]),
    n: usize,
    steps: usize,
) -> Vec<Vec<f64>> {
    let mut theta = init64(n);
    let mut out = Vec::new();
    for t in 1..=steps {
        let g: Vec<f64> = theta
            .iter()
            .enumerate()
            .map(|(i, &th)| grad_fn(t, i, th))
            .collect();
        step(t, &mut theta, &g);
        out.push(theta.clone());
    }
    out
}

/// |a - r| <= rtol·|r| + atol at every step and coordinate; panics naming the first miss.
pub fn assert_traj_close(label: &str, got: &[Vec<f32>], want: &[Vec<f64>], rtol: f64, atol: f64) {
    assert_eq!(got.len(), want.len());
    for (t, (g, w)) in got.iter().zip(want).enumerate() {
        for (i, (&a, &r)) in g.iter().zip(w).enumerate() {
            let err = (a as f64 - r).abs();
            assert!(
                err <= rtol * r.abs() + atol,
                "{label}: step {} coordinate {i}: got {a}, reference {r} (err {err:e})",
                t + 1
            );
        }
    }
}

/// Also require that the run moved the parameters (so a no-op optimizer cannot pass).
pub fn assert_moved(label: &str, got: &[Vec<f32>]) {
    let last = got.last().unwrap();
    let moved = last
        .iter()
        .enumerate()
        .any(|(i, &x)| (x as f64 - theta0(i)).abs() > 1e-4);
    assert!(moved, "{label}: parameters did not move");
}
