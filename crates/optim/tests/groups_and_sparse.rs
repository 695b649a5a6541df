//! Parameter groups (per-group hyper-parameters, validation, saved groups) and row-sparse
//! gradients (dense semantics by default, the lazy mode as an option).

mod common;

use agdlab_autograd::{Gradients, Param};
use agdlab_optim::{
    AdaBelief, AdaBeliefConfig, Adam, AdamConfig, Agd, AgdConfig, OptimError, Optimizer,
    ParamGroup, RAdam, RAdamConfig, Sgd, SgdConfig, SparseMode,
};
use agdlab_tensor::Tensor;
use common::*;

fn named(name: &str, p: &Param) -> (String, Param) {
    (name.to_string(), p.clone())
}

#[test]
fn group_overrides_equal_separate_optimizers() {
    let (a1, b1) = (param(init32(40), &[8, 5]), param(init32(12), &[12]));
    let (a2, b2) = (param(init32(40), &[8, 5]), param(init32(12), &[12]));
    let base = AgdConfig {
        lr: 0.02,
        weight_decay: 0.01,
        ..Default::default()
    };
    let groups = vec![
        ParamGroup::new(vec![named("a", &a1)]),
        ParamGroup::new(vec![named("b", &b1)])
            .set("delta", 1e-8)
            .set("weight_decay", 0.0)
            .set("lr", 0.005),
    ];
    let mut grouped = Agd::with_groups(groups, base).unwrap();
    let mut only_a = Agd::new(vec![named("a", &a2)], base).unwrap();
    let mut only_b = Agd::new(
        vec![named("b", &b2)],
        AgdConfig {
            delta: 1e-8,
            weight_decay: 0.0,
            lr: 0.005,
            ..base
        },
    )
    .unwrap();
    for t in 1..=8 {
        grouped.step(&grads_at(t, grouped.params())).unwrap();
        only_a.step(&grads_at(t, only_a.params())).unwrap();
        only_b.step(&grads_at(t, only_b.params())).unwrap();
    }
    assert_eq!(a1.value().to_vec(), a2.value().to_vec());
    assert_eq!(b1.value().to_vec(), b2.value().to_vec());
    assert_eq!(
        (
            grouped.num_groups(),
            grouped.group_lr(0),
            grouped.group_lr(1)
        ),
        (2, 0.02, 0.005)
    );
    assert_eq!(grouped.group_rule(1).config().delta, 1e-8);
}

#[test]
fn split_puts_matrices_and_vectors_in_two_groups() {
    let (w, b) = (param(vec![0.0; 6], &[2, 3]), param(vec![0.0; 2], &[2]));
    let groups = ParamGroup::split(
        vec![named("w", &w), named("b", &b)],
        |_, p| p.shape().len() >= 2,
        |g| g.set("weight_decay", 0.0),
    );
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].params[0].0, "w");
    assert!(groups[0].options.is_empty());
    assert_eq!(
        (groups[1].params[0].0.as_str(), groups[1].options[0].1),
        ("b", 0.0)
    );
}

