//! PyTorch weights in and out: a `state_dict` saved by PyTorch as safetensors loads by
//! name and gives PyTorch's outputs; ours loads back bit for bit, and in PyTorch.
//!
//! `tests/data/torch_state_dict.safetensors` was written by `tests/data/make_state_dict.py`
//! (torch 2.15, safetensors 0.8), quoted here in short:
//!
//! ```text
//! class Net(torch.nn.Module):          # fc1 = Linear(4, 3), bn = BatchNorm1d(3), fc2 = Linear(3, 2)
//!     def forward(self, x): return self.fc2(torch.relu(self.bn(self.fc1(x))))
//! torch.manual_seed(0); net = Net()
//! net.bn.weight.uniform_(0.5, 1.5); net.bn.bias.uniform_(-0.5, 0.5)   # under no_grad
//! net.train(); [net(torch.randn(8, 4) * 2 + 1) for _ in range(3)]     # running statistics move
//! net.eval(); x = torch.arange(12.).reshape(3, 4) / 2 - 3; y = net(x)
//! save_file(net.state_dict(), "torch_state_dict.safetensors")
//! ```
//!
//! It printed `y = [0.5030251145362854, -0.550734281539917, 0.47942468523979187,
//! -0.11881878226995468, 0.5323275923728943, -0.17709144949913025]`.

mod common;
use common::temp_dir;

use std::path::{Path, PathBuf};

use agdlab::autograd::{Param, Var};
use agdlab::checkpoint::CheckpointErrorKind;
use agdlab::nn::{Buffer, Forward, Linear, Module, Walk};
use agdlab::state_dict::{load_state_dict, save_state_dict, LoadReport};
use agdlab::tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn torch_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/torch_state_dict.safetensors")
}

/// BatchNorm1d's state, with its eval-mode forward written out (the layer itself comes
/// with the vision issue).
struct BatchNormState {
    weight: Param,
    bias: Param,
    running_mean: Buffer,
    running_var: Buffer,
    num_batches_tracked: Buffer,
}

impl Module for BatchNormState {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.param("weight", &self.weight);
        walk.param("bias", &self.bias);
        walk.buffer("running_mean", &self.running_mean);
        walk.buffer("running_var", &self.running_var);
        walk.buffer("num_batches_tracked", &self.num_batches_tracked);
    }
}

struct Net {
    fc1: Linear,
    bn: BatchNormState,
    fc2: Linear,
}

impl Module for Net {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("fc1", &self.fc1);
        walk.child("bn", &self.bn);
        walk.child("fc2", &self.fc2);
    }
}

impl Net {
    fn new(seed: u64) -> Net {
        let mut rng = StdRng::seed_from_u64(seed);
        Net {
            fc1: Linear::new(4, 3, true, &mut rng),
            bn: BatchNormState {
                weight: Param::new(Tensor::ones(&[3])),
                bias: Param::new(Tensor::zeros(&[3])),
                running_mean: Buffer::new(Tensor::zeros(&[3])),
                running_var: Buffer::new(Tensor::ones(&[3])),
                num_batches_tracked: Buffer::integer(Tensor::zeros(&[])),
            },
            fc2: Linear::new(3, 2, true, &mut rng),
        }
    }

    /// `fc2(relu(bn_eval(fc1(x))))`, BatchNorm in eval mode with eps 1e-5.
    fn forward_eval(&self, x: &Tensor) -> Tensor {
        let h = self.fc1.forward(&Var::constant(x.clone())).value().clone();
        let bn = &self.bn;
        let normalized = h
            .sub(&bn.running_mean.value())
            .div(&bn.running_var.value().add_scalar(1e-5).sqrt());
        let h = normalized
            .mul(&bn.weight.value())
            .add(&bn.bias.value())
            .relu();
        self.fc2.forward(&Var::constant(h)).value().clone()
    }
}

const TORCH_Y: [f32; 6] = [
    0.503_025_1,
    -0.550_734_3,
    0.479_424_7,
    -0.118_818_78,
    0.532_327_6,
    -0.177_091_45,
];

#[test]
fn a_pytorch_state_dict_loads_by_name_and_gives_pytorchs_outputs() {
    let net = Net::new(1);
    let report = load_state_dict(&net, torch_file(), true).unwrap();
    // num_batches_tracked is int64 in PyTorch: converted and reported, not refused.
    assert_eq!(
        report,
        LoadReport {
            missing: vec![],
            unexpected: vec![],
            converted: vec![("bn.num_batches_tracked".into(), "I64".into())]
        }
    );
    assert_eq!(net.bn.num_batches_tracked.value().to_vec(), vec![3.0]);
    let x = Tensor::from_vec((0..12).map(|i| i as f32 / 2.0 - 3.0).collect(), &[3, 4]).unwrap();
    let y = net.forward_eval(&x).to_vec();
    for (got, want) in y.iter().zip(TORCH_Y) {
        assert!((got - want).abs() < 1e-5, "{y:?} vs PyTorch {TORCH_Y:?}");
    }
}

/// A model with `fc1` and `extra`, but no `bn` and no `fc2`.
struct Partial {
    fc1: Linear,
    extra: Param,
}

impl Module for Partial {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("fc1", &self.fc1);
        walk.param("extra", &self.extra);
    }
}

