//! When to use threads, and the few loops that do.
//!
//! Small tensors run serially: a rayon task costs a few microseconds, more than a
//! 10k-element add. Above [`PARALLEL_THRESHOLD`] elements, loops split into chunks of at
//! least [`MIN_CHUNK`] elements on rayon's pool. Matmul also splits its work on rayon
//! (see `matmul.rs`), so rayon is the one source of threads: `RAYON_NUM_THREADS` or a
//! `rayon::ThreadPool::install` sets how many for everything.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::layout::{merge_dims, Layout};
use crate::transpose::{
    tile_shape, tiles, transpose_patch_into, Scratch, Stores, COPY_TILE_ELEMENTS,
    SCRATCH_TILE_ELEMENTS,
};

/// Element count above which element-wise loops and reductions go parallel.
pub const PARALLEL_THRESHOLD: usize = 1 << 15;

/// Smallest chunk of elements a parallel task gets.
pub const MIN_CHUNK: usize = 1 << 13;

/// True when a loop over `n` elements should use rayon.
#[inline]
pub fn worth_parallel(n: usize) -> bool {
    n >= PARALLEL_THRESHOLD && rayon::current_num_threads() > 1
}

// The parallel loops below hand each task a whole chunk and run a plain slice loop over
// it. Rayon's per-element `map(..).collect()` is not vectorised when `f` captures a
// reference (as `add_scalar`'s closure does): the compiler cannot rule out that the
// output aliases it, so two threads ran four times slower than one.

/// `out[i] = f(input[i])`, in parallel chunks when large.
pub fn map_slice(input: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    if !worth_parallel(input.len()) {
        return input.iter().map(|&x| f(x)).collect();
    }
    let fill = |out: &mut [MaybeUninit<f32>]| {
        out.par_chunks_mut(MIN_CHUNK)
            .zip(input.par_chunks(MIN_CHUNK))
            .for_each(|(out, input)| {
                out.iter_mut().zip(input).for_each(|(o, &x)| {
                    o.write(f(x));
                })
            })
    };
    // SAFETY: the chunks of `out` pair up with those of `input`, of the same length, and
    // every element of each is written.
    unsafe { filled_buffer(input.len(), fill) }
}

/// A new buffer of `len` elements in planes of `plane`, every element of plane `p` set
/// to `value(p)` (a convolution's output starting from its bias), in parallel chunks
/// when large.
///
/// A buffer filled by one thread keeps the others waiting: the zeroed input gradient of
/// each ResNet-20 convolution (up to 6.4 MB), filled by `vec![0.0; n]` (a `memset` on
/// reused memory), was 2% of a training step's samples on one thread of two, with the
/// other idle.
pub fn planes_of(len: usize, plane: usize, value: impl Fn(usize) -> f32 + Sync) -> Vec<f32> {
    let plane = plane.max(1);
    // Elements `start..start + out.len()` of the buffer, a plane's run at a time.
    let fill_from = |start: usize, out: &mut [MaybeUninit<f32>]| {
        let mut i = 0;
        while i < out.len() {
            let p = (start + i) / plane;
            let end = ((p + 1) * plane - start).min(out.len());
            out[i..end].fill(MaybeUninit::new(value(p)));
            i = end;
        }
    };
    let fill = |out: &mut [MaybeUninit<f32>]| {
        if worth_parallel(len) {
            out.par_chunks_mut(MIN_CHUNK)
                .enumerate()
                .for_each(|(k, chunk)| fill_from(k * MIN_CHUNK, chunk));
        } else {
            fill_from(0, out);
        }
    };
    // SAFETY: the runs of `fill_from` cover its whole slice, and the chunks cover the
    // buffer.
    unsafe { filled_buffer(len, fill) }
}

/// A new buffer of `len` copies of `value`, in parallel chunks when large (see
/// [`planes_of`]).
pub fn filled(len: usize, value: f32) -> Vec<f32> {
    planes_of(len, len, |_| value)
}

