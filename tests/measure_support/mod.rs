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

/// One INA238 hwmon directory (mainline `ina238` driver): `name`, `in0_input` shunt mV,
/// `in1_input` bus mV, `curr1_input` mA, `power1_input` µW (left out when `uw` is `None`),
/// `temp1_input` m°C.
pub fn ina238_hwmon(root: &Path, dir: &str, mv: &str, ma: &str, uw: Option<&str>) {
    write(root, &format!("{dir}/name"), "ina238");
    write(root, &format!("{dir}/in0_input"), "7");
    write(root, &format!("{dir}/in1_input"), mv);
    write(root, &format!("{dir}/curr1_input"), ma);
    if let Some(uw) = uw {
        write(root, &format!("{dir}/power1_input"), uw);
    }
    write(root, &format!("{dir}/temp1_input"), "41250");
}

/// Symlink `root/link` -> `root/target` (absolute), as sysfs links its views of one device.
pub fn link(root: &Path, target: &str, link: &str) {
    let l = root.join(link);
    std::fs::create_dir_all(l.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(root.join(target), l).unwrap();
}

/// The Thor INA238's device directory (the one real path the sysfs views link to).
pub const THOR_INA238_DEVICE: &str = "devices/platform/bus@0/c250000.i2c/i2c-2/2-0044";
/// Its hwmon directory, where the value files are.
pub const THOR_INA238: &str = "devices/platform/bus@0/c250000.i2c/i2c-2/2-0044/hwmon/hwmon3";
/// The Thor INA3221 (module rails) hwmon directory.
pub const THOR_INA3221: &str = "bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1";
/// The Thor fixture's VIN: power1_input 28 812 500 µW = 28 812.5 mW (the chip's own power
/// register; slightly off bus mV × mA = 19 200 × 1 500 / 1000 = 28 800 mW, so a test can tell
/// which path was read).
pub const THOR_VIN_MW: f64 = 28_812.5;
pub const THOR_VIN_VI_MW: f64 = 19_200.0 * 1_500.0 / 1_000.0;

/// Jetson AGX Thor (JetPack 7.x): an INA238 at 2-0044 on the carrier-board system input
/// (19.2 V × 1.5 A), reachable as on a real board through three symlinked views
/// (bus/i2c/devices, bus/i2c/drivers/ina238, class/hwmon), plus an INA3221 at 1-0040 with
/// module rails. Values and the module rail names are made up (no public Thor rail map in
/// the reference sheet); only the INA238 file set and units come from it (§5).
pub fn agx_thor(root: &Path) {
    write(root, &format!("{THOR_INA238_DEVICE}/name"), "ina238");
    ina238_hwmon(root, THOR_INA238, "19200", "1500", Some("28812500"));
    link(root, THOR_INA238_DEVICE, "bus/i2c/devices/2-0044");
    link(root, THOR_INA238_DEVICE, "bus/i2c/drivers/ina238/2-0044");
    link(root, THOR_INA238, "class/hwmon/hwmon3");
    write(root, &format!("{THOR_INA3221}/name"), "ina3221");
    hwmon_channel(root, THOR_INA3221, 1, "VDD_GPU", "5040", "2100");
    hwmon_channel(root, THOR_INA3221, 2, "VDD_CPU_SOC_MSS", "5040", "1350");
    hwmon_channel(root, THOR_INA3221, 3, "VIN_SYS_5V0", "5000", "820");
    write(
        root,
        &format!("{THOR_INA3221}/in7_label"),
        "sum of shunt voltages",
    );
    // class/hwmon lists every hwmon device: the INA3221 and a temperature sensor are not
    // INA238s.
    link(root, THOR_INA3221, "class/hwmon/hwmon1");
    write(root, "class/hwmon/hwmon0/name", "tmp451");
    write(root, "class/hwmon/hwmon0/temp1_input", "38000");
}
