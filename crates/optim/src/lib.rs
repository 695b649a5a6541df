//! Optimizers.
pub mod state;
pub use state::OptimizerState;
