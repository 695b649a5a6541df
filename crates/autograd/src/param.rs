//! Parameters: named, trainable tensors with a stable identity.
//!
//! A [`Param`] is a cheap handle (an `Arc`) to a tensor that a module owns and an
//! optimizer updates in place. Its [`ParamId`] never changes, so gradients come back
//! keyed by it ([`crate::Gradients::get`]) and optimizer state can follow it.
//! PyTorch equivalent: `torch.nn.Parameter`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use agdlab_tensor::Tensor;

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
        Param { id: ParamId::fresh(), value: Arc::new(RwLock::new(value.contiguous())) }
    }

    pub fn id(&self) -> ParamId {
        self.id
    }

    /// The current value (an `Arc` clone: no data is copied).
    pub fn value(&self) -> Tensor {
        self.value.read().expect("parameter lock poisoned").clone()
    }

    pub fn shape(&self) -> Vec<usize> {
        self.value.read().expect("parameter lock poisoned").shape().to_vec()
    }

    pub fn numel(&self) -> usize {
        self.value.read().expect("parameter lock poisoned").numel()
    }

    /// Replace the value (for loading checkpoints).
    ///
    /// # Panics
    /// When the new shape differs from the old one; loaders check shapes first and
    /// return an error instead.
    pub fn set(&self, value: Tensor) {
        let mut slot = self.value.write().expect("parameter lock poisoned");
        assert_eq!(
            slot.shape(),
            value.shape(),
            "Param::set: shape changed from {:?} to {:?}",
            slot.shape(),
            value.shape()
        );
        *slot = value.contiguous();
    }

    /// Run `f` on the elements in place (row-major). Copies only if a tensor taken
    /// from [`Param::value`] is still alive and sharing the buffer.
    pub fn update<R>(&self, f: impl FnOnce(&mut [f32]) -> R) -> R {
        let mut slot = self.value.write().expect("parameter lock poisoned");
        f(slot.data_mut())
    }
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param({:?}, shape={:?})", self.id, self.shape())
    }
}
