//! What one optimizer does to one parameter ([`UpdateRule`]), and the one [`Optimizer`]
//! built on top of any such rule ([`PerParameter`]).
//!
//! The split follows burn's `SimpleOptimizer` and PyTorch's per-parameter `state`: a rule
//! holds the hyper-parameters and the math (bias corrections from the step count, then one
//! fused element loop over the parameter, its gradient and its state buffers);
//! [`PerParameter`] holds the named parameters, their groups and their states, and does
//! everything else once for every optimizer: the non-finite gradient check, skipping
//! parameters without a gradient, row-sparse gradients, creating state at a parameter's
//! first step, counting steps, per-group hyper-parameters and learning-rate scaling,
//! saving and loading state by parameter name, and the diagnostics report.

use std::collections::{HashMap, HashSet};

use agdlab_autograd::{Grad, Gradients, Param, RowSparse};
use agdlab_tensor::Tensor;

use crate::diagnostics::{Diagnostics, ParamReport, StepStats};
use crate::group::{ParamGroup, SparseMode};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::kernel::{all_finite, Chunk, ParamState, MAX_BUFFERS};
use crate::optimizer::{OptimError, Optimizer};
use crate::state::OptimizerState;

/// The largest step count a state may hold: f64 holds integers exactly up to 2^53.
pub const MAX_STEP: u64 = 1 << 53;

/// The per-parameter math of an optimizer: how one parameter tensor and its state buffers
/// change given its gradient. Wrap a rule in [`PerParameter`] to get an [`Optimizer`].
///
/// See the crate documentation ("Adding an optimizer") for a complete example.
pub trait UpdateRule: Clone + Send + Sync {
    /// What the fused loop measures (AGD: its SGD-mode count); `()` for nothing.
    type Stats: StepStats;

    /// A short name such as `"AGD"`; also the `kind` of the saved state, so two rules whose
    /// states differ in meaning (Adam and AdamW) must have different names.
    fn name(&self) -> &'static str;

    /// Every hyper-parameter a parameter group may set, with its current value, named as
    /// PyTorch's param groups name them. Must include `"lr"`.
    fn hyperparams(&self) -> Vec<(&'static str, f64)>;

    /// Set hyper-parameter `name` (one of [`UpdateRule::hyperparams`]).
    ///
    /// # Errors
    /// [`OptimError::UnknownHyperparameter`] for another name,
    /// [`OptimError::InvalidHyperparameter`] for a value out of range. The learning rate
    /// may be 0 here (the end of a schedule); a group's initial learning rate is checked
    /// to be positive by [`PerParameter`].
    fn set_hyperparam(&mut self, name: &str, value: f64) -> Result<(), OptimError>;

    /// The names of the state buffers, in the order [`UpdateRule::update`] receives them
    /// (for example `["exp_avg", "exp_avg_sq"]`). Each buffer has its parameter's length
    /// and starts at zero. Saved state is keyed `"<param>.<buffer>"`.
    fn buffers(&self) -> &'static [&'static str] {
        &[]
    }

    /// The buffers that can never be negative (second moments): loading a state where
    /// they are is refused.
    fn nonnegative_buffers(&self) -> &'static [&'static str] {
        &[]
    }

    /// Called once, at a parameter's first step (not after loading a state with a
    /// positive step count), before [`UpdateRule::update`], with the parameter's value and
    /// its freshly zeroed buffers. The default does nothing.
    fn init(&self, theta: &[f32], bufs: &mut [Vec<f32>]) {
        let _ = (theta, bufs);
    }

    /// Update one parameter in place: hand `chunk` (the parameter, its gradient and the
    /// buffers named by [`UpdateRule::buffers`], in that order) to [`run_fused`] with the
    /// element loop. `step` is this parameter's step count including the current step (1
    /// at its first step).
    ///
    /// Go through [`run_fused`] (it splits large tensors across threads), and read the
    /// gradient with [`Gradient::finite_blocks`], block by block inside the element loop:
    /// each block is checked for NaN and ±Inf just before it comes, and one that fails is
    /// skipped and reported, so no non-finite value reaches the parameter or the state.
    ///
    /// [`run_fused`]: crate::run_fused
    /// [`Gradient::finite_blocks`]: crate::Gradient::finite_blocks
    fn update(&self, step: u64, chunk: Chunk<'_>) -> Self::Stats;

    /// The current learning rate (the `"lr"` hyper-parameter).
    fn lr(&self) -> f32 {
        self.hyperparams()
            .iter()
            .find(|(n, _)| *n == "lr")
            .map_or(0.0, |(_, v)| *v as f32)
    }
}

