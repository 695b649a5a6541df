//! The flags every training example shares, parsed by clap.
//!
//! An example flattens [`CommonArgs`] into its own `clap::Parser` struct and adds what is
//! its own (the model size, the data directory); [`parse_with_defaults`] sets the
//! defaults that differ between examples (epochs, batch size, δ) so `--help` shows them.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches};

use super::fit::{SwitchWarning, TrainConfig};
use super::optimizer_choice::{OptimizerKind, OptimizerSettings};
use super::settings::RunSettings;

/// Flags shared by the training examples.
#[derive(Args, Clone, Debug)]
pub struct CommonArgs {
    /// agd, sgd, adam, adamw, adabelief or radam.
    #[arg(long, default_value = "agd")]
    pub optimizer: OptimizerKind,
    /// Peak learning rate [default: tuned per optimizer; see the example's documentation].
    #[arg(long)]
    pub lr: Option<f32>,
    /// AGD's switching threshold δ (> 0).
    #[arg(long, default_value_t = 1e-5)]
    pub delta: f32,
    /// Weight decay [default: the optimizer's own: 0, or 1e-2 for adamw].
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// SGD's momentum, in [0, 1].
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Number of epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Examples (or sequences) per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Seed of the initialisation and of the data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads for matmul and large element-wise ops [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write a checkpoint here after every epoch (atomically; a symbolic link is refused).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Continue from a checkpoint written by --save.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Resume even when --lr, --seed, --batch-size, ... differ from the checkpoint's.
    #[arg(long)]
    pub allow_changed_settings: bool,
    /// Per-epoch metrics CSV (default: runs/EXAMPLE_OPTIMIZER.csv).
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// With a diagnostics CSV (the example's `--diagnostics`): a row every N steps (0: once per epoch).
    #[arg(long, default_value_t = 0)]
    pub diagnostics_every: usize,
    /// AGD: form the stepwise difference every K steps (1: the paper's AGD).
    #[arg(long, default_value_t = 1)]
    pub difference_every: u32,
    /// AGD: watch mode switching, and warn when more than this fraction (0-1) of a
    /// layer's coordinates changes mode at each of --warn-switching-window steps in a row.
    #[arg(long, value_name = "FRACTION")]
    pub warn_switching: Option<f64>,
    /// Steps in a row for --warn-switching.
    #[arg(long, default_value_t = 20, value_name = "STEPS")]
    pub warn_switching_window: usize,
}

impl CommonArgs {
    /// Check the numbers clap cannot: positive counts and rates.
    ///
    /// # Errors
    /// A message naming the flag.
    pub fn validate(&self) -> Result<(), super::TrainError> {
        let bad = |m: String| Err(super::TrainError::Settings(m));
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        if self.epochs > 1_000_000 {
            return bad(format!("--epochs {}: at most 1000000", self.epochs));
        }
        if let Some(lr) = self.lr {
            if !(lr.is_finite() && lr > 0.0) {
                return bad(format!("--lr {lr}: must be a positive number"));
            }
        }
        if let Some(fraction) = self.warn_switching {
            if !(0.0..=1.0).contains(&fraction) {
                return bad(format!(
                    "--warn-switching {fraction}: a fraction of coordinates, in [0, 1]"
                ));
            }
            if self.warn_switching_window == 0 {
                return bad("--warn-switching-window must be at least 1".into());
            }
        }
        Ok(())
    }

    /// The optimizer these flags ask for; `default_lr` gives the example's tuned learning
    /// rate of each optimizer when `--lr` is not given.
    pub fn optimizer_settings(
        &self,
        default_lr: impl Fn(OptimizerKind) -> f32,
    ) -> OptimizerSettings {
        OptimizerSettings {
            kind: self.optimizer,
            lr: self.lr.unwrap_or_else(|| default_lr(self.optimizer)),
            delta: self.delta,
            weight_decay: self.weight_decay,
            momentum: self.momentum,
            difference_every: self.difference_every,
            monitor_switching: self.warn_switching.is_some(),
        }
    }

    /// The shared flags that define a run (see [`RunSettings`]), with the learning rate
    /// actually used; an example adds its own with [`RunSettings::with`].
    pub fn run_settings(&self, optimizer: &OptimizerSettings) -> RunSettings {
        RunSettings::default()
            .with("optimizer", optimizer.kind)
            .with("lr", optimizer.lr)
            .with("delta", optimizer.delta)
            .with("weight-decay", format!("{:?}", optimizer.weight_decay))
            .with("momentum", optimizer.momentum)
            .with("epochs", self.epochs)
            .with("batch-size", self.batch_size)
            .with("seed", self.seed)
            // Only when not the paper's AGD, so checkpoints made before the flag still resume.
            .with_if(
                optimizer.difference_every != 1,
                "difference-every",
                optimizer.difference_every,
            )
    }

    /// The training loop's configuration from these flags: metrics to `--metrics` or
    /// `runs/<name>_<optimizer>.csv`, checkpoints to `--save`, resume from `--resume`,
    /// diagnostics rows every `--diagnostics-every` steps (once the example sets
    /// [`TrainConfig::diagnostics`]), switching warnings from `--warn-switching`.
    pub fn train_config(&self, label: String, name: &str, settings: RunSettings) -> TrainConfig {
        let metrics = self
            .metrics
            .clone()
            .unwrap_or_else(|| format!("runs/{name}_{}.csv", self.optimizer).into());
        let switch_warning = self.warn_switching.map(|threshold| SwitchWarning {
            threshold,
            window: self.warn_switching_window,
        });
        TrainConfig {
            diagnostics_every: self.diagnostics_every,
            switch_warning,
            save: self.save.clone(),
            resume: self.resume.clone(),
            allow_changed_settings: self.allow_changed_settings,
            settings,
            ..TrainConfig::new(label, self.epochs, metrics)
        }
    }
}

/// Parse the command line into `T`, first replacing the defaults of the named flags
/// (`("epochs", "5")`, ...): the shared flags keep one definition, each example its
/// own defaults, and `--help` shows the example's.
pub fn parse_with_defaults<T: CommandFactory + FromArgMatches>(
    defaults: &[(&'static str, &'static str)],
) -> T {
    let mut command = T::command();
    for &(flag, value) in defaults {
        command = command.mut_arg(flag, |arg| arg.default_value(value));
    }
    let matches = command.get_matches();
    T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
