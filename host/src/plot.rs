//! PNG plots with `plotters`' bitmap backend. Text is drawn with the DejaVu Sans font that
//! the `dejavu` crate embeds, through `ab_glyph`, so no system font library is needed.

use std::fs::File;
use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::formats::{Library, Spectrum};

type PlotResult = Result<(), String>;

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

fn err(path: &Path) -> impl Fn(String) -> String + '_ {
    move |e| format!("{}: cannot draw the plot: {e}", path.display())
}

/// Creates the file the plot goes to. `plotters` writes it only at the end and reports a
/// failure there as a nest of its error types, so the usual causes (no such directory, no
/// permission) are caught here first, in the operating system's words.
fn create(path: &Path) -> PlotResult {
    File::create(path)
        .map(drop)
        .map_err(|e| format!("{}: cannot write the plot: {e}", path.display()))
}

/// The parts of a fitted spectrum, in `f64`: each phase's contribution `w_j x_j`, the
/// background `sum_d b_d T_d(t)`, their sum and the residual `y - sum`.
#[derive(Clone, Debug, PartialEq)]
pub struct FitParts {
    /// `w_j x_j` per phase.
    pub phases: Vec<Vec<f64>>,
    /// The background, empty without one.
    pub background: Vec<f64>,
    /// The fitted spectrum.
    pub total: Vec<f64>,
    /// `y - total`.
    pub residual: Vec<f64>,
}

/// Splits a fit into its parts (for plotting; the fit's own numbers are the kernel's).
pub fn fit_parts(library: &Library, spectrum: &Spectrum, fit: &unmix::Fit) -> FitParts {
    let n = library.channels();
    let k = library.phases();
    let phases: Vec<Vec<f64>> = (0..k)
        .map(|j| {
            let w = f64::from(fit.phases()[j]);
            library
                .column(j)
                .iter()
                .map(|&x| w * f64::from(x))
                .collect()
        })
        .collect();

    let coefficients = fit.background();
    let background: Vec<f64> = if coefficients.is_empty() {
        Vec::new()
    } else {
        let mut basis = [0.0f64; unmix::MAX_DEGREE + 1];
        let basis = &mut basis[..coefficients.len().min(unmix::MAX_DEGREE + 1)];
        (0..n)
            .map(|i| {
                unmix::factor::chebyshev_terms(i, n, basis);
                coefficients
                    .iter()
                    .zip(basis.iter())
                    .map(|(&c, &t)| f64::from(c) * t)
                    .sum::<f64>()
            })
            .collect()
    };

    let total: Vec<f64> = (0..n)
        .map(|i| phases.iter().map(|p| p[i]).sum::<f64>() + background.get(i).unwrap_or(&0.0))
        .collect();
    let residual = spectrum
        .values
        .iter()
        .zip(&total)
        .map(|(&y, f)| f64::from(y) - f)
        .collect();
    FitParts {
        phases,
        background,
        total,
        residual,
    }
}

/// A tick label: the value to six decimals, without trailing zeros (`12000`, `0.25`).
fn tick(v: &f64) -> String {
    format!("{}", (v * 1e6).round() / 1e6)
}

fn range_of<'a>(series: impl Iterator<Item = &'a f64>) -> (f64, f64) {
    let (lo, hi) = series.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = 0.05 * (hi - lo).max(1e-12);
    (lo - pad, hi + pad)
}

