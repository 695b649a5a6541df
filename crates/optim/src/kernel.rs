//! Machinery shared by the per-parameter optimizers: per-parameter state, the fused-loop
//! driver (serial for small tensors, rayon divide-and-conquer for large ones) with its
//! piece-by-piece non-finite gradient check, and the whole-step check.

use std::sync::atomic::{AtomicBool, Ordering};

use agdlab_autograd::{Gradients, Param};

use crate::diagnostics::StepStats;
use crate::optimizer::OptimError;

/// Tensors with more elements than this are split across rayon threads; smaller ones run
/// one serial loop (per-task overhead dominates small models).
pub(crate) const PAR_THRESHOLD: usize = 32 * 1024;

/// The most state buffers one parameter may have.
pub const MAX_BUFFERS: usize = 5;

/// The slices one fused loop works on: a run of parameter elements, the matching gradient
/// elements and up to [`MAX_BUFFERS`] state buffers. Buffers an optimizer does not use are empty.
///
/// Built over a whole parameter by [`Chunk::new`] (or by
/// [`PerParameter`](crate::PerParameter), which also asks for the non-finite check) and
/// split by [`run_fused`]; an [`UpdateRule`](crate::UpdateRule) destructures it in its
/// element loop (`let Chunk { theta, grad, bufs: [m, v, ..], .. } = chunk;`).
pub struct Chunk<'a> {
    /// Parameter elements, updated in place.
    pub theta: &'a mut [f32],
    /// The matching gradient elements.
    pub grad: &'a [f32],
    /// The matching elements of the state buffers, in the rule's buffer order; empty
    /// slices past the rule's last buffer.
    pub bufs: [&'a mut [f32]; MAX_BUFFERS],
    /// When set, [`run_fused`] checks each piece's gradient before the kernel sees it,
    /// skips a piece holding NaN or ±Inf and raises this flag.
    non_finite: Option<&'a AtomicBool>,
}

fn split_buf(b: &mut [f32], mid: usize) -> (&mut [f32], &mut [f32]) {
    if b.is_empty() {
        (b, &mut [])
    } else {
        b.split_at_mut(mid)
    }
}

impl<'a> Chunk<'a> {
    /// A chunk over a whole parameter. Buffers are taken in order from `bufs`.
    ///
    /// # Panics
    /// When `grad`'s length differs from `theta`'s, or `bufs` holds more than [`MAX_BUFFERS`].
    pub fn new(theta: &'a mut [f32], grad: &'a [f32], bufs: &'a mut [Vec<f32>]) -> Chunk<'a> {
        assert_eq!(
            theta.len(),
            grad.len(),
            "optimizer step: gradient has {} elements, parameter has {}",
            grad.len(),
            theta.len()
        );
        let mut it = bufs.iter_mut();
        let mut next = || -> &'a mut [f32] {
            match it.next() {
                Some(v) => {
                    debug_assert_eq!(v.len(), theta.len());
                    v.as_mut_slice()
                }
                None => &mut [],
            }
        };
        let bufs = [next(), next(), next(), next(), next()];
        assert!(it.next().is_none(), "optimizer step: at most {MAX_BUFFERS} state buffers per parameter");
        Chunk { theta, grad, bufs, non_finite: None }
    }

