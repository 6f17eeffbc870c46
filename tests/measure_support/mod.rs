//! Helpers for the measure_* tests: sysfs fixture trees mirroring real Jetson layouts
//! (paths and values from ../shared/reference/power/INA3221_AND_TEGRASTATS_FACTS.md).
#![allow(dead_code)]

use std::io;
use std::path::Path;
use std::sync::Arc;
use trtforge::measure::power::ina3221::{ReadFn, ENODATA};

/// Content that marks a fixture file as "reading fails with ENODATA". A regular file cannot
/// produce that errno, so [`enodata_reader`] maps the marker to the real error value, and the
/// production code path (errno -> skip) is what runs.
pub const ENODATA_MARK: &str = "<ENODATA>";

pub fn enodata_reader() -> ReadFn {
    Arc::new(|p: &Path| {
        let s = std::fs::read_to_string(p)?;
        if s.trim() == ENODATA_MARK {
            Err(io::Error::from_raw_os_error(ENODATA))
        } else {
            Ok(s)
        }
    })
}

pub fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, format!("{content}\n")).unwrap();
}

/// One hwmon channel: label, mV, mA (or the ENODATA marker for value files).
pub fn hwmon_channel(root: &Path, dir: &str, k: u32, label: &str, mv: &str, ma: &str) {
    write(root, &format!("{dir}/in{k}_label"), label);
    write(root, &format!("{dir}/in{k}_input"), mv);
    write(root, &format!("{dir}/curr{k}_input"), ma);
    write(root, &format!("{dir}/curr{k}_crit"), "7784");
    write(root, &format!("{dir}/curr{k}_max"), "7784");
}

/// Orin NX / Orin Nano (p3767): one chip at 1-0040, rails VDD_IN, VDD_CPU_GPU_CV, VDD_SOC,
/// plus the summation channel 7. `hwmon` is the (unstable) hwmon index.
pub fn orin_nx(root: &Path, hwmon: u32) {
    let d = format!("bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon{hwmon}");
    write(root, &format!("{d}/name"), "ina3221");
    hwmon_channel(root, &d, 1, "VDD_IN", "5160", "1010");
    hwmon_channel(root, &d, 2, "VDD_CPU_GPU_CV", "5000", "160");
    hwmon_channel(root, &d, 3, "VDD_SOC", "5000", "288");
    write(root, &format!("{d}/in7_label"), "sum of shunt voltages");
    write(root, &format!("{d}/in7_input"), "1234");
    write(root, &format!("{d}/update_interval"), "6");
    // Files that are not rails sit next to the chip directory in the driver folder.
    write(root, "bus/i2c/drivers/ina3221/uevent", "");
}

/// AGX Orin (p3701): 1-0040 with VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0 and 1-0041 with
/// NC / VDDQ_VDD2_1V8AO / NC, the NC channels disabled (ENODATA), hwmon indices 5 and 6 as on
/// an R39.2 board.
pub fn agx_orin(root: &Path) {
    let a = "bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon5";
    write(root, &format!("{a}/name"), "ina3221");
    hwmon_channel(root, a, 1, "VDD_GPU_SOC", "5088", "550");
    hwmon_channel(root, a, 2, "VDD_CPU_CV", "5088", "157");
    hwmon_channel(root, a, 3, "VIN_SYS_5V0", "5024", "660");
    write(root, &format!("{a}/in7_label"), "sum of shunt voltages");
    let b = "bus/i2c/drivers/ina3221/1-0041/hwmon/hwmon6";
    write(root, &format!("{b}/name"), "ina3221");
    hwmon_channel(root, b, 1, "NC", ENODATA_MARK, ENODATA_MARK);
    hwmon_channel(root, b, 2, "VDDQ_VDD2_1V8AO", "5024", "60");
    hwmon_channel(root, b, 3, "NC", ENODATA_MARK, ENODATA_MARK);
}
