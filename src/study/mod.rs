//! Comparing optimizers the way the AGD paper does: several seeds per optimizer, the
//! same example programs users run, a results table and pictures.
//!
//! `examples/compare.rs` is the command-line front end; the pieces live here so they
//! can be tested without running any training:
//!
//! | module | what it is |
//! |---|---|
//! | [`recipes`] | one table of tasks and of each optimizer's settings on them, with sources |
//! | [`plan`] | the list of runs a comparison or sweep needs, and running them, skipping the finished ones |
//! | [`runs`] | reading the metrics and diagnostics CSVs the training loop writes |
//! | [`summary`] | mean ± std over seeds, best epoch, time per epoch; the Markdown table |
//! | [`trajectory`] | optimizers' paths on Beale and Rosenbrock (`examples/trajectories.rs`) |
//! | [`report`] | `results.md` and the pictures of a comparison or a sweep |
//! | [`plots`] | SVG pictures: curves with seed bands, heat maps, sweeps on a log axis |
//!
//! Every file read here comes from outside the program: a bad one gives a
//! [`StudyError`] naming the file and line, never a panic.

pub mod plan;
pub mod plots;
pub mod recipes;
pub mod report;
pub mod runs;
pub mod summary;
pub mod trajectory;

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with a file the study reads or writes, or with a run it starts.
#[derive(Debug)]
pub struct StudyError {
    /// The file concerned (empty when none).
    pub path: PathBuf,
    /// The 1-based line of the file, when the problem is in one line.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl StudyError {
    /// An error about `path` (and `line`, if any).
    pub fn new(path: &Path, line: Option<usize>, message: impl Into<String>) -> StudyError {
        StudyError {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// An error about no file in particular.
    pub fn other(message: impl Into<String>) -> StudyError {
        StudyError {
            path: PathBuf::new(),
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for StudyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.path.as_os_str().is_empty(), self.line) {
            (true, _) => write!(f, "{}", self.message),
            (false, None) => write!(f, "{}: {}", self.path.display(), self.message),
            (false, Some(line)) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for StudyError {}
