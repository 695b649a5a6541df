//! Factorization machines (Rendle, "Factorization Machines", ICDM 2010) over sparse
//! categorical features, with an optional DeepFM-style MLP head (Guo et al., "DeepFM: A
//! Factorization-Machine based Neural Network for CTR Prediction", IJCAI 2017).
//!
//! An example is `F` fields (user, item, ad id, ...), each holding one feature: a row
//! of one shared table, already hashed or offset into it by the data reader, and
//! optionally a numeric value `x` (1 for a plain categorical feature). With `w_i` the
//! linear weight and `v_i` the `k`-dimensional factor of the feature in field `i`, the
//! model's logit is
//!
//! ```text
//! ŷ = w0 + Σ_i w_i·x_i + Σ_{i<j} <v_i, v_j>·x_i·x_j
//! ```
//!
//! The pairwise sum has `F(F-1)/2` terms, but with `e_i = v_i·x_i` it is
//!
//! ```text
//! Σ_{i<j} <e_i, e_j> = ½ Σ_c [ (Σ_i e_ic)² - Σ_i e_ic² ]      (square of sum minus sum of squares)
//! ```
//!
//! which costs `O(k·F)` per example ([`fm_interactions`], a fused op whose backward is
//! `∂/∂e_ic = Σ_j e_jc - e_ic`).
//!
//! The linear weight and the factor of a feature share one row of one table
//! `[table_size, 1 + k]`: column 0 holds `w_i`, columns `1..=k` hold `v_i`, so a batch
//! needs one lookup and gives one row-sparse gradient. The lookup is [`Var::embedding`],
//! whose backward is row-sparse: a batch of 1024 examples with 39 fields touches at most
//! 39,936 rows of a 2^20-row table, and the gradient holds only those rows. What the
//! optimizer then does with them (advance every row's state, as the paper's optimizers
//! do, or only the touched rows) is the parameter group's `SparseMode` (in
//! `agdlab_optim`).
//!
//! PyTorch equivalent (the layout and parameter names this module uses, so a PyTorch
//! `state_dict` loads into it by name):
//!
//! ```python
//! class FactorizationMachine(torch.nn.Module):
//!     def __init__(self, table_size, dim):
//!         super().__init__()
//!         self.bias = torch.nn.Parameter(torch.zeros(1))         # w0
//!         self.table = torch.nn.Embedding(table_size, 1 + dim)  # [w | v] per feature
//!
//!     def forward(self, ids):                                    # ids: [B, F]
//!         rows = self.table(ids)                                 # [B, F, 1 + k]
//!         w, e = rows[..., 0], rows[..., 1:]
//!         pairs = 0.5 * (e.sum(1).pow(2) - e.pow(2).sum(1)).sum(1)
//!         return self.bias + w.sum(1) + pairs
//! ```

use agdlab_autograd::{Param, Tape, Var};
use agdlab_tensor::Tensor;
use rand::Rng;

use crate::activation::ReLU;
use crate::init;
use crate::linear::Linear;
use crate::module::{Forward, Module, Walk};
use crate::sequential::Sequential;

/// The shape of a [`FactorizationMachine`].
#[derive(Clone, Debug, PartialEq)]
pub struct FmConfig {
    /// Rows of the shared tables (features after hashing or offsetting).
    pub table_size: usize,
    /// Fields per example, `F`.
    pub num_fields: usize,
    /// Dimension `k` of the factors.
    pub dim: usize,
    /// Hidden layer sizes of the DeepFM head (an MLP over the `F·k` concatenated
    /// factors, added to the FM's logit); empty for a plain FM.
    pub mlp_hidden: Vec<usize>,
    /// Standard deviation of the factors' initial values, drawn from N(0, std²). The
    /// bias and the linear weights start at zero.
    pub init_std: f32,
}

impl FmConfig {
    /// A plain FM of dimension `dim` with factors initialised from N(0, 0.01²).
    pub fn new(table_size: usize, num_fields: usize, dim: usize) -> FmConfig {
        FmConfig {
            table_size,
            num_fields,
            dim,
            mlp_hidden: Vec::new(),
            init_std: 0.01,
        }
    }
}

