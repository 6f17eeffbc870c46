//! Detection decoding, NMS and COCO-style mAP against YOLO-format labels.
//!
//! The pieces, in the order an evaluation uses them:
//! - [`Letterbox`]: how an original image was placed into the network input, and the inverse
//!   mapping of boxes back to original-image pixels.
//! - [`crate::recipe::Decoder::decode`] (in [`decode`]): raw model outputs to candidate
//!   [`Detection`]s in original-image pixels (YOLOX, NanoDet, FastestDet, YOLOv8/YOLO11).
//! - [`nms`]: class-aware non-maximum suppression and the per-image top-k cut.
//! - [`labels`]: YOLO-format ground truth (`class cx cy w h`, normalised).
//! - [`map`]: COCO-style mAP@0.5 and mAP@0.5:0.95 (101-point interpolation, area "all",
//!   100 detections per image), written to agree with pycocotools.
//! - [`bootstrap`]: confidence intervals for the mAP drop between two models on the same
//!   images (paired resampling of images).

pub mod bootstrap;
pub mod decode;
pub mod detection;
pub mod labels;
pub mod map;
pub mod nms;
pub mod report;
pub mod run;

pub use crate::data::Letterbox;
pub use bootstrap::{drop_interval, DropInterval};
pub use decode::DecodeParams;
pub use detection::Detection;
pub use labels::{GroundTruth, ImageTruth};
pub use map::{evaluate, match_images, ClassAp, EvalResult, Matched};
pub use nms::{nms_class_aware, top_k};
pub use report::{EvalReport, Evaluator, Timing};
