//! Reports: the bench report (JSON with a schema version, Markdown summary, SVG plots) and
//! comparison of two reports.

pub mod bench;
pub mod compare;
pub mod files;
pub mod markdown;
pub mod svg;

pub use bench::{BenchReport, SCHEMA_VERSION};
pub use files::ReportFiles;