/// `out[i] = f(a[i], b[i])`, in parallel chunks when large.
pub fn zip_slices(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "zip_slices: lengths differ");
    if !worth_parallel(a.len()) {
        return a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
    }
    let fill = |out: &mut [MaybeUninit<f32>]| {
        let inputs = a.par_chunks(MIN_CHUNK).zip(b.par_chunks(MIN_CHUNK));
        out.par_chunks_mut(MIN_CHUNK)
            .zip(inputs)
            .for_each(|(out, (a, b))| {
                for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    o.write(f(x, y));
                }
            })
    };
    // SAFETY: the chunks of `out`, `a` and `b` have the same lengths (the slices do), and
    // every element of each output chunk is written.
    unsafe { filled_buffer(a.len(), fill) }
}

/// `a[i] = f(a[i], b[i])` in place, in parallel chunks when large.
pub fn zip_assign(a: &mut [f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    debug_assert_eq!(a.len(), b.len());
    let assign = |a: &mut [f32], b: &[f32]| a.iter_mut().zip(b).for_each(|(x, &y)| *x = f(*x, y));
    if worth_parallel(a.len()) {
        a.par_chunks_mut(MIN_CHUNK)
            .zip(b.par_chunks(MIN_CHUNK))
            .for_each(|(a, b)| assign(a, b));
    } else {
        assign(a, b);
    }
}

/// `a[i] = f(a[i])` in place, in parallel chunks when large.
pub fn map_assign(a: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
    let assign = |a: &mut [f32]| a.iter_mut().for_each(|x| *x = f(*x));
    if worth_parallel(a.len()) {
        a.par_chunks_mut(MIN_CHUNK).for_each(assign);
    } else {
        assign(a);
    }
}

/// A new buffer of `len` elements, each written by `fill`.
///
/// The loops that use it write every element exactly once, so the buffer is not zeroed
/// first: `vec![0.0; len]` costs an extra pass (`calloc` clears reused memory), about a
/// third of the time of a contiguous copy of the same bytes.
///
/// # Safety
/// `fill` must write every element of the slice it is given.
pub(crate) unsafe fn filled_buffer(
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<f32>]),
) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    fill(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: the first `len` elements are initialised (the caller's promise about `fill`).
    unsafe { out.set_len(len) };
    out
}

/// `out[i] = f(x[i], param(i / plane))`: an element-wise map whose constants change from
/// one `plane`-long run of `x` to the next (batch norm's per-channel scale and shift,
/// with `param(p)` giving plane `p`'s), into a new buffer, in parallel when large.
///
/// The output is written once, never zeroed first (`vec![0.0; n]` would cost a pass).
///
/// # Panics
/// When `plane` is 0 and `x` is not empty, or `x` is not a whole number of planes.
pub fn map_planes<P>(
    x: &[f32],
    plane: usize,
    param: impl Fn(usize) -> P + Sync,
    f: impl Fn(f32, &P) -> f32 + Sync,
) -> Vec<f32> {
    zip_planes(x, x, plane, param, |v, _, p| f(v, p))
}

/// `out[i] = f(a[i], b[i], param(i / plane))`: [`map_planes`] over two inputs of one length.
///
/// # Panics
/// When the lengths differ, `plane` is 0 and the inputs are not empty, or they are not a
/// whole number of planes.
pub fn zip_planes<P>(
    a: &[f32],
    b: &[f32],
    plane: usize,
    param: impl Fn(usize) -> P + Sync,
    f: impl Fn(f32, f32, &P) -> f32 + Sync,
) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "zip_planes: lengths differ");
    if a.is_empty() {
        return Vec::new();
    }
    assert!(
        plane > 0 && a.len().is_multiple_of(plane),
        "zip_planes: {} elements in planes of {plane}",
        a.len()
    );
    // One plane: (plane index, (output, (a, b))).
    type Plane<'a> = (usize, (&'a mut [MaybeUninit<f32>], (&'a [f32], &'a [f32])));
    let fill_plane = |(p, (out, (a, b))): Plane<'_>| {
        let constants = param(p);
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            o.write(f(x, y, &constants));
        }
    };
    let fill = |out: &mut [MaybeUninit<f32>]| {
        if worth_parallel(a.len()) {
            out.par_chunks_mut(plane)
                .zip(a.par_chunks(plane).zip(b.par_chunks(plane)))
                .enumerate()
                .for_each(fill_plane);
        } else {
            out.chunks_mut(plane)
                .zip(a.chunks(plane).zip(b.chunks(plane)))
                .enumerate()
                .for_each(fill_plane);
        }
    };
    // SAFETY: `out`, `a` and `b` have one length and are cut into the same planes, and
    // `fill_plane` writes every element of each output plane.
    unsafe { filled_buffer(a.len(), fill) }
}

