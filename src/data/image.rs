//! Decoding calibration images (JPEG, PNG) into 8-bit RGB, the way OpenCV-trained models
//! saw their training data.
//!
//! Conversions, and why:
//! - **Greyscale** (8- or 16-bit, with or without alpha) is replicated into three equal
//!   channels, as `cv2.imread(..., IMREAD_COLOR)` does.
//! - **Alpha is dropped**, not composited over a background: OpenCV's `IMREAD_COLOR` drops
//!   it too, so the model saw the stored colour values of transparent pixels.
//! - **16-bit PNG** becomes 8-bit by rounding, `v8 = round(v16 / 257)` (the exact map of
//!   0..65535 onto 0..255). OpenCV keeps the high byte instead (`floor(v16 / 256)`); the two
//!   differ by at most 1 LSB, and rounding is the unbiased choice.
//! - **CMYK JPEG** (4 components, Adobe APP14 marker, as Photoshop and Pillow write them)
//!   is converted by the JPEG decoder (zune-jpeg) with the Adobe convention that the stored
//!   samples are inverted: `R = C' * K' / 255` with `C' = 255 - C` as stored. This is what
//!   libjpeg-based readers (OpenCV, Pillow) produce. YCCK (Adobe transform 2) is converted
//!   to YCbCr first, then the same way.
//! - **EXIF orientation is ignored**: pixels come out in stored order. OpenCV's
//!   `imread` would rotate them unless `IMREAD_IGNORE_ORIENTATION` is given, but training
//!   pipelines for detection datasets (COCO labels are in stored pixel coordinates) use the
//!   stored order, so the calibration set must too.
//!
//! The format is recognised from the file's bytes, not its extension.

use crate::error::{Error, Result};
use image::{DynamicImage, ImageFormat, ImageReader, RgbImage};
use std::io::Cursor;
use std::path::Path;

/// The fix every unreadable-image message ends with.
pub const FIX_FILE: &str = "replace or remove the file";

/// Largest width or height decoded, and the most the decoder may allocate (a 16384 x 16384
/// RGBA image is 1 GiB; calibration photos are a few thousand pixels wide).
pub const MAX_SIDE: u32 = 16384;
pub const MAX_DECODE_BYTES: u64 = 1 << 30;

/// File name extensions (lower case) that count as images when listing a folder.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png"];

/// Decode JPEG or PNG bytes into interleaved 8-bit RGB (conversions in the module docs).
/// `path` only names the file in errors.
pub fn decode_rgb8(bytes: &[u8], path: &Path) -> Result<RgbImage> {
    // Decoder messages may span lines; errors here are one line ending in the fix.
    let unreadable = |reason: String| Error::Image {
        path: path.to_path_buf(),
        msg: format!("{}; {FIX_FILE}", one_line(&reason)),
    };
    if bytes.is_empty() {
        return Err(unreadable("the file is empty".to_string()));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| unreadable(format!("cannot read: {e}")))?;
    match reader.format() {
        Some(ImageFormat::Jpeg) => {
            if !jpeg_has_end_after_scan(bytes) {
                // The decoder would fill the missing part with grey and succeed; a
                // calibration set must not silently contain half-grey images.
                return Err(unreadable(
                    "truncated JPEG (no end-of-image marker after the image data)".to_string(),
                ));
            }
            if !super::jpeg::entropy_data_complete(bytes) {
                // The decoder would fill the blocks past the cut from zero bits, even in its
                // strict mode, and succeed with a partly grey picture.
                return Err(unreadable(
                    "truncated or corrupt JPEG (its image data ends before its last blocks: cut, with an end marker appended, or damaged)".to_string(),
                ));
            }
            // The decoder reads 2-component frames as grey plus alpha; no camera or
            // dataset writes them, so they are refused rather than calibrated as grey.
            if let Some(n) = jpeg_components(bytes).filter(|n| !matches!(n, 1 | 3 | 4)) {
                return Err(unreadable(format!(
                    "a JPEG with {n} colour components (only greyscale, colour and CMYK are images)"
                )));
            }
        }
        Some(ImageFormat::Png) => {}
        Some(other) => {
            return Err(unreadable(format!(
                "{other:?} images are not supported (only JPEG and PNG)"
            )))
        }
        None => {
            return Err(unreadable(
                "not a JPEG or PNG file (unrecognised content)".to_string(),
            ))
        }
    }
    // A few KB can declare a 100000 x 100000 image (a decompression bomb): the decoder
    // refuses dimensions and allocations past these limits before allocating, and the RGB
    // and f32 copies that follow stay bounded too.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = reader;
    reader.limits(limits);
    // `decode` does not apply EXIF orientation (that needs an explicit `apply_orientation`),
    // which is what we want.
    let img = reader
        .decode()
        .map_err(|e| unreadable(format!("cannot decode image (corrupt or truncated?): {e}")))?;
    if img.width() == 0 || img.height() == 0 {
        return Err(unreadable("the image has zero width or height".to_string()));
    }
    Ok(to_rgb8(img))
}

