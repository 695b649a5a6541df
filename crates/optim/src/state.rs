//! Optimizer state that can be saved and loaded by parameter name.
//!
//! Mirrors PyTorch's `optimizer.state_dict()`: per-parameter buffers (momentum, second
//! moments, ...) and per-parameter or global scalars (step counts, the learning rate),
//! keyed by the parameter's dotted name so a checkpoint survives a fresh process.

use agdlab_tensor::Tensor;

/// A snapshot of an optimizer's state.
#[derive(Clone, Debug, Default)]
pub struct OptimizerState {
    /// Which optimizer wrote it (for example `"AGD"`); loading into another is refused.
    pub kind: String,
    /// Buffers named `"<param name>.<buffer>"`, for example `"fc1.weight.exp_avg"`.
    pub tensors: Vec<(String, Tensor)>,
    /// Scalars named `"<param name>.<scalar>"` (for example `"fc1.weight.step"`) or plain
    /// (`"lr"`). f64 holds step counts exactly.
    pub scalars: Vec<(String, f64)>,
}

impl OptimizerState {
    /// The scalar stored under `key` (for example `"fc1.weight.step"` or `"lr"`).
    pub fn scalar(&self, key: &str) -> Option<f64> {
        self.scalars.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The buffer stored under `key` (for example `"fc1.weight.exp_avg"`).
    pub fn tensor(&self, key: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(k, _)| k == key).map(|(_, t)| t)
    }
}
