//! The training loop every example shares.
//!
//! One epoch, as [`fit`] runs it:
//!
//! ```text
//! task.start_epoch(e)                                  reshuffle, reset state
//! for each step:
//!     tape = Tape::new()
//!     out  = task.train_step(&tape, step)              forward + loss
//!     check out.loss is finite                         else stop, naming epoch and step
//!     grads = out.loss.backward()
//!     clip_grad_norm(grads)                            if asked; a NaN/Inf norm stops
//!                                                      here, before anything changes
//!     schedule.apply(optimizer, global step)
//!     optimizer.step(&grads)                           stops at a NaN/Inf gradient
//!     add up loss, counts and the optimizer's diagnostics
//! model.eval(); metrics = task.evaluate(); model.train()
//! check the evaluation loss is finite
//! append the epoch's row to the metrics CSV            (first: see below)
//! save the checkpoint atomically                       (then)
//! print the epoch's line
//! ```
//!
//! Memory: before the first step, `fit` asks the C library's allocator to keep freed
//! memory for reuse ([`crate::tensor::memory::keep_freed_memory`]), so each step's large
//! buffers (logits, activations) land on pages that are already mapped instead of
//! costing a page fault per 4 KiB (9–15% of a PTB LSTM step without it). The process's
//! resident size stays at its peak.
//!
//! Crash consistency: the metrics row is written before the checkpoint, and a resumed
//! run cuts the metrics back to the checkpoint's epoch, so after a kill at any moment
//! the two agree. A resume also checks the run's settings against the checkpoint's
//! ([`RunSettings`]) and refuses a mismatch unless told to allow it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::autograd::Tape;
use crate::checkpoint::{
    check_writable_target, load_training, save_training, CheckpointError, CheckpointErrorKind,
};
use crate::nn::Module;
use crate::optim::{
    check_gradients, clip_grad_norm, LrSchedule, OptimError, Optimizer, MODE_FLIP_FRACTION,
};

use super::error::TrainError;
use super::metrics_log::{make_parent, MetricsLog};
use super::output::{print_line, warn};
use super::progress::EpochProgress;
use super::settings::RunSettings;
use super::task::{Better, Task};

/// Metadata key of the number of epochs a checkpoint has completed.
pub const EPOCH_KEY: &str = "epoch";

/// How [`fit`] runs: the length of the run and where its files go.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// What is trained, for the progress bar and the summary ("MNIST MLP").
    pub label: String,
    /// Total number of epochs (a resumed run continues up to it).
    pub epochs: usize,
    /// Clip the global gradient norm to this before each step.
    pub clip_grad_norm: Option<f32>,
    /// The per-epoch metrics CSV.
    pub metrics: PathBuf,
    /// A CSV of the optimizer's diagnostics per parameter (AGD's SGD-mode fraction per
    /// layer), in long form: `epoch,step,param,key,value`, each value the mean over the
    /// steps since the previous row.
    pub diagnostics: Option<PathBuf>,
    /// Write a diagnostics row every this many steps (0: once per epoch). Heat maps of
    /// layer × step want a few hundred rows per run.
    pub diagnostics_every: usize,
    /// Warn when a layer's mode-flip fraction (AGD's switching monitor) stays above a
    /// threshold for a window of steps.
    pub switch_warning: Option<SwitchWarning>,
    /// Write a checkpoint here after every epoch.
    pub save: Option<PathBuf>,
    /// Continue from this checkpoint.
    pub resume: Option<PathBuf>,
    /// Resume even when the settings differ from the checkpoint's.
    pub allow_changed_settings: bool,
    /// The settings that define the run, stored in checkpoints and checked on resume.
    pub settings: RunSettings,
}

/// When to warn about a layer whose coordinates keep switching between AGD's modes: its
/// [`MODE_FLIP_FRACTION`] above `threshold` for `window` steps in a row.
///
/// A high flip fraction means that, for many coordinates, sqrt(b_t) sits right at
/// δ·sqrt(1-β2^t): the step size of those coordinates jumps between lr (adaptive) and
/// lr/δ (SGD) from one step to the next, which makes training noisy. Raise δ to keep them
/// in SGD mode, lower it to keep them adaptive, or clip the update (`clip`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SwitchWarning {
    pub threshold: f64,
    pub window: usize,
}

