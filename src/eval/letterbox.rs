//! Geometry of the resize from an original image to the network input, and its inverse.

use crate::recipe::ResizeMode;

/// How an original `orig_w x orig_h` image was placed into the network input:
/// input pixel `x_in = x_orig * scale_x + pad_x` (same for y).
///
/// For the letterbox modes `scale_x == scale_y` is the ratio `r = min(in_w / w, in_h / h)`
/// and the resized image is `floor(w * r) x floor(h * r)` (as `int(w * r)` in the Python
/// references); for `stretch` the two scales differ and there is no padding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub orig_w: u32,
    pub orig_h: u32,
    pub scale_x: f32,
    pub scale_y: f32,
    pub pad_x: f32,
    pub pad_y: f32,
}

impl Letterbox {
    /// The placement `mode` gives an `orig_w x orig_h` image in an `in_w x in_h` input.
    pub fn new(mode: ResizeMode, orig_w: u32, orig_h: u32, in_w: u32, in_h: u32) -> Self {
        let (w, h) = (orig_w.max(1) as f64, orig_h.max(1) as f64);
        match mode {
            ResizeMode::Stretch => Letterbox {
                orig_w,
                orig_h,
                scale_x: (in_w as f64 / w) as f32,
                scale_y: (in_h as f64 / h) as f32,
                pad_x: 0.0,
                pad_y: 0.0,
            },
            ResizeMode::LetterboxTopLeft | ResizeMode::LetterboxCentre => {
                let r = (in_w as f64 / w).min(in_h as f64 / h);
                let (new_w, new_h) = Self::resized_size(orig_w, orig_h, in_w, in_h);
                let (pad_x, pad_y) = if mode == ResizeMode::LetterboxCentre {
                    // Integer split, the extra pixel (if any) goes right/bottom.
                    (((in_w - new_w) / 2) as f32, ((in_h - new_h) / 2) as f32)
                } else {
                    (0.0, 0.0)
                };
                Letterbox {
                    orig_w,
                    orig_h,
                    scale_x: r as f32,
                    scale_y: r as f32,
                    pad_x,
                    pad_y,
                }
            }
        }
    }

    /// Size of the resized image inside the letterbox: `floor(w * r) x floor(h * r)`, at least 1.
    pub fn resized_size(orig_w: u32, orig_h: u32, in_w: u32, in_h: u32) -> (u32, u32) {
        let (w, h) = (orig_w.max(1) as f64, orig_h.max(1) as f64);
        let r = (in_w as f64 / w).min(in_h as f64 / h);
        // A tiny epsilon so that e.g. 640 * (416/640) lands on 416, not 415.999.
        let nw = ((w * r + 1e-6).floor() as u32).clamp(1, in_w);
        let nh = ((h * r + 1e-6).floor() as u32).clamp(1, in_h);
        (nw, nh)
    }

    /// Map an `[x1, y1, x2, y2]` box from input pixels to original pixels, clipped to the image.
    pub fn to_original(&self, b: [f32; 4]) -> [f32; 4] {
        let (w, h) = (self.orig_w as f32, self.orig_h as f32);
        let x = |v: f32| ((v - self.pad_x) / self.scale_x).clamp(0.0, w);
        let y = |v: f32| ((v - self.pad_y) / self.scale_y).clamp(0.0, h);
        [x(b[0]), y(b[1]), x(b[2]), y(b[3])]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_left_letterbox_maps_back() {
        let lb = Letterbox::new(ResizeMode::LetterboxTopLeft, 640, 480, 416, 416);
        assert_eq!(Letterbox::resized_size(640, 480, 416, 416), (416, 312));
        assert_eq!((lb.pad_x, lb.pad_y), (0.0, 0.0));
        let b = lb.to_original([0.0, 0.0, 416.0, 312.0]);
        assert!(
            (b[2] - 640.0).abs() < 1e-3 && (b[3] - 480.0).abs() < 1e-3,
            "{b:?}"
        );
    }

    #[test]
    fn centre_letterbox_removes_padding_and_clips() {
        let lb = Letterbox::new(ResizeMode::LetterboxCentre, 640, 480, 320, 320);
        assert_eq!((lb.pad_x, lb.pad_y), (0.0, 40.0));
        let b = lb.to_original([-5.0, 40.0, 160.0, 300.0]);
        assert_eq!(b, [0.0, 0.0, 320.0, 480.0]);
    }

    #[test]
    fn stretch_scales_each_axis() {
        let lb = Letterbox::new(ResizeMode::Stretch, 704, 176, 352, 352);
        let b = lb.to_original([176.0, 176.0, 352.0, 352.0]);
        assert_eq!(b, [352.0, 88.0, 704.0, 176.0]);
    }
}
