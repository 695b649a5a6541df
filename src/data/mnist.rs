//! MNIST from its original IDX files.
//!
//! # The IDX format
//!
//! An IDX file is a big-endian header followed by the raw array, row-major:
//!
//! ```text
//! magic: 00 00 <type> <ndim>    type 0x08 = unsigned byte; images 0x00000803, labels 0x00000801
//! ndim x u32 dims               images: n, 28, 28; labels: n
//! payload                       exactly product(dims) bytes
//! ```
//!
//! The four files (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
//! `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`) may be gzip'd (detected by
//! the gzip magic `1f 8b`, not by the name) or raw, and may use the
//! `train-images.idx3-ubyte` naming. Fashion-MNIST ships in the same format and under
//! the same names, so [`Mnist::load`] reads it too.
//!
//! A gzip file may hold several gzip members back to back (as `cat a.gz b.gz` makes);
//! their contents are read as one stream.
//!
//! Every header field and the payload length are checked: a truncated file, trailing
//! bytes, junk after the gzip stream, a wrong magic number or a label outside 0..10 is
//! a [`DataError`] naming the file. Buffers grow with the bytes that actually arrive,
//! never with what a header claims, so a corrupt count cannot make the loader allocate
//! gigabytes. [`MnistSplit::from_files_prefix`] and [`Mnist::load_limited`] read only
//! the first items of a file and stop there.
//!
//! Y. LeCun, C. Cortes, C. J. C. Burges, *The MNIST database of handwritten digits*;
//! LeCun et al. 1998, "Gradient-based learning applied to document recognition",
//! Proc. IEEE 86(11). See `data/README.md`.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Chain, Read, Seek, SeekFrom};
use std::mem;
use std::path::{Path, PathBuf};

use byteorder::{BigEndian, ByteOrder};
use flate2::bufread::GzDecoder;

use super::{locate, DataError, DataErrorKind};
use crate::tensor::Tensor;

/// Side of an MNIST image in pixels.
pub const IMAGE_SIDE: usize = 28;
/// Pixels per MNIST image (28 x 28).
pub const IMAGE_SIZE: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Number of classes (the digits 0 to 9).
pub const NUM_CLASSES: usize = 10;
/// Mean pixel value of the MNIST training images after scaling to [0, 1]
/// (torchvision's `Normalize((0.1307,), (0.3081,))` convention).
pub const MNIST_MEAN: f32 = 0.1307;
/// Standard deviation of the MNIST training pixels after scaling to [0, 1].
pub const MNIST_STD: f32 = 0.3081;

/// IDX magic for 3-dimensional unsigned-byte data (images).
pub const IDX3_UBYTE_MAGIC: u32 = 0x0000_0803;
/// IDX magic for 1-dimensional unsigned-byte data (labels).
pub const IDX1_UBYTE_MAGIC: u32 = 0x0000_0801;

/// The gzip magic number, the first two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The first payload buffer (64 KiB). It then doubles as data arrives, never beyond
/// what the header promises, so memory follows the bytes really present.
const INITIAL_PAYLOAD_CAPACITY: usize = 64 * 1024;

/// The file names accepted for one MNIST file, in the order they are tried.
///
/// `file_candidates("train-images", 3)` gives `train-images-idx3-ubyte.gz`,
/// `train-images-idx3-ubyte`, `train-images.idx3-ubyte`, `train-images.idx3-ubyte.gz`.
pub fn file_candidates(stem: &str, ndim: usize) -> [String; 4] {
    [
        format!("{stem}-idx{ndim}-ubyte.gz"),
        format!("{stem}-idx{ndim}-ubyte"),
        format!("{stem}.idx{ndim}-ubyte"),
        format!("{stem}.idx{ndim}-ubyte.gz"),
    ]
}

/// The four MNIST files as [`find_dataset`](super::find_dataset) wants them: each
/// entry lists the accepted names joined by `|`.
pub fn required_files() -> Vec<String> {
    [
        ("train-images", 3),
        ("train-labels", 1),
        ("t10k-images", 3),
        ("t10k-labels", 1),
    ]
    .iter()
    .map(|&(stem, nd)| file_candidates(stem, nd).join("|"))
    .collect()
}

