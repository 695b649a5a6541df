//! Transposed tiles: copying a block that runs down its columns (row stride 1, as an
//! NCHW <-> NHWC permute or a `Wᵀ` view does) into row-major order.
//!
//! Walking such a block row by row would read one element per cache line. Instead it is
//! cut into tiles that fit in L1 ([`tiles`]), and each tile is transposed in 8 x 8
//! blocks with AVX where the CPU has it ([`transpose_tile`]): whole cache lines read,
//! whole rows written. `parallel`'s strided walkers use these tiles, for a copy
//! ([`transpose_patch_into`]) straight into the output, and for a map or zip through a
//! [`Scratch`] tile; matmul copies operands into a better storage order with
//! [`transpose_block_into`]. A copy whose output is too large for the caches writes it
//! past them, a cache line at a time, with AVX-512 ([`Stores`]).

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
    transpose_patch_into(block, [rows, cols], dst, Stores::Cached);
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
///
/// With [`Stores::Streaming`], whole 16 x 16 blocks are written with non-temporal
/// stores instead where the CPU and the layout allow it ([`stream_patch_into`]).
pub(crate) fn transpose_patch_into(
    patch: Patch<'_>,
    [rows, cols]: [usize; 2],
    dst: &mut [MaybeUninit<f32>],
    stores: Stores,
) {
    if stores == Stores::Streaming && stream_patch_into(patch, [rows, cols], dst) {
        return;
    }
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

/// How a copy writes its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stores {
    /// Ordinary stores: the output stays in the caches for whatever reads it next.
    Cached,
    /// Whole cache lines written past the caches (non-temporal stores), where the CPU
    /// and the output's layout allow it; ordinary stores elsewhere.
    Streaming,
}

impl Stores {
    /// Outputs of at least this many bytes are written [`Stores::Streaming`].
    ///
    /// An ordinary store to a line that is not in the cache first reads the line (a read
    /// for ownership) and only then overwrites it. A transposed copy writes many rows at
    /// once, a page apart in an NHWC -> NCHW permute of 16 channels, and there those
    /// reads made a `[128, 16, 32, 32]` permute (8 MiB) take 1.7-2.2 times a `memcpy`
    /// (whose `rep movsb` writes whole lines without reading them); with streaming
    /// stores it took 1.07-1.24 times (`cargo bench --bench permute_ratio`, one
    /// thread). Smaller outputs fit in the last-level cache, where ordinary stores win,
    /// and the next operation finds its input there: streamed, a `[128, 32, 16, 16]`
    /// permute (4 MiB) took 2.4-2.6 times the `memcpy`, against 1.5-1.9 cached.
    pub(crate) const STREAMING_MIN_BYTES: usize = 8 << 20;

    /// Outputs of this many bytes or more are written [`Stores::Cached`] again.
    ///
    /// glibc's `malloc` serves allocations this large (its largest `mmap` threshold,
    /// [`crate::memory::MMAP_THRESHOLD`], even after `keep_freed_memory`) with fresh
    /// pages from `mmap` every time, and the kernel zeroes each page through the cache
    /// when it is first touched. Streaming stores then have to evict those zeroed lines,
    /// and ordinary ones find them in the cache: a `[128, 16, 64, 64]` permute (32 MiB)
    /// took 1.2 times a `memcpy` streamed, 1.05 times cached.
    pub(crate) const STREAMING_MAX_BYTES: usize = crate::memory::MMAP_THRESHOLD;

    /// How to write a copy's output of `bytes` bytes.
    pub(crate) fn for_output(bytes: usize) -> Stores {
        if (Self::STREAMING_MIN_BYTES..Self::STREAMING_MAX_BYTES).contains(&bytes) {
            Stores::Streaming
        } else {
            Stores::Cached
        }
    }
}

