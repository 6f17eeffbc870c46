//! SVG plots (plotters, SVG backend, no font files needed: text is emitted as `<text>`):
//! - latency histogram with the median, mean and requested percentiles marked;
//! - per-iteration latency timeline;
//! - power trace per rail (and the total), the measured window shaded, the idle span shaded.

use super::bench::BenchReport;
use crate::measure::session::PowerResult;
use crate::{Error, Result};
use plotters::prelude::*;

fn perr(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("plotting failed: {e}"))
}

const SIZE: (u32, u32) = (960, 540);
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// A range with some room, never empty.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= 0.0 {
        let d = lo.abs().max(1e-3) * 0.05;
        return (lo - d, hi + d);
    }
    (lo - span * 0.02, hi + span * 0.05)
}

pub fn histogram(r: &BenchReport) -> Result<String> {
    let lat: Vec<f64> = r.iterations.iter().map(|i| i.latency_ms).collect();
    let (lo, hi) = padded(r.latency.min_ms, r.latency.max_ms);
    let nbins = (lat.len() as f64).sqrt().ceil().clamp(5.0, 60.0) as usize;
    let w = (hi - lo) / nbins as f64;
    let mut counts = vec![0u32; nbins];
    for v in &lat {
        let b = (((v - lo) / w) as usize).min(nbins - 1);
        counts[b] += 1;
    }
    let ymax = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.15;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Latency histogram: {} ({} iterations)",
                    r.executor.backend,
                    lat.len()
                ),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..ymax)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .x_desc("latency (ms)")
            .y_desc("iterations")
            .draw()
            .map_err(perr)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = lo + i as f64 * w;
                Rectangle::new(
                    [(x0, 0.0), (x0 + w, c as f64)],
                    PALETTE[0].mix(0.6).filled(),
                )
            }))
            .map_err(perr)?;
        let mut marks: Vec<(String, f64)> = vec![
            ("median".into(), r.latency.median_ms),
            ("mean".into(), r.latency.mean_ms),
        ];
        marks.extend(
            r.latency
                .percentiles
                .iter()
                .map(|p| (format!("p{}", p.p), p.value_ms)),
        );
        for (i, (name, x)) in marks.into_iter().enumerate() {
            let color = PALETTE[(i + 1) % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    vec![(x, 0.0), (x, ymax)],
                    color.stroke_width(2),
                ))
                .map_err(perr)?
                .label(format!("{name} = {x:.3} ms"))
                .legend(move |(a, b)| {
                    PathElement::new(vec![(a, b), (a + 20, b)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(perr)?;
        root.present().map_err(perr)?;
    }
    Ok(out)
}

pub fn timeline(r: &BenchReport) -> Result<String> {
    let pts: Vec<(f64, f64)> = r
        .iterations
        .iter()
        .enumerate()
        .map(|(i, it)| (i as f64, it.latency_ms))
        .collect();
    let (lo, hi) = padded(r.latency.min_ms, r.latency.max_ms);
    let xmax = (pts.len().max(2) - 1) as f64;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Latency per iteration", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..xmax, lo..hi)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc("latency (ms)")
            .draw()
            .map_err(perr)?;
        chart
            .draw_series(LineSeries::new(
                pts.iter().copied(),
                PALETTE[0].stroke_width(1),
            ))
            .map_err(perr)?
            .label("latency")
            .legend(|(a, b)| PathElement::new(vec![(a, b), (a + 20, b)], PALETTE[0]));
        let med = r.latency.median_ms;
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, med), (xmax, med)],
                PALETTE[3].stroke_width(1),
            ))
            .map_err(perr)?
            .label(format!("median = {med:.3} ms"))
            .legend(|(a, b)| PathElement::new(vec![(a, b), (a + 20, b)], PALETTE[3]));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(perr)?;
        root.present().map_err(perr)?;
    }
    Ok(out)
}

pub fn power(r: &BenchReport, p: &PowerResult) -> Result<String> {
    let tr = &p.trace;
    let total = tr.total_mw();
    let mut series: Vec<(String, Vec<(f64, f64)>)> = tr
        .rails
        .iter()
        .zip(&tr.mw)
        .map(|(n, v)| {
            (
                n.clone(),
                tr.t_s
                    .iter()
                    .zip(v)
                    .filter(|(_, y)| y.is_finite())
                    .map(|(t, y)| (*t, y / 1e3))
                    .collect(),
            )
        })
        .collect();
    if tr.rails.len() > 1 {
        series.push((
            format!("total ({})", tr.total_rails.join(" + ")),
            tr.t_s
                .iter()
                .zip(&total)
                .map(|(t, y)| (*t, y / 1e3))
                .collect(),
        ));
    }
    let ys = series.iter().flat_map(|s| s.1.iter().map(|p| p.1));
    let ymax = ys.fold(0.0f64, f64::max).max(0.001) * 1.15;
    let x0 = tr.t_s.first().copied().unwrap_or(0.0);
    let x1 = tr.t_s.last().copied().unwrap_or(1.0).max(x0 + 1e-3);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Power ({}), {:.3} J/inference gross over the shaded window",
                    tr.source, p.energy.j_per_inference_gross
                ),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, 0.0..ymax)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("power (W)")
            .draw()
            .map_err(perr)?;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(r.window_start_s, 0.0), (r.window_end_s, ymax)],
                RGBColor(120, 170, 230).mix(0.25).filled(),
            )))
            .map_err(perr)?
            .label("measured window")
            .legend(|(a, b)| {
                Rectangle::new(
                    [(a, b - 5), (a + 20, b + 5)],
                    RGBColor(120, 170, 230).mix(0.5).filled(),
                )
            });
        if let Some((ia, ib)) = p.idle_span_s {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(ia, 0.0), (ib, ymax)],
                    RGBColor(160, 160, 160).mix(0.25).filled(),
                )))
                .map_err(perr)?
                .label("idle baseline")
                .legend(|(a, b)| {
                    Rectangle::new(
                        [(a, b - 5), (a + 20, b + 5)],
                        RGBColor(160, 160, 160).mix(0.5).filled(),
                    )
                });
        }
        for (i, (name, pts)) in series.into_iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(perr)?
                .label(name)
                .legend(move |(a, b)| {
                    PathElement::new(vec![(a, b), (a + 20, b)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(perr)?;
        root.present().map_err(perr)?;
    }
    Ok(out)
}
