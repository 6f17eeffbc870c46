//! Resize and Upsample at opset 13.
//!
//! - Resize-11/12 take `roi` and `scales` always, an empty tensor standing for "unused"; at
//!   13 both are optional and ONNX Runtime refuses a `scales` next to `sizes` unless it can
//!   see the tensor is empty (it cannot when the initializer is also a graph input, as older
//!   exporters write). A constant with no elements becomes an omitted input; every attribute
//!   stays, since Resize-13 reads them alike, except `tf_half_pixel_for_nn`, which 13 drops.
//! - Resize-10 and Upsample (9, deprecated from 10) map output to input coordinates as
//!   `asymmetric` does. ONNX Runtime rounds their nearest neighbour down when upscaling and up
//!   when downscaling; Resize-13 has one `nearest_mode` per node, so it is `floor` or `ceil`
//!   after the constant scales, and a node that does both is refused.

use super::super::{attr, string_attr, NodeId, Patch};
use crate::error::Result;

/// Rewrite node `id` (of a model at opset `from`) if it is a Resize or an Upsample.
pub(super) fn upgrade(p: &mut Patch, id: NodeId, from: i64) -> Result<()> {
    let g = p.graph();
    let n = g.node(id);
    match n.op_type.as_str() {
        "Resize" if from >= 11 => {
            if g.attr_string(id, "coordinate_transformation_mode")?
                == Some(b"tf_half_pixel_for_nn".as_slice())
            {
                return Err(g.error(
                    id,
                    "Resize mode tf_half_pixel_for_nn does not exist at opset 13; re-export the model with opset 13",
                ));
            }
            g.check_arity(id)?;
            let empty = |slot: usize| {
                g.optional_input(id, slot)
                    .and_then(|t| g.constant(t))
                    .is_some_and(|t| super::super::tensor::element_count(&t.dims) == Ok(0))
            };
            let (roi, scales) = (empty(1), empty(2));
            if scales && g.optional_input(id, 3).is_none() {
                return Err(g.error(
                    id,
                    "has an empty `scales` and no `sizes`; the model is malformed: re-export it",
                ));
            }
            for (slot, omit) in [(1, roi), (2, scales)] {
                if omit {
                    p.set_input(id, slot, "");
                }
            }
            Ok(())
        }
        "Resize" | "Upsample" => {
            g.check_arity(id)?;
            let x = g.input(id, 0)?;
            let scales = g.input(id, 1)?;
            let nearest = match g.attr_string(id, "mode")? {
                None | Some(b"nearest") => true,
                Some(b"linear") => false,
                Some(m) => {
                    return Err(g.error(
                        id,
                        format!(
                            "mode '{}' is not one of nearest, linear; the model is malformed: re-export it",
                            String::from_utf8_lossy(m)
                        ),
                    ))
                }
            };
            let rounding = if nearest {
                Some(nearest_rounding(p, id, scales)?)
            } else {
                None
            };
            let node = p.node_mut(id);
            node.op_type = "Resize".into();
            node.input = vec![x.to_string(), String::new(), scales.to_string()];
            attr::take(node, "coordinate_transformation_mode");
            attr::take(node, "nearest_mode");
            node.attribute
                .push(string_attr("coordinate_transformation_mode", "asymmetric"));
            if let Some(r) = rounding {
                node.attribute.push(string_attr("nearest_mode", r));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The Resize-13 `nearest_mode` that rounds as ONNX Runtime's Resize-10 and Upsample do.
fn nearest_rounding(p: &Patch, id: NodeId, scales: &str) -> Result<&'static str> {
    let g = p.graph();
    let Some((_, values)) = g.constant_f32(scales)? else {
        // Upsample's scales are >= 1 by definition: it upscales.
        if g.node(id).op_type == "Upsample" {
            return Ok("floor");
        }
        return Err(g.error(
            id,
            "nearest Resize-10 with computed scales: whether it rounds up or down at opset 13 depends on them; re-export the model with opset 13",
        ));
    };
    if values.iter().all(|&s| s >= 1.0) {
        Ok("floor")
    } else if values.iter().all(|&s| s <= 1.0) {
        Ok("ceil")
    } else {
        Err(g.error(
            id,
            format!("scales {values:?} upscale some axes and downscale others, which round differently before opset 11 and alike at 13; re-export the model with opset 13"),
        ))
    }
}
