//! Global-norm gradient clipping.

use agdlab_autograd::{Gradients, Param};

use crate::kernel::sum_of_squares;

/// Scale the gradients of `params` so their global L2 norm is at most `max_norm`, and
/// return the norm before clipping. PyTorch equivalent:
/// `torch.nn.utils.clip_grad_norm_(params, max_norm)` (norm type 2):
///
/// ```text
/// norm  = sqrt(Σ_params Σ_i g_i²)
/// scale = min(max_norm / (norm + 1e-6), 1)
/// g    ← scale · g
/// ```
///
/// Parameters without a gradient are ignored; a row-sparse gradient counts its stored
/// rows (the others are zero). The sum is accumulated in f64. When the norm is NaN or
/// infinite the gradients are left as they are (the optimizer's non-finite check then
/// reports the offending parameter) and the norm is returned.
pub fn clip_grad_norm(grads: &mut Gradients, params: &[(String, Param)], max_norm: f32) -> f32 {
    let mut sum = 0.0f64;
    for (_, p) in params {
        if let Some(g) = grads.get(p) {
            let values = g.stored_values().contiguous();
            sum += sum_of_squares(values.as_slice().expect("contiguous tensor has a slice"));
        }
    }
    let norm = sum.sqrt();
    if !norm.is_finite() {
        return norm as f32;
    }
    let scale = (max_norm as f64 / (norm + 1e-6)).min(1.0);
    if scale < 1.0 {
        for (_, p) in params {
            if let Some(g) = grads.get_mut(p) {
                g.scale(scale as f32);
            }
        }
    }
    norm as f32
}
