//! Calibration: the image stream and preprocessing (this issue), histograms, range
//! algorithms and cache files (calibration issue).

// Calibration algorithms and artifacts (calibration issue).
pub mod cache;
pub mod histogram;
pub mod provenance;
pub mod range;

// Orchestration of `trtforge calibrate`, and progress display.
pub mod calibrate;
mod progress;
pub use progress::progress_bar;
