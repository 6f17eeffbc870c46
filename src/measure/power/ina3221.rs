//! Jetson INA3221 power monitors through sysfs.
//!
//! Layouts (see `../shared/reference/power/INA3221_AND_TEGRASTATS_FACTS.md` §1):
//! - mainline hwmon driver (JetPack 5/6/7): `<sysfs>/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmon<N>/`
//!   with `in<k>_label`, `in<k>_input` (mV), `curr<k>_input` (mA), k = 1..3. There is no
//!   power file: P(mW) = mV × mA / 1000 (the raw product is µW). `N` is not stable across
//!   boots or boards, so it is always discovered by listing, never assumed. Channel 7 is the
//!   "sum of shunt voltages", not a rail. Fallback: `<sysfs>/bus/i2c/devices/*/hwmon/hwmon*`
//!   whose `name` is `ina3221`.
//! - legacy IIO driver `ina3221x` (JetPack 4): `<sysfs>/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:device<N>/`
//!   with `rail_name_<k>`, `in_voltage<k>_input`, `in_current<k>_input`, `in_power<k>_input`
//!   (mW), k = 0..2.
//!
//! Skipped channels: no label, label `NC` (unconnected on AGX Orin's 0x41 chip), and channels
//! whose value files fail with ENODATA (the driver's answer for a disabled channel). Every skip
//! is kept with its reason in [`Ina3221::skipped`].
//!
//! File reads go through a [`ReadFn`] so tests can inject the errno a real sysfs attribute
//! returns: a regular file in a fixture tree cannot fail with ENODATA, so the fixture marks the
//! file and the test's reader returns `io::Error::from_raw_os_error(ENODATA)` for it, exercising
//! exactly the error-kind mapping the real reader sees.

use super::{PowerSource, Reading};
use crate::{Error, Result};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// ENODATA on Linux (asm-generic errno, the same on x86_64 and aarch64).
pub const ENODATA: i32 = 61;

/// Reads one sysfs attribute as text.
pub type ReadFn = Arc<dyn Fn(&Path) -> io::Result<String> + Send + Sync>;

pub(super) fn real_reader() -> ReadFn {
    Arc::new(|p: &Path| {
        use std::io::Read;
        // A FIFO or device in a (test or hostile) sysfs tree must not block or fill memory.
        if !std::fs::metadata(p)?.file_type().is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let mut s = String::new();
        std::fs::File::open(p)?
            .take(1 << 20)
            .read_to_string(&mut s)?;
        Ok(s)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Hwmon,
    Iio,
}

/// A discovered rail.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub label: String,
    /// `<bus>-<addr>` of the chip, e.g. `1-0040`.
    pub chip: String,
    /// The hwmon or IIO directory holding the files.
    pub dir: PathBuf,
    /// Channel number as the driver numbers it (1..3 hwmon, 0..2 IIO).
    pub index: u32,
    layout: Layout,
    has_power_file: bool,
}

impl Channel {
    fn volt(&self) -> PathBuf {
        match self.layout {
            Layout::Hwmon => self.dir.join(format!("in{}_input", self.index)),
            Layout::Iio => self.dir.join(format!("in_voltage{}_input", self.index)),
        }
    }
    fn curr(&self) -> PathBuf {
        match self.layout {
            Layout::Hwmon => self.dir.join(format!("curr{}_input", self.index)),
            Layout::Iio => self.dir.join(format!("in_current{}_input", self.index)),
        }
    }
    fn power(&self) -> PathBuf {
        self.dir.join(format!("in_power{}_input", self.index))
    }
}

/// What a value read came to.
enum Value {
    Ok(f64),
    /// ENODATA: the channel is disabled.
    NoData,
}

fn read_value(reader: &ReadFn, p: &Path) -> Result<Value> {
    match reader(p) {
        // hwmon writes whole non-negative numbers (mV, mA, uW): NaN, inf, a sign or a
        // fraction means the file is not what it should be, and would poison every total.
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&v| v < 1 << 40)
            .map(|v| Value::Ok(v as f64))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: expected a whole non-negative number, found {:?}",
                    p.display(),
                    s.trim().chars().take(40).collect::<String>()
                ))
            }),
        Err(e) if e.raw_os_error() == Some(ENODATA) => Ok(Value::NoData),
        Err(e) => Err(Error::io(p, e)),
    }
}

