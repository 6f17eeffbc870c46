//! Power samplers. Each runs in its own thread and timestamps every sample on the monotonic
//! clock against the same epoch as the bench loop, so samples can be clipped to the measured
//! window. Sources:
//! - [`ina3221`]: Jetson INA3221 through sysfs (mainline hwmon on JetPack 5/6/7, legacy IIO
//!   `ina3221x` on JetPack 4), polled at a fixed period.
//! - [`ina238`]: the Jetson AGX Thor carrier-board system input (`VIN`) through sysfs; on
//!   Thor it is combined with the INA3221 module rails (see [`Combined`]).
//! - [`tegrastats`]: runs `tegrastats --interval` and parses each line as it arrives (or parses a
//!   saved log).
//! - [`nvml`]: desktop/datacenter NVIDIA GPUs, NVML loaded at run time.

pub mod ina238;
pub mod ina3221;
pub mod nvml;
pub mod tegrastats;

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One reading of every rail of a source, in milliwatts (same order as the source's rails),
/// plus the cumulative energy counter in millijoules where the hardware has one (NVML).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub rails_mw: Vec<f64>,
    pub energy_mj: Option<f64>,
}

/// A polled power source. `read` is called from the sampler thread.
pub trait PowerSource: Send {
    /// Short name recorded in reports: `ina3221`, `ina3221x`, `ina238`, `ina238+ina3221`,
    /// `nvml`.
    fn name(&self) -> &str;
    /// Rail names, in reading order.
    fn rails(&self) -> Vec<String>;
    /// Read every rail once. An error drops this sample (counted), it does not stop sampling.
    fn read(&mut self) -> Result<Reading>;
}

/// Everything a sampler recorded. `t_s` are seconds since the run epoch; `mw[r][i]` is rail r
/// at sample i.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerTrace {
    pub source: String,
    pub rails: Vec<String>,
    /// The rails whose sum is the module's total power (see [`total_rails`]).
    pub total_rails: Vec<String>,
    pub period_requested_ms: f64,
    pub t_s: Vec<f64>,
    pub mw: Vec<Vec<f64>>,
    /// Cumulative energy counter (mJ) per sample, when the source has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub energy_mj: Option<Vec<f64>>,
    /// Samples lost to read errors.
    pub dropped: u64,
}

impl PowerTrace {
    pub fn new(source: &str, rails: Vec<String>, period: Duration) -> Self {
        PowerTrace {
            source: source.to_string(),
            total_rails: total_rails(&rails),
            mw: vec![Vec::new(); rails.len()],
            rails,
            period_requested_ms: period.as_secs_f64() * 1e3,
            t_s: Vec::new(),
            energy_mj: None,
            dropped: 0,
        }
    }

    pub fn push(&mut self, t_s: f64, r: &Reading) {
        if r.rails_mw.len() != self.rails.len() {
            self.dropped += 1;
            return;
        }
        self.t_s.push(t_s);
        for (col, v) in self.mw.iter_mut().zip(&r.rails_mw) {
            col.push(*v);
        }
        match (&mut self.energy_mj, r.energy_mj) {
            (Some(e), Some(v)) => e.push(v),
            (None, Some(v)) if self.t_s.len() == 1 => self.energy_mj = Some(vec![v]),
            // A counter that appears or vanishes mid-run is not trusted.
            _ => self.energy_mj = None,
        }
    }

    /// Sum of the total rails at each sample, in mW.
    pub fn total_mw(&self) -> Vec<f64> {
        let idx: Vec<usize> = self
            .total_rails
            .iter()
            .filter_map(|n| self.rails.iter().position(|r| r == n))
            .collect();
        (0..self.t_s.len())
            .map(|i| idx.iter().map(|&r| self.mw[r][i]).sum())
            .collect()
    }

    pub fn rail_mw(&self, name: &str) -> Option<&[f64]> {
        self.rails
            .iter()
            .position(|r| r == name)
            .map(|i| self.mw[i].as_slice())
    }
}

