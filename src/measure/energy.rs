//! Energy over the measured window.
//!
//! The power signal is taken as the straight lines between consecutive samples; the energy is
//! the exact integral of that line over [window start, window end] (the trapezoid rule, with
//! the power at each window edge linearly interpolated between the samples around it, so the
//! idle and warmup samples outside the window never leak in). Idle power is the same integral
//! over the idle span divided by its length. With a cumulative energy counter (NVML) the
//! counter is interpolated at the edges instead.
//!
//! Reported per inference: gross = E / N, net = (E − P_idle · T) / N.

use super::power::PowerTrace;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Linear interpolation of (t, y) at x; `None` outside [t0, tn] or for an empty trace.
pub fn interpolate(t: &[f64], y: &[f64], x: f64) -> Option<f64> {
    let n = t.len().min(y.len());
    if n == 0 || x < t[0] || x > t[n - 1] {
        return None;
    }
    // First index with t[i] >= x.
    let i = t[..n].partition_point(|&v| v < x);
    if t[i] == x || i == 0 {
        return Some(y[i]);
    }
    let (t0, t1, y0, y1) = (t[i - 1], t[i], y[i - 1], y[i]);
    Some(y0 + (y1 - y0) * (x - t0) / (t1 - t0))
}

/// Integral over [a, b] of the piecewise-linear signal through (t, y). `t` must be
/// non-decreasing; `None` when the samples do not cover [a, b] or a > b.
pub fn integrate(t: &[f64], y: &[f64], a: f64, b: f64) -> Option<f64> {
    let n = t.len().min(y.len());
    if n == 0 || a > b || a < t[0] || b > t[n - 1] {
        return None;
    }
    let ya = interpolate(t, y, a)?;
    let yb = interpolate(t, y, b)?;
    // Samples strictly inside (a, b).
    let lo = t[..n].partition_point(|&v| v <= a);
    let hi = t[..n].partition_point(|&v| v < b);
    let mut acc = 0.0;
    let (mut pt, mut py) = (a, ya);
    for i in lo..hi {
        acc += (t[i] - pt) * (y[i] + py) * 0.5;
        pt = t[i];
        py = y[i];
    }
    acc += (b - pt) * (yb + py) * 0.5;
    Some(acc)
}

/// Per-rail figures over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RailEnergy {
    pub name: String,
    pub mean_w: f64,
    pub min_w: f64,
    pub max_w: f64,
    pub energy_j: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyReport {
    pub source: String,
    /// `trapezoid` or `energy_counter`.
    pub method: String,
    /// The rails summed into the total.
    pub rails_summed: Vec<String>,
    pub window_s: f64,
    pub samples_total: usize,
    pub samples_in_window: usize,
    pub samples_dropped: u64,
    pub period_requested_ms: f64,
    /// Mean spacing of the samples actually taken.
    pub period_achieved_ms: f64,
    pub period_max_ms: f64,
    pub idle_s: f64,
    pub idle_w: Option<f64>,
    pub avg_w: f64,
    pub energy_j: f64,
    pub inferences: u64,
    pub j_per_inference_gross: f64,
    /// `None` without an idle measurement.
    pub j_per_inference_net: Option<f64>,
    pub rails: Vec<RailEnergy>,
}

fn uncovered(what: &str, a: f64, b: f64, trace: &PowerTrace) -> Error {
    Error::Invalid(format!(
        "power samples do not cover the {what} [{a:.3} s, {b:.3} s] (samples from {:.3} s to {:.3} s, {} taken, {} dropped); use a shorter --period or a longer run",
        trace.t_s.first().copied().unwrap_or(f64::NAN),
        trace.t_s.last().copied().unwrap_or(f64::NAN),
        trace.t_s.len(),
        trace.dropped
    ))
}

/// Compute the energy report for `window` (seconds on the trace's clock), with an optional
/// idle span, for `inferences` inferences (images, batch included).
pub fn compute(
    trace: &PowerTrace,
    window: (f64, f64),
    idle: Option<(f64, f64)>,
    inferences: u64,
) -> Result<EnergyReport> {
    let (a, b) = window;
    let t = &trace.t_s;
    if t.len() < 2 {
        return Err(uncovered("measured window", a, b, trace));
    }
    let total = trace.total_mw();
    let t_len = b - a;
    let (method, energy_j) = match &trace.energy_mj {
        Some(e) => {
            let ea =
                interpolate(t, e, a).ok_or_else(|| uncovered("measured window", a, b, trace))?;
            let eb =
                interpolate(t, e, b).ok_or_else(|| uncovered("measured window", a, b, trace))?;
            ("energy_counter", (eb - ea) / 1e3)
        }
        None => (
            "trapezoid",
            integrate(t, &total, a, b).ok_or_else(|| uncovered("measured window", a, b, trace))?
                / 1e3,
        ),
    };
    let avg_w = if t_len > 0.0 {
        energy_j / t_len
    } else {
        f64::NAN
    };
    let idle_w = match idle {
        Some((ia, ib)) if ib > ia => {
            let e = match &trace.energy_mj {
                Some(c) => interpolate(t, c, ib)
                    .zip(interpolate(t, c, ia))
                    .map(|(x, y)| (x - y) / 1e3),
                None => integrate(t, &total, ia, ib).map(|v| v / 1e3),
            };
            Some(e.ok_or_else(|| uncovered("idle span", ia, ib, trace))? / (ib - ia))
        }
        _ => None,
    };
    let n = inferences.max(1) as f64;
    let rails = trace
        .rails
        .iter()
        .zip(&trace.mw)
        .filter_map(|(name, mw)| {
            let e = integrate(t, mw, a, b)? / 1e3;
            let mut vals: Vec<f64> = t
                .iter()
                .zip(mw)
                .filter(|(ts, _)| **ts > a && **ts < b)
                .map(|(_, v)| *v)
                .collect();
            vals.push(interpolate(t, mw, a)?);
            vals.push(interpolate(t, mw, b)?);
            let vals: Vec<f64> = vals.into_iter().filter(|v| v.is_finite()).collect();
            Some(RailEnergy {
                name: name.clone(),
                mean_w: if t_len > 0.0 { e / t_len } else { f64::NAN },
                min_w: vals.iter().copied().fold(f64::INFINITY, f64::min) / 1e3,
                max_w: vals.iter().copied().fold(f64::NEG_INFINITY, f64::max) / 1e3,
                energy_j: e,
            })
        })
        .collect();
    let dts: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    Ok(EnergyReport {
        source: trace.source.clone(),
        method: method.to_string(),
        rails_summed: trace.total_rails.clone(),
        window_s: t_len,
        samples_total: t.len(),
        samples_in_window: t.iter().filter(|&&x| x >= a && x <= b).count(),
        samples_dropped: trace.dropped,
        period_requested_ms: trace.period_requested_ms,
        period_achieved_ms: dts.iter().sum::<f64>() / dts.len() as f64 * 1e3,
        period_max_ms: dts.iter().copied().fold(0.0, f64::max) * 1e3,
        idle_s: idle.map(|(x, y)| y - x).unwrap_or(0.0),
        idle_w,
        avg_w,
        energy_j,
        inferences,
        j_per_inference_gross: energy_j / n,
        j_per_inference_net: idle_w.map(|p| (energy_j - p * t_len) / n),
        rails,
    })
}
