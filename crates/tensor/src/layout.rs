//! A layout is arithmetic: shape + strides (in elements) + offset into storage.
//!
//! Every view (transpose, permute, narrow, broadcast, unsqueeze/squeeze, reshape of a
//! contiguous tensor) is a new `Layout` over the same storage; nothing is copied.
//! Element `[i0, i1, ..]` lives at `offset + i0*strides[0] + i1*strides[1] + ..`.
//! A broadcast dimension has stride 0.

/// Shape, strides and offset of a strided view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

/// Row-major ("C order") strides for `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1;
    for (stride, &dim) in strides.iter_mut().zip(shape).rev() {
        *stride = acc;
        acc *= dim;
    }
    strides
}

/// NumPy broadcasting of two shapes, or `None` when they are incompatible.
///
/// Shapes are aligned on their last dimension; a dimension of size 1 stretches.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() {
            1
        } else {
            a[i - (rank - a.len())]
        };
        let db = if i < rank - b.len() {
            1
        } else {
            b[i - (rank - b.len())]
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

impl Layout {
    /// A contiguous row-major layout starting at offset 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// A layout from raw parts. The caller guarantees every index stays in storage.
    pub(crate) fn from_parts(shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Self {
        debug_assert_eq!(shape.len(), strides.len());
        Layout {
            shape,
            strides,
            offset,
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when elements are laid out row-major with no gaps (size-1 dims ignored).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&dim, &stride) in self.shape.iter().zip(&self.strides).rev() {
            if dim != 1 && stride != expected {
                return false;
            }
            expected *= dim;
        }
        true
    }

    /// Storage range `[offset, offset + numel)` when contiguous.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        self.is_contiguous()
            .then(|| self.offset..self.offset + self.numel())
    }

    /// Swap two dimensions.
    pub fn transpose(&self, d0: usize, d1: usize) -> Layout {
        let mut l = self.clone();
        l.shape.swap(d0, d1);
        l.strides.swap(d0, d1);
        l
    }

    /// Reorder dimensions: new dim `i` is old dim `order[i]`.
    pub fn permute(&self, order: &[usize]) -> Layout {
        Layout {
            shape: order.iter().map(|&d| self.shape[d]).collect(),
            strides: order.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        }
    }

    /// Keep `len` entries of dimension `dim` starting at `start`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Layout {
        let mut l = self.clone();
        l.offset += start * self.strides[dim];
        l.shape[dim] = len;
        l
    }

    /// Stretch to `shape` (already checked compatible): new or size-1 dims get stride 0.
    pub fn broadcast_to(&self, shape: &[usize]) -> Layout {
        let extra = shape.len() - self.rank();
        let mut strides = vec![0; shape.len()];
        for i in 0..self.rank() {
            strides[extra + i] = if self.shape[i] == shape[extra + i] {
                self.strides[i]
            } else {
                0
            };
        }
        Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        }
    }

    /// Insert a dimension of size 1 at `dim`.
    pub fn unsqueeze(&self, dim: usize) -> Layout {
        let mut l = self.clone();
        let stride = if dim < self.rank() {
            self.strides[dim] * self.shape[dim]
        } else {
            1
        };
        l.shape.insert(dim, 1);
        l.strides.insert(dim, stride);
        l
    }

    /// Remove dimension `dim` (callers check its size is 1, except when walking rows).
    pub fn squeeze(&self, dim: usize) -> Layout {
        let mut l = self.clone();
        l.shape.remove(dim);
        l.strides.remove(dim);
        l
    }

    /// Contiguous layout with a new shape of the same element count, keeping the offset.
    pub fn reshape_contiguous(&self, shape: &[usize]) -> Layout {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: self.offset,
        }
    }

    /// Storage offset of a multi-index.
    pub fn offset_of(&self, index: &[usize]) -> usize {
        self.offset
            + index
                .iter()
                .zip(&self.strides)
                .map(|(i, s)| i * s)
                .sum::<usize>()
    }

    /// Iterator over storage offsets in row-major logical order.
    pub fn offsets(&self) -> StridedOffsets<'_> {
        StridedOffsets::starting_at(self, 0)
    }

    /// Iterator over storage offsets in row-major logical order from the element at
    /// row-major position `start` on (empty when `start >= numel`).
    ///
    /// Costs one division per dimension to find the starting multi-index, then steps as
    /// [`offsets`](Self::offsets) does, so a parallel task starts at its own share of a
    /// view without walking the elements before it.
    pub fn offsets_from(&self, start: usize) -> StridedOffsets<'_> {
        StridedOffsets::starting_at(self, start)
    }

    /// An equivalent layout with as few dimensions as possible: the same elements at
    /// the same storage offsets, in the same row-major order.
    ///
    /// Size-1 dimensions are dropped, and dimension `i` is merged with dimension `i + 1`
    /// when `strides[i] == strides[i + 1] * shape[i + 1]`: stepping `i` then lands where
    /// running `i + 1` one past its end would, so the pair walks like one dimension of
    /// size `shape[i] * shape[i + 1]` and stride `strides[i + 1]`. A contiguous layout
    /// becomes rank 1, a permuted NCHW tensor `[n, h, w, c]` becomes `[n, h*w, c]`, a
    /// single element rank 0, and an empty layout `[0]`.
    pub fn merged_dims(&self) -> Layout {
        merge_dims(&[self]).pop().expect("one layout in, one out")
    }
}

