//! Latency statistics against hand-computed values, trtexec's definitions
//! (samples/common/sampleReporting.cpp): percentile index = max(n-1-floor((1-p/100)*n), 0)
//! evaluated in f32, median = mean of the middle two for even n, population std.

use trtforge::measure::stats::{median, percentile, summarize, throughput};

#[test]
fn five_values() {
    let s = summarize(&[5.0, 1.0, 4.0, 2.0, 3.0], &[0.0, 50.0, 90.0, 100.0]).unwrap();
    assert_eq!(s.count, 5);
    assert_eq!(
        (s.min_ms, s.max_ms, s.mean_ms, s.median_ms),
        (1.0, 5.0, 3.0, 3.0)
    );
    // p0: exclude 5 -> index max(-1, 0) = 0. p50: exclude floor(2.5) = 2 -> index 2.
    // p90: exclude floor(0.1f32 * 5) = 0 -> index 4. p100: index 4.
    let ps: Vec<f64> = s.percentiles.iter().map(|p| p.value_ms).collect();
    assert_eq!(ps, [1.0, 3.0, 5.0, 5.0]);
    assert!((s.std_ms - 2f64.sqrt()).abs() < 1e-12);
    assert!((s.cv_percent - 2f64.sqrt() / 3.0 * 100.0).abs() < 1e-9);
}

#[test]
fn one_to_hundred() {
    // 1..=100 in a scrambled order.
    let v: Vec<f64> = (0..100).map(|i| ((i * 37) % 100 + 1) as f64).collect();
    let s = summarize(&v, &[50.0, 90.0, 95.0, 99.0]).unwrap();
    assert_eq!(s.median_ms, 50.5);
    assert_eq!(s.mean_ms, 50.5);
    // p50: exclude 50 -> index 49 -> 50. p90: (1 - 0.9f32) * 100 = 10.0000024 -> 10 -> 90.
    // p95: 5.0000012 -> 5 -> 95. p99: (1 - 0.99f32) * 100 = 0.99999905 -> 0 -> index 99 -> 100
    // (trtexec reports the maximum as p99 of 100 samples).
    assert_eq!(s.percentile(50.0), Some(50.0));
    assert_eq!(s.percentile(90.0), Some(90.0));
    assert_eq!(s.percentile(95.0), Some(95.0));
    assert_eq!(s.percentile(99.0), Some(100.0));
    // Population std of 1..=100: sqrt((100^2 - 1) / 12).
    assert!((s.std_ms - (9999.0f64 / 12.0).sqrt()).abs() < 1e-9);
}

#[test]
fn thousand_values_p99_and_p999() {
    let v: Vec<f64> = (1..=1000).map(|i| i as f64).collect();
    let sorted = v.clone();
    // p99: (1 - 0.99f32) * 1000 = 9.99999 -> 9 -> index 990 -> 991.
    assert_eq!(percentile(&sorted, 99.0), Some(991.0));
    // p99.9: 0.999f32 is 0.99900001, so (1 - 0.999f32) * 1000 = 0.99998713 -> 0 -> index 999
    // -> 1000, the maximum (same f32 effect as p99 of 100 samples).
    assert_eq!(percentile(&sorted, 99.9), Some(1000.0));
    // p98: (1 - 0.98f32) * 1000 = 19.99998 -> 19 -> index 980 -> 981.
    assert_eq!(percentile(&sorted, 98.0), Some(981.0));
    assert_eq!(median(&sorted), Some(500.5));
}

#[test]
fn edge_cases() {
    assert!(summarize(&[], &[50.0]).is_none());
    let one = summarize(&[0.25], &[0.0, 99.0]).unwrap();
    assert_eq!(
        (one.min_ms, one.median_ms, one.max_ms, one.std_ms),
        (0.25, 0.25, 0.25, 0.0)
    );
    assert!(one.percentiles.iter().all(|p| p.value_ms == 0.25));
    assert_eq!(throughput(100, 4, 0.5), Some(800.0));
    assert_eq!(throughput(100, 1, 0.0), None);
    // Sub-microsecond runs stay finite.
    let t = throughput(1, 1, 2e-9).unwrap();
    assert!(t.is_finite() && (t - 5e8).abs() < 1.0);
    assert!(trtforge::measure::stats::validate_percentiles(&[50.0, 100.1]).is_err());
}