impl TrainConfig {
    /// A run of `epochs` epochs writing its metrics to `metrics`, with no checkpoints,
    /// clipping or diagnostics; set the other fields as needed.
    pub fn new(
        label: impl Into<String>,
        epochs: usize,
        metrics: impl Into<PathBuf>,
    ) -> TrainConfig {
        TrainConfig {
            label: label.into(),
            epochs,
            clip_grad_norm: None,
            metrics: metrics.into(),
            diagnostics: None,
            diagnostics_every: 0,
            switch_warning: None,
            save: None,
            resume: None,
            allow_changed_settings: false,
            settings: RunSettings::default(),
        }
    }
}

/// One epoch's metrics, as written to the CSV.
#[derive(Clone, Debug)]
pub struct EpochRecord {
    pub epoch: usize,
    pub metrics: Vec<(String, f64)>,
}

impl EpochRecord {
    /// The value of `metric` in this epoch.
    pub fn get(&self, metric: &str) -> Option<f64> {
        lookup(&self.metrics, metric)
    }
}

/// The value named `name` in a list of metrics.
fn lookup(metrics: &[(String, f64)], name: &str) -> Option<f64> {
    metrics.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    /// The epochs run by this process (a resumed run starts after the checkpoint's).
    pub history: Vec<EpochRecord>,
    /// Metrics measured once after the last epoch ([`Task::final_evaluation`]).
    pub final_metrics: Vec<(String, f64)>,
    /// The best value of the primary metric among `history`, and its epoch.
    pub best: Option<(f64, usize)>,
    /// Seconds spent in training epochs (without evaluation).
    pub train_seconds: f64,
    /// The warnings printed during the run (parameters without gradients, layers that
    /// keep switching AGD mode).
    pub warnings: Vec<String>,
}

impl RunSummary {
    /// The last epoch's value of `metric`.
    pub fn last(&self, metric: &str) -> Option<f64> {
        self.history.last().and_then(|r| r.get(metric))
    }

    /// The value of `metric` among [`RunSummary::final_metrics`].
    pub fn final_metric(&self, metric: &str) -> Option<f64> {
        lookup(&self.final_metrics, metric)
    }
}

