//! One `trtforge prune` run: analyse, select, remove and (unless told not to) recover, once per
//! step of the schedule; then measure the original, the pruned model and, with recovery, the
//! same channels removed without it (so the report shows what recovery bought), and write the
//! pruned model, a recipe for it and the report as one set.

use super::apply::{remove_channels, Masks};
use super::criterion::{importance, Criterion};
use super::groups::Analysis;
use super::recover::{recover, RecoverSettings, RecoveryStats};
use super::report::{Figures, PruneReport, SetReport, StepReport};
use super::select::{select, set_orders, CostModel, Measure, Scores, Selection};
use super::sensitivity::{measure_curves, Compare};
use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::eval::run::evaluate;
use crate::exec::{check_loads, OrtSession, OrtShapes};
use crate::onnx::{inspect_with_shapes, Graph, Model, ShapeSource};
use crate::recipe::{EvalJob, EvalOverrides, InputContract, LoadedRecipe, Recipe};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// What `trtforge prune` was asked for.
#[derive(Debug, Clone)]
pub struct PruneSettings {
    pub by: Measure,
    /// Cumulative targets (share of the original's measure removed), ascending; the last is
    /// the final ratio.
    pub steps: Vec<f64>,
    /// `None`: `bn` when the model has BatchNormalization nodes, else `output` when the
    /// recipe has calibration images and a decoder, else `l1`.
    pub criterion: Option<Criterion>,
    pub align: usize,
    pub min_keep: f64,
    pub recover: bool,
    pub recover_images: usize,
    pub recover_positions: usize,
}

/// The recipe's pieces a prune needs.
pub struct PruneJob {
    pub recipe: LoadedRecipe,
    pub model: Arc<Model>,
    pub input: InputContract,
    /// Calibration images (recovery), when the recipe has a calibration section.
    pub calibration: Option<ImageSet>,
    /// The evaluation (mAP), when the recipe has a decoder and eval images.
    pub eval: Option<EvalJob>,
}

impl PruneJob {
    pub fn from_recipe(recipe: LoadedRecipe) -> Result<Self> {
        let model = recipe.checked_model()?;
        let calibration = match &recipe.recipe.calibration {
            Some(_) => Some(recipe.calibration_job(&Default::default())?.image_set()?),
            None => None,
        };
        let eval = match (&recipe.recipe.decoder, &recipe.recipe.eval) {
            (Some(_), Some(_)) => Some(recipe.eval_job(&EvalOverrides::default())?),
            _ => None,
        };
        Ok(PruneJob {
            input: recipe.recipe.input.clone(),
            recipe,
            model,
            calibration,
            eval,
        })
    }

    fn input_shapes(&self) -> BTreeMap<String, Vec<usize>> {
        BTreeMap::from([(self.input.tensor.clone(), self.input.shape.to_vec())])
    }
}

/// Shapes of every tensor at the recipe's input shape (ONNX Runtime, one run on zeros).
pub fn shapes_of(
    model: &Model,
    inputs: &BTreeMap<String, Vec<usize>>,
) -> Result<HashMap<String, Vec<usize>>> {
    let mut s = OrtShapes.tensor_shapes(model, inputs)?;
    for (n, v) in inputs {
        s.insert(n.clone(), v.clone());
    }
    Ok(s)
}

/// The dependency analysis of the recipe's model (`--explain`).
pub fn analyse(job: &PruneJob) -> Result<(Analysis, HashMap<String, Vec<usize>>)> {
    let shapes = shapes_of(&job.model, &job.input_shapes())?;
    let analysis = Analysis::new(&Graph::new(&job.model), &shapes)?;
    Ok((analysis, shapes))
}

/// One step's choice: what goes, on the model as it is now.
pub struct StepPlan {
    pub analysis: Analysis,
    pub shapes: HashMap<String, Vec<usize>>,
    pub cost: CostModel,
    pub removed: std::collections::HashSet<usize>,
    pub masks: Masks,
}

/// Where one step must get to, and with what.
#[derive(Clone, Copy)]
pub struct StepGoal<'a> {
    pub criterion: Criterion,
    /// Share of `orig_total` (the original model's measure) removed after the step.
    pub target: f64,
    pub orig_total: f64,
    /// The model file, for messages.
    pub path: &'a Path,
    /// Calibration images (the `recon` and `output` criteria).
    pub data: Option<&'a RecoverSettings>,
    /// How the `output` criterion compares a candidate with the model.
    pub compare: Compare,
}

