//! A gradient: dense, or row-sparse (the touched rows of a table and their values).
//!
//! An embedding lookup reads a few rows of a large table, so its gradient is zero
//! everywhere but those rows. [`Grad::RowSparse`] keeps only them: a backward pass over
//! a batch that touches a thousand rows of a 2^20-row table allocates a thousand rows,
//! not the table. Everything else is [`Grad::Dense`].
//!
//! PyTorch equivalent: a dense `p.grad`, or the sparse COO gradient that
//! `nn.Embedding(sparse=True)` produces.

use agdlab_tensor::Tensor;

/// The gradient of one value: a dense tensor of its shape, or some of its rows.
#[derive(Clone, Debug)]
pub enum Grad {
    /// Every element.
    Dense(Tensor),
    /// Only some rows (entries of the first dimension); every other row is zero.
    RowSparse(RowSparse),
}

impl Grad {
    /// The shape of the value this is the gradient of.
    pub fn shape(&self) -> &[usize] {
        match self {
            Grad::Dense(t) => t.shape(),
            Grad::RowSparse(s) => s.shape(),
        }
    }

    /// The dense tensor, when this gradient is dense.
    pub fn as_dense(&self) -> Option<&Tensor> {
        match self {
            Grad::Dense(t) => Some(t),
            Grad::RowSparse(_) => None,
        }
    }

    /// The row-sparse form, when this gradient is row-sparse.
    pub fn as_row_sparse(&self) -> Option<&RowSparse> {
        match self {
            Grad::Dense(_) => None,
            Grad::RowSparse(s) => Some(s),
        }
    }

    pub fn is_row_sparse(&self) -> bool {
        matches!(self, Grad::RowSparse(_))
    }

    /// A dense tensor of the full shape (zeros in untouched rows of a row-sparse one).
    pub fn to_dense(&self) -> Tensor {
        match self {
            Grad::Dense(t) => t.clone(),
            Grad::RowSparse(s) => s.to_dense(),
        }
    }

    /// The dense tensor, converting a row-sparse gradient.
    pub fn into_dense(self) -> Tensor {
        match self {
            Grad::Dense(t) => t,
            Grad::RowSparse(s) => s.to_dense(),
        }
    }

    /// All elements in row-major order, as [`Grad::to_dense`] would hold them.
    pub fn to_vec(&self) -> Vec<f32> {
        self.to_dense().to_vec()
    }

    /// The elements actually stored: all of a dense gradient, the touched rows' values of
    /// a row-sparse one. Norms, clipping and NaN checks read these.
    pub fn stored_values(&self) -> Tensor {
        match self {
            Grad::Dense(t) => t.clone(),
            Grad::RowSparse(s) => s.values().clone(),
        }
    }

    /// Multiply every element by `factor`, in place.
    pub fn scale(&mut self, factor: f32) {
        let values = match self {
            Grad::Dense(t) => t,
            Grad::RowSparse(s) => &mut s.values,
        };
        agdlab_tensor::parallel::map_assign(values.data_mut(), |x| x * factor);
    }

    /// The same gradient, stored dense and row-major, or row-sparse with sorted, unique
    /// rows ([`RowSparse::coalesce`]). [`Gradients`](crate::Gradients) holds gradients in
    /// this form, so an optimizer can take a slice of either.
    pub fn normalized(self) -> Grad {
        match self {
            Grad::Dense(t) => Grad::Dense(t.contiguous()),
            Grad::RowSparse(s) => Grad::RowSparse(s.coalesce()),
        }
    }

    /// `self += other` (either may be dense or row-sparse). Two row-sparse gradients stay
    /// row-sparse; anything else becomes dense.
    ///
    /// # Panics
    /// When the shapes differ.
    pub fn accumulate(&mut self, other: Grad) {
        assert_eq!(
            self.shape(),
            other.shape(),
            "gradient accumulation: shapes {:?} and {:?} differ",
            self.shape(),
            other.shape()
        );
        let current = std::mem::replace(self, Grad::Dense(Tensor::scalar(0.0)));
        *self = match (current, other) {
            (Grad::Dense(mut a), Grad::Dense(b)) => {
                a.add_assign(&b);
                Grad::Dense(a)
            }
            (Grad::Dense(mut a), Grad::RowSparse(b)) | (Grad::RowSparse(b), Grad::Dense(mut a)) => {
                b.add_to(&mut a);
                Grad::Dense(a)
            }
            (Grad::RowSparse(mut a), Grad::RowSparse(b)) => {
                a.append(b);
                Grad::RowSparse(a)
            }
        };
    }
}

