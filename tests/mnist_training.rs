//! A short AGD run on a subset of real MNIST: the loss must fall and the test accuracy
//! must be far above chance. MNIST is committed in `data/mnist`, so not finding it is a
//! failure, not a reason to skip.

use agdlab::autograd::{Tape, Var};
use agdlab::data::mnist::{Mnist, IMAGE_SIZE};
use agdlab::nn::{cross_entropy, Forward, Linear, Module, ReLU, Sequential};
use agdlab::optim::{Agd, AgdConfig, Optimizer};
use agdlab::train::count_correct;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

#[test]
fn agd_learns_mnist_on_a_small_budget() {
    // Only the 5,000 training images used below are read.
    let data = Mnist::locate_and_load_limited(None, Some(5000))
        .unwrap_or_else(|e| {
            panic!(
                "MNIST is committed in {}/data/mnist (see data/README.md) but could not be \
                 loaded; restore it with `git checkout -- data/mnist`: {e}",
                env!("CARGO_MANIFEST_DIR")
            )
        })
        .normalized();
    let mut rng = StdRng::seed_from_u64(0);
    let model = Sequential::new()
        .append(Linear::new(IMAGE_SIZE, 128, true, &mut rng))
        .append(ReLU)
        .append(Linear::new(128, 10, true, &mut rng));
    let mut opt = Agd::new(
        model.named_parameters(),
        AgdConfig {
            lr: 3e-4,
            ..Default::default()
        },
    )
    .unwrap();

    // 5,000 training images, 3 passes of batch 64.
    let mut order: Vec<usize> = (0..5000).collect();
    let mut losses = Vec::new();
    for epoch in 0..3 {
        order.shuffle(&mut StdRng::seed_from_u64(epoch));
        for idx in order.chunks(64) {
            let (x, y) = data.train.batch(idx);
            let tape = Tape::new();
            let loss = cross_entropy(&model.forward(&tape.input(x)), &y);
            losses.push(loss.item());
            opt.step(&loss.backward()).unwrap();
        }
    }
    let early: f32 = losses[..5].iter().sum::<f32>() / 5.0;
    let late: f32 = losses[losses.len() - 5..].iter().sum::<f32>() / 5.0;
    assert!(
        late < 0.3 * early,
        "loss did not fall enough: {early} -> {late}"
    );

    let test: Vec<usize> = (0..2000).collect();
    let (x, y) = data.test.batch(&test);
    let accuracy =
        count_correct(model.forward(&Var::constant(x)).value(), &y) as f32 / y.len() as f32;
    assert!(
        accuracy > 0.85,
        "test accuracy {accuracy} after a short run (chance is 0.1)"
    );
}
