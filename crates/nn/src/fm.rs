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
//! The table lookups use [`Var::embedding`], whose backward is row-sparse: a batch of
//! 1024 examples with 39 fields touches at most 39,936 rows of a 2^20-row table, and
//! the gradient holds only those rows. What the optimizer then does with them (advance
//! every row's state, as the paper's optimizers do, or only the touched rows) is the
//! parameter group's `SparseMode` (in `agdlab_optim`).
//!
//! PyTorch equivalent (the layout and parameter names this module uses, so a PyTorch
//! `state_dict` loads into it by name):
//!
//! ```python
//! class FactorizationMachine(torch.nn.Module):
//!     def __init__(self, table_size, dim):
//!         super().__init__()
//!         self.bias = torch.nn.Parameter(torch.zeros(1))        # w0
//!         self.linear = torch.nn.Embedding(table_size, 1)      # w
//!         self.embedding = torch.nn.Embedding(table_size, dim)  # v
//!
//!     def forward(self, ids):                                   # ids: [B, F]
//!         e = self.embedding(ids)                               # [B, F, k]
//!         pairs = 0.5 * (e.sum(1).pow(2) - e.pow(2).sum(1)).sum(1)
//!         return self.bias + self.linear(ids).sum((1, 2)) + pairs
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
        FmConfig { table_size, num_fields, dim, mlp_hidden: Vec::new(), init_std: 0.01 }
    }
}

/// A factorization machine (see the [module documentation](self)): bias `w0`, linear
/// weights `w` and factors `v` over one shared table of hashed features, and an
/// optional DeepFM MLP head.
///
/// Parameters, named as PyTorch would name them: `bias` `[1]`, `linear.weight`
/// `[table_size, 1]`, `embedding.weight` `[table_size, dim]`, and with a head
/// `mlp.0.weight`, `mlp.0.bias`, `mlp.2.weight`, ... (Linear, ReLU, ..., Linear to 1).
pub struct FactorizationMachine {
    /// `w0`, shape `[1]`.
    pub bias: Param,
    /// `w`, shape `[table_size, 1]`.
    pub linear: Param,
    /// `v`, shape `[table_size, dim]`.
    pub embedding: Param,
    /// The DeepFM head, `F·dim -> hidden... -> 1`.
    pub mlp: Option<Sequential>,
    num_fields: usize,
}

impl FactorizationMachine {
    /// A model of `config`'s shape: `w0 = 0`, `w = 0`, `v ~ N(0, init_std²)`, and the
    /// MLP head (if any) with PyTorch's default `Linear` initialisation.
    ///
    /// # Panics
    /// When `table_size`, `num_fields` or `dim` is 0, or `init_std` is negative.
    pub fn new(config: &FmConfig, rng: &mut impl Rng) -> FactorizationMachine {
        let FmConfig { table_size, num_fields, dim, .. } = *config;
        assert!(
            table_size > 0 && num_fields > 0 && dim > 0,
            "FactorizationMachine: table_size {table_size}, num_fields {num_fields} and dim {dim} must be positive"
        );
        let embedding = if config.init_std > 0.0 {
            init::normal(&[table_size, dim], config.init_std, rng)
        } else {
            Tensor::zeros(&[table_size, dim])
        };
        let mlp = (!config.mlp_hidden.is_empty()).then(|| {
            let mut mlp = Sequential::new();
            let mut width = num_fields * dim;
            for &hidden in &config.mlp_hidden {
                mlp = mlp.append(Linear::new(width, hidden, true, rng)).append(ReLU);
                width = hidden;
            }
            mlp.append(Linear::new(width, 1, true, rng))
        });
        FactorizationMachine {
            bias: Param::new(Tensor::zeros(&[1])),
            linear: Param::new(Tensor::zeros(&[table_size, 1])),
            embedding: Param::new(embedding),
            mlp,
            num_fields,
        }
    }

    /// Fields per example.
    pub fn num_fields(&self) -> usize {
        self.num_fields
    }

    /// Rows of the tables.
    pub fn table_size(&self) -> usize {
        self.linear.shape()[0]
    }

    /// Dimension of the factors.
    pub fn dim(&self) -> usize {
        self.embedding.shape()[1]
    }

