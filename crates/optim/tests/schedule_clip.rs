//! Learning-rate schedules and global-norm clipping against hand-computed values.

mod common;

use agdlab_autograd::Gradients;
use agdlab_optim::{
    clip_grad_norm, Constant, CosineAnnealing, LinearWarmup, LrSchedule, Optimizer, ParamGroup,
    Sgd, SgdConfig, StepDecay,
};
use agdlab_tensor::Tensor;
use common::param;

fn close(a: impl Into<f64>, b: f64) -> bool {
    (a.into() - b).abs() <= 1e-6 * b.abs().max(1e-3)
}

#[test]
fn constant_schedule() {
    assert_eq!(Constant.factor(0), 1.0);
    assert_eq!(Constant.factor(1000), 1.0);
}

#[test]
fn step_decay_schedule() {
    let s = StepDecay {
        step_size: 3,
        gamma: 0.5,
    };
    let want = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125];
    for (t, &w) in want.iter().enumerate() {
        assert!(close(s.factor(t), w), "t={t}: {} vs {w}", s.factor(t));
    }
}

#[test]
fn cosine_schedule() {
    let s = CosineAnnealing {
        t_max: 10,
        min_factor: 0.0,
    };
    // (1 + cos(πt/10))/2: t=0 -> 1, t=2 -> (1+0.80901699)/2, t=5 -> 0.5, t=10 -> 0.
    assert!(close(s.factor(0), 1.0));
    assert!(close(s.factor(2), 0.904508497));
    assert!(close(s.factor(5), 0.5));
    assert!(s.factor(10).abs() < 1e-7);
    // PyTorch's CosineAnnealingLR(base 0.2, T_max 4, eta_min 0.02) is base·this.
    let s = CosineAnnealing {
        t_max: 4,
        min_factor: 0.1,
    };
    // t=1: 0.02 + 0.18·(1 + cos(π/4))/2 = 0.02 + 0.18·0.853553 = 0.173640
    assert!(close(0.2 * s.factor(1), 0.173639610));
    assert!(close(0.2 * s.factor(2), 0.11));
    assert!(close(0.2 * s.factor(4), 0.02));
}

#[test]
fn linear_warmup_schedule() {
    let s = LinearWarmup::new(4, 0.25, Constant);
    // 0.25 + 0.75·t/4 for t < 4, then 1.
    for (t, w) in [
        (0, 0.25),
        (1, 0.4375),
        (2, 0.625),
        (3, 0.8125),
        (4, 1.0),
        (9, 1.0),
    ] {
        assert!(close(s.factor(t), w), "t={t}: {} vs {w}", s.factor(t));
    }
    let s = LinearWarmup::new(
        3,
        0.0,
        CosineAnnealing {
            t_max: 10,
            min_factor: 0.0,
        },
    );
    assert_eq!(s.factor(0), 0.0);
    assert!(close(s.factor(1), 1.0 / 3.0));
    assert!(close(s.factor(3), 1.0));
    assert!(close(s.factor(8), 0.5)); // cosine at t = 5
}

#[test]
fn schedule_apply_scales_every_group_from_its_initial_lr() {
    let (a, b) = (param(vec![1.0], &[1]), param(vec![2.0], &[1]));
    let groups = vec![
        ParamGroup::new(vec![("a".into(), a)]),
        ParamGroup::new(vec![("b".into(), b)]).set("lr", 0.04),
    ];
    let mut opt = Sgd::with_groups(
        groups,
        SgdConfig {
            lr: 0.4,
            ..Default::default()
        },
    )
    .unwrap();
    StepDecay {
        step_size: 2,
        gamma: 0.1,
    }
    .apply(&mut opt, 5);
    assert!(close(opt.group_lr(0), 0.004) && close(opt.lr(), 0.004));
    assert!(close(opt.group_lr(1), 0.0004));
    // Scaling is always from the initial rates, never compounded.
    StepDecay {
        step_size: 2,
        gamma: 0.1,
    }
    .apply(&mut opt, 0);
    assert!(close(opt.group_lr(0), 0.4) && close(opt.group_lr(1), 0.04));
}

#[test]
fn clip_grad_norm_scales_to_max_norm() {
    let a = param(vec![0.0; 2], &[2]);
    let b = param(vec![0.0; 1], &[1, 1]);
    let no_grad = param(vec![0.0; 3], &[3]);
    let params = vec![
        ("a".to_string(), a.clone()),
        ("b".to_string(), b.clone()),
        ("c".to_string(), no_grad),
    ];
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
    assert!(close(
        g.get(&b).unwrap().to_vec()[0],
        12e-6 * 6.5e-6 / (13e-6 + 1e-6)
    ));

    // A row-sparse gradient counts its stored rows: norm sqrt(9 + 16 + 144) again.
    let table = param(vec![0.0; 8], &[4, 2]);
    let mut g = Gradients::new();
    g.insert_rows(
        &table,
        vec![3],
        Tensor::from_vec(vec![3.0, -4.0], &[1, 2]).unwrap(),
    );
    g.insert(&b, Tensor::from_vec(vec![12.0], &[1, 1]).unwrap());
    let sparse_params = vec![
        ("t".to_string(), table.clone()),
        ("b".to_string(), b.clone()),
    ];
    assert_eq!(clip_grad_norm(&mut g, &sparse_params, 6.5), 13.0);
    let clipped = g.get(&table).unwrap();
    assert!(clipped.is_row_sparse());
    assert!(close(clipped.to_vec()[6], 3.0 * scale) && clipped.to_vec()[0] == 0.0);

    // Only the listed parameters count.
    let mut g = make();
    assert_eq!(clip_grad_norm(&mut g, &params[1..], 1.0), 12.0);
    assert_eq!(g.get(&a).unwrap().to_vec(), vec![3.0, -4.0]);
    assert!(close(g.get(&b).unwrap().to_vec()[0], 12.0 / (12.0 + 1e-6)));
}