/// Train `model` with `optimizer` under `schedule` on `task`, as `config` says: see the
/// module documentation of `agdlab::train::fit`.
///
/// # Errors
/// Bad paths or settings, empty data, a NaN or infinite loss, gradient or evaluation
/// loss, a checkpoint that cannot be written or read (or was made with other settings),
/// a metrics file that cannot be written. Every message names the file, flag, epoch or
/// step concerned.
pub fn fit(
    model: &dyn Module,
    optimizer: &mut dyn Optimizer,
    schedule: &dyn LrSchedule,
    task: &mut dyn Task,
    config: &TrainConfig,
) -> Result<RunSummary, TrainError> {
    check_paths(config)?;
    crate::tensor::memory::keep_freed_memory();
    let steps = task.steps_per_epoch();
    if steps == 0 {
        return Err(TrainError::Data(
            "no training data: the training set is empty".into(),
        ));
    }
    let start_epoch = match &config.resume {
        Some(path) => resume_from(path, model, optimizer, config)?,
        None => 0,
    };
    let mut metrics = match config.resume {
        Some(_) => MetricsLog::resume(&config.metrics, start_epoch)?,
        None => MetricsLog::create(&config.metrics)?,
    };
    let mut diagnostics = match (&config.diagnostics, &config.resume) {
        (Some(path), Some(_)) => Some(MetricsLog::resume(path, start_epoch)?),
        (Some(path), None) => Some(MetricsLog::create(path)?),
        (None, _) => None,
    };

    let (primary, better) = task.primary_metric();
    let mut summary = RunSummary::default();
    let mut warned_missing = false;
    let mut switching = SwitchWatch::default();
    for epoch in start_epoch..config.epochs {
        let started = Instant::now();
        task.start_epoch(epoch);
        let progress = EpochProgress::new(format!("epoch {}/{}", epoch + 1, config.epochs), steps);
        let mut totals = EpochTotals::default();
        for step in 0..steps {
            let tape = Tape::new();
            let out = task.train_step(&tape, step);
            // A NaN or Inf at this step: stop, naming what, the epoch and the step.
            let non_finite = |what: String, value: f64| TrainError::NonFinite {
                what,
                epoch: epoch + 1,
                step: Some(step + 1),
                value,
                hint: "the learning rate (--lr) is probably too high for this model".into(),
            };
            let gradient_error = |e: OptimError, value: f64| match e {
                OptimError::NonFiniteGradient { param } => {
                    non_finite(format!("the gradient of {param}"), value)
                }
                other => TrainError::Optimizer(other),
            };
            let loss = out.loss.item() as f64;
            if !loss.is_finite() {
                return Err(non_finite("the training loss".into(), loss));
            }
            let mut grads = out.loss.backward();
            if !warned_missing {
                warned_missing = true;
                let params = optimizer.params();
                let missing = grads.missing(params.iter().map(|(n, p)| (n.as_str(), p)));
                if !missing.is_empty() {
                    let message =
                        format!("these parameters got no gradient in the first step: {missing:?}");
                    warn(format_args!("{message}"));
                    summary.warnings.push(message);
                }
            }
            if let Some(max_norm) = config.clip_grad_norm {
                let norm = clip_grad_norm(&mut grads, optimizer.params(), max_norm);
                if !norm.is_finite() {
                    // The norm has read every gradient already: stop before the step
                    // changes anything, naming the parameter (a second read, only here).
                    check_gradients(optimizer.params(), &grads)
                        .map_err(|e| gradient_error(e, norm as f64))?;
                }
            }
            schedule.apply(optimizer, epoch * steps + step);
            optimizer
                .step(&grads)
                .map_err(|e| gradient_error(e, f64::NAN))?;
            let report = optimizer.diagnostics();
            totals.add(loss, &out.sums, out.examples, &report);
            if let Some(warning) = &config.switch_warning {
                summary.warnings.extend(switching.observe(
                    &report,
                    warning,
                    epoch * steps + step + 1,
                ));
            }
            let interval_done =
                config.diagnostics_every > 0 && (step + 1) % config.diagnostics_every == 0;
            if let (Some(log), true) = (&mut diagnostics, interval_done || step + 1 == steps) {
                for (param, key, value) in totals.take_interval() {
                    log.row(&diagnostics_row(
                        epoch + 1,
                        epoch * steps + step + 1,
                        param,
                        key,
                        value,
                    ))?;
                }
            }
            progress.update(step + 1, || task.progress_status(totals.mean_loss()));
        }
        progress.finish();
        let train_seconds = started.elapsed().as_secs_f64();
        summary.train_seconds += train_seconds;

        model.eval();
        let evaluation = task.evaluate();
        model.train();
        check_evaluation(&evaluation, epoch)?;

        let mut row: Vec<(String, f64)> = vec![("epoch".into(), (epoch + 1) as f64)];
        row.extend(task.train_metrics(totals.mean_loss()));
        row.extend(totals.mean_sums());
        row.extend(evaluation);
        row.push(("lr".into(), optimizer.lr() as f64));
        row.extend(totals.mean_diagnostics());
        row.push(("epoch_seconds".into(), train_seconds));
        metrics.row(
            &row.iter()
                .map(|(k, v)| (k.clone(), format!("{v}")))
                .collect::<Vec<_>>(),
        )?;
        if let Some(path) = &config.save {
            let mut extra = config.settings.to_metadata();
            extra.insert(EPOCH_KEY.to_string(), (epoch + 1).to_string());
            save_training(path, model, &optimizer.state(), &extra)?;
        }

        print_line(format_args!(
            "epoch {:>2}/{}: {}",
            epoch + 1,
            config.epochs,
            describe(&row[1..])
        ));
        if let Some(value) = row.iter().find(|(n, _)| n == primary).map(|(_, v)| *v) {
            let improved = match (summary.best, better) {
                (None, _) => true,
                (Some((b, _)), Better::Higher) => value > b,
                (Some((b, _)), Better::Lower) => value < b,
            };
            if improved {
                summary.best = Some((value, epoch + 1));
            }
        }
        summary.history.push(EpochRecord {
            epoch: epoch + 1,
            metrics: row,
        });
    }

    model.eval();
    summary.final_metrics = task.final_evaluation();
    model.train();
    print_summary(&summary, primary, config);
    Ok(summary)
}

