//! Jetson AGX Thor carrier-board system input: the INA238 power monitor through sysfs.
//!
//! See `../shared/reference/power/INA3221_AND_TEGRASTATS_FACTS.md` §5 "Jetson AGX Thor".
//! The mainline `ina238` hwmon driver exposes one channel per chip: `in0_input` shunt voltage
//! (mV), `in1_input` bus voltage (mV), `curr1_input` (mA), `power1_input` (**µW**, unlike the
//! INA3221 which has no power file) and `temp1_input` (m°C).
//!
//! Discovery looks in the same `--sysfs-root` as [`super::ina3221`] and takes the union of
//! three views of the same devices, deduplicated by canonical path (on a real board they are
//! symlinks to one `/sys/devices/...` directory):
//! - `<sysfs>/bus/i2c/drivers/ina238/<bus>-<addr>/hwmon/hwmon*`;
//! - `<sysfs>/bus/i2c/devices/<bus>-<addr>/hwmon/hwmon*` where the device's `name` or the
//!   hwmon `name` reads `ina238` (how jtop finds it);
//! - `<sysfs>/class/hwmon/hwmon*` whose `name` reads `ina238`.
//!
//! The rail is named `VIN` as jtop names it (`VIN_1`, `VIN_2`, ... in discovery order when a
//! board has several), and [`super::total_rails`] takes it as the total: it measures the whole
//! system input, so the module rails are recorded beside it but never added to it.
//!
//! Power per sample: `power1_input` / 1000 (µW → mW). When `power1_input` is absent, or a read
//! of it fails (I/O error or ENODATA), `in1_input` × `curr1_input` / 1000 is used instead.
//! ENODATA on the voltage or current file means the chip has no data, as for the INA3221: the
//! device is skipped at discovery (kept in [`Ina238::skipped`]) and a sample is dropped mid-run.
//! A value that is not a number is an error naming the file, at discovery and mid-run.

use super::ina3221::{is_chip_name, real_reader, sorted_dirs, ReadFn, ENODATA};
use super::{PowerSource, Reading};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The hwmon `name` (and i2c device `name`) of the chip.
pub const HWMON_NAME: &str = "ina238";

/// One discovered INA238.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// `VIN`, or `VIN_<n>` when the board has several.
    pub rail: String,
    /// `<bus>-<addr>` of the chip (e.g. `2-0044`), or the hwmon directory's name when only
    /// `class/hwmon` shows it.
    pub chip: String,
    /// The hwmon directory holding the files.
    pub dir: PathBuf,
    /// `power1_input` answered at discovery; otherwise every sample is bus mV × mA.
    pub has_power_file: bool,
}

impl Device {
    fn power(&self) -> PathBuf {
        self.dir.join("power1_input")
    }
    fn volt(&self) -> PathBuf {
        self.dir.join("in1_input")
    }
    fn curr(&self) -> PathBuf {
        self.dir.join("curr1_input")
    }
}

/// What reading one value file came to.
enum Value {
    Ok(f64),
    /// ENODATA: the chip has no data.
    NoData,
    /// Any other read error (absent file, EIO, ...).
    Unreadable(std::io::Error),
}

/// Read one value; a value that is not a number is the error (one line, file and fix named).
fn read_value(reader: &ReadFn, p: &Path, unit: &str) -> Result<Value> {
    match reader(p) {
        Ok(s) => match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Value::Ok(v)),
            _ => Err(Error::Invalid(format!(
                "{}: expected a number ({unit}) from the ina238 hwmon driver, found {:?}; \
                 point --sysfs-root at a real sysfs mount, or pick another source with \
                 --power ina3221|tegrastats|nvml|off",
                p.display(),
                s.trim()
            ))),
        },
        Err(e) if e.raw_os_error() == Some(ENODATA) => Ok(Value::NoData),
        Err(e) => Ok(Value::Unreadable(e)),
    }
}

/// The INA238 monitors of this board.
pub struct Ina238 {
    devices: Vec<Device>,
    skipped: Vec<String>,
    reader: ReadFn,
}

impl std::fmt::Debug for Ina238 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ina238")
            .field("devices", &self.devices)
            .field("skipped", &self.skipped)
            .finish()
    }
}

fn reads_name(reader: &ReadFn, file: &Path) -> bool {
    reader(file).is_ok_and(|s| s.trim().eq_ignore_ascii_case(HWMON_NAME))
}

fn hwmon_dirs(dir: &Path) -> Vec<(String, PathBuf)> {
    sorted_dirs(&dir.join("hwmon"), |n| n.starts_with("hwmon"))
}

/// The `<bus>-<addr>` directory two levels above a canonical hwmon directory, if it is one.
fn chip_of(canonical: &Path) -> Option<String> {
    let chip = canonical.parent()?.parent()?.file_name()?.to_str()?;
    is_chip_name(chip).then(|| chip.to_string())
}

impl Ina238 {
    /// Discover INA238 chips under `sysfs_root` (normally `/sys`).
    pub fn discover(sysfs_root: &Path) -> Result<Self> {
        Self::discover_with(sysfs_root, real_reader())
    }

