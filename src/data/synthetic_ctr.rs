//! A seeded generator of Criteo-shaped click logs whose best possible model is known.
//!
//! - **39 fields**, as Criteo's 13 integers and 26 categories: by default 13 fields of
//!   10 to 80 values (bucketed integers) and 26 whose vocabularies grow geometrically
//!   from 3 to 20,000 values.
//! - **Power-law frequencies**: in a field of `n` values, value `r` (0-based) occurs with
//!   probability proportional to `(r + 1)^(-s)` (Zipf, `s` = 1.1 by default), so a few
//!   values are everywhere and most are rare, as in real click logs.
//! - **Labels from a planted FM** of dimension `k` (4 by default): every feature has a
//!   weight `w ~ N(0, σ_w²)` and a factor `v ~ N(0, σ_v² I)`, and an example's label is
//!   drawn as `y ~ Bernoulli(σ(w0 + Σ_i w_i + Σ_{i<j} <v_i, v_j>))`.
//!
//! The planted model's own AUC on the test set ([`SyntheticCtr::planted_test_auc`]) is
//! the ceiling for any model: labels are coin flips around its probabilities. A learned
//! FM should come close to it. Features are offset into one table by default (no
//! collisions), or hashed per field into [`SyntheticCtrConfig::table_size`] rows as
//! for Criteo.
//!
//! Everything is drawn from one [`SplitMix64`] stream (uniforms from its top 53 bits,
//! normals by Box–Muller), so a seed gives the same data on every platform and with
//! every version of the `rand` crates.

use super::ctr::{feature_row, CtrDataset, CtrExamples, SplitMix64, Token};
use crate::metrics::auc;

/// What to generate; `Default` is Criteo-shaped (see the [module documentation](self)).
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticCtrConfig {
    pub train_examples: usize,
    pub test_examples: usize,
    /// Values per field (one entry per field; each at least 1).
    pub cardinalities: Vec<usize>,
    /// The Zipf exponent `s` of the value frequencies within a field.
    pub zipf_exponent: f64,
    /// Dimension `k` of the planted factors.
    pub planted_dim: usize,
    /// The planted bias `w0` (sets the share of positives).
    pub bias: f32,
    /// Standard deviation σ_w of the planted linear weights.
    pub linear_std: f32,
    /// Standard deviation σ_v of each component of the planted factors.
    pub factor_std: f32,
    /// `None`: each field's values get their own block of rows (no collisions, the
    /// table has `Σ cardinalities` rows). `Some(n)`: values are hashed per field into
    /// `n` rows ([`feature_row`]), as for Criteo.
    pub table_size: Option<usize>,
    pub seed: u64,
}

/// The default vocabulary sizes: 13 bucketed-integer fields, then 26 categorical fields
/// growing geometrically from 3 to 20,000 values.
pub fn criteo_shaped_cardinalities() -> Vec<usize> {
    let integers = [50, 60, 40, 30, 80, 70, 40, 50, 70, 10, 30, 20, 40];
    let categories =
        (0..26).map(|j| (3.0 * (20_000.0f64 / 3.0).powf(j as f64 / 25.0)).round() as usize);
    integers.into_iter().chain(categories).collect()
}

impl Default for SyntheticCtrConfig {
    fn default() -> SyntheticCtrConfig {
        SyntheticCtrConfig {
            train_examples: 500_000,
            test_examples: 100_000,
            cardinalities: criteo_shaped_cardinalities(),
            zipf_exponent: 1.1,
            planted_dim: 4,
            bias: -1.2,
            linear_std: 0.13,
            factor_std: 0.12,
            table_size: None,
            seed: 0,
        }
    }
}

/// Generated click logs and the planted model's logits of every example.
#[derive(Clone, Debug)]
pub struct SyntheticCtr {
    pub data: CtrDataset,
    /// The planted logit of each training example.
    pub train_logits: Vec<f32>,
    /// The planted logit of each test example.
    pub test_logits: Vec<f32>,
}

