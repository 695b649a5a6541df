//! The runs a comparison or a sweep needs, and running them one after the other.
//!
//! A run is described by a [`RunSpec`]: the example's command-line flags and the files
//! it writes. [`run_all`] hands each unfinished run to a runner (in `compare`, a
//! subprocess of the example's binary; in tests, a closure) and skips every run whose
//! metrics CSV already holds all its epochs, so a comparison stopped at any moment
//! continues where it was when started again. A half-finished run is resumed from its
//! checkpoint (`--save`/`--resume`) when there is one, else started again.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::recipes::{Recipe, TaskSpec};
use super::runs::MetricsTable;

/// One training run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    /// What the run stands for in tables and legends: `agd`, or `agd δ=1e-8` in a sweep.
    pub label: String,
    pub optimizer: String,
    pub seed: u64,
    pub epochs: usize,
    /// The swept value (δ, lr, k) of a sweep run, by name.
    pub swept: Vec<(String, f64)>,
    /// The example's flags, without the files below (those are added by [`RunSpec::command_line`]).
    pub flags: Vec<String>,
    /// The metrics CSV the run writes.
    pub metrics: PathBuf,
    /// The diagnostics CSV, when the example has one and the optimizer reports any.
    pub diagnostics: Option<PathBuf>,
    /// The checkpoint written after each epoch, for resuming a half-finished run.
    pub checkpoint: PathBuf,
}

impl RunSpec {
    /// Whether the metrics CSV holds all `epochs` epochs (a finished run).
    pub fn is_finished(&self) -> bool {
        MetricsTable::read(&self.metrics).is_ok_and(|table| table.has_epochs(self.epochs))
    }

    /// The full command line for the example: the flags, the files, and `--resume` when
    /// `resume` is true.
    pub fn command_line(&self, resume: bool) -> Vec<String> {
        let mut args = self.flags.clone();
        let path = |p: &Path| p.display().to_string();
        args.extend([
            "--metrics".into(),
            path(&self.metrics),
            "--save".into(),
            path(&self.checkpoint),
        ]);
        if let Some(d) = &self.diagnostics {
            args.extend(["--diagnostics".into(), path(d)]);
        }
        if resume {
            args.extend(["--resume".into(), path(&self.checkpoint)]);
        }
        args
    }
}

/// The run of `recipe` on `task` with `seed`, writing its files under `dir`, named after
/// `label` (`agd`, `agd_delta1e-8`). `quick` picks the task's quick budget.
pub fn run_spec(
    task: &TaskSpec,
    recipe: &Recipe,
    label: &str,
    seed: u64,
    quick: bool,
    dir: &Path,
) -> RunSpec {
    let budget = if quick { task.quick } else { task.full };
    let mut flags: Vec<String> = task.flags.iter().map(|s| s.to_string()).collect();
    flags.extend(budget.flags.iter().map(|s| s.to_string()));
    flags.extend([
        "--optimizer".into(),
        recipe.optimizer.into(),
        "--lr".into(),
        format!("{:e}", recipe.lr),
    ]);
    flags.extend(recipe.flags.iter().map(|s| s.to_string()));
    flags.extend([
        "--seed".into(),
        seed.to_string(),
        "--epochs".into(),
        budget.epochs.to_string(),
    ]);
    let agd = recipe.optimizer == "agd";
    if task.diagnostics && agd && budget.diagnostics_every > 0 {
        flags.extend([
            "--diagnostics-every".into(),
            budget.diagnostics_every.to_string(),
        ]);
    }
    let file = file_stem(label);
    RunSpec {
        label: label.to_string(),
        optimizer: recipe.optimizer.to_string(),
        seed,
        epochs: budget.epochs,
        swept: Vec::new(),
        flags,
        metrics: dir.join(format!("{file}_seed{seed}.csv")),
        diagnostics: (task.diagnostics && agd)
            .then(|| dir.join(format!("{file}_seed{seed}_diagnostics.csv"))),
        checkpoint: dir
            .join("checkpoints")
            .join(format!("{file}_seed{seed}.safetensors")),
    }
}