/// Which rails make up the module's total power. Lookup order as jtop's: `VIN`, `POM_5V_IN`,
/// `VDD_IN`, then the AGX Orin set, else the sum of all rails.
/// - AGX Thor: `VIN` (INA238, the carrier-board system input) alone: it replaces, not adds
///   to, the module rails. With several INA238 (`VIN_1`, `VIN_2`, ...) their sum.
/// - Orin NX / Orin Nano / Xavier NX / TX2: `VDD_IN` alone (the others are inside it);
///   Nano: `POM_5V_IN` alone.
/// - AGX Orin has no input rail: VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0; VDDQ_VDD2_1V8AO is
///   fed from VIN_SYS_5V0 and must not be added again.
/// - Anything else (AGX Xavier, NVML's single GPU rail): the sum of all rails, as jtop does.
pub fn total_rails(rails: &[String]) -> Vec<String> {
    if rails.iter().any(|r| r == "VIN") {
        return vec!["VIN".to_string()];
    }
    let vins: Vec<String> = rails
        .iter()
        .filter(|r| {
            r.strip_prefix("VIN_")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .cloned()
        .collect();
    if !vins.is_empty() {
        return vins;
    }
    for input in ["POM_5V_IN", "VDD_IN"] {
        if rails.iter().any(|r| r == input) {
            return vec![input.to_string()];
        }
    }
    const AGX_ORIN: [&str; 3] = ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"];
    if AGX_ORIN.iter().all(|a| rails.iter().any(|r| r == a)) {
        return AGX_ORIN.iter().map(|s| s.to_string()).collect();
    }
    rails.to_vec()
}

/// Several polled sources read as one, rails concatenated in order (AGX Thor: the INA238
/// `VIN` then the INA3221 module rails). A sample is dropped when any part fails. The name
/// joins the parts' names with `+`; there is no energy counter.
pub struct Combined {
    name: String,
    parts: Vec<Box<dyn PowerSource>>,
}

impl Combined {
    /// Fails when two parts name the same rail (the trace is keyed by rail name).
    pub fn new(parts: Vec<Box<dyn PowerSource>>) -> Result<Self> {
        let mut rails: Vec<String> = Vec::new();
        for p in &parts {
            for r in p.rails() {
                if rails.contains(&r) {
                    return Err(Error::Invalid(format!(
                        "power rail {r} is reported by two sources ({}); pick one with --power ina238|ina3221",
                        parts.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
                    )));
                }
                rails.push(r);
            }
        }
        let name = parts.iter().map(|p| p.name()).collect::<Vec<_>>().join("+");
        Ok(Combined { name, parts })
    }
}

impl PowerSource for Combined {
    fn name(&self) -> &str {
        &self.name
    }

    fn rails(&self) -> Vec<String> {
        self.parts.iter().flat_map(|p| p.rails()).collect()
    }

    fn read(&mut self) -> Result<Reading> {
        let mut rails_mw = Vec::new();
        for p in &mut self.parts {
            rails_mw.extend(p.read()?.rails_mw);
        }
        Ok(Reading {
            rails_mw,
            energy_mj: None,
        })
    }
}

/// The sysfs monitors of this board as one source: INA238 `VIN` together with the INA3221
/// module rails where both exist (AGX Thor), else whichever exists; `Ok(None)` when neither.
/// An INA238 with a malformed value is an error (not a silent fall back to the module rails,
/// which would change what the total means).
pub fn discover_sysfs(sysfs_root: &std::path::Path) -> Result<Option<Box<dyn PowerSource>>> {
    let vin = match ina238::Ina238::discover(sysfs_root) {
        Ok(s) => Some(s),
        Err(e @ Error::Unavailable { .. }) => {
            log::info!("no INA238 power monitor: {e}");
            None
        }
        Err(e) => return Err(e),
    };
    let module = match ina3221::Ina3221::discover(sysfs_root) {
        Ok(s) => Some(s),
        Err(e) => {
            log::info!("no INA3221 power monitor: {e}");
            None
        }
    };
    Ok(match (vin, module) {
        (Some(a), Some(b)) => Some(Box::new(Combined::new(vec![Box::new(a), Box::new(b)])?)),
        (Some(a), None) => Some(Box::new(a)),
        (None, Some(b)) => Some(Box::new(b)),
        (None, None) => None,
    })
}

/// A running sampler thread. Dropping it without [`Sampler::stop`] stops it too.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<PowerTrace>>>,
}

impl Sampler {
    /// Start polling `source` every `period` in a new thread; sample 0 is taken at once.
    pub fn start(
        mut source: Box<dyn PowerSource>,
        period: Duration,
        epoch: Instant,
    ) -> Result<Sampler> {
        if period.is_zero() {
            return Err(Error::Invalid(
                "power sampling period must be above 0 (e.g. --period 20ms)".into(),
            ));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name(format!("power-{}", source.name()))
            .spawn(move || {
                let mut trace = PowerTrace::new(source.name(), source.rails(), period);
                let mut next = Instant::now();
                loop {
                    // Check the flag before reading so the last sample is taken after stop()
                    // was requested: the trace then covers the window's end.
                    let last = flag.load(Ordering::Acquire);
                    let t = Instant::now();
                    match source.read() {
                        Ok(r) => {
                            // Timestamp at the middle of the read: a sysfs pass over several
                            // files takes tens of microseconds.
                            let mid = t + (Instant::now() - t) / 2;
                            trace.push(mid.saturating_duration_since(epoch).as_secs_f64(), &r);
                        }
                        Err(e) => {
                            log::debug!("power sample dropped: {e}");
                            trace.dropped += 1;
                        }
                    }
                    if last {
                        break;
                    }
                    // Fixed-rate schedule (no drift); if we fell behind, resync instead of
                    // bursting.
                    next += period;
                    let now = Instant::now();
                    if next > now {
                        sleep_unless_stopped(&flag, next - now);
                    } else {
                        next = now;
                    }
                }
                Ok(trace)
            })
            .map_err(|e| Error::internal(format!("cannot start the power sampler thread: {e}")))?;
        Ok(Sampler {
            stop,
            handle: Some(handle),
        })
    }

    /// Stop the thread (after one final sample) and return its trace.
    pub fn stop(mut self) -> Result<PowerTrace> {
        self.stop.store(true, Ordering::Release);
        let h = self.handle.take().expect("sampler joined twice");
        h.join()
            .map_err(|_| Error::internal("the power sampler thread panicked"))?
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Sleep up to `d`, waking early (in 5 ms steps) when `flag` is set, so stop() is prompt even
/// with a long period.
fn sleep_unless_stopped(flag: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    loop {
        if flag.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(5)));
    }
}

/// Which sampler `--power` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerChoice {
    Auto,
    Off,
    Ina3221,
    Ina238,
    Tegrastats,
    Nvml,
}

impl std::str::FromStr for PowerChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "auto" => PowerChoice::Auto,
            "off" => PowerChoice::Off,
            "ina3221" => PowerChoice::Ina3221,
            "ina238" => PowerChoice::Ina238,
            "tegrastats" => PowerChoice::Tegrastats,
            "nvml" => PowerChoice::Nvml,
            _ => {
                return Err(format!(
                    "unknown power source '{s}' (auto, off, ina3221, ina238, tegrastats, nvml)"
                ))
            }
        })
    }
}

