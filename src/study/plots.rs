//! The study's pictures, as SVG files drawn with `plotters`.
//!
//! - [`curves_svg`]: one line per optimizer over epochs (or steps), with a band from the
//!   lowest to the highest seed;
//! - [`heatmap_svg`]: a grid of coloured cells with a colour bar (AGD's SGD-mode
//!   fraction per layer × step; the final metric per lr × δ);
//! - [`sweep_svg`]: panels sharing one x axis, optionally logarithmic (final metric and
//!   SGD-mode fraction against δ; time per epoch and final metric against k).
//!
//! Text is left to the SVG viewer's sans-serif font (no font files are read).

use std::fmt::Display;
use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::StudyError;

/// Line colours, in order (the "tab10" palette).
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of series `i`.
pub fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

/// One line with a band: `mean[i]` at `x[i]`, the band from `low[i]` to `high[i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub label: String,
    pub x: Vec<f64>,
    pub mean: Vec<f64>,
    pub low: Vec<f64>,
    pub high: Vec<f64>,
}

impl Band {
    /// The mean of `curves` (one per seed, cut to the shortest) at x = 1, 2, ..., with a
    /// band from the lowest to the highest seed.
    pub fn from_curves(label: impl Into<String>, curves: &[Vec<f64>]) -> Band {
        let len = curves.iter().map(Vec::len).min().unwrap_or(0);
        let at = |i: usize| curves.iter().map(move |c| c[i]);
        Band {
            label: label.into(),
            x: (1..=len).map(|e| e as f64).collect(),
            mean: (0..len)
                .map(|i| at(i).sum::<f64>() / curves.len() as f64)
                .collect(),
            low: (0..len)
                .map(|i| at(i).fold(f64::INFINITY, f64::min))
                .collect(),
            high: (0..len)
                .map(|i| at(i).fold(f64::NEG_INFINITY, f64::max))
                .collect(),
        }
    }
}

fn drawing_error<E: Display>(path: &Path) -> impl Fn(E) -> StudyError + '_ {
    move |e| StudyError::new(path, None, format!("drawing the picture: {e}"))
}

/// The range of the finite values, widened a little (and made non-empty).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        0.05 * lo.abs().max(1e-12)
    };
    (lo - pad, hi + pad)
}

