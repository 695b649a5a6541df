//! The tape: ops appended in execution order, run backwards in one loop.
//!
//! Because every op is pushed after its inputs exist, the reverse of the push order is
//! already a topological order. `backward` is therefore a single reverse loop over the
//! nodes, with no recursion and no sorting: a 10,000-op chain or a 35-step unrolled
//! LSTM costs nothing special. Each node's backward closure (and the tensors it saved)
//! is consumed and dropped as soon as it has run, and each gradient is dropped once it
//! has been handed to the node's inputs.
//!
//! A tape is never ambient. Values carry the tape they were recorded on; a parameter is
//! put on a tape explicitly ([`Tape::param`], or [`Param::on`] for "the tape of this
//! input"), and an op whose inputs come from two tapes panics naming the op. So a helper
//! that makes and drops a tape of its own in the middle of a step, or a rayon worker
//! that runs another training's step while it waits, cannot detach anything.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use agdlab_tensor::Tensor;

use crate::backward::InputGrads;
use crate::grad::Grad;
use crate::gradients::Gradients;
use crate::param::{Param, ParamId};
use crate::var::Var;

/// An op's backward: receives the gradient of its output and adds each input's share.
///
/// `Send` is required so a closure cannot capture a [`Var`]: a `Var` holds its tape,
/// the tape holds the closure, and that cycle would never be freed. Capture the
/// tensors the derivative needs (`x.value().clone()`, a cheap `Arc` clone) instead.
pub(crate) type BackwardFn = Box<dyn FnOnce(Tensor, &mut InputGrads<'_>) + Send>;

/// A process-unique tape identity, so gradients can tell which tape a value is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TapeId(u64);

impl TapeId {
    fn fresh() -> TapeId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TapeId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for TapeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tape #{}", self.0)
    }
}

enum NodeKind {
    /// A parameter leaf: its gradient is returned keyed by `ParamId`.
    Param(ParamId),
    /// A leaf made by [`Tape::leaf`]: its gradient is returned keyed by node.
    Leaf,
    /// An op: which nodes fed it (`None` for inputs needing no gradient) and how to
    /// send its gradient back to them.
    Op {
        name: &'static str,
        inputs: Vec<Option<usize>>,
        input_shapes: Vec<Vec<usize>>,
        backward: BackwardFn,
    },
}

#[derive(Default)]
struct TapeInner {
    nodes: Vec<NodeKind>,
    param_nodes: HashMap<ParamId, usize>,
    consumed: bool,
}

/// A recording of the ops of one forward pass. Cloning shares the same recording.
///
/// Make one per training step, put the batch on it with [`Tape::input`], run the model
/// (its layers put their parameters on the input's tape with [`Param::on`]), then call
/// [`Var::backward`] on the loss. For evaluation use [`Tape::no_grad`], a tape that
/// records nothing, or plain constants ([`Var::constant`]).
///
/// PyTorch equivalent: the autograd graph built while `requires_grad` tensors flow
/// through ops; [`Tape::no_grad`] plays `torch.no_grad()`.
#[derive(Clone)]
pub struct Tape {
    inner: Rc<RefCell<TapeInner>>,
    id: TapeId,
    recording: bool,
}

impl Default for Tape {
    fn default() -> Tape {
        Tape::new()
    }
}

impl fmt::Debug for Tape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tape({}, {} nodes, recording={})",
            self.id,
            self.len(),
            self.recording
        )
    }
}

impl Tape {
    /// A new, empty tape that records.
    pub fn new() -> Tape {
        Tape {
            inner: Rc::new(RefCell::new(TapeInner::default())),
            id: TapeId::fresh(),
            recording: true,
        }
    }

    /// A tape that records nothing: inputs, leaves and parameters put on it are plain
    /// constants, so a forward pass on it costs no memory for backward.
    /// PyTorch equivalent: running the model under `with torch.no_grad():`.
    pub fn no_grad() -> Tape {
        Tape {
            recording: false,
            ..Tape::new()
        }
    }

    /// This tape's identity.
    pub fn id(&self) -> TapeId {
        self.id
    }

    /// Whether ops on this tape's values are recorded (false for [`Tape::no_grad`]).
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// A value that rides on this tape but needs no gradient (a data batch).
    pub fn input(&self, value: Tensor) -> Var {
        if !self.recording {
            return Var::constant(value);
        }
        Var::traced(value, self.clone(), None)
    }

    /// A leaf whose gradient is wanted ([`Gradients::wrt`] returns it).
    pub fn leaf(&self, value: Tensor) -> Var {
        if !self.recording {
            return Var::constant(value);
        }
        let node = self.push(NodeKind::Leaf);
        Var::traced(value, self.clone(), Some(node))
    }

    /// A parameter on this tape: the same node however often it is used, so every use
    /// adds into one gradient.
    pub fn param(&self, param: &Param) -> Var {
        if !self.recording {
            return Var::constant(param.value());
        }
        let node = self.param_node(param.id());
        Var::traced(param.value(), self.clone(), Some(node))
    }

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        self.inner.borrow().nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn param_node(&self, id: ParamId) -> usize {
        if let Some(&node) = self.inner.borrow().param_nodes.get(&id) {
            return node;
        }
        let node = self.push(NodeKind::Param(id));
        self.inner.borrow_mut().param_nodes.insert(id, node);
        node
    }

    pub(crate) fn push_op(
        &self,
        name: &'static str,
        inputs: Vec<Option<usize>>,
        input_shapes: Vec<Vec<usize>>,
        backward: BackwardFn,
    ) -> usize {
        self.push(NodeKind::Op {
            name,
            inputs,
            input_shapes,
            backward,
        })
    }

    fn push(&self, node: NodeKind) -> usize {
        let mut inner = self.inner.borrow_mut();
        assert!(
            !inner.consumed,
            "Tape: this tape already ran backward; make a new Tape for each step"
        );
        inner.nodes.push(node);
        inner.nodes.len() - 1
    }

    /// Run the recorded ops backwards from node `root`, seeded with `seed`.
    ///
    /// Consumes the recording: the tape cannot be used again afterwards.
    pub(crate) fn backward(&self, root: usize, seed: Tensor) -> Gradients {
        let nodes = {
            let mut inner = self.inner.borrow_mut();
            assert!(
                !inner.consumed,
                "backward: this tape already ran backward once"
            );
            inner.consumed = true;
            inner.param_nodes.clear();
            std::mem::take(&mut inner.nodes)
        };
        let mut grads: Vec<Option<Grad>> = (0..=root).map(|_| None).collect();
        grads[root] = Some(Grad::Dense(seed));
        let mut result = Gradients::for_tape(self.id);

        for (id, node) in nodes.into_iter().enumerate().take(root + 1).rev() {
            let Some(grad) = grads[id].take() else {
                continue;
            };
            match node {
                NodeKind::Param(param) => result.insert_param(param, grad),
                NodeKind::Leaf => result.insert_leaf(id, grad.into_dense()),
                NodeKind::Op {
                    name,
                    inputs,
                    input_shapes,
                    backward,
                } => {
                    let mut input_grads =
                        InputGrads::new(name, &inputs, &input_shapes, &mut grads[..id]);
                    backward(grad.into_dense(), &mut input_grads);
                    input_grads.finish();
                }
            }
        }
        result
    }
}
