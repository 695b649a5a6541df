//! A chain of modules. PyTorch equivalent: `torch.nn.Sequential`.

use agdlab_autograd::{Param, Var};

use crate::module::Module;

/// Runs its layers in order. Parameters are named by position, as in PyTorch:
/// `"0.weight"`, `"0.bias"`, `"2.weight"`, ...
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Append a layer (builder style). PyTorch equivalent: `Sequential.append`.
    pub fn append(mut self, layer: impl Module + 'static) -> Sequential {
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
    fn forward(&self, input: &Var) -> Var {
        self.layers.iter().fold(input.clone(), |x, layer| layer.forward(&x))
    }

    fn visit_params(&self, prefix: &str, visit: &mut dyn FnMut(String, &Param)) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit_params(&format!("{prefix}{i}."), visit);
        }
    }

    fn set_training(&mut self, training: bool) {
        for layer in &mut self.layers {
            layer.set_training(training);
        }
    }
}
