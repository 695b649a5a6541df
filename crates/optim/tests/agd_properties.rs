//! Properties of AGD that follow from its equations, checked without the reference.

mod common;

use agdlab_autograd::Gradients;
use agdlab_optim::{Agd, AgdConfig, Optimizer, SGD_MODE_FRACTION};
use agdlab_tensor::Tensor;
use common::*;

#[test]
fn first_step_is_lr_times_sign_of_gradient() {
    // s_1 = g_1, b_1 = (1-β2)g², so the first step is γ·sign(g) whenever |g| ≫ δ.
    let n = 9;
    let lr = 0.01f32;
    let p = param(init32(n), &[n]);
    let before = p.value().to_vec();
    let mut opt = Agd::new(
        vec![("w".into(), p.clone())],
        AgdConfig {
            lr,
            ..Default::default()
        },
    )
    .unwrap();
    let g: Vec<f32> = (0..n)
        .map(|i| [3.0, -0.2, 0.05, -7.0, 1.0][i % 5] * (1.0 + i as f32))
        .collect();
    let mut grads = Gradients::new();
    grads.insert(&p, Tensor::from_vec(g.clone(), &[n]).unwrap());
    opt.step(&grads).unwrap();
    let after = p.value().to_vec();
    for i in 0..n {
        let expected = before[i] - lr * g[i].signum();
        assert!(
            (after[i] - expected).abs() <= 1e-6,
            "coordinate {i}: {} vs {expected} (g = {})",
            after[i],
            g[i]
        );
    }
    assert_eq!(opt.diagnostics().overall(SGD_MODE_FRACTION).unwrap(), 0.0);
}

#[test]
fn huge_delta_is_bias_corrected_momentum_sgd() {
    // With δ = 1e6 and gradients ~1, sqrt(b_t) < δ·sqrt(1-β2^t) everywhere: every step is
    // θ ← θ - (γ/δ)·m_t/(1-β1^t).
    let n = 11;
    let (lr, delta, b1) = (1e3f32, 1e6f32, 0.9f32);
    let p = param(init32(n), &[n]);
    let mut opt = Agd::new(
        vec![("w".into(), p.clone())],
        AgdConfig {
            lr,
            delta,
            betas: (b1, 0.999),
            ..Default::default()
        },
    )
    .unwrap();
    let (lr, delta, b1) = (lr as f64, delta as f64, b1 as f64);
    let mut theta = init64(n);
    let mut m = vec![0.0f64; n];
    for t in 1..=20 {
        let grads = grads_at(t, opt.params());
        opt.step(&grads).unwrap();
        for i in 0..n {
            let g = grad_fn(t, i, theta[i]);
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            theta[i] -= lr / delta * m[i] / (1.0 - b1.powi(t as i32));
        }
        let got = p.value().to_vec();
        for i in 0..n {
            assert!(
                (got[i] as f64 - theta[i]).abs() <= 1e-5 * theta[i].abs() + 1e-6,
                "step {t} coordinate {i}: {} vs {}",
                got[i],
                theta[i]
            );
        }
        let report = opt.diagnostics();
        assert_eq!(report.overall(SGD_MODE_FRACTION), Some(1.0), "step {t}");
        assert_eq!(report.per_param(SGD_MODE_FRACTION), vec![("w", 1.0)]);
    }
}

#[test]
fn tiny_delta_is_fully_adaptive() {
    let n = 16;
    let p = param(init32(n), &[n]);
    let mut opt = Agd::new(
        vec![("w".into(), p)],
        AgdConfig {
            delta: 1e-14,
            ..Default::default()
        },
    )
    .unwrap();
    for t in 1..=15 {
        let grads = grads_at(t, opt.params());
        opt.step(&grads).unwrap();
        assert_eq!(
            opt.diagnostics().overall(SGD_MODE_FRACTION).unwrap(),
            0.0,
            "step {t}"
        );
    }
}

#[test]
fn report_is_per_parameter_and_element_weighted() {
    // "big" has gradients ~1e3 (adaptive under δ = 1), "small" gradients ~1e-3 (SGD mode).
    let big = param(vec![0.0; 3], &[3]);
    let small = param(vec![0.0; 5], &[5]);
    let skipped = param(vec![0.0; 2], &[2]);
    let mut opt = Agd::new(
        vec![
            ("big".into(), big.clone()),
            ("small".into(), small.clone()),
            ("skipped".into(), skipped),
        ],
        AgdConfig {
            delta: 1.0,
            ..Default::default()
        },
    )
    .unwrap();
    let mut grads = Gradients::new();
    grads.insert(&big, Tensor::from_vec(vec![1e3, -2e3, 3e3], &[3]).unwrap());
    grads.insert(&small, Tensor::full(&[5], 1e-3));
    opt.step(&grads).unwrap();
    let r = opt.diagnostics();
    assert_eq!(
        r.per_param(SGD_MODE_FRACTION),
        vec![("big", 0.0), ("small", 1.0)]
    );
    assert!((r.overall(SGD_MODE_FRACTION).unwrap() - 5.0 / 8.0).abs() < 1e-12);
    assert_eq!(r.keys(), vec![SGD_MODE_FRACTION]);
}
