//! Vision layers against PyTorch: BatchNorm2d's training output, running statistics and
//! evaluation output, and PyTorch state dicts of LeNet-5 and of a ResNet-8 that load by
//! name into `agdlab::models` and give PyTorch's logits.
//!
//! The files in `tests/data` were written by `tests/data/make_cv_reference.py` (torch
//! 2.15, safetensors 0.8), which imports the model definitions of
//! `benches/pytorch_resnet.py`; in short:
//!
//! ```text
//! ramp(shape, a, b) = sin(arange(numel) * a) * b, reshaped
//! bn = BatchNorm2d(3); bn.weight = [0.5, 1.5, -1.0]; bn.bias = [0.1, -0.2, 0.3]
//! x1 = ramp([4,3,5,5], 0.37, 2) + 1; x2 = ramp([4,3,5,5], 0.53, 3) - 0.5; x3 = ramp([2,3,5,5], 0.71, 1.5)
//! bn.train(); bn(x1); train_out = bn(x2); bn.eval(); eval_out = bn(x3)
//! save_file(bn.state_dict(), "torch_batchnorm.safetensors")
//! save_file({"x1": x1, ..., "eval_out": eval_out}, "torch_batchnorm_io.safetensors")
//!
//! torch.manual_seed(0) (before the batch norm)
//! lenet = LeNet5().eval(); x = ramp([2,1,28,28], 0.013, 1); logits = lenet(x)
//! save_file(lenet.state_dict(), "torch_lenet.safetensors"); save_file({x, logits}, "torch_lenet_io.safetensors")
//! resnet = ResNet(k=1); 3 SGD steps (lr 0.1) in train mode on ramp([8,1,28,28], 0.011 + 0.002 step, 1)
//!     with labels arange(8) % 10; resnet.eval(); logits = resnet(x); saved likewise
//! ```
//!
//! It printed `running_mean [0.04766920581459999, 0.034100908786058426,
//! 0.052244726568460464] running_var [1.438910961151123, 1.4432836771011353,
//! 1.4495419263839722]` and LeNet logits starting `[-0.04573770985007286,
//! -0.054745420813560486, 0.03757280856370926, ...]`.

use std::path::{Path, PathBuf};

use agdlab::autograd::{Tape, Var};
use agdlab::checkpoint::Checkpoint;
use agdlab::models::{LeNet5, ResNet};
use agdlab::nn::{BatchNorm2d, Forward, Module};
use agdlab::state_dict::load_state_dict;
use agdlab::tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn assert_close(got: &Tensor, want: &Tensor, tol: f32, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, (g, w)) in got.to_vec().iter().zip(want.to_vec()).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: agdlab {g}, PyTorch {w} (tolerance {tol})"
        );
    }
}

#[test]
fn batch_norm_matches_pytorch_in_training_and_evaluation() {
    let file = Checkpoint::load(data("torch_batchnorm_io.safetensors")).unwrap();
    let get = |name: &str| {
        file.get(name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };
    // PyTorch's state after the two batches, loaded into a second layer to compare with.
    let reference = BatchNorm2d::new(3);
    let report = load_state_dict(&reference, data("torch_batchnorm.safetensors"), false).unwrap();
    assert!(report.missing.is_empty(), "{:?}", report.missing);

    let bn = BatchNorm2d::new(3);
    bn.weight
        .as_ref()
        .unwrap()
        .set(Tensor::from_vec(vec![0.5, 1.5, -1.0], &[3]).unwrap())
        .unwrap();
    bn.bias
        .as_ref()
        .unwrap()
        .set(Tensor::from_vec(vec![0.1, -0.2, 0.3], &[3]).unwrap())
        .unwrap();
    bn.train();
    bn.forward(&Tape::new().input(get("x1")));
    let train_out = bn.forward(&Tape::new().input(get("x2")));
    assert_close(
        train_out.value(),
        &get("train_out"),
        1e-5,
        "training output (batch statistics)",
    );
    assert_close(
        &bn.running_mean.value(),
        &reference.running_mean.value(),
        1e-6,
        "running_mean",
    );
    assert_close(
        &bn.running_var.value(),
        &reference.running_var.value(),
        1e-5,
        "running_var (unbiased)",
    );
    assert_eq!(bn.num_batches_tracked.value().to_vec(), vec![2.0]);
    assert_eq!(reference.num_batches_tracked.value().to_vec(), vec![2.0]);

    bn.eval();
    let eval_out = bn.forward(&Var::constant(get("x3")));
    assert_close(
        eval_out.value(),
        &get("eval_out"),
        1e-5,
        "evaluation output (running statistics)",
    );
    // Evaluation leaves the statistics alone.
    assert_eq!(bn.num_batches_tracked.value().to_vec(), vec![2.0]);
}

/// Load `weights` into `model` strictly and compare its eval-mode logits with PyTorch's.
fn check_logits(model: &dyn Forward, weights: &str, io: &str) {
    let report = load_state_dict(model, data(weights), true).unwrap();
    assert!(
        report.missing.is_empty() && report.unexpected.is_empty(),
        "{report:?}"
    );
    model.eval();
    let io = Checkpoint::load(data(io)).unwrap();
    let x = io.get("x").unwrap().clone();
    let logits = model.forward(&Tape::no_grad().input(x.clone()));
    assert_close(logits.value(), io.get("logits").unwrap(), 1e-4, weights);
    // The same on a non-contiguous view of the same images.
    let x_t = x.transpose(2, 3).contiguous().transpose(2, 3);
    assert!(!x_t.is_contiguous());
    let logits_t = model.forward(&Tape::no_grad().input(x_t));
    assert_close(
        logits_t.value(),
        io.get("logits").unwrap(),
        1e-4,
        "non-contiguous input",
    );
}

#[test]
fn a_pytorch_lenet_state_dict_gives_pytorchs_logits() {
    let model = LeNet5::new(10, &mut StdRng::seed_from_u64(1));
    check_logits(
        &model,
        "torch_lenet.safetensors",
        "torch_lenet_io.safetensors",
    );
}

#[test]
fn a_pytorch_resnet8_state_dict_gives_pytorchs_logits() {
    let model = ResNet::new(1, 1, 10, &mut StdRng::seed_from_u64(1));
    check_logits(
        &model,
        "torch_resnet8.safetensors",
        "torch_resnet8_io.safetensors",
    );
}