/// Draw `bands` as lines over their x values with their seed bands, into the SVG file
/// `path`.
///
/// # Errors
/// A [`StudyError`] naming `path` when the file cannot be written.
pub fn curves_svg(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    bands: &[Band],
) -> Result<(), StudyError> {
    let fail = drawing_error(path);
    let (x0, x1) = padded_range(bands.iter().flat_map(|b| b.x.iter().copied()));
    let (y0, y1) = padded_range(
        bands
            .iter()
            .flat_map(|b| b.low.iter().chain(&b.high).chain(&b.mean).copied()),
    );
    let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(&fail)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(&fail)?;
    // Whole-number x values (epochs) get whole-number ticks.
    let whole = bands.iter().all(|b| b.x.iter().all(|x| x.fract() == 0.0));
    let ticks = bands
        .iter()
        .map(|b| b.x.len())
        .max()
        .unwrap_or(1)
        .clamp(2, 12);
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_labels(if whole { ticks } else { 10 })
        .x_label_formatter(&|v| {
            if !whole {
                format!("{v}")
            } else if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(&fail)?;
    for (i, band) in bands.iter().enumerate() {
        let c = colour(i);
        if band.low != band.high {
            let mut outline: Vec<(f64, f64)> = band
                .x
                .iter()
                .copied()
                .zip(band.high.iter().copied())
                .collect();
            outline.extend(band.x.iter().copied().zip(band.low.iter().copied()).rev());
            chart
                .draw_series(std::iter::once(Polygon::new(outline, c.mix(0.2))))
                .map_err(&fail)?;
        }
        let points: Vec<(f64, f64)> = band
            .x
            .iter()
            .copied()
            .zip(band.mean.iter().copied())
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
            .map_err(&fail)?
            .label(band.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(&fail)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(&fail)?;
    root.present().map_err(&fail)
}

/// A grid of values to colour: `values[row][column]`, NaN for a missing cell.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatMap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// The columns' tick labels (left to right).
    pub columns: Vec<String>,
    /// The rows' tick labels (bottom to top).
    pub rows: Vec<String>,
    pub values: Vec<Vec<f64>>,
    /// The values mapped to the ends of the colour scale.
    pub range: (f64, f64),
    /// Write each cell's value in it (for small grids).
    pub annotate: bool,
}

/// A perceptually ordered colour scale (viridis, from dark purple to yellow), `t` in [0, 1].
pub fn viridis(t: f64) -> RGBColor {
    const ANCHORS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * (ANCHORS.len() - 1) as f64;
    let i = (t.floor() as usize).min(ANCHORS.len() - 2);
    let f = t - i as f64;
    let (a, b) = (ANCHORS[i], ANCHORS[i + 1]);
    let mix = |x: f64, y: f64| (x + f * (y - x)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Draw `map` with a colour bar into the SVG file `path`.
///
/// # Errors
/// A [`StudyError`] naming `path` when the file cannot be written or `map.values` is not
/// `rows × columns`.
pub fn heatmap_svg(path: &Path, map: &HeatMap) -> Result<(), StudyError> {
    let fail = drawing_error(path);
    if map.values.len() != map.rows.len() || map.values.iter().any(|r| r.len() != map.columns.len())
    {
        return Err(StudyError::new(
            path,
            None,
            "heat map values are not rows × columns",
        ));
    }
    if map.rows.is_empty() || map.columns.is_empty() {
        return Err(StudyError::new(path, None, "an empty heat map"));
    }
    let (lo, hi) = map.range;
    let scale = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
    let label_width = 12
        + 7 * map
            .rows
            .iter()
            .map(|r| r.chars().count())
            .max()
            .unwrap_or(4) as u32;
    let root = SVGBackend::new(
        path,
        (
            760 + label_width.min(200),
            80 + 24 * map.rows.len().max(8) as u32,
        ),
    )
    .into_drawing_area();
    root.fill(&WHITE).map_err(&fail)?;
    let (width, _) = root.dim_in_pixel();
    let (left, right) = root.split_horizontally(width - 110);
    let (ncols, nrows) = (map.columns.len() as i32, map.rows.len() as i32);
    let mut chart = ChartBuilder::on(&left)
        .caption(&map.title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(label_width.min(200))
        // A segmented range `0..n` has n + 1 segments (its end is a key point too).
        .build_cartesian_2d(
            (0..ncols - 1).into_segmented(),
            (0..nrows - 1).into_segmented(),
        )
        .map_err(&fail)?;
    let name = |names: &[String], v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
            names.get(*i as usize).cloned().unwrap_or_default()
        }
        SegmentValue::Last => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(&map.x_label)
        .y_desc(&map.y_label)
        .x_labels(map.columns.len().min(12))
        .y_labels(map.rows.len())
        .x_label_formatter(&|v| name(&map.columns, v))
        .y_label_formatter(&|v| name(&map.rows, v))
        .draw()
        .map_err(&fail)?;
    let cells = map.values.iter().enumerate().flat_map(|(r, row)| {
        row.iter().enumerate().map(move |(c, &v)| {
            let style = if v.is_finite() {
                viridis(scale(v)).filled()
            } else {
                WHITE.filled()
            };
            let (c, r) = (c as i32, r as i32);
            Rectangle::new(
                [
                    (SegmentValue::Exact(c), SegmentValue::Exact(r)),
                    (SegmentValue::Exact(c + 1), SegmentValue::Exact(r + 1)),
                ],
                style,
            )
        })
    });
    chart.draw_series(cells).map_err(&fail)?;
    if map.annotate {
        let centre = Pos::new(HPos::Center, VPos::Center);
        for (r, row) in map.values.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let ink = if scale(v) > 0.6 { BLACK } else { WHITE };
                let text = if v.is_finite() {
                    format!("{v:.4}")
                } else {
                    "n/a".into()
                };
                let style = TextStyle::from(("sans-serif", 13)).pos(centre).color(&ink);
                chart
                    .draw_series(std::iter::once(Text::new(
                        text,
                        (
                            SegmentValue::CenterOf(c as i32),
                            SegmentValue::CenterOf(r as i32),
                        ),
                        style,
                    )))
                    .map_err(&fail)?;
            }
        }
    }
    // The colour bar.
    let (bar_lo, bar_hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let mut bar = ChartBuilder::on(&right)
        .margin_top(40)
        .margin_bottom(50)
        .margin_right(10)
        .set_label_area_size(LabelAreaPosition::Right, 60)
        .build_cartesian_2d(0.0..1.0, bar_lo..bar_hi)
        .map_err(&fail)?;
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_style(("sans-serif", 12))
        .y_label_formatter(&|v| format!("{v:.3}"))
        .draw()
        .map_err(&fail)?;
    let steps = 64;
    bar.draw_series((0..steps).map(|i| {
        let (a, b) = (i as f64 / steps as f64, (i + 1) as f64 / steps as f64);
        let (va, vb) = (
            bar_lo + a * (bar_hi - bar_lo),
            bar_lo + b * (bar_hi - bar_lo),
        );
        Rectangle::new([(0.0, va), (1.0, vb)], viridis((a + b) / 2.0).filled())
    }))
    .map_err(&fail)?;
    root.present().map_err(&fail)
}

/// One line of a sweep panel: `y[i]` at `x[i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepLine {
    pub label: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

/// One panel of a sweep picture: its y-axis label and lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub y_label: String,
    pub lines: Vec<SweepLine>,
}

/// Draw `panels` stacked, sharing the x axis (logarithmic when `log_x`: ticks read
/// 1e-16, 1e-8, ...), into the SVG file `path`.
///
/// # Errors
/// A [`StudyError`] naming `path` when the file cannot be written, or when `log_x` and
/// an x value is not positive.
pub fn sweep_svg(
    path: &Path,
    title: &str,
    x_label: &str,
    panels: &[Panel],
    log_x: bool,
) -> Result<(), StudyError> {
    let fail = drawing_error(path);
    let xs = panels
        .iter()
        .flat_map(|p| p.lines.iter().flat_map(|l| l.x.iter().copied()));
    if log_x && xs.clone().any(|x| x <= 0.0 || !x.is_finite()) {
        return Err(StudyError::new(
            path,
            None,
            "a logarithmic x axis needs positive x values",
        ));
    }
    let to_axis = |x: f64| if log_x { x.log10() } else { x };
    let (x0, x1) = padded_range(xs.map(to_axis));
    let root =
        SVGBackend::new(path, (720, 60 + 300 * panels.len().max(1) as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(&fail)?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(&fail)?;
    let areas = root.split_evenly((panels.len().max(1), 1));
    for (panel, area) in panels.iter().zip(&areas) {
        let (y0, y1) = padded_range(panel.lines.iter().flat_map(|l| l.y.iter().copied()));
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(&fail)?;
        let tick = |v: &f64| match log_x {
            false => format!("{v}"),
            // A whole power of ten as 1eN; between powers (a short axis) the value itself.
            true if (v - v.round()).abs() < 1e-9 => format!("1e{}", v.round() as i64),
            true if (-2.0..3.0).contains(v) => format!("{:.2}", 10f64.powf(*v)),
            true => format!("{:.1e}", 10f64.powf(*v)),
        };
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(&panel.y_label)
            .x_label_formatter(&tick)
            .draw()
            .map_err(&fail)?;
        for (i, line) in panel.lines.iter().enumerate() {
            let c = colour(i);
            let points: Vec<(f64, f64)> = line
                .x
                .iter()
                .map(|&x| to_axis(x))
                .zip(line.y.iter().copied())
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
                .map_err(&fail)?
                .label(line.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart
                .draw_series(points.into_iter().map(|p| Circle::new(p, 4, c.filled())))
                .map_err(&fail)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(&fail)?;
    }
    root.present().map_err(&fail)
}
