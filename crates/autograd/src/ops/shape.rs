//! Shape ops. Views forward; their backward is the inverse view (or a sum for
//! broadcast, a write into the window for narrow and split, slices for concat).

use agdlab_tensor::Tensor;

use crate::var::Var;

impl Var {
    /// Stretch size-1 or missing leading dims. Backward: sum back to the input shape.
    /// Records nothing when the shape already matches.
    /// PyTorch equivalent: `x.expand(shape)`.
    pub fn broadcast_to(&self, shape: &[usize]) -> Var {
        if self.shape() == shape {
            return self.clone();
        }
        let input_shape = self.shape().to_vec();
        let out = self.value().broadcast_to(shape);
        Var::record("broadcast_to", out, &[self], move |g, grads| {
            grads.add(0, || g.sum_to(&input_shape))
        })
    }

    /// View with a new shape (`-1` infers one dim). Backward: reshape back.
    /// PyTorch equivalent: `x.reshape(shape)`.
    ///
    /// # Panics
    /// When the element count differs, as [`Tensor::reshape`].
    pub fn reshape(&self, shape: &[isize]) -> Var {
        let input_shape = self.shape().to_vec();
        let out = self.value().reshape(shape);
        Var::record("reshape", out, &[self], move |g, grads| {
            grads.add(0, || g.reshape_to(&input_shape))
        })
    }

    /// Flatten dims from `start` on into one. Backward: reshape back.
    /// PyTorch equivalent: `x.flatten(start)`.
    pub fn flatten_from(&self, start: usize) -> Var {
        let mut shape: Vec<isize> = self.shape()[..start].iter().map(|&d| d as isize).collect();
        shape.push(self.shape()[start..].iter().product::<usize>() as isize);
        self.reshape(&shape)
    }

    /// Swap two dims. Backward: swap them back. PyTorch equivalent: `x.transpose(d0, d1)`.
    pub fn transpose(&self, d0: usize, d1: usize) -> Var {
        let out = self.value().transpose(d0, d1);
        Var::record("transpose", out, &[self], move |g, grads| {
            grads.add(0, || g.transpose(d0, d1))
        })
    }

    /// Transpose the last two dims. PyTorch equivalent: `x.mT`.
    pub fn t(&self) -> Var {
        assert!(
            self.rank() >= 2,
            "t: needs rank >= 2, got shape {:?}",
            self.shape()
        );
        self.transpose(self.rank() - 2, self.rank() - 1)
    }

    /// Reorder dims. Backward: apply the inverse permutation.
    /// PyTorch equivalent: `x.permute(order)`.
    pub fn permute(&self, order: &[usize]) -> Var {
        let out = self.value().permute(order);
        let mut inverse = vec![0; order.len()];
        for (i, &d) in order.iter().enumerate() {
            inverse[d] = i;
        }
        Var::record("permute", out, &[self], move |g, grads| {
            grads.add(0, || g.permute(&inverse))
        })
    }

    /// Keep `len` entries of `dim` from `start`. Backward: the gradient is added into
    /// its window of the input's gradient buffer, so the slices of one tensor (the four
    /// gates of an LSTM) fill one buffer between them.
    /// PyTorch equivalent: `x.narrow(dim, start, len)`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Var {
        let out = self.value().narrow(dim, start, len);
        Var::record("narrow", out, &[self], move |g, grads| {
            grads.add_with(0, |buffer| buffer.add_assign_narrow(dim, start, &g))
        })
    }

    /// Consecutive pieces of `sizes[0]`, `sizes[1]`, ... entries along `dim`. Each piece
    /// is a view; in backward every piece adds into its window of the one gradient buffer
    /// of `self` (no per-piece full-size gradient, no concatenation).
    /// PyTorch equivalent: `torch.split(x, sizes, dim)`.
    ///
    /// # Panics
    /// When the sizes do not add up to the size of `dim`.
    pub fn split(&self, sizes: &[usize], dim: usize) -> Vec<Var> {
        assert!(
            dim < self.rank(),
            "split: dim {dim} out of range for shape {:?}",
            self.shape()
        );
        assert_eq!(
            sizes.iter().sum::<usize>(),
            self.shape()[dim],
            "split: sizes {sizes:?} do not add up to dim {dim} of shape {:?}",
            self.shape()
        );
        let mut start = 0;
        sizes
            .iter()
            .map(|&len| {
                let piece = self.narrow(dim, start, len);
                start += len;
                piece
            })
            .collect()
    }

    /// `chunks` pieces of equal size along `dim` (the last one smaller when the size
    /// does not divide), as [`Var::split`]. An LSTM's gates: `gates.chunk(4, 1)`.
    /// PyTorch equivalent: `torch.chunk(x, chunks, dim)`.
    ///
    /// # Panics
    /// When `chunks` is 0 or `dim` is out of range.
    pub fn chunk(&self, chunks: usize, dim: usize) -> Vec<Var> {
        assert!(chunks > 0, "chunk: needs at least one chunk");
        assert!(
            dim < self.rank(),
            "chunk: dim {dim} out of range for shape {:?}",
            self.shape()
        );
        let size = self.shape()[dim];
        let piece = size.div_ceil(chunks).max(1);
        let mut sizes = vec![piece; size / piece];
        if !size.is_multiple_of(piece) {
            sizes.push(size % piece);
        }
        self.split(&sizes, dim)
    }

    /// Insert a size-1 dim. Backward: remove it. PyTorch equivalent: `x.unsqueeze(dim)`.
    pub fn unsqueeze(&self, dim: usize) -> Var {
        let out = self.value().unsqueeze(dim);
        Var::record("unsqueeze", out, &[self], move |g, grads| {
            grads.add(0, || g.squeeze(dim))
        })
    }

    /// Remove a size-1 dim. Backward: put it back. PyTorch equivalent: `x.squeeze(dim)`.
    pub fn squeeze(&self, dim: usize) -> Var {
        let out = self.value().squeeze(dim);
        Var::record("squeeze", out, &[self], move |g, grads| {
            grads.add(0, || g.unsqueeze(dim))
        })
    }

    /// Join along `dim`. Backward: each input gets its slice of the gradient (a view).
    /// PyTorch equivalent: `torch.cat(vars, dim)`.
    pub fn concat(vars: &[&Var], dim: usize) -> Var {
        let values: Vec<&Tensor> = vars.iter().map(|v| v.value()).collect();
        let out = Tensor::concat(&values, dim);
        let sizes: Vec<usize> = vars.iter().map(|v| v.shape()[dim]).collect();
        Var::record("concat", out, vars, move |g, grads| {
            let mut start = 0;
            for (i, &len) in sizes.iter().enumerate() {
                grads.add(i, || g.narrow(dim, start, len));
                start += len;
            }
        })
    }

    /// Stack along a new `dim`. Backward: each input gets its slice of the gradient.
    /// PyTorch equivalent: `torch.stack(vars, dim)`.
    pub fn stack(vars: &[&Var], dim: usize) -> Var {
        let unsqueezed: Vec<Var> = vars.iter().map(|v| v.unsqueeze(dim)).collect();
        Var::concat(&unsqueezed.iter().collect::<Vec<_>>(), dim)
    }
}