    /// Discover with a custom attribute reader (tests inject errno values through it).
    pub fn discover_with(sysfs_root: &Path, reader: ReadFn) -> Result<Self> {
        let i2c = sysfs_root.join("bus/i2c");
        // (chip, hwmon dir) from every view, in this order.
        let mut found: Vec<(String, PathBuf)> = Vec::new();
        for (chip, cdir) in sorted_dirs(&i2c.join("drivers/ina238"), is_chip_name) {
            for (_, h) in hwmon_dirs(&cdir) {
                found.push((chip.clone(), h));
            }
        }
        for (chip, cdir) in sorted_dirs(&i2c.join("devices"), is_chip_name) {
            let device_named = reads_name(&reader, &cdir.join("name"));
            for (_, h) in hwmon_dirs(&cdir) {
                if device_named || reads_name(&reader, &h.join("name")) {
                    found.push((chip.clone(), h));
                }
            }
        }
        for (hname, h) in sorted_dirs(&sysfs_root.join("class/hwmon"), |n| n.starts_with("hwmon")) {
            if reads_name(&reader, &h.join("name")) {
                found.push((hname, h));
            }
        }

        let mut seen: Vec<PathBuf> = Vec::new();
        let mut devices: Vec<Device> = Vec::new();
        let mut skipped: Vec<String> = Vec::new();
        for (chip, dir) in found {
            let canonical = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
            if seen.contains(&canonical) {
                continue;
            }
            let chip = chip_of(&canonical).unwrap_or(chip);
            seen.push(canonical);
            let mut dev = Device {
                rail: String::new(),
                chip,
                dir,
                has_power_file: false,
            };
            dev.has_power_file = matches!(read_value(&reader, &dev.power(), "µW")?, Value::Ok(_));
            // Probe once: a chip without data answers ENODATA.
            match read_device(&reader, &dev)? {
                Ok(_) => devices.push(dev),
                Err(why) => skipped.push(format!("{} {}: {why}", dev.chip, dev.dir.display())),
            }
        }
        if devices.is_empty() {
            let why = if skipped.is_empty() {
                format!(
                    "no INA238 device under {} (looked in bus/i2c/drivers/ina238/*/hwmon/hwmon*, bus/i2c/devices/*/hwmon/hwmon* and class/hwmon/hwmon* named ina238)",
                    sysfs_root.display()
                )
            } else {
                format!("every INA238 was skipped: {}", skipped.join("; "))
            };
            return Err(Error::Unavailable {
                what: "INA238 power monitor".into(),
                why,
                fix: "run on a Jetson AGX Thor, pass --sysfs-root where /sys is mounted, or use --power ina3221|tegrastats|nvml|off".into(),
            });
        }
        let several = devices.len() > 1;
        for (i, d) in devices.iter_mut().enumerate() {
            d.rail = if several {
                format!("VIN_{}", i + 1)
            } else {
                "VIN".to_string()
            };
        }
        Ok(Ina238 {
            devices,
            skipped,
            reader,
        })
    }

    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// Devices left out, with the reason.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}

/// Milliwatts of one device. The outer error is a malformed value (fatal to the sample or to
/// discovery); the inner one says why there is no value (ENODATA or unreadable files).
fn read_device(reader: &ReadFn, d: &Device) -> Result<std::result::Result<f64, String>> {
    if d.has_power_file {
        match read_value(reader, &d.power(), "µW")? {
            Value::Ok(uw) => return Ok(Ok(uw / 1000.0)),
            // Fall back to bus voltage × current for this sample.
            Value::NoData | Value::Unreadable(_) => {}
        }
    }
    let mut vi = [0.0; 2];
    for (slot, (p, unit)) in vi.iter_mut().zip([(d.volt(), "mV"), (d.curr(), "mA")]) {
        match read_value(reader, &p, unit)? {
            Value::Ok(v) => *slot = v,
            Value::NoData => return Ok(Err(format!("{}: no data (ENODATA)", p.display()))),
            Value::Unreadable(e) => {
                return Ok(Err(format!(
                    "{}: unreadable ({e}) and no readable power1_input",
                    p.display()
                )))
            }
        }
    }
    // mV × mA = µW.
    Ok(Ok(vi[0] * vi[1] / 1000.0))
}

impl PowerSource for Ina238 {
    fn name(&self) -> &str {
        HWMON_NAME
    }

    fn rails(&self) -> Vec<String> {
        self.devices.iter().map(|d| d.rail.clone()).collect()
    }

    fn read(&mut self) -> Result<Reading> {
        let mut v = Vec::with_capacity(self.devices.len());
        for d in &self.devices {
            match read_device(&self.reader, d)? {
                Ok(mw) => v.push(mw),
                Err(why) => {
                    return Err(Error::Invalid(format!(
                        "{} {}: {why} mid-run",
                        d.chip, d.rail
                    )))
                }
            }
        }
        Ok(Reading {
            rails_mw: v,
            energy_mj: None,
        })
    }
}
