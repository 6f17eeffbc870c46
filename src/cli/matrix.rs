//! `trtforge matrix plan|prepare|run|collect`: the nightly engine-build matrix
//! ([`trtforge::matrix`]). Exit codes: 0 done, 1 a failure or a regression, 3 cells that could
//! only do their CPU steps because TensorRT is missing.

use super::{EXIT_FAILURE, EXIT_UNAVAILABLE};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use trtforge::matrix::cell::{expand, Plan};
use trtforge::matrix::collect::{append_night, collect, CollectOptions, Night, NightReport};
use trtforge::matrix::run::CellStatus;
use trtforge::matrix::spec::LoadedMatrix;
use trtforge::matrix::store::Store;
use trtforge::matrix::{format, pending, prepare_all, report, run_cells};

#[derive(clap::Subcommand)]
pub enum MatrixCmd {
    /// Print the cells still to do, as the CI engine takes them (json, github, gitlab, k8s).
    Plan(PlanArgs),
    /// Compute the device-independent stages (FP32 reference, calibration, Q/DQ) here.
    Prepare(PrepareArgs),
    /// Run one cell (--cell ID) or every cell still to do (--all) on this machine.
    Run(RunArgs),
    /// Merge the cells into the nightly report and apply the gates; exit 1 on a regression.
    Collect(CollectArgs),
}

#[derive(clap::Args)]
pub struct Common {
    /// The matrix file (YAML).
    matrix: PathBuf,
    /// Artifact store (default: the matrix file's `store`, else ../build/matrix-store beside it).
    #[arg(long)]
    store: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Json,
    Github,
    Gitlab,
    K8s,
}

#[derive(clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Container image of the Kubernetes Jobs (--format k8s).
    #[arg(long, default_value = "trtforge:latest")]
    image: String,
    /// The matrix file's path inside that image (--format k8s; default: as given here).
    #[arg(long)]
    image_matrix: Option<PathBuf>,
    /// Cells of one device class run at once (--format k8s; default 1: cells sharing a
    /// board distort each other's timings).
    #[arg(long, default_value_t = 1)]
    parallelism: usize,
    /// List every cell, also those with a result.
    #[arg(long)]
    all: bool,
}

#[derive(clap::Args)]
pub struct PrepareArgs {
    #[command(flatten)]
    common: Common,
    /// Stages computed at once.
    #[arg(short = 'j', long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
}

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// The cell's id (or a unique start of it), as `plan` prints it.
    #[arg(long, conflicts_with = "all", required_unless_present = "all")]
    cell: Option<String>,
    /// Every cell still to do.
    #[arg(long)]
    all: bool,
    /// This runner's device class: --all takes only its cells, and --cell refuses another
    /// class's (default: TRTFORGE_DEVICE_CLASS; unset: no check, as on a CPU runner).
    #[arg(long)]
    device: Option<String>,
    /// Cells (and stages) run at once.
    #[arg(short = 'j', long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
}

#[derive(clap::Args)]
pub struct CollectArgs {
    #[command(flatten)]
    common: Common,
    /// The night to gate against (the last accepted one: default STORE/accepted.json, which
    /// --accept writes; comparing with the night before instead would let slow drift pass).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Where nightly.json, nightly.md and the trend plots go (default: STORE/report).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Accept tonight as the new baseline (STORE/accepted.json), regressions included.
    #[arg(long)]
    accept: bool,
    /// Compare cells whose TensorRT version or power mode changed since the baseline.
    #[arg(long)]
    allow_mismatch: bool,
    /// Cells that built no engine (needs-tensorrt) fail the night.
    #[arg(long)]
    require_engines: bool,
    /// Print the report as JSON instead of the Markdown table.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: MatrixCmd) -> Result<ExitCode> {
    match cmd {
        MatrixCmd::Plan(a) => plan(a),
        MatrixCmd::Prepare(a) => prepare(a),
        MatrixCmd::Run(a) => run_cmd(a),
        MatrixCmd::Collect(a) => collect_cmd(a),
    }
}

fn open(c: &Common) -> Result<(LoadedMatrix, Plan, Store)> {
    let m = LoadedMatrix::load(&c.matrix)?;
    let plan = expand(&m)?;
    let store = Store::open(&m.store_dir(c.store.as_deref()))?;
    Ok((m, plan, store))
}

fn plan(a: PlanArgs) -> Result<ExitCode> {
    let (m, plan, store) = open(&a.common)?;
    let cells = if a.all {
        plan.cells.iter().collect()
    } else {
        pending(&store, &plan)
    };
    let waiting = plan
        .cells
        .iter()
        .filter(|c| {
            trtforge::matrix::run::stored_result(&store, &c.id)
                .is_some_and(|r| r.status == CellStatus::NeedsTensorrt)
        })
        .count();
    if waiting > 0 && !a.all {
        eprintln!(
            "note: {waiting} cells have only their CPU steps (needs-tensorrt); `matrix run --cell ID` on a device with TensorRT redoes them"
        );
    }
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&format::json(&cells, &m.path))?
        ),
        Format::Github => println!("{}", serde_json::to_string(&format::github(&cells))?),
        Format::Gitlab => print!(
            "{}",
            format::gitlab(&cells, &m.path, &m.store_dir(a.common.store.as_deref()))?
        ),
        Format::K8s => {
            let inside = a.image_matrix.as_deref().unwrap_or(&m.path);
            print!("{}", format::k8s(&cells, inside, &a.image, a.parallelism)?)
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_stages(stages: &[trtforge::matrix::StageRun]) -> bool {
    let mut ok = true;
    for s in stages {
        match &s.outcome {
            Ok(o) => println!(
                "stage {:<11} {} {}: {}",
                s.kind.name(),
                &s.id[..12],
                s.recipe,
                match o {
                    trtforge::matrix::prepare::Origin::Reused => "reused",
                    trtforge::matrix::prepare::Origin::Computed => "computed",
                }
            ),
            Err(e) => {
                ok = false;
                eprintln!("error: {e}");
            }
        }
    }
    ok
}

fn prepare(a: PrepareArgs) -> Result<ExitCode> {
    let (m, plan, store) = open(&a.common)?;
    let stages = prepare_all(&store, &plan, &m.spec.bench, a.jobs as usize)?;
    Ok(if print_stages(&stages) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    })
}

