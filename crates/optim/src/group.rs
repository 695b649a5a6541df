//! Parameter groups: sets of parameters with their own hyper-parameters.
//!
//! The usual recipe for ResNets and Transformers decays the weight matrices but not the
//! biases and normalisation parameters:
//!
//! ```
//! use agdlab_autograd::Param;
//! use agdlab_optim::{Agd, AgdConfig, Optimizer, ParamGroup};
//! use agdlab_tensor::Tensor;
//!
//! let params = vec![
//!     ("fc.weight".to_string(), Param::new(Tensor::ones(&[4, 3]))),
//!     ("fc.bias".to_string(), Param::new(Tensor::zeros(&[4]))),
//! ];
//! // Matrices keep the configured weight decay; vectors (biases, norms) get none.
//! let groups = ParamGroup::split(params, |_, p| p.shape().len() >= 2, |g| g.set("weight_decay", 0.0));
//! let opt = Agd::with_groups(groups, AgdConfig { weight_decay: 0.01, ..Default::default() }).unwrap();
//! assert_eq!(opt.num_groups(), 2);
//! ```
//!
//! PyTorch equivalent: `Optimizer([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])`.

use agdlab_autograd::Param;

/// What an optimizer does with a row-sparse gradient (an embedding's touched rows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SparseMode {
    /// As if the gradient were dense with zero rows elsewhere: every row's moments decay
    /// and every row moves, exactly as the dense update and as the paper's optimizers
    /// do. The step costs as much as a dense one.
    #[default]
    Dense,
    /// Only the touched rows are updated; the other rows' parameters and state stay as
    /// they are, as in PyTorch's `SparseAdam`. The parameter's step count (and so its
    /// bias corrections) still advances every step. Much cheaper for large tables, but a
    /// different algorithm: a row's moments only decay when it is touched, and AGD's
    /// stepwise difference compares a row's momentum with its value at its last touch.
    Lazy,
}

/// Parameters that share hyper-parameters. Options not set here come from the
/// optimizer's configuration.
#[derive(Clone, Debug)]
pub struct ParamGroup {
    pub params: Vec<(String, Param)>,
    /// Hyper-parameter overrides by name (`"lr"`, `"weight_decay"`, `"delta"`, ...), as
    /// PyTorch's param-group dictionaries spell them.
    pub options: Vec<(String, f64)>,
    pub sparse: SparseMode,
}

impl ParamGroup {
    /// A group with no overrides.
    pub fn new(params: Vec<(String, Param)>) -> ParamGroup {
        ParamGroup {
            params,
            options: Vec::new(),
            sparse: SparseMode::default(),
        }
    }

    /// Override hyper-parameter `name` for this group (checked when the optimizer is
    /// built: an unknown name or a bad value is an error there).
    pub fn set(mut self, name: &str, value: f64) -> ParamGroup {
        self.options.retain(|(n, _)| n != name);
        self.options.push((name.to_string(), value));
        self
    }

    /// How this group's row-sparse gradients are applied.
    pub fn sparse(mut self, mode: SparseMode) -> ParamGroup {
        self.sparse = mode;
        self
    }

    /// Split `params` into the ones `keep` selects (a group with no overrides) and the
    /// rest (a group that `others` configures), keeping their order within each group.
    /// Empty groups are left out.
    pub fn split(
        params: Vec<(String, Param)>,
        keep: impl Fn(&str, &Param) -> bool,
        others: impl FnOnce(ParamGroup) -> ParamGroup,
    ) -> Vec<ParamGroup> {
        let (kept, rest): (Vec<_>, Vec<_>) = params.into_iter().partition(|(n, p)| keep(n, p));
        let mut groups = Vec::new();
        if !kept.is_empty() {
            groups.push(ParamGroup::new(kept));
        }
        if !rest.is_empty() {
            groups.push(others(ParamGroup::new(rest)));
        }
        groups
    }
}