/// Sums over one epoch's steps.
#[derive(Default)]
struct EpochTotals {
    steps: usize,
    loss: f64,
    examples: usize,
    sums: Vec<(&'static str, f64)>,
    /// Per key: the sum over steps of the whole-model value.
    overall: Vec<(&'static str, f64)>,
    /// Per (parameter, key): the sum over the steps since the last diagnostics row and the
    /// number of steps it reported.
    per_param: BTreeMap<(usize, &'static str), (String, f64, usize)>,
}

/// One row of the diagnostics CSV.
fn diagnostics_row(
    epoch: usize,
    step: usize,
    param: String,
    key: &str,
    value: f64,
) -> Vec<(String, String)> {
    vec![
        ("epoch".into(), epoch.to_string()),
        ("step".into(), step.to_string()),
        ("param".into(), param),
        ("key".into(), key.to_string()),
        ("value".into(), format!("{value}")),
    ]
}

/// How long each parameter's mode-flip fraction has stayed above the warning threshold.
#[derive(Default)]
struct SwitchWatch {
    /// Per parameter name: steps in a row above the threshold.
    above: BTreeMap<String, usize>,
}

impl SwitchWatch {
    /// Count this step's flips; the warnings due, already printed.
    fn observe(
        &mut self,
        report: &crate::optim::Diagnostics,
        warning: &SwitchWarning,
        global_step: usize,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (name, flips) in report.per_param(MODE_FLIP_FRACTION) {
            let run = self.above.entry(name.to_string()).or_insert(0);
            *run = if flips > warning.threshold {
                *run + 1
            } else {
                0
            };
            if *run == warning.window {
                let message = format!(
                    "step {global_step}: over {:.1}% of the coordinates of {name} changed AGD mode at each of \
                     the last {} steps: their sqrt(b) sits at the threshold δ·sqrt(1-β2^t), so their step \
                     size keeps jumping between lr and lr/δ. Raise δ (more SGD mode), lower it (more \
                     adaptive), or clip the update.",
                    100.0 * warning.threshold,
                    warning.window
                );
                warn(format_args!("{message}"));
                out.push(message);
            }
        }
        out
    }
}

impl EpochTotals {
    fn add(
        &mut self,
        loss: f64,
        sums: &[(&'static str, f64)],
        examples: usize,
        diagnostics: &crate::optim::Diagnostics,
    ) {
        self.steps += 1;
        self.loss += loss * examples as f64;
        self.examples += examples;
        for &(name, value) in sums {
            match self.sums.iter_mut().find(|(n, _)| *n == name) {
                Some((_, total)) => *total += value,
                None => self.sums.push((name, value)),
            }
        }
        for key in diagnostics.keys() {
            let value = diagnostics.overall(key).unwrap_or(0.0);
            match self.overall.iter_mut().find(|(k, _)| *k == key) {
                Some((_, total)) => *total += value,
                None => self.overall.push((key, value)),
            }
        }
        for (index, report) in diagnostics.per_param.iter().enumerate() {
            for &(key, value) in &report.values {
                let entry = self
                    .per_param
                    .entry((index, key))
                    .or_insert_with(|| (report.name.clone(), 0.0, 0));
                entry.1 += value;
                entry.2 += 1;
            }
        }
    }

    fn mean_loss(&self) -> f64 {
        self.loss / self.examples.max(1) as f64
    }

    fn mean_sums(&self) -> Vec<(String, f64)> {
        self.sums
            .iter()
            .map(|(n, s)| (n.to_string(), s / self.examples.max(1) as f64))
            .collect()
    }

    /// Each diagnostic averaged over the epoch's steps.
    fn mean_diagnostics(&self) -> Vec<(String, f64)> {
        self.overall
            .iter()
            .map(|(k, s)| (k.to_string(), s / self.steps.max(1) as f64))
            .collect()
    }

    /// The per-parameter diagnostics averaged since the last call, and a fresh start.
    fn take_interval(&mut self) -> Vec<(String, &'static str, f64)> {
        std::mem::take(&mut self.per_param)
            .into_iter()
            .map(|((_, key), (name, sum, n))| (name, key, sum / n as f64))
            .collect()
    }
}

/// Refuse an evaluation whose loss (or perplexity) is not finite.
fn check_evaluation(evaluation: &[(String, f64)], epoch: usize) -> Result<(), TrainError> {
    for (name, value) in evaluation {
        if (name.ends_with("loss") || name.ends_with("ppl")) && !value.is_finite() {
            return Err(TrainError::NonFinite {
                what: format!("the evaluation's {name}"),
                epoch: epoch + 1,
                step: None,
                value: *value,
                hint: "the weights have diverged: the learning rate (--lr) is probably too high"
                    .into(),
            });
        }
    }
    Ok(())
}

/// Refuse paths that would collide, and a checkpoint target that cannot be written, before
/// any training happens.
fn check_paths(config: &TrainConfig) -> Result<(), TrainError> {
    let same = |a: &Path, b: &Path| absolute(a) == absolute(b);
    for (flag, path) in [("--save", &config.save), ("--resume", &config.resume)] {
        if let Some(path) = path {
            if same(path, &config.metrics) {
                return Err(TrainError::Settings(format!(
                    "--metrics {} is the same file as {flag}: the CSV would be appended to the checkpoint",
                    config.metrics.display()
                )));
            }
            if config.diagnostics.as_deref().is_some_and(|d| same(path, d)) {
                return Err(TrainError::Settings(format!(
                    "--diagnostics is the same file as {flag}"
                )));
            }
        }
    }
    if let Some(path) = &config.save {
        check_save_target(path)?;
    }
    make_parent(&config.metrics)?;
    Ok(())
}

/// The checkpoint target must be a regular file or not exist yet, in a directory that
/// exists (it is created here) and can be written; symbolic links are refused.
fn check_save_target(path: &Path) -> Result<(), TrainError> {
    make_parent(path)?;
    check_writable_target(path)?;
    Ok(())
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| std::path::absolute(path).unwrap_or(path.to_path_buf()))
}

/// Load the checkpoint into the model and optimizer, check it against the run, and
/// return the number of epochs it completed.
fn resume_from(
    path: &Path,
    model: &dyn Module,
    optimizer: &mut dyn Optimizer,
    config: &TrainConfig,
) -> Result<usize, TrainError> {
    let (state, extra) = load_training(path, model)?;
    let bad = |what: String| {
        TrainError::Checkpoint(CheckpointError::new(
            path,
            CheckpointErrorKind::BadMetadata {
                key: EPOCH_KEY.into(),
                problem: what,
            },
        ))
    };
    let epoch: usize = extra
        .get(EPOCH_KEY)
        .ok_or_else(|| bad("missing: not a checkpoint written by the training loop".into()))?
        .parse()
        .map_err(|_| bad(format!("{:?} is not a number of epochs", extra[EPOCH_KEY])))?;
    if epoch > config.epochs {
        return Err(bad(format!(
            "the checkpoint is after epoch {epoch}, but the run has {} epochs (--epochs)",
            config.epochs
        )));
    }
    config
        .settings
        .check_against(&extra, config.allow_changed_settings)?;
    optimizer.load_state(&state).map_err(|e| {
        TrainError::Checkpoint(CheckpointError::new(
            path,
            CheckpointErrorKind::InvalidInput(format!("optimizer state: {e}")),
        ))
    })?;
    print_line(format_args!(
        "resumed from {} after epoch {epoch}",
        path.display()
    ));
    Ok(epoch)
}

/// `name value` pairs for an epoch's line: fractions and accuracies as percentages.
pub fn describe(metrics: &[(String, f64)]) -> String {
    metrics
        .iter()
        .filter(|(name, _)| name != "lr")
        .map(|(name, value)| format!("{name} {}", show(name, *value)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether metric `name` is a share, shown as a percentage (accuracies, SGD-mode
/// fractions).
pub fn is_share(name: &str) -> bool {
    name.ends_with("acc") || name.ends_with("fraction")
}

/// One metric value as people read it.
pub fn show(name: &str, value: f64) -> String {
    if is_share(name) {
        format!("{:.2}%", 100.0 * value)
    } else if name.ends_with("seconds") {
        format!("{value:.1}s")
    } else {
        format!("{value:.4}")
    }
}

fn print_summary(summary: &RunSummary, primary: &str, config: &TrainConfig) {
    print_line(format_args!("---"));
    let mut line = config.label.clone();
    if let Some(last) = summary.last(primary) {
        line.push_str(&format!(": final {primary} {}", show(primary, last)));
    }
    if let Some((best, epoch)) = summary.best {
        line.push_str(&format!(", best {} at epoch {epoch}", show(primary, best)));
    }
    for (name, value) in &summary.final_metrics {
        line.push_str(&format!(", {name} {}", show(name, *value)));
    }
    line.push_str(&format!(" | training {:.1}s", summary.train_seconds));
    print_line(format_args!("{line}"));
    print_line(format_args!("metrics: {}", config.metrics.display()));
    if let Some(path) = &config.diagnostics {
        print_line(format_args!("diagnostics: {}", path.display()));
    }
    if let Some(path) = &config.save {
        print_line(format_args!("checkpoint: {}", path.display()));
    }
}
