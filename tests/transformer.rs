//! Transformer layers against PyTorch, and the causal mask really hiding the future.
//!
//! `tests/data/torch_transformer.safetensors` holds the state dicts of a
//! `TransformerEncoderLayer(8, 2, dim_feedforward=16, activation="gelu", batch_first=True,
//! norm_first=True)` (as `enc.*`) and a `TransformerDecoderLayer(8, 2, 16,
//! activation="relu", batch_first=True, norm_first=False)` (as `dec.*`), with layer norms
//! and attention biases moved off their initial values; `torch_transformer_io.safetensors`
//! holds their inputs and eval-mode outputs, the encoder's with a key-padding mask, the
//! decoder's with a causal mask and a memory key-padding mask. Both were written by
//! `tests/data/make_transformer.py` (torch 2.15, with `torch.backends.mha` fast paths off):
//!
//! ```text
//! x = torch.randn(2, 5, 8); memory = torch.randn(2, 4, 8)
//! x_padding = [[F, F, F, F, T], [F] * 5]; memory_padding = [[F] * 4, [F, F, F, T]]
//! enc_out = enc(x, src_key_padding_mask=x_padding)
//! dec_out = dec(x, memory, tgt_mask=generate_square_subsequent_mask(5),
//!               memory_key_padding_mask=memory_padding)
//! ```

use std::path::Path;

use agdlab::autograd::{check_gradients, GradCheck, Tape, Var};
use agdlab::checkpoint::Checkpoint;
use agdlab::nn::{
    causal_mask, key_padding_mask, Activation, LayerConfig, Module, MultiheadAttention,
    TransformerDecoderLayer, TransformerEncoderLayer, Walk,
};
use agdlab::state_dict::load_state_dict;
use agdlab::tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

struct Layers {
    enc: TransformerEncoderLayer,
    dec: TransformerDecoderLayer,
}

impl Module for Layers {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("enc", &self.enc);
        walk.child("dec", &self.dec);
    }
}

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn assert_close(got: &Tensor, want: &Tensor, tol: f32, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    let worst = got
        .to_vec()
        .iter()
        .zip(want.to_vec())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= tol,
        "{what}: largest difference {worst} (tolerance {tol})"
    );
}

#[test]
fn pytorch_encoder_and_decoder_layers_load_by_name_and_match_in_eval() {
    let mut rng = StdRng::seed_from_u64(1);
    let enc_config = LayerConfig {
        dim_feedforward: 16,
        activation: Activation::Gelu,
        norm_first: true,
        ..LayerConfig::new(8, 2)
    };
    let dec_config = LayerConfig {
        dim_feedforward: 16,
        ..LayerConfig::new(8, 2)
    };
    let layers = Layers {
        enc: TransformerEncoderLayer::new(enc_config, &mut rng),
        dec: TransformerDecoderLayer::new(dec_config, &mut rng),
    };
    let report = load_state_dict(&layers, data("torch_transformer.safetensors"), true).unwrap();
    assert!(report.is_exact(), "{report:?}");
    layers.eval();

    let io = Checkpoint::load(data("torch_transformer_io.safetensors")).unwrap();
    let tape = Tape::no_grad();
    let x = tape.input(io.get("x").unwrap().clone());
    let memory = tape.input(io.get("memory").unwrap().clone());
    let x_padding = key_padding_mask(&[vec![false, false, false, false, true], vec![false; 5]]);
    let memory_padding = key_padding_mask(&[vec![false; 4], vec![false, false, false, true]]);

    let enc_out = layers.enc.forward(&x, Some(&x_padding));
    assert_close(
        enc_out.value(),
        io.get("enc_out").unwrap(),
        1e-4,
        "encoder layer (pre-LN, GELU)",
    );
    let dec_out = layers
        .dec
        .forward(&x, &memory, Some(&causal_mask(5)), Some(&memory_padding));
    assert_close(
        dec_out.value(),
        io.get("dec_out").unwrap(),
        1e-4,
        "decoder layer (post-LN, ReLU)",
    );
}

