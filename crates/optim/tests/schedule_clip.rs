//! Learning-rate schedules and global-norm clipping against hand-computed values.

mod common;

use agdlab_autograd::Gradients;
use agdlab_optim::{
    clip_grad_norm, Constant, CosineAnnealing, LinearWarmup, LrSchedule, Optimizer, Sgd, SgdConfig, StepDecay,
};
use agdlab_tensor::Tensor;
use common::param;

fn close(a: f32, b: f64) -> bool {
    (a as f64 - b).abs() <= 1e-6 * b.abs().max(1e-3)
}

#[test]
fn constant_schedule() {
    let s = Constant { lr: 0.3 };
    assert_eq!(s.lr_at(0), 0.3);
    assert_eq!(s.lr_at(1000), 0.3);
}

#[test]
fn step_decay_schedule() {
    let s = StepDecay { base_lr: 0.1, step_size: 3, gamma: 0.5 };
    let want = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125];
    for (t, &w) in want.iter().enumerate() {
        assert!(close(s.lr_at(t), w), "t={t}: {} vs {w}", s.lr_at(t));
    }
}

#[test]
fn cosine_schedule() {
    let s = CosineAnnealing { base_lr: 1.0, t_max: 10, eta_min: 0.0 };
    // (1 + cos(πt/10))/2: t=0 -> 1, t=2 -> (1+0.80901699)/2, t=5 -> 0.5, t=10 -> 0.
    assert!(close(s.lr_at(0), 1.0));
    assert!(close(s.lr_at(2), 0.904508497));
    assert!(close(s.lr_at(5), 0.5));
    assert!(s.lr_at(10).abs() < 1e-7);
    let s = CosineAnnealing { base_lr: 0.2, t_max: 4, eta_min: 0.02 };
    // t=1: 0.02 + 0.18·(1 + cos(π/4))/2 = 0.02 + 0.18·0.853553 = 0.173640
    assert!(close(s.lr_at(1), 0.173639610));
    assert!(close(s.lr_at(2), 0.11));
    assert!(close(s.lr_at(4), 0.02));
}

#[test]
fn linear_warmup_schedule() {
    let s = LinearWarmup::new(4, 0.25, Constant { lr: 0.2 });
    // 0.2·(0.25 + 0.75·t/4) for t < 4, then 0.2.
    for (t, w) in [(0, 0.05), (1, 0.0875), (2, 0.125), (3, 0.1625), (4, 0.2), (9, 0.2)] {
        assert!(close(s.lr_at(t), w), "t={t}: {} vs {w}", s.lr_at(t));
    }
    let s = LinearWarmup::new(3, 0.0, CosineAnnealing { base_lr: 1.0, t_max: 10, eta_min: 0.0 });
    assert_eq!(s.lr_at(0), 0.0);
    assert!(close(s.lr_at(1), 1.0 / 3.0));
    assert!(close(s.lr_at(3), 1.0));
    assert!(close(s.lr_at(8), 0.5)); // cosine at t = 5
}

#[test]
fn schedule_apply_sets_optimizer_lr() {
    let mut opt = Sgd::new(vec![("w".into(), param(vec![1.0], &[1]))], SgdConfig::default());
    StepDecay { base_lr: 0.4, step_size: 2, gamma: 0.1 }.apply(&mut opt, 5);
    assert!(close(opt.lr(), 0.004));
}

#[test]
fn clip_grad_norm_scales_to_max_norm() {
    let a = param(vec![0.0; 2], &[2]);
    let b = param(vec![0.0; 1], &[1, 1]);
    let no_grad = param(vec![0.0; 3], &[3]);
    let params = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone()), ("c".to_string(), no_grad)];
    let make = || {
        let mut g = Gradients::new();
        g.insert(&a, Tensor::from_vec(vec![3.0, -4.0], &[2]).unwrap());
        g.insert(&b, Tensor::from_vec(vec![12.0], &[1, 1]).unwrap());
        g
    };
    // norm = sqrt(9 + 16 + 144) = 13; scale = 6.5/(13 + 1e-6).
    let mut g = make();
    let norm = clip_grad_norm(&mut g, &params, 6.5);
    assert_eq!(norm, 13.0);
    let scale = 6.5 / (13.0 + 1e-6);
    assert!(close(g.get(&a).unwrap().to_vec()[0], 3.0 * scale));
    assert!(close(g.get(&a).unwrap().to_vec()[1], -4.0 * scale));
    assert!(close(g.get(&b).unwrap().to_vec()[0], 12.0 * scale));
    // The clipped norm is max_norm (up to the 1e-6).
    let mut again = g.clone();
    assert!(close(clip_grad_norm(&mut again, &params, 100.0), 6.5));

    // Below the threshold nothing changes.
    let mut g = make();
    assert_eq!(clip_grad_norm(&mut g, &params, 13.5), 13.0);
    assert_eq!(g.get(&a).unwrap().to_vec(), vec![3.0, -4.0]);
    assert_eq!(g.get(&b).unwrap().to_vec(), vec![12.0]);

    // For tiny gradients the 1e-6 matters: norm 1.3e-5, scale = 6.5e-6/(1.4e-5) ≈ 0.464.
    let mut g = Gradients::new();
    g.insert(&a, Tensor::from_vec(vec![3e-6, -4e-6], &[2]).unwrap());
    g.insert(&b, Tensor::from_vec(vec![12e-6], &[1, 1]).unwrap());
    let norm = clip_grad_norm(&mut g, &params, 6.5e-6);
    assert!(close(norm, 13e-6));
    assert!(close(g.get(&b).unwrap().to_vec()[0], 12e-6 * 6.5e-6 / (13e-6 + 1e-6)));

    // Only the listed parameters count.
    let mut g = make();
    assert_eq!(clip_grad_norm(&mut g, &params[1..], 1.0), 12.0);
    assert_eq!(g.get(&a).unwrap().to_vec(), vec![3.0, -4.0]);
    assert!(close(g.get(&b).unwrap().to_vec()[0], 12.0 / (12.0 + 1e-6)));
}
