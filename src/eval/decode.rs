//! Raw model outputs to detections in original-image pixels, one decoder per head family.
//!
//! Every decoder returns *candidates*: boxes whose score passes the threshold, already mapped
//! back through the [`Letterbox`] and clipped to the image. [`Decoder::decode`] adds class-aware
//! NMS and the per-image top-k cut. Decoders handle batch size 1 (what `eval` runs).

use super::detection::Detection;
use super::nms::{nms_class_aware, top_k};
use crate::data::preprocess::Letterbox;
use crate::error::{Error, Result};
use crate::recipe::Decoder;
use ndarray::{ArrayD, ArrayView, ArrayViewD, Axis, Ix2, Ix3};

/// Thresholds for turning raw outputs into the detections mAP is computed on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeParams {
    /// Minimum score of a candidate (0.001 for COCO-style evaluation).
    pub score_threshold: f32,
    /// IoU above which a lower-scored box of the same class is suppressed.
    pub iou_threshold: f32,
    /// Keep at most this many detections per image, best first.
    pub max_detections: usize,
    /// Emit every class above the threshold for a box (instead of only its best class).
    pub multi_label: bool,
}

impl Default for DecodeParams {
    fn default() -> Self {
        DecodeParams {
            score_threshold: 0.001,
            iou_threshold: 0.65,
            max_detections: 100,
            multi_label: false,
        }
    }
}

/// Feature-map strides of the YOLOX and NanoDet heads.
const STRIDES: [usize; 3] = [8, 16, 32];
/// NanoDet's GFL head: bins per box side (`reg_max + 1`).
const NANODET_BINS: usize = 8;

impl Decoder {
    /// Candidates (score above threshold, before NMS) in original-image pixels.
    ///
    /// `outputs` are the model outputs by name (extra outputs are ignored); `input_hw` is the
    /// network input's height and width; `lb` says how the image was placed in it.
    pub fn candidates(
        &self,
        outputs: &[(String, ArrayD<f32>)],
        input_hw: (usize, usize),
        lb: &Letterbox,
        params: &DecodeParams,
    ) -> Result<Vec<Detection>> {
        match self {
            Decoder::Yolox => yolox(outputs, input_hw, lb, params),
            Decoder::Nanodet => nanodet(outputs, input_hw, lb, params),
            Decoder::Fastestdet => fastestdet(outputs, input_hw, lb, params),
            Decoder::Yolov8 => yolov8(outputs, lb, params),
        }
    }

    /// Final detections: candidates, class-aware NMS, then the best `max_detections`.
    pub fn decode(
        &self,
        outputs: &[(String, ArrayD<f32>)],
        input_hw: (usize, usize),
        lb: &Letterbox,
        params: &DecodeParams,
    ) -> Result<Vec<Detection>> {
        let cands = self.candidates(outputs, input_hw, lb, params)?;
        let mut kept = nms_class_aware(cands, params.iou_threshold);
        top_k(&mut kept, params.max_detections);
        Ok(kept)
    }
}

/// Push the best class (or every class above threshold with `multi_label`) for one box.
fn push_classes(
    out: &mut Vec<Detection>,
    bbox: [f32; 4],
    nc: usize,
    params: &DecodeParams,
    score: impl Fn(usize) -> f32,
) {
    if params.multi_label {
        for c in 0..nc {
            let s = score(c);
            if s > params.score_threshold {
                out.push(Detection {
                    bbox,
                    score: s,
                    class: c as u32,
                });
            }
        }
    } else {
        let mut best = (0usize, f32::NEG_INFINITY);
        for c in 0..nc {
            let s = score(c);
            if s > best.1 {
                best = (c, s);
            }
        }
        if best.1 > params.score_threshold {
            out.push(Detection {
                bbox,
                score: best.1,
                class: best.0 as u32,
            });
        }
    }
}

