//! What decoders produce and NMS and mAP consume.

/// One detected object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]` in original-image pixels.
    pub bbox: [f32; 4],
    pub score: f32,
    /// Class index (COCO: 0..79 in the 80-class order of the YOLO labels).
    pub class: u32,
}
