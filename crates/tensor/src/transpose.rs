//! Transposed tiles: copying a block that runs down its columns (row stride 1, as an
//! NCHW <-> NHWC permute or a `Wᵀ` view does) into row-major order.
//!
//! Walking such a block row by row would read one element per cache line. Instead it is
//! cut into tiles that fit in L1 ([`tiles`]), and each tile is transposed in 8 x 8
//! blocks with AVX where the CPU has it ([`transpose_tile`]): whole cache lines read,
//! whole rows written. `parallel`'s strided walkers use these tiles, for a copy
//! ([`transpose_patch_into`]) straight into the output, and for a map or zip through a
//! [`Scratch`] tile; matmul copies operands into a better storage order with
//! [`transpose_block_into`].

use std::mem::MaybeUninit;

use crate::parallel::Patch;

/// `dst[r·cols + c] = src[start + r + c·col_stride]` for `r < rows`, `c < cols`: a block
/// that runs down its columns copied into row-major order, in transposed tiles as
/// [`gather_strided`](crate::parallel::gather_strided) copies, but on the calling thread
/// only (for a caller that is itself one of several parallel tasks).
///
/// # Panics
/// When the block reaches past `src` or `dst` is shorter than `rows · cols`.
pub(crate) fn transpose_block_into(
    src: &[f32],
    start: usize,
    col_stride: usize,
    [rows, cols]: [usize; 2],
    dst: &mut [MaybeUninit<f32>],
) {
    assert!(
        dst.len() >= rows * cols,
        "transpose_block_into: destination too short"
    );
    let block = Patch {
        data: src,
        start,
        row_stride: 1,
        col_stride,
    };
    transpose_patch_into(block, [rows, cols], dst);
}

/// `dst[r·cols + c] = x(r, c)` for a patch that runs down its columns (row stride 1),
/// in transposed tiles. The tiles walk down the columns when the patch's columns are
/// further apart than the output's rows are long, so that each column of tiles reads
/// one run of the source; else along the rows, so that the output is written in runs
/// (as `Blocks::tiles_down_columns` in `parallel` decides for a view of one operand).
///
/// Wide output rows are written in 8-float stores that start on 32-byte boundaries
/// ([`columns_before_alignment`]): the tiles cover the whole 8-column groups from the
/// first aligned column, and the columns before and after them are covered by one
/// 8-column strip at each edge of the block, overlapping the tiles, whose overlap is
/// written twice with the same values. `malloc` returns large buffers 16 bytes past a
/// cache line, and there every other unaligned store would straddle two lines: an NHWC
/// -> NCHW permute of `[4, 16, 32, 32]` in cache took 0.27-0.30 ns an element so,
/// 0.22-0.25 aligned.
pub(crate) fn transpose_patch_into(
    patch: Patch<'_>,
    [rows, cols]: [usize; 2],
    dst: &mut [MaybeUninit<f32>],
) {
    let down_columns = patch.col_stride > cols;
    let head = columns_before_alignment(dst, cols);
    let body = if head > 0 { cols - 8 } else { cols };
    for ([r0, c0], size) in tiles(rows, body, down_columns, COPY_TILE_ELEMENTS) {
        let c0 = c0 + head;
        transpose_tile(patch.at(r0, c0), size, &mut dst[r0 * cols + c0..], cols);
    }
    if head > 0 {
        transpose_tile(patch, [rows, 8], dst, cols);
        let last = cols - 8;
        transpose_tile(patch.at(0, last), [rows, 8], &mut dst[last..], cols);
    }
}

/// Output rows at least this long have their tiles aligned by [`transpose_patch_into`]:
/// the two 8-column strips at the edges then add at most 1/16 to the work.
const MIN_ALIGNED_ROW: usize = 128;

/// How many columns of a row-major block with rows of `cols` floats, stored from
/// `dst`, come before the first whose address is a multiple of 32 bytes (an AVX
/// store that does not cross a cache line): 0 to 7, the same for every row when `cols`
/// is a multiple of 8. 0 when rows are shorter than [`MIN_ALIGNED_ROW`] or their
/// alignments differ.
fn columns_before_alignment(dst: &[MaybeUninit<f32>], cols: usize) -> usize {
    if cols < MIN_ALIGNED_ROW || !cols.is_multiple_of(8) {
        return 0;
    }
    let floats_past_boundary = (dst.as_ptr() as usize / std::mem::size_of::<f32>()) % 8;
    (8 - floats_past_boundary) % 8
}

