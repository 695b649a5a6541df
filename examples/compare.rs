//! Compare optimizers on one task over several seeds, or sweep AGD's δ, lr × δ or k, and
//! write a Markdown table and SVG pictures.
//!
//! ```text
//! cargo run --release --example compare -- --task mnist --quick
//! cargo run --release --example compare -- --task mnist --optimizers agd,adamw,sgd --seeds 3
//! cargo run --release --example compare -- --task mnist --quick --sweep delta
//! cargo run --release --example compare -- --task mnist --dry-run     # the commands only
//! cargo run --release --example compare -- --task mnist --report-only # table over finished runs
//! cargo run --release --example compare -- --task mnist --report-only --publish docs/study/mnist
//! ```
//!
//! Each run IS the task's example program (built once with `cargo build --release
//! --example NAME`, then started as a subprocess with `--optimizer X --seed S --lr ...
//! --metrics ... --save ...`), so what is compared is exactly what users run. The
//! settings of each optimizer on each task are one table, `agdlab::study::recipes`.
//! A run whose metrics CSV holds all its epochs is skipped when the comparison is
//! started again; a half-finished one resumes from its checkpoint. The results land in
//! `--out` (default `runs/compare`): `TASK/results.md` and `TASK/*.svg`, and for a sweep
//! `TASK/sweep-NAME/`. `--publish DIR` then copies the table and pictures into DIR and
//! every finished run's CSVs into `DIR/runs/` (how `docs/study/` is made). Anything after
//! `--` is passed to every run (`-- --data-dir DIR`).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use agdlab::say;
use agdlab::study::plan::{publish, run_all, run_spec, sweep_specs, Outcome, RunSpec, Sweep};
use agdlab::study::recipes::{self, TaskSpec, TASKS};
use agdlab::study::report::{comparison_report, sweep_report};
use clap::{Parser, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    about = "Compare optimizers on a task over seeds (or sweep AGD's settings); write results.md and SVGs"
)]
struct Args {
    /// mnist, mnist-cnn, fashion-resnet, ptb-lstm, ptb-transformer, movielens-fm or synthetic-ctr.
    #[arg(long)]
    task: String,
    /// A small budget (a training subset, 1-2 epochs): minutes, not hours.
    #[arg(long)]
    quick: bool,
    /// Comma-separated optimizers [default: agd,adam,adamw,sgd; with --quick agd,adam,sgd].
    #[arg(long, value_delimiter = ',')]
    optimizers: Vec<String>,
    /// Seeds per optimizer (0, 1, ...) [default: 3; with --quick or --sweep 2, 1].
    #[arg(long)]
    seeds: Option<u64>,
    /// Sweep AGD's δ, the lr × δ grid, or --difference-every k instead of comparing optimizers.
    #[arg(long, value_enum)]
    sweep: Option<SweepArg>,
    /// Where runs, results.md and the pictures go.
    #[arg(long, default_value = "runs/compare")]
    out: PathBuf,
    /// Threads of each run [default: the example's, all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Print the commands without running anything.
    #[arg(long)]
    dry_run: bool,
    /// Run nothing: write the table and pictures over the runs finished so far (the
    /// seeds column says how many each optimizer has), e.g. from CSVs copied back into
    /// the output directory from `docs/study/TASK/runs/`.
    #[arg(long, conflicts_with = "dry_run")]
    report_only: bool,
    /// After the report, copy it and its pictures into DIR and every finished run's
    /// CSVs into DIR/runs/, e.g. `--report-only --publish docs/study/ptb-lstm`.
    #[arg(long, value_name = "DIR", conflicts_with = "dry_run")]
    publish: Option<PathBuf>,
    /// Flags passed to every run, after `--`.
    #[arg(last = true)]
    extra: Vec<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum SweepArg {
    Delta,
    LrDelta,
    K,
}

fn main() {
    if let Err(e) = run(&Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    let task = recipes::task(&args.task).ok_or_else(|| {
        let names: Vec<&str> = TASKS.iter().map(|t| t.name).collect();
        format!(
            "unknown task `{}` (choose one of: {})",
            args.task,
            names.join(", ")
        )
    })?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !root
        .join("examples")
        .join(format!("{}.rs", task.example))
        .is_file()
    {
        return Err(format!(
            "example {} not found in this checkout: task {} runs examples/{}.rs, which has not landed on \
             this branch yet",
            task.example, task.name, task.example
        )
        .into());
    }
    let sweep = args.sweep.map(|s| match s {
        SweepArg::Delta => Sweep::Delta,
        SweepArg::LrDelta => Sweep::LrDelta,
        SweepArg::K => Sweep::K,
    });
    let dir = args.out.join(task.name);
    let specs = plan(args, task, sweep, &dir)?;
    if args.dry_run {
        for spec in &specs {
            say!("{} {}", task.example, spec.command_line(false).join(" "));
        }
        return Ok(());
    }
    if args.report_only {
        say!(
            "{}: report over the runs finished in {}, running nothing",
            task.name,
            dir.display()
        );
    } else if let Some(data) = task.data {
        say!(
            "{}: {} runs of examples/{}.rs on {data} into {}",
            task.name,
            specs.len(),
            task.example,
            dir.display()
        );
    }
    let started = Instant::now();
    let total = specs.len();
    let outcomes = if args.report_only {
        Vec::new()
    } else {
        let binary = build_example(task.example)?;
        run_all(
            &specs,
            |spec, resume| run_example(&binary, spec, resume),
            |i, spec, outcome| {
                say!(
                    "[{}/{total}] {} seed {}: {outcome}",
                    i + 1,
                    spec.label,
                    spec.seed
                )
            },
        )
    };
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Failed(_)))
        .count();
    let ran = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Ran { .. }))
        .count();
    let header = format!(
        "## {}{}: {}{}\n\nCommand: `cargo run --release --example compare -- {}`",
        task.name,
        sweep.map_or(String::new(), |s| format!(" ({})", s.name())),
        if args.quick {
            "quick budget"
        } else {
            "full budget"
        },
        if failed > 0 {
            format!(" ({failed} runs FAILED)")
        } else if args.report_only {
            let finished = specs.iter().filter(|s| s.is_finished()).count();
            format!(" ({finished} of {total} runs finished)")
        } else {
            String::new()
        },
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
    );
    let report = match sweep {
        None => comparison_report(task, &specs, &dir, &header)?,
        Some(s) => sweep_report(task, s, &specs, &dir.join(s.name()), &header)?,
    };
    say!("\n{}", report.markdown);
    say!(
        "{ran} runs in {:.1} min; wrote {}",
        started.elapsed().as_secs_f64() / 60.0,
        report.files[0].display()
    );
    if let Some(target) = &args.publish {
        let finished = publish(&report.files, &specs, target)?;
        say!(
            "published the report and {finished} finished runs into {}",
            target.display()
        );
    }
    if failed > 0 {
        return Err(format!(
            "{failed} of {total} runs failed (see above); the table covers the others"
        )
        .into());
    }
    Ok(())
}

