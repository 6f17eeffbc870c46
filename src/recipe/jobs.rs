//! Resolved job settings: what each job takes instead of the recipe. Here, at the edge, the
//! recipe's relative paths are resolved against its folder, command-line overrides are
//! applied, the model is loaded and checked against the input contract, and image sets are
//! listed, so that every mistake is reported against the recipe field it comes from, before
//! any work starts. The jobs themselves (calibration, quantization, evaluation, `run`, the
//! engine build, the benchmark) never see the YAML.

use super::{check_model, LoadedRecipe};

use super::{
    Algorithm, Builder, Calibration, Decoder, Precision, QuantOp, RefineMode, RefineSetting,
    Refinement, Target,
};
use crate::data::set::default_labels_dir;
use crate::data::{ImageSet, InputContract, OnUnreadable, Order};
use crate::error::{Error, Result};
use crate::onnx::Model;
use crate::trt::TrtVersion;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where a job's settings came from, so a job can still point at a recipe field.
#[derive(Debug, Clone)]
pub struct RecipeOrigin {
    pub path: PathBuf,
    text: String,
}

impl RecipeOrigin {
    /// An error pointing at `field` (dotted path) of the recipe, located in its text.
    pub fn field_error(&self, field: &str, msg: impl Into<String>) -> Error {
        super::field_error(&self.path, &self.text, field, msg)
    }

    /// sha256 of the recipe text as written.
    pub fn sha256(&self) -> String {
        crate::util::sha256_hex(self.text.as_bytes())
    }
}

/// Command-line overrides of the calibration section.
#[derive(Debug, Clone, Default)]
pub struct CalibrationOverrides {
    /// Calibration images (folder or list file), relative to the current folder.
    pub images: Option<PathBuf>,
    pub limit: Option<usize>,
    pub algorithm: Option<Algorithm>,
    /// Output folder instead of the recipe's.
    pub out: Option<PathBuf>,
}

/// Everything a calibration needs.
#[derive(Debug, Clone)]
pub struct CalibrationJob {
    /// Loaded and checked against `input`.
    pub model: Arc<Model>,
    pub input: InputContract,
    /// The calibration section, overrides applied, `images` resolved.
    pub calibration: Calibration,
    /// The TensorRT the artifacts are for (the cache header).
    pub tensorrt: TrtVersion,
    /// Where the artifact set is read and written.
    pub out: PathBuf,
}

impl CalibrationJob {
    /// The calibration images, ordered and limited.
    pub fn image_set(&self) -> Result<ImageSet> {
        let c = &self.calibration;
        ImageSet::from_path(&c.images, c.order, c.seed, c.limit)
    }
}

/// Command-line overrides of `trtforge quantize`.
#[derive(Debug, Clone, Default)]
pub struct QuantizeOverrides {
    pub out: Option<PathBuf>,
    /// Gate of the accuracy-aware search (overrides `quantize.max_map_drop`).
    pub max_map_drop: Option<f64>,
    /// Calibration algorithm (overrides `calibration.algorithm`).
    pub algorithm: Option<Algorithm>,
    /// Apply this precision plan instead of searching one.
    pub plan: Option<PathBuf>,
    /// Time budget of the search (overrides `quantize.time_budget_s`).
    pub time_budget_s: Option<u64>,
}

/// Share of the validation images that confirms the plan unless the recipe says otherwise.
pub const DEFAULT_CONFIRM: f64 = 0.5;

/// Held-out images with their labels.
#[derive(Debug, Clone)]
pub struct ValidationJob {
    pub set: ImageSet,
    pub labels: PathBuf,
    /// Share of `set` held out to confirm (`quantize.validation.confirm`).
    pub confirm: f64,
}

/// Score and NMS thresholds of an evaluation (None: the decoder's defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EvalThresholds {
    pub score: Option<f32>,
    pub iou: Option<f32>,
}

