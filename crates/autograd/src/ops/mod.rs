//! Differentiable ops on [`Var`](crate::Var), each forward written next to its backward.
//!
//! Every op computes its output with the `tensor` crate, then hands [`Var::record`]
//! a closure that turns the output gradient into input gradients. Read any op top to
//! bottom to see its derivative. Binary ops broadcast through an explicit
//! [`Var::broadcast_to`] node, whose backward (`sum_to`) undoes the broadcast, so each
//! binary backward below only deals with equal shapes.

mod batch_norm;
mod binary;
mod conv;
mod index;
mod linear;
mod matmul;
mod norm;
mod pool;
mod reduce;
mod shape;
mod softmax;
mod unary;
