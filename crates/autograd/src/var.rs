//! `Var`: a tensor together with where it came from, so ops can be recorded.
//!
//! A `Var` is either
//! - a constant (no tape): ops on constants record nothing, so evaluation is free; or
//! - traced on a [`Tape`], either needing a gradient (it has a node: a parameter, a leaf
//!   or an op result) or not (a data batch made with [`Tape::input`]).
//!
//! [`Var::param`] gives a parameter traced on the thread's current tape (one leaf
//! however often it is used), or a constant when there is none.
//!
//! Ops build their result with [`Var::record`], giving the forward value and the
//! backward closure side by side (see the `ops` modules).

use agdlab_tensor::Tensor;

use crate::gradients::Gradients;
use crate::param::Param;
use crate::tape::Tape;

#[derive(Clone)]
enum Origin {
    Constant,
    Traced { tape: Tape, node: Option<usize> },
}

/// A tensor value that knows how to take part in a backward pass.
#[derive(Clone)]
pub struct Var {
    value: Tensor,
    origin: Origin,
}

impl Var {
    /// A value that never needs a gradient and records nothing.
    pub fn constant(value: Tensor) -> Var {
        Var { value, origin: Origin::Constant }
    }

    /// A parameter's current value, recorded on the thread's current tape (see
    /// [`Tape::current`]); a constant when there is none (evaluation).
    pub fn param(param: &Param) -> Var {
        match Tape::current() {
            Some(tape) => tape.param(param),
            None => Var::constant(param.value()),
        }
    }

    pub(crate) fn traced(value: Tensor, tape: Tape, node: Option<usize>) -> Var {
        Var { value, origin: Origin::Traced { tape, node } }
    }

    /// The forward value.
    pub fn value(&self) -> &Tensor {
        &self.value
    }

    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    pub fn rank(&self) -> usize {
        self.value.rank()
    }

    /// The single value of a one-element result (a loss).
    pub fn item(&self) -> f32 {
        self.value.item()
    }

    /// The tape this value rides on, if any.
    pub fn tape(&self) -> Option<&Tape> {
        match &self.origin {
            Origin::Traced { tape, .. } => Some(tape),
            _ => None,
        }
    }

    /// True when a backward pass through this value would produce gradients.
    pub fn requires_grad(&self) -> bool {
        matches!(self.origin, Origin::Traced { node: Some(_), .. })
    }

    pub(crate) fn node(&self) -> Option<usize> {
        match self.origin {
            Origin::Traced { node, .. } => node,
            _ => None,
        }
    }

    /// A value equal to this one, cut off from the tape (PyTorch: `x.detach()`).
    pub fn detach(&self) -> Var {
        Var::constant(self.value.clone())
    }

    /// Build an op's result: `value` is the forward output; `backward` maps the output
    /// gradient to each input's gradient. Nothing is recorded when no input is on a
    /// tape or none needs a gradient.
    ///
    /// # Panics
    /// When inputs ride on two different tapes.
    pub fn record(
        name: &'static str,
        value: Tensor,
        inputs: &[&Var],
        backward: impl FnOnce(&Tensor, &[bool]) -> Vec<Option<Tensor>> + 'static,
    ) -> Var {
        let Some(tape) = inputs.iter().find_map(|v| v.tape()).cloned() else {
            return Var::constant(value);
        };
        let input_nodes: Vec<Option<usize>> = inputs
            .iter()
            .map(|input| match &input.origin {
                Origin::Constant => None,
                Origin::Traced { tape: other, node } => {
                    assert!(tape.same(other), "{name}: inputs come from two different tapes");
                    *node
                }
            })
            .collect();
        if input_nodes.iter().all(Option::is_none) {
            return Var::traced(value, tape, None);
        }
        let shapes = inputs.iter().map(|v| v.shape().to_vec()).collect();
        let node = tape.push_op(name, input_nodes, shapes, Box::new(backward));
        Var::traced(value, tape, Some(node))
    }

    /// Gradients of this scalar (one-element) value with respect to every parameter
    /// and leaf it depends on. PyTorch equivalent: `loss.backward()`.
    ///
    /// # Panics
    /// When the value has more than one element (use [`Var::backward_with`]).
    pub fn backward(&self) -> Gradients {
        assert_eq!(self.value.numel(), 1, "backward: needs a one-element loss, got shape {:?}", self.shape());
        self.backward_with(Tensor::ones(self.shape()))
    }

    /// Backward pass seeded with the cotangent `seed` (same shape as the value).
    ///
    /// Returns empty gradients when nothing was recorded.
    pub fn backward_with(&self, seed: Tensor) -> Gradients {
        assert_eq!(seed.shape(), self.shape(), "backward_with: seed shape differs from value shape");
        match &self.origin {
            Origin::Traced { tape, node: Some(node) } => tape.backward(*node, seed),
            _ => Gradients::new(),
        }
    }
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var(requires_grad={}, {:?})", self.requires_grad(), self.value)
    }
}
