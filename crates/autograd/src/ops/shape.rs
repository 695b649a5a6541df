//! Shape ops. Views forward; their backward is the inverse view (or a sum for
//! broadcast, zero-padding for narrow, splitting for concat).

use agdlab_tensor::Tensor;

use crate::var::Var;

impl Var {
    /// Stretch size-1 or missing leading dims. Backward: sum back to the input shape.
    /// Records nothing when the shape already matches.
    pub fn broadcast_to(&self, shape: &[usize]) -> Var {
        if self.shape() == shape {
            return self.clone();
        }
        let input_shape = self.shape().to_vec();
        let out = self.value().broadcast_to(shape);
        Var::record("broadcast_to", out, &[self], move |g, _| vec![Some(g.sum_to(&input_shape))])
    }

    /// View with a new shape (`-1` infers one dim). Backward: reshape back.
    ///
    /// # Panics
    /// When the element count differs (a programming error inside a model).
    pub fn reshape(&self, shape: &[isize]) -> Var {
        let input_shape = self.shape().to_vec();
        let out = self.value().reshape(shape).unwrap_or_else(|e| panic!("{e}"));
        Var::record("reshape", out, &[self], move |g, _| {
            vec![Some(g.reshape_to(&input_shape).expect("same element count"))]
        })
    }

    /// Flatten dims from `start` on into one. Backward: reshape back.
    pub fn flatten_from(&self, start: usize) -> Var {
        let mut shape: Vec<isize> = self.shape()[..start].iter().map(|&d| d as isize).collect();
        shape.push(self.shape()[start..].iter().product::<usize>() as isize);
        self.reshape(&shape)
    }

    /// Swap two dims. Backward: swap them back.
    pub fn transpose(&self, d0: usize, d1: usize) -> Var {
        let out = self.value().transpose(d0, d1);
        Var::record("transpose", out, &[self], move |g, _| vec![Some(g.transpose(d0, d1))])
    }

    /// Transpose the last two dims.
    pub fn t(&self) -> Var {
        assert!(self.rank() >= 2, "t: needs rank >= 2, got shape {:?}", self.shape());
        self.transpose(self.rank() - 2, self.rank() - 1)
    }

    /// Reorder dims. Backward: apply the inverse permutation.
    pub fn permute(&self, order: &[usize]) -> Var {
        let out = self.value().permute(order);
        let mut inverse = vec![0; order.len()];
        for (i, &d) in order.iter().enumerate() {
            inverse[d] = i;
        }
        Var::record("permute", out, &[self], move |g, _| vec![Some(g.permute(&inverse))])
    }

    /// Keep `len` entries of `dim` from `start`. Backward: the gradient padded with
    /// zeros outside the window.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Var {
        let input_shape = self.shape().to_vec();
        let out = self.value().narrow(dim, start, len);
        Var::record("narrow", out, &[self], move |g, _| {
            let mut before = input_shape.clone();
            before[dim] = start;
            let mut after = input_shape.clone();
            after[dim] = input_shape[dim] - start - len;
            let (before, after) = (Tensor::zeros(&before), Tensor::zeros(&after));
            vec![Some(Tensor::concat(&[&before, g, &after], dim))]
        })
    }

    /// Insert a size-1 dim. Backward: remove it.
    pub fn unsqueeze(&self, dim: usize) -> Var {
        Var::record("unsqueeze", self.value().unsqueeze(dim), &[self], move |g, _| vec![Some(g.squeeze(dim))])
    }

    /// Remove a size-1 dim. Backward: put it back.
    pub fn squeeze(&self, dim: usize) -> Var {
        Var::record("squeeze", self.value().squeeze(dim), &[self], move |g, _| vec![Some(g.unsqueeze(dim))])
    }

    /// Join along `dim`. Backward: each input gets its slice of the gradient.
    pub fn concat(vars: &[&Var], dim: usize) -> Var {
        let values: Vec<&Tensor> = vars.iter().map(|v| v.value()).collect();
        let out = Tensor::concat(&values, dim);
        let sizes: Vec<usize> = vars.iter().map(|v| v.shape()[dim]).collect();
        Var::record("concat", out, vars, move |g, needs| {
            let mut start = 0;
            sizes
                .iter()
                .zip(needs)
                .map(|(&len, &need)| {
                    let piece = need.then(|| g.narrow(dim, start, len).contiguous());
                    start += len;
                    piece
                })
                .collect()
        })
    }

    /// Stack along a new `dim`. Backward: each input gets its slice of the gradient.
    pub fn stack(vars: &[&Var], dim: usize) -> Var {
        let unsqueezed: Vec<Var> = vars.iter().map(|v| v.unsqueeze(dim)).collect();
        Var::concat(&unsqueezed.iter().collect::<Vec<_>>(), dim)
    }
}
