//! State save/load round trips, load errors, non-finite gradients, skipped parameters.

mod common;

use agdlab_autograd::{Gradients, Param};
use agdlab_optim::{
    check_gradients, AdaBelief, AdaBeliefConfig, Adam, AdamConfig, Agd, AgdConfig, OptimError,
    Optimizer, RAdam, RAdamConfig, Sgd, SgdConfig, WeightDecayMode,
};
use agdlab_tensor::Tensor;
use common::*;

type Factory = fn(Vec<(String, Param)>) -> Box<dyn Optimizer>;

fn factories() -> Vec<(&'static str, Factory)> {
    vec![
        ("sgd", |p| {
            Box::new(
                Sgd::new(
                    p,
                    SgdConfig {
                        lr: 0.05,
                        momentum: 0.9,
                        nesterov: true,
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        }),
        ("adam", |p| {
            Box::new(
                Adam::new(
                    p,
                    AdamConfig {
                        lr: 0.01,
                        amsgrad: true,
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        }),
        ("adamw", |p| {
            Box::new(Adam::new(p, AdamConfig::adamw()).unwrap())
        }),
        ("agd", |p| {
            Box::new(
                Agd::new(
                    p,
                    AgdConfig {
                        lr: 0.01,
                        delta: 0.5,
                        amsgrad: true,
                        clip: Some(1.0),
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        }),
        ("agd win", |p| {
            Box::new(
                Agd::new(
                    p,
                    AgdConfig {
                        lr: 0.01,
                        win: true,
                        weight_decay: 0.1,
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        }),
        ("adabelief", |p| {
            Box::new(
                AdaBelief::new(
                    p,
                    AdaBeliefConfig {
                        amsgrad: true,
                        weight_decay: 0.1,
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        }),
        ("radam", |p| {
            Box::new(
                RAdam::new(
                    p,
                    RAdamConfig {
                        betas: (0.9, 0.99),
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        }),
    ]
}

/// Three parameters: a matrix, a vector large enough for the parallel path, and a bias
/// that only gets a gradient on even steps.
fn fresh_params(values: Option<&[Vec<f32>]>) -> Vec<(String, Param)> {
    let shapes: [(&str, Vec<usize>); 3] = [
        ("fc.weight", vec![3, 4]),
        ("emb.weight", vec![200, 250]),
        ("fc.bias", vec![3]),
    ];
    shapes
        .iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let n: usize = shape.iter().product();
            let v = match values {
                Some(vals) => vals[k].clone(),
                None => (0..n).map(|i| theta0(i + 17 * k) as f32).collect(),
            };
            (name.to_string(), param(v, shape))
        })
        .collect()
}

fn grads_for(t: usize, params: &[(String, Param)]) -> Gradients {
    let mut g = grads_at(t, params);
    if t % 2 == 1 {
        // Rebuild without the bias: it is skipped on odd steps.
        let mut h = Gradients::new();
        for (name, p) in params {
            if name != "fc.bias" {
                h.insert_grad(p, g.get(p).unwrap().clone());
            }
        }
        g = h;
    }
    g
}

fn values(params: &[(String, Param)]) -> Vec<Vec<f32>> {
    params.iter().map(|(_, p)| p.value().to_vec()).collect()
}

fn scalar(s: &agdlab_optim::OptimizerState, key: &str) -> Option<f64> {
    s.scalars.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

#[test]
fn save_load_continue_is_bit_identical() {
    let (n_first, n_more) = (5, 7);
    for (label, make) in factories() {
        // Straight run of N + M steps.
        let straight = fresh_params(None);
        let mut opt = make(straight.clone());
        for t in 1..=n_first + n_more {
            opt.step(&grads_for(t, &straight)).unwrap();
        }
        let want = values(&straight);

        // N steps, save, rebuild everything from the saved values, load, M more.
        let first = fresh_params(None);
        let mut opt = make(first.clone());
        for t in 1..=n_first {
            opt.step(&grads_for(t, &first)).unwrap();
        }
        let saved = opt.state();
        assert_eq!(saved.kind, opt.name());
        assert_eq!(scalar(&saved, "fc.weight.step"), Some(5.0), "{label}");
        assert_eq!(
            scalar(&saved, "fc.bias.step"),
            Some(2.0),
            "{label}: skipped steps not counted"
        );
        let saved_values = values(&first);
        drop(opt);
        drop(first);

        let resumed = fresh_params(Some(&saved_values));
        let mut opt = make(resumed.clone());
        opt.load_state(&saved).unwrap();
        for t in n_first + 1..=n_first + n_more {
            opt.step(&grads_for(t, &resumed)).unwrap();
        }
        let got = values(&resumed);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                g.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{label}: parameter {k} differs after resuming"
            );
        }
        // And it did something: the values differ from the saved ones.
        assert_ne!(got, saved_values, "{label}");
    }
}

#[test]
fn lr_is_saved_and_restored() {
    let params = fresh_params(None);
    let mut opt = Agd::new(params.clone(), AgdConfig::default()).unwrap();
    opt.set_lr_factor(123.0); // 1e-3 · 123
    assert_eq!(opt.lr(), 0.123);
    opt.step(&grads_for(2, &params)).unwrap();
    let s = opt.state();
    let mut other = Agd::new(fresh_params(None), AgdConfig::default()).unwrap();
    other.load_state(&s).unwrap();
    assert_eq!(other.lr(), 0.123);
}

fn agd(params: Vec<(String, Param)>) -> Agd {
    Agd::new(params, AgdConfig::default()).unwrap()
}

fn stepped_state() -> agdlab_optim::OptimizerState {
    let params = fresh_params(None);
    let mut opt = agd(params.clone());
    opt.step(&grads_for(2, &params)).unwrap();
    opt.state()
}

#[test]
fn load_refuses_another_kind() {
    let params = fresh_params(None);
    let mut adam = Adam::new(params.clone(), AdamConfig::default()).unwrap();
    adam.step(&grads_for(2, &params)).unwrap();
    let err = agd(fresh_params(None))
        .load_state(&adam.state())
        .unwrap_err();
    assert_eq!(
        err,
        OptimError::KindMismatch {
            expected: "AGD".into(),
            found: "Adam".into()
        }
    );
    assert!(err.to_string().contains("Adam") && err.to_string().contains("AGD"));
    // AdamW state is not Adam state either.
    let mut adamw = Adam::new(params.clone(), AdamConfig::adamw()).unwrap();
    adamw.step(&grads_for(2, &params)).unwrap();
    let err = Adam::new(fresh_params(None), AdamConfig::default())
        .unwrap()
        .load_state(&adamw.state());
    assert!(matches!(err, Err(OptimError::KindMismatch { .. })));
}

#[test]
fn load_refuses_wrong_shape() {
    let s = stepped_state();
    let mut params = fresh_params(None);
    params[0].1 = param(vec![0.0; 12], &[4, 3]); // fc.weight transposed
    let err = agd(params).load_state(&s).unwrap_err();
    match &err {
        OptimError::ShapeMismatch {
            key,
            expected,
            found,
        } => {
            assert!(key.starts_with("fc.weight."), "{key}");
            assert_eq!(expected, &vec![4, 3]);
            assert_eq!(found, &vec![3, 4]);
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("fc.weight"));
}

#[test]
fn load_refuses_missing_param() {
    let s = stepped_state();
    let mut params = fresh_params(None);
    params.push(("head.weight".to_string(), param(vec![0.0; 2], &[2])));
    let err = agd(params).load_state(&s).unwrap_err();
    assert_eq!(
        err,
        OptimError::MissingEntry {
            param: "head.weight".into(),
            entry: "step".into()
        }
    );
    assert!(err.to_string().contains("head.weight"));
}

#[test]
fn load_refuses_missing_buffer_and_unknown_entries() {
    let s = stepped_state();
    // Without the AMSGrad maximum the state cannot drive an AMSGrad AGD.
    let err = Agd::new(
        fresh_params(None),
        AgdConfig {
            amsgrad: true,
            ..Default::default()
        },
    )
    .unwrap()
    .load_state(&s)
    .unwrap_err();
    assert_eq!(
        err,
        OptimError::MissingEntry {
            param: "fc.weight".into(),
            entry: "max_exp_avg_sq".into()
        }
    );

    // A parameter this optimizer does not know.
    let mut params = fresh_params(None);
    params.remove(2);
    let err = agd(params).load_state(&s).unwrap_err();
    assert!(
        matches!(&err, OptimError::UnknownEntry { key } if key.starts_with("fc.bias.")),
        "{err:?}"
    );

    // A renamed buffer.
    let mut bad = s.clone();
    bad.tensors[0].0 = "fc.weight.momentum".into();
    let err = agd(fresh_params(None)).load_state(&bad).unwrap_err();
    assert_eq!(
        err,
        OptimError::UnknownEntry {
            key: "fc.weight.momentum".into()
        }
    );

    // A fractional step count, and one beyond 2^53 (no longer an exact integer in f64).
    for step in [1.5, 2f64.powi(53) + 2.0, -1.0, f64::NAN] {
        let mut bad = s.clone();
        bad.scalars
            .iter_mut()
            .find(|(k, _)| k == "fc.weight.step")
            .unwrap()
            .1 = step;
        let err = agd(fresh_params(None)).load_state(&bad).unwrap_err();
        assert!(
            matches!(&err, OptimError::InvalidValue { key, .. } if key == "fc.weight.step"),
            "{step}: {err:?}"
        );
    }
}

#[test]
fn load_refuses_non_finite_state_and_negative_second_moments() {
    let s = stepped_state();
    for (buffer, value) in [
        ("exp_avg", f32::NAN),
        ("exp_avg_sq", f32::INFINITY),
        ("exp_avg_sq", -1e-3),
    ] {
        let mut bad = s.clone();
        let key = format!("emb.weight.{buffer}");
        let t = &mut bad.tensors.iter_mut().find(|(k, _)| *k == key).unwrap().1;
        let mut values = t.to_vec();
        values[7] = value;
        *t = Tensor::from_vec(values, t.shape()).unwrap();
        let err = agd(fresh_params(None)).load_state(&bad).unwrap_err();
        assert!(
            matches!(&err, OptimError::InvalidValue { key: k, .. } if *k == key),
            "{buffer} {value}: {err:?}"
        );
    }
    // A negative first moment is ordinary.
    let mut fine = s.clone();
    let t = &mut fine
        .tensors
        .iter_mut()
        .find(|(k, _)| k == "emb.weight.exp_avg")
        .unwrap()
        .1;
    let mut values = t.to_vec();
    values[7] = -5.0;
    *t = Tensor::from_vec(values, t.shape()).unwrap();
    agd(fresh_params(None)).load_state(&fine).unwrap();
}

#[test]
fn failed_load_changes_nothing() {
    let params = fresh_params(None);
    let mut opt = agd(params.clone());
    opt.step(&grads_for(2, &params)).unwrap();
    let before = opt.state();
    let mut bad = stepped_state();
    bad.scalars.retain(|(k, _)| k != "fc.bias.step");
    assert!(opt.load_state(&bad).is_err());
    let after = opt.state();
    assert_eq!(before.scalars, after.scalars);
    for ((ka, a), (kb, b)) in before.tensors.iter().zip(&after.tensors) {
        assert_eq!(ka, kb);
        assert_eq!(a.to_vec(), b.to_vec());
    }
}

/// Every parameter value and state tensor is finite.
fn all_finite(opt: &dyn Optimizer, params: &[(String, Param)]) -> bool {
    values(params).iter().flatten().all(|x| x.is_finite())
        && opt
            .state()
            .tensors
            .iter()
            .all(|(_, t)| t.to_vec().iter().all(|x| x.is_finite()))
}

#[test]
fn non_finite_gradient_is_reported_and_never_applied() {
    for bad_value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for (label, make) in factories() {
            let params = fresh_params(None);
            let mut opt = make(params.clone());
            opt.step(&grads_for(2, &params)).unwrap();
            let values_before = values(&params);

            let mut grads = grads_for(4, &params);
            let bias = &params[2].1;
            grads.insert(
                bias,
                Tensor::from_vec(vec![0.1, bad_value, 0.2], &[3]).unwrap(),
            );
            let err = opt.step(&grads).unwrap_err();
            assert_eq!(
                err,
                OptimError::NonFiniteGradient {
                    param: "fc.bias".into()
                },
                "{label}"
            );
            assert!(err.to_string().contains("fc.bias"));

            // The check is fused into the update: the parameters before the bad one took
            // the step, the bad one (a single block) did not, and nothing non-finite got in.
            let after = values(&params);
            assert_ne!(
                after[0], values_before[0],
                "{label}: fc.weight took the step"
            );
            assert_eq!(
                after[2], values_before[2],
                "{label}: fc.bias was left as it was"
            );
            assert!(
                all_finite(opt.as_ref(), &params),
                "{label}: a non-finite value got in"
            );
        }
    }
}

#[test]
fn check_gradients_first_skips_a_bad_step_with_nothing_changed() {
    for (label, make) in factories() {
        let params = fresh_params(None);
        let mut opt = make(params.clone());
        opt.step(&grads_for(2, &params)).unwrap();
        let state_before = opt.state();
        let values_before = values(&params);

        let mut grads = grads_for(4, &params);
        grads.insert(
            &params[2].1,
            Tensor::from_vec(vec![0.1, f32::NAN, 0.2], &[3]).unwrap(),
        );
        let err = check_gradients(opt.params(), &grads).unwrap_err();
        assert_eq!(
            err,
            OptimError::NonFiniteGradient {
                param: "fc.bias".into()
            },
            "{label}"
        );

        // The caller skips the step: parameters and state are as they were.
        assert_eq!(values(&params), values_before, "{label}");
        let state_after = opt.state();
        assert_eq!(state_before.scalars, state_after.scalars, "{label}");
        for ((_, a), (_, b)) in state_before.tensors.iter().zip(&state_after.tensors) {
            assert_eq!(a.to_vec(), b.to_vec(), "{label}");
        }
        check_gradients(opt.params(), &grads_for(4, &params)).unwrap();
    }
}

#[test]
fn params_without_gradient_are_skipped() {
    let params = fresh_params(None);
    let mut opt = Agd::new(
        params.clone(),
        AgdConfig {
            weight_decay: 0.5,
            weight_decay_mode: WeightDecayMode::Fixed,
            ..Default::default()
        },
    )
    .unwrap();
    let bias_before = params[2].1.value().to_vec();
    opt.step(&grads_for(1, &params)).unwrap(); // no bias gradient on odd steps
    assert_eq!(
        params[2].1.value().to_vec(),
        bias_before,
        "weight decay must not touch skipped params"
    );
    let s = opt.state();
    assert_eq!(scalar(&s, "fc.bias.step"), Some(0.0));
    assert!(s.tensors.iter().all(|(k, _)| !k.starts_with("fc.bias.")));
    assert_eq!(opt.params().len(), 3);
    assert_eq!(opt.name(), "AGD");
}