/// Set `flag` to `value` in `flags`, replacing an earlier value (clap refuses a flag
/// given twice).
pub fn set_flag(flags: &mut Vec<String>, flag: &str, value: String) {
    match flags.iter().position(|f| f == flag) {
        Some(i) if i + 1 < flags.len() => flags[i + 1] = value,
        _ => flags.extend([flag.to_string(), value]),
    }
}

/// A label as a file name: letters, digits, `-`, `.` and `_` kept, others become `_`.
pub fn file_stem(label: &str) -> String {
    label
        .replace('δ', "delta")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What happened to one run.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Its metrics CSV already had every epoch.
    Skipped,
    /// Run (or resumed) to the end, in this many seconds.
    Ran { seconds: f64, resumed: bool },
    /// The runner failed with this message (the other runs still go on).
    Failed(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Skipped => write!(f, "finished before, skipped"),
            Outcome::Ran {
                seconds,
                resumed: false,
            } => write!(f, "done in {seconds:.1}s"),
            Outcome::Ran {
                seconds,
                resumed: true,
            } => write!(f, "resumed, done in {seconds:.1}s"),
            Outcome::Failed(why) => write!(f, "FAILED: {why}"),
        }
    }
}

/// Run every unfinished run of `specs` in order with `runner(spec, resume)`, where
/// `resume` says that a checkpoint of a half-finished run exists. A run the runner
/// reports as done but whose metrics do not hold all its epochs counts as failed.
/// `report(index, spec, outcome)` is called after each run (for progress lines).
pub fn run_all(
    specs: &[RunSpec],
    mut runner: impl FnMut(&RunSpec, bool) -> Result<(), String>,
    mut report: impl FnMut(usize, &RunSpec, &Outcome),
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        let outcome = if spec.is_finished() {
            Outcome::Skipped
        } else {
            let resume = spec.checkpoint.is_file() && spec.metrics.is_file();
            let started = Instant::now();
            match runner(spec, resume) {
                Ok(()) if spec.is_finished() => {
                    // The checkpoint only served resuming; the metrics are the result.
                    let _ = std::fs::remove_file(&spec.checkpoint);
                    Outcome::Ran {
                        seconds: started.elapsed().as_secs_f64(),
                        resumed: resume,
                    }
                }
                Ok(()) => Outcome::Failed(format!(
                    "{} does not hold all {} epochs after the run",
                    spec.metrics.display(),
                    spec.epochs
                )),
                Err(why) => Outcome::Failed(why),
            }
        };
        report(index, spec, &outcome);
        outcomes.push(outcome);
    }
    outcomes
}

/// Copy a report (`files`: `results.md` and its pictures) into `target`, and every
/// finished run's metrics and diagnostics CSVs into `target/runs/`, so that the
/// published table comes with the runs it was made from and a later machine can resume
/// the comparison from them (copy them back into the output directory). Runs that are
/// not finished (see [`RunSpec::is_finished`]) are left out. Returns how many runs were
/// copied.
pub fn publish(files: &[PathBuf], specs: &[RunSpec], target: &Path) -> Result<usize, String> {
    let runs = target.join("runs");
    std::fs::create_dir_all(&runs).map_err(|e| format!("creating {}: {e}", runs.display()))?;
    let copy_into = |file: &Path, dir: &Path| {
        let name = file
            .file_name()
            .ok_or_else(|| format!("{} names no file", file.display()))?;
        std::fs::copy(file, dir.join(name))
            .map(|_| ())
            .map_err(|e| format!("copying {} into {}: {e}", file.display(), dir.display()))
    };
    for file in files {
        copy_into(file, target)?;
    }
    let finished: Vec<&RunSpec> = specs.iter().filter(|s| s.is_finished()).collect();
    for spec in &finished {
        copy_into(&spec.metrics, &runs)?;
        if let Some(diagnostics) = spec.diagnostics.as_deref().filter(|d| d.is_file()) {
            copy_into(diagnostics, &runs)?;
        }
    }
    Ok(finished.len())
}

