//! The study tools on tiny hand-made runs: reading the CSVs, the mean ± std table, the
//! pictures, skipping finished runs on resume, and the trajectories on Beale.

mod common;

use std::cell::RefCell;
use std::fs;
use std::path::Path;

use agdlab::optim::{Adam, AdamConfig, Agd, AgdConfig, Optimizer, Sgd, SgdConfig};
use agdlab::study::plan::{
    file_stem, publish, run_all, run_spec, set_flag, sweep_specs, Outcome, RunSpec, Sweep,
};
use agdlab::study::recipes::{self, TASKS};
use agdlab::study::report::{comparison_report, layer_step_map, sweep_report};
use agdlab::study::runs::{parse_diagnostics, MetricsTable};
use agdlab::study::summary::{aggregate, markdown_table, MeanStd, RunResult};
use agdlab::study::trajectory::{start_param, trajectory, TestFunction};
use agdlab::train::Better;
use common::temp_dir;

const HEADER: &str =
    "epoch,train_loss,train_acc,test_loss,test_acc,lr,sgd_mode_fraction,epoch_seconds\n";

/// A metrics CSV as the training loop writes it, with `acc[e]` as test accuracy.
fn metrics_text(acc: &[f64], seconds: f64) -> String {
    let mut text = HEADER.to_string();
    for (e, a) in acc.iter().enumerate() {
        let loss = 1.0 - a;
        text.push_str(&format!(
            "{},{loss},{a},{loss},{a},0.001,{},{seconds}\n",
            e + 1,
            0.1 * (e + 1) as f64
        ));
    }
    text
}

fn table(acc: &[f64], seconds: f64) -> MetricsTable {
    MetricsTable::parse(&metrics_text(acc, seconds), Path::new("made.csv")).unwrap()
}

#[test]
fn the_metrics_reader_reads_columns_and_ignores_a_half_written_last_line() {
    let text = metrics_text(&[0.5, 0.7], 2.0) + "3,0.1,0.9";
    let t = MetricsTable::parse(&text, Path::new("m.csv")).unwrap();
    assert_eq!(t.columns[0], "epoch");
    assert_eq!(t.column("test_acc").unwrap(), [0.5, 0.7]);
    assert_eq!(t.column("epoch_seconds").unwrap(), [2.0, 2.0]);
    assert!(t.column("valid_ppl").is_none());
    assert!(t.has_epochs(2));
    assert!(!t.has_epochs(3));
    // Epochs out of order are not a finished run.
    let shuffled = MetricsTable::parse("epoch,a\n2,1\n1,2\n", Path::new("m.csv")).unwrap();
    assert!(!shuffled.has_epochs(2));
}