/// [`Layout::merged_dims`] for several layouts of one shape at once: a pair of dimensions
/// is merged only where every layout allows it, so the results still share one shape
/// and walking them together visits matching elements.
///
/// # Panics
/// When the layouts do not all have the same shape.
pub fn merge_dims(layouts: &[&Layout]) -> Vec<Layout> {
    let Some(first) = layouts.first() else {
        return Vec::new();
    };
    let shape = first.shape();
    for l in layouts {
        assert_eq!(
            l.shape(),
            shape,
            "merge_dims: shapes {shape:?} and {:?} differ",
            l.shape()
        );
    }
    if shape.contains(&0) {
        return layouts
            .iter()
            .map(|l| Layout::from_parts(vec![0], vec![1], l.offset))
            .collect();
    }
    let mut merged_shape: Vec<usize> = Vec::with_capacity(shape.len());
    let mut merged_strides: Vec<Vec<usize>> = vec![Vec::with_capacity(shape.len()); layouts.len()];
    for (dim, &size) in shape.iter().enumerate() {
        if size == 1 {
            continue;
        }
        let continues_previous = !merged_shape.is_empty()
            && layouts
                .iter()
                .zip(&merged_strides)
                .all(|(l, strides)| strides.last() == Some(&(l.strides[dim] * size)));
        if continues_previous {
            *merged_shape.last_mut().expect("checked non-empty") *= size;
            for (l, strides) in layouts.iter().zip(&mut merged_strides) {
                *strides.last_mut().expect("checked non-empty") = l.strides[dim];
            }
        } else {
            merged_shape.push(size);
            for (l, strides) in layouts.iter().zip(&mut merged_strides) {
                strides.push(l.strides[dim]);
            }
        }
    }
    layouts
        .iter()
        .zip(merged_strides)
        .map(|(l, strides)| Layout::from_parts(merged_shape.clone(), strides, l.offset))
        .collect()
}

/// Storage offsets of a layout's elements, in row-major logical order.
///
/// Keeps a multi-index and the current offset; each step bumps the last dimension and
/// carries into earlier ones, as an odometer does.
pub struct StridedOffsets<'a> {
    layout: &'a Layout,
    index: Vec<usize>,
    next: Option<usize>,
}

impl<'a> StridedOffsets<'a> {
    /// The walk from row-major position `start`: its multi-index by division, once.
    fn starting_at(layout: &'a Layout, start: usize) -> Self {
        let mut index = vec![0; layout.rank()];
        if start >= layout.numel() {
            return StridedOffsets {
                layout,
                index,
                next: None,
            };
        }
        let mut rest = start;
        for (i, &size) in index.iter_mut().zip(&layout.shape).rev() {
            *i = rest % size;
            rest /= size;
        }
        let next = Some(layout.offset_of(&index));
        StridedOffsets {
            layout,
            index,
            next,
        }
    }
}