#[test]
fn unknown_and_out_of_range_group_options_are_errors() {
    let p = param(vec![1.0], &[1]);
    let err = Agd::with_groups(
        vec![ParamGroup::new(vec![named("p", &p)]).set("momentum", 0.9)],
        AgdConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, OptimError::UnknownHyperparameter { name, known, .. }
        if name == "momentum" && known.contains(&"delta"))
    );
    assert!(
        err.to_string().contains("momentum") && err.to_string().contains("delta"),
        "{err}"
    );
    for (name, value) in [
        ("delta", 0.0),
        ("delta", f64::NAN),
        ("beta2", 1.0),
        ("weight_decay", -1.0),
        ("lr", 0.0),
    ] {
        let group = ParamGroup::new(vec![named("p", &p)]).set(name, value);
        let err = Agd::with_groups(vec![group], AgdConfig::default()).unwrap_err();
        assert!(
            matches!(&err, OptimError::InvalidHyperparameter { name: n, .. } if n == name),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn every_optimizer_validates_its_config_naming_the_setting() {
    let p = || vec![named("p", &param(vec![1.0], &[1]))];
    let errors = [
        (
            "delta",
            Agd::new(
                p(),
                AgdConfig {
                    delta: 0.0,
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
        (
            "lr",
            Agd::new(
                p(),
                AgdConfig {
                    lr: -1.0,
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
        (
            "clip",
            Agd::new(
                p(),
                AgdConfig {
                    clip: Some(0.0),
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
        (
            "eps",
            Adam::new(
                p(),
                AdamConfig {
                    eps: -1.0,
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
        (
            "beta1",
            RAdam::new(
                p(),
                RAdamConfig {
                    betas: (1.0, 0.999),
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
        (
            "weight_decay",
            AdaBelief::new(
                p(),
                AdaBeliefConfig {
                    weight_decay: -0.1,
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
        (
            "lr",
            AdaBelief::new(
                p(),
                AdaBeliefConfig {
                    lr: f32::NAN,
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
        (
            "momentum",
            Sgd::new(
                p(),
                SgdConfig {
                    momentum: 2.0,
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
        (
            "nesterov",
            Sgd::new(
                p(),
                SgdConfig {
                    nesterov: true,
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
    ];
    for (setting, err) in errors {
        assert!(err.to_string().contains(setting), "{setting}: {err}");
    }
}

#[test]
fn a_parameter_in_two_places_is_refused() {
    let p = param(vec![1.0], &[1]);
    let groups = vec![
        ParamGroup::new(vec![named("a", &p)]),
        ParamGroup::new(vec![named("b", &p)]),
    ];
    let err = Adam::with_groups(groups, AdamConfig::default()).unwrap_err();
    assert_eq!(err, OptimError::DuplicateParameter { name: "b".into() });
}

#[test]
fn state_keeps_the_groups() {
    let make = |swap: bool| {
        let (a, b) = (param(init32(6), &[6]), param(init32(4), &[4]));
        let (first, second) = if swap { (&b, &a) } else { (&a, &b) };
        let groups = vec![
            ParamGroup::new(vec![named(if swap { "b" } else { "a" }, first)]),
            ParamGroup::new(vec![named(if swap { "a" } else { "b" }, second)])
                .set("weight_decay", 0.0),
        ];
        Adam::with_groups(groups, AdamConfig::adamw()).unwrap()
    };
    let mut opt = make(false);
    opt.step(&grads_at(1, opt.params())).unwrap();
    let s = opt.state();
    assert_eq!(s.scalar("b.group"), Some(1.0));
    assert_eq!(s.scalar("group.1.weight_decay"), Some(0.0));
    assert_eq!(s.scalar("group.0.weight_decay"), Some(0.01f32 as f64));
    make(false).load_state(&s).unwrap();
    let err = make(true).load_state(&s).unwrap_err();
    assert!(
        matches!(&err, OptimError::InvalidValue { key, .. } if key == "a.group" || key == "b.group"),
        "{err:?}"
    );
}

/// The five optimizers, over one group whose sparse mode is `mode`.
fn all_optimizers(
    params: Vec<(String, Param)>,
    mode: SparseMode,
) -> Vec<(&'static str, Box<dyn Optimizer>)> {
    let g = || vec![ParamGroup::new(params.clone()).sparse(mode)];
    vec![
        (
            "agd",
            Box::new(
                Agd::with_groups(
                    g(),
                    AgdConfig {
                        lr: 0.01,
                        delta: 1e-3,
                        ..Default::default()
                    },
                )
                .unwrap(),
            ),
        ),
        (
            "adam",
            Box::new(Adam::with_groups(g(), AdamConfig::adamw()).unwrap()),
        ),
        (
            "sgd",
            Box::new(
                Sgd::with_groups(
                    g(),
                    SgdConfig {
                        lr: 0.1,
                        momentum: 0.9,
                        ..Default::default()
                    },
                )
                .unwrap(),
            ),
        ),
        (
            "adabelief",
            Box::new(AdaBelief::with_groups(g(), AdaBeliefConfig::default()).unwrap()),
        ),
        (
            "radam",
            Box::new(RAdam::with_groups(g(), RAdamConfig::default()).unwrap()),
        ),
    ]
}

/// Rows `rows` of a `[rows_total, 4]` table get gradient values from the common field.
fn sparse_and_dense(t: usize, table: &Param, rows: &[usize]) -> (Gradients, Gradients) {
    let row_len = 4;
    let theta = table.value().to_vec();
    let mut values = Vec::new();
    let mut dense = vec![0.0f32; theta.len()];
    for &r in rows {
        for j in 0..row_len {
            let i = r * row_len + j;
            let g = grad_fn(t, i, theta[i] as f64) as f32;
            values.push(g);
            dense[i] = g;
        }
    }
    let mut sparse_grads = Gradients::new();
    sparse_grads.insert_rows(
        table,
        rows.to_vec(),
        Tensor::from_vec(values, &[rows.len(), row_len]).unwrap(),
    );
    let mut dense_grads = Gradients::new();
    dense_grads.insert(table, Tensor::from_vec(dense, &table.shape()).unwrap());
    (sparse_grads, dense_grads)
}

#[test]
fn a_row_sparse_gradient_by_default_equals_the_dense_one_with_zero_rows() {
    let touched: [&[usize]; 4] = [&[3, 17, 40], &[17], &[0, 3, 49], &[40, 41]];
    let sparse_table = param(init32(200), &[50, 4]);
    let dense_table = param(init32(200), &[50, 4]);
    let sparse_opts = all_optimizers(vec![named("t", &sparse_table)], SparseMode::Dense);
    let dense_opts = all_optimizers(vec![named("t", &dense_table)], SparseMode::Dense);
    for ((label, mut sparse_opt), (_, mut dense_opt)) in sparse_opts.into_iter().zip(dense_opts) {
        sparse_table
            .set(Tensor::from_vec(init32(200), &[50, 4]).unwrap())
            .unwrap();
        dense_table
            .set(Tensor::from_vec(init32(200), &[50, 4]).unwrap())
            .unwrap();
        let mut row_49 = 0.0;
        for t in 1..=8 {
            let (sparse, _) = sparse_and_dense(t, &sparse_table, touched[t % 4]);
            let (_, dense) = sparse_and_dense(t, &dense_table, touched[t % 4]);
            sparse_opt.step(&sparse).unwrap();
            dense_opt.step(&dense).unwrap();
            assert_eq!(
                sparse_table.value().to_vec(),
                dense_table.value().to_vec(),
                "{label} step {t}"
            );
            // Row 49 is touched at step 2 only; at step 3 its momentum still moves it.
            let now = sparse_table.value().to_vec()[4 * 49];
            if t == 3 {
                assert_ne!(
                    now, row_49,
                    "{label}: an untouched row keeps moving in the dense semantics"
                );
            }
            row_49 = now;
        }
    }
}

#[test]
fn lazy_mode_updates_only_the_touched_rows() {
    let table = param(init32(200), &[50, 4]);
    // The reference: the same optimizer over a table of just the touched rows.
    let rows = [3usize, 17, 40];
    let compact = param(
        rows.iter()
            .flat_map(|&r| init32(200)[r * 4..r * 4 + 4].to_vec())
            .collect(),
        &[3, 4],
    );
    let lazy = all_optimizers(vec![named("t", &table)], SparseMode::Lazy);
    let reference = all_optimizers(vec![named("t", &compact)], SparseMode::Dense);
    for ((label, mut lazy_opt), (_, mut ref_opt)) in lazy.into_iter().zip(reference) {
        table
            .set(Tensor::from_vec(init32(200), &[50, 4]).unwrap())
            .unwrap();
        compact
            .set(
                Tensor::from_vec(
                    rows.iter()
                        .flat_map(|&r| init32(200)[r * 4..r * 4 + 4].to_vec())
                        .collect(),
                    &[3, 4],
                )
                .unwrap(),
            )
            .unwrap();
        for t in 1..=6 {
            let (sparse, _) = sparse_and_dense(t, &table, &rows);
            lazy_opt.step(&sparse).unwrap();
            let values = sparse
                .get(&table)
                .unwrap()
                .as_row_sparse()
                .unwrap()
                .values()
                .clone();
            let mut g = Gradients::new();
            g.insert(&compact, values);
            ref_opt.step(&g).unwrap();
        }
        let now = table.value().to_vec();
        let start = init32(200);
        for r in 0..50 {
            let row = &now[r * 4..r * 4 + 4];
            match rows.iter().position(|&x| x == r) {
                Some(k) => assert_eq!(
                    row,
                    &compact.value().to_vec()[k * 4..k * 4 + 4],
                    "{label} row {r}"
                ),
                None => assert_eq!(
                    row,
                    &start[r * 4..r * 4 + 4],
                    "{label}: untouched row {r} moved"
                ),
            }
        }
    }
}
