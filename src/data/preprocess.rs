//! Preprocessing: an 8-bit RGB image becomes one CHW float tensor per the recipe's
//! [`InputContract`], exactly as the shared models' reference pipelines do it.
//!
//! Steps: geometry ([`Letterbox::compute`]) -> resize of the image content -> place it on a
//! canvas filled with `pad_value` -> `x = (pixel * scale - mean[c]) / std[c]` with `c` in
//! `channel_order`. The resized pixels are kept in f32 (OpenCV rounds them to u8 first;
//! the difference is at most 0.5 on the 0..255 scale, below the quantization step of any
//! INT8 input range).
//!
//! Resize modes (the geometry each reference uses):
//! - `letterbox-top-left` (YOLOX `preproc`): `r = min(H/h, W/w)`, content size
//!   `(int(w*r), int(h*r))` truncated, content at the top-left, pad right and bottom.
//! - `letterbox-centre` (Ultralytics `LetterBox`, NanoDet-style centring): same `r`, content
//!   size rounded (`round(w*r)`, ties to even as Python's `round`), content centred, the odd
//!   pad pixel going right/bottom (`left = floor((W - new_w) / 2)`). NanoDet's own demo
//!   warps with `cv2.warpPerspective` using the same scale and centre; that differs from a
//!   resize by a sub-pixel shift, and this mode follows the resize + pad form.
//! - `stretch` (FastestDet): resize to `W x H` ignoring aspect ratio, no pad.
//!
//! Interpolation:
//! - `linear`: OpenCV `INTER_LINEAR` semantics (half-pixel centres, 2-tap triangle, no
//!   antialiasing when shrinking, edge pixels replicated), via fast_image_resize's
//!   fixed-support `Interpolation(Bilinear)` on f32 pixels.
//! - `nearest`: OpenCV `INTER_NEAREST`: `sx = floor(dx * src_w / dst_w)` (no half-pixel
//!   offset), implemented here.
//! - `pil-bilinear`: Pillow's `BILINEAR` (triangle filter widened by the shrink factor, i.e.
//!   antialiased), via fast_image_resize's `Convolution(Bilinear)`.

use super::contract::{ChannelOrder, InputContract, Interpolation, ResizeMode};
use super::image::decode_rgb8;
use crate::error::{Error, Result};
use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::F32x3;
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use ndarray::{Array3, Array4};
use std::cell::RefCell;
use std::path::Path;

/// Where the image content sits in the model input, to map boxes back to the original
/// image: `x_orig = (x_input - pad_left) / scale_x`, likewise for y.
///
/// For the letterbox modes `scale_x == scale_y == r` (the reference's ratio, which is what
/// YOLOX and Ultralytics divide by); for `stretch` they differ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub scale_x: f64,
    pub scale_y: f64,
    /// Left padding in input pixels.
    pub pad_left: u32,
    /// Top padding in input pixels.
    pub pad_top: u32,
    /// Size of the resized content in input pixels (the rest is padding).
    pub content_w: u32,
    pub content_h: u32,
    /// Original image size.
    pub orig_w: u32,
    pub orig_h: u32,
}

