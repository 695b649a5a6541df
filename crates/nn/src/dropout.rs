//! Dropout. PyTorch equivalent: `torch.nn.Dropout(p)`.

use std::cell::RefCell;

use agdlab_autograd::{Param, Var};
use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::module::Module;

/// In training, zero each element with probability `p` and scale the survivors by
/// `1/(1-p)` (inverted dropout, so evaluation is the identity).
///
/// The mask comes from the layer's own RNG, seeded at construction, so a run is
/// reproducible; its position is not saved in checkpoints, so a resumed run draws
/// different masks than an uninterrupted one would.
pub struct Dropout {
    p: f32,
    training: bool,
    rng: RefCell<StdRng>,
}

impl Dropout {
    /// # Panics
    /// When `p` is outside `[0, 1)`.
    pub fn new(p: f32, seed: u64) -> Dropout {
        assert!((0.0..1.0).contains(&p), "Dropout: p must be in [0, 1), got {p}");
        Dropout { p, training: true, rng: RefCell::new(StdRng::seed_from_u64(seed)) }
    }
}

impl Module for Dropout {
    fn forward(&self, input: &Var) -> Var {
        if !self.training || self.p == 0.0 {
            return input.clone();
        }
        let scale = 1.0 / (1.0 - self.p);
        let mut rng = self.rng.borrow_mut();
        let mask: Vec<f32> = (0..input.value().numel())
            .map(|_| if rng.random::<f32>() < self.p { 0.0 } else { scale })
            .collect();
        let mask = Tensor::from_vec(mask, input.shape()).expect("mask has the input's size");
        input.mul(&Var::constant(mask))
    }

    fn visit_params(&self, _prefix: &str, _visit: &mut dyn FnMut(String, &Param)) {}

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}