/// A sweep of AGD's settings on one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// δ from 1e-16 to 1e-1: the final metric and the SGD-mode fraction against δ.
    Delta,
    /// A grid of learning rates (around the recipe's) × δ: the final metric.
    LrDelta,
    /// `--difference-every` k: time per epoch and final metric against k.
    K,
}

impl Sweep {
    /// The directory name of the sweep's runs and pictures.
    pub fn name(self) -> &'static str {
        match self {
            Sweep::Delta => "sweep-delta",
            Sweep::LrDelta => "sweep-lr-delta",
            Sweep::K => "sweep-k",
        }
    }
}

/// The δ values of the δ sweep (the whole range of the paper's Figure on δ and beyond).
pub const DELTAS: &[f64] = &[
    1e-16, 1e-14, 1e-12, 1e-10, 1e-8, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1,
];
/// The δ values of the δ sweep with `--quick`.
pub const QUICK_DELTAS: &[f64] = &[1e-16, 1e-12, 1e-8, 1e-5, 1e-3, 1e-1];
/// The learning rates of the lr × δ grid, as factors of the recipe's.
pub const LR_FACTORS: &[f64] = &[0.1, 0.3, 1.0, 3.0, 10.0];
/// The δ values of the lr × δ grid.
pub const GRID_DELTAS: &[f64] = &[1e-12, 1e-8, 1e-5, 1e-3, 1e-1];
/// The learning-rate factors and δ values of the grid with `--quick`.
pub const QUICK_LR_FACTORS: &[f64] = &[0.3, 1.0, 3.0];
pub const QUICK_GRID_DELTAS: &[f64] = &[1e-12, 1e-5, 1e-3, 1e-1];
/// The k values of the `--difference-every` sweep.
pub const KS: &[u32] = &[1, 2, 4, 8, 16, 32];
pub const QUICK_KS: &[u32] = &[1, 4, 16];

/// One point of a sweep: its label, the swept values by name, and the flags that set
/// them (`("--delta", "1e-8")`).
struct SweepPoint {
    label: String,
    swept: Vec<(String, f64)>,
    flags: Vec<(&'static str, String)>,
}

/// The runs of `sweep` for AGD's `recipe` on `task`, `seeds` seeds each, under `dir`.
pub fn sweep_specs(
    task: &TaskSpec,
    recipe: &Recipe,
    sweep: Sweep,
    seeds: u64,
    quick: bool,
    dir: &Path,
) -> Vec<RunSpec> {
    let dir = dir.join(sweep.name());
    let mut points: Vec<SweepPoint> = Vec::new();
    match sweep {
        Sweep::Delta => {
            for &delta in if quick { QUICK_DELTAS } else { DELTAS } {
                points.push(SweepPoint {
                    label: format!("δ={delta:e}"),
                    swept: vec![("delta".into(), delta)],
                    flags: vec![("--delta", format!("{delta:e}"))],
                });
            }
        }
        Sweep::LrDelta => {
            for &factor in if quick { QUICK_LR_FACTORS } else { LR_FACTORS } {
                let lr = recipe.lr as f64 * factor;
                for &delta in if quick {
                    QUICK_GRID_DELTAS
                } else {
                    GRID_DELTAS
                } {
                    points.push(SweepPoint {
                        label: format!("lr={lr:.1e} δ={delta:e}"),
                        swept: vec![("lr".into(), lr), ("delta".into(), delta)],
                        flags: vec![
                            ("--lr", format!("{lr:e}")),
                            ("--delta", format!("{delta:e}")),
                        ],
                    });
                }
            }
        }
        Sweep::K => {
            for &k in if quick { QUICK_KS } else { KS } {
                points.push(SweepPoint {
                    label: format!("k={k}"),
                    swept: vec![("k".into(), k as f64)],
                    flags: vec![("--difference-every", k.to_string())],
                });
            }
        }
    }
    let mut specs = Vec::new();
    for point in points {
        for seed in 0..seeds {
            let mut spec = run_spec(task, recipe, &point.label, seed, quick, &dir);
            for (flag, value) in &point.flags {
                set_flag(&mut spec.flags, flag, value.clone());
            }
            spec.swept = point.swept.clone();
            specs.push(spec);
        }
    }
    specs
}
