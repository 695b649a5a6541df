//! Layers, losses and a tiny model that must learn.

use agdlab_autograd::{check_gradients, GradCheck, Param, Tape, Var};
use agdlab_nn::activation::{gelu, gelu_tanh};
use agdlab_nn::{
    bce_with_logits, cross_entropy, mse_loss, Buffer, CrossEntropyLoss, Dropout, Forward, Linear,
    Mode, Module, ReLU, Sequential, Tanh, Walk,
};
use agdlab_optim::{Adam, AdamConfig, Optimizer};
use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::normal(shape, 0.0, 1.0, &mut StdRng::seed_from_u64(seed))
}

#[test]
fn linear_has_pytorch_layout_names_and_init_bounds() {
    let mut rng = StdRng::seed_from_u64(0);
    let layer = Linear::new(100, 30, true, &mut rng);
    assert_eq!(layer.weight.shape(), vec![30, 100]);
    let names: Vec<String> = layer
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["weight", "bias"]);
    // kaiming_uniform(a=√5) on fan_in 100 gives U(-0.1, 0.1); so does the bias.
    for p in [&layer.weight, layer.bias.as_ref().unwrap()] {
        let v = p.value().to_vec();
        let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(max <= 0.1 && max > 0.09, "max |w| = {max}");
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        assert!(mean.abs() < 0.02, "mean {mean}");
    }
    let x = randn(&[4, 100], 1);
    let y = layer.forward(&Var::constant(x.clone()));
    // Against the definition y = x·Wᵀ + b.
    let expected = x
        .matmul(&layer.weight.value().t())
        .add(&layer.bias.as_ref().unwrap().value());
    assert!(y.value().allclose(&expected, 1e-5, 1e-5));
}

#[test]
fn sequential_names_by_position_in_declaration_order() {
    let mut rng = StdRng::seed_from_u64(0);
    let model = Sequential::new()
        .append(Linear::new(3, 4, true, &mut rng))
        .append(ReLU)
        .append(Linear::new(4, 2, false, &mut rng))
        .append(Tanh);
    let names: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight"]);
    assert_eq!(model.num_parameters(), 3 * 4 + 4 + 4 * 2);
}

/// log-softmax in f64, straight from the definition.
fn log_softmax_f64(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
    let lse = max
        + row
            .iter()
            .map(|&x| (x as f64 - max).exp())
            .sum::<f64>()
            .ln();
    row.iter().map(|&x| x as f64 - lse).collect()
}

#[test]
fn cross_entropy_matches_the_definition_with_and_without_smoothing() {
    let logits = randn(&[5, 7], 2).mul_scalar(3.0);
    let targets = [0, 6, 3, 3, 1];
    for eps in [0.0f32, 0.1, 0.3] {
        let loss = CrossEntropyLoss {
            label_smoothing: eps,
            ..Default::default()
        };
        let got = loss
            .forward(&Var::constant(logits.clone()), &targets)
            .item() as f64;
        let rows = logits.to_vec();
        let mut expected = 0.0;
        for (row, &t) in rows.chunks(7).zip(&targets) {
            let lp = log_softmax_f64(row);
            expected -= (1.0 - eps as f64) * lp[t] + eps as f64 / 7.0 * lp.iter().sum::<f64>();
        }
        expected /= 5.0;
        assert!(
            (got - expected).abs() < 1e-5,
            "eps {eps}: {got} vs {expected}"
        );
    }
    // Huge logits stay finite.
    let big = Tensor::from_vec(vec![1000.0, -1000.0, 0.0, 500.0, 500.0, -500.0], &[2, 3]).unwrap();
    let loss = cross_entropy(&Var::constant(big), &[1, 2]).item();
    assert!(
        (loss - (2000.0 + (1000.0 + 2f32.ln())) / 2.0).abs() < 1e-2,
        "{loss}"
    );
}

#[test]
fn losses_and_gelu_pass_gradient_checks() {
    let config = GradCheck::default();
    let logits = randn(&[4, 5], 3);
    for eps in [0.0, 0.2] {
        let loss = CrossEntropyLoss {
            label_smoothing: eps,
            ..Default::default()
        };
        check_gradients(
            |v| loss.forward(&v[0], &[1, 0, 4, 4]),
            std::slice::from_ref(&logits),
            &config,
        )
        .unwrap();
        // On a transposed view too.
        check_gradients(
            |v| loss.forward(&v[0], &[2, 3, 0, 1, 1]),
            &[logits.t()],
            &config,
        )
        .unwrap();
    }
    let target = randn(&[4, 5], 4);
    check_gradients(
        |v| mse_loss(&v[0], &target),
        std::slice::from_ref(&logits),
        &config,
    )
    .unwrap();
    let labels = randn(&[4, 5], 5).map(|x| (x > 0.0) as u8 as f32);
    check_gradients(
        |v| bce_with_logits(&v[0], &labels),
        &[logits.mul_scalar(3.0)],
        &config,
    )
    .unwrap();
    check_gradients(|v| gelu(&v[0]), std::slice::from_ref(&logits), &config).unwrap();
    check_gradients(|v| gelu_tanh(&v[0]), &[logits.t().mul_scalar(2.0)], &config).unwrap();
}

