//! A PyTorch `nn.LSTM` state dict loads into `agdlab::nn::Lstm` by name and reproduces
//! PyTorch's outputs, final state and gradients.
//!
//! `tests/data/torch_lstm.safetensors` (the state dict) and
//! `tests/data/torch_lstm_io.safetensors` (inputs, PyTorch's results) were written by
//! `tests/data/make_lstm_state_dict.py` (torch 2.15, safetensors 0.8), in short:
//!
//! ```text
//! torch.manual_seed(0)
//! lstm = torch.nn.LSTM(input_size=3, hidden_size=4, num_layers=2)
//! x = torch.randn(5, 2, 3); h0 = torch.randn(2, 2, 4); c0 = torch.randn(2, 2, 4)   # requires_grad
//! out, (hn, cn) = lstm(x, (h0, c0))
//! w_out, w_h, w_c = torch.randn(5, 2, 4), torch.randn(2, 2, 4), torch.randn(2, 2, 4)
//! ((out * w_out).sum() + (hn * w_h).sum() + (cn * w_c).sum()).backward()
//! save_file(lstm.state_dict(), "torch_lstm.safetensors")
//! save_file({x, h0, c0, output, h_n, c_n, w_out, w_h, w_c, grad_x, grad_h0, grad_c0,
//!            grad_<param> for every parameter}, "torch_lstm_io.safetensors")
//! ```
//!
//! It printed `output[0] = [0.0039956471882760525, 0.18718285858631134,
//! -0.10077526420354843, -0.09435594826936722, -0.07132455706596375,
//! -0.2170068323612213, -0.011929145082831383, 0.3548780679702759]`.

use std::path::{Path, PathBuf};

use agdlab::autograd::Tape;
use agdlab::checkpoint::Checkpoint;
use agdlab::nn::{Lstm, LstmConfig, Module};
use agdlab::state_dict::{load_state_dict, LoadReport};
use agdlab::tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn close(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (k, (g, w)) in got.to_vec().iter().zip(want.to_vec()).enumerate() {
        assert!((g - w).abs() <= tol, "{what}[{k}]: agdlab {g}, PyTorch {w}");
    }
}

fn two_layer_lstm(batch_first: bool) -> Lstm {
    let config = LstmConfig {
        num_layers: 2,
        dropout: 0.0,
        batch_first,
    };
    Lstm::new(3, 4, config, &mut StdRng::seed_from_u64(7))
}

#[test]
fn the_names_are_pytorchs() {
    let names: Vec<String> = two_layer_lstm(false)
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let expected = [
        "weight_ih_l0",
        "weight_hh_l0",
        "bias_ih_l0",
        "bias_hh_l0",
        "weight_ih_l1",
        "weight_hh_l1",
        "bias_ih_l1",
        "bias_hh_l1",
    ];
    assert_eq!(names, expected);
}

#[test]
fn a_pytorch_lstm_state_dict_reproduces_pytorchs_outputs_state_and_gradients() {
    let lstm = two_layer_lstm(false);
    let report = load_state_dict(&lstm, data("torch_lstm.safetensors"), true).unwrap();
    assert_eq!(report, LoadReport::default());
    let io = Checkpoint::load(data("torch_lstm_io.safetensors")).unwrap();
    let get = |name: &str| {
        io.get(name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };

    let tape = Tape::new();
    let (x, h0, c0) = (
        tape.leaf(get("x")),
        tape.leaf(get("h0")),
        tape.leaf(get("c0")),
    );
    let (out, (h, c)) = lstm.forward(&x, Some((&h0, &c0)));
    close("output", out.value(), &get("output"), 1e-4);
    close("h_n", h.value(), &get("h_n"), 1e-4);
    close("c_n", c.value(), &get("c_n"), 1e-4);

    let weighted = |v: &agdlab::autograd::Var, w: &str| {
        v.mul(&agdlab::autograd::Var::constant(get(w))).sum_all()
    };
    let loss = weighted(&out, "w_out")
        .add(&weighted(&h, "w_h"))
        .add(&weighted(&c, "w_c"));
    let grads = loss.backward();
    close("grad x", grads.wrt(&x).unwrap(), &get("grad_x"), 1e-4);
    close("grad h0", grads.wrt(&h0).unwrap(), &get("grad_h0"), 1e-4);
    close("grad c0", grads.wrt(&c0).unwrap(), &get("grad_c0"), 1e-4);
    for (name, param) in lstm.named_parameters() {
        let grad = grads
            .dense(&param)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        close(
            &format!("grad {name}"),
            &grad,
            &get(&format!("grad_{name}")),
            1e-4,
        );
    }
}

#[test]
fn batch_first_gives_the_same_numbers_transposed() {
    let lstm = two_layer_lstm(true);
    load_state_dict(&lstm, data("torch_lstm.safetensors"), true).unwrap();
    let io = Checkpoint::load(data("torch_lstm_io.safetensors")).unwrap();
    let get = |name: &str| io.get(name).unwrap().clone();
    let tape = Tape::no_grad();
    let x = tape.input(get("x").transpose(0, 1).contiguous()); // [batch, seq, in]
    let (h0, c0) = (tape.input(get("h0")), tape.input(get("c0")));
    let (out, (h, c)) = lstm.forward(&x, Some((&h0, &c0)));
    assert_eq!(out.shape(), &[2, 5, 4]);
    close("output", &out.value().transpose(0, 1), &get("output"), 1e-4);
    close("h_n", h.value(), &get("h_n"), 1e-4);
    close("c_n", c.value(), &get("c_n"), 1e-4);
}
