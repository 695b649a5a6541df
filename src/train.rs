//! What every training example shares: choosing an optimizer by name, a progress line,
//! a metrics file, accuracy, and the check that stops training on a NaN.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::optim::{
    AdaBelief, AdaBeliefConfig, Adam, AdamConfig, Agd, AgdConfig, OptimError, Optimizer, ParamGroup, RAdam,
    RAdamConfig, Sgd, SgdConfig,
};
use crate::tensor::Tensor;

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
        OptimizerKind::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
            let names: Vec<&str> = OptimizerKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown optimizer `{s}` (choose one of: {})", names.join(", "))
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
}

impl OptimizerSettings {
    /// Build the optimizer over parameter groups (`vec![ParamGroup::new(params)]` for one).
    ///
    /// # Errors
    /// An [`OptimError`] naming the hyper-parameter that is out of range (`delta`, `lr`,
    /// `weight_decay`, `momentum`, ...).
    pub fn build(&self, groups: Vec<ParamGroup>) -> Result<Box<dyn Optimizer>, OptimError> {
        let lr = self.lr;
        let wd = |default: f32| self.weight_decay.unwrap_or(default);
        Ok(match self.kind {
            OptimizerKind::Sgd => {
                let d = SgdConfig::default();
                let config = SgdConfig { lr, weight_decay: wd(d.weight_decay), momentum: self.momentum, ..d };
                Box::new(Sgd::with_groups(groups, config)?)
            }
            OptimizerKind::Adam => {
                let d = AdamConfig::default();
                Box::new(Adam::with_groups(groups, AdamConfig { lr, weight_decay: wd(d.weight_decay), ..d })?)
            }
            OptimizerKind::AdamW => {
                let d = AdamConfig::adamw();
                Box::new(Adam::with_groups(groups, AdamConfig { lr, weight_decay: wd(d.weight_decay), ..d })?)
            }
            OptimizerKind::AdaBelief => {
                let d = AdaBeliefConfig::default();
                let config = AdaBeliefConfig { lr, weight_decay: wd(d.weight_decay), ..d };
                Box::new(AdaBelief::with_groups(groups, config)?)
            }
            OptimizerKind::RAdam => {
                let d = RAdamConfig::default();
                Box::new(RAdam::with_groups(
                    groups,
                    RAdamConfig { lr, weight_decay: wd(d.weight_decay), ..d },
                )?)
            }
            OptimizerKind::Agd => {
                let d = AgdConfig::default();
                let config = AgdConfig { lr, weight_decay: wd(d.weight_decay), delta: self.delta, ..d };
                Box::new(Agd::with_groups(groups, config)?)
            }
        })
    }
}

/// Number of rows whose arg-max over the last dim equals the label.
///
/// # Panics
/// When `logits` is not `[N, C]` with `N == labels.len()`.
pub fn count_correct(logits: &Tensor, labels: &[usize]) -> usize {
    assert!(
        logits.rank() == 2 && logits.shape()[0] == labels.len(),
        "count_correct: logits {:?} for {} labels",
        logits.shape(),
        labels.len()
    );
    logits.argmax_dim(1).iter().zip(labels).filter(|(p, y)| p == y).count()
}

/// A non-finite loss: training stops and says where, instead of propagating NaNs.
#[derive(Debug, Clone)]
pub struct NonFiniteLoss {
    pub epoch: usize,
    pub step: usize,
    pub value: f32,
}

impl fmt::Display for NonFiniteLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss became {} at epoch {} step {}: training stopped (try a lower learning rate)",
            self.value, self.epoch, self.step
        )
    }
}

impl std::error::Error for NonFiniteLoss {}

/// Return an error when `loss` is NaN or infinite.
pub fn check_loss(loss: f32, epoch: usize, step: usize) -> Result<f32, NonFiniteLoss> {
    if loss.is_finite() {
        Ok(loss)
    } else {
        Err(NonFiniteLoss { epoch, step, value: loss })
    }
}

/// A one-line progress display on stderr: redrawn in place on a terminal (at most ten
/// times a second), a line every quarter of the work otherwise (CI logs stay short).
pub struct Progress {
    label: String,
    total: usize,
    start: Instant,
    last_draw: Instant,
    interactive: bool,
    next_quarter: usize,
}

impl Progress {
    pub fn new(label: impl Into<String>, total: usize) -> Progress {
        let now = Instant::now();
        Progress {
            label: label.into(),
            total,
            start: now,
            last_draw: now - Duration::from_secs(1),
            interactive: io::stderr().is_terminal(),
            next_quarter: 1,
        }
    }

    /// Report that `done` of `total` units are finished, with a status text.
    pub fn update(&mut self, done: usize, status: impl FnOnce() -> String) {
        let quarter_reached = done * 4 >= self.next_quarter * self.total;
        let draw = if self.interactive {
            self.last_draw.elapsed() >= Duration::from_millis(100) || done == self.total
        } else {
            quarter_reached && done < self.total
        };
        if quarter_reached {
            self.next_quarter += 1;
        }
        if !draw {
            return;
        }
        self.last_draw = Instant::now();
        let secs = self.start.elapsed().as_secs_f64();
        let width = 24;
        let filled = (done * width).checked_div(self.total).unwrap_or(width);
        let bar: String = (0..width).map(|i| if i < filled { '#' } else { '.' }).collect();
        let line = format!("{} [{bar}] {done}/{} {:.1}s {}", self.label, self.total, secs, status());
        if self.interactive {
            eprint!("\r\x1b[2K{line}");
            if done == self.total {
                eprintln!();
            }
        } else {
            eprintln!("{line}");
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// A CSV file of per-epoch metrics, flushed after every row so a crash keeps them.
pub struct MetricsLog {
    path: PathBuf,
    out: BufWriter<File>,
    columns: usize,
}

impl MetricsLog {
    /// Create (or truncate) `path`, making its directory, and write the header.
    ///
    /// # Errors
    /// When the file cannot be created; the message names it.
    pub fn create(path: &Path, header: &[&str]) -> io::Result<MetricsLog> {
        MetricsLog::open(path, header, false)
    }

    /// Append to `path` if it already holds rows (a resumed run), else create it.
    ///
    /// # Errors
    /// When the file cannot be opened or created; the message names it.
    pub fn append_or_create(path: &Path, header: &[&str]) -> io::Result<MetricsLog> {
        MetricsLog::open(path, header, true)
    }

    fn open(path: &Path, header: &[&str], append: bool) -> io::Result<MetricsLog> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(named)?;
        }
        let has_rows = append && std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
        let file = if has_rows {
            std::fs::OpenOptions::new().append(true).open(path).map_err(named)?
        } else {
            File::create(path).map_err(named)?
        };
        let mut out = BufWriter::new(file);
        if !has_rows {
            writeln!(out, "{}", header.join(",")).map_err(named)?;
            out.flush().map_err(named)?;
        }
        Ok(MetricsLog { path: path.to_path_buf(), out, columns: header.len() })
    }

    /// Append one row.
    ///
    /// # Panics
    /// When the row has a different number of columns than the header.
    pub fn row(&mut self, values: &[String]) -> io::Result<()> {
        assert_eq!(
            values.len(),
            self.columns,
            "MetricsLog::row: {} values for {} columns",
            values.len(),
            self.columns
        );
        writeln!(self.out, "{}", values.join(","))?;
        self.out.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