/// The INA3221 rails of this board.
pub struct Ina3221 {
    channels: Vec<Channel>,
    skipped: Vec<String>,
    reader: ReadFn,
    layout_name: &'static str,
}

impl std::fmt::Debug for Ina3221 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ina3221")
            .field("layout", &self.layout_name)
            .field("channels", &self.channels)
            .field("skipped", &self.skipped)
            .finish()
    }
}

pub(super) fn sorted_dirs(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(String, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let p = e.path();
            (keep(&name) && p.is_dir()).then_some((name, p))
        })
        .collect();
    // Numeric-aware enough for hwmon2 vs hwmon10: sort by (len, name).
    v.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
    v
}

/// `1-0040` style chip directory names.
pub(super) fn is_chip_name(n: &str) -> bool {
    n.split_once('-').is_some_and(|(bus, addr)| {
        !bus.is_empty()
            && bus.bytes().all(|b| b.is_ascii_digit())
            && !addr.is_empty()
            && addr.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

impl Ina3221 {
    /// Discover rails under `sysfs_root` (normally `/sys`).
    pub fn discover(sysfs_root: &Path) -> Result<Self> {
        Self::discover_with(sysfs_root, real_reader())
    }

    /// Discover with a custom attribute reader (tests inject errno values through it).
    pub fn discover_with(sysfs_root: &Path, reader: ReadFn) -> Result<Self> {
        let mut me = Ina3221 {
            channels: Vec::new(),
            skipped: Vec::new(),
            reader,
            layout_name: "ina3221",
        };
        let i2c = sysfs_root.join("bus/i2c");
        // 1. mainline driver directory.
        let mut hwmon_dirs: Vec<(String, PathBuf)> = Vec::new();
        for (chip, cdir) in sorted_dirs(&i2c.join("drivers/ina3221"), is_chip_name) {
            for (_, h) in sorted_dirs(&cdir.join("hwmon"), |n| n.starts_with("hwmon")) {
                hwmon_dirs.push((chip.clone(), h));
            }
        }
        // 2. devices/ with name == ina3221 (some kernels or containers expose only this view).
        if hwmon_dirs.is_empty() {
            for (chip, cdir) in sorted_dirs(&i2c.join("devices"), is_chip_name) {
                for (_, h) in sorted_dirs(&cdir.join("hwmon"), |n| n.starts_with("hwmon")) {
                    let name = (me.reader)(&h.join("name")).unwrap_or_default();
                    if name.trim() == "ina3221" {
                        hwmon_dirs.push((chip.clone(), h));
                    }
                }
            }
        }
        for (chip, dir) in &hwmon_dirs {
            for k in 1..=3 {
                me.consider(chip, dir, k, Layout::Hwmon)?;
            }
        }
        // 3. legacy IIO driver (JetPack 4).
        if hwmon_dirs.is_empty() {
            for (chip, cdir) in sorted_dirs(&i2c.join("drivers/ina3221x"), is_chip_name) {
                for (_, d) in sorted_dirs(&cdir, |n| n.starts_with("iio:device")) {
                    me.layout_name = "ina3221x";
                    for k in 0..=2 {
                        me.consider(&chip, &d, k, Layout::Iio)?;
                    }
                }
            }
        }
        // Two channels with one label (a device tree typo, a copied fixture) would count the
        // rail twice in every total.
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = me.channels.iter().find(|c| !seen.insert(c.label.as_str())) {
            return Err(Error::Invalid(format!(
                "INA3221 rail {} appears on two channels (the second on {}); the total would count it twice: fix the rail labels or measure with --power tegrastats|nvml|off",
                dup.label, dup.chip
            )));
        }
        if me.channels.is_empty() {
            let why = if me.skipped.is_empty() {
                format!(
                    "no INA3221 device under {} (looked in drivers/ina3221/*/hwmon/hwmon*, devices/*/hwmon/hwmon* named ina3221, drivers/ina3221x/*/iio:device*)",
                    i2c.display()
                )
            } else {
                format!(
                    "every INA3221 channel was skipped: {}",
                    me.skipped.join("; ")
                )
            };
            return Err(Error::Unavailable {
                what: "INA3221 power monitor".into(),
                why,
                fix: "run on a Jetson, pass --sysfs-root where /sys is mounted, or use --power tegrastats|nvml|off".into(),
            });
        }
        Ok(me)
    }

    fn consider(&mut self, chip: &str, dir: &Path, k: u32, layout: Layout) -> Result<()> {
        let label_file = match layout {
            Layout::Hwmon => dir.join(format!("in{k}_label")),
            Layout::Iio => dir.join(format!("rail_name_{k}")),
        };
        let label = match (self.reader)(&label_file) {
            Ok(s) => s.trim().to_string(),
            // No label: the device tree names no rail on this channel.
            Err(_) => return Ok(()),
        };
        if label.is_empty() || label.eq_ignore_ascii_case("NC") {
            self.skipped.push(format!(
                "{}: label {:?} (not connected)",
                label_file.display(),
                label
            ));
            return Ok(());
        }
        let ch = Channel {
            label,
            chip: chip.to_string(),
            dir: dir.to_path_buf(),
            index: k,
            layout,
            has_power_file: layout == Layout::Iio
                && dir.join(format!("in_power{k}_input")).exists(),
        };
        // Probe once: a disabled channel answers ENODATA.
        // A named rail that cannot be read is an error, not a skip: leaving it out would
        // silently change what the total (VDD_IN, say) means.
        match self.read_channel(&ch) {
            Ok(Some(_)) => self.channels.push(ch),
            Ok(None) => self.skipped.push(format!(
                "{} {}: no data (ENODATA: channel disabled)",
                ch.chip, ch.label
            )),
            Err(e) => {
                return Err(Error::Invalid(format!(
                    "INA3221 rail {} on {} is unreadable ({e}); without it the power total would change meaning: fix the sysfs files or measure with --power tegrastats|nvml|off",
                    ch.label, ch.chip
                )))
            }
        }
        Ok(())
    }

    /// Milliwatts of one channel; `None` for ENODATA.
    fn read_channel(&self, ch: &Channel) -> Result<Option<f64>> {
        if ch.has_power_file {
            return Ok(match read_value(&self.reader, &ch.power())? {
                Value::Ok(mw) => Some(mw),
                Value::NoData => None,
            });
        }
        let mv = match read_value(&self.reader, &ch.volt())? {
            Value::Ok(v) => v,
            Value::NoData => return Ok(None),
        };
        let ma = match read_value(&self.reader, &ch.curr())? {
            Value::Ok(v) => v,
            Value::NoData => return Ok(None),
        };
        // mV x mA = uW.
        Ok(Some(mv * ma / 1000.0))
    }

    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// Channels left out, with the reason.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// `ina3221` (hwmon) or `ina3221x` (legacy IIO).
    pub fn layout(&self) -> &'static str {
        self.layout_name
    }
}

impl PowerSource for Ina3221 {
    fn name(&self) -> &str {
        self.layout_name
    }

    fn rails(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.label.clone()).collect()
    }

    fn read(&mut self) -> Result<Reading> {
        let mut v = Vec::with_capacity(self.channels.len());
        for ch in &self.channels {
            match self.read_channel(ch)? {
                Some(mw) => v.push(mw),
                None => {
                    return Err(Error::Invalid(format!(
                        "{} {}: channel returned ENODATA mid-run",
                        ch.chip, ch.label
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
