//! The `Module` trait: a forward pass plus a walk over owned parameters.
//!
//! Parameters are listed with dotted names in declaration order ("fc1.weight",
//! "fc1.bias", "fc2.weight", ...), so checkpoints and optimizer state have a stable
//! order (a HashMap's would not be). PyTorch equivalent: `torch.nn.Module` with
//! `named_parameters()`, `train()` and `eval()`.

use agdlab_autograd::{Param, Var};

/// A layer or model.
pub trait Module {
    /// The forward pass. Ops are recorded on `input`'s tape, if it has one.
    fn forward(&self, input: &Var) -> Var;

    /// Call `visit(name, param)` for every parameter, names prefixed by `prefix`
    /// (empty at the top; containers pass `"fc1."` and so on), in declaration order.
    fn visit_params(&self, prefix: &str, visit: &mut dyn FnMut(String, &Param));

    /// Switch between training (dropout active) and evaluation behaviour.
    /// Containers pass it on to their children; layers without modes ignore it.
    fn set_training(&mut self, _training: bool) {}

    /// All parameters with their dotted names, in declaration order.
    fn named_parameters(&self) -> Vec<(String, Param)> {
        let mut out = Vec::new();
        self.visit_params("", &mut |name, p| out.push((name, p.clone())));
        out
    }

    /// Total number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.named_parameters().iter().map(|(_, p)| p.numel()).sum()
    }
}

/// Join a prefix and a field name: `("fc1.", "weight") -> "fc1.weight"`.
pub fn param_name(prefix: &str, field: &str) -> String {
    format!("{prefix}{field}")
}
