//! Power samplers. Each runs in its own thread and timestamps every sample on the monotonic
//! clock against the same epoch as the bench loop, so samples can be clipped to the measured
//! window. Sources:
//! - [`ina3221`]: Jetson INA3221 through sysfs (mainline hwmon on JetPack 5/6/7, legacy IIO
//!   `ina3221x` on JetPack 4), polled at a fixed period.
//! - [`tegrastats`]: runs `tegrastats --interval` and parses each line as it arrives (or parses a
//!   saved log).
//! - [`nvml`]: desktop/datacenter NVIDIA GPUs, NVML loaded at run time.

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
    /// Short name recorded in reports: `ina3221`, `ina3221x`, `nvml`.
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

/// Which rails make up the module's total power.
/// - Orin NX / Orin Nano / Xavier NX / TX2: `VDD_IN` alone (the others are inside it);
///   Nano: `POM_5V_IN` alone.
/// - AGX Orin has no input rail: VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0; VDDQ_VDD2_1V8AO is
///   fed from VIN_SYS_5V0 and must not be added again.
/// - Anything else (AGX Xavier, NVML's single GPU rail): the sum of all rails, as jtop does.
pub fn total_rails(rails: &[String]) -> Vec<String> {
    for input in ["VDD_IN", "POM_5V_IN"] {
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
            "tegrastats" => PowerChoice::Tegrastats,
            "nvml" => PowerChoice::Nvml,
            _ => {
                return Err(format!(
                    "unknown power source '{s}' (auto, off, ina3221, tegrastats, nvml)"
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

/// Start the sampler `choice` names. `auto` tries INA3221 sysfs, then NVML, and returns
/// `Ok(None)` when neither exists (tegrastats is never picked automatically: sysfs gives the
/// same rails at a far higher rate). An explicitly requested source that is absent is an error.
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
        PowerChoice::Nvml => polled(Box::new(nvml::NvmlSource::open(0)?)),
        PowerChoice::Tegrastats => Ok(Some(RunningSampler::Tegrastats(
            tegrastats::TegrastatsSampler::start(period, epoch)?,
        ))),
        PowerChoice::Auto => {
            match ina3221::Ina3221::discover(sysfs_root) {
                Ok(s) => return polled(Box::new(s)),
                Err(e) => log::info!("no INA3221 power monitor: {e}"),
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
