//! Markdown summary of a bench report.

use super::bench::BenchReport;
use crate::measure::stats::Summary;
use std::fmt::Write;

fn row(out: &mut String, name: &str, s: &Summary) {
    let ps: Vec<String> = s
        .percentiles
        .iter()
        .map(|p| format!("{:.3}", p.value_ms))
        .collect();
    let _ = writeln!(
        out,
        "| {name} | {:.3} | {:.3} | {:.3} | {} | {:.3} | {:.3} |",
        s.min_ms,
        s.mean_ms,
        s.median_ms,
        ps.join(" | "),
        s.max_ms,
        s.std_ms
    );
}

pub fn render(r: &BenchReport, svgs: &[String]) -> String {
    let mut o = String::new();
    let e = &r.executor;
    let _ = writeln!(o, "# trtforge bench: {}\n", e.artifact.display());
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| backend | {} |", e.backend);
    let _ = writeln!(o, "| artifact sha256 | `{}` |", e.artifact_sha256);
    let _ = writeln!(o, "| input | `{}` {:?} |", e.input_name, e.input_shape);
    let c = &r.context;
    let _ = writeln!(o, "| device | {} |", c.device_model);
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "n/a".into());
    let _ = writeln!(o, "| L4T | {} |", opt(&c.l4t_release));
    let _ = writeln!(o, "| power mode | {} |", opt(&c.nvpmodel));
    let f = |v: Option<f64>| {
        v.map(|x| format!("{x:.0} MHz"))
            .unwrap_or_else(|| "n/a".into())
    };
    let _ = writeln!(
        o,
        "| GPU / EMC clock | {} / {} |",
        f(c.gpu_freq_mhz),
        f(c.emc_freq_mhz)
    );
    let _ = writeln!(
        o,
        "| clocks locked | {} |",
        c.clocks_locked
            .map(|b| b.to_string())
            .unwrap_or_else(|| "unknown".into())
    );
    let _ = writeln!(
        o,
        "| trtforge | {} (report schema {}) |\n",
        r.tool_version, r.schema_version
    );

    let _ = writeln!(o, "## Latency (ms)\n");
    let heads: Vec<String> = r
        .latency
        .percentiles
        .iter()
        .map(|p| format!("p{}", p.p))
        .collect();
    let _ = writeln!(
        o,
        "| | min | mean | median | {} | max | std |",
        heads.join(" | ")
    );
    let _ = writeln!(o, "|---|---|---|---|{}---|---|", "---|".repeat(heads.len()));
    row(&mut o, "latency", &r.latency);
    for (n, s) in [("H2D", &r.h2d), ("compute", &r.compute), ("D2H", &r.d2h)] {
        if let Some(s) = s {
            row(&mut o, n, s);
        }
    }
    let _ = writeln!(
        o,
        "\n{} iterations in {:.3} s; throughput {}; first run {:.3} ms; warmup {} iterations in {:.3} s.",
        r.latency.count,
        r.window_end_s - r.window_start_s,
        r.throughput_ips
            .map(|t| format!("{t:.2} inferences/s"))
            .unwrap_or_else(|| "n/a".into()),
        r.first_run_ms,
        r.warmup_iterations,
        r.warmup_s
    );
    let _ = writeln!(o, "Percentiles: {}.\n", r.settings.percentile_definition);

    let _ = writeln!(o, "## Power and energy\n");
    match &r.power {
        Some(p) => {
            let en = &p.energy;
            let _ = writeln!(o, "| | |\n|---|---|");
            let _ = writeln!(o, "| source | {} ({}) |", en.source, en.method);
            let _ = writeln!(o, "| rails summed | {} |", en.rails_summed.join(" + "));
            let _ = writeln!(o, "| average power | {:.3} W |", en.avg_w);
            let _ = writeln!(
                o,
                "| idle power | {} |",
                en.idle_w
                    .map(|w| format!("{w:.3} W over {:.1} s", en.idle_s))
                    .unwrap_or_else(|| "not measured".into())
            );
            let _ = writeln!(o, "| energy in window | {:.4} J |", en.energy_j);
            let _ = writeln!(
                o,
                "| J / inference (gross) | {:.6} |",
                en.j_per_inference_gross
            );
            let _ = writeln!(
                o,
                "| J / inference (net of idle) | {} |",
                en.j_per_inference_net
                    .map(|v| format!("{v:.6}"))
                    .unwrap_or_else(|| "n/a".into())
            );
            let _ = writeln!(
                o,
                "| samples | {} in window, {} total, {} dropped; period {:.1} ms requested, {:.2} ms achieved (max gap {:.2} ms) |\n",
                en.samples_in_window,
                en.samples_total,
                en.samples_dropped,
                en.period_requested_ms,
                en.period_achieved_ms,
                en.period_max_ms
            );
            let _ = writeln!(
                o,
                "| rail | mean W | min W | max W | energy J |\n|---|---|---|---|---|"
            );
            for rl in &en.rails {
                let _ = writeln!(
                    o,
                    "| {} | {:.3} | {:.3} | {:.3} | {:.4} |",
                    rl.name, rl.mean_w, rl.min_w, rl.max_w, rl.energy_j
                );
            }
            o.push('\n');
        }
        None => {
            let _ = writeln!(
                o,
                "Not measured: {}.\n",
                r.power_unavailable.as_deref().unwrap_or("unavailable")
            );
        }
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(o, "## Warnings\n");
        for w in &r.warnings {
            let _ = writeln!(o, "- {w}");
        }
        o.push('\n');
    }
    if !svgs.is_empty() {
        let _ = writeln!(o, "## Plots\n");
        for s in svgs {
            let _ = writeln!(o, "![{s}]({s})\n");
        }
    }
    o
}