/// The contents of an unsigned-byte IDX file, or of its first items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions from the header, outermost (the item count of the whole file)
    /// first.
    pub dims: Vec<usize>,
    /// The number of items read: `dims[0]`, or fewer when a limit asked for fewer.
    pub items: usize,
    /// The payload of the items read, row-major: `items * dims[1..].product()` bytes.
    pub data: Vec<u8>,
}

/// Read an unsigned-byte IDX file whose dimensions are `[n, inner_dims...]`.
///
/// `what` names one item in messages ("images of 28x28", "labels"). The file may be
/// gzip'd (recognised by its content); a file named `.gz` must be. Same as
/// [`read_idx_u8_prefix`] with no limit.
///
/// # Errors
/// A [`DataError`] naming `path` when the file cannot be read or is a directory, is
/// named `.gz` but is not gzip, has a corrupt gzip stream or bytes after it that are
/// not another gzip member, a short header, a magic number other than
/// `0x0800 | (1 + inner_dims.len())`, inner dimensions other than `inner_dims`, fewer
/// payload bytes than the header promises or bytes after them.
pub fn read_idx_u8(
    path: &Path,
    inner_dims: &[u32],
    what: &'static str,
) -> Result<IdxArray, DataError> {
    read_idx_u8_prefix(path, inner_dims, what, None)
}

/// Read the first `max_items` items of an unsigned-byte IDX file (all of them when
/// `max_items` is `None` or not below the header's count).
///
/// The header is read and checked in full, and `dims[0]` of the result is the count it
/// gives for the whole file. With a limit below that count only the first items' bytes
/// are decoded and reading stops, so neither the file's length nor what follows the
/// payload is checked. (The gzip decoder works some kilobytes ahead of what is asked
/// for, so a corrupt deflate stream just after those items may still be reported.)
///
/// # Errors
/// As [`read_idx_u8`]; with a limit, a file that ends before `max_items` items is
/// [`Truncated`](DataErrorKind::Truncated).
pub fn read_idx_u8_prefix(
    path: &Path,
    inner_dims: &[u32],
    what: &'static str,
    max_items: Option<usize>,
) -> Result<IdxArray, DataError> {
    let io_err = |e| DataError::new(path, DataErrorKind::Io(e));
    if path.is_dir() {
        return Err(DataError::new(path, DataErrorKind::IsADirectory));
    }
    let mut file = File::open(path).map_err(io_err)?;

    // Gzip is recognised by content; a `.gz` name on something else is an error.
    let mut start = [0u8; 2];
    let got = read_full(&mut file, &mut start).map_err(io_err)?;
    let named_gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    if named_gz && start[..got] != GZIP_MAGIC {
        return Err(DataError::new(
            path,
            DataErrorKind::NotGzip {
                found: start[..got].to_vec(),
            },
        ));
    }
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    read_idx_u8_from(file, path, inner_dims, what, max_items)
}