/// Everything `trtforge quantize` needs.
#[derive(Debug, Clone)]
pub struct QuantizeJob {
    /// Its `out` is the quantization's output folder too.
    pub calibration: CalibrationJob,
    pub decoder: Decoder,
    pub thresholds: EvalThresholds,
    pub validation: ValidationJob,
    pub ops: BTreeSet<QuantOp>,
    /// The gate: search a plan keeping mAP@0.5:0.95 within this of FP32.
    pub max_map_drop: Option<f64>,
    pub min_int8_macs: f64,
    pub sensitivity_images: usize,
    pub time_budget: Duration,
    /// Apply this plan instead of searching.
    pub plan: Option<PathBuf>,
    /// Refinements to try, whether to keep only those that help (else all), and on how many
    /// calibration images they are computed.
    pub refine: Vec<Refinement>,
    pub refine_auto: bool,
    pub refine_images: usize,
}

/// Command-line overrides of `trtforge eval`.
#[derive(Debug, Clone, Default)]
pub struct EvalOverrides {
    pub model: Option<PathBuf>,
    pub images: Option<PathBuf>,
    pub labels: Option<PathBuf>,
    pub limit: Option<usize>,
}

/// Everything `trtforge eval` needs.
#[derive(Debug, Clone)]
pub struct EvalJob {
    pub model: Arc<Model>,
    pub input: InputContract,
    pub decoder: Decoder,
    pub thresholds: EvalThresholds,
    pub set: ImageSet,
    pub labels: PathBuf,
    /// `classes.txt` beside the labels folder, when there is one.
    pub class_names: Option<PathBuf>,
}

/// Command-line overrides of `trtforge run`.
#[derive(Debug, Clone, Default)]
pub struct RunOverrides {
    pub model: Option<PathBuf>,
    pub images: Option<PathBuf>,
    pub limit: Option<usize>,
    pub out: Option<PathBuf>,
    pub dump_inputs: Option<PathBuf>,
    pub skip_unreadable: bool,
}

/// Everything `trtforge run` needs.
#[derive(Debug, Clone)]
pub struct RunJob {
    pub model: Arc<Model>,
    pub input: InputContract,
    pub set: ImageSet,
    pub on_unreadable: OnUnreadable,
    /// `<out>/<NNNNNN>_<image>/<output>.npy`.
    pub out: PathBuf,
    pub dump_inputs: Option<PathBuf>,
}

/// Everything `trtforge build` needs.
#[derive(Debug, Clone)]
pub struct BuildJob {
    pub origin: RecipeOrigin,
    pub model: Arc<Model>,
    pub input: InputContract,
    pub precision: Precision,
    pub target: Target,
    /// The builder section with `timing_cache` and `precision_plan` resolved.
    pub builder: Builder,
    /// The calibration, when the recipe has a calibration section.
    pub calibration: Option<CalibrationJob>,
    /// `builder.engine`, else `<output>/<recipe stem>.engine` (`trtforge build --engine`
    /// replaces it).
    pub engine: PathBuf,
}

/// What `trtforge bench RECIPE` needs: the model and its input shape.
#[derive(Debug, Clone)]
pub struct BenchJob {
    pub model: PathBuf,
    pub input: String,
    pub shape: Vec<usize>,
}

impl LoadedRecipe {
    /// Where this recipe came from, for jobs that report recipe fields.
    pub fn origin(&self) -> RecipeOrigin {
        RecipeOrigin {
            path: self.path.clone(),
            text: self.text.clone(),
        }
    }

    /// The model, loaded and checked against the input contract.
    pub fn checked_model(&self) -> Result<Arc<Model>> {
        check_model(self).map(Arc::new)
    }

    pub fn calibration_job(&self, o: &CalibrationOverrides) -> Result<CalibrationJob> {
        let model = self.checked_model()?;
        self.calibration_job_for(model, o)
    }

