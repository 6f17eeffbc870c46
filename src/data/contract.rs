//! The input contract: how an image becomes the model's input tensor (the recipe's `input`
//! section). Preprocessing follows it exactly; calibration, evaluation and runs share it.

use serde::{Deserialize, Serialize};

/// How an image becomes the model's input tensor:
/// `x = (pixel * scale - mean[c]) / std[c]`, pixel in 0..255 in `channel_order`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputContract {
    /// Graph input name.
    pub tensor: String,
    /// NCHW; N is the batch size used for `run`/`eval` (calibration batches are separate).
    pub shape: [usize; 4],
    #[serde(default)]
    pub dtype: InputDtype,
    pub channel_order: ChannelOrder,
    #[serde(default = "one")]
    pub scale: f32,
    #[serde(default = "zeros")]
    pub mean: [f32; 3],
    #[serde(default = "ones")]
    pub std: [f32; 3],
    pub resize: ResizeMode,
    /// Value of padded pixels, on the 0..255 pixel scale (before scale/mean/std).
    #[serde(default)]
    pub pad_value: f32,
    #[serde(default)]
    pub interpolation: Interpolation,
}

fn one() -> f32 {
    1.0
}
fn zeros() -> [f32; 3] {
    [0.0; 3]
}
fn ones() -> [f32; 3] {
    [1.0; 3]
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum InputDtype {
    #[default]
    Float32,
    Float16,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    Bgr,
    Rgb,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ResizeMode {
    /// Keep aspect ratio, image at the top-left, pad right/bottom (YOLOX).
    LetterboxTopLeft,
    /// Keep aspect ratio, image centred, pad all sides (NanoDet, Ultralytics).
    LetterboxCentre,
    /// Resize to the input size ignoring aspect ratio.
    Stretch,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Interpolation {
    /// OpenCV INTER_LINEAR (half-pixel centres, no antialiasing): what most detectors train with.
    #[default]
    Linear,
    /// OpenCV INTER_NEAREST.
    Nearest,
    /// Pillow's BILINEAR (antialiased when shrinking).
    PilBilinear,
}
