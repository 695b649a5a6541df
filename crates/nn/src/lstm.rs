//! Long short-term memory: a multi-layer LSTM over whole sequences.
//! PyTorch equivalent: `torch.nn.LSTM`.
//!
//! One layer, one time step (PyTorch's equations, gate order i, f, g, o):
//!
//! ```text
//! gates = W_ih·x_t + b_ih + W_hh·h_{t-1} + b_hh          [batch, 4·hidden]
//! i, f, g, o = gates.chunk(4)                           input, forget, cell, output
//! c_t = σ(f)·c_{t-1} + σ(i)·tanh(g)
//! h_t = σ(o)·tanh(c_t)
//! ```
//!
//! Layer `k > 0` reads layer `k-1`'s outputs `h_t` (with dropout between layers in
//! training mode).
//!
//! How it runs, for speed:
//!
//! - the input projection `W_ih·x_t + b_ih` of the whole sequence is one GEMM per layer
//!   (`linear` on the `[seq·batch, in]` view), and so are its two backward products;
//! - the recurrence over the steps is one op per layer ([`lstm_recurrence`]), not a
//!   chain of per-step ops on the tape: per step it does the small product
//!   `h_{t-1}·W_hhᵀ` (batch rows: the packing-free `skinny_gemm` path of `matmul`) and
//!   the fused cell ([`lstm_cell`]'s math, one pass forward, one backward); backward
//!   runs the steps in reverse, writes every step's gate gradients into one
//!   `[seq·batch, 4·hidden]` buffer, and then computes `dW_hh` as one product over the
//!   whole window: no per-step weight-sized gradient, no per-step tape node.
//!
//! The tape runs backward as one reverse loop, so a long unroll (of [`lstm_cell`]s, say)
//! costs no recursion.
//! For truncated back-propagation through time, [`Var::detach`] the returned state
//! before feeding it to the next window.

use agdlab_autograd::{Param, Var};
use agdlab_tensor::elementwise::{sigmoid, tanh};
use agdlab_tensor::matmul::matmul_into;
use agdlab_tensor::Tensor;
use rand::Rng;

use crate::dropout::Dropout;
use crate::init;
use crate::module::{Forward, Module, Walk};

/// The options of an [`Lstm`] besides its sizes; `Default` is PyTorch's (one layer, no
/// dropout, sequence-first).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmConfig {
    /// Stacked layers (PyTorch's `num_layers`), at least 1.
    pub num_layers: usize,
    /// Dropout on the outputs of every layer but the last, in training mode
    /// (PyTorch's `dropout`), in `[0, 1)`.
    pub dropout: f32,
    /// Inputs and outputs are `[batch, seq, features]` instead of `[seq, batch,
    /// features]` (PyTorch's `batch_first`). The state is `[layers, batch, hidden]`
    /// either way.
    pub batch_first: bool,
}

impl Default for LstmConfig {
    fn default() -> LstmConfig {
        LstmConfig {
            num_layers: 1,
            dropout: 0.0,
            batch_first: false,
        }
    }
}

/// The four parameters of one layer, in PyTorch's layout (gate blocks i, f, g, o).
pub struct LstmLayer {
    /// `[4·hidden, in]` (`in` is the input size for layer 0, `hidden` above).
    pub weight_ih: Param,
    /// `[4·hidden, hidden]`.
    pub weight_hh: Param,
    /// `[4·hidden]`.
    pub bias_ih: Param,
    /// `[4·hidden]`.
    pub bias_hh: Param,
}

/// A multi-layer LSTM with PyTorch's parameter names (`weight_ih_l0`, `weight_hh_l0`,
/// `bias_ih_l0`, `bias_hh_l0`, `weight_ih_l1`, ...), layouts and initialisation, so a
/// PyTorch `nn.LSTM` state dict loads into it by name.
pub struct Lstm {
    pub layers: Vec<LstmLayer>,
    input_size: usize,
    hidden_size: usize,
    batch_first: bool,
    /// Between layers; its mode follows [`Module::train`] / [`Module::eval`].
    dropout: Dropout,
}