#[test]
fn bce_with_logits_matches_the_definition_and_is_stable() {
    let x = Tensor::from_vec(vec![-3.0, 0.5, 2.0, 100.0, -100.0], &[5]).unwrap();
    let y = Tensor::from_vec(vec![0.0, 1.0, 1.0, 0.0, 0.0], &[5]).unwrap();
    let got = bce_with_logits(&Var::constant(x.clone()), &y).item() as f64;
    let expected: f64 = x
        .to_vec()
        .iter()
        .zip(y.to_vec())
        .map(|(&x, y)| {
            let x = x as f64;
            // -[y·log σ(x) + (1-y)·log(1-σ(x))], with log σ(x) = -log(1+e^-x) written stably.
            let log_sig = if x >= 0.0 {
                -(-x).exp().ln_1p()
            } else {
                x - x.exp().ln_1p()
            };
            let log_one_minus = log_sig - x;
            -(y as f64 * log_sig + (1.0 - y as f64) * log_one_minus)
        })
        .sum::<f64>()
        / 5.0;
    assert!((got - expected).abs() < 1e-4, "{got} vs {expected}");
}

#[test]
fn gelu_tanh_matches_pytorch_values() {
    // torch.nn.functional.gelu(torch.tensor([-3., -1., -0.3, 0., 0.4, 1.5, 3.]), approximate="tanh")
    let expected = [
        -0.003_637_433,
        -0.158_808,
        -0.114_629_08,
        0.0,
        0.262_161_17,
        1.399_571_5,
        2.996_362_7,
    ];
    let x = Tensor::from_vec(vec![-3.0, -1.0, -0.3, 0.0, 0.4, 1.5, 3.0], &[7]).unwrap();
    let got = gelu_tanh(&Var::constant(x)).value().to_vec();
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() < 1e-6, "{g} vs {e}");
    }
}

#[test]
fn gelu_matches_pytorch_values() {
    // torch.nn.functional.gelu(torch.tensor([-2., -0.5, 0., 0.5, 2.])) (exact, erf form)
    let expected = [-0.04550027, -0.15426877, 0.0, 0.34573123, 1.9544997];
    let x = Tensor::from_vec(vec![-2.0, -0.5, 0.0, 0.5, 2.0], &[5]).unwrap();
    let got = gelu(&Var::constant(x)).value().to_vec();
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() < 1e-6, "{g} vs {e}");
    }
}

#[test]
fn dropout_scales_in_training_and_is_identity_in_eval() {
    let dropout = Dropout::new(0.25, 7);
    let x = Var::constant(Tensor::ones(&[100, 100]));
    let y = dropout.forward(&x).value().to_vec();
    let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / y.len() as f64;
    assert!((kept - 0.75).abs() < 0.02, "kept {kept}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
    dropout.eval();
    assert_eq!(dropout.forward(&x).value().to_vec(), vec![1.0; 10_000]);
}

#[test]
fn dropout_drops_where_the_uniform_draws_fall_below_p() {
    // The documented rule, drawn one f32 at a time from the same seed: element i is
    // dropped when the i-th draw is below p. Two calls: the second continues the stream.
    for p in [0.2f32, 0.25, 0.5, 0.9, 1e-7] {
        let dropout = Dropout::new(p, 3);
        let mut reference = StdRng::seed_from_u64(3);
        let x = Var::constant(Tensor::ones(&[37, 29]));
        for call in 0..2 {
            let y = dropout.forward(&x).value().to_vec();
            for (i, v) in y.iter().enumerate() {
                let dropped = reference.random::<f32>() < p;
                let want = if dropped { 0.0 } else { 1.0 / (1.0 - p) };
                assert_eq!(*v, want, "p {p}, call {call}, element {i}");
            }
        }
    }
}

#[test]
fn a_tiny_mlp_learns_two_spirals() {
    // Two interleaved spirals: not linearly separable, so the hidden layers must work.
    let n = 200;
    let mut points = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let class = i % 2;
        let r = (i / 2) as f32 / (n / 2) as f32 * 3.0 + 0.2;
        let angle = r * 2.5 + class as f32 * std::f32::consts::PI;
        points.extend([r * angle.cos(), r * angle.sin()]);
        labels.push(class);
    }
    let x = Tensor::from_vec(points, &[n, 2]).unwrap();
    let mut rng = StdRng::seed_from_u64(0);
    let model = Sequential::new()
        .append(Linear::new(2, 64, true, &mut rng))
        .append(Tanh)
        .append(Linear::new(64, 64, true, &mut rng))
        .append(Tanh)
        .append(Linear::new(64, 2, true, &mut rng));
    let mut opt = Adam::new(
        model.named_parameters(),
        AdamConfig {
            lr: 1e-2,
            ..Default::default()
        },
    )
    .unwrap();
    let mut first_loss = None;
    let mut last_loss = 0.0;
    for _ in 0..400 {
        let tape = Tape::new();
        let loss = cross_entropy(&model.forward(&tape.input(x.clone())), &labels);
        last_loss = loss.item();
        first_loss.get_or_insert(last_loss);
        opt.step(&loss.backward()).unwrap();
    }
    let logits = model.forward(&Var::constant(x));
    let correct = logits
        .value()
        .argmax_dim(1)
        .iter()
        .zip(&labels)
        .filter(|(p, y)| p == y)
        .count();
    assert!(
        last_loss < 0.2 * first_loss.unwrap(),
        "loss {first_loss:?} -> {last_loss}"
    );
    assert!(correct as f32 / n as f32 > 0.95, "accuracy {correct}/{n}");
}

