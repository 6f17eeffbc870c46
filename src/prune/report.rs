//! `prune_report.json` and `prune_report.md`: what was removed where, and what it cost and
//! bought (size, MACs, CPU latency, mAP with and without recovery).

use super::criterion::Criterion;
use super::groups::Analysis;
use super::job::PruneSettings;
use super::recover::RecoveryStats;
use super::select::Measure;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Figures {
    pub params: u64,
    pub macs: u64,
    pub file_mb: f64,
    /// Median of 10 ONNX Runtime CPU runs after 2 warm-up runs.
    pub cpu_latency_ms: f64,
    pub map50: Option<f64>,
    pub map50_95: Option<f64>,
    pub eval_images: usize,
    /// Convs `trtforge inspect` flags for widths off the INT8 tensor-core multiple (32).
    pub alignment_findings: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Cumulative share of the original's measure removed after this step.
    pub target: f64,
    pub removed_channels: usize,
    pub macs_after: u64,
    /// Layers refit by recovery (None: recovery off).
    pub refit_layers: Option<usize>,
    pub seconds: f64,
}

/// One channel set of the original model: its sources, width and what is left.
#[derive(Debug, Clone, Serialize)]
pub struct SetReport {
    pub set: usize,
    pub group: usize,
    pub sources: Vec<String>,
    pub tensors: Vec<String>,
    pub channels: usize,
    pub kept: usize,
}