/// Choose the channels that bring `model` to `target` (share of `orig_total`, the original's
/// measure, removed); `None` when it is there already.
pub fn plan_step(
    model: &Model,
    inputs: &BTreeMap<String, Vec<usize>>,
    s: &PruneSettings,
    goal: &StepGoal,
    log: &mut dyn FnMut(&str),
) -> Result<Option<StepPlan>> {
    let StepGoal {
        criterion,
        target,
        orig_total,
        path,
        data,
        compare,
    } = *goal;
    let shapes = shapes_of(model, inputs)?;
    let graph = Graph::new(model);
    let analysis = Analysis::new(&graph, &shapes)?;
    let cost = CostModel::new(&graph, &analysis, &shapes)?;
    let full: Vec<usize> = analysis.tensors.iter().map(|t| t.channels).collect();
    let now = cost.measure(s.by, &full) as f64;
    let ratio = 1.0 - (1.0 - target) * orig_total / now;
    if ratio <= 0.0 {
        return Ok(None);
    }
    let recon = match (criterion, data) {
        (Criterion::Recon, Some(d)) => {
            let inputs: HashMap<String, usize> = analysis
                .consumers
                .iter()
                .filter_map(|&id| {
                    let x = graph.node(id).input.first()?;
                    Some((x.clone(), analysis.tensor(x)?.channels))
                })
                .collect();
            Some(super::recover::reconstruction_costs(model, &inputs, d)?)
        }
        (Criterion::Recon, None) => {
            return Err(Error::Contract(format!(
                "{}: --criterion recon measures channels on calibration images: add a calibration section to the recipe",
                path.display()
            )))
        }
        _ => None,
    };
    let imp = importance(&graph, &analysis, criterion, recon.as_ref())?;
    let selection = Selection {
        by: s.by,
        ratio,
        align: s.align,
        min_keep: s.min_keep,
    };
    let curves = match (criterion, data) {
        (Criterion::Output, Some(d)) => {
            let orders = set_orders(&analysis, &imp, &selection);
            Some(measure_curves(
                model, &analysis, &shapes, &orders, d, compare, log,
            )?)
        }
        (Criterion::Output, None) => {
            return Err(Error::Contract(format!(
                "{}: --criterion output measures the model on calibration images: add a calibration section to the recipe",
                path.display()
            )))
        }
        _ => None,
    };
    let scores = match &curves {
        Some(c) => Scores::Measured(c),
        None => Scores::Importance(&imp),
    };
    let removed = select(&analysis, &imp, scores, &cost, selection, path)?;
    let masks = analysis.masks(&removed);
    Ok(Some(StepPlan {
        analysis,
        shapes,
        cost,
        removed,
        masks,
    }))
}

/// The outcome: models in memory, report filled; nothing written yet.
pub struct Pruned {
    pub model: Model,
    pub no_recovery: Option<Model>,
    pub report: PruneReport,
}

fn has_bn(model: &Model) -> bool {
    model
        .proto
        .graph
        .node
        .iter()
        .any(|n| n.op_type == "BatchNormalization")
}

