//! Calibration: the image stream and preprocessing (this issue), histograms, range
//! algorithms and cache files (calibration issue).

// Image stream and preprocessing.
pub mod image;
pub mod npy;
pub mod preprocess;
pub mod stream;
