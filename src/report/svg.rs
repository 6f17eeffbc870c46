//! SVG plots (plotters, SVG backend, no font files needed: text is emitted as `<text>`):
//! - latency histogram with the median, mean and requested percentiles marked;
//! - per-iteration latency timeline;
//! - power trace per rail (and the total), the measured window shaded, the idle span shaded.

use super::bench::BenchReport;
use crate::measure::session::PowerResult;
use crate::{Error, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::ops::Range;

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

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One plot on a fresh SVG: white canvas, caption, axes over `x` and `y` described by
/// `desc`, the series `draw` adds, then the legend at `legend`.
fn plot(
    caption: &str,
    (x, y): (Range<f64>, Range<f64>),
    desc: (&str, &str),
    legend: SeriesLabelPosition,
    draw: impl FnOnce(&mut Chart) -> Result<()>,
) -> Result<String> {
    let mut out = String::new();
    let x_span = x.end - x.start;
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(x, y)
            .map_err(perr)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(desc.0).y_desc(desc.1);
        // Whole-number x (nights): one label per integer, none between.
        let whole = |v: &f64| format!("{v:.0}");
        if desc.0 == "night" {
            mesh.x_labels(((x_span + 0.5) as usize).max(2))
                .x_label_formatter(&whole);
        }
        mesh.draw().map_err(perr)?;
        draw(&mut chart)?;
        chart
            .configure_series_labels()
            .position(legend)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(perr)?;
        root.present().map_err(perr)?;
    }
    Ok(out)
}

/// A labelled line series.
fn line(
    chart: &mut Chart,
    pts: Vec<(f64, f64)>,
    color: RGBColor,
    width: u32,
    label: String,
) -> Result<()> {
    chart
        .draw_series(LineSeries::new(pts, color.stroke_width(width)))
        .map_err(perr)?
        .label(label)
        .legend(move |(a, b)| {
            PathElement::new(vec![(a, b), (a + 20, b)], color.stroke_width(width))
        });
    Ok(())
}

/// A labelled shaded time span over the whole height.
fn shade(
    chart: &mut Chart,
    (a, b): (f64, f64),
    ymax: f64,
    color: RGBColor,
    label: &str,
) -> Result<()> {
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(a, 0.0), (b, ymax)],
            color.mix(0.25).filled(),
        )))
        .map_err(perr)?
        .label(label)
        .legend(move |(x, y)| {
            Rectangle::new([(x, y - 5), (x + 20, y + 5)], color.mix(0.5).filled())
        });
    Ok(())
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
    let caption = format!(
        "Latency histogram: {} ({} iterations)",
        r.executor.backend,
        lat.len()
    );
    plot(
        &caption,
        (lo..hi, 0.0..ymax),
        ("latency (ms)", "iterations"),
        SeriesLabelPosition::UpperRight,
        |chart| {
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
                line(
                    chart,
                    vec![(x, 0.0), (x, ymax)],
                    color,
                    2,
                    format!("{name} = {x:.3} ms"),
                )?;
            }
            Ok(())
        },
    )
}

/// One line per series over nights (x: night 1, 2, ...), each point marked so a series of one
/// night still shows (the nightly matrix's trend plots).
pub fn trend(caption: &str, y_desc: &str, series: &[(String, Vec<(f64, f64)>)]) -> Result<String> {
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    // The data's own range: a 0.007 mAP regression must be visible.
    let (lo, hi) = padded(lo, hi);
    let xmax = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(1.0, f64::max);
    plot(
        caption,
        (0.5..xmax + 0.5, lo..hi),
        ("night", y_desc),
        SeriesLabelPosition::UpperRight,
        |chart| {
            for (i, (name, pts)) in series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                line(chart, pts.clone(), color, 2, name.clone())?;
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(perr)?;
            }
            Ok(())
        },
    )
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
    plot(
        "Latency per iteration",
        (0.0..xmax, lo..hi),
        ("iteration", "latency (ms)"),
        SeriesLabelPosition::MiddleRight,
        |chart| {
            line(chart, pts, PALETTE[0], 1, "latency".into())?;
            let med = r.latency.median_ms;
            line(
                chart,
                vec![(0.0, med), (xmax, med)],
                PALETTE[3],
                1,
                format!("median = {med:.3} ms"),
            )
        },
    )
}

pub fn power(r: &BenchReport, p: &PowerResult) -> Result<String> {
    let tr = &p.trace;
    let total = tr.total_mw();
    let watts = |v: &[f64]| -> Vec<(f64, f64)> {
        tr.t_s
            .iter()
            .zip(v)
            .filter(|(_, y)| y.is_finite())
            .map(|(t, y)| (*t, y / 1e3))
            .collect()
    };
    let mut series: Vec<(String, Vec<(f64, f64)>)> = tr
        .rails
        .iter()
        .zip(&tr.mw)
        .map(|(n, v)| (n.clone(), watts(v)))
        .collect();
    if tr.rails.len() > 1 {
        series.push((
            format!("total ({})", tr.total_rails.join(" + ")),
            watts(&total),
        ));
    }
    let ys = series.iter().flat_map(|s| s.1.iter().map(|p| p.1));
    let ymax = ys.fold(0.0f64, f64::max).max(0.001) * 1.15;
    let x0 = tr.t_s.first().copied().unwrap_or(0.0);
    let x1 = tr.t_s.last().copied().unwrap_or(1.0).max(x0 + 1e-3);
    let caption = format!(
        "Power ({}), {:.3} J/inference gross over the shaded window",
        tr.source, p.energy.j_per_inference_gross
    );
    plot(
        &caption,
        (x0..x1, 0.0..ymax),
        ("time (s)", "power (W)"),
        SeriesLabelPosition::MiddleRight,
        |chart| {
            let window = (r.window_start_s, r.window_end_s);
            shade(
                chart,
                window,
                ymax,
                RGBColor(120, 170, 230),
                "measured window",
            )?;
            if let Some(idle) = p.idle_span_s {
                shade(chart, idle, ymax, RGBColor(160, 160, 160), "idle baseline")?;
            }
            for (i, (name, pts)) in series.into_iter().enumerate() {
                line(chart, pts, PALETTE[i % PALETTE.len()], 2, name)?;
            }
            Ok(())
        },
    )
}
