//! Checkpoints in the safetensors format.
//!
//! A checkpoint is a set of named `f32` tensors plus string metadata, written as a
//! [safetensors](https://huggingface.co/docs/safetensors) file: an 8-byte little-endian
//! header length, a JSON header (names, dtypes, shapes, byte offsets and a
//! `__metadata__` string map), then the raw little-endian data. PyTorch users open it
//! with `safetensors.torch.load_file(path)`, and `safe_open(path, "pt").metadata()`
//! gives the metadata.
//!
//! Two layers:
//!
//! - [`Checkpoint`]: tensors + metadata, [`Checkpoint::save`] / [`Checkpoint::load`].
//!   Only dtype `F32` is written or accepted. Tensors are written in name order, so
//!   `load` returns them in name order.
//! - [`save_training`] / [`load_training`]: a model's parameters and an optimizer's
//!   [`OptimizerState`] in one file, laid out as
//!
//!   | what | where |
//!   |---|---|
//!   | parameter `fc1.weight` | tensor `model.fc1.weight` |
//!   | optimizer buffer `fc1.weight.exp_avg` | tensor `optim.fc1.weight.exp_avg` |
//!   | optimizer kind (`"AGD"`) | metadata `optim.kind` |
//!   | optimizer scalar `fc1.weight.step` | metadata `optim.scalar.fc1.weight.step` |
//!   | format version | metadata `agdlab.format` = `"1"` |
//!   | caller's extra entries (epoch, seed, ...) | metadata, under their own keys |
//!
//! Scalars are written with Rust's shortest round-trip decimal form (`{:?}`), which
//! parses back to the identical `f64` (step counts up to 2^53 stay exact integers) and
//! stays readable in Python.
//!
//! Files are reproducible: the same tensors and metadata give the same bytes in any
//! process (the header is built in a fixed order, see `format.rs`), so two runs that
//! agree bit for bit write checkpoints with the same SHA-256.
//!
//! Writes are atomic: the file is written to `<path>.tmp-<pid>-<n>` in the same
//! directory, flushed and `fsync`ed, then renamed over `path`. A crash mid-save leaves
//! the previous checkpoint intact, and the next save to `path` removes the temporary
//! that the crashed process left (`file.rs` says which files it removes).
//!
//! Reading never panics on a bad file: a [`CheckpointError`] names the file and the
//! problem (truncated, not safetensors, wrong dtype, missing tensor, shape mismatch).
//! [`load_training`] checks every parameter before it changes any, so a failed load
//! leaves the model as it was.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::nn::Module;
use crate::optim::{OptimError, OptimizerState};
use crate::state_dict::{state_entries, StateEntry};
use crate::tensor::Tensor;

mod file;
mod format;
pub use file::check_writable_target;
pub(crate) use file::write_atomic;
pub(crate) use format::{decode_f32, parse_raw, serialize, Dtype, RawTensor};

/// Metadata key holding the training-checkpoint format version.
pub const FORMAT_KEY: &str = "agdlab.format";
/// The training-checkpoint format version written and accepted.
pub const FORMAT_VERSION: &str = "1";
/// Tensor-name prefix of model parameters.
pub const MODEL_PREFIX: &str = "model.";
/// Tensor-name prefix of optimizer buffers.
pub const OPTIM_PREFIX: &str = "optim.";
/// Metadata key holding the optimizer kind.
pub const OPTIM_KIND_KEY: &str = "optim.kind";
/// Metadata-key prefix of optimizer scalars.
pub const OPTIM_SCALAR_PREFIX: &str = "optim.scalar.";

// ------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------

/// An error saving or loading a checkpoint: the file concerned and what went wrong.
#[derive(Debug)]
pub struct CheckpointError {
    path: PathBuf,
    kind: CheckpointErrorKind,
}