fn run_cmd(a: RunArgs) -> Result<ExitCode> {
    let (m, plan, store) = open(&a.common)?;
    let device = a
        .device
        .clone()
        .or_else(|| trtforge::env::var("TRTFORGE_DEVICE_CLASS"));
    let cells = match &a.cell {
        Some(id) => {
            let c = plan.cell(id)?;
            if let Some(d) = device.as_deref().filter(|d| *d != c.target.device) {
                anyhow::bail!(
                    "cell {id} ({}) is for device class {}, and this runner is {d}: run it on a {} runner (check the CI engine's labels)",
                    c.name,
                    c.target.device,
                    c.target.device
                );
            }
            vec![c]
        }
        None => pending(&store, &plan)
            .into_iter()
            .filter(|c| device.as_deref().is_none_or(|d| d == c.target.device))
            .collect(),
    };
    let (stages, runs) = run_cells(&store, &plan, &cells, &m.spec.bench, a.jobs as usize)?;
    if a.all {
        let n = trtforge::matrix::ensure_bundles(&store, &plan)?;
        if n > 0 {
            println!("wrote {n} missing bundles of cells already in the store");
        }
    }
    print_stages(&stages);
    let (mut failed, mut unavailable) = (false, false);
    for (name, r) in runs {
        match r {
            Ok(run) => {
                let r = &run.result;
                let how = if run.skipped {
                    "already in the store"
                } else {
                    "written"
                };
                println!(
                    "cell {} {name}: {} ({how}, {:.1} s)",
                    r.id.get(..12).unwrap_or(&r.id),
                    r.status.name(),
                    r.seconds
                );
                match r.status {
                    CellStatus::Failed => {
                        failed = true;
                        eprintln!("error: {name}: {}", r.message.as_deref().unwrap_or(""));
                    }
                    CellStatus::NeedsTensorrt => unavailable = true,
                    CellStatus::Done => {}
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {name}: {e}");
            }
        }
    }
    if cells.is_empty() {
        println!(
            "every cell already has a result in {}",
            store.root().display()
        );
    }
    if unavailable {
        eprintln!("error: cells marked needs-tensorrt built no engine: TensorRT is not available here (their CPU steps and ONNX Runtime reference figures are in the store)");
    }
    Ok(if failed {
        ExitCode::from(EXIT_FAILURE)
    } else if unavailable {
        ExitCode::from(EXIT_UNAVAILABLE)
    } else {
        ExitCode::SUCCESS
    })
}

fn collect_cmd(a: CollectArgs) -> Result<ExitCode> {
    let (m, plan, store) = open(&a.common)?;
    let accepted = store.root().join("accepted.json");
    let baseline_path = a
        .baseline
        .clone()
        .or_else(|| accepted.is_file().then(|| accepted.clone()));
    let baseline = match &baseline_path {
        Some(p) => Some(NightReport::read(p)?),
        None => None,
    };
    let opts = CollectOptions {
        accept: a.accept,
        allow_mismatch: a.allow_mismatch,
        require_engines: a.require_engines,
    };
    let history_path = store.root().join("history.json");
    let history: Vec<Night> = match std::fs::read_to_string(&history_path) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a trtforge night history ({e}); move it aside to start a new one",
                history_path.display()
            )
        })?,
        Err(_) => Vec::new(),
    };
    let night = collect(
        &store,
        &plan,
        &m.path,
        &m.spec.gates,
        baseline.as_ref(),
        history.clone(),
        &opts,
    )?;
    // Every collected night joins the trends, accepted or not.
    let history = append_night(history, night.night());
    trtforge::util::write_atomic(
        &history_path,
        trtforge::error::to_json_pretty(&history)?.as_bytes(),
    )?;
    let out = a.out.clone().unwrap_or_else(|| store.root().join("report"));
    let files = report::write(&night, &out)?;
    if a.accept {
        trtforge::util::write_atomic(
            &accepted,
            trtforge::error::to_json_pretty(&night)?.as_bytes(),
        )?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&night)?);
    } else {
        print!("{}", report::markdown(&night));
        for f in &files {
            println!("wrote {}", f.display());
        }
        if a.accept {
            println!("accepted: {} is the new baseline", accepted.display());
        }
    }
    print_verdict(&night, baseline_path.as_deref());
    Ok(if night.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    })
}

fn print_verdict(night: &NightReport, baseline: Option<&Path>) {
    for f in &night.failures {
        eprintln!("failure: {f}");
    }
    for r in &night.regressions {
        eprintln!(
            "regression: {} {}: {:.4} -> {:.4} (limit {}){}",
            r.cell,
            r.metric,
            r.old,
            r.new,
            r.limit,
            baseline
                .map(|b| format!(", baseline {}", b.display()))
                .unwrap_or_default()
        );
    }
    if !night.passed() {
        eprintln!(
            "error: the night failed its gates: {} regressions, {} failures (pass --accept to make tonight the baseline)",
            night.regressions.len(),
            night.failures.len()
        );
    }
}