/// Read an unsigned-byte IDX array from any byte source, raw or gzip'd (recognised by
/// the gzip magic `1f 8b`), keeping the first `max_items` items (all when `None`).
///
/// `name` is what errors call the source, usually its path. Otherwise as
/// [`read_idx_u8_prefix`], which opens a file and calls this. Memory grows with the
/// bytes that actually arrive, never with the count a header claims.
///
/// # Errors
/// As [`read_idx_u8_prefix`], except that nothing here depends on a file name (no
/// [`NotGzip`](DataErrorKind::NotGzip)); every error is a [`DataError`] naming `name`.
pub fn read_idx_u8_from(
    source: impl Read,
    name: &Path,
    inner_dims: &[u32],
    what: &'static str,
    max_items: Option<usize>,
) -> Result<IdxArray, DataError> {
    let err = |kind| DataError::new(name, kind);
    let mut source = BufReader::new(source);
    let mut start = [0u8; 2];
    let got = read_full(&mut source, &mut start).map_err(|e| err(DataErrorKind::Io(e)))?;
    let is_gzip = start[..got] == GZIP_MAGIC;
    // The bytes looked at, put back in front of the rest.
    let source = (&start[..got]).chain(source);
    let mut reader: Box<dyn Read + '_> = if is_gzip {
        Box::new(GzipMembers::new(source))
    } else {
        Box::new(source)
    };
    let stream_err = |e: io::Error| {
        if let Some(garbage) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<GarbageAfterGzip>())
        {
            err(DataErrorKind::TrailingGarbage {
                bytes: garbage.bytes,
            })
        } else if is_gzip {
            err(DataErrorKind::Gzip(e))
        } else {
            err(DataErrorKind::Io(e))
        }
    };

    // Header: magic, then one big-endian u32 per dimension.
    let ndim = 1 + inner_dims.len();
    let header_len = 4 + 4 * ndim;
    let mut header = vec![0u8; header_len];
    let got = read_full(&mut reader, &mut header[..4]).map_err(stream_err)?;
    if got < 4 {
        return Err(err(DataErrorKind::TruncatedHeader {
            needed: header_len,
            found: got,
        }));
    }
    let magic = BigEndian::read_u32(&header[..4]);
    let expected_magic = 0x0800 | ndim as u32;
    if magic != expected_magic {
        return Err(err(DataErrorKind::BadMagic {
            expected: expected_magic,
            found: magic,
        }));
    }
    let got = read_full(&mut reader, &mut header[4..]).map_err(stream_err)?;
    if got < 4 * ndim {
        return Err(err(DataErrorKind::TruncatedHeader {
            needed: header_len,
            found: 4 + got,
        }));
    }
    let dims: Vec<u32> = header[4..]
        .chunks_exact(4)
        .map(BigEndian::read_u32)
        .collect();
    if dims[1..] != *inner_dims {
        let expected = if inner_dims.is_empty() {
            "[n]".to_string()
        } else {
            format!(
                "[n, {}]",
                inner_dims
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(err(DataErrorKind::BadDims {
            expected,
            found: dims,
        }));
    }

    // Payload: `items * prod(inner)` bytes, all `n` items unless a limit asks for fewer.
    // A u32 count times a product of u32 dims can overflow u64 only for absurd inner
    // dims, and those were rejected above, so the saturation is belt and braces.
    let n = dims[0] as usize;
    let limit = max_items.filter(|&k| k < n);
    let items = limit.unwrap_or(n);
    let item_bytes = inner_dims
        .iter()
        .fold(1u64, |a, &d| a.saturating_mul(d as u64));
    let expected_bytes = item_bytes.saturating_mul(items as u64);
    let data = read_payload(&mut reader, expected_bytes).map_err(stream_err)?;
    if (data.len() as u64) < expected_bytes {
        return Err(err(DataErrorKind::Truncated {
            items: n,
            what,
            expected_bytes,
            found_bytes: data.len() as u64,
            first: limit,
        }));
    }
    if limit.is_none() {
        let extra = io::copy(&mut reader, &mut io::sink()).map_err(stream_err)?;
        if extra > 0 {
            return Err(err(DataErrorKind::TrailingBytes {
                expected_bytes,
                extra,
            }));
        }
    }
    Ok(IdxArray {
        dims: dims.iter().map(|&d| d as usize).collect(),
        items,
        data,
    })
}

/// Read `wanted` bytes, or fewer if the source ends first.
///
/// The buffer starts at [`INITIAL_PAYLOAD_CAPACITY`] and doubles only when full, each
/// step capped by what is still wanted: a header claiming terabytes costs no more than
/// twice the bytes really there (or the first 64 KiB), and a complete payload ends in a
/// buffer of exactly its size.
fn read_payload(source: &mut impl Read, wanted: u64) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    loop {
        let remaining = wanted - data.len() as u64;
        if remaining == 0 {
            return Ok(data);
        }
        let step = remaining.min(data.len().max(INITIAL_PAYLOAD_CAPACITY) as u64) as usize;
        let filled = data.len();
        data.reserve_exact(step);
        data.resize(filled + step, 0);
        let got = read_full(source, &mut data[filled..])?;
        data.truncate(filled + got);
        if got < step {
            return Ok(data);
        }
    }
}

