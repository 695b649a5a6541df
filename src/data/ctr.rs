//! Click logs as a factorization machine reads them, whatever file they came from.
//!
//! An example is `F` fields (user, item, ad id, ...). Each field holds one feature,
//! stored as the row of one shared table that the model looks up, and optionally a
//! numeric value (1 for a plain categorical feature), plus a 0/1 label (clicked or
//! not). [`CtrExamples`] holds `n` such examples in flat arrays; [`CtrExamples::batch`]
//! cuts out the tensors of one training step.
//!
//! How values become rows is the reader's choice:
//! - **offsets**, when every field's vocabulary is known (MovieLens: user `u` of field 0
//!   is row `u`, item `i` is row `943 + i`, ...): no two features share a row;
//! - **per-field hashing** ([`feature_row`]), when it is not (Criteo's 26 categorical
//!   fields hold millions of values): the field and the value are hashed together into
//!   a table of a chosen size, so the same value in two fields gets two rows, and rare
//!   values sometimes share one (the "hashing trick").
//!
//! Splits are seeded permutations from [`SplitMix64`], a ten-line generator that any
//! language reproduces (`benches/pytorch_fm.py` builds the same MovieLens split).

use std::fmt;

use crate::tensor::Tensor;

use super::DataError;

/// `n` examples of `F` fields: the table row of each field, optional numeric values and
/// a label per example.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CtrExamples {
    num_fields: usize,
    /// `n·F` table rows, example by example.
    ids: Vec<u32>,
    /// `n·F` numeric values (absent: all 1).
    values: Option<Vec<f32>>,
    /// `n` labels, 0 or 1.
    labels: Vec<f32>,
}

/// The tensors of one step: what [`FactorizationMachine::forward`] takes, and the
/// targets of `bce_with_logits`.
///
/// [`FactorizationMachine::forward`]: crate::nn::FactorizationMachine::forward
#[derive(Clone, Debug)]
pub struct CtrBatch {
    /// `B·F` table rows.
    pub ids: Vec<usize>,
    /// `[B, F]` numeric values, when the examples have them.
    pub values: Option<Tensor>,
    /// `[B]` labels, 0 or 1.
    pub labels: Tensor,
}

impl CtrExamples {
    /// Wrap flat arrays: `ids` and `values` hold `labels.len()·num_fields` entries.
    ///
    /// # Panics
    /// When the lengths disagree (a reader's bug, not a file's).
    pub fn new(
        num_fields: usize,
        ids: Vec<u32>,
        values: Option<Vec<f32>>,
        labels: Vec<f32>,
    ) -> CtrExamples {
        assert_eq!(
            ids.len(),
            labels.len() * num_fields,
            "CtrExamples: {} ids for {} examples of {num_fields} fields",
            ids.len(),
            labels.len()
        );
        if let Some(v) = &values {
            assert_eq!(
                v.len(),
                ids.len(),
                "CtrExamples: {} values for {} ids",
                v.len(),
                ids.len()
            );
        }
        CtrExamples {
            num_fields,
            ids,
            values,
            labels,
        }
    }

    /// No examples of `num_fields` fields, with or without numeric values, to push into.
    pub fn empty(num_fields: usize, with_values: bool) -> CtrExamples {
        CtrExamples {
            num_fields,
            ids: Vec::new(),
            values: with_values.then(Vec::new),
            labels: Vec::new(),
        }
    }