impl Iterator for StridedOffsets<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let current = self.next?;
        let (shape, strides) = (&self.layout.shape, &self.layout.strides);
        let mut offset = current;
        let mut dim = shape.len();
        loop {
            if dim == 0 {
                self.next = None;
                break;
            }
            dim -= 1;
            self.index[dim] += 1;
            offset += strides[dim];
            if self.index[dim] < shape[dim] {
                self.next = Some(offset);
                break;
            }
            offset -= strides[dim] * shape[dim];
            self.index[dim] = 0;
        }
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_strides_are_row_major() {
        assert_eq!(contiguous_strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert!(Layout::contiguous(&[2, 3]).is_contiguous());
        assert!(!Layout::contiguous(&[2, 3]).transpose(0, 1).is_contiguous());
    }

    #[test]
    fn broadcast_shapes_follow_numpy() {
        assert_eq!(broadcast_shape(&[3, 1], &[4]), Some(vec![3, 4]));
        assert_eq!(broadcast_shape(&[2, 3], &[3]), Some(vec![2, 3]));
        assert_eq!(broadcast_shape(&[2, 3], &[2]), None);
        assert_eq!(broadcast_shape(&[], &[5]), Some(vec![5]));
    }

    #[test]
    fn strided_offsets_visit_transposed_order() {
        let l = Layout::contiguous(&[2, 3]).transpose(0, 1);
        assert_eq!(l.offsets().collect::<Vec<_>>(), vec![0, 3, 1, 4, 2, 5]);
        let n = Layout::contiguous(&[3, 4]).narrow(1, 1, 2);
        assert_eq!(n.offsets().collect::<Vec<_>>(), vec![1, 2, 5, 6, 9, 10]);
        let b = Layout::contiguous(&[3]).broadcast_to(&[2, 3]);
        assert_eq!(b.offsets().collect::<Vec<_>>(), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(Layout::contiguous(&[]).offsets().count(), 1);
        assert_eq!(Layout::contiguous(&[0, 3]).offsets().count(), 0);
    }

    /// Storage offsets in row-major order the slow way: each position's multi-index by
    /// division, then the dot product with the strides.
    fn naive_offsets(l: &Layout) -> Vec<usize> {
        (0..l.numel())
            .map(|position| {
                let mut rest = position;
                let mut offset = l.offset();
                for (&size, &stride) in l.shape().iter().zip(l.strides()).rev() {
                    offset += (rest % size) * stride;
                    rest /= size;
                }
                offset
            })
            .collect()
    }

    /// Views of every kind: contiguous, transposed, permuted, narrowed, broadcast, with
    /// size-1 dimensions, rank 0, empty, and combinations.
    fn assorted_layouts() -> Vec<(&'static str, Layout)> {
        let c = Layout::contiguous;
        vec![
            ("rank 0", c(&[])),
            ("one element", c(&[1, 1])),
            ("vector", c(&[7])),
            ("contiguous", c(&[2, 3, 4])),
            ("offset contiguous", c(&[5, 3, 4]).narrow(0, 2, 2)),
            ("transposed", c(&[3, 5]).transpose(0, 1)),
            (
                "permuted nchw->nhwc",
                c(&[2, 3, 4, 5]).permute(&[0, 2, 3, 1]),
            ),
            (
                "permuted nhwc->nchw",
                c(&[2, 4, 5, 3]).permute(&[0, 3, 1, 2]),
            ),
            ("reversed", c(&[2, 3, 4]).permute(&[2, 1, 0])),
            ("narrowed inner", c(&[3, 4, 6]).narrow(2, 1, 4)),
            (
                "narrowed interior",
                c(&[2, 3, 6, 7]).narrow(2, 1, 4).narrow(3, 1, 5),
            ),
            ("narrowed outer", c(&[4, 3, 2]).narrow(1, 1, 2)),
            ("narrowed to 1", c(&[3, 4, 5]).narrow(1, 2, 1)),
            ("broadcast row", c(&[4]).broadcast_to(&[3, 4])),
            ("broadcast column", c(&[3, 1]).broadcast_to(&[2, 3, 4])),
            ("broadcast twice", c(&[1, 1, 4]).broadcast_to(&[2, 3, 4])),
            ("broadcast scalar", c(&[]).broadcast_to(&[2, 3])),
            (
                "size-1 dims",
                c(&[2, 3]).unsqueeze(1).unsqueeze(0).unsqueeze(4),
            ),
            ("size-1 dims transposed", c(&[2, 1, 3]).transpose(0, 2)),
            (
                "permuted narrowed",
                c(&[3, 5, 4]).narrow(1, 1, 3).permute(&[2, 0, 1]),
            ),
            (
                "permuted broadcast",
                c(&[3, 1, 4]).broadcast_to(&[3, 2, 4]).permute(&[1, 2, 0]),
            ),
            ("empty", c(&[0, 3])),
            ("empty middle", c(&[2, 0, 3]).transpose(0, 2)),
        ]
    }

    #[test]
    fn offsets_from_any_position_continue_the_naive_walk() {
        for (name, l) in assorted_layouts() {
            let all = naive_offsets(&l);
            assert_eq!(l.offsets().collect::<Vec<_>>(), all, "{name}: offsets()");
            for start in 0..=all.len() + 1 {
                let rest: Vec<usize> = l.offsets_from(start).collect();
                assert_eq!(
                    rest,
                    all[start.min(all.len())..],
                    "{name}: offsets_from({start})"
                );
            }
        }
    }

    #[test]
    fn merged_dims_keep_every_offset_in_order() {
        for (name, l) in assorted_layouts() {
            let merged = l.merged_dims();
            assert_eq!(
                naive_offsets(&merged),
                naive_offsets(&l),
                "{name}: {merged:?}"
            );
            assert_eq!(merged.numel(), l.numel(), "{name}");
            assert!(
                merged.shape().iter().all(|&d| d != 1),
                "{name}: size-1 dims left in {merged:?}"
            );
            // Nothing mergeable is left: no adjacent pair satisfies the merge rule.
            for i in 1..merged.rank() {
                let (s, d) = (merged.strides(), merged.shape());
                assert_ne!(
                    s[i - 1],
                    s[i] * d[i],
                    "{name}: dims {} and {i} of {merged:?} merge",
                    i - 1
                );
            }
        }
    }

    #[test]
    fn merged_dims_of_common_views() {
        let c = Layout::contiguous;
        let shape_and_strides = |l: Layout| {
            let m = l.merged_dims();
            (m.shape().to_vec(), m.strides().to_vec())
        };
        assert_eq!(shape_and_strides(c(&[2, 3, 4])), (vec![24], vec![1]));
        let nhwc = c(&[2, 3, 4, 5]).permute(&[0, 2, 3, 1]);
        assert_eq!(shape_and_strides(nhwc), (vec![2, 20, 3], vec![60, 1, 20]));
        let nchw = c(&[2, 4, 5, 3]).permute(&[0, 3, 1, 2]);
        assert_eq!(shape_and_strides(nchw), (vec![2, 3, 20], vec![60, 1, 3]));
        let interior = c(&[2, 3, 6, 7]).narrow(2, 1, 4).narrow(3, 1, 5);
        assert_eq!(shape_and_strides(interior), (vec![6, 4, 5], vec![42, 7, 1]));
        assert_eq!(
            shape_and_strides(c(&[4]).broadcast_to(&[2, 3, 4])),
            (vec![6, 4], vec![0, 1])
        );
        assert_eq!(shape_and_strides(c(&[1, 1])), (vec![], vec![]));
        assert_eq!(c(&[3, 4]).narrow(0, 1, 1).merged_dims().offset(), 4);
    }

    #[test]
    fn merge_dims_merges_only_where_every_layout_allows() {
        let a = Layout::contiguous(&[2, 3, 4]);
        let b = Layout::contiguous(&[2, 4, 3]).transpose(1, 2); // [2, 3, 4], strides [12, 1, 3]
        let merged = merge_dims(&[&a, &a]);
        assert_eq!(merged[0].shape(), &[24]);
        let merged = merge_dims(&[&a, &b]);
        assert_eq!(merged[0].shape(), &[2, 3, 4]);
        assert_eq!(merged[1].strides(), &[12, 1, 3]);
        let row = Layout::contiguous(&[4]).broadcast_to(&[2, 3, 4]);
        let merged = merge_dims(&[&a, &row]);
        assert_eq!(
            (merged[0].shape(), merged[0].strides()),
            (&[6, 4][..], &[4, 1][..])
        );
        assert_eq!(merged[1].strides(), &[0, 1]);
        for (x, m) in [&a, &row].into_iter().zip(&merged) {
            assert_eq!(naive_offsets(m), naive_offsets(x));
        }
    }
}
