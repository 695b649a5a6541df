//! Buffers: a module's state that is saved with it but not trained.
//!
//! BatchNorm's running mean and variance, and its count of batches seen, are buffers:
//! the forward pass updates them in training mode, checkpoints and state dicts save
//! them, and no optimizer ever sees them. PyTorch equivalent: `register_buffer`.

use std::sync::{Arc, RwLock};

use agdlab_autograd::ShapeMismatch;
use agdlab_tensor::Tensor;

/// A named piece of non-trained state, shared between a module (which reads and
/// updates it) and whoever saves it. Cloning shares the same buffer.
#[derive(Clone)]
pub struct Buffer {
    value: Arc<RwLock<Tensor>>,
    integer: bool,
}

impl Buffer {
    /// A buffer of real values (a running mean).
    pub fn new(value: Tensor) -> Buffer {
        Buffer {
            value: Arc::new(RwLock::new(value.contiguous())),
            integer: false,
        }
    }

    /// A buffer of whole numbers (a count), held as `f32` (exact below 2^24) and saved
    /// as `int64`, as PyTorch stores `num_batches_tracked`.
    pub fn integer(value: Tensor) -> Buffer {
        Buffer {
            integer: true,
            ..Buffer::new(value)
        }
    }

    /// Whether it holds whole numbers (saved as `int64`).
    pub fn is_integer(&self) -> bool {
        self.integer
    }

    /// The current value (an `Arc` clone: no data is copied).
    pub fn value(&self) -> Tensor {
        self.value.read().expect("buffer lock poisoned").clone()
    }

    pub fn shape(&self) -> Vec<usize> {
        self.value
            .read()
            .expect("buffer lock poisoned")
            .shape()
            .to_vec()
    }

    /// Replace the value (for loading checkpoints and state dicts).
    ///
    /// # Errors
    /// When the new shape differs from the buffer's; the buffer is then unchanged.
    pub fn set(&self, value: Tensor) -> Result<(), ShapeMismatch> {
        let mut slot = self.value.write().expect("buffer lock poisoned");
        if slot.shape() != value.shape() {
            return Err(ShapeMismatch {
                expected: slot.shape().to_vec(),
                found: value.shape().to_vec(),
            });
        }
        *slot = value.contiguous();
        Ok(())
    }

    /// Run `f` on the elements in place (row-major).
    pub fn update<R>(&self, f: impl FnOnce(&mut [f32]) -> R) -> R {
        let mut slot = self.value.write().expect("buffer lock poisoned");
        f(slot.data_mut())
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Buffer(shape={:?}, integer={})",
            self.shape(),
            self.integer
        )
    }
}
