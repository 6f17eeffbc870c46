//! Validation of a recipe against the files it names: the model's inputs and the image set.

use super::{LoadedRecipe, RecipeOrigin};
use crate::data::InputContract;
use crate::error::{Error, Result};
use crate::onnx::{self, Model};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub recipe: String,
    pub model: String,
    pub opset: i64,
    pub input: String,
    pub shape: [usize; 4],
    pub calibration_images: Option<usize>,
    pub warnings: Vec<String>,
}

/// Load the recipe's model (the file must exist; external data is inlined and checked).
pub fn load_model(recipe: &LoadedRecipe) -> Result<Model> {
    let path = recipe.model_path();
    if !path.is_file() {
        return Err(recipe.field_error(
            "model",
            format!("{} does not exist; fix the path (relative paths resolve against the recipe's folder)", path.display()),
        ));
    }
    Model::load(&path)
}

/// Load the model and check that the recipe's input contract fits it.
pub fn check_model(recipe: &LoadedRecipe) -> Result<Model> {
    let model = load_model(recipe)?;
    check_contract(&recipe.origin(), &model, &recipe.recipe.input)?;
    Ok(model)
}

/// The model has the contract's input.
pub fn check_input_name(origin: &RecipeOrigin, model: &Model, input: &InputContract) -> Result<()> {
    let ins = onnx::inspect(model);
    if ins.inputs.iter().any(|t| t.name == input.tensor) {
        return Ok(());
    }
    let names: Vec<&str> = ins.inputs.iter().map(|t| t.name.as_str()).collect();
    Err(origin.field_error(
        "input.tensor",
        format!(
            "the model {} has no input '{}'; its inputs are: {}",
            model.path.display(),
            input.tensor,
            names.join(", ")
        ),
    ))
}

/// The contract fits the model's input: name, rank 4, the static dimensions, a float type.
pub fn check_contract(origin: &RecipeOrigin, model: &Model, input: &InputContract) -> Result<()> {
    check_input_name(origin, model, input)?;
    let path = &model.path;
    let ins = onnx::inspect(model);
    let t = ins
        .inputs
        .iter()
        .find(|t| t.name == input.tensor)
        .expect("checked above");
    if t.shape.len() != 4 {
        return Err(origin.field_error(
            "input.shape",
            format!(
                "input '{}' of {} has rank {}, expected NCHW (rank 4)",
                t.name,
                path.display(),
                t.shape.len()
            ),
        ));
    }
    for (axis, (want, have)) in input.shape.iter().zip(&t.shape).enumerate() {
        if let Some(h) = have.as_u64() {
            if h as usize != *want {
                let model_shape: Vec<String> = t
                    .shape
                    .iter()
                    .map(|d| d.to_string().replace('"', ""))
                    .collect();
                return Err(origin.field_error(
                    "input.shape",
                    format!(
                        "{:?} does not match the model's input '{}' [{}] at axis {axis}; use the model's shape",
                        input.shape,
                        t.name,
                        model_shape.join(", ")
                    ),
                ));
            }
        }
    }
    if t.dtype != "float" && t.dtype != "float16" {
        return Err(Error::Contract(format!(
            "{}: input '{}' is {}, trtforge feeds images as float32/float16",
            path.display(),
            t.name,
            t.dtype
        )));
    }
    let declared = match input.dtype {
        crate::data::InputDtype::Float32 => "float",
        crate::data::InputDtype::Float16 => "float16",
    };
    if t.dtype != declared {
        let (want, have) = if t.dtype == "float" {
            ("float32", "float16")
        } else {
            ("float16", "float32")
        };
        return Err(origin.field_error(
            "input.dtype",
            format!(
                "{have}, but the model's input '{}' is {want}; set input.dtype: {want}",
                t.name
            ),
        ));
    }
    Ok(())
}

/// Every check `trtforge check` runs.
pub fn check(recipe: &LoadedRecipe) -> Result<CheckReport> {
    let model = check_model(recipe)?;
    let r = &recipe.recipe;
    let mut warnings = onnx::inspect(&model).warnings;
    let calibration_images = match &r.calibration {
        Some(c) => {
            let set = crate::data::ImageSet::from_path(
                &recipe.resolve(&c.images),
                c.order,
                c.seed,
                c.limit,
            )
            .map_err(|e| recipe.field_error("calibration.images", e.to_string()))?;
            Some(set.len())
        }
        None => {
            if matches!(r.precision, super::Precision::Int8 | super::Precision::Best) {
                warnings.push("precision int8/best without a calibration section: only a Q/DQ model or an existing cache can be built".into());
            }
            None
        }
    };
    if let Some(e) = &r.eval {
        for (field, p) in [("eval.images", &e.images), ("eval.labels", &e.labels)] {
            let p = recipe.resolve(p);
            if !p.is_dir() {
                return Err(recipe.field_error(field, format!("{} is not a folder", p.display())));
            }
        }
    }
    Ok(CheckReport {
        recipe: recipe.path.display().to_string(),
        model: recipe.model_path().display().to_string(),
        opset: model.opset(),
        input: r.input.tensor.clone(),
        shape: r.input.shape,
        calibration_images,
        warnings,
    })
}
