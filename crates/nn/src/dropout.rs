//! Dropout. PyTorch equivalent: `torch.nn.Dropout(p)`.

use std::sync::Mutex;

use agdlab_autograd::Var;
use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::module::{Forward, Mode, Module, Walk};

/// In training mode, zero each element with probability `p` and scale the survivors by
/// `1/(1-p)` (inverted dropout, so evaluation mode is the identity).
///
/// The mask comes from the layer's own RNG, seeded at construction, so a run is
/// reproducible; its position is not saved in checkpoints, so a resumed run draws
/// different masks than an uninterrupted one would.
pub struct Dropout {
    p: f32,
    mode: Mode,
    rng: Mutex<StdRng>,
}

impl Dropout {
    /// # Panics
    /// When `p` is outside `[0, 1)`.
    pub fn new(p: f32, seed: u64) -> Dropout {
        assert!(
            (0.0..1.0).contains(&p),
            "Dropout: p must be in [0, 1), got {p}"
        );
        Dropout {
            p,
            mode: Mode::default(),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// The drop probability.
    pub fn p(&self) -> f32 {
        self.p
    }
}

impl Module for Dropout {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.mode(&self.mode);
    }
}

impl Forward for Dropout {
    fn forward(&self, input: &Var) -> Var {
        if !self.mode.is_training() || self.p == 0.0 {
            return input.clone();
        }
        let scale = 1.0 / (1.0 - self.p);
        // An element is dropped when the next uniform draw `u = rng.random::<f32>()` is
        // below p. That draw is `(w >> 8)·2⁻²⁴` for the next `u32` word `w` of the
        // stream (rand's `StandardUniform`), so `u < p` exactly when `w >> 8` is below
        // `⌈p·2²⁴⌉`: the words are drawn in one `fill` (the RNG's block copy, not a call
        // per element) and compared as integers, giving the same mask (tested).
        let threshold = (self.p * (1u32 << 24) as f32).ceil() as u32;
        let mut words = vec![0u32; input.value().numel()];
        self.rng
            .lock()
            .expect("dropout RNG lock poisoned")
            .fill(&mut words[..]);
        let mask: Vec<f32> = words
            .into_iter()
            .map(|w| if w >> 8 < threshold { 0.0 } else { scale })
            .collect();
        let mask = Tensor::from_vec(mask, input.shape()).expect("mask has the input's size");
        input.mul(&Var::constant(mask))
    }
}