/// Elements in a tile that [`map_strided`](crate::parallel::map_strided) and
/// [`zip_strided`](crate::parallel::zip_strided) read through a scratch copy: 4 KiB of
/// `f32`s, so the lines a tile reads, its scratch copies and the lines it writes all stay
/// in L1.
pub(crate) const SCRATCH_TILE_ELEMENTS: usize = 1024;

/// Elements in a tile that [`gather_strided`](crate::parallel::gather_strided) transposes
/// straight into the output, with no scratch: 16 KiB read and 16 KiB written still fit in
/// L1, and the larger tile halves the per-tile walk (a whole 64 × 64 plane of a permuted
/// `[128, 64, 8, 8]` activation is one tile).
pub(crate) const COPY_TILE_ELEMENTS: usize = 4096;

/// Columns in the widest tile; wider blocks are cut into tiles of 8 rows.
const MAX_TILE_COLS: usize = 128;

/// `[rows, cols]` of the tiles of a block with `cols` columns: as wide as the block up
/// to [`MAX_TILE_COLS`], so that a tile's output rows usually form one run; as tall as
/// fits in `elements`, in whole 8-row steps (the AVX blocks).
pub(crate) fn tile_shape(cols: usize, elements: usize) -> [usize; 2] {
    let tile_cols = cols.clamp(1, MAX_TILE_COLS);
    [(elements / tile_cols).max(8) / 8 * 8, tile_cols]
}

/// The tiles covering a `rows × cols` block, as `(origin, size)` with sizes cut short at
/// the edges, walked down the columns of tiles or along their rows; each tile holds at
/// most `elements` (see [`tile_shape`]).
pub(crate) fn tiles(
    rows: usize,
    cols: usize,
    down_columns: bool,
    elements: usize,
) -> impl Iterator<Item = ([usize; 2], [usize; 2])> {
    let [tile_rows, tile_cols] = tile_shape(cols, elements);
    let (down, across) = (rows.div_ceil(tile_rows), cols.div_ceil(tile_cols));
    (0..down * across).map(move |i| {
        let (r, c) = if down_columns {
            (i % down, i / down)
        } else {
            (i / across, i % across)
        };
        let (r0, c0) = (r * tile_rows, c * tile_cols);
        (
            [r0, c0],
            [tile_rows.min(rows - r0), tile_cols.min(cols - c0)],
        )
    })
}

/// Room for a tile of an operand that runs down its columns, transposed into row-major
/// order so that its rows can be read as slices.
pub(crate) struct Scratch {
    tile: [MaybeUninit<f32>; SCRATCH_TILE_ELEMENTS],
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Scratch {
            tile: [MaybeUninit::uninit(); SCRATCH_TILE_ELEMENTS],
        }
    }

    /// Transpose the `size[0] × size[1]` patch `x` (row stride 1) into the scratch tile,
    /// densely (row stride `size[1]`), and return the tile as a patch.
    pub(crate) fn fill(&mut self, x: Patch, size @ [rows, cols]: [usize; 2]) -> Patch<'_> {
        assert!(
            rows * cols <= SCRATCH_TILE_ELEMENTS,
            "scratch: {rows} x {cols} patch"
        );
        transpose_tile(x, size, &mut self.tile, cols);
        let written = &self.tile[..rows * cols];
        // SAFETY: `transpose_tile` wrote every element of the `rows × cols` patch, which
        // with row stride `cols` is the first `rows * cols` elements of the tile; and
        // `MaybeUninit<f32>` has the layout of `f32`.
        let data =
            unsafe { std::slice::from_raw_parts(written.as_ptr().cast::<f32>(), written.len()) };
        Patch {
            data,
            start: 0,
            row_stride: cols,
            col_stride: 1,
        }
    }
}

/// `dst[r * dst_stride + c] = x(r, c)` for `(r, c) < size`: a patch of a view that runs
/// down its columns (row stride 1), written in row-major order, in 8 x 8 blocks with AVX
/// where the CPU has it.
pub(crate) fn transpose_tile(
    x: Patch,
    size: [usize; 2],
    dst: &mut [MaybeUninit<f32>],
    dst_stride: usize,
) {
    assert_eq!(
        x.row_stride, 1,
        "transpose_tile: the patch must run down its columns"
    );
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX, checked just above.
        unsafe { avx::transpose_tile(x, size, dst, dst_stride) };
        return;
    }
    transpose_scalar(x, size, dst, dst_stride);
}

