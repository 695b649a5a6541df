//! Loading data sets from disk.
//!
//! - [`mnist`]: the MNIST IDX files (gzip'd or raw) into `f32` images and `u8` labels,
//!   plus batches as [`Tensor`](crate::tensor::Tensor)s for a shuffled permutation.
//! - [`ptb`]: the Penn Treebank word-level corpus as token ids, and its batching into
//!   parallel streams and windows for truncated back-propagation through time.
//! - [`ctr`]: click logs as a factorization machine reads them (fields hashed or offset
//!   into one table, labels 0/1), read from [`criteo`] files and [`movielens`]-100k, or
//!   made by [`synthetic_ctr`] from a planted model.
//! - [`locate`]: where a data set lives. Every example finds its data the same way: a
//!   command-line flag, then an environment variable, then `data/<name>` in the crate
//!   and the working directory, then `../shared/data/<name>`.
//!
//! Files come from outside the program, so nothing here panics on their content:
//! every problem is a [`DataError`] that names the file and says what is wrong with it,
//! for example
//! `data/mnist/t10k-labels-idx1-ubyte.gz: truncated: header says 10000 labels (10000 bytes), found 9000 bytes`.

pub mod criteo;
pub mod ctr;
pub mod fashion_mnist;
pub mod locate;
pub mod mnist;
pub mod movielens;
pub mod ptb;
pub mod synthetic_ctr;

pub use ctr::{CtrBatch, CtrDataset, CtrExamples, Skipped};
pub use locate::find_dataset;
pub use mnist::{Mnist, MnistSplit};
pub use ptb::{Ptb, Streams};

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An error reading a data set: the file (or directory) it concerns and what went wrong.
#[derive(Debug)]
pub struct DataError {
    path: PathBuf,
    kind: DataErrorKind,
}

/// What went wrong; see [`DataError`].
#[derive(Debug)]
#[non_exhaustive]
pub enum DataErrorKind {
    /// The file could not be opened or read.
    Io(io::Error),
    /// A directory stands where a data file should be.
    IsADirectory,
    /// The file is named `.gz` but does not start with the gzip magic `1f 8b`.
    NotGzip {
        /// The first bytes found instead (at most two).
        found: Vec<u8>,
    },
    /// The gzip stream is corrupt or cut short.
    Gzip(io::Error),
    /// Bytes follow the last gzip member that do not start another member (a gzip
    /// stream may hold several members back to back, each starting `1f 8b`).
    TrailingGarbage {
        /// How many bytes follow the last member.
        bytes: u64,
    },
    /// The file ends inside the IDX header.
    TruncatedHeader {
        /// Header bytes required (4 for the magic + 4 per dimension).
        needed: usize,
        /// Bytes present.
        found: usize,
    },
    /// The magic number is not the one expected for this file.
    BadMagic {
        /// The expected magic, for example `0x00000803` for 3-dimensional ubyte data.
        expected: u32,
        /// What the file holds.
        found: u32,
    },
    /// The header's dimensions are not the expected ones (for example not 28x28).
    BadDims {
        /// What was expected, in words.
        expected: String,
        /// The dimensions found.
        found: Vec<u32>,
    },
    /// The payload is shorter than the header promises, or than the first items asked
    /// for need.
    Truncated {
        /// The number of items the header claims.
        items: usize,
        /// What one item is ("images of 28x28", "labels").
        what: &'static str,
        /// Payload bytes required (for the first `first` items when that is `Some`).
        expected_bytes: u64,
        /// Payload bytes present.
        found_bytes: u64,
        /// `Some(k)` when only the first `k < items` items were to be read.
        first: Option<usize>,
    },
    /// There are bytes after the payload the header describes.
    TrailingBytes {
        /// Payload bytes the header describes.
        expected_bytes: u64,
        /// Bytes after them.
        extra: u64,
    },
    /// The image and label files of one split disagree on the number of items.
    CountMismatch {
        /// The image file.
        images_file: PathBuf,
        /// Number of images.
        images: usize,
        /// Number of labels (in the file this error names).
        labels: usize,
    },
    /// A label outside `0..classes`.
    BadLabel {
        /// Position of the label in the file.
        index: usize,
        /// Its value.
        label: u8,
        /// The number of classes.
        classes: usize,
    },
    /// A line of a text file is not valid UTF-8.
    NotUtf8 {
        /// The line (1-based).
        line: usize,
        /// The byte of the line where the invalid sequence starts (1-based).
        column: usize,
    },
    /// A line of a text file holds a control character other than whitespace (a binary
    /// file where text was expected?).
    ControlCharacter {
        /// The line (1-based).
        line: usize,
        /// The character's position in the line (1-based, in characters).
        column: usize,
        /// The character.
        found: char,
    },
    /// A word of a text file that the vocabulary lacks.
    UnknownWord {
        /// The line (1-based).
        line: usize,
        /// The word.
        word: String,
        /// The file the vocabulary was built from.
        vocabulary_file: PathBuf,
    },
    /// A text file is empty.
    NoText,
    /// A line of a text file cannot be read (the wrong number of fields, a value that is
    /// not a number, an id that names nothing).
    Malformed {
        /// The line's number, counting from 1.
        line: usize,
        /// What is wrong with it, naming the field.
        problem: String,
    },
    /// A data set was not found anywhere; the error's path is the recommended location.
    NotFound {
        /// The data set's name (`"mnist"`).
        name: String,
        /// The files it needs (alternatives joined by `|`).
        required: Vec<String>,
        /// Every place looked, with why it was rejected.
        looked: Vec<(PathBuf, String)>,
        /// The environment variable that selects it.
        env_var: String,
    },
}