/// A factorization machine (see the [module documentation](self)): bias `w0`, and
/// linear weights `w` and factors `v` in one shared table of hashed features, with an
/// optional DeepFM MLP head.
///
/// Parameters, named as PyTorch would name them: `bias` `[1]`, `table.weight`
/// `[table_size, 1 + dim]` (column 0: `w`, columns `1..=dim`: `v`), and with a head
/// `mlp.0.weight`, `mlp.0.bias`, `mlp.2.weight`, ... (Linear, ReLU, ..., Linear to 1).
pub struct FactorizationMachine {
    /// `w0`, shape `[1]`.
    pub bias: Param,
    /// `[w | v]`, shape `[table_size, 1 + dim]`.
    pub table: Param,
    /// The DeepFM head, `F·dim -> hidden... -> 1`.
    pub mlp: Option<Sequential>,
    num_fields: usize,
    table_size: usize,
    dim: usize,
}

impl FactorizationMachine {
    /// A model of `config`'s shape: `w0 = 0`, `w = 0`, `v ~ N(0, init_std²)`, and the
    /// MLP head (if any) with PyTorch's default `Linear` initialisation.
    ///
    /// # Panics
    /// When `table_size`, `num_fields` or `dim` is 0, or `init_std` is negative.
    pub fn new(config: &FmConfig, rng: &mut impl Rng) -> FactorizationMachine {
        let FmConfig {
            table_size,
            num_fields,
            dim,
            ..
        } = *config;
        assert!(
            table_size > 0 && num_fields > 0 && dim > 0,
            "FactorizationMachine: table_size {table_size}, num_fields {num_fields} and dim {dim} must be positive"
        );
        let factors = if config.init_std > 0.0 {
            init::normal(&[table_size, dim], config.init_std, rng)
        } else {
            Tensor::zeros(&[table_size, dim])
        };
        let table = Tensor::concat(&[&Tensor::zeros(&[table_size, 1]), &factors], 1);
        let mlp = (!config.mlp_hidden.is_empty()).then(|| {
            let mut mlp = Sequential::new();
            let mut width = num_fields * dim;
            for &hidden in &config.mlp_hidden {
                mlp = mlp
                    .append(Linear::new(width, hidden, true, rng))
                    .append(ReLU);
                width = hidden;
            }
            mlp.append(Linear::new(width, 1, true, rng))
        });
        FactorizationMachine {
            bias: Param::new(Tensor::zeros(&[1])),
            table: Param::new(table),
            mlp,
            num_fields,
            table_size,
            dim,
        }
    }

    /// Fields per example.
    pub fn num_fields(&self) -> usize {
        self.num_fields
    }

    /// Rows of the table.
    pub fn table_size(&self) -> usize {
        self.table_size
    }

    /// Dimension of the factors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The logits of a batch: `ids` holds `B·F` table rows, example by example (field
    /// `j` of example `b` at `b·F + j`); `values`, when given, the numeric value of each
    /// (`[B, F]`; absent means 1 everywhere). The ops are recorded on `tape`
    /// ([`Tape::no_grad`] for evaluation). The table's gradient is row-sparse.
    ///
    /// # Shapes
    /// `ids: [B·F]`, `values: [B, F]` -> `[B]`.
    ///
    /// # Panics
    /// When `ids.len()` is not a multiple of `F`, an id is not below `table_size`, or
    /// `values` is not `[B, F]`.
    pub fn forward(&self, tape: &Tape, ids: &[usize], values: Option<&Tensor>) -> Var {
        let (fields, dim, table_size) = (self.num_fields, self.dim, self.table_size);
        assert!(
            ids.len().is_multiple_of(fields),
            "FactorizationMachine: {} ids are not a whole number of examples of {fields} fields",
            ids.len()
        );
        let batch = ids.len() / fields;
        if let Some(&bad) = ids.iter().find(|&&id| id >= table_size) {
            panic!("FactorizationMachine: id {bad} out of range for a table of {table_size} rows");
        }
        let values = values.map(|x| {
            assert_eq!(
                x.shape(),
                &[batch, fields],
                "FactorizationMachine: values {:?} for {batch} examples of {fields} fields",
                x.shape()
            );
            tape.input(x.reshape_to(&[batch, fields, 1]))
        });

        // One row [w_i | v_i] per field; both halves are views of it.
        let rows = tape.param(&self.table).embedding(ids, None).reshape(&[
            batch as isize,
            fields as isize,
            -1,
        ]);
        let (mut weights, mut factors) = (rows.narrow(2, 0, 1), rows.narrow(2, 1, dim));
        if let Some(x) = &values {
            weights = weights.mul(x); // w_i·x_i
            factors = factors.mul(x); // e_i = v_i·x_i
        }
        let mut logits = weights
            .sum_dims(&[1, 2], false)
            .add(&fm_interactions(&factors))
            .add(&tape.param(&self.bias));
        if let Some(mlp) = &self.mlp {
            let deep = mlp.forward(&factors.reshape(&[batch as isize, (fields * dim) as isize]));
            logits = logits.add(&deep.reshape(&[batch as isize]));
        }
        logits
    }
}