/// [`transpose_tile`] one element at a time (`x` runs down its columns: row stride 1).
fn transpose_scalar(
    x: Patch,
    [rows, cols]: [usize; 2],
    dst: &mut [MaybeUninit<f32>],
    dst_stride: usize,
) {
    for c in 0..cols {
        let column = &x.data[x.start + c * x.col_stride..];
        for r in 0..rows {
            dst[r * dst_stride + c].write(column[r]);
        }
    }
}

/// AVX 8 x 8 transposes: sixteen 4-float loads, 16 shuffles and eight 8-float stores where
/// the scalar loop needs 64 loads and 64 stores.
#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::{transpose_scalar, Patch};

    /// [`super::transpose_tile`]: whole 8 x 8 blocks with AVX, the ragged edges scalar.
    ///
    /// # Safety
    /// The CPU must support AVX.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn transpose_tile(
        x: Patch,
        [rows, cols]: [usize; 2],
        dst: &mut [MaybeUninit<f32>],
        dst_stride: usize,
    ) {
        if rows == 0 || cols == 0 {
            return;
        }
        let (src, start, col_stride) = (x.data, x.start, x.col_stride);
        // The last element of the patch and of the tile, so that every 8 x 8 block in
        // between is in bounds without checking each.
        assert!(
            start + (rows - 1) + (cols - 1) * col_stride < src.len(),
            "transpose_tile: source too short"
        );
        assert!(
            (rows - 1) * dst_stride + cols <= dst.len(),
            "transpose_tile: destination too short"
        );
        let (whole_rows, whole_cols) = (rows - rows % 8, cols - cols % 8);
        let (src_ptr, dst_ptr) = (src.as_ptr().add(start), dst.as_mut_ptr().cast::<f32>());
        for r in (0..whole_rows).step_by(8) {
            for c in (0..whole_cols).step_by(8) {
                // SAFETY: the block's elements (r + i, c + j), i, j < 8, are in the patch,
                // whose corners the asserts keep in bounds; `MaybeUninit<f32>` has the
                // layout of `f32`.
                transpose_8x8(
                    src_ptr.add(r + c * col_stride),
                    col_stride,
                    dst_ptr.add(r * dst_stride + c),
                    dst_stride,
                );
            }
        }
        // The edges, one element at a time: the last rows, then the last columns of the
        // others. (An extra 8 x 8 block flush with each edge, overlapping the one before
        // it, was slower for a remainder of a row or two, as in a 33-channel permute.)
        if whole_rows < rows {
            let last_rows = &mut dst[whole_rows * dst_stride..];
            transpose_scalar(
                x.at(whole_rows, 0),
                [rows - whole_rows, cols],
                last_rows,
                dst_stride,
            );
        }
        if whole_cols < cols && whole_rows > 0 {
            let last_cols = &mut dst[whole_cols..];
            transpose_scalar(
                x.at(0, whole_cols),
                [whole_rows, cols - whole_cols],
                last_cols,
                dst_stride,
            );
        }
    }

    /// `dst[i * dst_stride + j] = src[j * src_stride + i]` for `i, j < 8`.
    ///
    /// Each 256-bit register is loaded as two 128-bit halves, row `j` below and row `j + 4`
    /// above, so after two rounds of in-lane shuffles every register is an output row:
    /// 16 shuffles and no lane-crossing permute (a 128-bit load into the upper half runs
    /// on the load ports, not the shuffle unit that limits this loop).
    ///
    /// # Safety
    /// The CPU must support AVX; `src[j * src_stride..][..8]` and `dst[i * dst_stride..][..8]`
    /// must be valid for reads and writes for `i, j < 8`.
    #[target_feature(enable = "avx")]
    unsafe fn transpose_8x8(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
        // Columns `half * 4 .. half * 4 + 4` of source rows `j` (low lane) and `j + 4` (high lane).
        let load = |j: usize, half: usize| {
            let low = _mm_loadu_ps(src.add(j * src_stride + half * 4));
            let high = _mm_loadu_ps(src.add((j + 4) * src_stride + half * 4));
            _mm256_insertf128_ps::<1>(_mm256_castps128_ps256(low), high)
        };
        let store = |i: usize, v: __m256| _mm256_storeu_ps(dst.add(i * dst_stride), v);
        for half in 0..2 {
            let [a0, a1, a2, a3] = [0, 1, 2, 3].map(|j| load(j, half));
            // Interleave rows 0/1 and 2/3 (4/5 and 6/7 in the high lane) ...
            let (b0, b1) = (_mm256_unpacklo_ps(a0, a1), _mm256_unpackhi_ps(a0, a1));
            let (b2, b3) = (_mm256_unpacklo_ps(a2, a3), _mm256_unpackhi_ps(a2, a3));
            // ... then pairs of pairs: each register is one column of the 8 rows.
            store(half * 4, _mm256_shuffle_ps::<0x44>(b0, b2));
            store(half * 4 + 1, _mm256_shuffle_ps::<0xEE>(b0, b2));
            store(half * 4 + 2, _mm256_shuffle_ps::<0x44>(b1, b3));
            store(half * 4 + 3, _mm256_shuffle_ps::<0xEE>(b1, b3));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block with long output rows, copied to every offset from a 32-byte boundary:
    /// whatever strips `transpose_patch_into` writes at the edges to align its tiles, the
    /// copy is exact, and nothing before or after the block is written.
    #[test]
    fn transpose_patch_into_is_exact_at_every_destination_alignment() {
        for [rows, cols] in [[16, 128], [9, 136], [24, 1000], [8, 127]] {
            let col_stride = rows + 3;
            let src: Vec<f32> = (0..cols * col_stride).map(|i| i as f32).collect();
            let patch = Patch {
                data: &src,
                start: 1,
                row_stride: 1,
                col_stride,
            };
            let want: Vec<f32> = (0..rows * cols)
                .map(|i| src[1 + i / cols + (i % cols) * col_stride])
                .collect();
            for offset in 0..8 {
                let mut out = vec![MaybeUninit::new(-1.0f32); offset + rows * cols + 8];
                transpose_patch_into(patch, [rows, cols], &mut out[offset..]);
                // SAFETY: every element was initialised above, before the call.
                let got: Vec<f32> = out.iter().map(|v| unsafe { v.assume_init() }).collect();
                let what = format!("{rows} x {cols} at {offset} floats past the buffer");
                assert_eq!(&got[offset..offset + rows * cols], &want[..], "{what}");
                assert!(got[..offset].iter().all(|&x| x == -1.0), "{what}: before");
                assert!(
                    got[offset + rows * cols..].iter().all(|&x| x == -1.0),
                    "{what}: after"
                );
            }
        }
    }

    /// `transpose_tile` (AVX blocks and scalar edges where the CPU has AVX) writes what
    /// the scalar loop writes, for every patch size up to 40 x 40 and for the tile
    /// shapes of narrow and wide blocks, into a wider output.
    #[test]
    fn transpose_tile_matches_the_scalar_loop_for_every_size() {
        let (max_rows, max_cols) = (tile_shape(3, COPY_TILE_ELEMENTS)[0], MAX_TILE_COLS);
        let col_stride = max_rows + 5;
        let src: Vec<f32> = (0..max_cols * col_stride + 3).map(|i| i as f32).collect();
        let dst_stride = max_cols + 5;
        let small = (1..=40).flat_map(|rows| (1..=40).map(move |cols| [rows, cols]));
        let tile_shapes = [3, 16, 100, 5000].map(|cols| tile_shape(cols, COPY_TILE_ELEMENTS));
        let sizes = small
            .chain(tile_shapes)
            .chain([tile_shape(16, SCRATCH_TILE_ELEMENTS)]);
        for [rows, cols] in sizes {
            {
                let mut fast = vec![MaybeUninit::new(-1.0); max_rows * dst_stride];
                let mut slow = fast.clone();
                let patch = Patch {
                    data: &src,
                    start: 3,
                    row_stride: 1,
                    col_stride,
                };
                transpose_tile(patch, [rows, cols], &mut fast, dst_stride);
                transpose_scalar(patch, [rows, cols], &mut slow, dst_stride);
                // SAFETY: both buffers were initialised in full (to -1) before the writes.
                let read = |b: &[MaybeUninit<f32>]| {
                    b.iter()
                        .map(|v| unsafe { v.assume_init() })
                        .collect::<Vec<_>>()
                };
                let (fast, slow) = (read(&fast), read(&slow));
                assert_eq!(fast, slow, "{rows} x {cols}");
                assert_eq!(
                    slow[(rows - 1) * dst_stride + cols - 1],
                    src[3 + rows - 1 + (cols - 1) * col_stride]
                );
                assert_eq!(
                    slow[(rows - 1) * dst_stride + cols],
                    -1.0,
                    "{rows} x {cols}: wrote past the patch"
                );
            }
        }
    }
}