    /// This chunk with [`run_fused`]'s non-finite check on: a piece whose gradient holds
    /// NaN or ±Inf is left untouched and `flag` is raised.
    pub(crate) fn checked(self, flag: &'a AtomicBool) -> Chunk<'a> {
        Chunk { non_finite: Some(flag), ..self }
    }

    fn len(&self) -> usize {
        self.theta.len()
    }

    fn split(self, mid: usize) -> (Chunk<'a>, Chunk<'a>) {
        let (t0, t1) = self.theta.split_at_mut(mid);
        let (g0, g1) = self.grad.split_at(mid);
        let [a, b, c, d, e] = self.bufs;
        let (a0, a1) = split_buf(a, mid);
        let (b0, b1) = split_buf(b, mid);
        let (c0, c1) = split_buf(c, mid);
        let (d0, d1) = split_buf(d, mid);
        let (e0, e1) = split_buf(e, mid);
        let flag = self.non_finite;
        (
            Chunk { theta: t0, grad: g0, bufs: [a0, b0, c0, d0, e0], non_finite: flag },
            Chunk { theta: t1, grad: g1, bufs: [a1, b1, c1, d1, e1], non_finite: flag },
        )
    }
}

/// Run `kernel` over `chunk`: directly when small, else halved recursively with
/// `rayon::join` until pieces are at most 32 Ki elements long. Returns the kernel's
/// statistics merged over the pieces (AGD counts SGD-mode coordinates this way).
/// Allocates nothing.
///
/// The kernel sees each piece once, so it must treat elements independently.
///
/// For a chunk from [`PerParameter`](crate::PerParameter), each piece's gradient is
/// checked for NaN and ±Inf just before the kernel runs on it (the piece, at most
/// 128 KiB of gradient, is then still in cache, so the check costs no second pass over
/// memory); a piece that fails is skipped, so no non-finite value reaches the parameter
/// or the state.
pub fn run_fused<K, S>(chunk: Chunk<'_>, kernel: &K) -> S
where
    K: Fn(Chunk<'_>) -> S + Sync,
    S: StepStats,
{
    let n = chunk.len();
    if n <= PAR_THRESHOLD {
        if let Some(flag) = chunk.non_finite {
            if !all_finite_serial(chunk.grad) {
                flag.store(true, Ordering::Relaxed);
                return S::default();
            }
        }
        kernel(chunk)
    } else {
        let (lo, hi) = chunk.split(n / 2);
        let (a, b) = rayon::join(|| run_fused(lo, kernel), || run_fused(hi, kernel));
        a.merge(b)
    }
}

/// One parameter's optimizer state: its step count and its buffers (in the order of the
/// optimizer's buffer names). Created at the parameter's first step.
#[derive(Clone, Debug)]
pub(crate) struct ParamState {
    pub step: u64,
    pub bufs: Vec<Vec<f32>>,
}

impl ParamState {
    pub fn zeros(n_bufs: usize, numel: usize) -> ParamState {
        ParamState { step: 0, bufs: vec![vec![0.0; numel]; n_bufs] }
    }
}

/// Check every gradient for NaN and ±Inf before a step, naming the first parameter (in
/// `params`' order) whose gradient holds one. One read of every gradient.
///
/// [`Optimizer::step`](crate::Optimizer::step) checks as it updates, so on a non-finite
/// gradient it reports the error but has already updated the parameters before that one.
/// Call this first when a bad step must leave everything untouched (to skip the step and
/// go on, as PyTorch's `GradScaler` does):
///
/// ```
/// # use agdlab_autograd::{Gradients, Param};
/// # use agdlab_optim::{check_gradients, Optimizer, Sgd, SgdConfig};
/// # use agdlab_tensor::Tensor;
/// let w = Param::new(Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap());
/// let mut opt = Sgd::new(vec![("w".into(), w.clone())], SgdConfig::default()).unwrap();
/// let mut grads = Gradients::new();
/// grads.insert(&w, Tensor::from_vec(vec![f32::NAN, 1.0], &[2]).unwrap());
/// if check_gradients(opt.params(), &grads).is_ok() {
///     opt.step(&grads).unwrap();
/// }
/// assert_eq!(w.value().to_vec(), vec![1.0, 2.0]); // skipped: nothing changed
/// ```
///
/// # Errors
/// [`OptimError::NonFiniteGradient`] naming the parameter.
pub fn check_gradients(params: &[(String, Param)], grads: &Gradients) -> Result<(), OptimError> {
    for (name, p) in params {
        if let Some(g) = grads.get(p) {
            let values = g.stored_values();
            let finite = match values.as_slice() {
                Some(s) => all_finite(s),
                None => all_finite(&values.to_vec()),
            };
            if !finite {
                return Err(OptimError::NonFiniteGradient { param: name.clone() });
            }
        }
    }
    Ok(())
}

/// True when no element is NaN or ±Inf: a branch-free `&` reduction over blocks (rather
/// than a short-circuiting `all`) so it vectorises, and blocks checked on rayon's threads
/// when the slice is large, so the check reads memory as fast as the update that follows.
pub(crate) fn all_finite(values: &[f32]) -> bool {
    if values.len() > PAR_THRESHOLD && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        values.par_chunks(PAR_THRESHOLD).all(all_finite_serial)
    } else {
        all_finite_serial(values)
    }
}

/// [`all_finite`] on the calling thread only (for one piece of [`run_fused`]).
fn all_finite_serial(values: &[f32]) -> bool {
    values.chunks(4096).all(|block| block.iter().fold(true, |ok, x| ok & x.is_finite()))
}

/// Σ x² in f64, over blocks of f32 lanes (so it vectorises) added in order.
pub(crate) fn sum_of_squares(values: &[f32]) -> f64 {
    values
        .chunks(1024)
        .map(|block| {
            let mut lanes = [0.0f32; 8];
            let mut groups = block.chunks_exact(8);
            for group in &mut groups {
                for (lane, &x) in lanes.iter_mut().zip(group) {
                    *lane += x * x;
                }
            }
            let tail: f32 = groups.remainder().iter().map(|&x| x * x).sum();
            (lanes.iter().sum::<f32>() + tail) as f64
        })
        .sum()
}
