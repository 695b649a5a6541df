//! The result of a backward pass: one gradient per parameter (and per watched leaf).

use std::collections::HashMap;

use agdlab_tensor::Tensor;

use crate::param::{Param, ParamId};
use crate::var::Var;

/// Gradients keyed by [`ParamId`] (and, for leaves made with `Tape::leaf`, by node).
///
/// Every gradient has its parameter's shape and is contiguous.
#[derive(Default, Clone)]
pub struct Gradients {
    by_param: HashMap<ParamId, Tensor>,
    by_leaf: HashMap<usize, Tensor>,
}

impl Gradients {
    /// An empty set (useful to build gradients by hand in tests).
    pub fn new() -> Gradients {
        Gradients::default()
    }

    /// The gradient of `param`, or `None` if the loss did not depend on it.
    pub fn get(&self, param: &Param) -> Option<&Tensor> {
        self.by_param.get(&param.id())
    }

    /// The gradient of a leaf made with [`Tape::leaf`](crate::Tape::leaf).
    pub fn wrt(&self, leaf: &Var) -> Option<&Tensor> {
        leaf.node().and_then(|node| self.by_leaf.get(&node))
    }

    /// Mutable access, for in-place transforms such as gradient clipping.
    pub fn get_mut(&mut self, param: &Param) -> Option<&mut Tensor> {
        self.by_param.get_mut(&param.id())
    }

    /// Set the gradient of `param`.
    ///
    /// # Panics
    /// When the shape differs from the parameter's.
    pub fn insert(&mut self, param: &Param, grad: Tensor) {
        assert_eq!(
            grad.shape(),
            &param.shape()[..],
            "Gradients::insert: gradient shape {:?} differs from parameter shape {:?}",
            grad.shape(),
            param.shape()
        );
        self.by_param.insert(param.id(), grad.contiguous());
    }

    /// Iterate over all parameter gradients (in no particular order).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Tensor> {
        self.by_param.values_mut()
    }

    /// Names of the parameters that received no gradient, in the order given.
    pub fn missing<'a>(&self, params: impl IntoIterator<Item = (&'a str, &'a Param)>) -> Vec<String> {
        params
            .into_iter()
            .filter(|(_, p)| !self.by_param.contains_key(&p.id()))
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// Number of parameter gradients held.
    pub fn len(&self) -> usize {
        self.by_param.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_param.is_empty()
    }

    pub(crate) fn insert_param(&mut self, id: ParamId, grad: Tensor) {
        self.by_param.insert(id, grad.contiguous());
    }

    pub(crate) fn insert_leaf(&mut self, node: usize, grad: Tensor) {
        self.by_leaf.insert(node, grad.contiguous());
    }
}