#[test]
fn every_parameter_of_a_model_gets_a_gradient() {
    let mut rng = StdRng::seed_from_u64(0);
    let model = Sequential::new()
        .append(Linear::new(3, 4, true, &mut rng))
        .append(ReLU)
        .append(Linear::new(4, 2, true, &mut rng));
    let tape = Tape::new();
    let loss = cross_entropy(
        &model.forward(&tape.input(randn(&[5, 3], 9))),
        &[0, 1, 1, 0, 1],
    );
    let grads = loss.backward();
    let params = model.named_parameters();
    assert!(grads
        .missing(params.iter().map(|(n, p)| (n.as_str(), p)))
        .is_empty());
    let unused = Param::new(Tensor::zeros(&[1]));
    assert_eq!(
        grads.missing([("extra", &unused)]),
        vec!["extra".to_string()]
    );
}

#[test]
fn a_training_step_updates_parameters_in_place_without_copying() {
    let mut rng = StdRng::seed_from_u64(0);
    let model = Sequential::new()
        .append(Linear::new(6, 8, true, &mut rng))
        .append(ReLU)
        .append(Linear::new(8, 3, true, &mut rng));
    let mut opt = Adam::new(model.named_parameters(), AdamConfig::default()).unwrap();
    let buffers = |m: &Sequential| -> Vec<*const f32> {
        m.named_parameters()
            .iter()
            .map(|(_, p)| p.value().storage().as_ptr())
            .collect()
    };
    let before = buffers(&model);
    for _ in 0..3 {
        let tape = Tape::new();
        let logits = model.forward(&tape.input(randn(&[4, 6], 10)));
        let loss = cross_entropy(&logits, &[0, 1, 2, 1]);
        opt.step(&loss.backward()).unwrap();
        // `logits` is still alive here, as in a training loop that reads it afterwards:
        // the tape must not be holding on to parameter buffers.
        assert_eq!(logits.shape(), &[4, 3]);
    }
    assert_eq!(
        buffers(&model),
        before,
        "a parameter buffer was reallocated (copy-on-write copy)"
    );
}

/// A model that is not a chain: a buffer, a mode and children two levels deep, as
/// BatchNorm inside a residual block inside a network will be.
struct Counter {
    seen: Buffer,
    mode: Mode,
}

impl Module for Counter {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.buffer("seen", &self.seen);
        walk.mode(&self.mode);
    }
}

struct Block {
    linear: Linear,
    counter: Counter,
    dropout: Dropout,
}

impl Module for Block {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("linear", &self.linear);
        walk.child("counter", &self.counter);
        walk.child("dropout", &self.dropout);
    }
}

struct Net {
    blocks: Vec<Block>,
    head: Linear,
}

impl Module for Net {
    fn visit(&self, walk: &mut Walk<'_>) {
        for (i, block) in self.blocks.iter().enumerate() {
            walk.child(&format!("blocks.{i}"), block);
        }
        walk.child("head", &self.head);
    }
}

fn net() -> Net {
    let mut rng = StdRng::seed_from_u64(0);
    let mut block = || Block {
        linear: Linear::new(3, 3, true, &mut rng),
        counter: Counter {
            seen: Buffer::integer(Tensor::zeros(&[])),
            mode: Mode::default(),
        },
        dropout: Dropout::new(0.5, 0),
    };
    let blocks = vec![block(), block()];
    Net {
        blocks,
        head: Linear::new(3, 1, false, &mut StdRng::seed_from_u64(1)),
    }
}