/// A started sampler of any kind.
pub enum RunningSampler {
    Polled(Sampler),
    Tegrastats(tegrastats::TegrastatsSampler),
}

impl RunningSampler {
    pub fn stop(self) -> Result<PowerTrace> {
        match self {
            RunningSampler::Polled(s) => s.stop(),
            RunningSampler::Tegrastats(s) => s.stop(),
        }
    }
}

/// Start the sampler `choice` names. `auto` tries the sysfs monitors ([`discover_sysfs`]:
/// INA238 + INA3221 on Thor, INA3221 elsewhere), then NVML, and returns `Ok(None)` when none
/// exists (tegrastats is never picked automatically: sysfs gives the same rails at a far higher
/// rate). An explicitly requested source that is absent is an error; `ina238` and `ina3221`
/// each give that chip's rails alone.
pub fn start(
    choice: PowerChoice,
    sysfs_root: &std::path::Path,
    period: Duration,
    epoch: Instant,
) -> Result<Option<RunningSampler>> {
    let polled = |src: Box<dyn PowerSource>| -> Result<Option<RunningSampler>> {
        Ok(Some(RunningSampler::Polled(Sampler::start(
            src, period, epoch,
        )?)))
    };
    match choice {
        PowerChoice::Off => Ok(None),
        PowerChoice::Ina3221 => polled(Box::new(ina3221::Ina3221::discover(sysfs_root)?)),
        PowerChoice::Ina238 => polled(Box::new(ina238::Ina238::discover(sysfs_root)?)),
        PowerChoice::Nvml => polled(Box::new(nvml::NvmlSource::open(0)?)),
        PowerChoice::Tegrastats => Ok(Some(RunningSampler::Tegrastats(
            tegrastats::TegrastatsSampler::start(period, epoch)?,
        ))),
        PowerChoice::Auto => {
            if let Some(s) = discover_sysfs(sysfs_root)? {
                return polled(s);
            }
            match nvml::NvmlSource::open(0) {
                Ok(s) => polled(Box::new(s)),
                Err(e) => {
                    log::info!("no NVML power: {e}");
                    Ok(None)
                }
            }
        }
    }
}
