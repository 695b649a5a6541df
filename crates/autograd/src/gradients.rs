//! The result of a backward pass: one gradient per parameter (and per watched leaf).

use std::collections::HashMap;

use agdlab_tensor::Tensor;

use crate::grad::{Grad, RowSparse};
use crate::param::{Param, ParamId};
use crate::tape::TapeId;
use crate::var::Var;

/// Gradients keyed by [`ParamId`] (and, for leaves made with `Tape::leaf`, by node on
/// the tape that produced them).
///
/// A parameter's gradient is a [`Grad`]: dense (contiguous, row-major) or row-sparse
/// (sorted, unique rows), always of the parameter's shape.
#[derive(Default, Clone)]
pub struct Gradients {
    /// The tape whose backward pass made these (`None` when built by hand).
    tape: Option<TapeId>,
    by_param: HashMap<ParamId, Grad>,
    by_leaf: HashMap<usize, Tensor>,
}

impl Gradients {
    /// An empty set (useful to build gradients by hand in tests).
    pub fn new() -> Gradients {
        Gradients::default()
    }

    pub(crate) fn for_tape(tape: TapeId) -> Gradients {
        Gradients {
            tape: Some(tape),
            ..Gradients::default()
        }
    }

    /// The gradient of `param`, or `None` if the loss did not depend on it.
    pub fn get(&self, param: &Param) -> Option<&Grad> {
        self.by_param.get(&param.id())
    }

    /// The gradient of `param` as a dense tensor (row-sparse ones are expanded), or
    /// `None` if the loss did not depend on it.
    pub fn dense(&self, param: &Param) -> Option<Tensor> {
        self.get(param).map(Grad::to_dense)
    }

    /// The gradient of a leaf made with [`Tape::leaf`](crate::Tape::leaf), or `None` when
    /// the output did not depend on it (or `leaf` is a constant).
    ///
    /// # Panics
    /// When `leaf` was recorded on another tape than the one these gradients come from:
    /// its node number would name some other value here.
    pub fn wrt(&self, leaf: &Var) -> Option<&Tensor> {
        let tape = leaf.tape()?;
        assert!(
            self.tape == Some(tape.id()),
            "Gradients::wrt: the value is on {} but these gradients come from {}",
            tape.id(),
            self.tape
                .map_or("gradients built by hand".to_string(), |t| t.to_string())
        );
        leaf.node().and_then(|node| self.by_leaf.get(&node))
    }

    /// Mutable access, for in-place transforms such as gradient clipping.
    pub fn get_mut(&mut self, param: &Param) -> Option<&mut Grad> {
        self.by_param.get_mut(&param.id())
    }

    /// Set the dense gradient of `param`.
    ///
    /// # Panics
    /// When the shape differs from the parameter's.
    pub fn insert(&mut self, param: &Param, grad: Tensor) {
        self.insert_grad(param, Grad::Dense(grad));
    }

    /// Set the gradient of `param`, dense or row-sparse.
    ///
    /// # Panics
    /// When the shape differs from the parameter's.
    pub fn insert_grad(&mut self, param: &Param, grad: Grad) {
        assert_eq!(
            grad.shape(),
            &param.shape()[..],
            "Gradients::insert: gradient shape {:?} differs from parameter shape {:?}",
            grad.shape(),
            param.shape()
        );
        self.by_param.insert(param.id(), grad.normalized());
    }

    /// Set a row-sparse gradient of `param`: `values[k]` in row `rows[k]`.
    ///
    /// # Panics
    /// As [`RowSparse::new`], against the parameter's shape.
    pub fn insert_rows(&mut self, param: &Param, rows: Vec<usize>, values: Tensor) {
        self.insert_grad(
            param,
            Grad::RowSparse(RowSparse::new(&param.shape(), rows, values)),
        );
    }

    /// Iterate over all parameter gradients (in no particular order).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Grad> {
        self.by_param.values_mut()
    }

    /// Names of the parameters that received no gradient, in the order given.
    pub fn missing<'a>(
        &self,
        params: impl IntoIterator<Item = (&'a str, &'a Param)>,
    ) -> Vec<String> {
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

    pub(crate) fn insert_param(&mut self, id: ParamId, grad: Grad) {
        self.by_param.insert(id, grad.normalized());
    }

    pub(crate) fn insert_leaf(&mut self, node: usize, grad: Tensor) {
        self.by_leaf.insert(node, grad.contiguous());
    }
}