/// What went wrong; see [`CheckpointError`].
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckpointErrorKind {
    /// Reading, writing or renaming failed.
    Io(io::Error),
    /// Not a safetensors file, or its header is corrupt.
    NotSafetensors(String),
    /// The file ends before the data its header describes.
    Truncated(String),
    /// The file has bytes beyond the data its header describes.
    TrailingBytes(String),
    /// A tensor's header entry is invalid: no or an unknown dtype, a malformed or too
    /// large shape, or data offsets that disagree with the shape or with the other
    /// tensors' offsets.
    BadTensor {
        /// The tensor's name in the file.
        tensor: String,
        /// What is wrong with its entry.
        problem: String,
    },
    /// A tensor of a dtype other than `F32`.
    WrongDtype {
        /// The tensor's name in the file.
        tensor: String,
        /// Its dtype, as safetensors names it (`"F16"`, `"I64"`, ...).
        dtype: String,
    },
    /// A tensor the model needs is not in the file.
    MissingTensor(String),
    /// A tensor whose shape differs from the model parameter's.
    ShapeMismatch {
        /// The tensor's name in the file.
        tensor: String,
        /// The parameter's shape.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor in the file that the model does not have (a checkpoint of another
    /// model), or with neither the `model.` nor the `optim.` prefix.
    UnexpectedTensor(String),
    /// A strict state-dict load found entries missing from the file, tensors the model
    /// does not have, or both.
    KeyMismatch {
        /// Entries of the model the file lacks.
        missing: Vec<String>,
        /// Tensors of the file the model lacks.
        unexpected: Vec<String>,
    },
    /// The training-format version is missing or not one this code reads.
    UnsupportedFormat(Option<String>),
    /// A metadata entry is missing or unreadable.
    BadMetadata {
        /// The key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// What was asked to be saved cannot be: duplicate or reserved names.
    InvalidInput(String),
    /// The path cannot take a checkpoint: a directory, device, FIFO, socket or symbolic
    /// link is there, or its directory is missing or not writable; see
    /// [`check_writable_target`].
    InvalidTarget(String),
    /// A model parameter holds NaN or an infinity: resuming from it would train on
    /// garbage. Buffers are not checked (a mask of `-inf` is legitimate).
    NonFiniteParameter {
        /// The tensor's name in the file (`model.fc1.weight`).
        tensor: String,
        /// How many of its values are not finite.
        count: usize,
        /// The row-major index of the first of them.
        first_index: usize,
    },
    /// The optimizer refused the state read from the checkpoint (another optimizer's
    /// state, a negative second moment, a step count beyond 2^53, ...); see
    /// [`CheckpointError::optimizer_state`].
    OptimizerState(OptimError),
}

impl CheckpointError {
    pub(crate) fn new(path: &Path, kind: CheckpointErrorKind) -> CheckpointError {
        CheckpointError {
            path: path.to_path_buf(),
            kind,
        }
    }

    /// An optimizer's refusal of the state loaded from the checkpoint at `path`, so
    /// that the message names the file:
    ///
    /// ```no_run
    /// # use agdlab::checkpoint::{load_training, CheckpointError};
    /// # use agdlab::optim::Optimizer;
    /// # fn resume(path: &std::path::Path, model: &agdlab::nn::Sequential, optimizer: &mut dyn Optimizer)
    /// # -> Result<(), CheckpointError> {
    /// let (state, _extra) = load_training(path, model)?;
    /// optimizer.load_state(&state).map_err(|e| CheckpointError::optimizer_state(path, e))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn optimizer_state(path: impl AsRef<Path>, err: OptimError) -> CheckpointError {
        CheckpointError::new(path.as_ref(), CheckpointErrorKind::OptimizerState(err))
    }

    /// The checkpoint file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What went wrong.
    pub fn kind(&self) -> &CheckpointErrorKind {
        &self.kind
    }
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.kind)
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source()
    }
}

