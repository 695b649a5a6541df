//! What an op's backward writes into: [`InputGrads`], the gradients of the op's inputs.
//!
//! Each op hands [`Var::record`](crate::Var::record) a closure that receives the
//! gradient of the op's output and adds each input's share through `InputGrads`:
//!
//! ```text
//! Var::record("mul", a·b, &[&a, &b], move |g, grads| {
//!     grads.add(0, || g.mul(&b));   // d(a·b)/da = b
//!     grads.add(1, || g.mul(&a));   // d(a·b)/db = a
//! })
//! ```
//!
//! The input gradients live in the tape's buffers, so contributions add up in place:
//!
//! - [`InputGrads::add`] computes a tensor only when the input needs a gradient, then
//!   moves it in (first contribution) or adds it (later ones);
//! - [`InputGrads::add_matmul`] accumulates a product straight into the input's buffer
//!   (`sgemm` with beta = 1), so a weight used at 35 steps of a recurrence has one
//!   gradient buffer, not 35 products added one by one;
//! - [`InputGrads::add_with`] lets the op write into the buffer itself (a slice's
//!   backward adds into its window);
//! - [`InputGrads::add_rows`] adds a row-sparse contribution (an embedding lookup's).
//!
//! The tape checks every contribution's shape, and after the closure returns that every
//! input needing a gradient got one; either mistake panics naming the op.

use agdlab_tensor::matmul::matmul_into;
use agdlab_tensor::Tensor;

use crate::grad::{Grad, RowSparse};

/// The gradients of one op's inputs, as its backward closure fills them.
///
/// Input `i` is the `i`-th entry of the `inputs` given to
/// [`Var::record`](crate::Var::record). Inputs that need no gradient (data, constants)
/// ignore every call.
pub struct InputGrads<'a> {
    op: &'static str,
    /// Per input: its node on the tape, or `None` when it needs no gradient.
    nodes: &'a [Option<usize>],
    shapes: &'a [Vec<usize>],
    /// The tape's gradient buffers of every node before this op.
    slots: &'a mut [Option<Grad>],
    given: Vec<bool>,
}

impl<'a> InputGrads<'a> {
    pub(crate) fn new(
        op: &'static str,
        nodes: &'a [Option<usize>],
        shapes: &'a [Vec<usize>],
        slots: &'a mut [Option<Grad>],
    ) -> InputGrads<'a> {
        InputGrads {
            op,
            nodes,
            shapes,
            slots,
            given: vec![false; nodes.len()],
        }
    }

    /// The op's name.
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The number of inputs.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether input `i` needs a gradient.
    ///
    /// # Panics
    /// When `i` is not an input of this op.
    pub fn needs(&self, i: usize) -> bool {
        self.check_index(i);
        self.nodes[i].is_some()
    }

    /// The shape of input `i`.
    pub fn shape(&self, i: usize) -> &[usize] {
        self.check_index(i);
        &self.shapes[i]
    }

    /// Add `grad()` to input `i`'s gradient. `grad` runs only when the input needs one.
    ///
    /// # Panics
    /// When the tensor's shape is not input `i`'s.
    pub fn add(&mut self, i: usize, grad: impl FnOnce() -> Tensor) {
        let Some(node) = self.slot_of(i) else { return };
        let grad = grad();
        self.check_shape(i, "add", grad.shape());
        match &mut self.slots[node] {
            slot @ None => *slot = Some(Grad::Dense(grad)),
            Some(existing) => existing.accumulate(Grad::Dense(grad)),
        }
    }

    /// Let `write` add into input `i`'s dense gradient buffer (zeros on first use). A
    /// slice's backward adds into its window this way, so the pieces of one tensor share
    /// one buffer.
    pub fn add_with(&mut self, i: usize, write: impl FnOnce(&mut Tensor)) {
        let Some(node) = self.slot_of(i) else { return };
        let buffer = dense_slot(&mut self.slots[node], &self.shapes[i]);
        write(buffer);
        let shape = buffer.shape().to_vec();
        self.check_shape(i, "add_with", &shape);
    }

    /// Add the product `a·b` to input `i`'s gradient, accumulating into the existing
    /// buffer with `sgemm` (beta = 1) when there is one: no temporary product.
    ///
    /// # Panics
    /// When `a·b` does not have input `i`'s shape, or the operands do not multiply.
    pub fn add_matmul(&mut self, i: usize, a: &Tensor, b: &Tensor) {
        let Some(node) = self.slot_of(i) else { return };
        if self.slots[node].is_none() {
            let product = a.matmul(b);
            self.check_shape(i, "add_matmul", product.shape());
            self.slots[node] = Some(Grad::Dense(product));
        } else {
            let buffer = dense_slot(&mut self.slots[node], &self.shapes[i]);
            matmul_into(a, b, buffer, 1.0, 1.0);
        }
    }

    /// Add a row-sparse contribution to input `i`: `values[k]` to row `rows[k]`. The
    /// input's gradient stays row-sparse as long as every contribution is.
    ///
    /// # Panics
    /// When `values` is not `[rows.len(), input shape[1..]...]` or a row is out of range.
    pub fn add_rows(&mut self, i: usize, rows: Vec<usize>, values: Tensor) {
        let Some(node) = self.slot_of(i) else { return };
        let sparse = RowSparse::new(&self.shapes[i], rows, values);
        match &mut self.slots[node] {
            slot @ None => *slot = Some(Grad::RowSparse(sparse)),
            Some(existing) => existing.accumulate(Grad::RowSparse(sparse)),
        }
    }

    /// Panics when an input that needs a gradient got none (called by the tape after the
    /// op's backward closure returns).
    pub(crate) fn finish(self) {
        for (i, (node, &given)) in self.nodes.iter().zip(&self.given).enumerate() {
            if node.is_some() && !given {
                panic!(
                    "{} backward: gave no gradient for input {i} (shape {:?}), which needs one; \
                     every input that needs a gradient must receive one (add zeros if the op \
                     does not depend on it)",
                    self.op, self.shapes[i]
                );
            }
        }
    }

    /// Input `i`'s node, marking it as given; `None` when it needs no gradient.
    fn slot_of(&mut self, i: usize) -> Option<usize> {
        self.check_index(i);
        let node = self.nodes[i]?;
        self.given[i] = true;
        Some(node)
    }

    fn check_index(&self, i: usize) {
        assert!(
            i < self.nodes.len(),
            "{} backward: no input {i} (the op has {})",
            self.op,
            self.nodes.len()
        );
    }

    fn check_shape(&self, i: usize, how: &str, shape: &[usize]) {
        assert!(
            shape == &self.shapes[i][..],
            "{} backward: gradient of shape {shape:?} for input {i} of shape {:?} ({how})",
            self.op,
            self.shapes[i]
        );
    }
}

/// The slot's dense buffer: zeros of `shape` when empty, densified when row-sparse.
fn dense_slot<'s>(slot: &'s mut Option<Grad>, shape: &[usize]) -> &'s mut Tensor {
    let grad = slot.get_or_insert_with(|| Grad::Dense(Tensor::zeros(shape)));
    if let Grad::RowSparse(sparse) = grad {
        *grad = Grad::Dense(sparse.to_dense());
    }
    match grad {
        Grad::Dense(t) => t,
        Grad::RowSparse(_) => unreachable!("densified above"),
    }
}
