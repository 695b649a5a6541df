//! Machinery shared by the per-parameter optimizers: per-parameter state, the fused-loop
//! driver (serial for small tensors, rayon divide-and-conquer for large ones), the
//! non-finite gradient check, and saving/loading state by parameter name.

use std::collections::HashMap;

use agdlab_autograd::{Gradients, Param};
use agdlab_tensor::Tensor;

use crate::optimizer::OptimError;
use crate::state::OptimizerState;

/// Tensors with more elements than this are split across rayon threads; smaller ones run
/// one serial loop (per-task overhead dominates small models).
pub(crate) const PAR_THRESHOLD: usize = 32 * 1024;

/// The slices one fused loop works on: a run of parameter elements, the matching gradient
/// elements and up to four state buffers. Buffers an optimizer does not use are empty.
///
/// Built over a whole parameter by [`Chunk::new`] and split by [`run_fused`]; an
/// [`UpdateRule`](crate::UpdateRule) destructures it in its element loop.
pub struct Chunk<'a> {
    /// Parameter elements, updated in place.
    pub theta: &'a mut [f32],
    /// The matching gradient elements.
    pub grad: &'a [f32],
    /// The matching elements of the state buffers, in the rule's buffer order; empty
    /// slices past the rule's last buffer.
    pub bufs: [&'a mut [f32]; 4],
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
    /// When `grad`'s length differs from `theta`'s, or `bufs` holds more than four buffers.
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
        let bufs = [next(), next(), next(), next()];
        assert!(it.next().is_none(), "optimizer step: at most 4 state buffers per parameter");
        Chunk { theta, grad, bufs }
    }

    fn len(&self) -> usize {
        self.theta.len()
    }

    fn split(self, mid: usize) -> (Chunk<'a>, Chunk<'a>) {
        let (t0, t1) = self.theta.split_at_mut(mid);
        let (g0, g1) = self.grad.split_at(mid);
        let [a, b, c, d] = self.bufs;
        let (a0, a1) = split_buf(a, mid);
        let (b0, b1) = split_buf(b, mid);
        let (c0, c1) = split_buf(c, mid);
        let (d0, d1) = split_buf(d, mid);
        (
            Chunk { theta: t0, grad: g0, bufs: [a0, b0, c0, d0] },
            Chunk { theta: t1, grad: g1, bufs: [a1, b1, c1, d1] },
        )
    }
}