#[test]
fn strict_and_non_strict_loads_report_missing_and_unexpected_keys() {
    let partial = Partial {
        fc1: Linear::new(4, 3, true, &mut StdRng::seed_from_u64(3)),
        extra: Param::new(Tensor::ones(&[2])),
    };
    let before = partial.fc1.weight.value().to_vec();
    let err = load_state_dict(&partial, torch_file(), true).unwrap_err();
    match err.kind() {
        CheckpointErrorKind::KeyMismatch {
            missing,
            unexpected,
        } => {
            assert_eq!(missing, &["extra"]);
            assert_eq!(unexpected.len(), 7, "{unexpected:?}");
            assert!(unexpected.contains(&"bn.running_var".to_string()));
        }
        other => panic!("expected a key mismatch, got {other:?}"),
    }
    assert!(
        err.to_string().contains("torch_state_dict.safetensors")
            && err.to_string().contains("extra")
    );
    assert_eq!(
        partial.fc1.weight.value().to_vec(),
        before,
        "a refused load changes nothing"
    );

    let report = load_state_dict(&partial, torch_file(), false).unwrap();
    assert_eq!(report.missing, ["extra"]);
    assert_eq!(report.unexpected.len(), 7);
    assert!(
        report.converted.is_empty(),
        "the converted entry was not loaded"
    );
    assert_ne!(
        partial.fc1.weight.value().to_vec(),
        before,
        "fc1 was loaded"
    );
    assert_eq!(partial.extra.value().to_vec(), vec![1.0, 1.0]);
}

#[test]
fn a_shape_mismatch_names_the_entry_and_both_shapes_and_changes_nothing() {
    let wrong = Partial {
        fc1: Linear::new(5, 3, true, &mut StdRng::seed_from_u64(4)),
        extra: Param::new(Tensor::ones(&[1])),
    };
    let before = wrong.fc1.bias.as_ref().unwrap().value().to_vec();
    let err = load_state_dict(&wrong, torch_file(), false).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("fc1.weight") && message.contains("[3, 5]") && message.contains("[3, 4]"),
        "{message}"
    );
    assert_eq!(wrong.fc1.bias.as_ref().unwrap().value().to_vec(), before);
}

#[test]
fn a_saved_state_dict_loads_back_exactly_with_int64_counts() {
    let dir = temp_dir("state-dict");
    let source = Net::new(5);
    source
        .bn
        .num_batches_tracked
        .set(Tensor::scalar(12.0))
        .unwrap();
    source
        .bn
        .running_var
        .set(Tensor::from_vec(vec![0.5, 2.0, 3.0], &[3]).unwrap())
        .unwrap();
    let path = dir.join("net.safetensors");
    save_state_dict(&source, &path).unwrap();

    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        file.tensor("bn.num_batches_tracked").unwrap().dtype(),
        safetensors::Dtype::I64
    );
    assert_eq!(
        file.tensor("fc1.weight").unwrap().dtype(),
        safetensors::Dtype::F32
    );
    assert_eq!(
        file.names().len(),
        9,
        "plain names, no prefixes: {:?}",
        file.names()
    );

    let copy = Net::new(6);
    load_state_dict(&copy, &path, true).unwrap();
    let values = |net: &Net| -> Vec<Vec<u32>> {
        agdlab::state_dict::state_entries(net)
            .into_iter()
            .map(|(_, e)| e.value().to_vec().iter().map(|v| v.to_bits()).collect())
            .collect()
    };
    assert_eq!(values(&copy), values(&source));
}

/// The file we write loads in PyTorch with `model.load_state_dict(load_file(...))` and
/// gives the same outputs. Needs `python3` with torch and safetensors; skips otherwise.
#[test]
fn a_saved_state_dict_loads_in_pytorch() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import torch, safetensors"])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        eprintln!(
            "SKIPPED a_saved_state_dict_loads_in_pytorch: python3 with torch and safetensors not found"
        );
        return;
    }
    let dir = temp_dir("state-dict-torch");
    let net = Net::new(7);
    load_state_dict(&net, torch_file(), true).unwrap();
    net.fc2
        .weight
        .set(Tensor::from_vec(vec![0.1, -0.2, 0.3, 0.4, 0.5, -0.6], &[2, 3]).unwrap())
        .unwrap();
    let path = dir.join("ours.safetensors");
    save_state_dict(&net, &path).unwrap();
    let x = Tensor::from_vec((0..12).map(|i| i as f32 / 2.0 - 3.0).collect(), &[3, 4]).unwrap();
    let ours = net.forward_eval(&x).to_vec();
    let script = r#"
import sys, torch
from safetensors.torch import load_file
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 3); self.bn = torch.nn.BatchNorm1d(3); self.fc2 = torch.nn.Linear(3, 2)
    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))
net = Net()
net.load_state_dict(load_file(sys.argv[1]))
assert net.bn.num_batches_tracked.dtype == torch.int64
net.eval()
with torch.no_grad():
    y = net(torch.arange(12.).reshape(3, 4) / 2 - 3)
print(" ".join(repr(v) for v in y.flatten().tolist()))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "PyTorch refused the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<f32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(theirs.len(), ours.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert!((a - b).abs() < 1e-5, "ours {ours:?} vs PyTorch {theirs:?}");
    }
}
