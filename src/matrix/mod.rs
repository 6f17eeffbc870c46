//! The nightly engine-build matrix: recipes x precisions x targets as content-addressed
//! cells. trtforge plans (the cells still to do, in the CI engine's format), runs one cell on
//! the runner it lands on, and collects the night into one report with gates. It schedules
//! nothing itself: GitHub Actions, GitLab CI or Kubernetes fan the cells out.
//!
//! Modules: `spec` (`matrix.yaml`), `cell` (cells, the stages they share, their ids), `store`
//! (the artifact store: atomic, hash-verified entries), `prepare` (the device-independent
//! stages), `run` (one cell), `collect` (the night and its gates), `report` (its files),
//! `format` (plan outputs).

pub mod bundle;
pub mod cell;
pub mod collect;
#[cfg(feature = "tensorrt")]
mod device;
pub mod format;
pub mod prepare;
pub mod report;
pub mod run;
pub mod spec;
pub mod store;

use crate::error::{Error, Result};
use cell::{Cell, Plan, StageKind};
use prepare::Origin;
use run::CellRun;
use spec::BenchSpec;
use std::collections::BTreeMap;
use std::sync::Mutex;
use store::Store;

/// The cells this runner still has to do (see [`run::to_do`]).
pub fn pending<'p>(store: &Store, plan: &'p Plan) -> Vec<&'p Cell> {
    plan.cells.iter().filter(|c| run::to_do(store, c)).collect()
}

/// What happened to one stage in [`prepare_all`].
#[derive(Debug)]
pub struct StageRun {
    pub id: String,
    pub kind: StageKind,
    pub recipe: String,
    pub outcome: std::result::Result<Origin, String>,
}

fn pool(jobs: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| Error::internal(format!("thread pool: {e}")))
}

/// Every stage the plan's cells need, `jobs` at a time: first those that need nothing, then
/// those built on them (qdq on its calibration), so no two workers compute one stage.
pub fn prepare_all(
    store: &Store,
    plan: &Plan,
    bench: &BenchSpec,
    jobs: usize,
) -> Result<Vec<StageRun>> {
    let pool = pool(jobs)?;
    let runs = Mutex::new(Vec::new());
    let failed: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
    let stages = plan.stages_in_order();
    for wave in [
        &[StageKind::Reference, StageKind::Calibration][..],
        &[StageKind::Qdq],
    ] {
        let todo: Vec<_> = stages.iter().filter(|s| wave.contains(&s.kind)).collect();
        pool.scope(|scope| {
            for s in todo {
                let (runs, failed) = (&runs, &failed);
                scope.spawn(move |_| {
                    let blocked = s
                        .needs
                        .iter()
                        .find_map(|n| failed.lock().expect("lock").get(n).cloned());
                    let outcome = match blocked {
                        Some(e) => Err(e),
                        None => prepare::ensure_stage(store, plan, &s.id, bench)
                            .map(|(_, o)| o)
                            .map_err(|e| e.to_string()),
                    };
                    if let Err(e) = &outcome {
                        failed.lock().expect("lock").insert(s.id.clone(), e.clone());
                    }
                    runs.lock().expect("lock").push(StageRun {
                        id: s.id.clone(),
                        kind: s.kind,
                        recipe: s.recipe.path.display().to_string(),
                        outcome,
                    });
                });
            }
        });
    }
    let mut runs = runs.into_inner().expect("lock");
    runs.sort_by_key(|r| (r.kind, r.id.clone()));
    Ok(runs)
}

/// Each cell's name and how running it went.
pub type CellRuns = Vec<(String, Result<CellRun>)>;

/// Run `cells` here, `jobs` at a time, after preparing what they need.
pub fn run_cells(
    store: &Store,
    plan: &Plan,
    cells: &[&Cell],
    bench: &BenchSpec,
    jobs: usize,
) -> Result<(Vec<StageRun>, CellRuns)> {
    let wanted: std::collections::BTreeSet<&String> = cells
        .iter()
        .flat_map(|c| std::iter::once(&c.reference).chain(&c.int8_stage))
        .collect();
    let mut sub = plan.clone();
    sub.stages.retain(|id, s| {
        wanted.contains(id)
            || plan
                .stages
                .values()
                .any(|o| wanted.contains(&o.id) && o.needs.contains(&s.id))
    });
    let stages = prepare_all(store, &sub, bench, jobs)?;
    let failed: BTreeMap<String, String> = stages
        .iter()
        .filter_map(|s| s.outcome.as_ref().err().map(|e| (s.id.clone(), e.clone())))
        .collect();
    let pool = pool(jobs)?;
    let out = Mutex::new(Vec::new());
    pool.scope(|scope| {
        for c in cells {
            let (out, failed) = (&out, &failed);
            scope.spawn(move |_| {
                let r = run::run_cell(store, plan, c, bench, failed);
                out.lock().expect("lock").push((c.name.clone(), r));
            });
        }
    });
    let mut out = out.into_inner().expect("lock");
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((stages, out))
}

/// Bundles for every cell of the plan that has a result but no bundle yet (cells whose result
/// came from another runner's upload, or from before bundles were written); returns how many
/// were written.
pub fn ensure_bundles(store: &Store, plan: &Plan) -> Result<usize> {
    let mut n = 0;
    for c in &plan.cells {
        if run::stored_result(store, &c.id).is_some() && bundle::digest(store, &c.id).is_none() {
            bundle::write_for_cell(store, &c.id)?;
            n += 1;
        }
    }
    Ok(n)
}
