//! The files of a bench report: `bench.json`, `bench.md` and the SVG plots. Everything is
//! rendered in memory first and written as one set, so a plot that cannot be drawn or
//! written leaves no file behind.

use super::bench::BenchReport;
use crate::error::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Paths of everything [`BenchReport::write_all`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportFiles {
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub svgs: Vec<PathBuf>,
}

impl BenchReport {
    /// Write `bench.json`, `bench.md` and the SVG plots into `dir` (created if needed).
    pub fn write_all(&self, dir: &Path) -> Result<ReportFiles> {
        let json = crate::error::to_json_pretty(self)?;
        let mut svgs = vec![
            ("latency_histogram.svg", super::svg::histogram(self)?),
            ("latency_timeline.svg", super::svg::timeline(self)?),
        ];
        if let Some(p) = &self.power {
            svgs.push(("power_trace.svg", super::svg::power(self, p)?));
        }
        let names: Vec<String> = svgs.iter().map(|(n, _)| n.to_string()).collect();
        let markdown = super::markdown::render(self, &names);

        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let files = ReportFiles {
            json: dir.join("bench.json"),
            markdown: dir.join("bench.md"),
            svgs: svgs.iter().map(|(n, _)| dir.join(n)).collect(),
        };
        // One set: a plot that cannot be written (its name taken by a folder, a full disk)
        // leaves no bench.json claiming a complete report.
        let mut set: Vec<(&Path, &[u8])> = vec![(&files.json, json.as_bytes())];
        for ((_, svg), path) in svgs.iter().zip(&files.svgs) {
            set.push((path, svg.as_bytes()));
        }
        set.push((&files.markdown, markdown.as_bytes()));
        crate::util::write_set_atomic(&set)?;
        Ok(files)
    }
}