/// Read into `buf` until it is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The decompressed bytes of a gzip stream: one gzip member or several concatenated
/// (RFC 1952 allows that; `cat a.gz b.gz` makes one).
///
/// Where a member ends the next two bytes decide: nothing means the end of the stream,
/// the gzip magic `1f 8b` another member, anything else is not gzip at all and ends
/// reading with a [`GarbageAfterGzip`] error. (flate2's `MultiGzDecoder` would try to
/// parse such bytes as a member and report them as a corrupt or cut-short stream.)
struct GzipMembers<S: BufRead> {
    state: MemberState<S>,
}

enum MemberState<S: BufRead> {
    /// At the start of the stream or between members: the next bytes decide.
    Between(S),
    /// Inside a member. Its magic was read to recognise it, so it is put back in front.
    InMember(GzDecoder<Chain<&'static [u8], S>>),
    /// Past the last member, or after an error.
    Finished,
}

impl<S: BufRead> GzipMembers<S> {
    /// A decoder for the gzip stream `source` starts with.
    fn new(source: S) -> GzipMembers<S> {
        GzipMembers {
            state: MemberState::Between(source),
        }
    }
}

impl<S: BufRead> Read for GzipMembers<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            // A member's decoder answers 0 to an empty buffer; that is not its end.
            return Ok(0);
        }
        loop {
            // Taken out and put back on success: after an error the stream is finished.
            match mem::replace(&mut self.state, MemberState::Finished) {
                MemberState::Between(mut source) => {
                    let mut magic = [0u8; 2];
                    let got = read_full(&mut source, &mut magic)?;
                    if got == 0 {
                        return Ok(0);
                    }
                    if magic[..got] != GZIP_MAGIC {
                        let bytes = got as u64 + io::copy(&mut source, &mut io::sink())?;
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            GarbageAfterGzip { bytes },
                        ));
                    }
                    self.state =
                        MemberState::InMember(GzDecoder::new(GZIP_MAGIC.as_slice().chain(source)));
                }
                MemberState::InMember(mut member) => {
                    let got = member.read(buf)?;
                    if got > 0 {
                        self.state = MemberState::InMember(member);
                        return Ok(got);
                    }
                    // The member ended (its CRC and length checked); its header consumed
                    // the magic put back in front, so only the source remains.
                    let (_magic, source) = member.into_inner().into_inner();
                    self.state = MemberState::Between(source);
                }
                MemberState::Finished => return Ok(0),
            }
        }
    }
}

/// Bytes after the last gzip member that do not start another one; carried out of
/// [`GzipMembers`] inside an `io::Error` and turned into
/// [`DataErrorKind::TrailingGarbage`].
#[derive(Debug)]
struct GarbageAfterGzip {
    /// How many bytes follow the last member.
    bytes: u64,
}

impl fmt::Display for GarbageAfterGzip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes after the end of the gzip stream (not another gzip member)",
            self.bytes
        )
    }
}

impl std::error::Error for GarbageAfterGzip {}

/// One split (train or test) of MNIST in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct MnistSplit {
    /// `n * 784` pixels, image after image, row-major; in [0, 1] as loaded, or
    /// standardised after [`MnistSplit::normalize`].
    pub images: Vec<f32>,
    /// `n` labels in `0..10`.
    pub labels: Vec<u8>,
    /// Number of examples.
    pub n: usize,
}

impl MnistSplit {
    /// Load one split from an image file and a label file.
    ///
    /// A file pair holding 0 items is valid and gives an empty split; code that needs
    /// examples (a training loop) checks [`MnistSplit::is_empty`].
    ///
    /// # Errors
    /// Any [`read_idx_u8`] error, a count mismatch between the two files, or a label
    /// of 10 or more.
    pub fn from_files(images_path: &Path, labels_path: &Path) -> Result<MnistSplit, DataError> {
        MnistSplit::from_files_prefix(images_path, labels_path, None)
    }