fn names(outputs: &[(String, ArrayD<f32>)]) -> String {
    outputs
        .iter()
        .map(|(n, a)| format!("{n} {:?}", a.shape()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Drop a leading batch dimension of 1; refuse a real batch.
fn unbatch<'a>(name: &str, a: &'a ArrayD<f32>, rank: usize) -> Result<ArrayViewD<'a, f32>> {
    let v = a.view();
    if v.ndim() == rank + 1 {
        if v.shape()[0] != 1 {
            return Err(Error::Contract(format!(
                "output {name} has batch {} but detection decoding handles batch 1; set input.shape N to 1",
                v.shape()[0]
            )));
        }
        Ok(v.index_axis_move(Axis(0), 0))
    } else {
        Ok(v)
    }
}

/// The first output whose shape `fits`, without its batch axis, as a rank-`D` view. The
/// error names the decoder, the shape it expected and the model's actual outputs.
fn output_by_shape<'a, D: ndarray::Dimension>(
    outputs: &'a [(String, ArrayD<f32>)],
    decoder: &str,
    expected: &str,
    fits: impl Fn(&[usize]) -> bool,
) -> Result<ArrayView<'a, f32, D>> {
    let (name, arr) = outputs.iter().find(|(_, a)| fits(a.shape())).ok_or_else(|| {
        Error::Contract(format!(
            "{decoder} decoder: no output of shape {expected} (outputs: {}); check the recipe's decoder and input.shape",
            names(outputs)
        ))
    })?;
    let rank = D::NDIM.unwrap_or(arr.ndim());
    unbatch(name, arr, rank)?
        .into_dimensionality::<D>()
        .map_err(|e| Error::Contract(format!("{decoder} output {name}: {e}")))
}

fn grid_cells(input_hw: (usize, usize)) -> usize {
    STRIDES
        .iter()
        .map(|s| input_hw.0.div_ceil(*s) * input_hw.1.div_ceil(*s))
        .sum()
}

fn yolox(
    outputs: &[(String, ArrayD<f32>)],
    input_hw: (usize, usize),
    lb: &Letterbox,
    params: &DecodeParams,
) -> Result<Vec<Detection>> {
    let cells = grid_cells(input_hw);
    let expected = format!(
        "1x{cells}x(5+classes) for input {}x{}",
        input_hw.0, input_hw.1
    );
    let o = output_by_shape::<Ix2>(outputs, "YOLOX", &expected, |s| {
        s.len() >= 2 && s[s.len() - 2] == cells && s[s.len() - 1] > 5
    })?;
    let nc = o.shape()[1] - 5;
    let mut out = Vec::new();
    let mut row = 0;
    for s in STRIDES {
        let (gh, gw) = (input_hw.0.div_ceil(s), input_hw.1.div_ceil(s));
        for gy in 0..gh {
            for gx in 0..gw {
                let r = o.row(row);
                row += 1;
                let obj = r[4];
                if obj <= params.score_threshold {
                    continue; // score = obj * class <= obj
                }
                let cx = (r[0] + gx as f32) * s as f32;
                let cy = (r[1] + gy as f32) * s as f32;
                let w = r[2].exp() * s as f32;
                let h = r[3].exp() * s as f32;
                let bbox =
                    lb.box_to_original([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]);
                push_classes(&mut out, bbox, nc, params, |c| obj * r[5 + c]);
            }
        }
    }
    Ok(out)
}

fn nanodet(
    outputs: &[(String, ArrayD<f32>)],
    input_hw: (usize, usize),
    lb: &Letterbox,
    params: &DecodeParams,
) -> Result<Vec<Detection>> {
    let reg_cols = 4 * NANODET_BINS;
    let mut out = Vec::new();
    for s in STRIDES {
        let (gh, gw) = (input_hw.0.div_ceil(s), input_hw.1.div_ceil(s));
        let n = gh * gw;
        // The exported names do not say which tensor is which: match by shape.
        let level: Vec<(&String, ArrayViewD<f32>)> = outputs
            .iter()
            .filter_map(|(name, a)| {
                let v = unbatch(name, a, 2).ok()?;
                (v.ndim() == 2 && v.shape()[0] == n).then_some((name, v))
            })
            .collect();
        let reg = level.iter().find(|(_, v)| v.shape()[1] == reg_cols);
        let cls = level.iter().find(|(_, v)| v.shape()[1] != reg_cols);
        let (Some((_, reg)), Some((_, cls))) = (reg, cls) else {
            return Err(Error::Contract(format!(
                "NanoDet decoder: for stride {s} expected one {n}x{reg_cols} box tensor and one {n}xclasses score tensor (outputs: {}); check the recipe's decoder and input.shape",
                names(outputs)
            )));
        };
        let reg = reg
            .view()
            .into_dimensionality::<Ix2>()
            .expect("rank checked");
        let cls = cls
            .view()
            .into_dimensionality::<Ix2>()
            .expect("rank checked");
        let nc = cls.shape()[1];
        for i in 0..n {
            let row = cls.row(i);
            // A plain slice: ndarray indexing per class is slow in unoptimised test builds.
            let owned;
            let scores: &[f32] = match row.as_slice() {
                Some(s) => s,
                None => {
                    owned = row.to_vec();
                    &owned
                }
            };
            if scores.iter().all(|&v| v <= params.score_threshold) {
                continue;
            }
            let (gy, gx) = (i / gw, i % gw);
            // Cell centre (x + 0.5) * s, as NanoDet's GFL head trains with. The `x * s + (s - 1) / 2`
            // of some C++/OpenCV demos scores lower on coco128 (0.303 vs 0.307 mAP@0.5:0.95), and
            // the cell corner `x * s` far lower (0.146).
            let cx = (gx as f32 + 0.5) * s as f32;
            let cy = (gy as f32 + 0.5) * s as f32;
            let r = reg.row(i);
            let mut d = [0f32; 4];
            for (side, dist) in d.iter_mut().enumerate() {
                let bins: [f32; NANODET_BINS] = std::array::from_fn(|k| r[side * NANODET_BINS + k]);
                *dist = softmax_expectation(&bins) * s as f32;
            }
            let bbox = lb.box_to_original([cx - d[0], cy - d[1], cx + d[2], cy + d[3]]);
            push_classes(&mut out, bbox, nc, params, |c| scores[c]);
        }
    }
    Ok(out)
}

