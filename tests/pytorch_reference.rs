//! Values computed by PyTorch 2.15.0 (CPU, float32), so "the semantics of
//! `torch.optim.SGD`/`Adam`/`AdamW`/`RAdam`", of the losses, and of AGD's reference
//! implementation (atorch) are checked against the real thing, not only against our
//! reading of the equations (the f64 transcriptions in `crates/optim/tests/reference.rs`
//! do that). The generating scripts are quoted above each test; rerun them to regenerate
//! the numbers.

// The numbers are pasted as PyTorch printed them.
#![allow(clippy::excessive_precision)]

use agdlab::autograd::{Gradients, Param, Tape};
use agdlab::nn::{bce_with_logits, mse_loss, CrossEntropyLoss};
use agdlab::optim::{Adam, AdamConfig, Optimizer, RAdam, RAdamConfig, Sgd, SgdConfig};
use agdlab::tensor::Tensor;

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}[{i}]: got {g}, PyTorch gives {w}"
        );
    }
}

const START: [f32; 5] = [0.5, -1.25, 2.0, 0.0, -0.3];

/// 12 steps from `START` with g_t[i] = sin(0.7·t + 1.3·i)·(1 + 0.1·i) + 0.05·θ_i.
fn run(make: impl FnOnce(Vec<(String, Param)>) -> Box<dyn Optimizer>) -> Vec<f32> {
    run_from(START, make)
}

/// As [`run`], from `theta0`.
fn run_from(
    theta0: [f32; 5],
    make: impl FnOnce(Vec<(String, Param)>) -> Box<dyn Optimizer>,
) -> Vec<f32> {
    let p = Param::new(Tensor::from_vec(theta0.to_vec(), &[5]).unwrap());
    let mut opt = make(vec![("p".to_string(), p.clone())]);
    for t in 1..=12 {
        let theta = p.value().to_vec();
        let g: Vec<f32> = (0..5)
            .map(|i| {
                (0.7 * t as f64 + 1.3 * i as f64).sin() as f32 * (1.0 + 0.1 * i as f32)
                    + 0.05 * theta[i]
            })
            .collect();
        let mut grads = Gradients::new();
        grads.insert(&p, Tensor::from_vec(g, &[5]).unwrap());
        opt.step(&grads).unwrap();
    }
    p.value().to_vec()
}

