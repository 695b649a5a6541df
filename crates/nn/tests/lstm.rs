//! The LSTM against finite differences and against a step-by-step reference written
//! here from primitive ops (matmul against transposed weights, narrow, sigmoid, tanh,
//! mul, add: no `linear`, no `chunk`, no fused cell), on contiguous and strided inputs;
//! PyTorch's initialisation; dropout between layers only; a long unroll's backward on a
//! small stack; truncated back-propagation with a detached state.
//! (`tests/lstm_pytorch.rs` in the root crate checks against PyTorch's own numbers.)

use agdlab_autograd::{check_gradients, GradCheck, Gradients, Tape, Var};
use agdlab_nn::lstm::{lstm_cell, lstm_layer, lstm_recurrence, LayerWeights};
use agdlab_nn::{Lstm, LstmConfig, Module};
use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

// ---------------------------------------------------------------------------------
// The reference: one step at a time, from primitive ops.
// ---------------------------------------------------------------------------------

/// `(h, c)` after one step from pre-activations `gates` ([batch, 4H]).
fn reference_cell(gates: &Var, c_prev: &Var) -> (Var, Var) {
    let hidden = c_prev.shape()[1];
    let gate = |k: usize| gates.narrow(1, k * hidden, hidden);
    let (i, f, g, o) = (
        gate(0).sigmoid(),
        gate(1).sigmoid(),
        gate(2).tanh(),
        gate(3).sigmoid(),
    );
    let c = f.mul(c_prev).add(&i.mul(&g));
    let h = o.mul(&c.tanh());
    (h, c)
}

/// One layer over `x: [seq, batch, in]`, one step at a time.
fn reference_layer(x: &Var, w: &LayerWeights, h0: &Var, c0: &Var) -> (Var, Var, Var) {
    let (mut h, mut c) = (h0.clone(), c0.clone());
    let mut outputs = Vec::new();
    for t in 0..x.shape()[0] {
        let x_t = x.narrow(0, t, 1).squeeze(0);
        let gates = x_t
            .matmul(&w.weight_ih.t())
            .add(&w.bias_ih)
            .add(&h.matmul(&w.weight_hh.t()))
            .add(&w.bias_hh);
        (h, c) = reference_cell(&gates, &c);
        outputs.push(h.unsqueeze(0));
    }
    (Var::concat(&outputs.iter().collect::<Vec<_>>(), 0), h, c)
}

/// A whole multi-layer LSTM from the module's parameters (no dropout).
fn reference_lstm(lstm: &Lstm, x: &Var, h0: &Var, c0: &Var) -> (Var, Var, Var) {
    let mut input = x.clone();
    let (mut hs, mut cs) = (Vec::new(), Vec::new());
    for (k, layer) in lstm.layers.iter().enumerate() {
        let w = LayerWeights {
            weight_ih: layer.weight_ih.on(x),
            weight_hh: layer.weight_hh.on(x),
            bias_ih: layer.bias_ih.on(x),
            bias_hh: layer.bias_hh.on(x),
        };
        let state = |s: &Var| s.narrow(0, k, 1).squeeze(0);
        let (out, h, c) = reference_layer(&input, &w, &state(h0), &state(c0));
        input = out;
        hs.push(h.unsqueeze(0));
        cs.push(c.unsqueeze(0));
    }
    let join = |v: &Vec<Var>| Var::concat(&v.iter().collect::<Vec<_>>(), 0);
    (input, join(&hs), join(&cs))
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::normal(shape, 0.0, 1.0, &mut StdRng::seed_from_u64(seed))
}

fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    for (k, (g, w)) in got.to_vec().iter().zip(want.to_vec()).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{k}]: {g} vs reference {w}"
        );
    }
}

/// `Σ out·r` with a fixed random cotangent `r`, so every output element counts
/// differently.
fn weighted_sum(out: &Var, seed: u64) -> Var {
    out.mul(&Var::constant(randn(out.shape(), seed))).sum_all()
}

fn weights_from(v: &[Var]) -> LayerWeights {
    LayerWeights {
        weight_ih: v[0].clone(),
        weight_hh: v[1].clone(),
        bias_ih: v[2].clone(),
        bias_hh: v[3].clone(),
    }
}

