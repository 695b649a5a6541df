//! Modules: what a layer or model owns (parameters, buffers, a train/eval mode), walked
//! by name; and [`Forward`], for the layers that map one value to one value.
//!
//! Walking and calling are separate. [`Module`] has one method, [`Module::visit`], which
//! names the module's parameters, buffers, modes and child modules in declaration order.
//! Everything else is derived from that walk: [`Module::named_parameters`]
//! (`"fc1.weight"`, `"fc1.bias"`, ...), [`Module::named_buffers`] (BatchNorm's running
//! statistics), [`Module::train`] / [`Module::eval`], which reach every layer through
//! any depth of containers, and, in the root crate, state dicts and checkpoints.
//!
//! A layer's forward keeps its natural signature as an inherent method: an embedding
//! takes ids, an LSTM takes and returns `(output, (h, c))`. Layers that map one [`Var`]
//! to one `Var` (Linear, activations, Conv2d, whole MLPs) also implement [`Forward`], so
//! [`Sequential`](crate::Sequential) can chain them.
//!
//! Parameters join the tape of the input they meet: a forward calls
//! `self.weight.on(x)`. So evaluation on a constant input (or on a
//! [`Tape::no_grad`](agdlab_autograd::Tape::no_grad)) records nothing.
//!
//! PyTorch equivalent: `torch.nn.Module` with `named_parameters()`, `named_buffers()`,
//! `register_buffer`, `train()` and `eval()`.
//!
//! # Writing a module
//!
//! ```
//! use agdlab_autograd::{Tape, Var};
//! use agdlab_nn::{Forward, Linear, Module, Walk};
//! use rand::rngs::StdRng;
//! use rand::SeedableRng;
//!
//! /// A two-layer perceptron.
//! struct Mlp {
//!     hidden: Linear,
//!     out: Linear,
//! }
//!
//! impl Module for Mlp {
//!     fn visit(&self, walk: &mut Walk<'_>) {
//!         walk.child("hidden", &self.hidden); // names become "hidden.weight", ...
//!         walk.child("out", &self.out);
//!     }
//! }
//!
//! impl Forward for Mlp {
//!     fn forward(&self, x: &Var) -> Var {
//!         self.out.forward(&self.hidden.forward(x).relu())
//!     }
//! }
//!
//! let mut rng = StdRng::seed_from_u64(0);
//! let mlp = Mlp { hidden: Linear::new(4, 8, true, &mut rng), out: Linear::new(8, 2, true, &mut rng) };
//! let names: Vec<String> = mlp.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]);
//!
//! let tape = Tape::new();
//! let x = tape.input(agdlab_tensor::Tensor::ones(&[3, 4]));
//! let grads = mlp.forward(&x).sqr().mean_all().backward();
//! assert_eq!(grads.len(), 4);
//! ```

use std::sync::atomic::{AtomicBool, Ordering};

use agdlab_autograd::{Param, Var};

use crate::buffer::Buffer;

/// A layer or model: something that owns parameters, buffers and modes, possibly
/// through child modules.
pub trait Module {
    /// Name everything this module owns, in declaration order: its parameters
    /// ([`Walk::param`]), buffers ([`Walk::buffer`]), mode ([`Walk::mode`]) and child
    /// modules ([`Walk::child`]). The only method a module must write.
    fn visit(&self, walk: &mut Walk<'_>);

    /// All parameters with their dotted names, in declaration order.
    fn named_parameters(&self) -> Vec<(String, Param)> {
        let mut out = Vec::new();
        self.visit(&mut Walk::new(&mut |item| {
            if let Item::Param(name, p) = item {
                out.push((name.to_string(), p.clone()));
            }
        }));
        out
    }

    /// All buffers (non-trained state, such as running statistics) with their dotted
    /// names, in declaration order.
    fn named_buffers(&self) -> Vec<(String, Buffer)> {
        let mut out = Vec::new();
        self.visit(&mut Walk::new(&mut |item| {
            if let Item::Buffer(name, b) = item {
                out.push((name.to_string(), b.clone()));
            }
        }));
        out
    }

    /// Total number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.named_parameters().iter().map(|(_, p)| p.numel()).sum()
    }

