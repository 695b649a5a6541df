//! Errors for input that comes from outside the program (data lengths).
//!
//! Programming errors (shape mismatch between operands, a bad axis, a reshape to another
//! element count) panic instead, with the op's name and the shapes involved; see each
//! op's `# Panics` section. The messages of those panics are these errors' texts.

use std::fmt;

/// An error from building or reshaping a tensor out of data-derived sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TensorError {
    /// `from_vec` got a buffer whose length does not match the shape.
    LengthMismatch {
        op: &'static str,
        shape: Vec<usize>,
        expected: usize,
        got: usize,
    },
    /// `reshape` to a shape with a different element count (the text of its panic).
    ReshapeCount { from: Vec<usize>, to: Vec<usize> },
    /// A shape argument that cannot be honoured, for example two `-1`s (the text of
    /// `reshape`'s panic).
    InvalidShape { op: &'static str, message: String },
}

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorError::LengthMismatch {
                op,
                shape,
                expected,
                got,
            } => {
                write!(
                    f,
                    "{op}: shape {shape:?} needs {expected} elements but the buffer has {got}"
                )
            }
            TensorError::ReshapeCount { from, to } => write!(
                f,
                "reshape: cannot view {from:?} ({} elements) as {to:?} ({} elements)",
                from.iter().product::<usize>(),
                to.iter().product::<usize>()
            ),
            TensorError::InvalidShape { op, message } => write!(f, "{op}: {message}"),
        }
    }
}

impl std::error::Error for TensorError {}

pub type Result<T> = std::result::Result<T, TensorError>;