#[test]
fn parameters_and_buffers_are_walked_by_name_in_declaration_order() {
    let net = net();
    let params: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        params,
        [
            "blocks.0.linear.weight",
            "blocks.0.linear.bias",
            "blocks.1.linear.weight",
            "blocks.1.linear.bias",
            "head.weight"
        ]
    );
    let buffers: Vec<(String, bool)> = net
        .named_buffers()
        .into_iter()
        .map(|(n, b)| (n, b.is_integer()))
        .collect();
    assert_eq!(
        buffers,
        [
            ("blocks.0.counter.seen".to_string(), true),
            ("blocks.1.counter.seen".to_string(), true)
        ]
    );
    assert_eq!(net.num_parameters(), 2 * (9 + 3) + 3);
}

#[test]
fn train_and_eval_reach_every_layer_through_containers() {
    let net = net();
    assert!(net.is_training());
    net.eval();
    assert!(!net.is_training());
    for block in &net.blocks {
        assert!(!block.counter.mode.is_training());
        let x = Var::constant(Tensor::ones(&[4, 3]));
        assert_eq!(
            block.dropout.forward(&x).value().to_vec(),
            vec![1.0; 12],
            "dropout off in eval"
        );
    }
    net.train();
    assert!(net.blocks.iter().all(|b| b.counter.mode.is_training()));
}

#[test]
fn buffers_refuse_a_value_of_another_shape() {
    let b = Buffer::new(Tensor::zeros(&[3]));
    let err = b.set(Tensor::zeros(&[4])).unwrap_err();
    assert_eq!((err.expected, err.found), (vec![3], vec![4]));
    b.set(Tensor::ones(&[3])).unwrap();
    assert_eq!(b.value().to_vec(), vec![1.0; 3]);
    let p = Param::new(Tensor::zeros(&[2, 2]));
    assert!(
        p.set(Tensor::zeros(&[4])).is_err(),
        "Param::set checks shapes instead of panicking"
    );
}

/// Evaluation on a constant (or a no-grad tape) records nothing, even while a training
/// step's tape is alive.
#[test]
fn evaluation_records_nothing() {
    let mut rng = StdRng::seed_from_u64(0);
    let model = Sequential::new()
        .append(Linear::new(3, 4, true, &mut rng))
        .append(ReLU);
    let training = Tape::new();
    let y = model.forward(&Tape::no_grad().input(Tensor::ones(&[2, 3])));
    let z = model.forward(&Var::constant(Tensor::ones(&[2, 3])));
    assert!(!y.requires_grad() && !z.requires_grad());
    assert!(training.is_empty());
}

#[test]
fn cross_entropy_gradient_is_softmax_minus_target_over_the_counted_rows() {
    // The gradient is formed in the forward pass for an upstream gradient of 1: check
    // it against the definition in f64, with smoothing and an ignored row, and that an
    // upstream gradient of 3 triples it.
    let (n, classes) = (5, 7);
    let logits = randn(&[n, classes], 6).mul_scalar(2.0);
    let targets = [3, 0, 6, 6, 2];
    for eps in [0.0f32, 0.2] {
        let loss = CrossEntropyLoss {
            label_smoothing: eps,
            ignore_index: Some(0), // the second row
        };
        // One tape per backward pass (a tape runs backward once).
        let gradient = |upstream: f32| {
            let tape = Tape::new();
            let x = tape.leaf(logits.clone());
            let value = loss.forward(&x, &targets);
            let grad = value
                .mul_scalar(upstream)
                .backward()
                .wrt(&x)
                .unwrap()
                .to_vec();
            (value.item(), grad)
        };
        let (value, once) = gradient(1.0);
        let (_, tripled) = gradient(3.0);
        let counted = 4.0;
        for (i, (row, &t)) in logits.to_vec().chunks(classes).zip(&targets).enumerate() {
            let p: Vec<f64> = log_softmax_f64(row).iter().map(|l| l.exp()).collect();
            for c in 0..classes {
                let q = if t == 0 {
                    None
                } else {
                    Some((1.0 - eps as f64) * (c == t) as u8 as f64 + eps as f64 / classes as f64)
                };
                let want = q.map_or(0.0, |q| (p[c] - q) / counted);
                let got = once[i * classes + c] as f64;
                assert!(
                    (got - want).abs() < 1e-6,
                    "eps {eps} [{i}, {c}]: {got} vs {want}"
                );
                let got3 = tripled[i * classes + c] as f64;
                assert!((got3 - 3.0 * want).abs() < 3e-6, "x3 [{i}, {c}]: {got3}");
            }
        }
        // Without a gradient to form, the same loss.
        let constant = loss.forward(&Var::constant(logits.clone()), &targets);
        assert!((constant.item() - value).abs() <= 1e-6 * value.abs());
    }
}