/// The problem alone, without the file: what [`CheckpointError`] prints after the path.
impl fmt::Display for CheckpointErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointErrorKind::Io(e) => write!(f, "{e}"),
            CheckpointErrorKind::NotSafetensors(why) => {
                write!(f, "not a safetensors file or corrupt header: {why}")
            }
            CheckpointErrorKind::Truncated(why) => write!(f, "truncated: {why}"),
            CheckpointErrorKind::TrailingBytes(why) => write!(f, "trailing bytes: {why}"),
            CheckpointErrorKind::BadTensor { tensor, problem } => {
                write!(f, "tensor {tensor:?}: {problem}")
            }
            CheckpointErrorKind::WrongDtype { tensor, dtype } => {
                write!(
                    f,
                    "tensor {tensor:?} has dtype {dtype}; only F32 is supported"
                )
            }
            CheckpointErrorKind::MissingTensor(t) => write!(f, "missing tensor {t:?}"),
            CheckpointErrorKind::ShapeMismatch {
                tensor,
                expected,
                found,
            } => write!(
                f,
                "shape mismatch for tensor {tensor:?}: the model has {expected:?}, the file has {found:?}"
            ),
            CheckpointErrorKind::UnexpectedTensor(t) => write!(
                f,
                "unexpected tensor {t:?}: the model has no such parameter (a checkpoint of a different \
                 model?)"
            ),
            CheckpointErrorKind::KeyMismatch {
                missing,
                unexpected,
            } => {
                write!(f, "the state dict does not match the model:")?;
                if !missing.is_empty() {
                    write!(f, " missing {missing:?}")?;
                }
                if !unexpected.is_empty() {
                    write!(f, " unexpected {unexpected:?}")?;
                }
                write!(f, " (load non-strictly to load the entries that do match)")
            }
            CheckpointErrorKind::UnsupportedFormat(None) => {
                write!(
                    f,
                    "no {FORMAT_KEY:?} metadata: not an agdlab training checkpoint"
                )
            }
            CheckpointErrorKind::UnsupportedFormat(Some(v)) => write!(
                f,
                "training-checkpoint format {v:?} is not supported (this build reads {FORMAT_VERSION:?})"
            ),
            CheckpointErrorKind::BadMetadata { key, problem } => {
                write!(f, "metadata {key:?}: {problem}")
            }
            CheckpointErrorKind::InvalidInput(why) => write!(f, "cannot save: {why}"),
            CheckpointErrorKind::InvalidTarget(why) => write!(f, "cannot save to this path: {why}"),
            CheckpointErrorKind::NonFiniteParameter {
                tensor,
                count,
                first_index,
            } => write!(
                f,
                "tensor {tensor:?} holds {count} non-finite values (NaN or infinite), the first at index \
                 {first_index}: refusing to resume from a parameter that is not finite"
            ),
            CheckpointErrorKind::OptimizerState(e) => {
                write!(f, "cannot load the optimizer state: {e}")
            }
        }
    }
}

impl std::error::Error for CheckpointErrorKind {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckpointErrorKind::Io(e) => Some(e),
            CheckpointErrorKind::OptimizerState(e) => Some(e),
            _ => None,
        }
    }
}

// ------------------------------------------------------------------------------------
// Checkpoint: named f32 tensors + metadata
// ------------------------------------------------------------------------------------

/// Named `f32` tensors and string metadata, saved as one safetensors file.
#[derive(Clone, Debug, Default)]
pub struct Checkpoint {
    /// The tensors, by name. Names must be unique and not `__metadata__`.
    pub tensors: Vec<(String, Tensor)>,
    /// Free-form string metadata (the safetensors `__metadata__` map).
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new() -> Checkpoint {
        Checkpoint::default()
    }

