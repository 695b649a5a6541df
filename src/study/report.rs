//! From finished runs to `results.md` and the SVG pictures of a comparison or a sweep.

use std::fs;
use std::path::{Path, PathBuf};

use super::plan::{RunSpec, Sweep};
use super::plots::{curves_svg, heatmap_svg, sweep_svg, Band, HeatMap, Panel, SweepLine};
use super::recipes::TaskSpec;
use super::runs::{read_diagnostics, DiagnosticRow, MetricsTable};
use super::summary::{aggregate, markdown_table, mean_curve, Aggregate, RunResult};
use super::StudyError;
use crate::optim::SGD_MODE_FRACTION;

/// The metrics of the finished runs among `specs` (unfinished ones are left out).
///
/// # Errors
/// A [`StudyError`] naming the file and line of a metrics CSV that cannot be parsed.
pub fn load_results(specs: &[RunSpec]) -> Result<Vec<RunResult>, StudyError> {
    let mut results = Vec::new();
    for spec in specs.iter().filter(|s| s.is_finished()) {
        let table = MetricsTable::read(&spec.metrics)?;
        results.push(RunResult {
            label: spec.label.clone(),
            seed: spec.seed,
            table,
        });
    }
    Ok(results)
}

/// What a report wrote.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The Markdown text (also in `results.md`).
    pub markdown: String,
    /// The files written, `results.md` first.
    pub files: Vec<PathBuf>,
}

/// One picture per label's curves of `column`: mean over seeds with the seed band.
fn bands(results: &[RunResult], labels: &[String], column: &str) -> Vec<Band> {
    labels
        .iter()
        .filter_map(|label| {
            let curves: Vec<Vec<f64>> = results
                .iter()
                .filter(|r| &r.label == label)
                .filter_map(|r| r.table.column(column))
                .filter(|c| !c.is_empty())
                .collect();
            (!curves.is_empty()).then(|| Band::from_curves(label.clone(), &curves))
        })
        .collect()
}

fn labels_in_order(specs: &[RunSpec]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for s in specs {
        if !labels.contains(&s.label) {
            labels.push(s.label.clone());
        }
    }
    labels
}

/// The comparison of optimizers on `task`: `results.md` (the table), `train_loss.svg`,
/// `<primary>.svg`, and for AGD `sgd_mode.svg` (SGD-mode fraction per epoch) and
/// `sgd_mode_layers.svg` (per layer × step, first seed), all in `dir`.
///
/// # Errors
/// A [`StudyError`] naming the file that cannot be read or written.
pub fn comparison_report(
    task: &TaskSpec,
    specs: &[RunSpec],
    dir: &Path,
    header: &str,
) -> Result<Report, StudyError> {
    ensure_dir(dir)?;
    let results = load_results(specs)?;
    let labels = labels_in_order(specs);
    let aggregates = aggregate(&results, task.primary, task.better);
    let mut report = Report {
        markdown: format!(
            "{header}\n\n{}",
            markdown_table(&aggregates, task.primary, task.better)
        ),
        files: Vec::new(),
    };
    let results_md = dir.join("results.md");
    report.files.push(results_md.clone());

    let mut pictures = vec![
        (
            "train_loss",
            format!("{}: training loss", task.name),
            "training loss".to_string(),
        ),
        (
            task.primary,
            format!("{}: {}", task.name, task.primary),
            task.primary.to_string(),
        ),
    ];
    if results
        .iter()
        .any(|r| r.table.column(SGD_MODE_FRACTION).is_some())
    {
        pictures.push((
            SGD_MODE_FRACTION,
            format!("{}: share of AGD's coordinates in SGD mode", task.name),
            "SGD-mode fraction".into(),
        ));
    }
    for (column, title, y_label) in pictures {
        let bands = bands(&results, &labels, column);
        if bands.is_empty() {
            continue;
        }
        let path = dir.join(format!("{column}.svg"));
        curves_svg(&path, &title, "epoch", &y_label, &bands)?;
        report.files.push(path);
    }
    if let Some(spec) = specs
        .iter()
        .find(|s| s.diagnostics.as_ref().is_some_and(|d| d.is_file()) && s.is_finished())
    {
        let diagnostics = spec.diagnostics.as_ref().expect("checked above");
        let rows = read_diagnostics(diagnostics)?;
        if let Some(map) = layer_step_map(&rows, SGD_MODE_FRACTION) {
            let path = dir.join("sgd_mode_layers.svg");
            let map = HeatMap {
                title: format!(
                    "{}: AGD's SGD-mode fraction per layer ({}, seed {})",
                    task.name, spec.label, spec.seed
                ),
                x_label: "step".into(),
                ..map
            };
            heatmap_svg(&path, &map)?;
            report.files.push(path);
        }
    }
    report.markdown.push_str(&pictures_list(&report.files, dir));
    write_markdown(&results_md, &report.markdown)?;
    Ok(report)
}