/// `softmax(bins) · [0, 1, ..., n-1]`: the expected distance in strides.
fn softmax_expectation(bins: &[f32]) -> f32 {
    let m = bins.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut num, mut den) = (0f32, 0f32);
    for (k, &b) in bins.iter().enumerate() {
        let e = (b - m).exp();
        num += e * k as f32;
        den += e;
    }
    num / den
}

fn fastestdet(
    outputs: &[(String, ArrayD<f32>)],
    input_hw: (usize, usize),
    lb: &Letterbox,
    params: &DecodeParams,
) -> Result<Vec<Detection>> {
    let o = output_by_shape::<Ix3>(outputs, "FastestDet", "1x(5+classes)xHxW", |s| {
        s.len() == 4 && s[1] > 5
    })?;
    let (ch, gh, gw) = o.dim();
    let nc = ch - 5;
    let (in_h, in_w) = (input_hw.0 as f32, input_hw.1 as f32);
    let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
    let mut out = Vec::new();
    for gy in 0..gh {
        for gx in 0..gw {
            let obj = o[[0, gy, gx]];
            if obj <= 0.0 {
                continue;
            }
            let objw = obj.powf(0.6);
            // Centre = cell + tanh(t) in cells; size = sigmoid(t) of the whole input.
            let cx = (gx as f32 + o[[1, gy, gx]].tanh()) / gw as f32 * in_w;
            let cy = (gy as f32 + o[[2, gy, gx]].tanh()) / gh as f32 * in_h;
            let w = sigmoid(o[[3, gy, gx]]) * in_w;
            let h = sigmoid(o[[4, gy, gx]]) * in_h;
            let bbox = lb.box_to_original([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]);
            push_classes(&mut out, bbox, nc, params, |c| {
                objw * o[[5 + c, gy, gx]].max(0.0).powf(0.4)
            });
        }
    }
    Ok(out)
}