// import math, torch
// def grads(step, n):
//     return torch.tensor([math.sin(0.7*step + 1.3*i) * (1 + 0.1*i) for i in range(n)], dtype=torch.float32)
// configs = {
//  "sgd_nesterov_wd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
//  "sgd_dampening": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3),
//  "adam_amsgrad_wd": lambda p: torch.optim.Adam(p, lr=0.01, amsgrad=True, weight_decay=0.05),
//  "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
//  "radam": lambda p: torch.optim.RAdam(p, lr=0.01),
// }
// for name, make in configs.items():
//     p = torch.nn.Parameter(torch.tensor([0.5, -1.25, 2.0, 0.0, -0.3], dtype=torch.float32))
//     opt = make([p])
//     for t in range(1, 13):
//         p.grad = grads(t, 5) + 0.05 * p.detach()
//         opt.step()
//     print(name, [float(x) for x in p.detach()])
#[test]
fn optimizers_match_torch_optim() {
    let sgd_nesterov = run(|p| {
        let c = SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.01,
            ..Default::default()
        };
        Box::new(Sgd::new(p, c).unwrap())
    });
    assert_close(
        &sgd_nesterov,
        &[
            -0.105_059_13,
            -1.163_602_5,
            2.188_348,
            0.472_770_1,
            -0.606_530_8,
        ],
        1e-5,
        "SGD nesterov",
    );

    let sgd_dampening = run(|p| {
        Box::new(
            Sgd::new(
                p,
                SgdConfig {
                    lr: 0.05,
                    momentum: 0.8,
                    dampening: 0.3,
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    });
    assert_close(
        &sgd_dampening,
        &[
            0.204_764_84,
            -1.289_714_2,
            2.083_643,
            0.291_359_75,
            -0.380_839_2,
        ],
        1e-5,
        "SGD dampening",
    );

    let adam = run(|p| {
        Box::new(
            Adam::new(
                p,
                AdamConfig {
                    lr: 0.01,
                    amsgrad: true,
                    weight_decay: 0.05,
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    });
    assert_close(
        &adam,
        &[
            0.447_608_14,
            -1.252_137_2,
            2.010_630_4,
            0.033_476_464,
            -0.312_573_02,
        ],
        1e-5,
        "Adam amsgrad",
    );

    let adamw = run(|p| {
        Box::new(
            Adam::new(
                p,
                AdamConfig {
                    lr: 0.01,
                    weight_decay: 0.1,
                    ..AdamConfig::adamw()
                },
            )
            .unwrap(),
        )
    });
    assert_close(
        &adamw,
        &[
            0.444_403_95,
            -1.244_764_1,
            2.016_56,
            0.033_288_613,
            -0.310_563_36,
        ],
        1e-5,
        "AdamW",
    );

    let radam = run(|p| {
        Box::new(
            RAdam::new(
                p,
                RAdamConfig {
                    lr: 0.01,
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    });
    assert_close(
        &radam,
        &[
            0.464_180_3,
            -1.264_515,
            2.025_578_5,
            0.039_023_45,
            -0.312_800_97,
        ],
        1e-5,
        "RAdam",
    );
}

// import torch, torch.nn.functional as F
// x = torch.tensor([[1.5, -0.3, 0.2, 2.2], [0.1, 0.4, -1.7, 0.0], [-2.0, 3.1, 0.5, 0.9]], requires_grad=True)
// y = torch.tensor([3, 1, 0])
// loss = F.cross_entropy(x, y, label_smoothing=0.1); loss.backward(); print(loss.item(), x.grad.flatten().tolist())
// x.grad = None
// t = torch.tensor([[1., 0., 0., 1.], [0., 1., 1., 0.], [1., 1., 0., 0.]])
// loss = F.binary_cross_entropy_with_logits(x, t); loss.backward(); print(loss.item(), x.grad.flatten().tolist())
// x.grad = None
// loss = F.mse_loss(x, t); loss.backward(); print(loss.item(), x.grad.flatten().tolist())
#[test]
fn losses_and_their_gradients_match_torch_nn_functional() {
    let x = Tensor::from_vec(
        vec![
            1.5, -0.3, 0.2, 2.2, 0.1, 0.4, -1.7, 0.0, -2.0, 3.1, 0.5, 0.9,
        ],
        &[3, 4],
    )
    .unwrap();
    let t = Tensor::from_vec(
        vec![1., 0., 0., 1., 0., 1., 1., 0., 1., 1., 0., 0.],
        &[3, 4],
    )
    .unwrap();
    let loss_and_grad = |f: &dyn Fn(&agdlab::autograd::Var) -> agdlab::autograd::Var| {
        let tape = Tape::new();
        let leaf = tape.leaf(x.clone());
        let loss = f(&leaf);
        let grads = loss.backward();
        (loss.item(), grads.wrt(&leaf).unwrap().to_vec())
    };

    let (ce, ce_grad) = loss_and_grad(&|v| {
        CrossEntropyLoss {
            label_smoothing: 0.1,
            ..Default::default()
        }
        .forward(v, &[3, 1, 0])
    });
    assert_close(&[ce], &[2.226_970_2], 1e-6, "cross_entropy");
    let want = [
        0.0882407,
        0.00763024,
        0.01798616,
        -0.11385709,
        0.08913268,
        -0.17676796,
        0.00777769,
        0.07985757,
        -0.30662721,
        0.27150273,
        0.01245109,
        0.02267339,
    ];
    assert_close(&ce_grad, &want, 1e-6, "cross_entropy grad");

    let (bce, bce_grad) = loss_and_grad(&|v| bce_with_logits(v, &t));
    assert_close(&[bce], &[0.821_963_3], 1e-6, "bce_with_logits");
    let want = [
        -0.01520213,
        0.03546312,
        0.04581949,
        -0.00831254,
        0.04374826,
        -0.03344269,
        -0.07046123,
        0.04166667,
        -0.07339976,
        -0.00359227,
        0.05187161,
        0.05924579,
    ];
    assert_close(&bce_grad, &want, 1e-6, "bce_with_logits grad");

    let (mse, mse_grad) = loss_and_grad(&|v| mse_loss(v, &t));
    assert_close(&[mse], &[1.995_833_4], 1e-6, "mse_loss");
    let want = [
        0.08333334,
        -0.05,
        0.03333334,
        0.20000002,
        0.01666667,
        -0.10000001,
        -0.45000002,
        0.0,
        -0.5,
        0.34999999,
        0.08333334,
        0.15000001,
    ];
    assert_close(&mse_grad, &want, 1e-6, "mse_loss grad");
}

// The reference implementation of AGD: atorch's `atorch/optimizers/agd.py` (the version
// with weight_decouple / fixed_decay / clip), in PyTorch 2.15, float32:
//
// import math, torch
// from atorch.optimizers.agd import AGD
// def grads(step, n):
//     return torch.tensor([math.sin(0.7*step + 1.3*i) * (1 + 0.1*i) for i in range(n)], dtype=torch.float32)
// start = [0.5, -1.25, 2.0, 0.0, -0.3]
// zero = [0.0] * 5  # Win starts z at 0 in atorch and at θ0 in agdlab: both agree when θ0 = 0
// configs = [
//     ("default", start, dict(lr=0.01)),
//     ("decoupled_wd", start, dict(lr=0.01, weight_decay=0.1)),
//     ("fixed_wd", start, dict(lr=0.01, weight_decay=0.01, fixed_decay=True)),
//     ("l2_wd", start, dict(lr=0.01, weight_decay=0.1, weight_decouple=False)),
//     ("amsgrad_clip", start, dict(lr=0.01, amsgrad=True, clip=0.5)),
//     ("both_modes", start, dict(lr=0.01, delta=0.5)),
//     ("win_wd", zero, dict(lr=0.01, win=True, weight_decay=0.1)),
//     ("amsgrad_win_clip", zero, dict(lr=0.01, amsgrad=True, win=True, clip=0.8, delta=0.3)),
// ]
// for name, theta0, kw in configs:
//     p = torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float32))
//     opt = AGD([p], **kw)
//     for t in range(1, 13):
//         p.grad = grads(t, 5) + 0.05 * p.detach()
//         opt.step()
//     print(name, [float(x) for x in p.detach()])
#[test]
fn agd_matches_the_reference_implementation_for_every_option() {
    use agdlab::optim::{Agd, AgdConfig, WeightDecayMode};
    let start = START;
    let zero = [0.0; 5];
    let base = AgdConfig {
        lr: 0.01,
        ..Default::default()
    };
    let cases: [(&str, [f32; 5], AgdConfig, [f32; 5]); 8] = [
        (
            "default",
            start,
            base,
            [
                0.404_775_47,
                -1.252_209_5,
                2.096_382,
                0.042_972_773,
                -0.338_978_7,
            ],
        ),
        (
            "decoupled_wd",
            start,
            AgdConfig {
                weight_decay: 0.1,
                ..base
            },
            [
                0.399_574_67,
                -1.237_276_6,
                2.071_719_6,
                0.042_631_857,
                -0.335_106_64,
            ],
        ),
        (
            "fixed_wd",
            start,
            AgdConfig {
                weight_decay: 0.01,
                weight_decay_mode: WeightDecayMode::Fixed,
                ..base
            },
            [
                0.355_353_38,
                -1.110_071_3,
                1.861_479_8,
                0.039_704_144,
                -0.302_041_53,
            ],
        ),
        (
            "l2_wd",
            start,
            AgdConfig {
                weight_decay: 0.1,
                weight_decay_mode: WeightDecayMode::L2,
                ..base
            },
            [
                0.394_942_16,
                -1.218_034_3,
                1.979_265_7,
                0.042_471_737,
                -0.328_987_4,
            ],
        ),
        (
            "amsgrad_clip",
            start,
            AgdConfig {
                amsgrad: true,
                clip: Some(0.5),
                ..base
            },
            [
                0.493_932_84,
                -1.251_322_5,
                2.004_823,
                0.004_655_711,
                -0.300_912_1,
            ],
        ),
        (
            "both_modes",
            start,
            AgdConfig { delta: 0.5, ..base },
            [
                0.425_815_34,
                -1.252_183_9,
                2.044_348,
                0.041_430_965,
                -0.333_522_86,
            ],
        ),
        (
            "win_wd",
            zero,
            AgdConfig {
                win: true,
                weight_decay: 0.1,
                ..base
            },
            [
                -0.092_439_4,
                -0.019_369_299,
                0.138_786_45,
                0.045_868_866,
                -0.043_641_89,
            ],
        ),
        (
            "amsgrad_win_clip",
            zero,
            AgdConfig {
                amsgrad: true,
                win: true,
                clip: Some(0.8),
                delta: 0.3,
                ..base
            },
            [
                -0.009_003_399,
                -0.005_837_197_4,
                0.010_416_416,
                0.007_806_752_3,
                -0.002_613_199,
            ],
        ),
    ];
    for (name, theta0, config, want) in cases {
        let got = run_from(theta0, |p| Box::new(Agd::new(p, config).unwrap()));
        assert_close(&got, &want, 2e-6, &format!("AGD {name}"));
    }
}

// x = torch.tensor([[0.5, -1.0, 2.0, 0.1], [1.5, 0.2, -0.3, 0.0], [-2.0, 1.0, 0.5, 0.25]], requires_grad=True)
// y = torch.tensor([3, 2, 1])
// loss = F.cross_entropy(x, y, ignore_index=2, label_smoothing=0.1); loss.backward()
// print(loss.item(), x.grad.flatten().tolist())
#[test]
fn cross_entropy_ignores_padding_rows_as_torch_does() {
    let x = Tensor::from_vec(
        vec![
            0.5, -1.0, 2.0, 0.1, 1.5, 0.2, -0.3, 0.0, -2.0, 1.0, 0.5, 0.25,
        ],
        &[3, 4],
    )
    .unwrap();
    let tape = Tape::new();
    let leaf = tape.leaf(x);
    let loss = CrossEntropyLoss {
        label_smoothing: 0.1,
        ignore_index: Some(2),
    }
    .forward(&leaf, &[3, 2, 1]);
    assert_close(
        &[loss.item()],
        &[1.542_080_0],
        1e-6,
        "cross_entropy with ignore_index",
    );
    let grad = loss.backward().wrt(&leaf).unwrap().to_vec();
    let want = [
        0.065_929_66,
        0.005_000_019,
        0.338_997_33,
        -0.409_927_01,
        0.0,
        0.0,
        0.0,
        0.0,
        -0.000_805_672_7,
        -0.227_613_12,
        0.129_966_07,
        0.098_452_69,
    ];
    assert_close(&grad, &want, 1e-6, "cross_entropy with ignore_index grad");
}