impl Lstm {
    /// PyTorch's initialisation: every weight and bias from U(-1/√hidden, 1/√hidden),
    /// drawn layer by layer in the order `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`.
    /// The dropout masks come from a generator seeded from `rng`.
    ///
    /// # Panics
    /// When a size or `num_layers` is 0, or the dropout is outside `[0, 1)`.
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        config: LstmConfig,
        rng: &mut impl Rng,
    ) -> Lstm {
        assert!(
            input_size > 0 && hidden_size > 0 && config.num_layers > 0,
            "Lstm: input_size {input_size}, hidden_size {hidden_size} and num_layers {} must be positive",
            config.num_layers
        );
        let bound = 1.0 / (hidden_size as f32).sqrt();
        let gates = 4 * hidden_size;
        let layers = (0..config.num_layers)
            .map(|k| {
                let layer_in = if k == 0 { input_size } else { hidden_size };
                LstmLayer {
                    weight_ih: Param::new(init::uniform(&[gates, layer_in], bound, rng)),
                    weight_hh: Param::new(init::uniform(&[gates, hidden_size], bound, rng)),
                    bias_ih: Param::new(init::uniform(&[gates], bound, rng)),
                    bias_hh: Param::new(init::uniform(&[gates], bound, rng)),
                }
            })
            .collect();
        let dropout = Dropout::new(config.dropout, rng.random());
        Lstm {
            layers,
            input_size,
            hidden_size,
            batch_first: config.batch_first,
            dropout,
        }
    }

    pub fn input_size(&self) -> usize {
        self.input_size
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Run the whole sequence through every layer.
    ///
    /// `state` is the initial `(h, c)`, zeros when `None`. Returns the last layer's
    /// output at every step and the final `(h, c)` of every layer. Ops are recorded on
    /// the tape of `input` (or of the state); on constants nothing is recorded.
    ///
    /// PyTorch equivalent: `output, (h_n, c_n) = lstm(input, (h_0, c_0))`.
    ///
    /// # Shapes
    /// - `input`: `[seq, batch, input_size]` (`[batch, seq, input_size]` when batch-first);
    /// - `state`, and the returned `(h, c)`: `[num_layers, batch, hidden_size]` each;
    /// - returned output: `[seq, batch, hidden_size]` (`[batch, seq, hidden_size]` when
    ///   batch-first).
    ///
    /// # Panics
    /// When `input` is not rank 3 with `input_size` features, the sequence is empty, or a
    /// state tensor does not have the shape above.
    pub fn forward(&self, input: &Var, state: Option<(&Var, &Var)>) -> (Var, (Var, Var)) {
        assert!(
            input.rank() == 3 && input.shape()[2] == self.input_size,
            "Lstm: input {:?} should be [{}, {}, {}]",
            input.shape(),
            if self.batch_first { "batch" } else { "seq" },
            if self.batch_first { "seq" } else { "batch" },
            self.input_size
        );
        let mut x = if self.batch_first {
            input.transpose(0, 1)
        } else {
            input.clone()
        };
        let (seq, batch) = (x.shape()[0], x.shape()[1]);
        assert!(
            seq > 0,
            "Lstm: the input sequence is empty (shape {:?})",
            input.shape()
        );
        let state_shape = [self.num_layers(), batch, self.hidden_size];
        let (h0, c0) = match state {
            Some((h, c)) => {
                for (name, v) in [("h", h), ("c", c)] {
                    assert!(
                        v.shape() == state_shape,
                        "Lstm: initial {name} {:?} should be {state_shape:?} (layers, batch, hidden)",
                        v.shape()
                    );
                }
                (h.clone(), c.clone())
            }
            None => {
                let zeros = Var::constant(Tensor::zeros(&state_shape));
                (zeros.clone(), zeros)
            }
        };

        let (mut final_h, mut final_c) = (Vec::new(), Vec::new());
        for (k, layer) in self.layers.iter().enumerate() {
            if k > 0 {
                x = self.dropout.forward(&x);
            }
            // Parameters join the tape of whatever is traced: the input or the state.
            let on = if x.tape().is_some() { &x } else { &h0 };
            let weights = LayerWeights {
                weight_ih: layer.weight_ih.on(on),
                weight_hh: layer.weight_hh.on(on),
                bias_ih: layer.bias_ih.on(on),
                bias_hh: layer.bias_hh.on(on),
            };
            let h = h0.narrow(0, k, 1).squeeze(0);
            let c = c0.narrow(0, k, 1).squeeze(0);
            let (out, h, c) = lstm_layer(&x, &weights, &h, &c);
            x = out;
            final_h.push(h);
            final_c.push(c);
        }
        let output = if self.batch_first {
            x.transpose(0, 1)
        } else {
            x
        };
        let h = Var::stack(&final_h.iter().collect::<Vec<_>>(), 0);
        let c = Var::stack(&final_c.iter().collect::<Vec<_>>(), 0);
        (output, (h, c))
    }
}

