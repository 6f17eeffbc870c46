//! The nightly report's files: `nightly.json` (the next night's `--baseline`), `nightly.md`
//! (one row per cell: size, latency, power, accuracy, the seed article's comparison for every
//! cell) and SVG trend plots across nights. Written atomically, the JSON last.

use super::collect::{Night, NightReport};
use crate::error::Result;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "—".into())
}

/// `YYYY-MM-DD HH:MM UTC` of Unix seconds (the proleptic Gregorian calendar, days to civil
/// date after Howard Hinnant's algorithm).
fn utc(t: u64) -> String {
    let (days, secs) = ((t / 86_400) as i64, t % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

pub fn markdown(r: &NightReport) -> String {
    let mut s = String::new();
    let verdict = if r.accepted {
        "accepted as the new baseline"
    } else if r.passed() {
        "passed"
    } else {
        "FAILED"
    };
    let _ = writeln!(s, "# Nightly matrix: {verdict}\n");
    let _ = writeln!(
        s,
        "{} cells from `{}`; baseline: {}.\n",
        r.cells.len(),
        r.matrix,
        match r.baseline_created_unix_s {
            Some(t) => format!("the night collected {}", utc(t)),
            None => "none (first night)".into(),
        }
    );
    s += "| cell | status | engine MB | p50 ms | p99 ms | img/s | J/inference | mAP@0.5:0.95 | drop from FP32 | FP32 mAP |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|\n";
    let mut any_reference = false;
    for c in &r.cells {
        let Some(res) = &c.result else {
            let _ = writeln!(
                s,
                "| {} | missing | — | — | — | — | — | — | — | — |",
                c.name
            );
            continue;
        };
        let (mb, p50, p99, ips, j, mark) = match &res.engine {
            Some(e) => (
                format!("{:.2}", e.engine_bytes as f64 / 1e6),
                e.latency_p50_ms,
                e.latency_p99_ms,
                e.throughput_ips,
                e.j_per_inference,
                "",
            ),
            None => {
                any_reference = true;
                let f = &res.reference;
                (
                    "—".into(),
                    f.latency_p50_ms,
                    f.latency_p99_ms,
                    f.throughput_ips,
                    None,
                    "*",
                )
            }
        };
        let map = res.map50_95();
        let fp32 = res.reference.fp32_map50_95;
        let drop = match (map, fp32) {
            (Some((m, _)), Some(f)) => format!("{:.4}", f - m),
            _ => "—".into(),
        };
        let map_mark = match map {
            Some((_, "onnxruntime-cpu")) => "*",
            _ => "",
        };
        let _ = writeln!(
            s,
            "| {} | {} | {mb} | {}{mark} | {}{mark} | {}{mark} | {} | {}{map_mark} | {drop} | {} |",
            c.name,
            c.status,
            opt(p50, 2),
            opt(p99, 2),
            opt(ips, 1),
            opt(j, 4),
            opt(map.map(|m| m.0), 4),
            opt(fp32, 4),
        );
    }
    if any_reference {
        s += "\n\\* ONNX Runtime on the prepare runner's CPU, for the ONNX model the engine is built from (FP32, or the Q/DQ model for int8-qdq): a reference, not a device figure. Cells marked needs-tensorrt built no engine.\n";
    }
    if r.cells.iter().any(|c| c.bundle.is_some()) {
        s += "\n## Bundles\n\n| cell | bundle | OCI manifest |\n|---|---|---|\n";
        for c in &r.cells {
            if let Some(d) = &c.bundle {
                let engine = c.result.as_ref().is_some_and(|r| r.engine.is_some());
                let _ = writeln!(
                    s,
                    "| {} | bundles/{}{} | `{d}` |",
                    c.name,
                    &c.id,
                    if engine { "" } else { " (no engine)" }
                );
            }
        }
    }
    if !r.failures.is_empty() {
        s += "\n## Failures\n\n";
        for f in &r.failures {
            let _ = writeln!(s, "- {f}");
        }
    }
    if !r.regressions.is_empty() {
        s += "\n## Regressions\n\n| cell | metric | baseline | tonight | limit |\n|---|---|---|---|---|\n";
        for g in &r.regressions {
            let _ = writeln!(
                s,
                "| {} | {} | {:.4} | {:.4} | {} |",
                g.cell, g.metric, g.old, g.new, g.limit
            );
        }
    }
    s
}

/// A figure of a cell's night.
type Metric = fn(&super::collect::Point) -> Option<f64>;

/// One trend plot: `metric` of every cell with a value, over the history and tonight.
fn trend_svg(nights: &[Night], caption: &str, y: &str, metric: Metric) -> Result<Option<String>> {
    let mut series: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
    for (i, n) in nights.iter().enumerate() {
        for (name, p) in &n.cells {
            if let Some(v) = metric(p) {
                let label = if p.source == "engine" {
                    name.clone()
                } else {
                    format!("{name} (ORT CPU)")
                };
                series.entry(label).or_default().push(((i + 1) as f64, v));
            }
        }
    }
    if series.is_empty() {
        return Ok(None);
    }
    let series: Vec<(String, Vec<(f64, f64)>)> = series.into_iter().collect();
    crate::report::svg::trend(caption, y, &series).map(Some)
}

/// Write the report into `dir`; returns the files written.
pub fn write(r: &NightReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut nights = r.history.clone();
    nights.push(r.night());
    let mut files = Vec::new();
    let plots: [(&str, &str, &str, Metric); 3] = [
        (
            "trend_latency_p50.svg",
            "Latency p50 per night",
            "latency p50 (ms)",
            |p| p.latency_p50_ms,
        ),
        (
            "trend_energy.svg",
            "Energy per inference per night",
            "J per inference",
            |p| p.j_per_inference,
        ),
        (
            "trend_map.svg",
            "mAP@0.5:0.95 per night",
            "mAP@0.5:0.95",
            |p| p.map50_95,
        ),
    ];
    for (file, caption, y, metric) in plots {
        if let Some(svg) = trend_svg(&nights, caption, y, metric)? {
            let p = dir.join(file);
            crate::util::write_atomic(&p, svg.as_bytes())?;
            files.push(p);
        }
    }
    let md = dir.join("nightly.md");
    crate::util::write_atomic(&md, markdown(r).as_bytes())?;
    files.push(md);
    let json = dir.join("nightly.json");
    crate::util::write_atomic(&json, crate::error::to_json_pretty(r)?.as_bytes())?;
    files.push(json);
    Ok(files)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(super::utc(1_796_137_317), "2026-12-01 15:01 UTC");
    }
}
