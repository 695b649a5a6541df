//! Parameters: named, trainable tensors with a stable identity.
//!
//! A [`Param`] is a cheap handle (an `Arc`) to a tensor that a module owns and an
//! optimizer updates in place. Its [`ParamId`] never changes, so gradients come back
//! keyed by it ([`crate::Gradients::get`]) and optimizer state can follow it.
//! PyTorch equivalent: `torch.nn.Parameter`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use agdlab_tensor::Tensor;

use crate::var::Var;

/// A process-unique parameter identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(u64);

impl ParamId {
    fn fresh() -> ParamId {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        ParamId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A trainable tensor shared between a module (which reads it in `forward`) and an
/// optimizer (which writes it in `step`). Cloning shares the same parameter.
#[derive(Clone)]
pub struct Param {
    id: ParamId,
    value: Arc<RwLock<Tensor>>,
}

impl Param {
    /// A new parameter holding (a contiguous copy of) `value`.
    pub fn new(value: Tensor) -> Param {
        Param {
            id: ParamId::fresh(),
            value: Arc::new(RwLock::new(value.contiguous())),
        }
    }

    pub fn id(&self) -> ParamId {
        self.id
    }

    /// The current value (an `Arc` clone: no data is copied).
    pub fn value(&self) -> Tensor {
        self.value.read().expect("parameter lock poisoned").clone()
    }

    pub fn shape(&self) -> Vec<usize> {
        self.value
            .read()
            .expect("parameter lock poisoned")
            .shape()
            .to_vec()
    }

    pub fn numel(&self) -> usize {
        self.value.read().expect("parameter lock poisoned").numel()
    }

    /// This parameter as a value on the tape of `input` (the value it is about to meet),
    /// or a constant when `input` is not recorded (evaluation). Layers call this in
    /// `forward`: `self.weight.on(x)`. The same parameter is one node per tape however
    /// often it is put there, so every use adds into one gradient.
    ///
    /// For a use that has no input at hand (a penalty on the weights alone), put the
    /// parameter on the step's tape directly with [`Tape::param`](crate::Tape::param).
    pub fn on(&self, input: &Var) -> Var {
        match input.tape() {
            Some(tape) => tape.param(self),
            None => Var::constant(self.value()),
        }
    }

    /// Replace the value (for loading checkpoints and weights).
    ///
    /// # Errors
    /// When the new shape differs from the parameter's; the parameter is then unchanged.
    pub fn set(&self, value: Tensor) -> Result<(), ShapeMismatch> {
        let mut slot = self.value.write().expect("parameter lock poisoned");
        if slot.shape() != value.shape() {
            return Err(ShapeMismatch {
                expected: slot.shape().to_vec(),
                found: value.shape().to_vec(),
            });
        }
        *slot = value.contiguous();
        Ok(())
    }

    /// Run `f` on the elements in place (row-major). Copies only if a tensor taken
    /// from [`Param::value`] is still alive and sharing the buffer.
    pub fn update<R>(&self, f: impl FnOnce(&mut [f32]) -> R) -> R {
        let mut slot = self.value.write().expect("parameter lock poisoned");
        f(slot.data_mut())
    }
}

/// [`Param::set`] was given a tensor of another shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// The parameter's shape.
    pub expected: Vec<usize>,
    /// The shape offered.
    pub found: Vec<usize>,
}

impl std::fmt::Display for ShapeMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "shape {:?} does not match the parameter's shape {:?}",
            self.found, self.expected
        )
    }
}

impl std::error::Error for ShapeMismatch {}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param({:?}, shape={:?})", self.id, self.shape())
    }
}
