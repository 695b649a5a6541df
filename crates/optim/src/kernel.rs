//! Machinery shared by the per-parameter optimizers: per-parameter state, the fused-loop
//! driver (serial for small tensors, rayon divide-and-conquer for large ones), the
//! gradient a kernel reads block by block, each block checked for NaN and ±Inf as it
//! comes, and the whole-step check.

use std::sync::atomic::{AtomicBool, Ordering};

use agdlab_autograd::{Gradients, Param};
use agdlab_tensor::parallel::{worth_parallel, MIN_CHUNK};
use rayon::prelude::*;

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
/// split by [`run_fused`]; an [`UpdateRule`](crate::UpdateRule) destructures it and walks
/// the gradient's blocks in its element loop:
///
/// ```text
/// let Chunk { theta, grad, bufs: [m, v, ..] } = chunk;
/// for (range, g) in grad.finite_blocks() { /* θ[range], g, m[range], v[range] */ }
/// ```
pub struct Chunk<'a> {
    /// Parameter elements, updated in place.
    pub theta: &'a mut [f32],
    /// The matching gradient elements, read through [`Gradient::finite_blocks`].
    pub grad: Gradient<'a>,
    /// The matching elements of the state buffers, in the rule's buffer order; empty
    /// slices past the rule's last buffer.
    pub bufs: [&'a mut [f32]; MAX_BUFFERS],
}

/// A chunk's gradient elements. The only way to read them is
/// [`finite_blocks`](Gradient::finite_blocks), so an update rule cannot forget the
/// NaN/±Inf check that [`PerParameter`](crate::PerParameter) asks for.
#[derive(Clone, Copy)]
pub struct Gradient<'a> {
    values: &'a [f32],
    /// Set when blocks holding NaN or ±Inf must be skipped and reported here.
    non_finite: Option<&'a AtomicBool>,
}

/// Elements per block of [`Gradient::finite_blocks`] when the gradient is checked.
///
/// Small on purpose: each block's check is the first read of that block's gradient, and
/// while it runs one stream is read where the update reads four (θ, g, m, v) at once.
/// Checking a whole 32 Ki-element piece before its update cost the AGD step about 15% at
/// one thread (10M parameters); checked a block at a time inside the update's own loop,
/// the hardware prefetchers keep every stream coming. Measured against the unchecked
/// loop: 64-element blocks cost 5–10% (per-block overhead), 128 0–6%, 256 and 512 more.
pub const CHECK_BLOCK: usize = 128;

impl<'a> Gradient<'a> {
    /// The gradient in consecutive blocks, as `(range, values)`: `range` is where the
    /// block sits in the chunk (index θ and the buffers with it) and `values` its gradient
    /// elements. When the chunk is checked (every chunk [`PerParameter`](crate::PerParameter)
    /// makes), blocks are [`CHECK_BLOCK`] long and each is checked just before it is
    /// yielded: one holding NaN or ±Inf is skipped, so nothing of it is updated, and the
    /// step reports [`OptimError::NonFiniteGradient`]. Otherwise the whole gradient comes
    /// as one block.
    pub fn finite_blocks(self) -> FiniteBlocks<'a> {
        let block = if self.non_finite.is_some() {
            CHECK_BLOCK
        } else {
            self.values.len().max(1)
        };
        FiniteBlocks {
            grad: self,
            start: 0,
            block,
        }
    }
}

/// The iterator of [`Gradient::finite_blocks`].
pub struct FiniteBlocks<'a> {
    grad: Gradient<'a>,
    start: usize,
    block: usize,
}

impl<'a> Iterator for FiniteBlocks<'a> {
    type Item = (std::ops::Range<usize>, &'a [f32]);

    fn next(&mut self) -> Option<Self::Item> {
        let values = self.grad.values;
        while self.start < values.len() {
            let range = self.start..values.len().min(self.start + self.block);
            self.start = range.end;
            let block = &values[range.clone()];
            match self.grad.non_finite {
                Some(flag) if !all_finite_serial(block) => flag.store(true, Ordering::Relaxed),
                _ => return Some((range, block)),
            }
        }
        None
    }
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
        assert!(
            it.next().is_none(),
            "optimizer step: at most {MAX_BUFFERS} state buffers per parameter"
        );
        Chunk {
            theta,
            grad: Gradient {
                values: grad,
                non_finite: None,
            },
            bufs,
        }
    }