/// The component count of a JPEG's frame header (SOF0..SOF15 but DHT, JPG and DAC), found
/// by walking the segments before the first scan; `None` when there is no frame header.
fn jpeg_components(b: &[u8]) -> Option<u8> {
    let mut i = 2; // after SOI
    while i + 4 <= b.len() && b[i] == 0xFF {
        let marker = b[i + 1];
        match marker {
            0xFF => i += 1,
            0x01 | 0xD0..=0xD7 => i += 2,
            0xD9 | 0xDA => return None,
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => return b.get(i + 9).copied(),
            _ => i += 2 + u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize,
        }
    }
    None
}

/// Whether a JPEG's first scan (SOS) is followed by an end-of-image marker (FF D9).
/// Segments before the scan are skipped by their lengths, so an EXIF thumbnail (inside
/// APP1) cannot stand in for the main image. Entropy-coded data never contains FF D9
/// (an FF there is stuffed as FF 00), and trailing bytes after EOI are tolerated.
fn jpeg_has_end_after_scan(b: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return false;
        }
        let marker = b[i + 1];
        match marker {
            0xFF => i += 1,               // fill byte
            0x01 | 0xD0..=0xD7 => i += 2, // standalone markers
            0xD9 => return false,         // EOI before any scan
            _ => {
                let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
                let next = i + 2 + len;
                if marker == 0xDA {
                    return b
                        .get(next.min(b.len())..)
                        .is_some_and(|rest| rest.windows(2).any(|w| w == [0xFF, 0xD9]));
                }
                i = next;
            }
        }
    }
    false
}

/// Collapse whitespace runs (including newlines) into single spaces.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Convert any decoded image to 8-bit RGB: grey replicated, alpha dropped, 16-bit rounded
/// (`image`'s u16 -> u8 conversion is `(v + 128) / 257`, i.e. round(v / 257)).
fn to_rgb8(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    }
}