/// Run every step; `log` hears progress lines.
pub fn prune(job: &PruneJob, s: &PruneSettings, log: &mut dyn FnMut(&str)) -> Result<Pruned> {
    let path = job.recipe.model_path();
    let criterion = match s.criterion {
        Some(Criterion::Bn) if !has_bn(&job.model) => {
            return Err(Error::Contract(format!(
                "{}: --criterion bn needs BatchNormalization nodes, and this export folded them \
                 into the convs; use --criterion l1 or l2",
                path.display()
            )))
        }
        Some(c) => c,
        None if has_bn(&job.model) => Criterion::Bn,
        // Measured: 4x the mAP of `l1` at 20% of YOLOX-nano's MACs (README). It scores
        // detections, so it needs the recipe's decoder: its raw-output fallback did worse.
        None if job.calibration.is_some() && job.recipe.recipe.decoder.is_some() => {
            Criterion::Output
        }
        None => Criterion::L1,
    };
    let needs_data = s.recover || matches!(criterion, Criterion::Recon | Criterion::Output);
    let recover_images: Vec<PathBuf> = match (&job.calibration, needs_data) {
        (Some(set), true) => set.paths().iter().take(s.recover_images).cloned().collect(),
        (None, true) if matches!(criterion, Criterion::Recon | Criterion::Output) => {
            return Err(job.recipe.field_error(
                "calibration",
                format!(
                    "--criterion {} measures channels on calibration images: add a calibration \
                     section, or use --criterion l1",
                    criterion.name()
                ),
            ))
        }
        (None, true) => {
            return Err(job.recipe.field_error(
                "calibration",
                "recovery refits layers on calibration images: add a calibration section, or prune with --no-recover",
            ))
        }
        (_, false) => Vec::new(),
    };
    let inputs = job.input_shapes();
    let original = job.model.as_ref().clone();
    let orig_shapes = shapes_of(&original, &inputs)?;
    let orig_analysis = Analysis::new(&Graph::new(&original), &orig_shapes)?;
    let orig_cost = CostModel::new(&Graph::new(&original), &orig_analysis, &orig_shapes)?;
    let full: Vec<usize> = orig_analysis.tensors.iter().map(|t| t.channels).collect();
    let orig_total = orig_cost.measure(s.by, &full) as f64;
    // Original channel indices each tensor still has, through every step.
    let mut survivors: HashMap<String, Vec<usize>> = HashMap::new();
    let mut current = original.clone();
    let mut steps = Vec::new();
    let mut recovery = RecoveryStats::default();
    let data = RecoverSettings {
        images: recover_images.clone(),
        positions: s.recover_positions,
        input: job.input.clone(),
    };
    for &target in &s.steps {
        let goal = StepGoal {
            criterion,
            target,
            orig_total,
            path: &path,
            data: needs_data.then_some(&data),
            // The recipe's decoder, with or without an eval section (or `--no-eval`).
            compare: match job.recipe.recipe.decoder {
                Some(d) => Compare::Detections(d, crate::eval::DecodeParams::default()),
                None => Compare::Features,
            },
        };
        let plan = plan_step(&current, &inputs, s, &goal, log)?;
        let Some(step) = plan else {
            continue;
        };
        let StepPlan {
            analysis,
            shapes,
            cost,
            removed,
            masks,
        } = step;
        let started = Instant::now();
        let mut pruned = remove_channels(&current, &masks, &shapes)?;
        let mut step_recovery = None;
        if s.recover {
            let settings = data.clone();
            log(&format!(
                "step {:.0}%: refitting layers on {} calibration images",
                100.0 * target,
                settings.images.len()
            ));
            let (m, st) = recover(&current, &pruned, &masks, &settings)?;
            pruned = m;
            if st.layers > 0 {
                recovery.layers += st.layers;
                recovery.images = st.images;
                recovery.positions_per_image = st.positions_per_image;
                recovery.gram_mb = recovery.gram_mb.max(st.gram_mb);
                recovery.seconds += st.seconds;
                recovery.skipped.extend(st.skipped.iter().cloned());
                recovery.waves = recovery.waves.max(st.waves);
                recovery.mean_error_sliced = st.mean_error_sliced;
                recovery.mean_error_refit = st.mean_error_refit;
                recovery.worst = st.worst.clone();
            }
            step_recovery = Some(st.layers);
        }
        for (name, mask) in &masks {
            let list = survivors
                .entry(name.clone())
                .or_insert_with(|| (0..mask.len()).collect());
            let mut i = 0;
            list.retain(|_| {
                i += 1;
                mask[i - 1]
            });
        }
        let kept: Vec<usize> = analysis
            .tensors
            .iter()
            .map(|t| {
                t.channels
                    - (0..t.channels)
                        .filter(|&c| {
                            analysis
                                .component(&t.name, c)
                                .is_some_and(|r| removed.contains(&r))
                        })
                        .count()
            })
            .collect();
        let after_macs = cost.macs(&kept) as f64;
        steps.push(StepReport {
            target,
            removed_channels: removed.len(),
            macs_after: after_macs as u64,
            refit_layers: step_recovery,
            seconds: started.elapsed().as_secs_f64(),
        });
        log(&format!(
            "step {:.0}%: {} channels removed, MACs {:.3} G",
            100.0 * target,
            removed.len(),
            after_macs / 1e9
        ));
        current = pruned;
    }
    current.path = pruned_path(&path);
    check_loads(&current)?;
    let no_recovery = if s.recover {
        let masks: Masks = survivors
            .iter()
            .map(|(name, kept)| {
                let c = orig_analysis.tensor(name).map_or(0, |t| t.channels);
                let mut m = vec![false; c];
                kept.iter().for_each(|&k| m[k] = true);
                (name.clone(), m)
            })
            .collect();
        let mut m = remove_channels(&original, &masks, &orig_shapes)?;
        m.path = current.path.clone();
        Some(m)
    } else {
        None
    };
    log("measuring the original and pruned models");
    let mut report = PruneReport::new(&path, &current.path, criterion, s);
    report.steps = steps;
    report.recovery = s.recover.then_some(recovery);
    report.sets = SetReport::from_survivors(&orig_analysis, &survivors);
    report.excluded = excluded(&orig_analysis);
    report.original = figures(job, &original, &inputs, "original", log)?;
    report.pruned = figures(job, &current, &inputs, "pruned", log)?;
    if let Some(m) = &no_recovery {
        report.no_recovery = Some(figures(job, m, &inputs, "pruned, no recovery", log)?);
    }
    report.unaligned = unaligned(&original, &current, s.align);
    Ok(Pruned {
        model: current,
        no_recovery,
        report,
    })
}