    fn calibration_job_for(
        &self,
        model: Arc<Model>,
        o: &CalibrationOverrides,
    ) -> Result<CalibrationJob> {
        let mut c = match (&self.recipe.calibration, &o.images) {
            (Some(c), _) => c.clone(),
            (None, Some(images)) => Calibration::with_images(images.clone()),
            (None, None) => return Err(self.field_error(
                "calibration",
                "no calibration section: add one (images, batch_size, algorithm) or pass --images DIR",
            )),
        };
        c.images = match &o.images {
            Some(i) => i.clone(),
            None => self.resolve(&c.images),
        };
        if o.limit.is_some() {
            c.limit = o.limit;
        }
        if let Some(a) = o.algorithm {
            c.algorithm = a;
        }
        Ok(CalibrationJob {
            model,
            input: self.recipe.input.clone(),
            calibration: c,
            tensorrt: self.recipe.target.tensorrt,
            out: o.out.clone().unwrap_or_else(|| self.output_dir()),
        })
    }

    fn thresholds(&self) -> EvalThresholds {
        let e = self.recipe.eval.as_ref();
        EvalThresholds {
            score: e.and_then(|e| e.score_threshold),
            iou: e.and_then(|e| e.iou_threshold),
        }
    }

    pub fn quantize_job(&self, o: &QuantizeOverrides) -> Result<QuantizeJob> {
        let q = self.recipe.quantize.clone().unwrap_or_default();
        let decoder = self.recipe.decoder.ok_or_else(|| {
            self.field_error(
                "decoder",
                "quantize needs a decoder (yolox, nanodet, ...) to measure mAP",
            )
        })?;
        let model = self.checked_model()?;
        let overrides = CalibrationOverrides {
            algorithm: o.algorithm,
            out: Some(o.out.clone().unwrap_or_else(|| self.output_dir())),
            ..Default::default()
        };
        let calibration = self.calibration_job_for(model, &overrides)?;
        Ok(QuantizeJob {
            calibration,
            decoder,
            thresholds: self.thresholds(),
            validation: self.validation_job()?,
            ops: q.ops.iter().copied().collect(),
            max_map_drop: o.max_map_drop.or(q.max_map_drop),
            min_int8_macs: q.min_int8_macs.unwrap_or(0.8),
            sensitivity_images: q.sensitivity_images.unwrap_or(8),
            time_budget: Duration::from_secs(o.time_budget_s.or(q.time_budget_s).unwrap_or(600)),
            plan: o.plan.clone(),
            refine: match &q.refine {
                None | Some(RefineSetting::Mode(RefineMode::Auto)) => vec![
                    Refinement::RangeChoice,
                    Refinement::WeightScales,
                    Refinement::BiasCorrection,
                    Refinement::DepthwiseEqualization,
                ],
                Some(RefineSetting::List(l)) => l.clone(),
            },
            refine_auto: matches!(q.refine, None | Some(RefineSetting::Mode(_))),
            refine_images: q.refine_images.unwrap_or(8),
        })
    }

    /// `quantize.validation`: sorted, `skip` first, then `limit`; labels beside the images
    /// unless given.
    pub fn validation_job(&self) -> Result<ValidationJob> {
        let v = self
            .recipe
            .quantize
            .as_ref()
            .and_then(|q| q.validation.as_ref())
            .ok_or_else(|| {
                self.field_error(
                    "quantize.validation",
                    "no validation images: add quantize.validation.images (disjoint from calibration.images)",
                )
            })?;
        let images = self.resolve(&v.images);
        let all = ImageSet::from_path(&images, Order::Sorted, 0, None)?;
        if v.skip >= all.len() {
            return Err(self.field_error(
                "quantize.validation.skip",
                format!(
                    "skip {} leaves none of the {} images; lower it",
                    v.skip,
                    all.len()
                ),
            ));
        }
        let set = ImageSet::from_paths(
            all.paths()[v.skip..].to_vec(),
            &images,
            Order::Sorted,
            0,
            v.limit,
        )?;
        let labels = match &v.labels {
            Some(l) => self.resolve(l),
            None => default_labels_dir(&images),
        };
        Ok(ValidationJob {
            set,
            labels,
            confirm: v.confirm.unwrap_or(DEFAULT_CONFIRM),
        })
    }

    /// The model to run: `--model` as given (same input contract, not checked against it),
    /// else the recipe's, checked.
    fn model_or_override(&self, model: &Option<PathBuf>) -> Result<Arc<Model>> {
        match model {
            Some(m) => Model::load(m).map(Arc::new),
            None => self.checked_model(),
        }
    }