// ---------------------------------------------------------------------------------
// Strided views: copy, map and zip without walking element by element
// ---------------------------------------------------------------------------------

// Each loop merges the views' dimensions ([`merge_dims`]) and walks the result as blocks of
// the last two dimensions ([`Blocks`]), split across threads by [`fill_blocks`]. A block
// is walked row by row when its rows are contiguous, broadcast or plainly strided, and
// in transposed tiles (`transpose.rs`) when an operand runs down its columns (an NCHW
// <-> NHWC permute).
//
// Every output element is computed on its own, so results do not depend on the number
// of threads.

/// Copy a strided view into a row-major buffer, in parallel when large.
///
/// A contiguous view is one `memcpy`. A view that runs down its columns is copied in
/// transposed tiles, straight from storage into the output; any other row by row
/// (a `memcpy`-like loop when rows are contiguous, a fill when they are broadcast).
pub fn gather_strided(storage: &[f32], layout: &Layout) -> Vec<f32> {
    if let Some(range) = layout.contiguous_range() {
        return storage[range].to_vec();
    }
    // SAFETY: `gather_strided_into` writes every element of the buffer it is given.
    unsafe {
        filled_buffer(layout.numel(), |out| {
            gather_strided_into(storage, layout, out)
        })
    }
}

/// [`gather_strided`] into the start of `out`, which may be longer (a caller that
/// appends more after the view); every one of the view's `layout.numel()` elements is
/// written.
///
/// # Panics
/// When `out` is shorter than the view.
pub fn gather_strided_into(storage: &[f32], layout: &Layout, out: &mut [MaybeUninit<f32>]) {
    let out = &mut out[..layout.numel()];
    if let Some(range) = layout.contiguous_range() {
        for (o, &x) in out.iter_mut().zip(&storage[range]) {
            o.write(x);
        }
        return;
    }
    let blocks = Blocks::new([layout]);
    if !blocks.is_transposed(0) {
        map_rows_into(out, &blocks, storage, &|x| x);
        return;
    }
    let cols = blocks.cols;
    let stores = Stores::for_output(std::mem::size_of_val(out));
    // `fill_blocks` hands out every row of the output once, and `transpose_patch_into`
    // writes every element of its block. Tasks start on whole tiles and on whole 16-row
    // blocks, which streaming stores write.
    fill_blocks(
        out,
        &blocks,
        tile_shape(cols, COPY_TILE_ELEMENTS)[0].next_multiple_of(16),
        |dst, [base], rows| {
            transpose_patch_into(blocks.patch(0, storage, base), [rows, cols], dst, stores)
        },
    )
}

/// `out[i] = f(x[i])` for the elements `x` of a strided view in row-major order, into a
/// new row-major buffer, in parallel when large.
///
/// A view that runs down its columns is read in transposed tiles (through a scratch
/// tile, then `f`); any other row by row.
pub fn map_strided(storage: &[f32], layout: &Layout, f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    if let Some(range) = layout.contiguous_range() {
        return map_slice(&storage[range], f);
    }
    let blocks = Blocks::new([layout]);
    let cols = blocks.cols;
    let fill = |out: &mut [MaybeUninit<f32>]| {
        if !blocks.is_transposed(0) {
            map_rows_into(out, &blocks, storage, &f);
            return;
        }
        let down_columns = blocks.tiles_down_columns();
        fill_blocks(
            out,
            &blocks,
            tile_shape(cols, SCRATCH_TILE_ELEMENTS)[0],
            |dst, [base], rows| {
                let mut scratch = Scratch::new();
                for ([r0, c0], size) in tiles(rows, cols, down_columns, SCRATCH_TILE_ELEMENTS) {
                    let tile = scratch.fill(blocks.patch(0, storage, base).at(r0, c0), size);
                    map_patch(&mut dst[r0 * cols + c0..], cols, size, tile, &f);
                }
            },
        );
    };
    // SAFETY: `fill_blocks` hands out every row of the output once; the row loop covers
    // each block and the tiles cover it too, and `map_patch` writes every element of the
    // patch it is given.
    unsafe { filled_buffer(layout.numel(), fill) }
}