impl Module for Lstm {
    fn visit(&self, walk: &mut Walk<'_>) {
        for (k, layer) in self.layers.iter().enumerate() {
            walk.param(&format!("weight_ih_l{k}"), &layer.weight_ih);
            walk.param(&format!("weight_hh_l{k}"), &layer.weight_hh);
            walk.param(&format!("bias_ih_l{k}"), &layer.bias_ih);
            walk.param(&format!("bias_hh_l{k}"), &layer.bias_hh);
        }
        self.dropout.visit(walk);
    }
}

/// One layer's parameters as values of one forward pass.
#[derive(Clone)]
pub struct LayerWeights {
    /// `[4·hidden, in]`.
    pub weight_ih: Var,
    /// `[4·hidden, hidden]`.
    pub weight_hh: Var,
    /// `[4·hidden]`.
    pub bias_ih: Var,
    /// `[4·hidden]`.
    pub bias_hh: Var,
}

/// One LSTM layer over a whole sequence, from the initial state `(h, c)`: returns the
/// outputs `h_t` of every step and the final `(h, c)`. The building block of
/// [`Lstm::forward`], usable on its own (gradient checks treat the weights as inputs).
///
/// Two ops: the input projection of every step at once (`linear`, one GEMM), then the
/// recurrence over the steps as one op of its own ([`lstm_recurrence`]).
///
/// # Shapes
/// `x: [seq, batch, in]`, `h, c: [batch, hidden]`, weights as in [`LayerWeights`]
/// `-> ([seq, batch, hidden], [batch, hidden], [batch, hidden])`.
///
/// # Panics
/// When the shapes do not fit together.
pub fn lstm_layer(x: &Var, weights: &LayerWeights, h: &Var, c: &Var) -> (Var, Var, Var) {
    let w_hh = weights.weight_hh.shape();
    assert!(
        w_hh.len() == 2 && w_hh[0] == 4 * w_hh[1],
        "lstm_layer: weight_hh {w_hh:?} should be [4·hidden, hidden]"
    );
    let hidden = w_hh[1];
    assert!(
        x.rank() == 3,
        "lstm_layer: input {:?} should be [seq, batch, in]",
        x.shape()
    );
    let (seq, batch) = (x.shape()[0], x.shape()[1]);
    for (name, v) in [("h", h), ("c", c)] {
        assert!(
            v.shape() == [batch, hidden],
            "lstm_layer: {name} {:?} should be [batch {batch}, hidden {hidden}]",
            v.shape()
        );
    }

    // W_ih·x_t + b_ih for every step at once: one GEMM.
    let projected = x
        .linear(&weights.weight_ih, Some(&weights.bias_ih))
        .reshape(&[-1, 4 * hidden as isize]);
    let states = lstm_recurrence(&projected, &weights.weight_hh, &weights.bias_hh, h, c);
    // states: [h_0, h_1, …, h_seq, c_seq], each [batch, hidden].
    let output = states.narrow(0, 1, seq);
    let h = states.narrow(0, seq, 1).squeeze(0);
    let c = states.narrow(0, seq + 1, 1).squeeze(0);
    (output, h, c)
}