    /// Load the first `max_items` examples of a split (all of them when `None` or when
    /// the files hold no more), decoding nothing beyond them: `--train-subset 1000`
    /// reads 1000 images, not 60,000.
    ///
    /// Both headers are read and checked in full, and their counts must agree even
    /// when only a prefix is read. With a limit below the count, reading stops after
    /// the first `max_items` items, so a file cut short (or followed by junk) after
    /// them still loads. (The gzip decoder decodes some kilobytes ahead, so a corrupt
    /// deflate stream just after them may still be reported.)
    ///
    /// # Errors
    /// As [`MnistSplit::from_files`]; a file that ends before `max_items` items is
    /// [`Truncated`](DataErrorKind::Truncated).
    pub fn from_files_prefix(
        images_path: &Path,
        labels_path: &Path,
        max_items: Option<usize>,
    ) -> Result<MnistSplit, DataError> {
        let side = IMAGE_SIDE as u32;
        let images = read_idx_u8_prefix(images_path, &[side, side], "images of 28x28", max_items)?;
        let labels = read_idx_u8_prefix(labels_path, &[], "labels", max_items)?;
        let n = images.dims[0];
        if labels.dims[0] != n {
            return Err(DataError::new(
                labels_path,
                DataErrorKind::CountMismatch {
                    images_file: images_path.to_path_buf(),
                    images: n,
                    labels: labels.dims[0],
                },
            ));
        }
        if let Some(index) = labels.data.iter().position(|&l| l as usize >= NUM_CLASSES) {
            return Err(DataError::new(
                labels_path,
                DataErrorKind::BadLabel {
                    index,
                    label: labels.data[index],
                    classes: NUM_CLASSES,
                },
            ));
        }
        let images = images.data.iter().map(|&p| f32::from(p) / 255.0).collect();
        Ok(MnistSplit {
            images,
            n: labels.items,
            labels: labels.data,
        })
    }

    /// Keep only the first `n` examples (no-op when there are fewer).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.n);
        self.images.truncate(n * IMAGE_SIZE);
        self.labels.truncate(n);
        self.n = n;
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the split holds no examples.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The 784 pixels of example `i`.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[f32] {
        assert!(
            i < self.n,
            "MnistSplit::image: index {i} out of range for {} examples",
            self.n
        );
        &self.images[i * IMAGE_SIZE..(i + 1) * IMAGE_SIZE]
    }

    /// How many examples of each class.
    pub fn label_counts(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0; NUM_CLASSES];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Standardise every pixel in place: `x <- (x - mean) / std`. Call it once, on
    /// pixels in [0, 1]; use [`MNIST_MEAN`] and [`MNIST_STD`] for both splits (the
    /// statistics of the training set). PyTorch equivalent:
    /// `transforms.Normalize((0.1307,), (0.3081,))`.
    ///
    /// # Panics
    /// When `std` is not a positive finite number.
    pub fn normalize(&mut self, mean: f32, std: f32) {
        assert!(
            std > 0.0 && std.is_finite(),
            "MnistSplit::normalize: std must be positive, got {std}"
        );
        let inv = 1.0 / std;
        for p in &mut self.images {
            *p = (*p - mean) * inv;
        }
    }

    /// The examples at `indices` (typically a slice of a shuffled permutation) as an
    /// image tensor and their labels.
    ///
    /// # Shapes
    /// Returns `[indices.len(), 784]` and `indices.len()` labels.
    ///
    /// # Panics
    /// When an index is `>= self.len()` (a programming error: indices come from
    /// `0..len`).
    pub fn batch(&self, indices: &[usize]) -> (Tensor, Vec<usize>) {
        let (pixels, labels) = self.gather(indices);
        let t = Tensor::from_vec(pixels, &[indices.len(), IMAGE_SIZE])
            .expect("batch: buffer is indices.len() * 784 by construction");
        (t, labels)
    }

    /// Like [`MnistSplit::batch`] but shaped for a convolutional network.
    ///
    /// # Shapes
    /// Returns `[indices.len(), 1, 28, 28]` (NCHW) and `indices.len()` labels.
    ///
    /// # Panics
    /// When an index is `>= self.len()`.
    pub fn batch_nchw(&self, indices: &[usize]) -> (Tensor, Vec<usize>) {
        let (pixels, labels) = self.gather(indices);
        let t = Tensor::from_vec(pixels, &[indices.len(), 1, IMAGE_SIDE, IMAGE_SIDE])
            .expect("batch_nchw: buffer is indices.len() * 784 by construction");
        (t, labels)
    }