impl Letterbox {
    /// The geometry `mode` gives for an `src_w x src_h` image in a `dst_w x dst_h` input.
    pub fn compute(mode: ResizeMode, src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> Letterbox {
        let (sw, sh, dw, dh) = (src_w as f64, src_h as f64, dst_w as f64, dst_h as f64);
        let (orig_w, orig_h) = (src_w, src_h);
        match mode {
            ResizeMode::Stretch => Letterbox {
                scale_x: dw / sw,
                scale_y: dh / sh,
                pad_left: 0,
                pad_top: 0,
                content_w: dst_w,
                content_h: dst_h,
                orig_w,
                orig_h,
            },
            ResizeMode::LetterboxTopLeft => {
                let r = (dh / sh).min(dw / sw);
                // YOLOX: int(w * r), truncation. Never zero, never past the canvas.
                let cw = ((sw * r) as u32).clamp(1, dst_w);
                let ch = ((sh * r) as u32).clamp(1, dst_h);
                Letterbox {
                    scale_x: r,
                    scale_y: r,
                    pad_left: 0,
                    pad_top: 0,
                    content_w: cw,
                    content_h: ch,
                    orig_w,
                    orig_h,
                }
            }
            ResizeMode::LetterboxCentre => {
                let r = (dh / sh).min(dw / sw);
                let cw = ((sw * r).round_ties_even() as u32).clamp(1, dst_w);
                let ch = ((sh * r).round_ties_even() as u32).clamp(1, dst_h);
                Letterbox {
                    scale_x: r,
                    scale_y: r,
                    pad_left: (dst_w - cw) / 2,
                    pad_top: (dst_h - ch) / 2,
                    content_w: cw,
                    content_h: ch,
                    orig_w,
                    orig_h,
                }
            }
        }
    }

    /// Map a point in model-input pixels back to original-image pixels.
    pub fn to_original(&self, x: f64, y: f64) -> (f64, f64) {
        (
            (x - self.pad_left as f64) / self.scale_x,
            (y - self.pad_top as f64) / self.scale_y,
        )
    }

    /// Map an `[x1, y1, x2, y2]` box from model-input pixels to original-image pixels,
    /// clipped to the original image.
    pub fn box_to_original(&self, b: [f32; 4]) -> [f32; 4] {
        let (orig_w, orig_h) = (self.orig_w, self.orig_h);
        let (x1, y1) = self.to_original(b[0] as f64, b[1] as f64);
        let (x2, y2) = self.to_original(b[2] as f64, b[3] as f64);
        let cx = |v: f64| v.clamp(0.0, orig_w as f64) as f32;
        let cy = |v: f64| v.clamp(0.0, orig_h as f64) as f32;
        [cx(x1), cy(y1), cx(x2), cy(y2)]
    }
}

/// Check the parts of a contract preprocessing relies on; the error names the field.
pub fn validate_contract(contract: &InputContract) -> Result<()> {
    let [_, c, h, w] = contract.shape;
    if c != 3 {
        return Err(Error::Contract(format!(
            "input.shape {:?}: channel dimension is {c}, but images give 3 channels; set input.shape to [N, 3, H, W]",
            contract.shape
        )));
    }
    if h == 0 || w == 0 || h > u32::MAX as usize || w > u32::MAX as usize {
        return Err(Error::Contract(format!(
            "input.shape {:?}: height and width must be positive; set input.shape to [N, 3, H, W]",
            contract.shape
        )));
    }
    if let Some(i) = contract
        .std
        .iter()
        .position(|s| *s == 0.0 || !s.is_finite())
    {
        return Err(Error::Contract(format!(
            "input.std[{i}] is {}; every std must be a finite non-zero number",
            contract.std[i]
        )));
    }
    if !contract.scale.is_finite() || contract.mean.iter().any(|m| !m.is_finite()) {
        return Err(Error::Contract(
            "input.scale and input.mean must be finite numbers".to_string(),
        ));
    }
    Ok(())
}

/// Read, decode and preprocess one image file into a `3 x H x W` tensor.
pub fn preprocess_image(path: &Path, contract: &InputContract) -> Result<(Array3<f32>, Letterbox)> {
    let bytes = crate::util::input::read(path, crate::util::input::IMAGE)?;
    preprocess_bytes(&bytes, path, contract)
}

/// Decode (JPEG/PNG bytes) and preprocess; `path` only names the file in errors.
pub fn preprocess_bytes(
    bytes: &[u8],
    path: &Path,
    contract: &InputContract,
) -> Result<(Array3<f32>, Letterbox)> {
    let img = decode_rgb8(bytes, path)?;
    preprocess_rgb8(&img, contract)
}

/// Preprocess a decoded 8-bit RGB image into a `3 x H x W` tensor (channels in the
/// contract's order) and the geometry used.
pub fn preprocess_rgb8(
    img: &RgbImage,
    contract: &InputContract,
) -> Result<(Array3<f32>, Letterbox)> {
    validate_contract(contract)?;
    let (dst_h, dst_w) = (contract.shape[2] as u32, contract.shape[3] as u32);
    let (src_w, src_h) = img.dimensions();
    let lb = Letterbox::compute(contract.resize, src_w, src_h, dst_w, dst_h);
    let (cw, ch) = (lb.content_w as usize, lb.content_h as usize);

    // Resized content, interleaved RGB, 0..255 in f32.
    let content: Vec<[f32; 3]> = match contract.interpolation {
        Interpolation::Nearest => resize_nearest(img, cw, ch),
        Interpolation::Linear => {
            resize_fir(img, cw, ch, ResizeAlg::Interpolation(FilterType::Bilinear))?
        }
        Interpolation::PilBilinear => {
            resize_fir(img, cw, ch, ResizeAlg::Convolution(FilterType::Bilinear))?
        }
    };

    // x = (p * scale - mean) / std  ==  p * mul + add, per output channel.
    let mul: [f32; 3] = std::array::from_fn(|c| contract.scale / contract.std[c]);
    let add: [f32; 3] = std::array::from_fn(|c| -contract.mean[c] / contract.std[c]);
    // Output channel c takes source (RGB) channel src[c].
    let src: [usize; 3] = match contract.channel_order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    let (h, w) = (dst_h as usize, dst_w as usize);
    let mut out = Array3::<f32>::zeros((3, h, w));
    let (pl, pt) = (lb.pad_left as usize, lb.pad_top as usize);
    for c in 0..3 {
        let pad = contract.pad_value * mul[c] + add[c];
        let mut plane = out.index_axis_mut(ndarray::Axis(0), c);
        let plane = plane
            .as_slice_mut()
            .expect("freshly allocated arrays are contiguous");
        plane.fill(pad);
        let s = src[c];
        for y in 0..ch {
            let row = &mut plane[(pt + y) * w + pl..(pt + y) * w + pl + cw];
            let src_row = &content[y * cw..(y + 1) * cw];
            for (o, p) in row.iter_mut().zip(src_row) {
                *o = p[s] * mul[c] + add[c];
            }
        }
    }
    Ok((out, lb))
}

thread_local! {
    // A resizer keeps scratch buffers; one per worker thread avoids reallocating them.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

fn resize_fir(img: &RgbImage, cw: usize, ch: usize, alg: ResizeAlg) -> Result<Vec<[f32; 3]>> {
    let (sw, sh) = img.dimensions();
    let src_px: Vec<F32x3> = img
        .as_raw()
        .chunks_exact(3)
        .map(|p| F32x3::new([p[0] as f32, p[1] as f32, p[2] as f32]))
        .collect();
    let src = TypedImageRef::new(sw, sh, &src_px)
        .map_err(|e| Error::internal(format!("resize: source buffer: {e}")))?;
    let mut dst = TypedImage::<F32x3>::new(cw as u32, ch as u32);
    let opts = ResizeOptions::new().resize_alg(alg).use_alpha(false);
    RESIZER
        .with(|r| r.borrow_mut().resize_typed(&src, &mut dst, &opts))
        .map_err(|e| Error::internal(format!("resize {sw}x{sh} -> {cw}x{ch}: {e}")))?;
    Ok(dst.pixels().iter().map(|p| p.0).collect())
}

/// OpenCV `INTER_NEAREST`: `sx = min(floor(dx * ifx), w - 1)` with `ifx = 1 / (dst / src)`
/// computed in f64 as `cv::resize` does.
fn resize_nearest(img: &RgbImage, cw: usize, ch: usize) -> Vec<[f32; 3]> {
    let (sw, sh) = (img.width() as usize, img.height() as usize);
    let ifx = 1.0 / (cw as f64 / sw as f64);
    let ify = 1.0 / (ch as f64 / sh as f64);
    let xs: Vec<usize> = (0..cw)
        .map(|x| ((x as f64 * ifx).floor() as usize).min(sw - 1))
        .collect();
    let raw = img.as_raw();
    let mut out = Vec::with_capacity(cw * ch);
    for y in 0..ch {
        let sy = ((y as f64 * ify).floor() as usize).min(sh - 1);
        for &sx in &xs {
            let i = (sy * sw + sx) * 3;
            out.push([raw[i] as f32, raw[i + 1] as f32, raw[i + 2] as f32]);
        }
    }
    out
}

/// Convert a float tensor to f16 for models whose input dtype is `float16`.
pub fn to_f16(a: &Array4<f32>) -> Array4<half::f16> {
    a.mapv(half::f16::from_f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::InputDtype;

    fn contract(resize: ResizeMode, h: usize, w: usize) -> InputContract {
        InputContract {
            tensor: "images".into(),
            shape: [1, 3, h, w],
            dtype: InputDtype::Float32,
            channel_order: ChannelOrder::Bgr,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
            resize,
            pad_value: 114.0,
            interpolation: Interpolation::Linear,
        }
    }

    #[test]
    fn geometry_top_left_truncates_like_yolox() {
        // 640x427 into 416x416: r = 0.65, int(427 * 0.65) = int(277.55) = 277.
        let lb = Letterbox::compute(ResizeMode::LetterboxTopLeft, 640, 427, 416, 416);
        assert_eq!(
            (lb.content_w, lb.content_h, lb.pad_left, lb.pad_top),
            (416, 277, 0, 0)
        );
        assert_eq!(lb.scale_x, 0.65);
    }

    #[test]
    fn geometry_centre_rounds_and_splits_pads() {
        // 640x427 into 320x320: r = 0.5, round(213.5) = 214 (ties to even), pads 53 / 53.
        let lb = Letterbox::compute(ResizeMode::LetterboxCentre, 640, 427, 320, 320);
        assert_eq!(
            (lb.content_w, lb.content_h, lb.pad_left, lb.pad_top),
            (320, 214, 0, 53)
        );
        // Odd leftover: 100x51 into 10x10 -> r = 0.1, 5.1 -> 5, pad 5 -> top 2, bottom 3.
        let lb = Letterbox::compute(ResizeMode::LetterboxCentre, 100, 51, 10, 10);
        assert_eq!((lb.content_h, lb.pad_top), (5, 2));
        let (x, y) = lb.to_original(5.0, 2.0);
        assert_eq!((x, y), (50.0, 0.0));
    }

    #[test]
    fn stretch_has_per_axis_scale() {
        let lb = Letterbox::compute(ResizeMode::Stretch, 704, 176, 352, 352);
        assert_eq!((lb.scale_x, lb.scale_y), (0.5, 2.0));
        assert_eq!(
            lb.box_to_original([0.0, 0.0, 352.0, 352.0]),
            [0.0, 0.0, 704.0, 176.0]
        );
    }

    #[test]
    fn pad_channel_order_and_normalisation() {
        // 2x1 image (red, blue) into a 4x4 top-left letterbox: content 4x2, rows 2..4 padded.
        let img = RgbImage::from_raw(2, 1, vec![255, 0, 0, 0, 0, 255]).unwrap();
        let mut c = contract(ResizeMode::LetterboxTopLeft, 4, 4);
        c.interpolation = Interpolation::Nearest;
        c.mean = [1.0, 2.0, 3.0];
        c.std = [2.0, 2.0, 2.0];
        let (t, lb) = preprocess_rgb8(&img, &c).unwrap();
        assert_eq!((lb.content_w, lb.content_h), (4, 2));
        // BGR: channel 0 is blue. Left half red (blue = 0), right half blue (255).
        assert_eq!(t[[0, 0, 0]], (0.0 - 1.0) / 2.0);
        assert_eq!(t[[0, 1, 3]], (255.0 - 1.0) / 2.0);
        assert_eq!(t[[2, 0, 0]], (255.0 - 3.0) / 2.0);
        // Padding rows carry the pad value through the same normalisation.
        assert_eq!(t[[1, 3, 2]], (114.0 - 2.0) / 2.0);
    }

    #[test]
    fn linear_upscale_matches_hand_computed_opencv_values() {
        // 2x1 -> 4x1 with INTER_LINEAR: sx = (dx + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25
        // -> clamp, 0.75*a + 0.25*b, 0.25*a + 0.75*b, clamp.
        let img = RgbImage::from_raw(2, 1, vec![0, 0, 0, 100, 100, 100]).unwrap();
        let mut c = contract(ResizeMode::Stretch, 1, 4);
        c.channel_order = ChannelOrder::Rgb;
        let (t, _) = preprocess_rgb8(&img, &c).unwrap();
        let row: Vec<f32> = t.index_axis(ndarray::Axis(0), 0).iter().copied().collect();
        for (a, b) in row.iter().zip([0.0, 25.0, 75.0, 100.0]) {
            assert!((a - b).abs() < 1e-4, "{row:?}");
        }
    }

    #[test]
    fn bad_contract_is_named() {
        let mut c = contract(ResizeMode::Stretch, 4, 4);
        c.shape[1] = 1;
        let img = RgbImage::new(2, 2);
        let e = preprocess_rgb8(&img, &c).unwrap_err().to_string();
        assert!(e.contains("input.shape"), "{e}");
        let mut c = contract(ResizeMode::Stretch, 4, 4);
        c.std[1] = 0.0;
        let e = preprocess_rgb8(&img, &c).unwrap_err().to_string();
        assert!(e.contains("input.std[1]"), "{e}");
    }

    #[test]
    fn f16_conversion() {
        let a = Array4::from_elem((1, 3, 2, 2), 0.5f32);
        assert!(to_f16(&a).iter().all(|v| v.to_f32() == 0.5));
    }
}