    /// The tensor named `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Write to `path` atomically (temporary file in the same directory, `fsync`,
    /// rename). Any layout is accepted; tensors are written row-major. `path` must be a
    /// regular file or nothing yet, in an existing directory: symbolic links, devices,
    /// directories and FIFOs are refused, not followed or replaced (see
    /// [`check_writable_target`]). Temporaries left at `path` by killed saves of other
    /// processes are removed.
    ///
    /// # Errors
    /// Duplicate tensor names, the reserved name `__metadata__`, a refused target, or an
    /// I/O failure (the temporary file is then removed and any existing `path` is
    /// untouched).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        let path = path.as_ref();
        let bytes = self.to_bytes().map_err(|k| CheckpointError::new(path, k))?;
        write_atomic(path, &bytes)
    }

    /// Read a checkpoint written by [`Checkpoint::save`] or any safetensors writer,
    /// as long as every tensor is `F32`. Tensors come back in file order (by name for
    /// files written by [`Checkpoint::save`]).
    ///
    /// # Errors
    /// I/O failure, a file that is not safetensors or is truncated or has trailing
    /// bytes, an invalid tensor entry, metadata that is not a map of strings, or a
    /// tensor of another dtype: the checks and their order are listed in `format.rs`.
    pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint, CheckpointError> {
        let path = path.as_ref();
        let bytes =
            fs::read(path).map_err(|e| CheckpointError::new(path, CheckpointErrorKind::Io(e)))?;
        Checkpoint::from_bytes(&bytes).map_err(|k| CheckpointError::new(path, k))
    }

    /// The bytes [`Checkpoint::save`] writes: the same checkpoint always gives the same
    /// bytes.
    ///
    /// # Errors
    /// Duplicate tensor names or the reserved name `__metadata__`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointErrorKind> {
        let raw: Vec<(String, RawTensor)> = self
            .tensors
            .iter()
            .map(|(name, t)| (name.clone(), RawTensor::f32(t)))
            .collect();
        serialize(&raw, &self.metadata)
    }

    /// Read a checkpoint from the bytes of a safetensors file, as [`Checkpoint::load`]
    /// reads a file (which calls this). Never panics, whatever the bytes.
    ///
    /// # Errors
    /// As [`Checkpoint::load`], without the file name and without I/O errors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, CheckpointErrorKind> {
        let (raw, metadata) = parse_raw(bytes)?;
        let mut tensors = Vec::with_capacity(raw.len());
        for (name, t) in raw {
            if t.dtype != Dtype::F32 {
                return Err(CheckpointErrorKind::WrongDtype {
                    tensor: name,
                    dtype: format!("{:?}", t.dtype),
                });
            }
            let tensor = decode_f32(&name, &t)?;
            tensors.push((name, tensor));
        }
        Ok(Checkpoint { tensors, metadata })
    }
}

// ------------------------------------------------------------------------------------
// Training checkpoints: model parameters + optimizer state
// ------------------------------------------------------------------------------------

/// Save a model's parameters and buffers, an optimizer's state and extra metadata to
/// `path` (atomically), in the layout described in the [module documentation](self).
///
/// `extra` holds the caller's own entries (epoch, seed, data order, ...); its keys must
/// not start with `agdlab.` or `optim.`.
///
/// # Errors
/// Duplicate parameter or buffer names, reserved keys in `extra`, or I/O failure.
pub fn save_training(
    path: impl AsRef<Path>,
    model: &dyn Module,
    optim: &OptimizerState,
    extra: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    let invalid = |why: String| CheckpointError::new(path, CheckpointErrorKind::InvalidInput(why));

    let mut metadata = BTreeMap::new();
    for (k, v) in extra {
        if k.starts_with("agdlab.") || k.starts_with(OPTIM_PREFIX) {
            return Err(invalid(format!(
                "extra metadata key {k:?} uses a reserved prefix (\"agdlab.\" or \"optim.\")"
            )));
        }
        metadata.insert(k.clone(), v.clone());
    }
    metadata.insert(FORMAT_KEY.to_string(), FORMAT_VERSION.to_string());
    metadata.insert(OPTIM_KIND_KEY.to_string(), optim.kind.clone());
    for (name, value) in &optim.scalars {
        let key = format!("{OPTIM_SCALAR_PREFIX}{name}");
        if metadata.insert(key, format!("{value:?}")).is_some() {
            return Err(invalid(format!("duplicate optimizer scalar {name:?}")));
        }
    }

    let entries = state_entries(model);
    let mut tensors = Vec::with_capacity(entries.len() + optim.tensors.len());
    for (name, entry) in entries {
        tensors.push((format!("{MODEL_PREFIX}{name}"), entry.value()));
    }
    for (name, t) in &optim.tensors {
        tensors.push((format!("{OPTIM_PREFIX}{name}"), t.clone()));
    }
    Checkpoint { tensors, metadata }.save(path)
}