    /// This chunk with the non-finite check on: [`Gradient::finite_blocks`] skips a block
    /// whose gradient holds NaN or ±Inf and raises `flag`.
    pub(crate) fn checked(self, flag: &'a AtomicBool) -> Chunk<'a> {
        Chunk {
            grad: Gradient {
                non_finite: Some(flag),
                ..self.grad
            },
            ..self
        }
    }

    fn len(&self) -> usize {
        self.theta.len()
    }

    fn split(self, mid: usize) -> (Chunk<'a>, Chunk<'a>) {
        let (t0, t1) = self.theta.split_at_mut(mid);
        let (g0, g1) = self.grad.values.split_at(mid);
        let flag = self.grad.non_finite;
        let [a, b, c, d, e] = self.bufs;
        let (a0, a1) = split_buf(a, mid);
        let (b0, b1) = split_buf(b, mid);
        let (c0, c1) = split_buf(c, mid);
        let (d0, d1) = split_buf(d, mid);
        let (e0, e1) = split_buf(e, mid);
        (
            Chunk {
                theta: t0,
                grad: Gradient {
                    values: g0,
                    non_finite: flag,
                },
                bufs: [a0, b0, c0, d0, e0],
            },
            Chunk {
                theta: t1,
                grad: Gradient {
                    values: g1,
                    non_finite: flag,
                },
                bufs: [a1, b1, c1, d1, e1],
            },
        )
    }
}

/// Run `kernel` over `chunk`: directly when small, else halved recursively with
/// `rayon::join` until pieces are at most 32 Ki elements long. Returns the kernel's
/// statistics merged over the pieces (AGD counts SGD-mode coordinates this way).
/// Allocates nothing.
///
/// The kernel sees each piece once, so it must treat elements independently. It reads the
/// gradient through [`Gradient::finite_blocks`], which does the non-finite check.
pub fn run_fused<K, S>(chunk: Chunk<'_>, kernel: &K) -> S
where
    K: Fn(Chunk<'_>) -> S + Sync,
    S: StepStats,
{
    let n = chunk.len();
    if n <= PAR_THRESHOLD {
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
        ParamState {
            step: 0,
            bufs: vec![vec![0.0; numel]; n_bufs],
        }
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
                return Err(OptimError::NonFiniteGradient {
                    param: name.clone(),
                });
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

/// [`all_finite`] on the calling thread only (for one block of [`Gradient::finite_blocks`]).
///
/// A float is NaN or ±Inf exactly when its exponent bits are all ones, that is when its
/// bits without the sign are at least those of +Inf. The largest such magnitude over the
/// slice is an integer max, one instruction per vector (a fold of `is_finite` compiles
/// to compares, masks and an `and` per vector, measurably slower on this hot path).
fn all_finite_serial(values: &[f32]) -> bool {
    const SIGN_OFF: u32 = 0x7fff_ffff;
    let largest = values
        .iter()
        .fold(0u32, |acc, x| acc.max(x.to_bits() & SIGN_OFF));
    largest < f32::INFINITY.to_bits()
}

/// Σ x² in f64, over blocks of f32 lanes (so it vectorises) added in order.
pub(crate) fn sum_of_squares(values: &[f32]) -> f64 {
    let block_sum = |block: &[f32]| {
        let mut lanes = [0.0f32; 8];
        let mut groups = block.chunks_exact(8);
        for group in &mut groups {
            for (lane, &x) in lanes.iter_mut().zip(group) {
                *lane += x * x;
            }
        }
        let tail: f32 = groups.remainder().iter().map(|&x| x * x).sum();
        (lanes.iter().sum::<f32>() + tail) as f64
    };
    if !worth_parallel(values.len()) {
        return values.chunks(1024).map(block_sum).sum();
    }
    // The same blocks' sums, formed in parallel and added in order: the same result
    // whatever the thread count.
    let sums: Vec<f64> = values
        .par_chunks(1024)
        .with_min_len(MIN_CHUNK / 1024)
        .map(block_sum)
        .collect();
    sums.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(chunk: Chunk<'_>) -> Vec<std::ops::Range<usize>> {
        chunk
            .grad
            .finite_blocks()
            .map(|(range, values)| {
                assert_eq!(values.len(), range.len());
                range
            })
            .collect()
    }

    #[test]
    fn sum_of_squares_is_the_same_at_any_thread_count() {
        // Large enough for the parallel path, which must add the same blocks' sums in
        // the same order as the serial one (a pool of one thread).
        let values: Vec<f32> = (0..300_001u64)
            .map(|i| ((i * 7919) % 2001) as f32 * 1e-3 - 1.0)
            .collect();
        let in_pool = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| sum_of_squares(&values))
        };
        let serial = in_pool(1);
        let exact: f64 = values.iter().map(|&x| x as f64 * x as f64).sum();
        assert!((serial - exact).abs() < 1e-6 * exact, "{serial} vs {exact}");
        for threads in [2, 3] {
            assert_eq!(
                in_pool(threads).to_bits(),
                serial.to_bits(),
                "{threads} threads"
            );
        }
    }

    #[test]
    fn unchecked_gradient_comes_as_one_block() {
        let (mut theta, mut grad) = (vec![0.0; 300], vec![1.0; 300]);
        grad[130] = f32::NAN;
        assert_eq!(blocks(Chunk::new(&mut theta, &grad, &mut [])), vec![0..300]);
    }

    #[test]
    fn checked_gradient_skips_and_flags_exactly_the_non_finite_blocks() {
        let (mut theta, mut grad) = (vec![0.0; 300], vec![1.0; 300]);
        let flag = AtomicBool::new(false);
        let all = blocks(Chunk::new(&mut theta, &grad, &mut []).checked(&flag));
        assert_eq!(
            all,
            vec![
                0..CHECK_BLOCK,
                CHECK_BLOCK..2 * CHECK_BLOCK,
                2 * CHECK_BLOCK..300
            ]
        );
        assert!(!flag.load(Ordering::Relaxed));

        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            grad[CHECK_BLOCK + 2] = bad;
            let finite = blocks(Chunk::new(&mut theta, &grad, &mut []).checked(&flag));
            assert_eq!(finite, vec![0..CHECK_BLOCK, 2 * CHECK_BLOCK..300], "{bad}");
            assert!(flag.swap(false, Ordering::Relaxed), "{bad}");
        }
        // The largest finite magnitude and subnormals are finite.
        grad[CHECK_BLOCK + 2] = -f32::MAX;
        grad[3] = f32::MIN_POSITIVE / 2.0;
        assert_eq!(
            blocks(Chunk::new(&mut theta, &grad, &mut []).checked(&flag)),
            all
        );
        assert!(!flag.load(Ordering::Relaxed));
    }
}
