//! What an optimizer measured in its last step, in one shape for every optimizer.
//!
//! A rule gathers its statistics inside its fused element loop (AGD counts the
//! coordinates that took the SGD branch) and turns them into named values per parameter;
//! [`Diagnostics`] holds those, and averages them over the model weighted by parameter
//! size. A comparison tool reads any optimizer the same way:
//!
//! ```text
//! if let Some(fraction) = optimizer.diagnostics().overall(SGD_MODE_FRACTION) { ... }
//! ```

/// AGD's fraction of coordinates whose step was a momentum-SGD step (sqrt(b_t) ≤
/// δ·sqrt(1-β2^t)) rather than an adaptive one.
pub const SGD_MODE_FRACTION: &str = "sgd_mode_fraction";

/// AGD's switching monitor: the fraction of coordinates whose mode (SGD or adaptive)
/// differs from the previous step's.
pub const MODE_FLIP_FRACTION: &str = "mode_flip_fraction";

/// Statistics a rule gathers in its fused loop over one parameter, summed over the
/// pieces the loop is split into. `()` gathers nothing.
pub trait StepStats: Default + Send {
    /// Combine the statistics of two pieces of one parameter.
    fn merge(self, other: Self) -> Self;

    /// Named values for a parameter of `numel` elements (fractions, usually).
    fn report(&self, numel: usize) -> Vec<(&'static str, f64)>;
}

impl StepStats for () {
    fn merge(self, _other: ()) {}

    fn report(&self, _numel: usize) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
}

/// One parameter's values from the last step.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamReport {
    pub name: String,
    pub numel: usize,
    pub values: Vec<(&'static str, f64)>,
}

/// What the last step measured, for every parameter it updated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diagnostics {
    /// In parameter order; parameters that got no gradient in the last step are absent.
    pub per_param: Vec<ParamReport>,
}

impl Diagnostics {
    /// True when nothing was measured (an optimizer without diagnostics, or no step yet).
    pub fn is_empty(&self) -> bool {
        self.per_param.iter().all(|p| p.values.is_empty())
    }

    /// The names of the values reported, in first-seen order.
    pub fn keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        for (key, _) in self.per_param.iter().flat_map(|p| &p.values) {
            if !keys.contains(key) {
                keys.push(*key);
            }
        }
        keys
    }

    /// `key` over the whole model: the mean of the parameters' values weighted by their
    /// element counts (so a fraction of coordinates stays a fraction of coordinates).
    /// `None` when no parameter reported it.
    pub fn overall(&self, key: &str) -> Option<f64> {
        let (mut sum, mut count) = (0.0, 0usize);
        for p in &self.per_param {
            if let Some((_, v)) = p.values.iter().find(|(k, _)| *k == key) {
                sum += v * p.numel as f64;
                count += p.numel;
            }
        }
        (count > 0).then(|| sum / count as f64)
    }

    /// `key` per parameter that reported it, in parameter order.
    pub fn per_param(&self, key: &str) -> Vec<(&str, f64)> {
        self.per_param
            .iter()
            .filter_map(|p| {
                p.values
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (p.name.as_str(), *v))
            })
            .collect()
    }
}
