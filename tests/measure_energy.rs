//! Energy integration on synthetic traces with a known integral.

use std::time::Duration;
use trtforge::measure::energy::{self, integrate, interpolate};
use trtforge::measure::power::{PowerTrace, Reading};

fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

/// Piecewise-linear power through (knot time, mW) knots, sampled at irregular times that
/// include every knot: the trapezoid rule is exact for it, so the only error is rounding.
fn pwl(knots: &[(f64, f64)], x: f64) -> f64 {
    for w in knots.windows(2) {
        let ((t0, y0), (t1, y1)) = (w[0], w[1]);
        if x >= t0 && x <= t1 {
            return y0 + (y1 - y0) * (x - t0) / (t1 - t0);
        }
    }
    panic!("outside")
}

/// Exact integral of the piecewise-linear function over [a, b], by hand: sum of trapezoids
/// between the knots inside, with the edge values from the line equations.
fn pwl_integral(knots: &[(f64, f64)], a: f64, b: f64) -> f64 {
    let mut pts = vec![a];
    pts.extend(knots.iter().map(|k| k.0).filter(|&t| t > a && t < b));
    pts.push(b);
    pts.windows(2)
        .map(|w| (w[1] - w[0]) * (pwl(knots, w[0]) + pwl(knots, w[1])) / 2.0)
        .sum()
}

#[test]
fn constant_power_window_clipped_between_samples() {
    // 5 W sampled every 20 ms; window edges between samples.
    let t: Vec<f64> = (0..100).map(|i| i as f64 * 0.02).collect();
    let y = vec![5000.0; t.len()];
    let e = integrate(&t, &y, 0.123, 1.777).unwrap();
    assert!(rel(e, 5000.0 * (1.777 - 0.123)) < 1e-12);
}

#[test]
fn linear_ramp_known_integral() {
    // P(t) = 1000 + 2000 t mW on irregular samples; integral over [a, b] is
    // 1000 (b - a) + 1000 (b^2 - a^2).
    let t = [0.0, 0.013, 0.05, 0.051, 0.2, 0.333, 0.5, 0.77, 1.0];
    let y: Vec<f64> = t.iter().map(|x| 1000.0 + 2000.0 * x).collect();
    let (a, b) = (0.0371, 0.9123);
    let want = 1000.0 * (b - a) + 1000.0 * (b * b - a * a);
    let got = integrate(&t, &y, a, b).unwrap();
    assert!(rel(got, want) < 1e-9, "{got} vs {want}");
}

#[test]
fn piecewise_linear_trace_with_steps_known_integral() {
    // Idle 4 W, ramp to 12 W, plateau, ramp down (a realistic inference burst shape).
    let knots = [
        (0.0, 4000.0),
        (1.0, 4000.0),
        (1.05, 12000.0),
        (3.0, 12500.0),
        (3.1, 4200.0),
        (4.0, 4100.0),
    ];
    // Irregular sampling: every knot plus jittered points in between.
    let mut t: Vec<f64> = knots.iter().map(|k| k.0).collect();
    let mut s = 0.0;
    let mut i = 0u64;
    while s < 4.0 {
        t.push(s);
        i += 1;
        s += 0.007 + 0.013 * ((i * 7919) % 11) as f64 / 11.0;
    }
    t.sort_by(f64::total_cmp);
    t.dedup();
    let y: Vec<f64> = t.iter().map(|&x| pwl(&knots, x)).collect();
    for (a, b) in [
        (1.0, 3.1),
        (0.5, 3.5),
        (1.02, 1.04),
        (0.0, 4.0),
        (2.2222, 3.05),
    ] {
        let want = pwl_integral(&knots, a, b);
        let got = integrate(&t, &y, a, b).unwrap();
        assert!(rel(got, want) < 1e-9, "[{a}, {b}]: {got} vs {want}");
    }
    // Interpolation at an edge matches the line.
    assert!(rel(interpolate(&t, &y, 1.025).unwrap(), pwl(&knots, 1.025)) < 1e-12);
}

#[test]
fn window_not_covered_is_none() {
    let t = [1.0, 2.0];
    let y = [1.0, 1.0];
    assert!(integrate(&t, &y, 0.5, 1.5).is_none());
    assert!(integrate(&t, &y, 1.5, 2.5).is_none());
    assert!(integrate(&t, &y, 1.8, 1.2).is_none());
}

#[test]
fn report_gross_net_idle_and_rails() {
    // AGX Orin rails: the total is the three module rails; VDDQ is not added.
    let rails: Vec<String> = [
        "VDD_GPU_SOC",
        "VDD_CPU_CV",
        "VIN_SYS_5V0",
        "VDDQ_VDD2_1V8AO",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut tr = PowerTrace::new("ina3221", rails, Duration::from_millis(10));
    // Idle [0, 1) at 1+1+3 W, then from t=1 the GPU rail steps to 10 W (sampled exactly at
    // the step so the signal is a clean step between samples 1.0 and 1.0+).
    for i in 0..=300 {
        let t = i as f64 * 0.01;
        let gpu = if t < 1.0 { 1000.0 } else { 10000.0 };
        tr.push(
            t,
            &Reading {
                rails_mw: vec![gpu, 1000.0, 3000.0, 300.0],
                energy_mj: None,
            },
        );
    }
    // The step is a ramp between samples 0.99 and 1.00; keep the window and idle away from it.
    let r = energy::compute(&tr, (1.5, 2.5), Some((0.2, 0.8)), 400).unwrap();
    assert_eq!(r.method, "trapezoid");
    assert_eq!(r.rails_summed, ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"]);
    assert!(rel(r.energy_j, 14.0) < 1e-9, "{}", r.energy_j);
    assert!(rel(r.avg_w, 14.0) < 1e-9);
    assert!(rel(r.idle_w.unwrap(), 5.0) < 1e-9);
    assert!(rel(r.j_per_inference_gross, 14.0 / 400.0) < 1e-9);
    assert!(rel(r.j_per_inference_net.unwrap(), (14.0 - 5.0) / 400.0) < 1e-9);
    let gpu = &r.rails[0];
    assert!(rel(gpu.energy_j, 10.0) < 1e-9 && gpu.min_w == 10.0 && gpu.max_w == 10.0);
    assert!(rel(r.rails[3].mean_w, 0.3) < 1e-9);
    assert!(rel(r.period_achieved_ms, 10.0) < 1e-9);
    assert_eq!(r.samples_in_window, 101);
}

#[test]
fn energy_counter_is_used_when_present() {
    // NVML-style: cumulative mJ counter rising at 250 W (250 mJ per ms... per second: 250 J/s).
    let mut tr = PowerTrace::new("nvml", vec!["GPU".into()], Duration::from_millis(20));
    for i in 0..=100 {
        let t = i as f64 * 0.02;
        tr.push(
            t,
            &Reading {
                rails_mw: vec![250_000.0],
                energy_mj: Some(1.0e9 + 250_000.0 * t),
            },
        );
    }
    let r = energy::compute(&tr, (0.3, 1.7), None, 70).unwrap();
    assert_eq!(r.method, "energy_counter");
    assert!(rel(r.energy_j, 250.0 * 1.4) < 1e-9, "{}", r.energy_j);
    assert!(r.j_per_inference_net.is_none());
}