#[test]
fn bad_metrics_files_give_errors_naming_the_file_and_line() {
    let err = |text: &str| {
        MetricsTable::parse(text, Path::new("runs/x.csv"))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(err(""), "runs/x.csv: empty: no header line");
    assert!(err("loss,epoch\n1,2\n").starts_with("runs/x.csv:1: the first column is `loss`"));
    assert_eq!(
        err("epoch,loss\n1,0.5\n2\n"),
        "runs/x.csv:3: 1 values for 2 columns"
    );
    assert_eq!(
        err("epoch,loss\n1,abc\n"),
        "runs/x.csv:2: loss `abc` is not a number"
    );
    let missing = MetricsTable::read(Path::new("/nonexistent/agdlab/m.csv"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.starts_with("/nonexistent/agdlab/m.csv: "),
        "{missing}"
    );
}

#[test]
fn diagnostics_become_a_layer_by_step_map() {
    let text = "epoch,step,param,key,value\n\
                1,2,fc1.weight,sgd_mode_fraction,0.25\n1,2,fc1.bias,sgd_mode_fraction,1\n\
                1,4,fc1.weight,sgd_mode_fraction,0.5\n1,4,fc1.bias,sgd_mode_fraction,0.75\n\
                1,4,fc1.bias,mode_flip_fraction,0.1\n";
    let rows = parse_diagnostics(text, Path::new("d.csv")).unwrap();
    assert_eq!(rows.len(), 5);
    let map = layer_step_map(&rows, "sgd_mode_fraction").unwrap();
    assert_eq!(map.rows, ["fc1.weight", "fc1.bias"]);
    assert_eq!(map.columns, ["2", "4"]);
    assert_eq!(map.values, [[0.25, 0.5], [1.0, 0.75]]);
    assert!(layer_step_map(&rows, "nothing").is_none());
    let bad = parse_diagnostics(
        "epoch,step,param,key,value\n1,x,a,b,0\n",
        Path::new("d.csv"),
    )
    .unwrap_err();
    assert_eq!(bad.to_string(), "d.csv:2: step `x` is not a whole number");
    let header = parse_diagnostics("epoch,param\n", Path::new("d.csv")).unwrap_err();
    assert!(header.to_string().starts_with("d.csv:1: header"));
}

#[test]
fn aggregate_gives_mean_and_sample_std_over_seeds_and_the_best_epoch() {
    let results = vec![
        RunResult {
            label: "agd".into(),
            seed: 0,
            table: table(&[0.90, 0.96, 0.95], 2.0),
        },
        RunResult {
            label: "agd".into(),
            seed: 1,
            table: table(&[0.92, 0.94, 0.97], 4.0),
        },
        RunResult {
            label: "sgd".into(),
            seed: 0,
            table: table(&[0.80, 0.85], 1.0),
        },
    ];
    let a = aggregate(&results, "test_acc", Better::Higher);
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].label, "agd");
    assert_eq!(a[0].runs, 2);
    let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
    assert!(
        close(a[0].final_value.mean, 0.96)
            && close(a[0].final_value.std, 0.02f64.hypot(0.0) / 2f64.sqrt())
    );
    // Best per seed: 0.96 and 0.97.
    assert!(close(a[0].best_value.mean, 0.965));
    // The seed-mean curve is 0.91, 0.95, 0.96: best at epoch 3.
    assert_eq!(a[0].best_epoch, 3);
    assert!(close(a[0].seconds_per_epoch.unwrap().mean, 3.0));
    assert_eq!(a[1].best_epoch, 2);
    assert_eq!(a[1].final_value.std, 0.0);
    // Lower is better: the best of a loss is its minimum.
    let losses = aggregate(&results, "test_loss", Better::Lower);
    assert_eq!(losses[0].best_epoch, 3);
    assert!(close(losses[1].best_value.mean, 0.15));

    let md = markdown_table(&a, "test_acc", Better::Higher);
    assert!(md.starts_with(
        "| run | seeds | final test_acc | best test_acc | best epoch | s / epoch |\n|---|"
    ));
    assert!(
        md.contains("| agd | 2 | 96.00 ± 1.41 % | 96.50 ± 0.71 % | 3 | 3.0 ± 1.1 |"),
        "{md}"
    );
    assert!(
        md.contains("| sgd | 1 | 85.00 % | 85.00 % | 2 | 1.0 ± 0.0 |"),
        "{md}"
    );
    // One seed has no spread to show: only the seconds (over its epochs) keep theirs.
    let loss_md = markdown_table(&losses, "test_loss", Better::Lower);
    let sgd_row = loss_md.lines().find(|l| l.starts_with("| sgd |")).unwrap();
    assert_eq!(sgd_row.matches('±').count(), 1, "{sgd_row}");
    assert_eq!(MeanStd::of(&[]), None);
}

/// The contents of an SVG's text elements, trimmed.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| Some(t[t.find('>')? + 1..t.find("</text>")?].trim().to_string()))
        .collect()
}

/// Write a finished run's metrics (and, for AGD, diagnostics) where `spec` expects them.
fn finish(spec: &RunSpec, acc: &[f64]) {
    fs::create_dir_all(spec.metrics.parent().unwrap()).unwrap();
    fs::write(&spec.metrics, metrics_text(acc, 1.5)).unwrap();
    if let Some(d) = &spec.diagnostics {
        let mut text = "epoch,step,param,key,value\n".to_string();
        for step in 1..=4 {
            for (param, v) in [
                ("fc1.weight", 0.1 * step as f64),
                ("fc1.bias", 1.0 - 0.2 * step as f64),
            ] {
                text.push_str(&format!("1,{step},{param},sgd_mode_fraction,{v}\n"));
            }
        }
        fs::write(d, text).unwrap();
    }
}

