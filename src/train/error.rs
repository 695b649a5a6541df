//! What can stop a training run, each with a message that says what to do.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::checkpoint::CheckpointError;
use crate::data::DataError;
use crate::optim::OptimError;

/// Why a training run stopped.
#[derive(Debug)]
pub enum TrainError {
    /// A setting (a flag) is unusable; the message names the flag.
    Settings(String),
    /// The data set could not be read, or holds nothing to train on.
    Data(String),
    /// A loss, an evaluation metric or a gradient became NaN or infinite.
    NonFinite {
        /// What became non-finite ("training loss", "test_loss", ...).
        what: String,
        /// The epoch (1-based) and, during training, the step within it (1-based).
        epoch: usize,
        step: Option<usize>,
        /// What was found (NaN, inf).
        value: f64,
        /// The likely cause, in words.
        hint: String,
    },
    /// The optimizer refused (a non-finite gradient, a state that does not fit).
    Optimizer(OptimError),
    /// A checkpoint could not be written or read.
    Checkpoint(CheckpointError),
    /// A file other than a checkpoint (the metrics CSV) could not be written or read.
    Io { path: PathBuf, source: io::Error },
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::Settings(message) | TrainError::Data(message) => f.write_str(message),
            TrainError::NonFinite {
                what,
                epoch,
                step,
                value,
                hint,
            } => {
                write!(f, "{what} became {value} at epoch {epoch}")?;
                if let Some(step) = step {
                    write!(f, " step {step}")?;
                }
                write!(f, ": training stopped ({hint})")
            }
            TrainError::Optimizer(e) => write!(f, "optimizer: {e}"),
            TrainError::Checkpoint(e) => write!(f, "checkpoint {e}"),
            TrainError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for TrainError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrainError::Optimizer(e) => Some(e),
            TrainError::Checkpoint(e) => Some(e),
            TrainError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<CheckpointError> for TrainError {
    fn from(e: CheckpointError) -> TrainError {
        TrainError::Checkpoint(e)
    }
}

impl From<OptimError> for TrainError {
    fn from(e: OptimError) -> TrainError {
        TrainError::Optimizer(e)
    }
}

impl From<DataError> for TrainError {
    fn from(e: DataError) -> TrainError {
        TrainError::Data(e.to_string())
    }
}