/// The heat map of `key` per parameter (rows, in order of first appearance) × step
/// (columns) from diagnostics rows; `None` when no row has `key`.
pub fn layer_step_map(rows: &[DiagnosticRow], key: &str) -> Option<HeatMap> {
    let rows: Vec<&DiagnosticRow> = rows.iter().filter(|r| r.key == key).collect();
    if rows.is_empty() {
        return None;
    }
    let mut params: Vec<&str> = Vec::new();
    let mut steps: Vec<usize> = Vec::new();
    for r in &rows {
        if !params.contains(&r.param.as_str()) {
            params.push(&r.param);
        }
        if !steps.contains(&r.step) {
            steps.push(r.step);
        }
    }
    steps.sort_unstable();
    let mut values = vec![vec![f64::NAN; steps.len()]; params.len()];
    for r in &rows {
        let p = params
            .iter()
            .position(|&p| p == r.param)
            .expect("collected above");
        let s = steps.binary_search(&r.step).expect("collected above");
        values[p][s] = r.value;
    }
    let largest = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    Some(HeatMap {
        title: key.to_string(),
        x_label: "step".into(),
        y_label: "parameter".into(),
        columns: steps.iter().map(|s| s.to_string()).collect(),
        rows: params.iter().map(|p| p.to_string()).collect(),
        values,
        // From 0 to the largest value: a fraction of a few percent would be all one colour
        // on a 0..1 scale.
        range: (0.0, largest),
        annotate: false,
    })
}

