//! `matrix plan`'s output for the CI engine that fans the cells out: trtforge plans and
//! runs one cell; GitHub Actions, GitLab CI or Kubernetes schedule them on labelled runners.
//! - `json`: the cells with everything the others are made of;
//! - `github`: an object for `strategy.matrix` through `fromJSON` (an `include` list, each
//!   entry with its `runs-on` labels);
//! - `gitlab`: a child pipeline, one job per cell with its runner `tags`;
//! - `k8s`: one Indexed Job per device class (the cell ids in `TRTFORGE_CELLS`, one per
//!   completion index), scheduled by a node label, on the NVIDIA container runtime.

use super::cell::Cell;
use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The node label Kubernetes cells select their device class by.
pub const K8S_DEVICE_LABEL: &str = "trtforge.dev/device-class";

fn entry(c: &Cell) -> Value {
    json!({
        "cell": c.id,
        "name": c.name,
        "recipe": c.recipe.path.display().to_string(),
        "precision": c.precision.name(),
        "target": c.target.device,
        "accelerator": c.accelerator.name(),
        "jetpack": c.target.jetpack,
        "tensorrt": c.target.tensorrt.to_string(),
        "runs-on": c.target.runner,
    })
}

pub fn json(cells: &[&Cell], matrix: &Path) -> Value {
    json!({
        "matrix": matrix.display().to_string(),
        "cells": cells.iter().map(|c| entry(c)).collect::<Vec<_>>(),
    })
}

pub fn github(cells: &[&Cell]) -> Value {
    json!({ "include": cells.iter().map(|c| entry(c)).collect::<Vec<_>>() })
}

fn yaml(v: &Value) -> Result<String> {
    serde_yaml_ng::to_string(v).map_err(|e| Error::internal(format!("YAML: {e}")))
}

/// The child pipeline. `store` is the store's path in the job's checkout.
pub fn gitlab(cells: &[&Cell], matrix: &Path, store: &Path) -> Result<String> {
    let mut doc = serde_json::Map::new();
    doc.insert("stages".into(), json!(["cells"]));
    if cells.is_empty() {
        // A pipeline needs at least one job.
        doc.insert(
            "no-cells".into(),
            json!({"stage": "cells", "script": ["echo nothing to build: every cell has a result in the store"]}),
        );
    }
    for c in cells {
        doc.insert(
            format!("cell-{}", &c.id[..12]),
            json!({
                "stage": "cells",
                "tags": c.target.runner,
                "variables": {"TRTFORGE_CELL": c.id},
                "needs": [{"pipeline": "$PARENT_PIPELINE_ID", "job": "prepare"}],
                "script": [format!(
                    "trtforge matrix run {} --cell $TRTFORGE_CELL --store {}",
                    matrix.display(),
                    store.display()
                )],
                "artifacts": {"paths": [format!("{}/cells/{}/", store.display(), c.id)], "when": "always"},
            }),
        );
    }
    yaml(&Value::Object(doc))
}

/// One Indexed Job per device class. `matrix` is the matrix file's path inside the image;
/// `parallelism`: cells of one class at once (1 unless the class has that many boards: two
/// cells on one board share its GPU and distort each other's timings).
pub fn k8s(cells: &[&Cell], matrix: &Path, image: &str, parallelism: usize) -> Result<String> {
    let mut by_class: BTreeMap<&str, Vec<&Cell>> = BTreeMap::new();
    for c in cells {
        by_class.entry(&c.target.device).or_default().push(c);
    }
    let mut out = String::new();
    for (class, cs) in by_class {
        let ids: Vec<&str> = cs.iter().map(|c| c.id.as_str()).collect();
        let script = format!(
            "set -- $TRTFORGE_CELLS; shift \"$JOB_COMPLETION_INDEX\"; exec trtforge matrix run {} --cell \"$1\" --store /store",
            matrix.display()
        );
        // Completion index i runs the i-th id of TRTFORGE_CELLS.
        let job = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": format!("trtforge-cells-{class}"), "labels": {K8S_DEVICE_LABEL: class}},
            "spec": {
                "completionMode": "Indexed",
                "completions": ids.len(),
                "parallelism": parallelism.clamp(1, ids.len()),
                // A failing cell is retried once on its own; the others go on (Kubernetes 1.29+).
                "backoffLimitPerIndex": 1,
                "template": {
                    "metadata": {"labels": {K8S_DEVICE_LABEL: class}},
                    "spec": {
                        "restartPolicy": "Never",
                        "runtimeClassName": "nvidia",
                        "nodeSelector": {K8S_DEVICE_LABEL: class},
                        "containers": [{
                            "name": "cell",
                            "image": image,
                            "command": ["sh", "-c", script],
                            "env": [{"name": "TRTFORGE_CELLS", "value": ids.join(" ")}],
                            "volumeMounts": [{"name": "store", "mountPath": "/store"}],
                        }],
                        "volumes": [{"name": "store", "persistentVolumeClaim": {"claimName": "trtforge-store"}}],
                    }
                }
            }
        });
        out += "---\n";
        out += &yaml(&job)?;
    }
    Ok(out)
}
