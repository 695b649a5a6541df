//! A chain of modules. PyTorch equivalent: `torch.nn.Sequential`.

use agdlab_autograd::Var;

use crate::module::{Forward, Module, Walk};

/// Runs its layers in order. Parameters are named by position, as in PyTorch:
/// `"0.weight"`, `"0.bias"`, `"2.weight"`, ...
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Forward>>,
}

impl Sequential {
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Append a layer (builder style). PyTorch equivalent: `Sequential.append`.
    pub fn append(mut self, layer: impl Forward + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Module for Sequential {
    fn visit(&self, walk: &mut Walk<'_>) {
        for (i, layer) in self.layers.iter().enumerate() {
            walk.child(&i.to_string(), layer.as_ref());
        }
    }
}

impl Forward for Sequential {
    fn forward(&self, input: &Var) -> Var {
        self.layers
            .iter()
            .fold(input.clone(), |x, layer| layer.forward(&x))
    }
}