/// The planted FM: a weight and a factor per value of every field.
struct Planted {
    weights: Vec<Vec<f32>>,
    /// Per field, `cardinality × dim` factors.
    factors: Vec<Vec<f32>>,
    dim: usize,
    bias: f32,
}

impl SyntheticCtr {
    /// Generate `config`'s data: the training examples first, then the test examples,
    /// from one stream seeded by `config.seed`.
    ///
    /// # Panics
    /// When a field has no values, there are no fields, or `table_size` is `Some(0)`.
    pub fn generate(config: &SyntheticCtrConfig) -> SyntheticCtr {
        let fields = config.cardinalities.len();
        assert!(fields > 0, "SyntheticCtr: no fields");
        assert!(
            config.cardinalities.iter().all(|&n| n > 0),
            "SyntheticCtr: a field without values"
        );
        assert!(
            config.table_size != Some(0),
            "SyntheticCtr: a table of 0 rows"
        );
        let mut rng = Stream(SplitMix64::new(config.seed));
        let planted = Planted {
            weights: config
                .cardinalities
                .iter()
                .map(|&n| rng.normals(n, config.linear_std))
                .collect(),
            factors: config
                .cardinalities
                .iter()
                .map(|&n| rng.normals(n * config.planted_dim, config.factor_std))
                .collect(),
            dim: config.planted_dim,
            bias: config.bias,
        };
        let cdfs: Vec<Vec<f64>> = config
            .cardinalities
            .iter()
            .map(|&n| zipf_cdf(n, config.zipf_exponent))
            .collect();
        let mut offsets = Vec::with_capacity(fields);
        let mut total = 0;
        for &n in &config.cardinalities {
            offsets.push(total);
            total += n;
        }
        let table_size = config.table_size.unwrap_or(total);

        let mut make = |count: usize| {
            let mut examples = CtrExamples::empty(fields, false);
            let mut logits = Vec::with_capacity(count);
            let (mut values, mut ids) = (vec![0usize; fields], vec![0u32; fields]);
            for _ in 0..count {
                for (f, cdf) in cdfs.iter().enumerate() {
                    let u = rng.uniform();
                    values[f] = cdf.partition_point(|&c| c <= u).min(cdf.len() - 1);
                    ids[f] = match config.table_size {
                        None => (offsets[f] + values[f]) as u32,
                        Some(n) => feature_row(f, Token::Category(values[f] as u64), n),
                    };
                }
                let logit = planted.logit(&values);
                let label = (rng.uniform() < sigmoid(logit)) as u8 as f32;
                examples.push(&ids, None, label);
                logits.push(logit as f32);
            }
            (examples, logits)
        };
        let (train, train_logits) = make(config.train_examples);
        let (test, test_logits) = make(config.test_examples);
        let field_names = (0..fields).map(|f| format!("F{}", f + 1)).collect();
        SyntheticCtr {
            data: CtrDataset {
                train,
                test,
                table_size,
                field_names,
            },
            train_logits,
            test_logits,
        }
    }

    /// The planted model's AUC on the test set (`None` when the test set lacks a class).
    pub fn planted_test_auc(&self) -> Option<f64> {
        auc(&self.test_logits, self.data.test.labels())
    }
}

impl Planted {
    /// `w0 + Σ_i w_i + Σ_{i<j} <v_i, v_j>` for one example's values, in f64.
    fn logit(&self, values: &[usize]) -> f64 {
        let mut linear = self.bias as f64;
        let mut sum = vec![0.0f64; self.dim];
        let mut sum_of_squares = 0.0f64;
        for (f, &value) in values.iter().enumerate() {
            linear += self.weights[f][value] as f64;
            let factor = &self.factors[f][value * self.dim..(value + 1) * self.dim];
            for (s, &v) in sum.iter_mut().zip(factor) {
                *s += v as f64;
                sum_of_squares += v as f64 * v as f64;
            }
        }
        linear + 0.5 * (sum.iter().map(|s| s * s).sum::<f64>() - sum_of_squares)
    }
}