/// [`transpose_patch_into`] with streaming stores: whole 16 x 16 blocks with AVX-512,
/// each output row of a block one aligned cache line, written with a non-temporal
/// store. The columns before the first 64-byte boundary and after the last are written
/// with masked ordinary stores, the rows past the last whole 16 with ordinary ones.
///
/// Returns false, having written nothing, when it cannot: without AVX-512, or when the
/// rows do not all start at the same offset from a cache line (`cols` not a multiple of
/// 16) or are too short to hold a whole line.
fn stream_patch_into(
    patch: Patch<'_>,
    [rows, cols]: [usize; 2],
    dst: &mut [MaybeUninit<f32>],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::arch::is_x86_feature_detected!("avx512f") || !cols.is_multiple_of(16) {
            return false;
        }
        let head = floats_before_boundary(dst, 16);
        let body = (cols - head) / 16 * 16;
        let whole_rows = rows / 16 * 16;
        if body == 0 || whole_rows == 0 {
            return false;
        }
        let down_columns = patch.col_stride > cols;
        let [tile_rows, tile_cols] = tile_shape(body, COPY_TILE_ELEMENTS);
        let shape = [tile_rows.max(16) / 16 * 16, tile_cols];
        for ([r0, c0], size) in tiles_of(shape, whole_rows, body, down_columns) {
            let c0 = c0 + head;
            // SAFETY: the CPU supports AVX-512F, checked above.
            unsafe {
                avx512::stream_tile(patch.at(r0, c0), size, &mut dst[r0 * cols + c0..], cols)
            };
        }
        if head > 0 {
            // SAFETY: as above.
            unsafe { avx512::masked_columns(patch, whole_rows, 0..head, dst, cols) };
        }
        let tail = head + body;
        if tail < cols {
            let first = cols - 16;
            // SAFETY: as above.
            unsafe {
                avx512::masked_columns(
                    patch.at(0, first),
                    whole_rows,
                    tail - first..16,
                    &mut dst[first..],
                    cols,
                )
            };
        }
        if whole_rows < rows {
            let last_rows = &mut dst[whole_rows * cols..];
            transpose_tile(
                patch.at(whole_rows, 0),
                [rows - whole_rows, cols],
                last_rows,
                cols,
            );
        }
        // Non-temporal stores are not ordered with later ordinary ones: fence them, so
        // that whoever is told the copy is done sees it.
        // SAFETY: SSE is part of x86_64.
        unsafe { std::arch::x86_64::_mm_sfence() };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (patch, rows, cols, dst);
        false
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
    floats_before_boundary(dst, 8)
}

/// How many floats from `dst` come before the first address that is a multiple of
/// `floats` floats: 0 to `floats - 1`.
fn floats_before_boundary(dst: &[MaybeUninit<f32>], floats: usize) -> usize {
    let past_boundary = (dst.as_ptr() as usize / std::mem::size_of::<f32>()) % floats;
    (floats - past_boundary) % floats
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
    tiles_of(tile_shape(cols, elements), rows, cols, down_columns)
}