/// The recurrent part of one LSTM layer over a whole sequence, as one op: from the
/// input projections `projected` (`W_ih·x_t + b_ih` of every step, `[seq·batch,
/// 4·hidden]`), `W_hh`, `b_hh` and the initial state, every step's `h_t` and the final
/// `c`, as `[seq + 2, batch, hidden]`: `h_0, h_1, …, h_seq, c_seq` (the caller takes
/// views; `h_0` is there so that all `h_{t-1}` lie in one block for backward).
///
/// ```text
/// forward, t = 1 … seq                      backward, t = seq … 1
/// gates_t = projected_t + b_hh              dh_t = ∂L/∂h_t + dgates_{t+1}·W_hh
///           + h_{t-1}·W_hhᵀ                 dgates_t, dc_{t-1} = cell backward
/// h_t, c_t = cell(gates_t, c_{t-1})                (see lstm_cell) from dh_t, dc_t
///                                           then, once for all steps:
///                                           dprojected = dgates      [seq·batch, 4H]
///                                           db_hh = Σ_rows dgates
///                                           dW_hh = dgatesᵀ·[h_0 … h_{seq-1}]
/// ```
///
/// Per step, one small product each way (`h_{t-1}·W_hhᵀ`, `dgates_t·W_hh`) and the
/// fused cell; no step records anything on the tape, and `dW_hh` is one product over
/// the whole window (`K = seq·batch`) rather than `seq` thin ones added up. What it
/// keeps for backward: the activated gates and `tanh c_t` of every step, and `c_0 …
/// c_seq`. (PyTorch's CPU `nn.LSTM` records each step's ops instead; cuDNN's fused
/// LSTM is organised like this op.)
///
/// # Shapes
/// `projected: [seq·batch, 4·hidden]`, `weight_hh: [4·hidden, hidden]`, `bias_hh:
/// [4·hidden]`, `h0, c0: [batch, hidden]` `-> [seq + 2, batch, hidden]`.
///
/// # Panics
/// When the shapes do not fit together.
pub fn lstm_recurrence(projected: &Var, weight_hh: &Var, bias_hh: &Var, h0: &Var, c0: &Var) -> Var {
    let (batch, hidden) = (h0.shape()[0], h0.shape()[1]);
    let gates_width = 4 * hidden;
    assert!(
        projected.rank() == 2
            && projected.shape()[1] == gates_width
            && projected.shape()[0].is_multiple_of(batch)
            && weight_hh.shape() == [gates_width, hidden]
            && bias_hh.shape() == [gates_width]
            && c0.shape() == h0.shape(),
        "lstm_recurrence: projected {:?}, weight_hh {:?}, bias_hh {:?}, h0 {:?}, c0 {:?} \
         do not fit [seq·batch, 4·hidden], [4·hidden, hidden], [4·hidden], [batch, hidden] x2",
        projected.shape(),
        weight_hh.shape(),
        bias_hh.shape(),
        h0.shape(),
        c0.shape()
    );
    let seq = projected.shape()[0] / batch;
    let state = batch * hidden; // elements of one h_t or c_t
    let step_gates = batch * gates_width; // elements of one step's gates

    let projected_value = projected.value().contiguous();
    let projected_value = projected_value.as_slice().expect("contiguous");
    let bias = bias_hh.value().contiguous();
    let bias = bias.as_slice().expect("contiguous");
    let w_hh = weight_hh.value().clone();

    let mut states = vec![0.0f32; (seq + 2) * state];
    states[..state].copy_from_slice(h0.value().contiguous().as_slice().expect("contiguous"));
    // c_0 … c_seq: backward needs every c_{t-1}.
    let mut cells = vec![0.0f32; (seq + 1) * state];
    cells[..state].copy_from_slice(c0.value().contiguous().as_slice().expect("contiguous"));
    let mut activated = vec![0.0f32; seq * step_gates];
    let mut tanh_c = vec![0.0f32; seq * state];
    // Per-step operands of the product, reused: the gates and a copy of h_{t-1}.
    let mut gates = Tensor::zeros(&[batch, gates_width]);
    let mut h_prev = Tensor::zeros(&[batch, hidden]);
    // W_hhᵀ stored row-major (one copy per forward), so that the per-step product reads
    // B's rows contiguously: the packing-free path of `matmul` for few rows.
    let w_hh_t = w_hh.t().contiguous();
    for t in 0..seq {
        let step = &projected_value[t * step_gates..(t + 1) * step_gates];
        for (row, projected_row) in gates
            .data_mut()
            .chunks_exact_mut(gates_width)
            .zip(step.chunks_exact(gates_width))
        {
            for ((g, p), b) in row.iter_mut().zip(projected_row).zip(bias) {
                *g = p + b;
            }
        }
        h_prev
            .data_mut()
            .copy_from_slice(&states[t * state..(t + 1) * state]);
        matmul_into(&h_prev, &w_hh_t, &mut gates, 1.0, 1.0);
        let (c_before, c_after) = cells.split_at_mut((t + 1) * state);
        cell_forward_rows(
            hidden,
            gates.as_slice().expect("contiguous"),
            &c_before[t * state..],
            &mut activated[t * step_gates..(t + 1) * step_gates],
            CellOut {
                h: &mut states[(t + 1) * state..(t + 2) * state],
                c: &mut c_after[..state],
                tanh_c: &mut tanh_c[t * state..(t + 1) * state],
            },
        );
    }
    states[(seq + 1) * state..].copy_from_slice(&cells[seq * state..]);
    let states = Tensor::from_vec(states, &[seq + 2, batch, hidden]).expect("sized above");
    let saved_states = states.clone();

    let inputs = [projected, weight_hh, bias_hh, h0, c0];
    Var::record("lstm_recurrence", states, &inputs, move |g, grads| {
        let g = g.contiguous();
        let g = g.as_slice().expect("contiguous");
        let mut d_gates = vec![0.0f32; seq * step_gates];
        let mut d_step = Tensor::zeros(&[batch, gates_width]);
        // dh_t and dc_t flowing back into step t; dc starts as ∂L/∂c_seq.
        let mut dh = vec![0.0f32; state];
        let mut dc = g[(seq + 1) * state..].to_vec();
        let mut dc_prev = vec![0.0f32; state];
        let mut dh_recurrent = Tensor::zeros(&[batch, hidden]);
        for t in (0..seq).rev() {
            let from_later = dh_recurrent.as_slice().expect("contiguous");
            let from_output = &g[(t + 1) * state..(t + 2) * state];
            for ((d, a), b) in dh.iter_mut().zip(from_output).zip(from_later) {
                *d = a + b;
            }
            cell_backward_rows(
                hidden,
                CellGrad { dh: &dh, dc: &dc },
                &activated[t * step_gates..(t + 1) * step_gates],
                &tanh_c[t * state..(t + 1) * state],
                &cells[t * state..(t + 1) * state],
                d_step.data_mut(),
                &mut dc_prev,
            );
            std::mem::swap(&mut dc, &mut dc_prev);
            matmul_into(&d_step, &w_hh, &mut dh_recurrent, 1.0, 0.0);
            d_gates[t * step_gates..(t + 1) * step_gates]
                .copy_from_slice(d_step.as_slice().expect("contiguous"));
        }
        let d_gates = Tensor::from_vec(d_gates, &[seq * batch, gates_width]).expect("sized above");
        let h_prev = saved_states
            .narrow(0, 0, seq)
            .reshape(&[(seq * batch) as isize, hidden as isize]);
        grads.add_matmul(1, &d_gates.t(), &h_prev);
        grads.add(2, || d_gates.sum_dims(&[0], false));
        // h_0 is also slot 0 of the output (a copy), so its gradient there adds in.
        grads.add(3, || {
            for (d, from_slot) in dh_recurrent.data_mut().iter_mut().zip(&g[..state]) {
                *d += from_slot;
            }
            dh_recurrent
        });
        grads.add(4, || {
            Tensor::from_vec(dc, &[batch, hidden]).expect("sized above")
        });
        grads.add(0, || d_gates);
    })
}

