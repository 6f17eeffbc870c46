//! The last check before a rewritten model is written: ONNX Runtime must be able to create a
//! session from it. A refusal becomes a one-line error naming the model and the node ONNX
//! Runtime names, so a model that a rewrite broke is never written.

use super::OrtSession;
use crate::error::{Error, Result};
use crate::onnx::Model;

const FIX: &str = "it was not written: a trtforge rewrite (opset upgrade, Q/DQ or FP16) made \
a model ONNX Runtime refuses; report the node to trtforge (re-exporting at opset 13 avoids \
the opset upgrade)";

/// `Ok` when ONNX Runtime loads `model`. Without ONNX Runtime on the machine (a TensorRT-only
/// FP16 build) nothing can be checked: a warning, and `Ok`.
pub fn check_loads(model: &Model) -> Result<()> {
    match OrtSession::from_model(model, &[]) {
        Ok(_) => Ok(()),
        Err(Error::Unavailable { why, .. }) => {
            log::warn!(
                "{}: not checked with ONNX Runtime before writing ({why})",
                model.path.display()
            );
            Ok(())
        }
        Err(Error::Ort { source, .. }) => Err(Error::Onnx {
            path: model.path.clone(),
            msg: refusal(&source.to_string()),
        }),
        Err(e) => Err(e),
    }
}

/// ONNX Runtime's message on one line, led by the node it names (`Node (NAME) Op (OP)` from
/// shape inference, `In Node, ("NAME", OP, ...` from graph resolution), else as it is.
fn refusal(msg: &str) -> String {
    let line = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    let between = |s: &str, open: &str, close: &str| -> Option<String> {
        let start = s.find(open)? + open.len();
        let len = s[start..].find(close)?;
        Some(s[start..start + len].to_string())
    };
    let node = between(&line, "Node (", ")")
        .map(|name| (name, between(&line, "Op (", ")")))
        .or_else(|| {
            let inner = between(&line, "In Node, (", ")")?;
            let mut parts = inner
                .split(',')
                .map(|p| p.trim().trim_matches('"').to_string());
            Some((parts.next()?, parts.next()))
        });
    match node {
        Some((name, op)) => {
            let name = if name.is_empty() {
                "an unnamed node".to_string()
            } else {
                format!("node '{name}'")
            };
            let op = op.map(|o| format!(" ({o})")).unwrap_or_default();
            format!("{name}{op}: ONNX Runtime refuses the rewritten model: {line}; {FIX}")
        }
        None => format!("ONNX Runtime refuses the rewritten model: {line}; {FIX}"),
    }
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn the_node_ort_names_leads_the_message() {
        let m = refusal("Node (rz) Op (Resize) [ShapeInferenceError] Either `sizes` or `scales`\nmust be provided");
        assert!(m.starts_with("node 'rz' (Resize): "), "{m}");
        assert!(!m.contains('\n') && m.contains("not written"), "{m}");
        let m = refusal(
            r#"This is an invalid model. In Node, ("up", Upsample, "", -1) : ("x": tensor(float),) -> ("y": tensor(float),) , Error Op registered for Upsample is deprecated"#,
        );
        assert!(m.starts_with("node 'up' (Upsample): "), "{m}");
        let m = refusal(r#"In Node, ("", Upsample, "", -1) : deprecated"#);
        assert!(m.starts_with("an unnamed node (Upsample): "), "{m}");
        let m = refusal("something else");
        assert!(
            m.starts_with("ONNX Runtime refuses the rewritten model: something else;"),
            "{m}"
        );
    }
}