/// The runs: every optimizer × seed, or the sweep's points × seeds.
fn plan(
    args: &Args,
    task: &TaskSpec,
    sweep: Option<Sweep>,
    dir: &Path,
) -> Result<Vec<RunSpec>, String> {
    let quick = args.quick;
    let mut specs = Vec::new();
    match sweep {
        None => {
            let optimizers: Vec<String> = if args.optimizers.is_empty() {
                let default: &[&str] = if quick {
                    &["agd", "adam", "sgd"]
                } else {
                    &["agd", "adam", "adamw", "sgd"]
                };
                default.iter().map(|s| s.to_string()).collect()
            } else {
                args.optimizers.clone()
            };
            let seeds = args.seeds.unwrap_or(if quick { 2 } else { 3 });
            for optimizer in &optimizers {
                let recipe = recipes::recipe(task.name, optimizer).ok_or_else(|| {
                    format!(
                        "no recipe for {optimizer} on {} (the table has: {})",
                        task.name,
                        recipes::optimizers_for(task.name).join(", ")
                    )
                })?;
                for seed in 0..seeds {
                    specs.push(run_spec(task, recipe, optimizer, seed, quick, dir));
                }
            }
        }
        Some(sweep) => {
            let recipe = recipes::recipe(task.name, "agd").ok_or("no AGD recipe for this task")?;
            specs = sweep_specs(task, recipe, sweep, args.seeds.unwrap_or(1), quick, dir);
        }
    }
    for spec in &mut specs {
        if let Some(threads) = args.threads {
            spec.flags.extend(["--threads".into(), threads.to_string()]);
        }
        spec.flags.extend(args.extra.iter().cloned());
    }
    Ok(specs)
}

/// Build the example once (incrementally) with the cargo that runs us, in the same
/// profile; return the path of its binary, next to ours in target/<profile>/examples.
fn build_example(example: &str) -> Result<PathBuf, Box<dyn Error>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let here = std::env::current_exe()?;
    let examples_dir = here
        .parent()
        .ok_or("cannot tell where this program's binary lives")?;
    let release = examples_dir
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "release");
    let mut command = Command::new(&cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--example", example]);
    if release {
        command.arg("--release");
    }
    say!(
        "building examples/{example}.rs ({})",
        if release { "release" } else { "debug" }
    );
    let status = command
        .status()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
    if !status.success() {
        return Err(format!("cargo build --example {example} failed ({status})").into());
    }
    let binary = examples_dir.join(format!("{example}{}", std::env::consts::EXE_SUFFIX));
    if !binary.is_file() {
        return Err(format!("built, but {} is not there", binary.display()).into());
    }
    Ok(binary)
}

/// One run: the example's binary with the spec's flags; its output goes to our terminal.
fn run_example(binary: &Path, spec: &RunSpec, resume: bool) -> Result<(), String> {
    say!(
        "--- {} seed {}{}",
        spec.label,
        spec.seed,
        if resume { " (resuming)" } else { "" }
    );
    let status = Command::new(binary)
        .args(spec.command_line(resume))
        .status()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} exited with {status}", binary.display()))
    }
}