/// The element-wise part of one LSTM step, fused: from the pre-activations
/// `gates = [i | f | g | o]` and the previous cell state, the new `(h, c)`:
///
/// ```text
/// forward                                  backward (given dh, dc from above)
/// c = σ(f)·c_prev + σ(i)·tanh(g)           dc_total = dc + dh·σ(o)·(1 - tanh²c)
/// h = σ(o)·tanh(c)                         do = dh·tanh(c)·σ(o)(1 - σ(o))
///                                          di = dc_total·tanh(g)·σ(i)(1 - σ(i))
///                                          df = dc_total·c_prev·σ(f)(1 - σ(f))
///                                          dg = dc_total·σ(i)·(1 - tanh²g)
///                                          dc_prev = dc_total·σ(f)
/// ```
///
/// The op's value is `[h, c]` (`[2, batch, hidden]`); `h` and `c` are its two halves
/// (views), so one backward pass sees both of their gradients. It saves the activated
/// gates and `tanh c` from the forward pass. [`lstm_recurrence`] runs the same two
/// passes (the row kernels `cell_forward` and `cell_backward`) at every step of a sequence.
///
/// PyTorch equivalent: `torch.lstm_cell` without the matrix products (the gates are
/// given), as in `LSTMCell`'s forward after `gates = ...; gates.chunk(4, 1)`.
///
/// # Shapes
/// `gates: [batch, 4·hidden]`, `c_prev: [batch, hidden] -> (h, c)`, `[batch, hidden]` each.
///
/// # Panics
/// When the shapes do not fit.
pub fn lstm_cell(gates: &Var, c_prev: &Var) -> (Var, Var) {
    assert!(
        gates.rank() == 2
            && c_prev.rank() == 2
            && gates.shape() == [c_prev.shape()[0], 4 * c_prev.shape()[1]],
        "lstm_cell: gates {:?} should be [batch, 4·hidden] for c_prev {:?} [batch, hidden]",
        gates.shape(),
        c_prev.shape()
    );
    let (batch, hidden) = (c_prev.shape()[0], c_prev.shape()[1]);
    let state = batch * hidden;
    let pre = gates.value().contiguous();
    let c_prev_value = c_prev.value().contiguous();

    let mut activated = vec![0.0f32; batch * 4 * hidden];
    let mut out = vec![0.0f32; 2 * state]; // [h, c]
    let mut tanh_c = vec![0.0f32; state];
    let (h, c) = out.split_at_mut(state);
    cell_forward_rows(
        hidden,
        pre.as_slice().expect("contiguous"),
        c_prev_value.as_slice().expect("contiguous"),
        &mut activated,
        CellOut {
            h,
            c,
            tanh_c: &mut tanh_c,
        },
    );
    let out = Tensor::from_vec(out, &[2, batch, hidden]).expect("sized above");

    let both = Var::record("lstm_cell", out, &[gates, c_prev], move |g, grads| {
        let g = g.contiguous();
        let (dh, dc) = g.as_slice().expect("contiguous").split_at(state);
        let mut d_gates = vec![0.0f32; batch * 4 * hidden];
        let mut dc_prev = vec![0.0f32; state];
        cell_backward_rows(
            hidden,
            CellGrad { dh, dc },
            &activated,
            &tanh_c,
            c_prev_value.as_slice().expect("contiguous"),
            &mut d_gates,
            &mut dc_prev,
        );
        grads.add(0, || {
            Tensor::from_vec(d_gates, &[batch, 4 * hidden]).expect("sized above")
        });
        grads.add(1, || {
            Tensor::from_vec(dc_prev, &[batch, hidden]).expect("sized above")
        });
    });
    (
        both.narrow(0, 0, 1).squeeze(0),
        both.narrow(0, 1, 1).squeeze(0),
    )
}