/// Layer inputs for `seq` steps, `batch` 2, 3 features, hidden 2, in the order
/// `w_ih, w_hh, b_ih, b_hh, x, h0, c0`. Weights are scaled up so the gates are not all
/// near zero (where σ and tanh are almost linear).
fn layer_inputs(seq: usize) -> Vec<Tensor> {
    let (batch, input, hidden) = (2, 3, 2);
    vec![
        randn(&[4 * hidden, input], 1).mul_scalar(0.8),
        randn(&[4 * hidden, hidden], 2).mul_scalar(0.8),
        randn(&[4 * hidden], 3).mul_scalar(0.5),
        randn(&[4 * hidden], 4).mul_scalar(0.5),
        randn(&[seq, batch, input], 5),
        randn(&[batch, hidden], 6).mul_scalar(0.5),
        randn(&[batch, hidden], 7),
    ]
}

/// The same values as strided views: weights transposed twice over a transposed copy,
/// `x` a permuted view, `h0` a narrowed window, `c0` a broadcast-free transposed view.
fn strided(inputs: &[Tensor]) -> Vec<Tensor> {
    inputs
        .iter()
        .map(|t| match t.rank() {
            3 => t.permute(&[1, 2, 0]).contiguous().permute(&[2, 0, 1]),
            2 => t.t().contiguous().t(),
            _ => Tensor::concat(&[&Tensor::zeros(&[1]), t], 0).narrow(0, 1, t.shape()[0]),
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// The fused cell
// ---------------------------------------------------------------------------------

#[test]
fn the_fused_cell_matches_finite_differences() {
    let gates = randn(&[3, 8], 10).mul_scalar(1.5);
    let c_prev = randn(&[3, 2], 11);
    let both = |v: &[Var]| {
        let (h, c) = lstm_cell(&v[0], &v[1]);
        Var::concat(&[&h, &c], 1)
    };
    let only_h = |v: &[Var]| lstm_cell(&v[0], &v[1]).0;
    let only_c = |v: &[Var]| lstm_cell(&v[0], &v[1]).1;
    let contiguous = [gates.clone(), c_prev.clone()];
    let views = [gates.t().contiguous().t(), c_prev.t().contiguous().t()];
    for inputs in [&contiguous, &views] {
        check_gradients(both, inputs, &GradCheck::default()).unwrap();
        check_gradients(only_h, inputs, &GradCheck::default()).unwrap();
        check_gradients(only_c, inputs, &GradCheck::default()).unwrap();
    }
}

#[test]
fn the_fused_cell_matches_the_primitive_ops() {
    let gates = randn(&[4, 12], 20).mul_scalar(2.0);
    let c_prev = randn(&[4, 3], 21);
    let run = |cell: fn(&Var, &Var) -> (Var, Var)| {
        let tape = Tape::new();
        let (g, c0) = (tape.leaf(gates.clone()), tape.leaf(c_prev.clone()));
        let (h, c) = cell(&g, &c0);
        let values = (h.value().clone(), c.value().clone());
        let grads = weighted_sum(&h, 1).add(&weighted_sum(&c, 2)).backward();
        (
            values,
            grads.wrt(&g).unwrap().clone(),
            grads.wrt(&c0).unwrap().clone(),
        )
    };
    let (fused, d_gates, d_c) = run(lstm_cell);
    let (reference, ref_d_gates, ref_d_c) = run(reference_cell);
    assert_close("h", &fused.0, &reference.0, 1e-6);
    assert_close("c", &fused.1, &reference.1, 1e-6);
    assert_close("d gates", &d_gates, &ref_d_gates, 1e-5);
    assert_close("d c_prev", &d_c, &ref_d_c, 1e-5);
}

// ---------------------------------------------------------------------------------
// One layer over a sequence
// ---------------------------------------------------------------------------------

/// The layer as a function of its seven inputs, all three results concatenated.
fn layer_all(v: &[Var]) -> Var {
    let (out, h, c) = lstm_layer(&v[4], &weights_from(v), &v[5], &v[6]);
    let seq_batch = out.shape()[0] * out.shape()[1];
    let flat = out.reshape(&[seq_batch as isize, -1]);
    Var::concat(&[&flat, &h, &c], 0)
}

/// The recurrence op alone (seq 4, batch 2, hidden 2), every input a leaf: the
/// projections in the order `projected, w_hh, b_hh, h0, c0`.
fn recurrence_inputs() -> Vec<Tensor> {
    let (seq, batch, hidden) = (4, 2, 2);
    vec![
        randn(&[seq * batch, 4 * hidden], 30).mul_scalar(0.8),
        randn(&[4 * hidden, hidden], 31).mul_scalar(0.8),
        randn(&[4 * hidden], 32).mul_scalar(0.5),
        randn(&[batch, hidden], 33).mul_scalar(0.5),
        randn(&[batch, hidden], 34),
    ]
}

#[test]
fn the_recurrence_op_matches_finite_differences_on_contiguous_and_strided_inputs() {
    let recurrence = |v: &[Var]| lstm_recurrence(&v[0], &v[1], &v[2], &v[3], &v[4]);
    let inputs = recurrence_inputs();
    // `strided` gives the 2-D inputs (the projections too) as transposed views.
    for inputs in [inputs.clone(), strided(&inputs)] {
        check_gradients(recurrence, &inputs, &GradCheck::default()).unwrap();
    }
}

#[test]
fn a_layer_matches_finite_differences_on_contiguous_and_strided_inputs() {
    let inputs = layer_inputs(3);
    check_gradients(layer_all, &inputs, &GradCheck::default()).unwrap();
    check_gradients(layer_all, &strided(&inputs), &GradCheck::default()).unwrap();
}

#[test]
fn a_layer_matches_the_step_by_step_reference() {
    let inputs = layer_inputs(6);
    for inputs in [inputs.clone(), strided(&inputs)] {
        let run = |layer: fn(&Var, &LayerWeights, &Var, &Var) -> (Var, Var, Var)| {
            let tape = Tape::new();
            let v: Vec<Var> = inputs.iter().map(|t| tape.leaf(t.clone())).collect();
            let (out, h, c) = layer(&v[4], &weights_from(&v), &v[5], &v[6]);
            let values = [out.value().clone(), h.value().clone(), c.value().clone()];
            let loss = weighted_sum(&out, 1)
                .add(&weighted_sum(&h, 2))
                .add(&weighted_sum(&c, 3));
            let grads = loss.backward();
            let grads: Vec<Tensor> = v
                .iter()
                .map(|leaf| grads.wrt(leaf).unwrap().clone())
                .collect();
            (values, grads)
        };
        let (values, grads) = run(lstm_layer);
        let (ref_values, ref_grads) = run(reference_layer);
        for (name, (got, want)) in ["output", "h", "c"]
            .iter()
            .zip(values.iter().zip(&ref_values))
        {
            assert_close(name, got, want, 1e-5);
        }
        let names = ["w_ih", "w_hh", "b_ih", "b_hh", "x", "h0", "c0"];
        for (name, (got, want)) in names.iter().zip(grads.iter().zip(&ref_grads)) {
            assert_close(&format!("d {name}"), got, want, 1e-4);
        }
    }
}

// ---------------------------------------------------------------------------------
// The module
// ---------------------------------------------------------------------------------

fn module_grads(lstm: &Lstm, grads: &Gradients) -> Vec<(String, Tensor)> {
    lstm.named_parameters()
        .into_iter()
        .map(|(name, p)| {
            let g = grads
                .dense(&p)
                .unwrap_or_else(|| panic!("{name} got no gradient"));
            (name, g)
        })
        .collect()
}

#[test]
fn a_three_layer_lstm_matches_the_reference_values_and_gradients() {
    let config = LstmConfig {
        num_layers: 3,
        ..Default::default()
    };
    let lstm = Lstm::new(3, 4, config, &mut StdRng::seed_from_u64(5));
    let (x, h0, c0) = (
        randn(&[5, 2, 3], 1),
        randn(&[3, 2, 4], 2),
        randn(&[3, 2, 4], 3),
    );
    let run = |reference: bool| {
        let tape = Tape::new();
        let (x, h0, c0) = (
            tape.leaf(x.clone()),
            tape.leaf(h0.clone()),
            tape.leaf(c0.clone()),
        );
        let (out, h, c) = if reference {
            reference_lstm(&lstm, &x, &h0, &c0)
        } else {
            let (out, (h, c)) = lstm.forward(&x, Some((&h0, &c0)));
            (out, h, c)
        };
        assert_eq!(
            (out.shape(), h.shape(), c.shape()),
            (&[5, 2, 4][..], &[3, 2, 4][..], &[3, 2, 4][..])
        );
        let values = [out.value().clone(), h.value().clone(), c.value().clone()];
        let grads = weighted_sum(&out, 1)
            .add(&weighted_sum(&h, 2))
            .add(&weighted_sum(&c, 3))
            .backward();
        let inputs = [
            grads.wrt(&x).unwrap().clone(),
            grads.wrt(&h0).unwrap().clone(),
        ];
        (values, inputs, module_grads(&lstm, &grads))
    };
    let (values, input_grads, grads) = run(false);
    let (ref_values, ref_input_grads, ref_grads) = run(true);
    for (k, (got, want)) in values.iter().zip(&ref_values).enumerate() {
        assert_close(&format!("result {k}"), got, want, 1e-5);
    }
    for (k, (got, want)) in input_grads.iter().zip(&ref_input_grads).enumerate() {
        assert_close(&format!("input gradient {k}"), got, want, 1e-4);
    }
    for ((name, got), (_, want)) in grads.iter().zip(&ref_grads) {
        assert_close(name, got, want, 1e-4);
    }
    // The final h of the last layer is the last output.
    assert_close(
        "h_n[-1]",
        &values[1].narrow(0, 2, 1).squeeze(0),
        &values[0].narrow(0, 4, 1).squeeze(0),
        0.0,
    );
}

#[test]
fn no_initial_state_means_zeros() {
    let lstm = Lstm::new(
        3,
        4,
        LstmConfig {
            num_layers: 2,
            ..Default::default()
        },
        &mut StdRng::seed_from_u64(6),
    );
    let x = Var::constant(randn(&[4, 3, 3], 9));
    let zeros = Var::constant(Tensor::zeros(&[2, 3, 4]));
    let (a, (ha, ca)) = lstm.forward(&x, None);
    let (b, (hb, cb)) = lstm.forward(&x, Some((&zeros, &zeros)));
    assert_eq!(a.value().to_vec(), b.value().to_vec());
    assert_eq!(ha.value().to_vec(), hb.value().to_vec());
    assert_eq!(ca.value().to_vec(), cb.value().to_vec());
}

#[test]
fn initialisation_is_pytorchs_uniform() {
    let config = LstmConfig {
        num_layers: 2,
        ..Default::default()
    };
    let lstm = Lstm::new(30, 25, config, &mut StdRng::seed_from_u64(0));
    let bound = 1.0 / 5.0; // 1/√hidden
    let shapes: Vec<(String, Vec<usize>)> = lstm
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.shape()))
        .collect();
    assert_eq!(shapes[0], ("weight_ih_l0".into(), vec![100, 30]));
    assert_eq!(shapes[1], ("weight_hh_l0".into(), vec![100, 25]));
    assert_eq!(shapes[2], ("bias_ih_l0".into(), vec![100]));
    assert_eq!(shapes[4], ("weight_ih_l1".into(), vec![100, 25]));
    for (name, p) in lstm.named_parameters() {
        let v = p.value().to_vec();
        let (min, max) = v
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        assert!(
            min >= -bound && max <= bound,
            "{name}: [{min}, {max}] outside ±{bound}"
        );
        assert!(
            min < -0.8 * bound && max > 0.8 * bound,
            "{name}: [{min}, {max}] does not fill ±{bound}"
        );
    }
}

#[test]
fn dropout_acts_between_layers_in_training_only() {
    let x = Var::constant(randn(&[4, 3, 5], 1));
    let make = |layers, dropout| {
        let config = LstmConfig {
            num_layers: layers,
            dropout,
            batch_first: false,
        };
        Lstm::new(5, 6, config, &mut StdRng::seed_from_u64(8))
    };
    let plain = make(2, 0.0);
    let dropped = make(2, 0.5);
    let out = |lstm: &Lstm| lstm.forward(&x, None).0.value().to_vec();
    assert_ne!(
        out(&plain),
        out(&dropped),
        "training mode drops between layers"
    );
    dropped.eval();
    assert_eq!(out(&plain), out(&dropped), "evaluation mode does not drop");
    // One layer has no "between": nothing is dropped even in training mode.
    assert_eq!(out(&make(1, 0.0)), out(&make(1, 0.5)));
}

#[test]
fn a_35_step_unroll_of_3_layers_runs_backward_on_a_small_stack() {
    // The tape's backward is one loop, so a deep tape needs no stack depth. The module
    // records one op per layer for the whole recurrence, so the deep tape here is the
    // step-by-step reference (~1,500 nodes, a dependency chain over 400 deep), built
    // from the module's parameters as a user's own cell loop would be. A recursive
    // backward would need a frame per link of that chain: several hundred bytes each
    // overflow the 128 KiB given here. The module runs on the same stack.
    let worker = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(|| {
            let config = LstmConfig {
                num_layers: 3,
                ..Default::default()
            };
            let lstm = Lstm::new(4, 8, config, &mut StdRng::seed_from_u64(1));
            let x = randn(&[35, 2, 4], 2);
            let tape = Tape::new();
            let zeros = tape.input(Tensor::zeros(&[3, 2, 8]));
            let (reference_out, _, _) =
                reference_lstm(&lstm, &tape.input(x.clone()), &zeros, &zeros);
            let nodes = tape.len();
            let reference = reference_out.sum_all().backward();
            let (out, _) = lstm.forward(&Tape::new().input(x), None);
            let grads = out.sum_all().backward();
            let total = |grads: &Gradients| -> f32 {
                module_grads(&lstm, grads)
                    .iter()
                    .map(|(_, g)| g.sqr().sum_all().item())
                    .sum()
            };
            (nodes, total(&reference), total(&grads))
        });
    let (nodes, reference, fused) = worker.unwrap().join().expect("backward on a 128 KiB stack");
    assert!(nodes > 1000, "only {nodes} nodes recorded");
    assert!(reference.is_finite() && reference > 0.0);
    assert!(
        (fused - reference).abs() <= 1e-4 * reference,
        "squared gradient norm {fused} against the reference's {reference}"
    );
}

#[test]
fn a_detached_state_carries_values_but_not_gradients_into_the_next_window() {
    let lstm = Lstm::new(3, 4, LstmConfig::default(), &mut StdRng::seed_from_u64(3));
    let (first, second) = (randn(&[3, 2, 3], 1), randn(&[3, 2, 3], 2));
    // Two windows of truncated BPTT, each on its own tape.
    let tape = Tape::new();
    let (_, (h, c)) = lstm.forward(&tape.input(first.clone()), None);
    let (h, c) = (h.detach(), c.detach());
    assert!(!h.requires_grad() && !c.requires_grad());
    let next = Tape::new();
    let (out, _) = lstm.forward(&next.input(second.clone()), Some((&h, &c)));
    let grads = out.sum_all().backward();
    assert_eq!(module_grads(&lstm, &grads).len(), 4);
    // The values continue the sequence: the same as running both windows at once.
    let whole = Var::constant(Tensor::concat(&[&first, &second], 0));
    let (all, _) = lstm.forward(&whole, None);
    assert_close(
        "second window",
        out.value(),
        &all.value().narrow(0, 3, 3),
        1e-6,
    );
}

#[test]
#[should_panic(expected = "should be [seq, batch, 3]")]
fn an_input_with_the_wrong_features_panics() {
    let lstm = Lstm::new(3, 4, LstmConfig::default(), &mut StdRng::seed_from_u64(3));
    lstm.forward(&Var::constant(Tensor::zeros(&[2, 2, 5])), None);
}

#[test]
#[should_panic(expected = "initial h [1, 3, 4] should be [1, 2, 4]")]
fn a_state_with_the_wrong_batch_panics() {
    let lstm = Lstm::new(3, 4, LstmConfig::default(), &mut StdRng::seed_from_u64(3));
    let wrong = Var::constant(Tensor::zeros(&[1, 3, 4]));
    lstm.forward(
        &Var::constant(Tensor::zeros(&[2, 2, 3])),
        Some((&wrong, &wrong)),
    );
}
