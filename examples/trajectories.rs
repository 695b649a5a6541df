//! AGD, Adam and SGD with momentum on the Beale and Rosenbrock functions from the same
//! start, drawn over log-scaled filled contours (SVG; a dot every 250 steps), with a
//! table of steps to reach the minimum and final distance to it.
//!
//! ```text
//! cargo run --release --example trajectories                  # docs/trajectories_{beale,rosenbrock}.svg
//! cargo run --release --example trajectories -- --steps 5000 --out runs
//! ```
//!
//! The function is an ordinary model of one parameter of shape `[2]` (see
//! `agdlab::study::trajectory`): each step records it on a tape, runs backward and
//! steps the optimizer, as training a network does.

use std::error::Error;
use std::path::{Path, PathBuf};

use agdlab::optim::{Adam, AdamConfig, Agd, AgdConfig, Optimizer, Sgd, SgdConfig};
use agdlab::say;
use agdlab::study::plots::{colour, viridis};
use agdlab::study::trajectory::{start_param, trajectory, TestFunction, Trajectory};
use clap::Parser;
use plotters::prelude::*;

#[derive(Parser, Debug)]
#[command(about = "AGD, Adam and SGD with momentum on Beale and Rosenbrock, drawn as SVG")]
struct Args {
    /// Optimizer steps on each function.
    #[arg(long, default_value_t = 5000)]
    steps: usize,
    /// Directory of the SVG files.
    #[arg(long, default_value = "docs")]
    out: PathBuf,
    /// A point within this distance of the minimum has reached it.
    #[arg(long, default_value_t = 1e-2)]
    tolerance: f64,
}

/// The optimizers, with learning rates chosen per function so that each gets a fair
/// chance (same start, same number of steps); the table shows where each ends.
fn optimizers(
    f: TestFunction,
    param: &agdlab::autograd::Param,
) -> Vec<(&'static str, Box<dyn Optimizer>)> {
    let params = || vec![("xy".to_string(), param.clone())];
    let (agd_lr, adam_lr, sgd_lr) = match f {
        TestFunction::Beale => (0.01, 0.01, 1e-3),
        TestFunction::Rosenbrock => (0.01, 0.01, 2e-4),
    };
    vec![
        (
            "AGD",
            Box::new(
                Agd::new(
                    params(),
                    AgdConfig {
                        lr: agd_lr,
                        delta: 1e-5,
                        ..Default::default()
                    },
                )
                .unwrap(),
            ),
        ),
        (
            "Adam",
            Box::new(
                Adam::new(
                    params(),
                    AdamConfig {
                        lr: adam_lr,
                        ..Default::default()
                    },
                )
                .unwrap(),
            ),
        ),
        (
            "SGD (momentum 0.9)",
            Box::new(
                Sgd::new(
                    params(),
                    SgdConfig {
                        lr: sgd_lr,
                        momentum: 0.9,
                        ..Default::default()
                    },
                )
                .unwrap(),
            ),
        ),
    ]
}

