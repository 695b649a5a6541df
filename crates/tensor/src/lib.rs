//! Strided CPU `f32` tensors.

pub mod elementwise;
pub mod error;
pub mod layout;
pub mod parallel;
pub mod tensor;

pub use error::{Result, TensorError};
pub use layout::Layout;
pub use tensor::Tensor;