    fn gather(&self, indices: &[usize]) -> (Vec<f32>, Vec<usize>) {
        let mut pixels = Vec::with_capacity(indices.len() * IMAGE_SIZE);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            assert!(
                i < self.n,
                "MnistSplit::batch: index {i} out of range for {} examples",
                self.n
            );
            pixels.extend_from_slice(&self.images[i * IMAGE_SIZE..(i + 1) * IMAGE_SIZE]);
            labels.push(self.labels[i] as usize);
        }
        (pixels, labels)
    }
}

/// MNIST: 60,000 training and 10,000 test images of handwritten digits.
#[derive(Clone, Debug, PartialEq)]
pub struct Mnist {
    /// The 60,000 training examples.
    pub train: MnistSplit,
    /// The 10,000 test examples.
    pub test: MnistSplit,
}

impl Mnist {
    /// Load the four IDX files from `dir`, pixels scaled to [0, 1].
    ///
    /// Each file is looked up under the names of [`file_candidates`], `.gz` first.
    ///
    /// # Errors
    /// A [`DataError`] when a file is missing (listing the names tried) or invalid.
    pub fn load(dir: &Path) -> Result<Mnist, DataError> {
        Mnist::load_limited(dir, None)
    }

    /// Like [`Mnist::load`], but only the first `train_items` training examples are read
    /// (all when `None`), with [`MnistSplit::from_files_prefix`]; the test split is
    /// always read whole.
    ///
    /// # Errors
    /// As [`Mnist::load`].
    pub fn load_limited(dir: &Path, train_items: Option<usize>) -> Result<Mnist, DataError> {
        let train = MnistSplit::from_files_prefix(
            &find_file(dir, "train-images", 3)?,
            &find_file(dir, "train-labels", 1)?,
            train_items,
        )?;
        let test = MnistSplit::from_files(
            &find_file(dir, "t10k-images", 3)?,
            &find_file(dir, "t10k-labels", 1)?,
        )?;
        Ok(Mnist { train, test })
    }

    /// Find MNIST with [`find_dataset`](super::find_dataset) (the `flag` given on
    /// the command line, then `$AGDLAB_MNIST`, `$AGDLAB_DATA/mnist`, `data/mnist`,
    /// `../shared/data/mnist`) and load it.
    ///
    /// # Errors
    /// When it is found nowhere (the error lists every place looked) or is invalid.
    pub fn locate_and_load(flag: Option<&Path>) -> Result<Mnist, DataError> {
        Mnist::locate_and_load_limited(flag, None)
    }

    /// Find MNIST like [`Mnist::locate_and_load`] and load it with
    /// [`Mnist::load_limited`]: only the first `train_items` training examples (all
    /// when `None`), the whole test split. This is what `--train-subset` wants.
    ///
    /// # Errors
    /// As [`Mnist::locate_and_load`].
    pub fn locate_and_load_limited(
        flag: Option<&Path>,
        train_items: Option<usize>,
    ) -> Result<Mnist, DataError> {
        let required = required_files();
        let required: Vec<&str> = required.iter().map(String::as_str).collect();
        let dir = locate::find_dataset("mnist", flag, "AGDLAB_MNIST", &required)?;
        Mnist::load_limited(&dir, train_items)
    }

    /// Standardise both splits with the training statistics [`MNIST_MEAN`] and
    /// [`MNIST_STD`] (torchvision's convention).
    pub fn normalized(mut self) -> Mnist {
        self.train.normalize(MNIST_MEAN, MNIST_STD);
        self.test.normalize(MNIST_MEAN, MNIST_STD);
        self
    }
}

/// The first of the [`file_candidates`] that is a file in `dir`.
///
/// # Errors
/// [`DataErrorKind::IsADirectory`] when no candidate is a file but one is a directory;
/// otherwise a not-found [`DataErrorKind::Io`] listing the names tried.
fn find_file(dir: &Path, stem: &str, ndim: usize) -> Result<PathBuf, DataError> {
    let names = file_candidates(stem, ndim);
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    if let Some(file) = paths.iter().find(|p| p.is_file()) {
        return Ok(file.clone());
    }
    if let Some(directory) = paths.iter().find(|p| p.is_dir()) {
        return Err(DataError::new(directory, DataErrorKind::IsADirectory));
    }
    Err(DataError::new(
        &paths[0],
        DataErrorKind::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "not found (also tried {} in {})",
                names[1..].join(", "),
                dir.display()
            ),
        )),
    ))
}