    /// Switch every layer, however deep, to training (`true`) or evaluation (`false`).
    fn set_training(&self, training: bool) {
        self.visit(&mut Walk::new(&mut |item| {
            if let Item::Mode(mode) = item {
                mode.set_training(training);
            }
        }));
    }

    /// Training behaviour: dropout drops, BatchNorm uses and updates batch statistics.
    /// PyTorch equivalent: `model.train()`.
    fn train(&self) {
        self.set_training(true);
    }

    /// Evaluation behaviour: dropout is the identity, BatchNorm uses its running
    /// statistics. PyTorch equivalent: `model.eval()`.
    fn eval(&self) {
        self.set_training(false);
    }

    /// Whether every layer with a mode is in training mode (true for a module with none).
    fn is_training(&self) -> bool {
        let mut all = true;
        self.visit(&mut Walk::new(&mut |item| {
            if let Item::Mode(mode) = item {
                all &= mode.is_training();
            }
        }));
        all
    }
}

/// A module whose forward maps one value to one value, so modules can be chained
/// ([`Sequential`](crate::Sequential)). Modules with other inputs or outputs (an
/// embedding takes ids, an LSTM returns its state too) have an inherent `forward`.
pub trait Forward: Module {
    /// The forward pass. Ops are recorded on `input`'s tape, if it has one.
    fn forward(&self, input: &Var) -> Var;
}

/// One thing a [`Walk`] reports, with its full dotted name.
pub enum Item<'a> {
    Param(&'a str, &'a Param),
    Buffer(&'a str, &'a Buffer),
    Mode(&'a Mode),
}

/// A walk over a module tree: keeps the dotted name prefix ("encoder.layers.0.") while
/// a module names what it owns, and reports each item with its full name.
pub struct Walk<'a> {
    prefix: String,
    report: &'a mut dyn FnMut(Item<'_>),
}

impl<'a> Walk<'a> {
    /// A walk that hands every item, fully named, to `report`.
    pub fn new(report: &'a mut dyn FnMut(Item<'_>)) -> Walk<'a> {
        Walk {
            prefix: String::new(),
            report,
        }
    }

    /// A parameter called `name` within the current module.
    pub fn param(&mut self, name: &str, param: &Param) {
        let full = format!("{}{name}", self.prefix);
        (self.report)(Item::Param(&full, param));
    }

    /// A buffer called `name` within the current module.
    pub fn buffer(&mut self, name: &str, buffer: &Buffer) {
        let full = format!("{}{name}", self.prefix);
        (self.report)(Item::Buffer(&full, buffer));
    }

    /// The current module's train/eval switch.
    pub fn mode(&mut self, mode: &Mode) {
        (self.report)(Item::Mode(mode));
    }

    /// A child module called `name`: its items are named `"<name>.<item>"`.
    pub fn child(&mut self, name: &str, module: &dyn Module) {
        let outer = self.prefix.len();
        self.prefix.push_str(name);
        self.prefix.push('.');
        module.visit(self);
        self.prefix.truncate(outer);
    }
}

/// A layer's train/eval switch (training by default). Layers whose behaviour differs
/// between the two (Dropout, BatchNorm) own one and report it from
/// [`Module::visit`]; [`Module::train`] and [`Module::eval`] then reach it.
#[derive(Debug)]
pub struct Mode(AtomicBool);

impl Default for Mode {
    fn default() -> Mode {
        Mode(AtomicBool::new(true))
    }
}

impl Mode {
    pub fn is_training(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set_training(&self, training: bool) {
        self.0.store(training, Ordering::Relaxed);
    }
}

/// A plain list of named parameters is a module whose parameters are exactly those (no
/// buffers, no modes): handy for models that are not structs, and for tests.
impl Module for [(String, Param)] {
    fn visit(&self, walk: &mut Walk<'_>) {
        for (name, param) in self {
            walk.param(name, param);
        }
    }
}

impl Module for Vec<(String, Param)> {
    fn visit(&self, walk: &mut Walk<'_>) {
        self.as_slice().visit(walk);
    }
}
