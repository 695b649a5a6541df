//! From runs to numbers: mean ± standard deviation over seeds of the final and best
//! value of the primary metric, the best epoch and the time per epoch, as a Markdown
//! table.

use super::runs::MetricsTable;
use crate::train::{is_share, show, Better};

/// One finished run: its label (the optimizer, or a sweep point), seed and metrics.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub label: String,
    pub seed: u64,
    pub table: MetricsTable,
}

/// The runs of one label, summarised over their seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub label: String,
    /// How many seeds.
    pub runs: usize,
    /// The last epoch's primary metric.
    pub final_value: MeanStd,
    /// Each run's best epoch value.
    pub best_value: MeanStd,
    /// The epoch at which the seed-mean curve is best (1-based).
    pub best_epoch: usize,
    /// Training seconds per epoch (the `epoch_seconds` column), over all runs and epochs.
    pub seconds_per_epoch: Option<MeanStd>,
}

/// A mean and a sample standard deviation (0 for one value).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

impl MeanStd {
    /// Of `values`; `None` when empty.
    pub fn of(values: &[f64]) -> Option<MeanStd> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Some(MeanStd { mean, std })
    }
}

/// Group `results` by label (in order of first appearance) and summarise the column
/// `primary` of each group. Runs without the column or without rows are left out.
pub fn aggregate(results: &[RunResult], primary: &str, better: Better) -> Vec<Aggregate> {
    let mut labels: Vec<&str> = Vec::new();
    for r in results {
        if !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    let pick = |values: &[f64]| -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        for (i, &v) in values.iter().enumerate() {
            let improves = match (best, better) {
                (None, _) => true,
                (Some((_, b)), Better::Higher) => v > b,
                (Some((_, b)), Better::Lower) => v < b,
            };
            if improves {
                best = Some((i, v));
            }
        }
        best
    };
    let mut out = Vec::new();
    for label in labels {
        let curves: Vec<Vec<f64>> = results
            .iter()
            .filter(|r| r.label == label)
            .filter_map(|r| r.table.column(primary))
            .filter(|c| !c.is_empty())
            .collect();
        if curves.is_empty() {
            continue;
        }
        let finals: Vec<f64> = curves.iter().map(|c| c[c.len() - 1]).collect();
        let bests: Vec<f64> = curves
            .iter()
            .filter_map(|c| pick(c))
            .map(|(_, v)| v)
            .collect();
        let mean_curve = mean_curve(&curves);
        let seconds: Vec<f64> = results
            .iter()
            .filter(|r| r.label == label)
            .filter_map(|r| r.table.column("epoch_seconds"))
            .flatten()
            .collect();
        out.push(Aggregate {
            label: label.to_string(),
            runs: curves.len(),
            final_value: MeanStd::of(&finals).expect("one curve at least"),
            best_value: MeanStd::of(&bests).expect("one curve at least"),
            best_epoch: pick(&mean_curve).map_or(0, |(i, _)| i + 1),
            seconds_per_epoch: MeanStd::of(&seconds),
        });
    }
    out
}

/// The epoch-wise mean of curves, as long as the shortest.
pub fn mean_curve(curves: &[Vec<f64>]) -> Vec<f64> {
    let len = curves.iter().map(Vec::len).min().unwrap_or(0);
    (0..len)
        .map(|i| curves.iter().map(|c| c[i]).sum::<f64>() / curves.len() as f64)
        .collect()
}

/// A value ± spread as people read it: accuracies as percentages, others with 4 digits.
pub fn show_mean_std(metric: &str, value: MeanStd) -> String {
    if is_share(metric) {
        format!("{:.2} ± {:.2} %", 100.0 * value.mean, 100.0 * value.std)
    } else {
        format!("{} ± {}", show(metric, value.mean), show(metric, value.std))
    }
}

/// [`show_mean_std`] over several seeds; a single seed's value alone (its spread is not
/// zero, it is unknown).
pub fn show_over_seeds(metric: &str, value: MeanStd, seeds: usize) -> String {
    if seeds > 1 {
        show_mean_std(metric, value)
    } else if is_share(metric) {
        format!("{:.2} %", 100.0 * value.mean)
    } else {
        show(metric, value.mean)
    }
}

/// The Markdown table of `aggregates`: one row per label.
pub fn markdown_table(aggregates: &[Aggregate], primary: &str, better: Better) -> String {
    let direction = match better {
        Better::Higher => "higher is better",
        Better::Lower => "lower is better",
    };
    let mut out = format!(
        "| run | seeds | final {primary} | best {primary} | best epoch | s / epoch |\n\
         |---|---:|---:|---:|---:|---:|\n"
    );
    for a in aggregates {
        let seconds = a
            .seconds_per_epoch
            .map_or("-".to_string(), |s| format!("{:.1} ± {:.1}", s.mean, s.std));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            a.label,
            a.runs,
            show_over_seeds(primary, a.final_value, a.runs),
            show_over_seeds(primary, a.best_value, a.runs),
            a.best_epoch,
            seconds
        ));
    }
    out.push_str(&format!(
        "\n{primary}: {direction}; mean ± sample standard deviation over seeds (one seed: its value); best epoch of the \
         seed-mean curve; s / epoch is training time without evaluation (noisy on a shared machine).\n"
    ));
    out
}
