//! Calibration: the image stream and preprocessing, streaming histograms, range algorithms,
//! TensorRT cache files with provenance, and the `calibrate` orchestration.

// Image stream and preprocessing.
pub mod image;
pub mod npy;
pub mod preprocess;
pub mod stream;

// Calibration algorithms and artifacts.
pub mod cache;
pub mod capture;
pub mod histogram;
pub mod provenance;
pub mod range;
pub mod unary;

// Orchestration of `trtforge calibrate`, and progress display.
pub mod calibrate;
mod collect;
mod progress;

pub use progress::progress_bar;
pub use stream::{Batch, ImageSet, ImageStream};
