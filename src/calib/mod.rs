//! Calibration: the image stream and preprocessing (this issue), histograms, range
//! algorithms and cache files (calibration issue).