/// [`tiles`] of the given shape.
fn tiles_of(
    [tile_rows, tile_cols]: [usize; 2],
    rows: usize,
    cols: usize,
    down_columns: bool,
) -> impl Iterator<Item = ([usize; 2], [usize; 2])> {
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

/// The first element of the `rows × cols` patch `x` (row stride 1) and of its output,
/// whose rows are `dst_stride` apart, for the vector kernels, which check the last
/// element of each here once, so that every block in between is in bounds without
/// checking each. `rows` and `cols` must be positive.
///
/// # Panics
/// With `op` in the message, when `x` does not run down its columns or the patch or its
/// output reaches past its slice.
#[cfg(target_arch = "x86_64")]
fn first_elements(
    op: &str,
    x: Patch,
    [rows, cols]: [usize; 2],
    dst: &mut [MaybeUninit<f32>],
    dst_stride: usize,
) -> (*const f32, *mut f32) {
    assert_eq!(x.row_stride, 1, "{op}: the patch must run down its columns");
    assert!(
        x.start + (rows - 1) + (cols - 1) * x.col_stride < x.data.len(),
        "{op}: source too short"
    );
    assert!(
        (rows - 1) * dst_stride + cols <= dst.len(),
        "{op}: destination too short"
    );
    (x.data[x.start..].as_ptr(), dst.as_mut_ptr().cast::<f32>())
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

    use super::{first_elements, transpose_scalar, Patch};

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
        let col_stride = x.col_stride;
        let (src_ptr, dst_ptr) = first_elements("transpose_tile", x, [rows, cols], dst, dst_stride);
        let (whole_rows, whole_cols) = (rows - rows % 8, cols - cols % 8);
        for r in (0..whole_rows).step_by(8) {
            for c in (0..whole_cols).step_by(8) {
                // SAFETY: the block's elements (r + i, c + j), i, j < 8, are in the patch
                // and its output, whose corners `first_elements` checked; `MaybeUninit<f32>`
                // has the layout of `f32`.
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

/// AVX-512 16 x 16 transposes for [`stream_patch_into`]: each output row of a block is
/// 16 floats, one whole cache line where the row starts on one.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;
    use std::ops::Range;

    use super::{first_elements, Patch};

    /// Whole 16 x 16 blocks of the `rows × cols` patch `x` (both multiples of 16)
    /// written with non-temporal stores, each output row of a block one cache line.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    ///
    /// # Panics
    /// When the patch or the output is out of bounds, when a size is not a multiple of
    /// 16, or when the output rows do not start on 64-byte boundaries (a streaming store
    /// anywhere else faults).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn stream_tile(
        x: Patch,
        [rows, cols]: [usize; 2],
        dst: &mut [MaybeUninit<f32>],
        dst_stride: usize,
    ) {
        assert!(
            rows.is_multiple_of(16) && cols.is_multiple_of(16) && rows > 0,
            "stream_tile: {rows} x {cols} is not whole 16 x 16 blocks"
        );
        assert!(
            (dst.as_ptr() as usize).is_multiple_of(64) && dst_stride.is_multiple_of(16),
            "stream_tile: the output rows must start on cache lines"
        );
        let (src, out) = first_elements("stream_tile", x, [rows, cols], dst, dst_stride);
        for r in (0..rows).step_by(16) {
            for c in (0..cols).step_by(16) {
                // SAFETY: the block's elements (r + i, c + j), i, j < 16, are in the
                // patch and its output, whose corners `first_elements` checked; the output rows
                // start on 64-byte boundaries (asserted), as streaming stores need.
                let block = transpose_16x16(src.add(r + c * x.col_stride), x.col_stride);
                for (i, row) in block.into_iter().enumerate() {
                    _mm512_stream_ps(out.add((r + i) * dst_stride + c), row);
                }
            }
        }
    }

    /// Columns `lanes` (within `0..16`) of the first `rows` rows (a multiple of 16) of
    /// the patch `x`, which has at least 16 columns: 16 x 16 blocks transposed whole and
    /// stored through a mask, so that no other column is written.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn masked_columns(
        x: Patch,
        rows: usize,
        lanes: Range<usize>,
        dst: &mut [MaybeUninit<f32>],
        dst_stride: usize,
    ) {
        assert!(
            rows.is_multiple_of(16) && rows > 0 && lanes.end <= 16,
            "masked_columns"
        );
        let (src, out) = first_elements("masked_columns", x, [rows, 16], dst, dst_stride);
        let mask = ((1u32 << lanes.end) - (1u32 << lanes.start)) as __mmask16;
        for r in (0..rows).step_by(16) {
            // SAFETY: as in `stream_tile`; the mask keeps the stores in `lanes`.
            let block = transpose_16x16(src.add(r), x.col_stride);
            for (i, row) in block.into_iter().enumerate() {
                _mm512_mask_storeu_ps(out.add((r + i) * dst_stride), mask, row);
            }
        }
    }

    /// Rows `i < 16` of the transpose of the 16 x 16 block whose row `j` is
    /// `src[j * src_stride..][..16]`: register `i` holds `src[j * src_stride + i]` in
    /// lane `j`.
    ///
    /// Four rounds of two-input shuffles, each pairing registers 1, 2, 4 and then 8
    /// apart: interleaved floats, interleaved pairs, then 128-bit quarters picked across
    /// registers twice.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `src[j * src_stride..][..16]` must be valid for
    /// reads for `j < 16`.
    #[target_feature(enable = "avx512f")]
    unsafe fn transpose_16x16(src: *const f32, src_stride: usize) -> [__m512; 16] {
        let a: [__m512; 16] = std::array::from_fn(|j| _mm512_loadu_ps(src.add(j * src_stride)));
        // b[2k], b[2k+1]: rows 2k and 2k+1 interleaved float by float.
        let mut b = a;
        for k in 0..8 {
            b[2 * k] = _mm512_unpacklo_ps(a[2 * k], a[2 * k + 1]);
            b[2 * k + 1] = _mm512_unpackhi_ps(a[2 * k], a[2 * k + 1]);
        }
        // c[4k + q]: in each 128-bit quarter L, rows 4k..4k+4 of column 4L + q.
        let pd = _mm512_castps_pd;
        let mut c = a;
        for k in 0..4 {
            let [x0, x1, x2, x3] = [0, 1, 2, 3].map(|q| pd(b[4 * k + q]));
            c[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(x0, x2));
            c[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x0, x2));
            c[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(x1, x3));
            c[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(x1, x3));
        }
        // d[4q + m]: quarters 0 and 2 (m even) or 1 and 3 (m odd) of c[q] and c[4 + q]
        // (m < 2), or of c[8 + q] and c[12 + q].
        let mut d = a;
        for q in 0..4 {
            let [x0, x1, x2, x3] = [0, 4, 8, 12].map(|k| c[k + q]);
            d[4 * q] = _mm512_shuffle_f32x4::<0x88>(x0, x1);
            d[4 * q + 1] = _mm512_shuffle_f32x4::<0xDD>(x0, x1);
            d[4 * q + 2] = _mm512_shuffle_f32x4::<0x88>(x2, x3);
            d[4 * q + 3] = _mm512_shuffle_f32x4::<0xDD>(x2, x3);
        }
        // Output row q + 4L: quarter L of c[q], c[4 + q], c[8 + q] and c[12 + q].
        let mut rows = a;
        for q in 0..4 {
            let [y0, y1, y2, y3] = [0, 1, 2, 3].map(|m| d[4 * q + m]);
            rows[q] = _mm512_shuffle_f32x4::<0x88>(y0, y2);
            rows[4 + q] = _mm512_shuffle_f32x4::<0x88>(y1, y3);
            rows[8 + q] = _mm512_shuffle_f32x4::<0xDD>(y0, y2);
            rows[12 + q] = _mm512_shuffle_f32x4::<0xDD>(y1, y3);
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Copies a `rows × cols` patch with `transpose_patch_into` to each of the first
    /// `offsets` floats past a cache line and checks it against the definition, and that
    /// nothing before or after the block is written.
    fn assert_exact_at_every_offset([rows, cols]: [usize; 2], offsets: usize, stores: Stores) {
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
        for offset in 0..offsets {
            let mut out = vec![MaybeUninit::new(-1.0f32); 16 + offset + rows * cols + 16];
            let line = floats_before_boundary(&out, 16);
            let out = &mut out[line..];
            transpose_patch_into(patch, [rows, cols], &mut out[offset..], stores);
            // SAFETY: every element was initialised above, before the call.
            let got: Vec<f32> = out.iter().map(|v| unsafe { v.assume_init() }).collect();
            let what = format!("{stores:?}: {rows} x {cols} at {offset} floats past a line");
            assert_eq!(&got[offset..offset + rows * cols], &want[..], "{what}");
            assert!(got[..offset].iter().all(|&x| x == -1.0), "{what}: before");
            assert!(
                got[offset + rows * cols..].iter().all(|&x| x == -1.0),
                "{what}: after"
            );
        }
    }

    /// A block with long output rows, copied to every offset from a 32-byte boundary:
    /// whatever strips `transpose_patch_into` writes at the edges to align its tiles, the
    /// copy is exact, and nothing before or after the block is written.
    #[test]
    fn transpose_patch_into_is_exact_at_every_destination_alignment() {
        for size in [[16, 128], [9, 136], [24, 1000], [8, 127]] {
            assert_exact_at_every_offset(size, 8, Stores::Cached);
        }
    }

    /// Streaming stores write what ordinary ones write, at every offset of the output
    /// from a cache line, for rows that are and are not whole 16-row blocks, and write
    /// nothing before or after the block.
    #[test]
    fn streaming_stores_copy_exactly_at_every_destination_alignment() {
        for size in [[16, 16], [16, 32], [40, 48], [33, 64], [16, 1024], [7, 32]] {
            assert_exact_at_every_offset(size, 16, Stores::Streaming);
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
