//! `Var`: a tensor together with where it came from, so ops can be recorded.
//!
//! A `Var` is either
//! - a constant (no tape): ops on constants record nothing, so evaluation is free; or
//! - traced on a [`Tape`], either needing a gradient (it has a node: a parameter, a leaf
//!   or an op result) or not (a data batch made with [`Tape::input`]).
//!
//! Ops build their result with [`Var::record`], giving the forward value and the
//! backward closure side by side (see the `ops` modules, and the crate documentation
//! for writing an op of your own).

use agdlab_tensor::Tensor;

use crate::backward::InputGrads;
use crate::gradients::Gradients;
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
        Var {
            value,
            origin: Origin::Constant,
        }
    }

    pub(crate) fn traced(value: Tensor, tape: Tape, node: Option<usize>) -> Var {
        Var {
            value,
            origin: Origin::Traced { tape, node },
        }
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
            Origin::Constant => None,
        }
    }

    /// True when a backward pass through this value would produce gradients.
    pub fn requires_grad(&self) -> bool {
        matches!(self.origin, Origin::Traced { node: Some(_), .. })
    }

    pub(crate) fn node(&self) -> Option<usize> {
        match self.origin {
            Origin::Traced { node, .. } => node,
            Origin::Constant => None,
        }
    }

    /// A value equal to this one, cut off from the tape (PyTorch: `x.detach()`).
    pub fn detach(&self) -> Var {
        Var::constant(self.value.clone())
    }

    /// Record an op: `value` is its forward output, computed from `inputs`; `backward`
    /// receives the gradient of the output and adds each input's gradient through
    /// [`InputGrads`] (input `i` is `inputs[i]`). Nothing is recorded when no input is
    /// traced or none needs a gradient; the result is then a constant or an untracked
    /// value on the inputs' tape.
    ///
    /// This is the door for ops of your own: see the crate documentation for a worked
    /// example, and check the op with [`check_gradients`](crate::check_gradients).
    ///
    /// The closure must be `Send`, which keeps it from capturing a `Var` (a `Var` holds
    /// its tape, the tape holds the closure: a cycle that would never be freed). Capture
    /// the tensors it needs instead.
    ///
    /// # Panics
    /// - here, when inputs ride on two different tapes (the message names `name`);
    /// - during backward, when the closure gives an input a gradient of the wrong shape,
    ///   or gives none to an input that needs one (both messages name `name`).
    pub fn record(
        name: &'static str,
        value: Tensor,
        inputs: &[&Var],
        backward: impl FnOnce(Tensor, &mut InputGrads<'_>) + Send + 'static,
    ) -> Var {
        let Some(tape) = inputs.iter().find_map(|v| v.tape()).cloned() else {
            return Var::constant(value);
        };
        let input_nodes: Vec<Option<usize>> = inputs
            .iter()
            .map(|input| match &input.origin {
                Origin::Constant => None,
                Origin::Traced { tape: other, node } => {
                    assert!(
                        tape.id() == other.id(),
                        "{name}: inputs come from two different tapes ({} and {}); \
                         every value of one forward pass must be on the same tape",
                        tape.id(),
                        other.id()
                    );
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
    /// When the value has more than one element (use [`Var::backward_with`]), or when it
    /// was not recorded on a tape (see [`Var::backward_with`]).
    pub fn backward(&self) -> Gradients {
        assert_eq!(
            self.value.numel(),
            1,
            "backward: needs a one-element loss, got shape {:?}",
            self.shape()
        );
        self.backward_with(Tensor::ones(self.shape()))
    }

    /// Backward pass seeded with the cotangent `seed` (same shape as the value).
    ///
    /// # Panics
    /// When `seed`'s shape differs, when the tape already ran backward, or when this value
    /// depends on no parameter or leaf. The last is almost always a training step whose
    /// batch was not put on the step's tape (`Var::constant(x)` instead of
    /// `tape.input(x)`), or a model evaluated on a [`Tape::no_grad`]; the message says
    /// so rather than returning empty gradients that an optimizer would silently skip.
    pub fn backward_with(&self, seed: Tensor) -> Gradients {
        assert_eq!(
            seed.shape(),
            self.shape(),
            "backward_with: seed shape differs from value shape"
        );
        match &self.origin {
            Origin::Traced {
                tape,
                node: Some(node),
            } => tape.backward(*node, seed),
            _ => panic!(
                "backward: this value depends on no parameter or leaf, so there is nothing to \
                 differentiate. Was the batch put on the step's tape (tape.input(x)) and the \
                 model run on it, rather than on a constant or a Tape::no_grad()?"
            ),
        }
    }
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Var(requires_grad={}, {:?})",
            self.requires_grad(),
            self.value
        )
    }
}