/// Where the cell's forward pass writes a batch of rows: `h`, `c` and `tanh c`, each
/// `[batch, hidden]` row-major.
struct CellOut<'a> {
    h: &'a mut [f32],
    c: &'a mut [f32],
    tanh_c: &'a mut [f32],
}

/// The gradients reaching the cell's outputs `h` and `c`, each `[batch, hidden]`.
struct CellGrad<'a> {
    dh: &'a [f32],
    dc: &'a [f32],
}

/// The cell's forward pass over a batch: `pre` and `activated` are `[batch, 4·hidden]`,
/// `c_prev` `[batch, hidden]` (or longer: only the first `batch·hidden` are read).
fn cell_forward_rows(
    hidden: usize,
    pre: &[f32],
    c_prev: &[f32],
    activated: &mut [f32],
    out: CellOut<'_>,
) {
    let rows = out
        .h
        .chunks_exact_mut(hidden)
        .zip(out.c.chunks_exact_mut(hidden))
        .zip(out.tanh_c.chunks_exact_mut(hidden))
        .zip(pre.chunks_exact(4 * hidden))
        .zip(activated.chunks_exact_mut(4 * hidden))
        .zip(c_prev.chunks_exact(hidden));
    for (((((h, c), tc), p), a), cp) in rows {
        cell_forward(split4(p), cp, split4_mut(a), [h, c, tc]);
    }
}

