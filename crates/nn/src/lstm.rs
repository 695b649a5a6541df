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
//!   (`linear` on the `[seq·batch, in]` view); each step reads its rows as a view, and
//!   in backward each step adds its gate gradient into its rows of that projection's one
//!   gradient buffer;
//! - `W_hh` and `b_hh` are put on the tape once per forward and the same values are used
//!   at every step, so `linear`'s backward accumulates `dW_hh` over the steps into one
//!   buffer (`sgemm` with beta = 1): no per-step weight-sized gradient;
//! - the cell's element-wise math is one fused op ([`lstm_cell`]): one pass forward,
//!   one pass backward, writing the four gate gradients into one `[batch, 4·hidden]`
//!   buffer.
//!
//! The tape runs backward as one reverse loop, so a long unroll costs no recursion.
//! For truncated back-propagation through time, [`Var::detach`] the returned state
//! before feeding it to the next window.

use agdlab_autograd::{Param, Var};
use agdlab_tensor::elementwise::{sigmoid, tanh};
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

    // The input projection of every step at once: one GEMM.
    let projected = x
        .linear(&weights.weight_ih, Some(&weights.bias_ih))
        .reshape(&[-1, 4 * hidden as isize]);
    let (mut h, mut c) = (h.clone(), c.clone());
    let mut outputs = Vec::with_capacity(seq);
    for t in 0..seq {
        let gates = projected
            .narrow(0, t * batch, batch)
            .add(&h.linear(&weights.weight_hh, Some(&weights.bias_hh)));
        (h, c) = lstm_cell(&gates, &c);
        outputs.push(h.clone());
    }
    let output = Var::stack(&outputs.iter().collect::<Vec<_>>(), 0);
    (output, h, c)
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
/// The op's value is `[h | c]` (`[batch, 2·hidden]`); `h` and `c` are its two halves
/// (views), so one backward pass sees both of their gradients. It saves the activated
/// gates and `tanh c` from the forward pass, and writes the four gate gradients into
/// one `[batch, 4·hidden]` buffer.
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
    let pre = gates.value().contiguous();
    let c_prev_value = c_prev.value().contiguous();
    let pre = pre.as_slice().expect("contiguous");
    let c_prev_slice = c_prev_value.as_slice().expect("contiguous");

    // activated: [σ(i) | σ(f) | tanh(g) | σ(o)] per row; out: [h | c]; tanh_c per row.
    let mut activated = vec![0.0f32; batch * 4 * hidden];
    let mut out = vec![0.0f32; batch * 2 * hidden];
    let mut tanh_c = vec![0.0f32; batch * hidden];
    for row in 0..batch {
        let p = &pre[row * 4 * hidden..(row + 1) * 4 * hidden];
        let a = &mut activated[row * 4 * hidden..(row + 1) * 4 * hidden];
        let (ai, rest) = a.split_at_mut(hidden);
        let (af, rest) = rest.split_at_mut(hidden);
        let (ag, ao) = rest.split_at_mut(hidden);
        let (h_out, c_out) = out[row * 2 * hidden..(row + 1) * 2 * hidden].split_at_mut(hidden);
        let cp = &c_prev_slice[row * hidden..(row + 1) * hidden];
        let tc = &mut tanh_c[row * hidden..(row + 1) * hidden];
        let (pi, rest) = p.split_at(hidden);
        let (pf, rest) = rest.split_at(hidden);
        let (pg, po) = rest.split_at(hidden);
        cell_forward([pi, pf, pg, po], cp, [ai, af, ag, ao], [h_out, c_out, tc]);
    }
    let out = Tensor::from_vec(out, &[batch, 2 * hidden]).expect("sized above");
    let activated = Tensor::from_vec(activated, &[batch, 4 * hidden]).expect("sized above");
    let tanh_c = Tensor::from_vec(tanh_c, &[batch, hidden]).expect("sized above");
    let c_prev_saved = c_prev_value.clone();

    let both = Var::record("lstm_cell", out, &[gates, c_prev], move |g, grads| {
        let g = g.contiguous();
        let g = g.as_slice().expect("contiguous");
        let a = activated.as_slice().expect("contiguous");
        let tc = tanh_c.as_slice().expect("contiguous");
        let cp = c_prev_saved.as_slice().expect("contiguous");
        // dc_total per element, needed by both inputs' gradients.
        let mut dc = vec![0.0f32; batch * hidden];
        for row in 0..batch {
            let (dh, dc_in) = g[row * 2 * hidden..(row + 1) * 2 * hidden].split_at(hidden);
            for j in 0..hidden {
                let o = a[row * 4 * hidden + 3 * hidden + j];
                let t = tc[row * hidden + j];
                dc[row * hidden + j] = dc_in[j] + dh[j] * o * (1.0 - t * t);
            }
        }
        grads.add_with(0, |buffer| {
            let d = buffer.data_mut();
            for row in 0..batch {
                let r = row * 4 * hidden;
                let dh = &g[row * 2 * hidden..row * 2 * hidden + hidden];
                for j in 0..hidden {
                    let (i, f, gg, o) = (
                        a[r + j],
                        a[r + hidden + j],
                        a[r + 2 * hidden + j],
                        a[r + 3 * hidden + j],
                    );
                    let dct = dc[row * hidden + j];
                    d[r + j] += dct * gg * i * (1.0 - i);
                    d[r + hidden + j] += dct * cp[row * hidden + j] * f * (1.0 - f);
                    d[r + 2 * hidden + j] += dct * i * (1.0 - gg * gg);
                    d[r + 3 * hidden + j] += dh[j] * tc[row * hidden + j] * o * (1.0 - o);
                }
            }
        });
        grads.add(1, || {
            let f = activated.narrow(1, hidden, hidden);
            Tensor::from_vec(dc, &[batch, hidden])
                .expect("sized above")
                .mul(&f)
        });
    });
    (both.narrow(1, 0, hidden), both.narrow(1, hidden, hidden))
}

/// One row of the cell's forward pass: from the pre-activations `[i, f, g, o]` and
/// `c_prev`, the activated gates, `h`, `c` and `tanh c`. Every slice is `hidden` long.
///
/// A function of its own so that its slices are distinct arguments, which the compiler
/// knows do not overlap: inlined into `lstm_cell`'s row loop the element loop could not
/// vectorise (a dozen slices cut from three buffers).
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