    /// The logits of a batch: `ids` holds `B·F` table rows, example by example (field
    /// `j` of example `b` at `b·F + j`); `values`, when given, the numeric value of each
    /// (`[B, F]`; absent means 1 everywhere). The ops are recorded on `tape`
    /// ([`Tape::no_grad`] for evaluation). The tables' gradients are row-sparse.
    ///
    /// # Shapes
    /// `ids: [B·F]`, `values: [B, F]` -> `[B]`.
    ///
    /// # Panics
    /// When `ids.len()` is not a multiple of `F`, an id is not below `table_size`, or
    /// `values` is not `[B, F]`.
    pub fn forward(&self, tape: &Tape, ids: &[usize], values: Option<&Tensor>) -> Var {
        let (fields, dim) = (self.num_fields, self.dim());
        assert!(
            ids.len() % fields == 0,
            "FactorizationMachine: {} ids are not a whole number of examples of {fields} fields",
            ids.len()
        );
        let batch = ids.len() / fields;
        if let Some(&bad) = ids.iter().find(|&&id| id >= self.table_size()) {
            panic!("FactorizationMachine: id {bad} out of range for a table of {} rows", self.table_size());
        }
        let values = values.map(|x| {
            assert_eq!(
                x.shape(),
                &[batch, fields],
                "FactorizationMachine: values {:?} for {batch} examples of {fields} fields",
                x.shape()
            );
            tape.input(x.clone())
        });
        let (b, f, k) = (batch as isize, fields as isize, dim as isize);

        // Σ_i w_i·x_i
        let mut weights = tape.param(&self.linear).embedding(ids, None).reshape(&[b, f]);
        // e_i = v_i·x_i
        let mut factors = tape.param(&self.embedding).embedding(ids, None).reshape(&[b, f, k]);
        if let Some(x) = &values {
            weights = weights.mul(x);
            factors = factors.mul(&x.reshape(&[b, f, 1]));
        }
        let mut logits =
            weights.sum_dims(&[1], false).add(&fm_interactions(&factors)).add(&tape.param(&self.bias));
        if let Some(mlp) = &self.mlp {
            let deep = mlp.forward(&factors.reshape(&[b, f * k])).reshape(&[b]);
            logits = logits.add(&deep);
        }
        logits
    }
}

impl Module for FactorizationMachine {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.param("bias", &self.bias);
        walk.param("linear.weight", &self.linear);
        walk.param("embedding.weight", &self.embedding);
        if let Some(mlp) = &self.mlp {
            walk.child("mlp", mlp);
        }
    }
}

/// The pairwise interactions of a factorization machine, `Σ_{i<j} <e_i, e_j>` for each
/// example, computed in `O(F·k)` as `½ Σ_c [(Σ_i e_ic)² - Σ_i e_ic²]`. Backward:
/// `∂/∂e_ic = g·(Σ_j e_jc - e_ic)`, from the per-example sums saved by the forward.
///
/// PyTorch equivalent: `0.5 * (e.sum(1).pow(2) - e.pow(2).sum(1)).sum(1)`.
///
/// # Shapes
/// `e: [B, F, k]` (any layout) -> `[B]`.
///
/// # Panics
/// When `e` is not of rank 3.
pub fn fm_interactions(e: &Var) -> Var {
    assert_eq!(e.rank(), 3, "fm_interactions: needs [batch, fields, dim], got {:?}", e.shape());
    let (batch, fields, dim) = (e.shape()[0], e.shape()[1], e.shape()[2]);
    let input = e.value().contiguous();
    let x = input.as_slice().expect("contiguous");
    let mut sums = vec![0.0f32; batch * dim];
    let mut out = vec![0.0f32; batch];
    let per_example = fields * dim;
    if per_example > 0 {
        for ((example, sum), out) in x.chunks(per_example).zip(sums.chunks_mut(dim)).zip(&mut out) {
            let mut sum_of_squares = 0.0f32;
            for row in example.chunks_exact(dim) {
                for (s, &v) in sum.iter_mut().zip(row) {
                    *s += v;
                    sum_of_squares += v * v;
                }
            }
            let square_of_sum: f32 = sum.iter().map(|s| s * s).sum();
            *out = 0.5 * (square_of_sum - sum_of_squares);
        }
    }
    let out = Tensor::from_vec(out, &[batch]).expect("one value per example");

    Var::record("fm_interactions", out, &[e], move |g, grads| {
        grads.add(0, || {
            let g = g.contiguous();
            let g = g.as_slice().expect("contiguous");
            let x = input.as_slice().expect("contiguous");
            let mut grad = vec![0.0f32; batch * per_example];
            if per_example > 0 {
                let examples = grad.chunks_mut(per_example).zip(x.chunks(per_example));
                for (((grad, example), sum), &g) in examples.zip(sums.chunks(dim)).zip(g) {
                    for (grad_row, row) in grad.chunks_exact_mut(dim).zip(example.chunks_exact(dim)) {
                        for ((d, &v), &s) in grad_row.iter_mut().zip(row).zip(sum) {
                            *d = g * (s - v);
                        }
                    }
                }
            }
            Tensor::from_vec(grad, &[batch, fields, dim]).expect("the input's shape")
        })
    })
}