#[test]
fn the_comparison_report_writes_the_table_and_the_pictures() {
    let dir = temp_dir("study-report");
    let task = recipes::task("mnist").unwrap();
    let mut specs = Vec::new();
    for optimizer in ["agd", "sgd"] {
        for seed in 0..2 {
            let spec = run_spec(
                task,
                recipes::recipe("mnist", optimizer).unwrap(),
                optimizer,
                seed,
                true,
                &dir,
            );
            let mut acc = vec![0.9 + 0.01 * seed as f64; spec.epochs];
            acc[spec.epochs - 1] = 0.95;
            finish(&spec, &acc);
            specs.push(spec);
        }
    }
    let report = comparison_report(task, &specs, &dir, "## test").unwrap();
    assert!(report.markdown.starts_with("## test\n\n| run |"));
    assert!(
        report.markdown.contains("| agd | 2 | 95.00 ± 0.00 % |"),
        "{}",
        report.markdown
    );
    let names: Vec<String> = report
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "results.md",
            "train_loss.svg",
            "test_acc.svg",
            "sgd_mode_fraction.svg",
            "sgd_mode_layers.svg"
        ]
    );
    assert_eq!(
        fs::read_to_string(dir.join("results.md")).unwrap(),
        report.markdown
    );
    for file in &report.files[1..] {
        let svg = fs::read_to_string(file).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{}",
            file.display()
        );
    }
    let curves = fs::read_to_string(dir.join("test_acc.svg")).unwrap();
    assert!(
        texts(&curves).contains(&"agd".to_string()) && texts(&curves).contains(&"sgd".to_string())
    );
    assert!(curves.contains("<polygon"), "the seed bands");
    let layers = texts(&fs::read_to_string(dir.join("sgd_mode_layers.svg")).unwrap());
    assert!(
        layers.contains(&"fc1.weight".to_string()) && layers.contains(&"fc1.bias".to_string()),
        "{layers:?}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_sweep_reports_write_their_pictures() {
    let dir = temp_dir("study-sweeps");
    let task = recipes::task("mnist").unwrap();
    let agd = recipes::recipe("mnist", "agd").unwrap();
    for (sweep, picture) in [
        (Sweep::Delta, "sweep_delta.svg"),
        (Sweep::LrDelta, "lr_delta.svg"),
        (Sweep::K, "sweep_k.svg"),
    ] {
        let specs = sweep_specs(task, agd, sweep, 1, true, &dir);
        for (i, spec) in specs.iter().enumerate() {
            let mut acc = vec![0.5; spec.epochs];
            acc[spec.epochs - 1] = 0.6 + 0.01 * i as f64;
            finish(spec, &acc);
        }
        let report =
            sweep_report(task, sweep, &specs, &dir.join(sweep.name()), "## sweep").unwrap();
        assert_eq!(report.files[1].file_name().unwrap(), picture);
        let svg = fs::read_to_string(&report.files[1]).unwrap();
        assert!(svg.starts_with("<svg"), "{picture}");
        if sweep == Sweep::Delta {
            // A log axis: the ticks read as powers of ten.
            let ticks = texts(&svg);
            assert!(
                ticks.contains(&"1e-16".to_string()) && ticks.contains(&"1e-2".to_string()),
                "{ticks:?}"
            );
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sweeps_replace_the_recipes_flag_instead_of_repeating_it() {
    let task = recipes::task("mnist").unwrap();
    let agd = recipes::recipe("mnist", "agd").unwrap();
    let specs = sweep_specs(task, agd, Sweep::Delta, 2, true, Path::new("out"));
    assert_eq!(specs.len(), 2 * agdlab::study::plan::QUICK_DELTAS.len());
    for spec in &specs {
        assert_eq!(
            spec.flags.iter().filter(|f| *f == "--delta").count(),
            1,
            "{:?}",
            spec.flags
        );
    }
    assert_eq!(
        specs[0].metrics,
        Path::new("out/sweep-delta/delta_1e-16_seed0.csv")
    );
    let mut flags = vec!["--lr".to_string(), "1".into()];
    set_flag(&mut flags, "--lr", "2".into());
    set_flag(&mut flags, "--delta", "3".into());
    assert_eq!(flags, ["--lr", "2", "--delta", "3"]);
    assert_eq!(file_stem("lr=1.0e-4 δ=1e-8"), "lr_1.0e-4_delta_1e-8");
    // Every recipe belongs to a task, and every task has an AGD recipe.
    assert!(recipes::RECIPES
        .iter()
        .all(|r| recipes::task(r.task).is_some()));
    // Every task has a recipe for each of the six optimizers of the comparison.
    for t in TASKS {
        for optimizer in ["agd", "sgd", "adam", "adamw", "adabelief", "radam"] {
            assert!(
                recipes::recipe(t.name, optimizer).is_some(),
                "no {optimizer} recipe for {}",
                t.name
            );
        }
    }
}

#[test]
fn resuming_a_comparison_skips_finished_runs_and_resumes_half_finished_ones() {
    let dir = temp_dir("study-resume");
    let task = recipes::task("mnist").unwrap();
    let specs: Vec<RunSpec> = ["agd", "adam", "sgd"]
        .iter()
        .map(|o| run_spec(task, recipes::recipe("mnist", o).unwrap(), o, 0, true, &dir))
        .collect();
    let epochs = specs[0].epochs;
    assert!(epochs >= 2);
    let all: Vec<f64> = (0..epochs).map(|e| 0.9 + 0.01 * e as f64).collect();
    // agd finished before; adam stopped after epoch 1 with a checkpoint; sgd never ran.
    finish(&specs[0], &all);
    finish(&specs[1], &all[..1]);
    fs::create_dir_all(specs[1].checkpoint.parent().unwrap()).unwrap();
    fs::write(&specs[1].checkpoint, b"checkpoint").unwrap();

    let calls = RefCell::new(Vec::new());
    let runner = |spec: &RunSpec, resume: bool| {
        calls
            .borrow_mut()
            .push((spec.optimizer.clone(), resume, spec.command_line(resume)));
        finish(spec, &all);
        Ok(())
    };
    let outcomes = run_all(&specs, runner, |_, _, _| {});
    assert_eq!(outcomes[0], Outcome::Skipped);
    assert!(matches!(outcomes[1], Outcome::Ran { resumed: true, .. }));
    assert!(matches!(outcomes[2], Outcome::Ran { resumed: false, .. }));
    let calls = calls.into_inner();
    assert_eq!(
        calls
            .iter()
            .map(|(o, r, _)| (o.as_str(), *r))
            .collect::<Vec<_>>(),
        [("adam", true), ("sgd", false)]
    );
    let adam_line = &calls[0].2;
    let resume_at = adam_line
        .iter()
        .position(|a| a == "--resume")
        .expect("--resume passed");
    assert_eq!(Path::new(&adam_line[resume_at + 1]), specs[1].checkpoint);
    assert!(
        !specs[1].checkpoint.exists(),
        "a finished run's checkpoint is removed"
    );

    // Everything finished: a second pass runs nothing.
    let again = run_all(&specs, |_, _| panic!("nothing should run"), |_, _, _| {});
    assert!(again.iter().all(|o| *o == Outcome::Skipped));

    // A runner that claims success without writing every epoch is a failure, and so is an error.
    let lost = run_spec(
        task,
        recipes::recipe("mnist", "adamw").unwrap(),
        "adamw",
        0,
        true,
        &dir,
    );
    let out = run_all(std::slice::from_ref(&lost), |_, _| Ok(()), |_, _, _| {});
    assert!(
        matches!(&out[0], Outcome::Failed(why) if why.contains(&format!("does not hold all {epochs} epochs")))
    );
    let out = run_all(
        std::slice::from_ref(&lost),
        |_, _| Err("exit status 1".into()),
        |_, _, _| {},
    );
    assert_eq!(out[0], Outcome::Failed("exit status 1".into()));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn publishing_copies_the_report_and_only_the_finished_runs() {
    let dir = temp_dir("study-publish");
    let task = recipes::task("mnist").unwrap();
    let specs: Vec<RunSpec> = ["agd", "adam"]
        .iter()
        .map(|o| run_spec(task, recipes::recipe("mnist", o).unwrap(), o, 0, true, &dir))
        .collect();
    let all: Vec<f64> = (0..specs[0].epochs)
        .map(|e| 0.9 + 0.01 * e as f64)
        .collect();
    // agd finished (with its diagnostics); adam stopped after one epoch.
    finish(&specs[0], &all);
    let diagnostics = specs[0]
        .diagnostics
        .clone()
        .expect("AGD writes diagnostics");
    finish(&specs[1], &all[..1]);
    let report = dir.join("results.md");
    fs::write(&report, "the table").unwrap();

    let target = dir.join("published");
    let copied = publish(std::slice::from_ref(&report), &specs, &target).unwrap();
    assert_eq!(copied, 1);
    assert_eq!(
        fs::read_to_string(target.join("results.md")).unwrap(),
        "the table"
    );
    let name = |p: &Path| p.file_name().unwrap().to_owned();
    let mut published: Vec<_> = fs::read_dir(target.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    published.sort();
    let mut expected = vec![name(&specs[0].metrics), name(&diagnostics)];
    expected.sort();
    assert_eq!(published, expected, "adam's half-finished run is left out");
    assert_eq!(
        fs::read(target.join("runs").join(name(&specs[0].metrics))).unwrap(),
        fs::read(&specs[0].metrics).unwrap()
    );

    // A report file that is missing is an error that names it.
    let missing = dir.join("nowhere.svg");
    let err = publish(&[missing], &specs, &target).unwrap_err();
    assert!(err.contains("nowhere.svg"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

fn beale_run(
    name: &str,
    mut optimizer: Box<dyn Optimizer>,
    param: &agdlab::autograd::Param,
) -> f64 {
    let path = trajectory(TestFunction::Beale, optimizer.as_mut(), param, 5000, 1e-2).unwrap();
    let (x, y) = *path.points.last().unwrap();
    assert!(path.converged_at.is_some(), "{name} ended at ({x}, {y})");
    path.final_distance
}

#[test]
fn agd_and_adam_reach_the_minimum_of_beale_from_the_common_start() {
    let f = TestFunction::Beale;
    assert_eq!(f.value(3.0, 0.5), 0.0);
    let params = |p: &agdlab::autograd::Param| vec![("xy".to_string(), p.clone())];
    let p = start_param(f);
    let agd = Agd::new(
        params(&p),
        AgdConfig {
            lr: 0.01,
            delta: 1e-5,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(beale_run("AGD", Box::new(agd), &p) < 1e-2);
    let p = start_param(f);
    let adam = Adam::new(
        params(&p),
        AdamConfig {
            lr: 0.01,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(beale_run("Adam", Box::new(adam), &p) < 1e-2);
    // The gradient on the tape is Beale's: one plain SGD step from the start moves by
    // -lr * grad, with grad computed by hand.
    let p = start_param(f);
    let mut sgd = Sgd::new(
        params(&p),
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    let path = trajectory(f, &mut sgd, &p, 1, 1e-2).unwrap();
    let (x, y) = f.start();
    let terms = [
        (1.5, y, 1.0),
        (2.25, y * y, 2.0 * y),
        (2.625, y * y * y, 3.0 * y * y),
    ];
    let gx: f64 = terms
        .iter()
        .map(|&(c, yp, _)| 2.0 * (c - x + x * yp) * (yp - 1.0))
        .sum();
    let gy: f64 = terms
        .iter()
        .map(|&(c, yp, dyp)| 2.0 * (c - x + x * yp) * x * dyp)
        .sum();
    let (nx, ny) = path.points[1];
    assert!(
        (nx - (x - 1e-3 * gx)).abs() < 1e-5 && (ny - (y - 1e-3 * gy)).abs() < 1e-5,
        "{:?}",
        path.points[1]
    );
}
