//! Smoke tests of the vision examples: `mnist_agd --model cnn` and `fashion_resnet` run
//! through the shared training loop on a tiny subset, and the training loss falls.
//!
//! They run the example binaries that `cargo test` builds next to the test binaries
//! (`target/<profile>/examples/`). Fashion-MNIST is not committed; when it is absent
//! the ResNet smoke test trains on MNIST instead (the same file format), so it always
//! runs.

mod common;
use common::temp_dir;

use std::path::{Path, PathBuf};
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo test` (which builds the examples)",
        path.display()
    );
    path
}

/// Run `name` with `args` plus `--metrics`, and return the train_loss column.
fn train_losses(name: &str, args: &[&str], tag: &str) -> Vec<f64> {
    let dir = temp_dir(tag);
    let metrics = dir.join("metrics.csv");
    let out = Command::new(example(name))
        .args(args)
        .arg("--metrics")
        .arg(&metrics)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&metrics).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "train_loss")
        .expect("a train_loss column");
    lines
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn lenet_example_learns_on_a_tiny_subset() {
    let losses = train_losses(
        "mnist_agd",
        &[
            "--model",
            "cnn",
            "--train-subset",
            "512",
            "--epochs",
            "3",
            "--batch-size",
            "32",
            "--threads",
            "2",
        ],
        "cv_lenet_smoke",
    );
    assert_eq!(losses.len(), 3);
    assert!(
        losses[2] < 0.7 * losses[0],
        "LeNet training loss did not fall: {losses:?}"
    );
}

#[test]
fn resnet_example_learns_on_a_tiny_subset() {
    let mut args = vec![
        "--blocks",
        "1",
        "--train-subset",
        "256",
        "--test-subset",
        "64",
        "--epochs",
        "3",
        "--batch-size",
        "32",
        "--threads",
        "2",
    ];
    let fashion = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/fashion-mnist");
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let mnist = mnist.to_str().unwrap();
    if !fashion.exists() && !local.exists() && std::env::var_os("AGDLAB_FASHION_MNIST").is_none() {
        eprintln!("Fashion-MNIST not found: smoke-testing fashion_resnet on MNIST (same format)");
        args.extend(["--data-dir", mnist]);
    }
    let losses = train_losses("fashion_resnet", &args, "cv_resnet_smoke");
    assert_eq!(losses.len(), 3);
    assert!(
        losses[2] < 0.8 * losses[0],
        "ResNet training loss did not fall: {losses:?}"
    );
}