/// Check a hyper-parameter value against a range, for [`UpdateRule::set_hyperparam`].
pub fn check_hyperparam(
    optimizer: &'static str,
    name: &str,
    value: f64,
    valid: bool,
    expected: &str,
) -> Result<f64, OptimError> {
    if valid && !value.is_nan() {
        Ok(value)
    } else {
        Err(OptimError::InvalidHyperparameter {
            optimizer,
            name: name.to_string(),
            value,
            expected: expected.to_string(),
        })
    }
}

/// The error for a hyper-parameter name a rule does not have.
pub fn unknown_hyperparam<R: UpdateRule>(rule: &R, name: &str) -> OptimError {
    OptimError::UnknownHyperparameter {
        optimizer: rule.name(),
        name: name.to_string(),
        known: rule.hyperparams().into_iter().map(|(n, _)| n).collect(),
    }
}

/// The fields the Adam family (Adam, AdamW, AdaBelief, RAdam) exposes to parameter
/// groups: `lr`, `beta1`, `beta2`, `eps` and `weight_decay`.
pub(crate) struct AdamFamily<'a> {
    pub optimizer: &'static str,
    pub lr: &'a mut f32,
    pub betas: &'a mut (f32, f32),
    pub eps: &'a mut f32,
    pub weight_decay: &'a mut f32,
}