/// Draws a fit: measured spectrum, fitted total, each phase's contribution and the
/// background on top; the residual below. 1400 x 900 pixels.
///
/// # Errors
/// A message naming `path` when drawing or writing fails.
pub fn plot_fit(
    path: &Path,
    library: &Library,
    spectrum: &Spectrum,
    fit: &unmix::Fit,
) -> PlotResult {
    register_fonts();
    let parts = fit_parts(library, spectrum, fit);
    let axis = &library.axis;
    let x_range = axis[0].min(axis[axis.len() - 1])..axis[0].max(axis[axis.len() - 1]);
    let measured: Vec<f64> = spectrum.values.iter().map(|&v| f64::from(v)).collect();

    create(path)?;
    let root = BitMapBackend::new(path, (1400, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path)(e.to_string()))?;
    let (top, bottom) = root.split_vertically(640);

    let (lo, hi) = range_of(
        measured
            .iter()
            .chain(&parts.total)
            .chain(parts.background.iter()),
    );
    let mut chart = ChartBuilder::on(&top)
        .caption(format!("fit of \"{}\"", spectrum.name), ("sans-serif", 26))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range.clone(), lo.min(0.0)..hi)
        .map_err(|e| err(path)(e.to_string()))?;
    chart
        .configure_mesh()
        .y_desc("counts")
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(|e| err(path)(e.to_string()))?;

    let line = |values: &[f64], style: ShapeStyle| {
        LineSeries::new(axis.iter().copied().zip(values.iter().copied()), style)
    };
    let draw =
        |chart: &mut ChartContext<_, _>, values: &[f64], style: ShapeStyle, label: String| {
            chart
                .draw_series(line(values, style))
                .map_err(|e| err(path)(e.to_string()))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            Ok::<(), String>(())
        };

    // The measured spectrum is a wide light band under everything else, so that the thin
    // fitted total stays visible inside it wherever the two agree.
    draw(
        &mut chart,
        &measured,
        RGBColor(190, 190, 190).stroke_width(4),
        "measured".into(),
    )?;
    for (j, contribution) in parts.phases.iter().enumerate() {
        let color = Palette99::pick(j).to_rgba();
        let label = format!("{} ({:.3})", library.names[j], fit.fractions()[j]);
        draw(&mut chart, contribution, color.stroke_width(2), label)?;
    }
    if !parts.background.is_empty() {
        draw(
            &mut chart,
            &parts.background,
            RGBColor(120, 80, 20).stroke_width(2),
            "background".into(),
        )?;
    }
    draw(
        &mut chart,
        &parts.total,
        BLACK.stroke_width(1),
        "fit".into(),
    )?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(|e| err(path)(e.to_string()))?;

    let (rlo, rhi) = range_of(parts.residual.iter());
    let mut lower = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range, rlo..rhi)
        .map_err(|e| err(path)(e.to_string()))?;
    lower
        .configure_mesh()
        .x_desc(library.axis_name.as_str())
        .y_desc("residual")
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(|e| err(path)(e.to_string()))?;
    lower
        .draw_series(line(&parts.residual, RED.stroke_width(1)))
        .map_err(|e| err(path)(e.to_string()))?;

    root.present().map_err(|e| err(path)(e.to_string()))
}

/// Draws the singular values of a library, as given and with unit columns, on a log scale
/// (a scree plot). 1000 x 650 pixels.
///
/// # Errors
/// A message naming `path` when drawing or writing fails.
pub fn plot_scree(path: &Path, title: &str, given: &[f64], scaled: &[f64]) -> PlotResult {
    register_fonts();
    let k = given.len().max(1);
    let positive = given.iter().chain(scaled).copied().filter(|&v| v > 0.0);
    let (lo, hi) = positive.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo.is_finite() {
        (lo / 3.0, hi * 3.0)
    } else {
        (1e-3, 1.0)
    };

    create(path)?;
    let root = BitMapBackend::new(path, (1000, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path)(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("singular values of {title}"), ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d(0.5f64..k as f64 + 0.5, (lo..hi).log_scale())
        .map_err(|e| err(path)(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("index")
        .y_desc("singular value")
        .x_labels(k.min(16))
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(|e| err(path)(e.to_string()))?;

    let series = [("as given", given, BLUE), ("unit columns", scaled, RED)];
    for (label, values, color) in series {
        let points: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .map(|(i, &v)| ((i + 1) as f64, v))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| err(path)(e.to_string()))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 5, color.filled())),
            )
            .map_err(|e| err(path)(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(|e| err(path)(e.to_string()))?;

    root.present().map_err(|e| err(path)(e.to_string()))
}