fn yolov8(
    outputs: &[(String, ArrayD<f32>)],
    lb: &Letterbox,
    params: &DecodeParams,
) -> Result<Vec<Detection>> {
    let o = output_by_shape::<Ix2>(outputs, "YOLOv8", "1x(4+classes)xN", |s| {
        s.len() == 3 && s[1].min(s[2]) > 4
    })?;
    // Ultralytics exports (4+nc) x N with N anchors >> channels; accept the transpose too.
    let o = if o.shape()[0] <= o.shape()[1] {
        o
    } else {
        o.reversed_axes()
    };
    let (ch, n) = o.dim();
    let nc = ch - 4;
    let mut out = Vec::new();
    for i in 0..n {
        let col = o.column(i);
        let (cx, cy, w, h) = (col[0], col[1], col[2], col[3]);
        let bbox = lb.box_to_original([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]);
        push_classes(&mut out, bbox, nc, params, |c| col[4 + c]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::ResizeMode;
    use ndarray::{Array2, Array3, Array4};

    fn identity(w: u32, h: u32) -> Letterbox {
        Letterbox::compute(ResizeMode::Stretch, w, h, w, h)
    }

    /// Decode with default parameters; exactly one detection must come out, with this box.
    fn single(
        d: Decoder,
        outs: &[(String, ArrayD<f32>)],
        hw: (usize, usize),
        lb: &Letterbox,
        bbox: [f32; 4],
    ) -> Detection {
        let dets = d.decode(outs, hw, lb, &DecodeParams::default()).unwrap();
        assert_eq!(dets.len(), 1, "{dets:?}");
        let close = dets[0]
            .bbox
            .iter()
            .zip(bbox)
            .all(|(x, y)| (x - y).abs() < 1e-3);
        assert!(close, "{:?} != {bbox:?}", dets[0].bbox);
        dets[0]
    }

    #[test]
    fn yolox_cell_decodes_to_box() {
        // 64x64 input: 8x8 + 4x4 + 2x2 = 84 cells; set cell (x=2, y=1) of stride 16.
        let mut o = Array3::<f32>::zeros((1, 84, 85));
        let row = 64 + 4 + 2;
        o[[0, row, 0]] = 0.5; // dx
        o[[0, row, 1]] = 0.25; // dy
        o[[0, row, 2]] = 0.0; // log w -> w = 16
        o[[0, row, 3]] = 1f32.ln(); // h = 16
        o[[0, row, 4]] = 0.8; // obj
        o[[0, row, 5 + 7]] = 0.5; // class 7
        let outs = vec![("output".to_string(), o.into_dyn())];
        // centre ((2.5) * 16, (1.25) * 16) = (40, 20), size 16.
        let want = [32.0, 12.0, 48.0, 28.0];
        let d = single(Decoder::Yolox, &outs, (64, 64), &identity(64, 64), want);
        assert_eq!(d.class, 7);
        assert!((d.score - 0.4).abs() < 1e-6);
    }

    #[test]
    fn yolov8_reads_channels_first_and_maps_letterbox() {
        let mut o = Array3::<f32>::zeros((1, 4 + 3, 10));
        for (k, v) in [100.0, 80.0, 40.0, 20.0].into_iter().enumerate() {
            o[[0, k, 4]] = v;
        }
        o[[0, 4 + 2, 4]] = 0.9;
        // 320x240 image in a 160x160 centre letterbox: r = 0.5, pad_y = 20.
        let lb = Letterbox::compute(ResizeMode::LetterboxCentre, 320, 240, 160, 160);
        let outs = vec![("output0".to_string(), o.into_dyn())];
        let want = [160.0, 100.0, 240.0, 140.0];
        let d = single(Decoder::Yolov8, &outs, (160, 160), &lb, want);
        assert_eq!(d.class, 2);
    }

    #[test]
    fn fastestdet_centre_is_cell_plus_tanh() {
        let mut o = Array4::<f32>::zeros((1, 85, 4, 4));
        o[[0, 0, 1, 2]] = 1.0; // obj
        o[[0, 3, 1, 2]] = 0.0; // sigmoid(0) = 0.5 of the width
        o[[0, 4, 1, 2]] = 0.0;
        o[[0, 5 + 3, 1, 2]] = 0.5;
        let outs = vec![("758".to_string(), o.into_dyn())];
        let lb = Letterbox::compute(ResizeMode::Stretch, 200, 100, 64, 64);
        // centre (2/4, 1/4) of the 200x100 image = (100, 25), size (100, 50).
        let want = [50.0, 0.0, 150.0, 50.0];
        let d = single(Decoder::Fastestdet, &outs, (64, 64), &lb, want);
        assert!((d.score - 0.5f32.powf(0.4)).abs() < 1e-6);
    }

    #[test]
    fn nanodet_matches_outputs_by_shape_not_name() {
        // 32x32 input: levels of 16, 4 and 1 cells; names deliberately misleading.
        let cls = |n| Array2::<f32>::zeros((n, 80));
        let reg = |n| Array2::<f32>::zeros((n, 32));
        let mut c0 = cls(16);
        c0[[5, 9]] = 0.7; // cell (x=1, y=1) of stride 8, class 9
        let outs = vec![
            ("cls_score0".to_string(), c0.into_dyn()),
            ("bbox_pred0".to_string(), cls(4).into_dyn()),
            ("cls_score1".to_string(), cls(1).into_dyn()),
            ("bbox_pred1".to_string(), reg(16).into_dyn()),
            ("cls_score2".to_string(), reg(4).into_dyn()),
            ("bbox_pred2".to_string(), reg(1).into_dyn()),
        ];
        // Uniform bins: expected distance 3.5 strides = 28 px from centre (12, 12).
        let lb = identity(32, 32);
        let want = [0.0, 0.0, 32.0, 32.0];
        let d = single(Decoder::Nanodet, &outs, (32, 32), &lb, want);
        assert_eq!(d.class, 9);
        let missing = Decoder::Nanodet.decode(&outs[..5], (32, 32), &lb, &Default::default());
        assert!(missing.unwrap_err().to_string().contains("stride 32"));
    }
}