/// The cell's backward pass over a batch, shapes as [`cell_forward_rows`]: writes the
/// gate gradients into `d_gates` (`[batch, 4·hidden]`) and `dc_prev`.
fn cell_backward_rows(
    hidden: usize,
    from_above: CellGrad<'_>,
    activated: &[f32],
    tanh_c: &[f32],
    c_prev: &[f32],
    d_gates: &mut [f32],
    dc_prev: &mut [f32],
) {
    let rows = from_above
        .dh
        .chunks_exact(hidden)
        .zip(from_above.dc.chunks_exact(hidden))
        .zip(activated.chunks_exact(4 * hidden))
        .zip(tanh_c.chunks_exact(hidden))
        .zip(c_prev.chunks_exact(hidden))
        .zip(d_gates.chunks_exact_mut(4 * hidden))
        .zip(dc_prev.chunks_exact_mut(hidden));
    for ((((((dh, dc), a), tc), cp), dg), dcp) in rows {
        cell_backward([dh, dc], split4(a), tc, cp, split4_mut(dg), dcp);
    }
}

/// A row `[i | f | g | o]` cut into its four gate blocks.
fn split4(row: &[f32]) -> [&[f32]; 4] {
    let hidden = row.len() / 4;
    let (i, rest) = row.split_at(hidden);
    let (f, rest) = rest.split_at(hidden);
    let (g, o) = rest.split_at(hidden);
    [i, f, g, o]
}

/// As [`split4`], writable.
fn split4_mut(row: &mut [f32]) -> [&mut [f32]; 4] {
    let hidden = row.len() / 4;
    let (i, rest) = row.split_at_mut(hidden);
    let (f, rest) = rest.split_at_mut(hidden);
    let (g, o) = rest.split_at_mut(hidden);
    [i, f, g, o]
}

/// One row of the cell's forward pass: from the pre-activations `[i, f, g, o]` and
/// `c_prev`, the activated gates, `h`, `c` and `tanh c`. Every slice is `hidden` long.
///
/// A function of its own so that its slices are distinct arguments, which the compiler
/// knows do not overlap: inlined into a row loop the element loop could not vectorise
/// (a dozen slices cut from three buffers).
#[inline(never)]
fn cell_forward(
    pre: [&[f32]; 4],
    c_prev: &[f32],
    gates: [&mut [f32]; 4],
    [h, c, tanh_c]: [&mut [f32]; 3],
) {
    let hidden = c_prev.len();
    let [pi, pf, pg, po] = pre.map(|p| &p[..hidden]);
    let [ai, af, ag, ao] = gates.map(|a| &mut a[..hidden]);
    let (h, c, tanh_c) = (&mut h[..hidden], &mut c[..hidden], &mut tanh_c[..hidden]);
    for j in 0..hidden {
        let (i, f, g, o) = (sigmoid(pi[j]), sigmoid(pf[j]), tanh(pg[j]), sigmoid(po[j]));
        let c_new = f * c_prev[j] + i * g;
        let t = tanh(c_new);
        (ai[j], af[j], ag[j], ao[j]) = (i, f, g, o);
        (c[j], tanh_c[j], h[j]) = (c_new, t, o * t);
    }
}

/// One row of the cell's backward pass (the equations in [`lstm_cell`]): from `dh` and
/// `dc`, the activated gates, `tanh c` and `c_prev`, the four gate gradients and
/// `dc_prev`. Every slice is `hidden` long; a function of its own for the reason given
/// at [`cell_forward`].
#[inline(never)]
fn cell_backward(
    [dh, dc]: [&[f32]; 2],
    gates: [&[f32]; 4],
    tanh_c: &[f32],
    c_prev: &[f32],
    d_gates: [&mut [f32]; 4],
    dc_prev: &mut [f32],
) {
    let hidden = c_prev.len();
    let (dh, dc, tanh_c, dc_prev) = (
        &dh[..hidden],
        &dc[..hidden],
        &tanh_c[..hidden],
        &mut dc_prev[..hidden],
    );
    let [ai, af, ag, ao] = gates.map(|a| &a[..hidden]);
    let [di, df, dg, d_o] = d_gates.map(|d| &mut d[..hidden]);
    for j in 0..hidden {
        let (i, f, g, o, t) = (ai[j], af[j], ag[j], ao[j], tanh_c[j]);
        let dc_total = dc[j] + dh[j] * o * (1.0 - t * t);
        di[j] = dc_total * g * i * (1.0 - i);
        df[j] = dc_total * c_prev[j] * f * (1.0 - f);
        dg[j] = dc_total * i * (1.0 - g * g);
        d_o[j] = dh[j] * t * o * (1.0 - o);
        dc_prev[j] = dc_total * f;
    }
}
