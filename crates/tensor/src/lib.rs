//! Strided CPU `f32` tensors.

pub mod elementwise;
pub mod error;
pub mod index;
pub mod layout;
pub mod matmul;
pub mod parallel;
pub mod reduce;
pub mod softmax;
pub mod tensor;

pub use error::{Result, TensorError};
pub use index::Indices;
pub use layout::Layout;
pub use matmul::matmul_into;
pub use tensor::Tensor;