    pub fn eval_job(&self, o: &EvalOverrides) -> Result<EvalJob> {
        let r = &self.recipe;
        let decoder = r.decoder.ok_or_else(|| {
            self.field_error(
                "decoder",
                "eval needs `decoder: yolox | nanodet | fastestdet | yolov8`",
            )
        })?;
        let model = self.model_or_override(&o.model)?;
        let eval = r.eval.as_ref();
        let images =
            match (&o.images, eval) {
                (Some(i), _) => i.clone(),
                (None, Some(e)) => self.resolve(&e.images),
                (None, None) => return Err(self.field_error(
                    "eval",
                    "no eval section: add eval.images/eval.labels or pass --images and --labels",
                )),
            };
        let labels = match (&o.labels, eval) {
            (Some(l), _) => l.clone(),
            (None, Some(e)) if o.images.is_none() => self.resolve(&e.labels),
            _ => default_labels_dir(&images),
        };
        let limit = o.limit.or(eval.and_then(|e| e.limit));
        let set = ImageSet::from_path(&images, Order::Sorted, 0, limit)?;
        let class_names = labels
            .parent()
            .map(|p| p.join("classes.txt"))
            .filter(|p| p.is_file());
        Ok(EvalJob {
            model,
            input: r.input.clone(),
            decoder,
            thresholds: self.thresholds(),
            set,
            labels,
            class_names,
        })
    }

    pub fn run_job(&self, o: &RunOverrides) -> Result<RunJob> {
        let r = &self.recipe;
        let model = self.model_or_override(&o.model)?;
        let images = match (&o.images, &r.eval, &r.calibration) {
            (Some(i), _, _) => i.clone(),
            (None, Some(e), _) => self.resolve(&e.images),
            (None, None, Some(c)) => self.resolve(&c.images),
            _ => {
                return Err(self.field_error(
                    "eval",
                    "no images: pass --images DIR or add an eval or calibration section",
                ))
            }
        };
        Ok(RunJob {
            model,
            input: r.input.clone(),
            set: ImageSet::from_path(&images, Order::Sorted, 0, o.limit)?,
            on_unreadable: if o.skip_unreadable {
                OnUnreadable::Skip
            } else {
                OnUnreadable::Fail
            },
            out: o
                .out
                .clone()
                .unwrap_or_else(|| self.output_dir().join("run")),
            dump_inputs: o.dump_inputs.clone(),
        })
    }

    /// The build's model is checked for the input's name only: an FP16/FP32 build takes its
    /// shapes from the model and the profiles; the full contract is checked where images are
    /// fed (CPU calibration, the TensorRT calibrator's bindings).
    pub fn build_job(&self) -> Result<BuildJob> {
        let r = &self.recipe;
        let model = Arc::new(super::load_model(self)?);
        super::check_input_name(&self.origin(), &model, &r.input)?;
        let calibration = match &r.calibration {
            Some(_) => Some(self.calibration_job_for(model.clone(), &Default::default())?),
            None => None,
        };
        let mut builder = r.builder.clone();
        builder.timing_cache = builder.timing_cache.map(|p| self.resolve(&p));
        builder.precision_plan = builder.precision_plan.map(|p| self.resolve(&p));
        builder.engine = builder.engine.map(|p| self.resolve(&p));
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        Ok(BuildJob {
            origin: self.origin(),
            model,
            input: r.input.clone(),
            precision: r.precision,
            target: r.target.clone(),
            calibration,
            engine: builder
                .engine
                .clone()
                .unwrap_or_else(|| self.output_dir().join(format!("{stem}.engine"))),
            builder,
        })
    }

    /// The recipe's model and input for `trtforge bench`, with an optional batch size.
    pub fn bench_job(&self, batch: Option<usize>) -> BenchJob {
        let mut shape = self.recipe.input.shape.to_vec();
        if let Some(b) = batch {
            shape[0] = b;
        }
        BenchJob {
            model: self.model_path(),
            input: self.recipe.input.tensor.clone(),
            shape,
        }
    }
}