/// Run `kernel` over `chunk`: directly when small, else halved recursively with
/// `rayon::join` until pieces are at most 32 Ki elements long. Returns the sum of the
/// kernel's counts (used by AGD to count SGD-mode coordinates). Allocates nothing.
///
/// The kernel sees each piece once, so it must treat elements independently.
pub fn run_fused<K>(chunk: Chunk<'_>, kernel: &K) -> usize
where
    K: Fn(Chunk<'_>) -> usize + Sync,
{
    let n = chunk.len();
    if n <= PAR_THRESHOLD {
        kernel(chunk)
    } else {
        let (lo, hi) = chunk.split(n / 2);
        let (a, b) = rayon::join(|| run_fused(lo, kernel), || run_fused(hi, kernel));
        a + b
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

/// The error for the first parameter (in order) whose gradient holds NaN or Inf.
pub(crate) fn check_finite(params: &[(String, Param)], grads: &Gradients) -> Result<(), OptimError> {
    for (name, p) in params {
        if let Some(g) = grads.get(p) {
            let finite = match g.as_slice() {
                Some(s) => all_finite(s),
                None => all_finite(&g.to_vec()),
            };
            if !finite {
                return Err(OptimError::NonFiniteGradient { param: name.clone() });
            }
        }
    }
    Ok(())
}

/// True when no element is NaN or ±Inf. Written as a branch-free `&` reduction over
/// blocks (rather than a short-circuiting `all`) so it vectorises.
fn all_finite(values: &[f32]) -> bool {
    values.chunks(4096).all(|block| block.iter().fold(true, |ok, x| ok & x.is_finite()))
}

/// The gradient of `p` as a contiguous slice, if it has one.
pub(crate) fn grad_slice<'g>(grads: &'g Gradients, p: &Param) -> Option<&'g [f32]> {
    grads.get(p).map(|g| g.as_slice().expect("Gradients hold contiguous tensors"))
}

/// Snapshot: `"lr"`, `"<name>.step"` for every parameter, `"<name>.<buffer>"` for every
/// initialised buffer.
pub(crate) fn save_state(
    kind: &str,
    lr: f32,
    params: &[(String, Param)],
    states: &[Option<ParamState>],
    buf_names: &[&str],
) -> OptimizerState {
    let mut out = OptimizerState { kind: kind.to_string(), ..Default::default() };
    out.scalars.push(("lr".to_string(), lr as f64));
    for ((name, p), st) in params.iter().zip(states) {
        let step = st.as_ref().map_or(0, |s| s.step);
        out.scalars.push((format!("{name}.step"), step as f64));
        if let Some(st) = st {
            let shape = p.shape();
            for (buf_name, buf) in buf_names.iter().zip(&st.bufs) {
                let t = Tensor::from_vec(buf.clone(), &shape)
                    .expect("optimizer buffer length matches its parameter");
                out.tensors.push((format!("{name}.{buf_name}"), t));
            }
        }
    }
    out
}

/// Validate `s` against this optimizer and build the per-parameter states it describes
/// (and the saved learning rate, if any). Modifies nothing.
pub(crate) fn load_state(
    kind: &str,
    params: &[(String, Param)],
    buf_names: &[&str],
    s: &OptimizerState,
) -> Result<(Vec<Option<ParamState>>, Option<f32>), OptimError> {
    if s.kind != kind {
        return Err(OptimError::KindMismatch { expected: kind.to_string(), found: s.kind.clone() });
    }
    // key -> (param index, None for the step count or Some(buffer index))
    let mut keys: HashMap<String, (usize, Option<usize>)> = HashMap::new();
    for (i, (name, _)) in params.iter().enumerate() {
        keys.insert(format!("{name}.step"), (i, None));
        for (b, buf_name) in buf_names.iter().enumerate() {
            keys.insert(format!("{name}.{buf_name}"), (i, Some(b)));
        }
    }
    let n = params.len();
    let mut steps: Vec<Option<u64>> = vec![None; n];
    let mut bufs: Vec<Vec<Option<Vec<f32>>>> = vec![vec![None; buf_names.len()]; n];
    let mut lr = None;
    for (key, value) in &s.scalars {
        if key == "lr" {
            if !(value.is_finite() && *value > 0.0) {
                return Err(OptimError::InvalidValue {
                    key: key.clone(),
                    reason: format!("learning rate {value} is not a positive number"),
                });
            }
            lr = Some(*value as f32);
            continue;
        }
        match keys.get(key) {
            Some(&(i, None)) => {
                if !(value.is_finite() && *value >= 0.0 && value.fract() == 0.0) {
                    return Err(OptimError::InvalidValue {
                        key: key.clone(),
                        reason: format!("step count {value} is not a non-negative integer"),
                    });
                }
                steps[i] = Some(*value as u64);
            }
            _ => return Err(OptimError::UnknownEntry { key: key.clone() }),
        }
    }
    for (key, t) in &s.tensors {
        match keys.get(key) {
            Some(&(i, Some(b))) => {
                let expected = params[i].1.shape();
                if t.shape() != &expected[..] {
                    return Err(OptimError::ShapeMismatch {
                        key: key.clone(),
                        expected,
                        found: t.shape().to_vec(),
                    });
                }
                bufs[i][b] = Some(t.to_vec());
            }
            _ => return Err(OptimError::UnknownEntry { key: key.clone() }),
        }
    }
    let mut states = Vec::with_capacity(n);
    for (i, (name, _)) in params.iter().enumerate() {
        let step =
            steps[i].ok_or_else(|| OptimError::MissingEntry { param: name.clone(), entry: "step".into() })?;
        if step == 0 {
            if let Some(b) = bufs[i].iter().position(|b| b.is_some()) {
                return Err(OptimError::InvalidValue {
                    key: format!("{name}.{}", buf_names[b]),
                    reason: "buffer present but the parameter's step count is 0".into(),
                });
            }
            states.push(None);
            continue;
        }
        let mut st = ParamState { step, bufs: Vec::with_capacity(buf_names.len()) };
        for (b, buf) in bufs[i].iter_mut().enumerate() {
            let v = buf.take().ok_or_else(|| OptimError::MissingEntry {
                param: name.clone(),
                entry: buf_names[b].to_string(),
            })?;
            st.bufs.push(v);
        }
        states.push(Some(st));
    }
    Ok((states, lr))
}
