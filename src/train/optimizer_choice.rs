//! Choosing an optimizer by name, with the hyper-parameters an example exposes as flags.

use std::fmt;
use std::str::FromStr;

use super::error::TrainError;
use crate::optim::{
    AdaBelief, AdaBeliefConfig, Adam, AdamConfig, Agd, AgdConfig, OptimError, Optimizer,
    ParamGroup, RAdam, RAdamConfig, Sgd, SgdConfig,
};

/// The optimizers an example can be asked for by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    Sgd,
    Adam,
    AdamW,
    AdaBelief,
    RAdam,
    Agd,
}

impl OptimizerKind {
    pub const ALL: [OptimizerKind; 6] = [
        OptimizerKind::Agd,
        OptimizerKind::Sgd,
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
        OptimizerKind::AdaBelief,
        OptimizerKind::RAdam,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
            OptimizerKind::AdaBelief => "adabelief",
            OptimizerKind::RAdam => "radam",
            OptimizerKind::Agd => "agd",
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OptimizerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        OptimizerKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = OptimizerKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown optimizer `{s}` (choose one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// The hyper-parameters an example exposes as flags; everything else keeps each
/// optimizer's reference default.
#[derive(Clone, Debug)]
pub struct OptimizerSettings {
    pub kind: OptimizerKind,
    pub lr: f32,
    /// AGD's δ (ignored by the others).
    pub delta: f32,
    /// `None` keeps each optimizer's default (0, or 1e-2 for AdamW as in PyTorch).
    pub weight_decay: Option<f32>,
    /// SGD's momentum (ignored by the others).
    pub momentum: f32,
    /// AGD's `difference_every` (1: the paper's AGD; ignored by the others).
    pub difference_every: u32,
    /// AGD's switching monitor: report the fraction of coordinates that changed mode at
    /// each step (ignored by the others).
    pub monitor_switching: bool,
}

impl OptimizerSettings {
    /// Build the optimizer over parameter groups (`vec![ParamGroup::new(params)]` for one).
    ///
    /// # Errors
    /// A [`TrainError::Settings`] naming the flag whose value is out of range (`--delta 0`,
    /// `--momentum 2`, `--weight-decay -1`, ...).
    pub fn build(&self, groups: Vec<ParamGroup>) -> Result<Box<dyn Optimizer>, TrainError> {
        self.build_optimizer(groups).map_err(|e| match e {
            OptimError::InvalidHyperparameter {
                optimizer,
                name,
                value,
                expected,
            } => TrainError::Settings(format!(
                "--{} {value}: {optimizer} needs {expected}",
                name.replace('_', "-")
            )),
            other => TrainError::Optimizer(other),
        })
    }

    fn build_optimizer(&self, groups: Vec<ParamGroup>) -> Result<Box<dyn Optimizer>, OptimError> {
        let lr = self.lr;
        let wd = |default: f32| self.weight_decay.unwrap_or(default);
        Ok(match self.kind {
            OptimizerKind::Sgd => {
                let d = SgdConfig::default();
                let config = SgdConfig {
                    lr,
                    weight_decay: wd(d.weight_decay),
                    momentum: self.momentum,
                    ..d
                };
                Box::new(Sgd::with_groups(groups, config)?)
            }
            OptimizerKind::Adam => {
                let d = AdamConfig::default();
                Box::new(Adam::with_groups(
                    groups,
                    AdamConfig {
                        lr,
                        weight_decay: wd(d.weight_decay),
                        ..d
                    },
                )?)
            }
            OptimizerKind::AdamW => {
                let d = AdamConfig::adamw();
                Box::new(Adam::with_groups(
                    groups,
                    AdamConfig {
                        lr,
                        weight_decay: wd(d.weight_decay),
                        ..d
                    },
                )?)
            }
            OptimizerKind::AdaBelief => {
                let d = AdaBeliefConfig::default();
                let config = AdaBeliefConfig {
                    lr,
                    weight_decay: wd(d.weight_decay),
                    ..d
                };
                Box::new(AdaBelief::with_groups(groups, config)?)
            }
            OptimizerKind::RAdam => {
                let d = RAdamConfig::default();
                Box::new(RAdam::with_groups(
                    groups,
                    RAdamConfig {
                        lr,
                        weight_decay: wd(d.weight_decay),
                        ..d
                    },
                )?)
            }
            OptimizerKind::Agd => {
                let d = AgdConfig::default();
                let config = AgdConfig {
                    lr,
                    weight_decay: wd(d.weight_decay),
                    delta: self.delta,
                    difference_every: self.difference_every,
                    monitor_switching: self.monitor_switching,
                    ..d
                };
                Box::new(Agd::with_groups(groups, config)?)
            }
        })
    }
}