/// `P(value ≤ r)` for `r = 0..n` under Zipf's law with exponent `s`; the last entry is 1.
fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut cdf: Vec<f64> = (1..=n).map(|r| (r as f64).powf(-s)).collect();
    let mut total = 0.0;
    for c in &mut cdf {
        total += *c;
        *c = total;
    }
    cdf.iter_mut().for_each(|c| *c /= total);
    cdf
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Uniforms and normals from SplitMix64.
struct Stream(SplitMix64);

impl Stream {
    /// Uniform in `[0, 1)`, from the top 53 bits.
    fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `n` draws from N(0, std²), by Box–Muller.
    fn normals(&mut self, n: usize, std: f32) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let (u1, u2) = (1.0 - self.uniform(), self.uniform()); // u1 in (0, 1]
            let radius = (-2.0 * u1.ln()).sqrt();
            let angle = std::f64::consts::TAU * u2;
            out.push((radius * angle.cos()) as f32 * std);
            out.push((radius * angle.sin()) as f32 * std);
        }
        out.truncate(n);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> SyntheticCtrConfig {
        SyntheticCtrConfig {
            train_examples: 20_000,
            test_examples: 5_000,
            cardinalities: vec![5, 100, 1000],
            seed,
            ..SyntheticCtrConfig::default()
        }
    }

    #[test]
    fn the_default_is_criteo_shaped() {
        let sizes = criteo_shaped_cardinalities();
        assert_eq!(sizes.len(), 39);
        assert_eq!((sizes[13], sizes[38]), (3, 20_000));
        assert!(sizes[13..].windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn frequencies_follow_the_power_law() {
        let data = SyntheticCtr::generate(&small(1));
        let mut counts = vec![0usize; 1000];
        for example in data.data.train.ids().chunks(3) {
            counts[example[2] as usize - 105] += 1;
        }
        // P(r) ∝ (r+1)^-1.1: value 0 is 2^1.1 = 2.14 times as frequent as value 1, and
        // 10^1.1 = 12.6 times as frequent as value 9.
        let ratio = |a: usize, b: usize| counts[a] as f64 / counts[b] as f64;
        assert!((ratio(0, 1) - 2.14).abs() < 0.2, "{}", ratio(0, 1));
        assert!((ratio(0, 9) - 12.6).abs() < 2.5, "{}", ratio(0, 9));
        assert!(counts[999] < counts[0] / 500);
    }

    #[test]
    fn seeds_reproduce_and_differ() {
        let a = SyntheticCtr::generate(&small(2));
        let b = SyntheticCtr::generate(&small(2));
        let c = SyntheticCtr::generate(&small(3));
        assert_eq!(a.data.train, b.data.train);
        assert_eq!(a.test_logits, b.test_logits);
        assert_ne!(a.data.train, c.data.train);
        assert_eq!(a.data.table_size, 1105);
        assert!(a.data.train.ids().iter().all(|&id| (id as usize) < 1105));
    }

    #[test]
    fn labels_follow_the_planted_probabilities() {
        let data = SyntheticCtr::generate(&small(4));
        // The mean label matches the mean planted probability, and the planted model
        // ranks the test set well above chance.
        let train = &data.data.train;
        let expected: f64 = data
            .train_logits
            .iter()
            .map(|&x| sigmoid(x as f64))
            .sum::<f64>()
            / train.len() as f64;
        assert!(
            (train.positive_fraction() - expected).abs() < 0.01,
            "{} vs {expected}",
            train.positive_fraction()
        );
        let planted = data.planted_test_auc().unwrap();
        assert!(
            planted > 0.55 && planted < 0.95,
            "planted AUC {planted} (3 fields: little signal)"
        );
    }

    #[test]
    fn hashing_puts_values_into_the_table() {
        let config = SyntheticCtrConfig {
            table_size: Some(64),
            ..small(5)
        };
        let data = SyntheticCtr::generate(&config);
        assert_eq!(data.data.table_size, 64);
        assert!(data.data.train.ids().iter().all(|&id| id < 64));
        // Same values as without hashing: only the rows differ.
        let plain = SyntheticCtr::generate(&small(5));
        assert_eq!(plain.data.train.labels(), data.data.train.labels());
    }
}