    /// Append one example: a row per field (and a value per field when the examples
    /// have values).
    ///
    /// # Panics
    /// When `ids` does not have one entry per field, or `values` is given exactly when
    /// the examples have none (or is missing when they have them).
    pub fn push(&mut self, ids: &[u32], values: Option<&[f32]>, label: f32) {
        assert_eq!(
            ids.len(),
            self.num_fields,
            "CtrExamples::push: {} ids for {} fields",
            ids.len(),
            self.num_fields
        );
        match (&mut self.values, values) {
            (Some(all), Some(v)) => {
                assert_eq!(
                    v.len(),
                    self.num_fields,
                    "CtrExamples::push: {} values",
                    v.len()
                );
                all.extend_from_slice(v);
            }
            (None, None) => {}
            _ => panic!("CtrExamples::push: values given to examples without values, or missing"),
        }
        self.ids.extend_from_slice(ids);
        self.labels.push(label);
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Fields per example, `F`.
    pub fn num_fields(&self) -> usize {
        self.num_fields
    }

    /// The table rows, `n·F`, example by example.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The numeric values, `n·F`, when there are any.
    pub fn values(&self) -> Option<&[f32]> {
        self.values.as_deref()
    }

    /// The labels, one per example.
    pub fn labels(&self) -> &[f32] {
        &self.labels
    }

    /// The fraction of positive labels (0 for no examples).
    pub fn positive_fraction(&self) -> f64 {
        self.labels.iter().map(|&y| y as f64).sum::<f64>() / self.len().max(1) as f64
    }

    /// The examples at `indices`, in that order, as the tensors of one step.
    ///
    /// # Panics
    /// When an index is out of range.
    pub fn batch(&self, indices: &[usize]) -> CtrBatch {
        let f = self.num_fields;
        let mut ids = Vec::with_capacity(indices.len() * f);
        for &i in indices {
            ids.extend(self.ids[i * f..(i + 1) * f].iter().map(|&id| id as usize));
        }
        let values = self.values.as_ref().map(|v| {
            let mut data = Vec::with_capacity(indices.len() * f);
            for &i in indices {
                data.extend_from_slice(&v[i * f..(i + 1) * f]);
            }
            Tensor::from_vec(data, &[indices.len(), f]).expect("F values per example")
        });
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        CtrBatch {
            ids,
            values,
            labels: Tensor::from_vec(labels, &[indices.len()]).expect("a label per example"),
        }
    }

    /// A new set holding the examples at `indices`, in that order.
    ///
    /// # Panics
    /// When an index is out of range.
    pub fn select(&self, indices: &[usize]) -> CtrExamples {
        let f = self.num_fields;
        let pick = |v: &[u32]| {
            indices
                .iter()
                .flat_map(|&i| v[i * f..(i + 1) * f].iter().copied())
                .collect()
        };
        let values = self.values.as_ref().map(|v| {
            indices
                .iter()
                .flat_map(|&i| v[i * f..(i + 1) * f].iter().copied())
                .collect()
        });
        CtrExamples {
            num_fields: f,
            ids: pick(&self.ids),
            values,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// A seeded split: the examples in the order of [`SplitMix64::permutation`]`(n, seed)`,
    /// the first `n - n/5` for training and the last `n/5` for testing (80/20).
    pub fn split_80_20(&self, seed: u64) -> (CtrExamples, CtrExamples) {
        let order = SplitMix64::new(seed).permutation(self.len());
        let train = self.len() - self.len() / 5;
        (self.select(&order[..train]), self.select(&order[train..]))
    }
}

/// A training and a test set over one table.
#[derive(Clone, Debug)]
pub struct CtrDataset {
    pub train: CtrExamples,
    pub test: CtrExamples,
    /// Rows of the table the ids index.
    pub table_size: usize,
    /// The fields' names, in order.
    pub field_names: Vec<String>,
}

/// What the readers found wrong with a file, when asked to skip malformed lines rather
/// than stop at the first.
#[derive(Debug, Default)]
pub struct Skipped {
    /// Lines skipped.
    pub count: usize,
    /// The first of them, with its file, line number and problem.
    pub first: Option<DataError>,
}

impl Skipped {
    /// Count `error`'s line as skipped.
    pub fn add(&mut self, error: DataError) {
        self.count += 1;
        self.first.get_or_insert(error);
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first {
            None => write!(f, "no malformed lines"),
            Some(first) => write!(
                f,
                "skipped {} malformed line(s); the first: {first}",
                self.count
            ),
        }
    }
}

/// What a field holds, for [`feature_row`]: the kinds never share a hash input, so a
/// bucket `3` and a category `0x3` of the same field are different features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// The field is empty in this example: one feature per field.
    Missing,
    /// A categorical value (Criteo's 32-bit hexadecimal hashes, parsed).
    Category(u64),
    /// A bucketed integer.
    Bucket(i64),
    /// A numeric field's one feature, whose value scales it.
    Numeric,
}

/// The table row of `token` in field `field`, for a table of `table_size` rows: the
/// field and the token are hashed together (per-field hashing), with SplitMix64's
/// finaliser, and reduced modulo the table size. The function is fixed: a model's
/// table rows depend on it.
///
/// # Panics
/// When `table_size` is 0.
pub fn feature_row(field: usize, token: Token, table_size: usize) -> u32 {
    assert!(
        table_size > 0,
        "feature_row: the table needs at least one row"
    );
    let (kind, payload) = match token {
        Token::Missing => (0, 0),
        Token::Category(value) => (1, value),
        Token::Bucket(bucket) => (2, bucket as u64),
        Token::Numeric => (3, 0),
    };
    let key = mix64(mix64((field as u64) << 2 | kind) ^ payload);
    (key % table_size as u64) as u32
}

/// SplitMix64's output function (Steele, Lea & Flood 2014): a bijection of 64-bit
/// words whose every output bit depends on every input bit.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators",
/// OOPSLA 2014): a counter advanced by the golden-ratio constant, passed through
/// [`mix64`]. Used for data splits because it takes ten lines in any language:
///
/// ```python
/// M = (1 << 64) - 1
/// def permutation(n, seed):          # as SplitMix64::new(seed).permutation(n)
///     state, p = seed, list(range(n))
///     for i in range(n - 1, 0, -1):
///         state = (state + 0x9E3779B97F4A7C15) & M
///         z = state
///         z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
///         z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
///         j = (z ^ (z >> 31)) % (i + 1)
///         p[i], p[j] = p[j], p[i]
///     return p
/// ```
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// A random permutation of `0..n` by Fisher–Yates: for `i` from `n-1` down to 1,
    /// swap `i` with `next_u64() % (i+1)` (the modulo's bias is below 2^-40 for any
    /// `n` under 2^24).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_published_sequence() {
        // The reference C code of Vigna (prng.di.unimi.it/splitmix64.c) from seed 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn permutations_are_seeded_and_complete() {
        let a = SplitMix64::new(7).permutation(1000);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, SplitMix64::new(7).permutation(1000));
        assert_ne!(a, SplitMix64::new(8).permutation(1000));
        // The Python in the documentation, run for n = 10, seed 3, printed this.
        assert_eq!(
            SplitMix64::new(3).permutation(10),
            [2, 8, 7, 4, 5, 6, 0, 1, 9, 3]
        );
        assert!(SplitMix64::new(0).permutation(0).is_empty());
    }

    #[test]
    fn feature_rows_depend_on_field_kind_and_value() {
        let n = 1 << 20;
        let rows = [
            feature_row(0, Token::Category(3), n),
            feature_row(1, Token::Category(3), n),
            feature_row(0, Token::Bucket(3), n),
            feature_row(0, Token::Missing, n),
            feature_row(0, Token::Numeric, n),
        ];
        let mut unique = rows.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), rows.len(), "{rows:?}");
        assert!(rows.iter().all(|&r| (r as usize) < n));
        assert_eq!(feature_row(5, Token::Category(0x05db_9164), 1), 0);
        // Values spread evenly: 100,000 categories over 1000 rows, about 100 each.
        let mut counts = vec![0u32; 1000];
        for v in 0..100_000 {
            counts[feature_row(2, Token::Category(v), 1000) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (50..160).contains(&c)),
            "{:?}",
            counts.iter().max()
        );
    }

    #[test]
    fn batches_and_splits_keep_examples_together() {
        let mut examples = CtrExamples::empty(2, true);
        for i in 0..10u32 {
            examples.push(&[i, 100 + i], Some(&[i as f32, 0.5]), (i % 2) as f32);
        }
        assert_eq!(examples.len(), 10);
        assert_eq!(examples.positive_fraction(), 0.5);
        let batch = examples.batch(&[3, 0]);
        assert_eq!(batch.ids, [3, 103, 0, 100]);
        assert_eq!(batch.values.unwrap().to_vec(), [3.0, 0.5, 0.0, 0.5]);
        assert_eq!(batch.labels.to_vec(), [1.0, 0.0]);
        let (train, test) = examples.split_80_20(1);
        assert_eq!((train.len(), test.len()), (8, 2));
        let mut seen: Vec<u32> = train
            .ids()
            .iter()
            .chain(test.ids())
            .copied()
            .filter(|&id| id < 100)
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        for part in [&train, &test] {
            for (k, pair) in part.ids().chunks(2).enumerate() {
                assert_eq!(pair[1], pair[0] + 100);
                assert_eq!(part.values().unwrap()[2 * k], pair[0] as f32);
                assert_eq!(part.labels()[k], (pair[0] % 2) as f32);
            }
        }
    }
}