/// The value of `name` a sweep run was made with.
fn swept(result_label: &str, specs: &[RunSpec], name: &str) -> Option<f64> {
    let spec = specs.iter().find(|s| s.label == result_label)?;
    spec.swept.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

/// The mean over epochs of a column, averaged over a label's seeds.
fn run_mean(results: &[RunResult], label: &str, column: &str) -> Option<f64> {
    let means: Vec<f64> = results
        .iter()
        .filter(|r| r.label == label)
        .filter_map(|r| r.table.column(column))
        .filter(|c| !c.is_empty())
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect();
    (!means.is_empty()).then(|| means.iter().sum::<f64>() / means.len() as f64)
}

/// A sweep's report in `dir`: `results.md` and `sweep_delta.svg` (final metric and
/// SGD-mode fraction against δ, log axis), `lr_delta.svg` (heat map of the final metric
/// over lr × δ) or `sweep_k.svg` (time per epoch and final metric against k).
///
/// # Errors
/// A [`StudyError`] naming the file that cannot be read or written.
pub fn sweep_report(
    task: &TaskSpec,
    sweep: Sweep,
    specs: &[RunSpec],
    dir: &Path,
    header: &str,
) -> Result<Report, StudyError> {
    ensure_dir(dir)?;
    let results = load_results(specs)?;
    let aggregates = aggregate(&results, task.primary, task.better);
    let mut report = Report {
        markdown: format!(
            "{header}\n\n{}",
            markdown_table(&aggregates, task.primary, task.better)
        ),
        files: Vec::new(),
    };
    let results_md = dir.join("results.md");
    report.files.push(results_md.clone());
    let value_of = |a: &Aggregate, name: &str| swept(&a.label, specs, name);
    let final_line = |name: &str| SweepLine {
        label: format!("final {}", task.primary),
        x: aggregates
            .iter()
            .filter_map(|a| value_of(a, name))
            .collect(),
        y: aggregates
            .iter()
            .filter(|a| value_of(a, name).is_some())
            .map(|a| a.final_value.mean)
            .collect(),
    };
    match sweep {
        Sweep::Delta => {
            let mut panels = vec![Panel {
                y_label: task.primary.into(),
                lines: vec![final_line("delta")],
            }];
            let with_mode: Vec<&Aggregate> = aggregates
                .iter()
                .filter(|a| run_mean(&results, &a.label, SGD_MODE_FRACTION).is_some())
                .collect();
            if !with_mode.is_empty() {
                panels.push(Panel {
                    y_label: "SGD-mode fraction (mean over training)".into(),
                    lines: vec![SweepLine {
                        label: "SGD-mode fraction".into(),
                        x: with_mode
                            .iter()
                            .filter_map(|a| value_of(a, "delta"))
                            .collect(),
                        y: with_mode
                            .iter()
                            .filter_map(|a| run_mean(&results, &a.label, SGD_MODE_FRACTION))
                            .collect(),
                    }],
                });
            }
            let path = dir.join("sweep_delta.svg");
            sweep_svg(
                &path,
                &format!("{}: AGD against δ", task.name),
                "δ",
                &panels,
                true,
            )?;
            report.files.push(path);
        }
        Sweep::LrDelta => {
            let mut lrs: Vec<f64> = aggregates
                .iter()
                .filter_map(|a| value_of(a, "lr"))
                .collect();
            let mut deltas: Vec<f64> = aggregates
                .iter()
                .filter_map(|a| value_of(a, "delta"))
                .collect();
            for v in [&mut lrs, &mut deltas] {
                v.sort_by(f64::total_cmp);
                v.dedup();
            }
            let mut values = vec![vec![f64::NAN; lrs.len()]; deltas.len()];
            for a in &aggregates {
                if let (Some(lr), Some(delta)) = (value_of(a, "lr"), value_of(a, "delta")) {
                    let c = lrs.iter().position(|&x| x == lr).expect("collected above");
                    let r = deltas
                        .iter()
                        .position(|&x| x == delta)
                        .expect("collected above");
                    values[r][c] = a.final_value.mean;
                }
            }
            let finite = values.iter().flatten().copied().filter(|v| v.is_finite());
            let range = finite
                .clone()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                });
            let map = HeatMap {
                title: format!("{}: AGD's final {} over lr × δ", task.name, task.primary),
                x_label: "learning rate".into(),
                y_label: "δ".into(),
                columns: lrs.iter().map(|v| format!("{v:.1e}")).collect(),
                rows: deltas.iter().map(|v| format!("{v:e}")).collect(),
                values,
                range: if range.0.is_finite() {
                    range
                } else {
                    (0.0, 1.0)
                },
                annotate: true,
            };
            let path = dir.join("lr_delta.svg");
            heatmap_svg(&path, &map)?;
            report.files.push(path);
        }
        Sweep::K => {
            let with_time: Vec<&Aggregate> = aggregates
                .iter()
                .filter(|a| a.seconds_per_epoch.is_some())
                .collect();
            let panels = vec![
                Panel {
                    y_label: "training seconds per epoch".into(),
                    lines: vec![SweepLine {
                        label: "s / epoch".into(),
                        x: with_time.iter().filter_map(|a| value_of(a, "k")).collect(),
                        y: with_time
                            .iter()
                            .filter_map(|a| a.seconds_per_epoch.map(|s| s.mean))
                            .collect(),
                    }],
                },
                Panel {
                    y_label: task.primary.into(),
                    lines: vec![final_line("k")],
                },
            ];
            let path = dir.join("sweep_k.svg");
            sweep_svg(
                &path,
                &format!("{}: AGD's difference every k steps", task.name),
                "k",
                &panels,
                true,
            )?;
            report.files.push(path);
        }
    }
    report.markdown.push_str(&pictures_list(&report.files, dir));
    write_markdown(&results_md, &report.markdown)?;
    Ok(report)
}

/// The epoch-wise mean of a column over a label's seeds (for tests and callers that
/// want the numbers behind a picture).
pub fn mean_column(results: &[RunResult], label: &str, column: &str) -> Vec<f64> {
    let curves: Vec<Vec<f64>> = results
        .iter()
        .filter(|r| r.label == label)
        .filter_map(|r| r.table.column(column))
        .collect();
    mean_curve(&curves)
}

fn pictures_list(files: &[PathBuf], dir: &Path) -> String {
    let svgs: Vec<String> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "svg"))
        .map(|f| {
            let name = f.strip_prefix(dir).unwrap_or(f).display().to_string();
            format!("![{name}]({name})\n")
        })
        .collect();
    if svgs.is_empty() {
        String::new()
    } else {
        format!("\n{}", svgs.join("\n"))
    }
}

fn ensure_dir(dir: &Path) -> Result<(), StudyError> {
    fs::create_dir_all(dir).map_err(|e| StudyError::new(dir, None, e.to_string()))
}

fn write_markdown(path: &Path, text: &str) -> Result<(), StudyError> {
    fs::write(path, text).map_err(|e| StudyError::new(path, None, e.to_string()))
}