/// `out = f(view)` row by row, for a view that does not run down its columns
/// ([`Blocks::is_transposed`] is false): each row of a block is one run of
/// [`map_patch`].
fn map_rows_into(
    out: &mut [MaybeUninit<f32>],
    blocks: &Blocks<1>,
    storage: &[f32],
    f: &(impl Fn(f32) -> f32 + Sync),
) {
    let cols = blocks.cols;
    fill_blocks(out, blocks, 1, |dst, [base], rows| {
        map_patch(dst, cols, [rows, cols], blocks.patch(0, storage, base), f);
    });
}

/// `out[i] = f(a[i], b[i])` for the elements of two strided views of one shape, in
/// row-major order, into a new row-major buffer, in parallel when large.
///
/// Rows that are contiguous or broadcast (stride 0) get loops the compiler vectorises,
/// so "matrix + bias row" touches each element once with no index arithmetic inside
/// the row. An operand that runs down the columns (a permuted view) is read in
/// transposed tiles, as [`map_strided`] does.
///
/// # Panics
/// When the two layouts have different shapes.
pub fn zip_strided(
    (a, a_layout): (&[f32], &Layout),
    (b, b_layout): (&[f32], &Layout),
    f: impl Fn(f32, f32) -> f32 + Sync,
) -> Vec<f32> {
    let blocks = Blocks::new([a_layout, b_layout]);
    let cols = blocks.cols;
    let transposed = [blocks.is_transposed(0), blocks.is_transposed(1)];
    let data = [a, b];
    let fill = |out: &mut [MaybeUninit<f32>]| {
        if transposed == [false, false] {
            fill_blocks(out, &blocks, 1, |dst, [a_base, b_base], rows| {
                let (x, y) = (blocks.patch(0, a, a_base), blocks.patch(1, b, b_base));
                zip_patch(dst, cols, [rows, cols], x, y, &f);
            });
            return;
        }
        let down_columns = blocks.tiles_down_columns();
        fill_blocks(
            out,
            &blocks,
            tile_shape(cols, SCRATCH_TILE_ELEMENTS)[0],
            |dst, bases, rows| {
                let (mut scratch_x, mut scratch_y) = (Scratch::new(), Scratch::new());
                for ([r0, c0], size) in tiles(rows, cols, down_columns, SCRATCH_TILE_ELEMENTS) {
                    // A transposed operand is read through its scratch tile, the other in place.
                    let [x, y] = [0, 1].map(|k| blocks.patch(k, data[k], bases[k]).at(r0, c0));
                    let x = if transposed[0] {
                        scratch_x.fill(x, size)
                    } else {
                        x
                    };
                    let y = if transposed[1] {
                        scratch_y.fill(y, size)
                    } else {
                        y
                    };
                    zip_patch(&mut dst[r0 * cols + c0..], cols, size, x, y, &f);
                }
            },
        );
    };
    // SAFETY: as in `map_strided`, with `zip_patch` writing every element of its patch.
    unsafe { filled_buffer(a_layout.numel(), fill) }
}

/// One operand's part of a block: element `(r, c)` at `data[start + r * row_stride +
/// c * col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct Patch<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) start: usize,
    pub(crate) row_stride: usize,
    pub(crate) col_stride: usize,
}

impl Patch<'_> {
    /// The patch from element `(r0, c0)` on.
    pub(crate) fn at(self, r0: usize, c0: usize) -> Self {
        Patch {
            start: self.start + r0 * self.row_stride + c0 * self.col_stride,
            ..self
        }
    }

    /// True when its `rows × cols` elements follow one another with stride
    /// `col_stride`, so they can be walked as one run.
    fn is_one_run(&self, cols: usize) -> bool {
        self.row_stride == cols * self.col_stride
    }
}

/// `dst[r * dst_stride + c] = f(x(r, c))` for `(r, c) < size`.
///
/// When the output rows and the operand's rows both follow one another (a tile as wide
/// as the output), the patch is one run: a single loop, not one per short row.
fn map_patch(
    dst: &mut [MaybeUninit<f32>],
    dst_stride: usize,
    [rows, cols]: [usize; 2],
    x: Patch,
    f: &impl Fn(f32) -> f32,
) {
    if dst_stride == cols && x.is_one_run(cols) {
        return map_run(&mut dst[..rows * cols], x, f);
    }
    for r in 0..rows {
        map_run(&mut dst[r * dst_stride..][..cols], x.at(r, 0), f);
    }
}