impl Module for FactorizationMachine {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.param("bias", &self.bias);
        walk.param("table.weight", &self.table);
        if let Some(mlp) = &self.mlp {
            walk.child("mlp", mlp);
        }
    }
}

/// The pairwise interactions of a factorization machine, `Σ_{i<j} <e_i, e_j>` for each
/// example, computed in `O(F·k)` as `½ Σ_c [(Σ_i e_ic)² - Σ_i e_ic²]`. Backward:
/// `∂/∂e_ic = g·(Σ_j e_jc - e_ic)`, from the per-example sums saved by the forward.
///
/// An input whose last dimension is contiguous (a slice of the table's rows) is read in
/// place; any other layout is copied first.
///
/// PyTorch equivalent: `0.5 * (e.sum(1).pow(2) - e.pow(2).sum(1)).sum(1)`.
///
/// # Shapes
/// `e: [B, F, k]` (any layout) -> `[B]`.
///
/// # Panics
/// When `e` is not of rank 3.
pub fn fm_interactions(e: &Var) -> Var {
    assert_eq!(
        e.rank(),
        3,
        "fm_interactions: needs [batch, fields, dim], got {:?}",
        e.shape()
    );
    let (batch, fields, dim) = (e.shape()[0], e.shape()[1], e.shape()[2]);
    let input = if e.value().strides()[2] == 1 || dim <= 1 {
        e.value().clone()
    } else {
        e.value().contiguous()
    };
    let mut sums = vec![0.0f32; batch * dim];
    let mut out = vec![0.0f32; batch];
    let mut squares = vec![0.0f32; dim];
    for (b, (sum, out)) in sums.chunks_mut(dim.max(1)).zip(&mut out).enumerate() {
        // Per component c: the sum and the sum of squares over the fields (vectorises
        // along c).
        squares.fill(0.0);
        for f in 0..fields {
            for ((s, q), &v) in sum.iter_mut().zip(&mut squares).zip(row(&input, b, f)) {
                *s += v;
                *q += v * v;
            }
        }
        *out = 0.5
            * sum
                .iter()
                .zip(&squares)
                .map(|(s, q)| s * s - q)
                .sum::<f32>();
    }
    let out = Tensor::from_vec(out, &[batch]).expect("one value per example");

    Var::record("fm_interactions", out, &[e], move |g, grads| {
        grads.add(0, || {
            let g = g.to_vec();
            let mut grad = vec![0.0f32; batch * fields * dim];
            for (b, grad) in grad
                .chunks_mut((fields * dim).max(1))
                .enumerate()
                .take(batch)
            {
                let sum = &sums[b * dim..(b + 1) * dim];
                for (f, grad_row) in grad.chunks_exact_mut(dim.max(1)).enumerate().take(fields) {
                    for ((d, &v), &s) in grad_row.iter_mut().zip(row(&input, b, f)).zip(sum) {
                        *d = g[b] * (s - v);
                    }
                }
            }
            Tensor::from_vec(grad, &[batch, fields, dim]).expect("the input's shape")
        })
    })
}

/// Row `(b, f)` of a rank-3 tensor whose last dimension has stride 1 (or size at most 1).
fn row(t: &Tensor, b: usize, f: usize) -> &[f32] {
    let (strides, dim) = (t.strides(), t.shape()[2]);
    let start = t.layout().offset() + b * strides[0] + f * strides[1];
    &t.storage()[start..start + dim]
}