/// Some rows of a gradient of shape `[rows, ...]`: `values[k]` belongs in row `rows[k]`,
/// every other row is zero. Rows may repeat (their values add) until
/// [`RowSparse::coalesce`] sorts and merges them.
#[derive(Clone, Debug)]
pub struct RowSparse {
    shape: Vec<usize>,
    rows: Vec<usize>,
    values: Tensor,
}

impl RowSparse {
    /// `rows.len()` rows of a gradient of `shape`; `values` has shape
    /// `[rows.len(), shape[1..]...]`.
    ///
    /// # Panics
    /// When `shape` has rank 0, `values` has the wrong shape, or a row is out of range.
    pub fn new(shape: &[usize], rows: Vec<usize>, values: Tensor) -> RowSparse {
        assert!(
            !shape.is_empty(),
            "RowSparse: a gradient of rank 0 has no rows"
        );
        let mut expected = shape.to_vec();
        expected[0] = rows.len();
        assert_eq!(
            values.shape(),
            &expected[..],
            "RowSparse: values of shape {:?} for {} rows of a gradient of shape {shape:?}",
            values.shape(),
            rows.len()
        );
        if let Some(bad) = rows.iter().find(|&&r| r >= shape[0]) {
            panic!("RowSparse: row {bad} out of range for a gradient of shape {shape:?}");
        }
        RowSparse {
            shape: shape.to_vec(),
            rows,
            values: values.contiguous(),
        }
    }

    /// The full shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The touched rows (sorted and unique after [`RowSparse::coalesce`]).
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// `[rows.len(), shape[1..]...]`, contiguous.
    pub fn values(&self) -> &Tensor {
        &self.values
    }

    /// Elements per row.
    pub fn row_len(&self) -> usize {
        self.shape[1..].iter().product()
    }

    /// Sort the rows and add the values of repeated rows together.
    pub fn coalesce(self) -> RowSparse {
        let sorted_unique = self.rows.windows(2).all(|w| w[0] < w[1]);
        if sorted_unique {
            return self;
        }
        let row_len = self.row_len();
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        order.sort_by_key(|&k| self.rows[k]);
        let src = self
            .values
            .as_slice()
            .expect("RowSparse values are contiguous");
        let mut rows: Vec<usize> = Vec::with_capacity(self.rows.len());
        let mut data: Vec<f32> = Vec::with_capacity(src.len());
        for k in order {
            let values = &src[k * row_len..(k + 1) * row_len];
            if rows.last() == Some(&self.rows[k]) {
                let start = data.len() - row_len;
                data[start..]
                    .iter_mut()
                    .zip(values)
                    .for_each(|(d, &v)| *d += v);
            } else {
                rows.push(self.rows[k]);
                data.extend_from_slice(values);
            }
        }
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        let values = Tensor::from_vec(data, &shape).expect("one row of values per kept row");
        RowSparse {
            shape: self.shape,
            rows,
            values,
        }
    }

    /// `dense[rows[k]] += values[k]` for every k, in place.
    ///
    /// # Panics
    /// When `dense` does not have this gradient's shape.
    pub fn add_to(&self, dense: &mut Tensor) {
        assert_eq!(
            dense.shape(),
            &self.shape[..],
            "RowSparse::add_to: shape mismatch"
        );
        dense.index_add_assign(0, &self.rows, &self.values);
    }

    /// The dense gradient: zeros with the touched rows filled in.
    pub fn to_dense(&self) -> Tensor {
        let mut dense = Tensor::zeros(&self.shape);
        self.add_to(&mut dense);
        dense
    }

    /// Add `other`'s rows to these (rows may then repeat).
    fn append(&mut self, other: RowSparse) {
        self.rows.extend_from_slice(&other.rows);
        self.values = Tensor::concat(&[&self.values, &other.values], 0);
    }
}