impl SetReport {
    /// Prunable sets of `a`, with how many of their channels survive (`survivors`: original
    /// channel indices each tensor kept).
    pub fn from_survivors(a: &Analysis, survivors: &HashMap<String, Vec<usize>>) -> Vec<Self> {
        a.prunable_sets()
            .map(|s| {
                let first = &s.tensors[0].0;
                let kept = match survivors.get(first) {
                    None => s.channels,
                    Some(list) => list
                        .iter()
                        .filter(|&&c| a.component(first, c).and_then(|r| a.set_of(r)) == Some(s.id))
                        .count(),
                };
                SetReport {
                    set: s.id,
                    group: s.group,
                    sources: s.sources.clone(),
                    tensors: s.tensors.iter().map(|(t, _)| t.clone()).collect(),
                    channels: s.channels,
                    kept,
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub tool_version: String,
    pub model: String,
    pub pruned_model: String,
    pub by: Measure,
    pub steps_requested: Vec<f64>,
    pub criterion: Criterion,
    pub align: usize,
    pub min_keep: f64,
    pub steps: Vec<StepReport>,
    pub recovery: Option<RecoveryStats>,
    pub original: Figures,
    pub pruned: Figures,
    /// The same channels removed from the original without recovery (only with recovery on).
    pub no_recovery: Option<Figures>,
    pub sets: Vec<SetReport>,
    /// Tensors that cannot be pruned, with why.
    pub excluded: Vec<(String, String)>,
    /// Pruned convs whose width is not a multiple of `align`: none, unless a conv's output
    /// also holds channels that cannot be pruned (an excluded range keeps its width).
    pub unaligned: Vec<String>,
}

impl PruneReport {
    pub fn new(model: &Path, pruned: &Path, criterion: Criterion, s: &PruneSettings) -> Self {
        PruneReport {
            tool_version: crate::TOOL_VERSION.into(),
            model: model.display().to_string(),
            pruned_model: pruned.display().to_string(),
            by: s.by,
            steps_requested: s.steps.clone(),
            criterion,
            align: s.align,
            min_keep: s.min_keep,
            steps: Vec::new(),
            recovery: None,
            original: Figures::default(),
            pruned: Figures::default(),
            no_recovery: None,
            sets: Vec::new(),
            excluded: Vec::new(),
            unaligned: Vec::new(),
        }
    }

    fn row(label: &str, f: &Figures, base: &Figures) -> String {
        let map = |m: Option<f64>, b: Option<f64>| match (m, b) {
            (Some(m), Some(b)) if label != "original" => format!("{m:.4} ({:+.4})", m - b),
            (Some(m), _) => format!("{m:.4}"),
            _ => "-".into(),
        };
        let pct = |a: f64, b: f64| if b > 0.0 { 100.0 * (1.0 - a / b) } else { 0.0 };
        format!(
            "| {label} | {:.3} | {:.3} ({:.1}% less) | {:.2} | {:.1} | {} | {} |\n",
            f.params as f64 / 1e6,
            f.macs as f64 / 1e9,
            pct(f.macs as f64, base.macs as f64),
            f.file_mb,
            f.cpu_latency_ms,
            map(f.map50_95, base.map50_95),
            map(f.map50, base.map50),
        )
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Pruning report\n");
        let _ = writeln!(
            s,
            "- model: `{}` -> `{}`\n- schedule: {} of the {} (criterion {}, widths multiples of {}, at least {:.0}% of each set kept)",
            self.model,
            self.pruned_model,
            self.steps_requested.iter().map(|r| format!("{:.0}%", 100.0 * r)).collect::<Vec<_>>().join(" -> "),
            match self.by {
                Measure::Channels => "conv channels",
                Measure::Macs => "MACs",
            },
            self.criterion.name(),
            self.align,
            100.0 * self.min_keep
        );
        match &self.recovery {
            Some(r) => {
                let _ = writeln!(
                    s,
                    "- recovery: {} layer refits by least squares on {} calibration images, at most {} positions per image and layer, in {} waves ({:.1} s, Gram matrices {:.0} MB at most at once); mean relative output error of the refit layers {:.4} with the weights only sliced, {:.4} refit (last step)",
                    r.layers, r.images, r.positions_per_image, r.waves, r.seconds, r.gram_mb, r.mean_error_sliced, r.mean_error_refit
                );
                if !r.worst.is_empty() {
                    let worst: Vec<String> = r
                        .worst
                        .iter()
                        .map(|f| format!("`{}` {:.4} ({:.4} sliced)", f.layer, f.refit, f.sliced))
                        .collect();
                    let _ = writeln!(
                        s,
                        "- furthest from the original after the refit (relative output error): {}",
                        worst.join(", ")
                    );
                }
            }
            None => {
                let _ = writeln!(s, "- recovery: off (--no-recover)");
            }
        }
        let imgs = self.original.eval_images;
        let _ = writeln!(
            s,
            "\n| model | params (M) | GMACs | file (MB) | CPU latency (ms) | mAP@0.5:0.95 | mAP@0.5 |\n|---|---|---|---|---|---|---|"
        );
        s += &Self::row("original", &self.original, &self.original);
        s += &Self::row("pruned", &self.pruned, &self.original);
        if let Some(n) = &self.no_recovery {
            s += &Self::row("same channels, no recovery", n, &self.original);
        }
        let _ = writeln!(
            s,
            "\nmAP on {imgs} images of the recipe's eval set{}; CPU latency: ONNX Runtime, median of 10 runs.",
            if imgs == 0 { " (none: --no-eval, or the recipe has no decoder or eval section)" } else { "" }
        );
        let _ = writeln!(s, "\n## Steps\n\n| target | channels removed | GMACs after | layers refit | s |\n|---|---|---|---|---|");
        for st in &self.steps {
            let _ = writeln!(
                s,
                "| {:.0}% | {} | {:.3} | {} | {:.1} |",
                100.0 * st.target,
                st.removed_channels,
                st.macs_after as f64 / 1e9,
                st.refit_layers.map_or("-".into(), |l| l.to_string()),
                st.seconds
            );
        }
        let _ = writeln!(s, "\n## Channel sets\n\n| set | group | written by | channels | kept |\n|---|---|---|---|---|");
        for set in &self.sets {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                set.set,
                set.group,
                set.sources.join(", "),
                set.channels,
                set.kept
            );
        }
        if !self.excluded.is_empty() {
            let _ = writeln!(s, "\n## Not pruned\n");
            for (tensors, why) in &self.excluded {
                let _ = writeln!(s, "- `{tensors}`: {why}");
            }
        }
        s
    }
}

/// `--explain`: the dependency groups, their sets and the exclusions, as text.
pub fn explain(a: &Analysis) -> String {
    let mut s = String::new();
    let prunable = a.prunable_sets().count();
    let _ = writeln!(
        s,
        "{} dependency groups, {} channel sets ({prunable} prunable), {} tracked tensors",
        a.groups.len(),
        a.sets.len(),
        a.tensors.len()
    );
    for g in &a.groups {
        let _ = writeln!(
            s,
            "group {} '{}': {} tensors",
            g.id,
            g.name,
            g.tensors.len()
        );
        for &sid in &g.sets {
            let set = &a.sets[sid];
            let tensors: Vec<String> = set
                .tensors
                .iter()
                .map(|(t, m)| {
                    if *m > 1 {
                        format!("{t} (x{m})")
                    } else {
                        t.clone()
                    }
                })
                .collect();
            let _ = writeln!(
                s,
                "  set {}: {} channels, written by [{}], in [{}]{}",
                set.id,
                set.channels,
                set.sources.join(", "),
                tensors.join(", "),
                match &set.excluded {
                    Some(w) => format!(": not pruned, {w}"),
                    None => String::new(),
                }
            );
        }
    }
    s
}