impl DataError {
    /// An error about `path`.
    pub fn new(path: impl Into<PathBuf>, kind: DataErrorKind) -> DataError {
        DataError {
            path: path.into(),
            kind,
        }
    }

    /// The file or directory concerned.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What went wrong.
    pub fn kind(&self) -> &DataErrorKind {
        &self.kind
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.kind {
            DataErrorKind::Io(e) => write!(f, "{path}: {e}"),
            DataErrorKind::IsADirectory => write!(f, "{path}: is a directory, not a data file"),
            DataErrorKind::NotGzip { found } => write!(
                f,
                "{path}: named .gz but not gzip: starts with [{}], gzip starts with [1f 8b]",
                hex(found)
            ),
            DataErrorKind::Gzip(e) => write!(f, "{path}: corrupt or truncated gzip stream: {e}"),
            DataErrorKind::TrailingGarbage { bytes } => {
                write!(
                    f,
                    "{path}: {bytes} bytes after the end of the gzip stream (not another gzip member)"
                )
            }
            DataErrorKind::TruncatedHeader { needed, found } => {
                write!(
                    f,
                    "{path}: truncated header: an IDX header here needs {needed} bytes, found {found}"
                )
            }
            DataErrorKind::BadMagic { expected, found } => {
                write!(
                    f,
                    "{path}: bad magic number 0x{found:08x}, expected 0x{expected:08x}"
                )?;
                let (ty, nd) = ((found >> 8) & 0xff, found & 0xff);
                if found >> 16 != 0 {
                    write!(f, " (not an IDX file: its first two bytes must be zero)")
                } else if ty != 0x08 {
                    write!(
                        f,
                        " (element type 0x{ty:02x}; only 0x08, unsigned byte, is read)"
                    )
                } else {
                    write!(f, " ({nd} dimensions, expected {})", expected & 0xff)
                }
            }
            DataErrorKind::BadDims { expected, found } => {
                write!(
                    f,
                    "{path}: unexpected dimensions {found:?}, expected {expected}"
                )
            }
            DataErrorKind::Truncated {
                items,
                what,
                expected_bytes,
                found_bytes,
                first: None,
            } => write!(
                f,
                "{path}: truncated: header says {items} {what} ({expected_bytes} bytes), \
                 found {found_bytes} bytes"
            ),
            DataErrorKind::Truncated {
                items,
                what,
                expected_bytes,
                found_bytes,
                first: Some(first),
            } => {
                write!(
                    f,
                    "{path}: truncated: header says {items} {what}, the first {first} need \
                     {expected_bytes} bytes, found {found_bytes} bytes"
                )
            }
            DataErrorKind::TrailingBytes {
                expected_bytes,
                extra,
            } => write!(
                f,
                "{path}: {extra} trailing bytes after the {expected_bytes} payload bytes the \
                 header describes"
            ),
            DataErrorKind::CountMismatch {
                images_file,
                images,
                labels,
            } => {
                write!(
                    f,
                    "{path}: {labels} labels, but {} holds {images} images",
                    images_file.display()
                )
            }
            DataErrorKind::BadLabel {
                index,
                label,
                classes,
            } => {
                write!(
                    f,
                    "{path}: label {label} at position {index} is not a class in 0..{classes}"
                )
            }
            DataErrorKind::NotUtf8 { line, column } => {
                write!(
                    f,
                    "{path}:{line}: not UTF-8 text (invalid bytes from byte {column} of the line)"
                )
            }
            DataErrorKind::ControlCharacter {
                line,
                column,
                found,
            } => write!(
                f,
                "{path}:{line}: control character U+{:04X} at character {column} (not a text file?)",
                *found as u32
            ),
            DataErrorKind::UnknownWord {
                line,
                word,
                vocabulary_file,
            } => {
                let shown: String = word.chars().take(40).collect();
                let more = if shown.len() < word.len() { "..." } else { "" };
                write!(
                    f,
                    "{path}:{line}: word {shown:?}{more} is not in the vocabulary built from {}",
                    vocabulary_file.display()
                )
            }
            DataErrorKind::NoText => write!(f, "{path}: the file is empty"),
            DataErrorKind::Malformed { line, problem } => write!(f, "{path}:{line}: {problem}"),
            DataErrorKind::NotFound {
                name,
                required,
                looked,
                env_var,
            } => {
                writeln!(f, "data set {name:?} not found. It needs these files:")?;
                for r in required {
                    writeln!(f, "    {}", r.split('|').collect::<Vec<_>>().join(" or "))?;
                }
                writeln!(f, "Looked in:")?;
                for (dir, why) in looked {
                    writeln!(f, "    {}: {why}", dir.display())?;
                }
                write!(
                    f,
                    "Put the files in {path}, or point the example's data flag or the \
                     environment variable {env_var} at the directory holding them \
                     (see data/README.md)."
                )
            }
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            DataErrorKind::Io(e) | DataErrorKind::Gzip(e) => Some(e),
            _ => None,
        }
    }
}