fn main() {
    if let Err(e) = run(&Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    std::fs::create_dir_all(&args.out)?;
    say!(
        "| function | optimizer | steps to within {} of the minimum | final distance |",
        args.tolerance
    );
    say!("|---|---|---:|---:|");
    for f in [TestFunction::Beale, TestFunction::Rosenbrock] {
        let mut paths = Vec::new();
        // Each optimizer gets its own parameter at the common start.
        for i in 0..3 {
            let param = start_param(f);
            let (name, mut optimizer) = optimizers(f, &param).swap_remove(i);
            let path = trajectory(f, optimizer.as_mut(), &param, args.steps, args.tolerance)?;
            let reached = path
                .converged_at
                .map_or(format!("not in {}", args.steps), |s| s.to_string());
            say!(
                "| {} | {name} | {reached} | {:.2e} |",
                f.name(),
                path.final_distance
            );
            paths.push((name, path));
        }
        let file = args.out.join(format!("trajectories_{}.svg", f.name()));
        draw(&file, f, &paths)?;
        say!("wrote {}", file.display());
    }
    Ok(())
}

/// The function's log10 as filled contour bands, each path as a line, the start and the
/// minimum as markers.
fn draw(file: &Path, f: TestFunction, paths: &[(&str, Trajectory)]) -> Result<(), Box<dyn Error>> {
    // The function's window, widened to hold every path (but never more than twice as wide).
    let ((mut x0, mut x1), (mut y0, mut y1)) = f.window();
    let (wx, wy) = (x1 - x0, y1 - y0);
    for &(x, y) in paths.iter().flat_map(|(_, p)| &p.points) {
        (x0, x1) = (x0.min(x).max(x0 - wx / 2.0), x1.max(x).min(x1 + wx / 2.0));
        (y0, y1) = (y0.min(y).max(y0 - wy / 2.0), y1.max(y).min(y1 + wy / 2.0));
    }
    let root = SVGBackend::new(file, (720, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{} from {:?}: log10 f and the optimizers' paths",
                f.name(),
                f.start()
            ),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x")
        .y_desc("y")
        .draw()?;
    // Filled contours: log10 f on a grid, cut into 16 levels.
    let (nx, ny) = (100, 80);
    let (dx, dy) = ((x1 - x0) / nx as f64, (y1 - y0) / ny as f64);
    let level = |x: f64, y: f64| (f.value(x, y) + 1e-3).log10();
    let (lo, hi) = (
        -3.0,
        level(x0, y0)
            .max(level(x1, y1))
            .max(level(x0, y1))
            .max(level(x1, y0))
            .min(6.0),
    );
    let band = |i: usize, j: usize| {
        let (x, y) = (x0 + (i as f64 + 0.5) * dx, y0 + (j as f64 + 0.5) * dy);
        (((level(x, y) - lo) / (hi - lo)).clamp(0.0, 1.0) * 16.0)
            .floor()
            .min(15.0) as usize
    };
    // One rectangle per run of equal bands along a row keeps the file small.
    let mut cells = Vec::new();
    for j in 0..ny {
        let mut i = 0;
        while i < nx {
            let (b, start) = (band(i, j), i);
            while i < nx && band(i, j) == b {
                i += 1;
            }
            let (xa, xb, y) = (
                x0 + start as f64 * dx,
                x0 + i as f64 * dx,
                y0 + j as f64 * dy,
            );
            cells.push(Rectangle::new(
                [(xa, y), (xb, y + dy)],
                viridis(b as f64 / 15.0).mix(0.55).filled(),
            ));
        }
    }
    chart.draw_series(cells)?;
    for (i, (name, path)) in paths.iter().enumerate() {
        let c = colour(i + 1);
        let inside = |&(x, y): &(f64, f64)| x >= x0 && x <= x1 && y >= y0 && y <= y1;
        // Points closer than 1/400 of the window to the last one drawn add nothing visible.
        let mut points: Vec<(f64, f64)> = Vec::new();
        for &p in path.points.iter().take_while(|p| inside(p)) {
            let far = |q: &(f64, f64)| {
                ((p.0 - q.0) / (x1 - x0)).hypot((p.1 - q.1) / (y1 - y0)) > 1.0 / 400.0
            };
            if points.last().is_none_or(far) {
                points.push(p);
            }
        }
        // Wider lines first, so paths that run together stay visible; a dot every 250 steps
        // shows the speed along the path.
        let width = 5 - 2 * i as u32;
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(width)))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(width))
            });
        let dots = path
            .points
            .iter()
            .step_by(250)
            .copied()
            .take_while(|p| inside(p));
        chart.draw_series(dots.map(|p| Circle::new(p, 2 + width as i32 / 2, c.filled())))?;
    }
    let (sx, sy) = f.start();
    chart.draw_series(std::iter::once(Circle::new((sx, sy), 5, BLACK.filled())))?;
    chart.draw_series(std::iter::once(TriangleMarker::new(
        f.minimum(),
        7,
        RED.filled(),
    )))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