/// `<stem>-pruned.onnx` beside nothing yet: the name the pruned model is written under.
pub fn pruned_path(original: &Path) -> PathBuf {
    let stem = original
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from(format!("{stem}-pruned.onnx"))
}

/// Excluded sets with their reasons, one line per reason and tensor list.
fn excluded(a: &Analysis) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = a
        .sets
        .iter()
        .filter_map(|s| {
            let why = s.excluded.clone()?;
            Some((
                s.tensors
                    .iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                why,
            ))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Convs whose width changed and is not a multiple of `align` (the selection never leaves
/// one; the report says so, checked).
fn unaligned(original: &Model, pruned: &Model, align: usize) -> Vec<String> {
    let widths = |m: &Model| -> HashMap<String, i64> {
        let g = Graph::new(m);
        g.nodes()
            .filter(|(_, n)| n.op_type == "Conv")
            .filter_map(|(id, _)| {
                let w = g.constant(g.node(id).input.get(1)?)?;
                Some((g.key(id), *w.dims.first()?))
            })
            .collect()
    };
    let (before, after) = (widths(original), widths(pruned));
    let mut out: Vec<String> = after
        .iter()
        .filter(|(k, &c)| before.get(*k) != Some(&c) && c % align as i64 != 0)
        .map(|(k, c)| format!("{k}: {c} channels"))
        .collect();
    out.sort();
    out
}

/// Size, MACs, CPU latency and mAP of one model.
fn figures(
    job: &PruneJob,
    model: &Model,
    inputs: &BTreeMap<String, Vec<usize>>,
    label: &str,
    log: &mut dyn FnMut(&str),
) -> Result<Figures> {
    let ins = inspect_with_shapes(model, inputs, &OrtShapes)?;
    let bytes = model.to_bytes()?.len();
    let latency_ms = cpu_latency_ms(model, &job.input)?;
    let (map50, map50_95, images) = match &job.eval {
        Some(e) => {
            log(&format!(
                "evaluating the {label} model on {} images",
                e.set.len()
            ));
            let mut e = e.clone();
            e.model = Arc::new(model.clone());
            let r = evaluate(&e)?;
            (Some(r.map50), Some(r.map50_95), r.images)
        }
        None => (None, None, 0),
    };
    Ok(Figures {
        params: ins.params,
        macs: ins.macs.unwrap_or(0),
        file_mb: bytes as f64 / 1e6,
        cpu_latency_ms: latency_ms,
        map50,
        map50_95,
        eval_images: images,
        alignment_findings: ins.alignment.len(),
    })
}

/// Median of 10 ONNX Runtime runs on one input after 2 warm-up runs, in milliseconds.
fn cpu_latency_ms(model: &Model, input: &InputContract) -> Result<f64> {
    let mut session = OrtSession::from_model(model, &[])?;
    let x = crate::exec::zeros(&input.shape);
    let mut times = Vec::new();
    for i in 0..12 {
        let t = Instant::now();
        session.run(&[(input.tensor.as_str(), x.view())])?;
        if i >= 2 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((times[4] + times[5]) / 2.0)
}

/// The recipe for the pruned model: the original's settings, every path absolute, the model
/// replaced, artifacts under `out/build`, and no plan, engine or timing cache made for the
/// unpruned model.
pub fn pruned_recipe(recipe: &LoadedRecipe, model: &Path, out: &Path) -> Recipe {
    let mut r = recipe.recipe.clone();
    // Absolute: the recipe is written elsewhere, and read from wherever the user stands.
    let abs = |p: &Path| {
        let r = recipe.resolve(p);
        std::path::absolute(&r).map_or(r, |a| crate::recipe::normalize(&a))
    };
    r.model = model.to_path_buf();
    r.output = out.join("build");
    if let Some(c) = r.calibration.as_mut() {
        c.images = abs(&c.images);
    }
    if let Some(e) = r.eval.as_mut() {
        e.images = abs(&e.images);
        e.labels = abs(&e.labels);
    }
    if let Some(v) = r.quantize.as_mut().and_then(|q| q.validation.as_mut()) {
        v.images = abs(&v.images);
        v.labels = v.labels.as_deref().map(abs);
    }
    r.builder.timing_cache = None;
    r.builder.precision_plan = None;
    r.builder.engine = None;
    r
}