/// Load a checkpoint written by [`save_training`] into `model` and return the
/// optimizer state and the extra metadata.
///
/// Every parameter and buffer of `model` must be in the file (as `model.<name>`) with
/// its shape, every parameter must be finite (buffers may hold infinities), and the
/// file must hold no `model.` tensor the model lacks. All of this is checked before any
/// parameter is set, so on error the model is untouched. The optimizer state is
/// returned, not checked: the optimizer checks it (kind, shapes, finite values, step
/// counts) when it loads it; wrap its error with [`CheckpointError::optimizer_state`]
/// to name the file. Optimizer buffers come back in name order, scalars in name order.
///
/// # Errors
/// Any [`Checkpoint::load`] error; a missing or unsupported `agdlab.format`; a missing
/// `optim.kind`; an unparseable scalar; a missing, extra or wrongly shaped parameter;
/// a parameter holding NaN or an infinity.
pub fn load_training(
    path: impl AsRef<Path>,
    model: &dyn Module,
) -> Result<(OptimizerState, BTreeMap<String, String>), CheckpointError> {
    let path = path.as_ref();
    let err = |kind| CheckpointError::new(path, kind);
    let ckpt = Checkpoint::load(path)?;
    let mut metadata = ckpt.metadata;

    match metadata.remove(FORMAT_KEY) {
        Some(v) if v == FORMAT_VERSION => {}
        other => return Err(err(CheckpointErrorKind::UnsupportedFormat(other))),
    }
    let kind = metadata.remove(OPTIM_KIND_KEY).ok_or_else(|| {
        err(CheckpointErrorKind::BadMetadata {
            key: OPTIM_KIND_KEY.into(),
            problem: "missing".into(),
        })
    })?;

    let mut scalars = Vec::new();
    let mut extra = BTreeMap::new();
    for (key, value) in metadata {
        if let Some(name) = key.strip_prefix(OPTIM_SCALAR_PREFIX) {
            let x: f64 = value.trim().parse().map_err(|_| {
                err(CheckpointErrorKind::BadMetadata {
                    problem: format!("{value:?} is not a number"),
                    key: key.clone(),
                })
            })?;
            scalars.push((name.to_string(), x));
        } else if key.starts_with("agdlab.") || key.starts_with(OPTIM_PREFIX) {
            // Reserved keys this version does not know: ignore rather than pass them
            // off as the caller's extra entries.
        } else {
            extra.insert(key, value);
        }
    }

    // Sort the file's tensors into model and optimizer parts.
    let mut model_tensors: HashMap<String, Tensor> = HashMap::new();
    let mut optim_tensors = Vec::new();
    for (name, t) in ckpt.tensors {
        if let Some(p) = name.strip_prefix(MODEL_PREFIX) {
            model_tensors.insert(p.to_string(), t);
        } else if let Some(o) = name.strip_prefix(OPTIM_PREFIX) {
            optim_tensors.push((o.to_string(), t));
        } else {
            return Err(err(CheckpointErrorKind::UnexpectedTensor(name)));
        }
    }

    // Check everything before touching any parameter.
    let entries = state_entries(model);
    let mut updates = Vec::with_capacity(entries.len());
    for (name, param) in &entries {
        let tensor_name = format!("{MODEL_PREFIX}{name}");
        let t = model_tensors
            .remove(name)
            .ok_or_else(|| err(CheckpointErrorKind::MissingTensor(tensor_name.clone())))?;
        let expected = param.shape();
        if t.shape() != expected.as_slice() {
            return Err(err(CheckpointErrorKind::ShapeMismatch {
                tensor: tensor_name,
                expected,
                found: t.shape().to_vec(),
            }));
        }
        if let StateEntry::Param(_) = param {
            let values = t.to_vec();
            let mut non_finite = values
                .iter()
                .enumerate()
                .filter(|(_, x)| !x.is_finite())
                .map(|(i, _)| i);
            if let Some(first_index) = non_finite.next() {
                let count = 1 + non_finite.count();
                return Err(err(CheckpointErrorKind::NonFiniteParameter {
                    tensor: tensor_name,
                    count,
                    first_index,
                }));
            }
        }
        updates.push((param, t));
    }
    if let Some(name) = model_tensors.keys().min() {
        return Err(err(CheckpointErrorKind::UnexpectedTensor(format!(
            "{MODEL_PREFIX}{name}"
        ))));
    }
    for (entry, t) in updates {
        entry.set(t).expect("shapes were checked above");
    }
    Ok((
        OptimizerState {
            kind,
            tensors: optim_tensors,
            scalars,
        },
        extra,
    ))
}