impl AdamFamily<'_> {
    pub fn hyperparams(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", *self.lr as f64),
            ("beta1", self.betas.0 as f64),
            ("beta2", self.betas.1 as f64),
            ("eps", *self.eps as f64),
            ("weight_decay", *self.weight_decay as f64),
        ]
    }

    /// Set `name`; `Ok(false)` when it is not one of these.
    pub fn set(self, name: &str, value: f64) -> Result<bool, OptimError> {
        let check = |valid: bool, expected: &str| {
            check_hyperparam(self.optimizer, name, value, valid, expected)
        };
        let finite_nonnegative = value >= 0.0 && value.is_finite();
        match name {
            "lr" => *self.lr = check(finite_nonnegative, "a finite number >= 0")? as f32,
            "beta1" => {
                self.betas.0 = check((0.0..1.0).contains(&value), "a number in [0, 1)")? as f32
            }
            "beta2" => {
                self.betas.1 = check((0.0..1.0).contains(&value), "a number in [0, 1)")? as f32
            }
            "eps" => *self.eps = check(finite_nonnegative, "a finite number >= 0")? as f32,
            "weight_decay" => {
                *self.weight_decay = check(finite_nonnegative, "a finite number >= 0")? as f32
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Validate every hyper-parameter of a freshly configured rule, and its learning rate
/// as an initial one (positive).
pub(crate) fn validated<R: UpdateRule>(mut rule: R) -> Result<R, OptimError> {
    for (name, value) in rule.hyperparams() {
        rule.set_hyperparam(name, value)?;
    }
    let lr = rule.lr();
    check_hyperparam(rule.name(), "lr", lr as f64, lr > 0.0, "a positive number")?;
    Ok(rule)
}

/// One group's rule (its hyper-parameters) and how it scales and applies gradients.
#[derive(Clone, Debug)]
struct GroupState<R> {
    rule: R,
    initial_lr: f32,
    sparse: SparseMode,
}

/// An [`Optimizer`] that applies an [`UpdateRule`] to each named parameter separately,
/// keeping one state (step count and buffers) per parameter and one rule (set of
/// hyper-parameters) per parameter group.
///
/// Every optimizer of this crate is one: [`Agd`](crate::Agd) is
/// `PerParameter<AgdRule>`, [`Adam`](crate::Adam) is `PerParameter<AdamRule>`, and so on.
pub struct PerParameter<R: UpdateRule> {
    params: Vec<(String, Param)>,
    group_of: Vec<usize>,
    groups: Vec<GroupState<R>>,
    /// `None` until the parameter's first step.
    states: Vec<Option<ParamState>>,
    /// What the rule measured on each parameter in the last step (and its size).
    last: Vec<Option<(R::Stats, usize)>>,
    /// A dense gradient buffer per parameter, kept between steps, for row-sparse
    /// gradients in [`SparseMode::Dense`]: the touched rows are written in, the update
    /// runs, the rows are zeroed again. Allocated on first use.
    sparse_scratch: Vec<Vec<f32>>,
}

impl<R: UpdateRule> PerParameter<R> {
    /// An optimizer over `params` (in this order), one group, updated with `rule`.
    ///
    /// # Errors
    /// As [`PerParameter::with_rule_groups`].
    pub fn with_rule(params: Vec<(String, Param)>, rule: R) -> Result<PerParameter<R>, OptimError> {
        PerParameter::with_rule_groups(vec![ParamGroup::new(params)], rule)
    }

    /// An optimizer over parameter groups: each group's hyper-parameters are `rule`'s,
    /// with the group's overrides applied.
    ///
    /// # Errors
    /// An override naming no hyper-parameter of the rule, a value out of range, an
    /// initial learning rate that is not positive, or a parameter (or name) in two places.
    ///
    /// # Panics
    /// When the rule names more than [`MAX_BUFFERS`] buffers (the most a
    /// [`Chunk`] carries).
    pub fn with_rule_groups(
        groups: Vec<ParamGroup>,
        rule: R,
    ) -> Result<PerParameter<R>, OptimError> {
        assert!(
            rule.buffers().len() <= MAX_BUFFERS,
            "{}: at most {MAX_BUFFERS} state buffers per parameter",
            rule.name()
        );
        let mut params = Vec::new();
        let mut group_of = Vec::new();
        let mut states = Vec::new();
        let mut seen_ids = HashSet::new();
        let mut seen_names = HashSet::new();
        for (g, group) in groups.iter().enumerate() {
            for (name, p) in &group.params {
                if !seen_ids.insert(p.id()) || !seen_names.insert(name.clone()) {
                    return Err(OptimError::DuplicateParameter { name: name.clone() });
                }
                params.push((name.clone(), p.clone()));
                group_of.push(g);
                states.push(None);
            }
        }
        let mut group_states = Vec::with_capacity(groups.len());
        for group in &groups {
            let mut group_rule = rule.clone();
            for (name, value) in &group.options {
                group_rule.set_hyperparam(name, *value)?;
            }
            let initial_lr = group_rule.lr();
            check_hyperparam(
                rule.name(),
                "lr",
                initial_lr as f64,
                initial_lr > 0.0,
                "a positive number",
            )?;
            group_states.push(GroupState {
                rule: group_rule,
                initial_lr,
                sparse: group.sparse,
            });
        }
        let n = params.len();
        Ok(PerParameter {
            params,
            group_of,
            groups: group_states,
            states,
            last: (0..n).map(|_| None).collect(),
            sparse_scratch: vec![Vec::new(); n],
        })
    }

    /// The first group's rule (and through it the hyper-parameters).
    pub fn rule(&self) -> &R {
        &self.groups[0].rule
    }

    /// The rule of `group`.
    ///
    /// # Panics
    /// When there is no such group.
    pub fn group_rule(&self, group: usize) -> &R {
        &self.groups[group].rule
    }
}

impl<R: UpdateRule> Optimizer for PerParameter<R> {
    fn step(&mut self, grads: &Gradients) -> Result<(), OptimError> {
        for i in 0..self.params.len() {
            self.last[i] = None;
            let Some(grad) = grads.get(&self.params[i].1) else {
                continue;
            };
            let group = &self.groups[self.group_of[i]];
            let (p, rule) = (&self.params[i].1, &group.rule);
            let numel = p.numel();
            assert_eq!(
                grad.shape(),
                &p.shape()[..],
                "optimizer step: gradient of `{}` has shape {:?}, parameter has {:?}",
                self.params[i].0,
                grad.shape(),
                p.shape()
            );
            let non_finite_error = || OptimError::NonFiniteGradient {
                param: self.params[i].0.clone(),
            };
            // A row-sparse gradient holds only the touched rows: check them all before
            // anything of this parameter changes (a dense one is checked block by block
            // in the fused loop, as it is read).
            if let Grad::RowSparse(rows) = grad {
                if !all_finite(
                    rows.values()
                        .as_slice()
                        .expect("row-sparse values are contiguous"),
                ) {
                    return Err(non_finite_error());
                }
            }
            let fresh = self.states[i].is_none();
            let st = self.states[i]
                .get_or_insert_with(|| ParamState::zeros(rule.buffers().len(), numel));
            st.step += 1;
            let scratch = &mut self.sparse_scratch[i];
            let non_finite = AtomicBool::new(false);
            let stats = p.update(|theta| {
                if fresh {
                    rule.init(theta, &mut st.bufs);
                }
                match grad {
                    Grad::Dense(g) => {
                        let g = g.as_slice().expect("Gradients hold contiguous tensors");
                        rule.update(
                            st.step,
                            Chunk::new(theta, g, &mut st.bufs).checked(&non_finite),
                        )
                    }
                    Grad::RowSparse(rows) => match group.sparse {
                        SparseMode::Dense => update_dense_from_rows(rule, st, theta, rows, scratch),
                        SparseMode::Lazy => update_touched_rows(rule, st, theta, rows),
                    },
                }
            });
            if non_finite.load(Ordering::Relaxed) {
                return Err(non_finite_error());
            }
            self.last[i] = Some((stats, numel));
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        self.groups[0].rule.name()
    }

    fn params(&self) -> &[(String, Param)] {
        &self.params
    }

    fn num_groups(&self) -> usize {
        self.groups.len()
    }

    fn group_lr(&self, group: usize) -> f32 {
        self.groups[group].rule.lr()
    }

    fn set_lr_factor(&mut self, factor: f64) {
        assert!(
            factor.is_finite() && factor >= 0.0,
            "set_lr_factor: factor {factor} is not a finite number >= 0"
        );
        for group in &mut self.groups {
            let lr = group.initial_lr as f64 * factor;
            group
                .rule
                .set_hyperparam("lr", lr)
                .expect("a learning rate >= 0 is always valid");
        }
    }

    fn state(&self) -> OptimizerState {
        let mut out = OptimizerState {
            kind: self.name().to_string(),
            ..Default::default()
        };
        for (g, group) in self.groups.iter().enumerate() {
            for (name, value) in group.rule.hyperparams() {
                out.scalars.push((format!("group.{g}.{name}"), value));
            }
            out.scalars
                .push((format!("group.{g}.initial_lr"), group.initial_lr as f64));
        }
        let buf_names = self.groups[0].rule.buffers();
        for (((name, p), st), &g) in self.params.iter().zip(&self.states).zip(&self.group_of) {
            let step = st.as_ref().map_or(0, |s| s.step);
            out.scalars.push((format!("{name}.step"), step as f64));
            out.scalars.push((format!("{name}.group"), g as f64));
            if let Some(st) = st {
                let shape = p.shape();
                for (buf_name, buf) in buf_names.iter().zip(&st.bufs) {
                    let t = Tensor::from_vec(buf.clone(), &shape)
                        .expect("a buffer has its parameter's length");
                    out.tensors.push((format!("{name}.{buf_name}"), t));
                }
            }
        }
        out
    }

    fn load_state(&mut self, s: &OptimizerState) -> Result<(), OptimError> {
        let rule = &self.groups[0].rule;
        let loaded = LoadedState::read(
            rule.name(),
            &self.params,
            &self.group_of,
            self.groups.len(),
            rule.buffers(),
            rule.nonnegative_buffers(),
            s,
        )?;
        self.states = loaded.states;
        for (group, lr) in self.groups.iter_mut().zip(loaded.lrs) {
            if let Some(lr) = lr {
                group.rule.set_hyperparam("lr", lr)?;
            }
        }
        self.last.iter_mut().for_each(|l| *l = None);
        Ok(())
    }

    fn diagnostics(&self) -> Diagnostics {
        let per_param = self
            .params
            .iter()
            .zip(&self.last)
            .filter_map(|((name, _), last)| {
                let (stats, numel) = last.as_ref()?;
                Some(ParamReport {
                    name: name.clone(),
                    numel: *numel,
                    values: stats.report(*numel),
                })
            })
            .collect();
        Diagnostics { per_param }
    }
}

/// [`SparseMode::Dense`]: write the touched rows into the parameter's dense scratch
/// gradient, run the ordinary update over the whole parameter, then zero those rows
/// again so the scratch is all zeros for the next step.
fn update_dense_from_rows<R: UpdateRule>(
    rule: &R,
    st: &mut ParamState,
    theta: &mut [f32],
    rows: &RowSparse,
    scratch: &mut Vec<f32>,
) -> R::Stats {
    if scratch.len() != theta.len() {
        *scratch = vec![0.0; theta.len()];
    }
    let row_len = rows.row_len();
    let values = rows
        .values()
        .as_slice()
        .expect("row-sparse values are contiguous");
    for (k, &r) in rows.rows().iter().enumerate() {
        scratch[r * row_len..(r + 1) * row_len]
            .copy_from_slice(&values[k * row_len..(k + 1) * row_len]);
    }
    let stats = rule.update(st.step, Chunk::new(theta, scratch, &mut st.bufs));
    for &r in rows.rows() {
        scratch[r * row_len..(r + 1) * row_len].fill(0.0);
    }
    stats
}

/// [`SparseMode::Lazy`]: gather the touched rows of the parameter and of its buffers
/// into compact copies, update those, and write them back.
fn update_touched_rows<R: UpdateRule>(
    rule: &R,
    st: &mut ParamState,
    theta: &mut [f32],
    rows: &RowSparse,
) -> R::Stats {
    let row_len = rows.row_len();
    let gather = |full: &[f32]| -> Vec<f32> {
        rows.rows()
            .iter()
            .flat_map(|&r| full[r * row_len..(r + 1) * row_len].iter().copied())
            .collect()
    };
    let mut compact_theta = gather(theta);
    let mut compact_bufs: Vec<Vec<f32>> = st.bufs.iter().map(|b| gather(b)).collect();
    let values = rows
        .values()
        .as_slice()
        .expect("row-sparse values are contiguous");
    let stats = rule.update(
        st.step,
        Chunk::new(&mut compact_theta, values, &mut compact_bufs),
    );
    let scatter = |full: &mut [f32], compact: &[f32]| {
        for (k, &r) in rows.rows().iter().enumerate() {
            full[r * row_len..(r + 1) * row_len]
                .copy_from_slice(&compact[k * row_len..(k + 1) * row_len]);
        }
    };
    scatter(theta, &compact_theta);
    for (full, compact) in st.bufs.iter_mut().zip(&compact_bufs) {
        scatter(full, compact);
    }
    stats
}

/// A state read from an [`OptimizerState`] and checked against an optimizer.
struct LoadedState {
    states: Vec<Option<ParamState>>,
    /// Each group's saved current learning rate, if the state has one.
    lrs: Vec<Option<f64>>,
}

impl LoadedState {
    /// Validate `s` against the optimizer described by the other arguments and build the
    /// per-parameter states it describes. Modifies nothing.
    fn read(
        kind: &str,
        params: &[(String, Param)],
        group_of: &[usize],
        num_groups: usize,
        buf_names: &[&str],
        nonnegative: &[&str],
        s: &OptimizerState,
    ) -> Result<LoadedState, OptimError> {
        if s.kind != kind {
            return Err(OptimError::KindMismatch {
                expected: kind.to_string(),
                found: s.kind.clone(),
            });
        }
        let invalid = |key: &str, reason: String| OptimError::InvalidValue {
            key: key.to_string(),
            reason,
        };
        // key -> (param index, what)
        enum Entry {
            Step,
            Group,
            Buffer(usize),
        }
        let mut keys: HashMap<String, (usize, Entry)> = HashMap::new();
        for (i, (name, _)) in params.iter().enumerate() {
            keys.insert(format!("{name}.step"), (i, Entry::Step));
            keys.insert(format!("{name}.group"), (i, Entry::Group));
            for (b, buf_name) in buf_names.iter().enumerate() {
                keys.insert(format!("{name}.{buf_name}"), (i, Entry::Buffer(b)));
            }
        }
        let n = params.len();
        let mut steps: Vec<Option<u64>> = vec![None; n];
        let mut bufs: Vec<Vec<Option<Vec<f32>>>> = vec![vec![None; buf_names.len()]; n];
        let mut lrs = vec![None; num_groups];
        for &(ref key, value) in &s.scalars {
            if let Some(rest) = key.strip_prefix("group.") {
                let (g, hyper) = rest
                    .split_once('.')
                    .ok_or_else(|| OptimError::UnknownEntry { key: key.clone() })?;
                let g: usize = g
                    .parse()
                    .map_err(|_| OptimError::UnknownEntry { key: key.clone() })?;
                if g >= num_groups {
                    return Err(invalid(
                        key,
                        format!("the optimizer has {num_groups} parameter group(s)"),
                    ));
                }
                if !value.is_finite() {
                    return Err(invalid(key, format!("{value} is not a finite number")));
                }
                if hyper == "lr" {
                    if value < 0.0 {
                        return Err(invalid(key, format!("learning rate {value} is negative")));
                    }
                    lrs[g] = Some(value);
                }
                continue;
            }
            if key == "lr" {
                // Format of agdlab 0.1: one learning rate for the one group.
                if !(value.is_finite() && value >= 0.0) {
                    return Err(invalid(
                        key,
                        format!("learning rate {value} is not a number >= 0"),
                    ));
                }
                lrs.iter_mut().for_each(|lr| *lr = Some(value));
                continue;
            }
            match keys.get(key) {
                Some((i, Entry::Step)) => {
                    if !(value.is_finite()
                        && value >= 0.0
                        && value.fract() == 0.0
                        && value <= MAX_STEP as f64)
                    {
                        return Err(invalid(
                            key,
                            format!("step count {value} is not an integer in 0..=2^53"),
                        ));
                    }
                    steps[*i] = Some(value as u64);
                }
                Some((i, Entry::Group)) => {
                    if value != group_of[*i] as f64 {
                        return Err(invalid(
                            key,
                            format!(
                                "the parameter was saved in group {value}, but is in group {} of this optimizer",
                                group_of[*i]
                            ),
                        ));
                    }
                }
                _ => return Err(OptimError::UnknownEntry { key: key.clone() }),
            }
        }
        for (key, t) in &s.tensors {
            let Some((i, Entry::Buffer(b))) = keys.get(key) else {
                return Err(OptimError::UnknownEntry { key: key.clone() });
            };
            let expected = params[*i].1.shape();
            if t.shape() != &expected[..] {
                return Err(OptimError::ShapeMismatch {
                    key: key.clone(),
                    expected,
                    found: t.shape().to_vec(),
                });
            }
            let values = t.to_vec();
            if !all_finite(&values) {
                return Err(invalid(key, "holds NaN or Inf".into()));
            }
            if nonnegative.contains(&buf_names[*b]) {
                if let Some(v) = values.iter().find(|&&v| v < 0.0) {
                    return Err(invalid(
                        key,
                        format!("a second moment cannot be negative, found {v}"),
                    ));
                }
            }
            bufs[*i][*b] = Some(values);
        }
        let mut states = Vec::with_capacity(n);
        for (i, (name, _)) in params.iter().enumerate() {
            let step = steps[i].ok_or_else(|| OptimError::MissingEntry {
                param: name.clone(),
                entry: "step".into(),
            })?;
            if step == 0 {
                if let Some(b) = bufs[i].iter().position(|b| b.is_some()) {
                    return Err(invalid(
                        &format!("{name}.{}", buf_names[b]),
                        "buffer present but the parameter's step count is 0".into(),
                    ));
                }
                states.push(None);
                continue;
            }
            let mut st = ParamState {
                step,
                bufs: Vec::with_capacity(buf_names.len()),
            };
            for (b, buf) in bufs[i].iter_mut().enumerate() {
                let v = buf.take().ok_or_else(|| OptimError::MissingEntry {
                    param: name.clone(),
                    entry: buf_names[b].to_string(),
                })?;
                st.bufs.push(v);
            }
            states.push(Some(st));
        }
        Ok(LoadedState { states, lrs })
    }
}

impl<R: UpdateRule> std::fmt::Debug for PerParameter<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct(self.name())
            .field("params", &names)
            .field(
                "groups",
                &self
                    .groups
                    .iter()
                    .map(|g| g.rule.hyperparams())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
