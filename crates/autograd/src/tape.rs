//! The tape: ops appended in execution order, run backwards in one loop.
//!
//! Because every op is pushed after its inputs exist, the reverse of the push order is
//! already a topological order. `backward` is therefore a single reverse loop over the
//! nodes, with no recursion and no sorting: a 10,000-op chain or a 35-step unrolled
//! LSTM costs nothing special. Each node's backward closure (and the tensors it saved)
//! is consumed and dropped as soon as it has run, and each gradient is dropped once it
//! has been handed to the node's inputs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use agdlab_tensor::Tensor;

use crate::gradients::Gradients;
use crate::param::{Param, ParamId};
use crate::var::Var;

/// Computes the gradients of an op's inputs from the gradient of its output.
///
/// Receives the output gradient and, per input, whether that input needs a gradient
/// (so a matmul against a data batch skips the data's gradient). Returns one entry per
/// input, `None` where not needed.
pub(crate) type BackwardFn = Box<dyn FnOnce(&Tensor, &[bool]) -> Vec<Option<Tensor>>>;

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
        backward: Option<BackwardFn>,
    },
}

struct Node {
    kind: NodeKind,
}

#[derive(Default)]
struct TapeInner {
    nodes: Vec<Node>,
    param_nodes: HashMap<ParamId, usize>,
    consumed: bool,
}

thread_local! {
    /// The tape most recently made on this thread, while it lives and has not run
    /// backward: [`Var::param`] records parameters on it.
    static CURRENT: RefCell<Weak<RefCell<TapeInner>>> = const { RefCell::new(Weak::new()) };
}

/// A recording of the ops of one forward pass. Cloning shares the same recording.
///
/// Make one per training step: put the batch on it with [`Tape::input`], run the model,
/// then call [`Var::backward`] on the loss. Making a tape also makes it the thread's
/// *current* tape until it runs backward (or every handle to it is dropped): parameters
/// read with [`Var::param`] meanwhile are recorded on it, so every op on a parameter is
/// seen, including ones applied before it meets the data (`w.t()`, `w.sqr()`). With no
/// current tape (evaluation), parameters are plain constants and nothing is recorded.
/// PyTorch equivalent: the autograd graph built while `requires_grad` tensors flow
/// through ops, outside `torch.no_grad()`.
#[derive(Clone)]
pub struct Tape {
    inner: Rc<RefCell<TapeInner>>,
}

impl Default for Tape {
    fn default() -> Tape {
        Tape::new()
    }
}

impl Tape {
    /// A new, empty tape, which becomes the thread's current tape.
    pub fn new() -> Tape {
        let inner = Rc::new(RefCell::new(TapeInner::default()));
        CURRENT.with(|current| *current.borrow_mut() = Rc::downgrade(&inner));
        Tape { inner }
    }

    /// The thread's current tape, if one is alive and has not yet run backward.
    pub fn current() -> Option<Tape> {
        let inner = CURRENT.with(|current| current.borrow().upgrade())?;
        let usable = !inner.borrow().consumed;
        usable.then_some(Tape { inner })
    }

    /// Run `f` with no current tape: parameters read inside are constants, so nothing
    /// is recorded even while a training step's tape is alive. The previous current
    /// tape is restored afterwards. PyTorch equivalent: `with torch.no_grad():`.
    pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
        let previous = CURRENT.with(|current| std::mem::take(&mut *current.borrow_mut()));
        struct Restore(Weak<RefCell<TapeInner>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = std::mem::take(&mut self.0);
                CURRENT.with(|current| *current.borrow_mut() = previous);
            }
        }
        let _restore = Restore(previous);
        f()
    }

    /// A value that rides on this tape but needs no gradient (a data batch).
    pub fn input(&self, value: Tensor) -> Var {
        Var::traced(value, self.clone(), None)
    }

    /// A leaf whose gradient is wanted ([`Gradients::wrt`] returns it).
    pub fn leaf(&self, value: Tensor) -> Var {
        let id = self.push(Node { kind: NodeKind::Leaf });
        Var::traced(value, self.clone(), Some(id))
    }

    /// A parameter on this tape (the same node however often it is used).
    pub fn param(&self, param: &Param) -> Var {
        let id = self.param_node(param.id());
        Var::traced(param.value(), self.clone(), Some(id))
    }

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        self.inner.borrow().nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn same(&self, other: &Tape) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    pub(crate) fn param_node(&self, id: ParamId) -> usize {
        if let Some(&node) = self.inner.borrow().param_nodes.get(&id) {
            return node;
        }
        let node = self.push(Node { kind: NodeKind::Param(id) });
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
        self.push(Node { kind: NodeKind::Op { name, inputs, input_shapes, backward: Some(backward) } })
    }

    fn push(&self, node: Node) -> usize {
        let mut inner = self.inner.borrow_mut();
        assert!(!inner.consumed, "Tape: this tape already ran backward; make a new Tape for each step");
        inner.nodes.push(node);
        inner.nodes.len() - 1
    }

    /// Run the recorded ops backwards from node `root`, seeded with `seed`.
    ///
    /// Consumes the recording: the tape cannot be used again afterwards.
    pub(crate) fn backward(&self, root: usize, seed: Tensor) -> Gradients {
        let nodes = {
            let mut inner = self.inner.borrow_mut();
            assert!(!inner.consumed, "backward: this tape already ran backward once");
            inner.consumed = true;
            inner.param_nodes.clear();
            std::mem::take(&mut inner.nodes)
        };
        let mut grads: Vec<Option<Tensor>> = (0..=root).map(|_| None).collect();
        grads[root] = Some(seed);
        let mut result = Gradients::new();

        for (id, node) in nodes.into_iter().enumerate().take(root + 1).rev() {
            let Some(grad) = grads[id].take() else { continue };
            match node.kind {
                NodeKind::Param(param) => result.insert_param(param, grad),
                NodeKind::Leaf => result.insert_leaf(id, grad),
                NodeKind::Op { name, inputs, input_shapes, backward } => {
                    let needs: Vec<bool> = inputs.iter().map(Option::is_some).collect();
                    let backward = backward.expect("each node runs backward once");
                    let input_grads = backward(&grad, &needs);
                    drop(grad);
                    for ((input, input_grad), shape) in inputs.iter().zip(input_grads).zip(&input_shapes) {
                        let (Some(input), Some(input_grad)) = (input, input_grad) else { continue };
                        assert_eq!(
                            input_grad.shape(),
                            &shape[..],
                            "{name} backward: gradient shape {:?} differs from input shape {shape:?}",
                            input_grad.shape()
                        );
                        accumulate(&mut grads[*input], input_grad);
                    }
                }
            }
        }
        result
    }
}

/// The first gradient is moved in; later ones are added in place.
fn accumulate(slot: &mut Option<Tensor>, grad: Tensor) {
    match slot {
        None => *slot = Some(grad),
        Some(existing) => existing.add_assign(&grad),
    }
}