/// Whether a path's extension marks it as an image we list from folders.
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::png::PngEncoder;
    use image::{ExtendedColorType, ImageEncoder};

    fn png(w: u32, h: u32, data: &[u8], ct: ExtendedColorType) -> Vec<u8> {
        let mut out = Vec::new();
        PngEncoder::new(&mut out)
            .write_image(data, w, h, ct)
            .unwrap();
        out
    }

    #[test]
    fn greyscale_is_replicated() {
        let bytes = png(2, 1, &[10, 200], ExtendedColorType::L8);
        let img = decode_rgb8(&bytes, Path::new("g.png")).unwrap();
        assert_eq!(img.as_raw(), &[10, 10, 10, 200, 200, 200]);
    }

    #[test]
    fn rgba_drops_alpha_without_compositing() {
        // A fully transparent red pixel stays red (no blending with any background).
        let bytes = png(
            2,
            1,
            &[255, 0, 0, 0, 1, 2, 3, 128],
            ExtendedColorType::Rgba8,
        );
        let img = decode_rgb8(&bytes, Path::new("a.png")).unwrap();
        assert_eq!(img.as_raw(), &[255, 0, 0, 1, 2, 3]);
    }

    #[test]
    fn grey_alpha_drops_alpha() {
        let bytes = png(1, 1, &[77, 0], ExtendedColorType::La8);
        let img = decode_rgb8(&bytes, Path::new("la.png")).unwrap();
        assert_eq!(img.as_raw(), &[77, 77, 77]);
    }

    #[test]
    fn sixteen_bit_rounds_rather_than_truncates() {
        // 2815 = 10*256 + 255: high byte (truncation) gives 10, round(2815/257) = 11.
        // 25828 / 257 = 100.498 -> 100. 65535 -> 255, 0 -> 0, 128 -> 0 (0.498), 129 -> 1.
        let vals: [u16; 6] = [2815, 25828, 65535, 0, 128, 129];
        // PNG stores big-endian samples; the encoder takes native-endian u16 bytes.
        let bytes16: Vec<u8> = vals.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let bytes = png(2, 1, &bytes16, ExtendedColorType::Rgb16);
        let img = decode_rgb8(&bytes, Path::new("x16.png")).unwrap();
        assert_eq!(img.as_raw(), &[11, 100, 255, 0, 0, 1]);
        // 16-bit greyscale too.
        let g: Vec<u8> = [2815u16, 65535]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let bytes = png(2, 1, &g, ExtendedColorType::L16);
        let img = decode_rgb8(&bytes, Path::new("g16.png")).unwrap();
        assert_eq!(img.as_raw(), &[11, 11, 11, 255, 255, 255]);
        // 16-bit RGBA: alpha dropped, colour rounded.
        let rgba: Vec<u8> = [2815u16, 0, 65535, 0]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let bytes = png(1, 1, &rgba, ExtendedColorType::Rgba16);
        let img = decode_rgb8(&bytes, Path::new("a16.png")).unwrap();
        assert_eq!(img.as_raw(), &[11, 0, 255]);
    }

    #[test]
    fn garbage_and_empty_name_the_file() {
        let e = decode_rgb8(b"hello world", Path::new("dir/notes.jpg")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("dir/notes.jpg: "), "{s}");
        assert!(s.contains("not a JPEG or PNG"), "{s}");
        let e = decode_rgb8(b"", Path::new("empty.png")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "empty.png: the file is empty; replace or remove the file"
        );
    }

    #[test]
    fn truncated_jpeg_is_refused() {
        let mut rgb = Vec::new();
        for i in 0..64u32 * 64 {
            rgb.extend_from_slice(&[(i % 251) as u8, (i / 64) as u8 * 4, 7]);
        }
        let mut jpg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 95)
            .write_image(&rgb, 64, 64, ExtendedColorType::Rgb8)
            .unwrap();
        assert!(decode_rgb8(&jpg, Path::new("ok.jpg")).is_ok());
        // Trailing bytes after EOI are fine.
        let mut trailer = jpg.clone();
        trailer.extend_from_slice(b"\xFF\xDAtrailer");
        assert!(decode_rgb8(&trailer, Path::new("trailer.jpg")).is_ok());
        // Cut inside the entropy-coded data.
        let cut = &jpg[..jpg.len() * 3 / 4];
        let e = decode_rgb8(cut, Path::new("cut.jpg"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cut.jpg: truncated JPEG"), "{e}");
    }

    #[test]
    fn extensions() {
        assert!(has_image_extension(Path::new("a/b.JPG")));
        assert!(has_image_extension(Path::new("b.jpeg")));
        assert!(has_image_extension(Path::new("b.png")));
        assert!(!has_image_extension(Path::new("b.txt")));
        assert!(!has_image_extension(Path::new("jpg")));
    }
}