#[test]
fn the_causal_mask_hides_the_future() {
    let mut rng = StdRng::seed_from_u64(2);
    let layer = TransformerEncoderLayer::new(
        LayerConfig {
            dim_feedforward: 32,
            norm_first: true,
            ..LayerConfig::new(16, 4)
        },
        &mut rng,
    );
    layer.eval();
    let x = Tensor::normal(&[2, 9, 16], 0.0, 1.0, &mut rng);
    let out = |x: &Tensor| {
        layer
            .forward(&Var::constant(x.clone()), Some(&causal_mask(9)))
            .value()
            .clone()
    };
    let before = out(&x);
    // Change every token after position t = 4; positions 0..=4 must not move.
    let mut changed = x.to_vec();
    for b in 0..2 {
        for t in 5..9 {
            for d in 0..16 {
                changed[(b * 9 + t) * 16 + d] += 3.0;
            }
        }
    }
    let after = out(&Tensor::from_vec(changed, &[2, 9, 16]).unwrap());
    for b in 0..2 {
        for t in 0..9 {
            let row = |o: &Tensor| o.narrow(0, b, 1).narrow(1, t, 1).to_vec();
            if t <= 4 {
                assert_eq!(row(&before), row(&after), "position {t} saw the future");
            } else {
                assert_ne!(
                    row(&before),
                    row(&after),
                    "position {t} must see its own change"
                );
            }
        }
    }
}

#[test]
fn attention_gradients_match_finite_differences_with_masks_on_strided_inputs() {
    let mut rng = StdRng::seed_from_u64(3);
    let attention = MultiheadAttention::new(4, 2, 0.0, &mut rng);
    let padding = key_padding_mask(&[vec![false, false, true], vec![false; 3]]);
    let mask = causal_mask(3).add(&padding); // [2, 1, 3, 3]
                                             // The query as a transposed view, the memory as a narrowed one.
    let query = Tensor::normal(&[2, 4, 3], 0.0, 1.0, &mut rng).transpose(1, 2);
    let memory = Tensor::normal(&[2, 5, 4], 0.0, 1.0, &mut rng).narrow(1, 1, 3);
    // Self-attention with both masks, then cross-attention to the memory.
    let run = |q: &Var, m: &Var| {
        let own = attention.self_attention(q, Some(&mask));
        attention.forward(&own, m, m, Some(&padding))
    };
    check_gradients(
        |v| run(&v[0], &v[1]),
        &[query.clone(), memory.clone()],
        &GradCheck::default(),
    )
    .unwrap();

    // The parameters' gradients (the query, key and value projections are slices of one
    // in_proj_weight): central differences on a sample of elements.
    let cotangent = Tensor::normal(&[2, 3, 4], 0.0, 1.0, &mut rng);
    let loss = |q: &Tensor, m: &Tensor| -> f64 {
        let out = run(&Var::constant(q.clone()), &Var::constant(m.clone()))
            .value()
            .to_vec();
        out.iter()
            .zip(cotangent.to_vec())
            .map(|(&a, b)| a as f64 * b as f64)
            .sum()
    };
    let tape = Tape::new();
    let grads = run(&tape.input(query.clone()), &tape.input(memory.clone()))
        .backward_with(cotangent.clone());
    for (name, param) in attention.named_parameters() {
        let analytic = grads
            .dense(&param)
            .unwrap_or_else(|| panic!("{name} got no gradient"))
            .to_vec();
        let base = param.value();
        for i in (0..base.numel()).step_by(3) {
            let shifted = |h: f32| {
                let mut v = base.to_vec();
                v[i] += h;
                param
                    .set(Tensor::from_vec(v, base.shape()).unwrap())
                    .unwrap();
                loss(&query, &memory)
            };
            let numeric = (shifted(1e-2) - shifted(-1e-2)) / 2e-2;
            param.set(base.clone()).unwrap();
            assert!(
                (numeric - analytic[i] as f64).abs() <= 2e-3 + 2e-3 * numeric.abs(),
                "{name}[{i}]: backward {} vs finite differences {numeric}",
                analytic[i]
            );
        }
    }
}