/// `dst[r * dst_stride + c] = f(x(r, c), y(r, c))` for `(r, c) < size`, as one run when
/// the output and both operands allow it (see [`map_patch`]).
fn zip_patch(
    dst: &mut [MaybeUninit<f32>],
    dst_stride: usize,
    [rows, cols]: [usize; 2],
    x: Patch,
    y: Patch,
    f: &impl Fn(f32, f32) -> f32,
) {
    if dst_stride == cols && x.is_one_run(cols) && y.is_one_run(cols) {
        return zip_run(&mut dst[..rows * cols], x, y, f);
    }
    for r in 0..rows {
        zip_run(
            &mut dst[r * dst_stride..][..cols],
            x.at(r, 0),
            y.at(r, 0),
            f,
        );
    }
}

/// `dst[j] = f(x[j])` along the run starting at `x` (its column stride), with a
/// vectorisable loop when the run is contiguous (stride 1) or one broadcast value
/// (stride 0).
#[inline(always)]
fn map_run(dst: &mut [MaybeUninit<f32>], x: Patch, f: &impl Fn(f32) -> f32) {
    let (len, data, start) = (dst.len(), x.data, x.start);
    match x.col_stride {
        1 => dst
            .iter_mut()
            .zip(&data[start..][..len])
            .for_each(|(d, &v)| {
                d.write(f(v));
            }),
        0 => {
            let value = f(data[start]);
            dst.iter_mut().for_each(|d| {
                d.write(value);
            });
        }
        stride => dst.iter_mut().enumerate().for_each(|(j, d)| {
            d.write(f(data[start + j * stride]));
        }),
    }
}

/// `dst[j] = f(x[j], y[j])` along the runs starting at `x` and `y` (their column
/// strides), with vectorisable loops when each run is contiguous or broadcast.
#[inline(always)]
fn zip_run(dst: &mut [MaybeUninit<f32>], x: Patch, y: Patch, f: &impl Fn(f32, f32) -> f32) {
    let len = dst.len();
    match (x.col_stride, y.col_stride) {
        (1, 1) => {
            let (xs, ys) = (&x.data[x.start..][..len], &y.data[y.start..][..len]);
            for ((d, &a), &b) in dst.iter_mut().zip(xs).zip(ys) {
                d.write(f(a, b));
            }
        }
        (1, 0) => {
            let b = y.data[y.start];
            for (d, &a) in dst.iter_mut().zip(&x.data[x.start..][..len]) {
                d.write(f(a, b));
            }
        }
        (0, 1) => {
            let a = x.data[x.start];
            for (d, &b) in dst.iter_mut().zip(&y.data[y.start..][..len]) {
                d.write(f(a, b));
            }
        }
        (sx, sy) => {
            for (j, d) in dst.iter_mut().enumerate() {
                d.write(f(x.data[x.start + j * sx], y.data[y.start + j * sy]));
            }
        }
    }
}

/// `K` strided views of one shape, cut for walking: after merging dimensions
/// ([`merge_dims`]), the last two form a `rows × cols` block and the ones before them
/// index the planes (a view of rank below 2 gets leading size-1 dimensions). Row `g`
/// of the row-major output is row `g % rows` of plane `g / rows`, so a thread can start
/// at any row: the plane's origin comes from [`Layout::offsets_from`].
struct Blocks<const K: usize> {
    /// Per operand: the storage offsets of the plane origins (all dims but the last two).
    planes: [Layout; K],
    rows: usize,
    cols: usize,
    row_strides: [usize; K],
    col_strides: [usize; K],
}

impl<const K: usize> Blocks<K> {
    fn new(layouts: [&Layout; K]) -> Self {
        let merged = merge_dims(&layouts);
        // Pad in front to rank 2 with size-1 dimensions (their stride is never used).
        let padding = 2usize.saturating_sub(merged[0].rank());
        let padded = |dims: &[usize], fill: usize| -> Vec<usize> {
            std::iter::repeat_n(fill, padding)
                .chain(dims.iter().copied())
                .collect()
        };
        let shape = padded(merged[0].shape(), 1);
        let strides: [Vec<usize>; K] = std::array::from_fn(|k| padded(merged[k].strides(), 0));
        let planes = shape.len() - 2;
        Blocks {
            planes: std::array::from_fn(|k| {
                Layout::from_parts(
                    shape[..planes].to_vec(),
                    strides[k][..planes].to_vec(),
                    merged[k].offset(),
                )
            }),
            rows: shape[planes],
            cols: shape[planes + 1],
            row_strides: std::array::from_fn(|k| strides[k][planes]),
            col_strides: std::array::from_fn(|k| strides[k][planes + 1]),
        }
    }

