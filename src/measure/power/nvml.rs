//! NVML power on desktop and datacenter GPUs. `nvml-wrapper` loads `libnvidia-ml.so.1` at run
//! time, so this builds everywhere and fails with a clear `Unavailable` where no driver exists.
//!
//! The total-energy counter (mJ since driver load, Volta and newer) is used where supported:
//! the window's energy is then the counter's difference, interpolated at the window edges.
//! Otherwise `power_usage` is sampled and integrated; on Ampere (except GA100) and newer it is
//! a 1 s average, so short windows are smeared (the report says so). On Jetson, NVML answers
//! NotSupported for power: use INA3221 there.

use super::{PowerSource, Reading};
use crate::{Error, Result};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

pub struct NvmlSource {
    nvml: Nvml,
    index: u32,
    gpu_name: String,
    has_energy: bool,
}

fn unavailable(why: String) -> Error {
    Error::Unavailable {
        what: "NVML power".into(),
        why,
        fix: "install the NVIDIA driver (libnvidia-ml.so.1), or use --power ina3221|tegrastats|off"
            .into(),
    }
}

impl NvmlSource {
    /// Open GPU `index` and probe which power readings it supports.
    pub fn open(index: u32) -> Result<Self> {
        let nvml = Nvml::init().map_err(|e| unavailable(e.to_string()))?;
        let (gpu_name, has_energy) = {
            let dev = nvml
                .device_by_index(index)
                .map_err(|e| unavailable(format!("GPU {index}: {e}")))?;
            let name = dev.name().unwrap_or_else(|_| format!("GPU {index}"));
            let has_energy = dev.total_energy_consumption().is_ok();
            match dev.power_usage() {
                Ok(_) => {}
                Err(NvmlError::NotSupported) if has_energy => {}
                Err(e) => {
                    return Err(unavailable(format!(
                        "{name}: power readings not supported ({e})"
                    )))
                }
            }
            (name, has_energy)
        };
        Ok(NvmlSource {
            nvml,
            index,
            gpu_name,
            has_energy,
        })
    }

    pub fn gpu_name(&self) -> &str {
        &self.gpu_name
    }

    pub fn has_energy_counter(&self) -> bool {
        self.has_energy
    }
}

impl PowerSource for NvmlSource {
    fn name(&self) -> &str {
        "nvml"
    }

    fn rails(&self) -> Vec<String> {
        vec!["GPU".to_string()]
    }

    fn read(&mut self) -> Result<Reading> {
        let dev = self
            .nvml
            .device_by_index(self.index)
            .map_err(|e| unavailable(e.to_string()))?;
        let mw = dev.power_usage().map(f64::from).unwrap_or(f64::NAN);
        let energy_mj = if self.has_energy {
            Some(
                dev.total_energy_consumption()
                    .map_err(|e| unavailable(e.to_string()))? as f64,
            )
        } else {
            None
        };
        if mw.is_nan() && energy_mj.is_none() {
            return Err(unavailable("power_usage failed".into()));
        }
        Ok(Reading {
            rails_mw: vec![mw],
            energy_mj,
        })
    }
}