    /// Operand `k`'s part of a block whose first element is at `base` in `data`.
    fn patch<'a>(&self, k: usize, data: &'a [f32], base: usize) -> Patch<'a> {
        Patch {
            data,
            start: base,
            row_stride: self.row_strides[k],
            col_stride: self.col_strides[k],
        }
    }

    /// True when operand `k` runs down the columns of the block (row stride 1) and jumps
    /// along its rows, as an NCHW <-> NHWC permute does. Walking its rows would read one
    /// element per cache line; the transposed tiles of [`crate::transpose`] read whole
    /// lines instead.
    fn is_transposed(&self, k: usize) -> bool {
        self.rows > 1 && self.row_strides[k] == 1 && self.col_strides[k] > 1
    }

    /// Which way to walk the tiles of a block: down the columns of tiles when some
    /// operand's column stride is the largest stride (so that operand is read as one
    /// sequential run per column), else along the rows of tiles (so the output, whose
    /// row stride is `cols`, is written in sequential runs).
    fn tiles_down_columns(&self) -> bool {
        let largest_col_stride = self.col_strides.iter().copied().max().unwrap_or(0);
        let largest_row_stride = self
            .row_strides
            .iter()
            .copied()
            .chain([self.cols])
            .max()
            .unwrap_or(0);
        largest_col_stride > largest_row_stride
    }
}

/// Run `block(dst, bases, rows)` over all of `out`, cut as `blocks` describes: each call
/// gets `rows` consecutive rows of one plane (`dst`, `rows * cols` elements) and the
/// storage offset of their first element in each operand.
///
/// Large outputs are split on rayon into tasks of whole rows (a multiple of
/// `rows_multiple`, at least [`MIN_CHUNK`] elements); each task starts its walk at its
/// own first row, so the work per task is its share and no more.
fn fill_blocks<const K: usize>(
    out: &mut [MaybeUninit<f32>],
    blocks: &Blocks<K>,
    rows_multiple: usize,
    block: impl Fn(&mut [MaybeUninit<f32>], [usize; K], usize) + Sync,
) {
    let (rows, cols) = (blocks.rows, blocks.cols);
    if out.is_empty() {
        return;
    }
    let fill_rows = |first_row: usize, mut dst: &mut [MaybeUninit<f32>]| {
        let mut plane_origins = blocks
            .planes
            .each_ref()
            .map(|p| p.offsets_from(first_row / rows));
        let (mut row, mut rows_left) = (first_row % rows, dst.len() / cols);
        while rows_left > 0 {
            let bases = std::array::from_fn(|k| {
                let origin = plane_origins[k]
                    .next()
                    .expect("the output has as many planes as the views");
                origin + row * blocks.row_strides[k]
            });
            let count = (rows - row).min(rows_left);
            let (these, rest) = std::mem::take(&mut dst).split_at_mut(count * cols);
            block(these, bases, count);
            (dst, row, rows_left) = (rest, 0, rows_left - count);
        }
    };
    if worth_parallel(out.len()) {
        let rows_per_task = (MIN_CHUNK / cols).max(1).next_multiple_of(rows_multiple);
        out.par_chunks_mut(rows_per_task * cols)
            .enumerate()
            .for_each(|(task, chunk)| fill_rows(task * rows_per_task, chunk));
    } else {
        fill_rows(0, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each plane gets its own constants, in the serial path and in the parallel one
    /// (40 planes of 1,000: above the parallel threshold), and every element is written.
    #[test]
    fn map_and_zip_planes_apply_each_planes_constants() {
        for (planes, plane) in [(3, 5), (40, 1000), (1, 1)] {
            let a: Vec<f32> = (0..planes * plane)
                .map(|i| (i % 97) as f32 - 40.0)
                .collect();
            let b: Vec<f32> = (0..planes * plane).map(|i| (i % 13) as f32 * 0.5).collect();
            let mapped = map_planes(
                &a,
                plane,
                |p| (p as f32, 1.0 - p as f32),
                |x, &(s, t)| x * s + t,
            );
            let zipped = zip_planes(&a, &b, plane, |p| p as f32, |x, y, &s| x - s * y);
            for i in 0..planes * plane {
                let p = (i / plane) as f32;
                assert_eq!(
                    mapped[i],
                    a[i] * p + (1.0 - p),
                    "map_planes at {i} ({planes} x {plane})"
                );
                assert_eq!(
                    zipped[i],
                    a[i] - p * b[i],
                    "zip_planes at {i} ({planes} x {plane})"
                );
            }
        }
        assert!(map_planes(&[], 0, |_| (), |x, _| x).is_empty());
    }

    /// `gather_strided_into` writes a view's elements in row-major order into the start
    /// of a longer buffer and leaves the rest alone, for a contiguous range, a view with
    /// contiguous rows (narrowed), and one that runs down its columns (transposed).
    /// Every element of plane `p` is `value(p)`, with planes that straddle the parallel
    /// chunks and with chunks that hold several planes, on one thread and on several.
    #[test]
    fn planes_of_sets_each_plane_to_its_value() {
        let serial = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        for (len, plane) in [(100_000, 777), (100_000, 20_000), (50, 7), (0, 0), (9, 100)] {
            let value = |p: usize| p as f32 * 0.5 - 3.0;
            let want: Vec<f32> = (0..len).map(|i| value(i / plane.max(1))).collect();
            assert_eq!(
                planes_of(len, plane, value),
                want,
                "{len} in planes of {plane}"
            );
            let one = serial.install(|| planes_of(len, plane, value));
            assert_eq!(one, want, "{len} in planes of {plane}, one thread");
        }
        assert_eq!(filled(40_000, 2.5), vec![2.5; 40_000]);
    }

    /// A permute-copy large enough for streaming stores (8 MiB and more, with 24
    /// channels: 16 rows streamed and 8 not in each plane) is exact, on one thread and
    /// on several.
    #[test]
    fn a_permute_copy_with_streaming_stores_is_exact() {
        let [n, h, w, c] = [4, 160, 144, 24];
        let nhwc = Layout::contiguous(&[n, h, w, c]);
        let storage: Vec<f32> = (0..nhwc.numel()).map(|i| (i % 1_000_003) as f32).collect();
        let nchw = nhwc.permute(&[0, 3, 1, 2]);
        assert_eq!(
            Stores::for_output(nchw.numel() * 4),
            Stores::Streaming,
            "the test's size"
        );
        let want: Vec<f32> = nchw.offsets().map(|o| storage[o]).collect();
        let serial = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(
            serial.install(|| gather_strided(&storage, &nchw)),
            want,
            "one thread"
        );
        assert_eq!(gather_strided(&storage, &nchw), want, "the global pool");
    }

    #[test]
    fn gather_strided_into_fills_the_start_of_a_longer_buffer() {
        let storage: Vec<f32> = (0..12 * 10).map(|i| i as f32).collect();
        let whole = Layout::contiguous(&[12, 10]);
        let cases = [
            (
                Layout::from_parts(vec![4, 10], vec![10, 1], 20),
                "contiguous range",
            ),
            (
                Layout::from_parts(vec![5, 3], vec![10, 1], 13),
                "narrowed rows",
            ),
            (whole.permute(&[1, 0]), "transposed"),
        ];
        for (layout, what) in cases {
            let want: Vec<f32> = layout.offsets().map(|o| storage[o]).collect();
            let mut out = vec![MaybeUninit::new(-1.0f32); want.len() + 3];
            gather_strided_into(&storage, &layout, &mut out);
            // SAFETY: every element was initialised above, before the call.
            let got: Vec<f32> = out.iter().map(|v| unsafe { v.assume_init() }).collect();
            assert_eq!(&got[..want.len()], &want[..], "{what}");
            assert_eq!(
                &got[want.len()..],
                &[-1.0; 3],
                "{what}: the rest is untouched"
            );
            assert_eq!(gather_strided(&storage, &layout), want, "{what}");
        }
    }
}
