//! Device facts recorded with every result, all read without root where the board allows:
//! model string (device tree, else the CPU model), L4T release (`/etc/nv_tegra_release`),
//! nvpmodel mode (`/var/lib/nvpmodel/status` `pmode:NNNN` named through `/etc/nvpmodel.conf`),
//! GPU clock (devfreq) and EMC clock (debugfs, root only), clock locking, temperatures
//! (thermal zones) before and after the run.
//!
//! Warnings: clocks not locked (devfreq min != max, i.e. `jetson_clocks` not run), and a
//! temperature that rose by 10 °C or more or reached 85 °C (Orin starts throttling near
//! 99 °C tj; a run that heats this much is not in a steady state).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where to read from (tests and containers point these elsewhere).
#[derive(Debug, Clone)]
pub struct Roots {
    pub sysfs: PathBuf,
    pub etc: PathBuf,
    pub var: PathBuf,
    pub proc: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            sysfs: "/sys".into(),
            etc: "/etc".into(),
            var: "/var".into(),
            proc: "/proc".into(),
        }
    }
}

impl Roots {
    /// Default roots with sysfs replaced.
    pub fn with_sysfs(sysfs: &Path) -> Self {
        Roots {
            sysfs: sysfs.to_path_buf(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceContext {
    /// Device-tree model (`NVIDIA Jetson AGX Orin Developer Kit`) or the CPU model elsewhere.
    pub device_model: String,
    pub hostname: Option<String>,
    /// e.g. `R36.4.3`.
    pub l4t_release: Option<String>,
    /// e.g. `MAXN (0)`.
    pub nvpmodel: Option<String>,
    pub gpu_freq_mhz: Option<f64>,
    pub emc_freq_mhz: Option<f64>,
    /// `Some(true)` when every readable devfreq/cpufreq domain has min == max.
    pub clocks_locked: Option<bool>,
    pub temps_before_c: BTreeMap<String, f64>,
    pub temps_after_c: BTreeMap<String, f64>,
    pub warnings: Vec<String>,
}

fn read_trim(p: &Path) -> Option<String> {
    let s = std::fs::read_to_string(p).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

fn read_num(p: &Path) -> Option<f64> {
    read_trim(p)?.parse().ok()
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// `# R36 (release), REVISION: 4.3, ...` -> `R36.4.3`.
pub fn parse_l4t(text: &str) -> Option<String> {
    let first = text.lines().next()?;
    let rel = first
        .trim_start_matches('#')
        .split_whitespace()
        .next()?
        .to_string();
    let rev = first
        .split(", ")
        .find_map(|p| p.trim().strip_prefix("REVISION: "))?
        .trim()
        .to_string();
    Some(format!("{rel}.{rev}"))
}

/// Mode id from `pmode:0002` and its name from `< POWER_MODEL ID=2 NAME=MODE_30W >`.
pub fn parse_nvpmodel(status: &str, conf: Option<&str>) -> Option<String> {
    let id: u32 = status
        .lines()
        .find_map(|l| l.trim().strip_prefix("pmode:"))?
        .trim()
        .parse()
        .ok()?;
    let name = conf.and_then(|c| {
        c.lines().find_map(|l| {
            let l = l.trim();
            let body = l.strip_prefix("< POWER_MODEL")?;
            let mut lid = None;
            let mut lname = None;
            for kv in body.trim_end_matches('>').split_whitespace() {
                if let Some(v) = kv.strip_prefix("ID=") {
                    lid = v.parse::<u32>().ok();
                } else if let Some(v) = kv.strip_prefix("NAME=") {
                    lname = Some(v.to_string());
                }
            }
            (lid == Some(id)).then_some(lname).flatten()
        })
    });
    Some(match name {
        Some(n) => format!("{n} ({id})"),
        None => format!("mode {id}"),
    })
}

/// Thermal zones: type -> °C (skips absent sensors reading -256 °C or less).
pub fn temperatures(roots: &Roots) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for z in list(&roots.sysfs.join("class/thermal")) {
        let name = z.file_name().unwrap_or_default().to_string_lossy();
        if !name.starts_with("thermal_zone") {
            continue;
        }
        let (Some(ty), Some(milli)) = (read_trim(&z.join("type")), read_num(&z.join("temp")))
        else {
            continue;
        };
        let c = milli / 1000.0;
        if c > -200.0 {
            m.insert(ty, c);
        }
    }
    m
}

/// Read everything but the "after" temperatures.
pub fn collect(roots: &Roots) -> DeviceContext {
    let dt_model = read_trim(&roots.sysfs.join("firmware/devicetree/base/model"))
        .or_else(|| read_trim(&roots.proc.join("device-tree/model")));
    let cpu_model = || {
        std::fs::read_to_string(roots.proc.join("cpuinfo"))
            .ok()?
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
    };
    let device_model = dt_model
        .or_else(cpu_model)
        .unwrap_or_else(|| "unknown".to_string());
    let l4t_release = read_trim(&roots.etc.join("nv_tegra_release")).and_then(|t| parse_l4t(&t));
    let nvpmodel = read_trim(&roots.var.join("lib/nvpmodel/status")).and_then(|s| {
        let conf = std::fs::read_to_string(roots.etc.join("nvpmodel.conf")).ok();
        parse_nvpmodel(&s, conf.as_deref())
    });

    // GPU devfreq node: 17000000.ga10b (JP5) / 17000000.gpu (JP6) on Orin, *.gv11b on Xavier.
    let mut gpu_freq_mhz = None;
    let mut locked: Option<bool> = None;
    for d in list(&roots.sysfs.join("class/devfreq")) {
        let name = d
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if !(name.contains("gpu")
            || name.contains("ga10b")
            || name.contains("gv11b")
            || name.contains("gp10b"))
        {
            continue;
        }
        if let Some(hz) = read_num(&d.join("cur_freq")) {
            gpu_freq_mhz = Some(hz / 1e6);
        }
        if let (Some(lo), Some(hi)) = (read_num(&d.join("min_freq")), read_num(&d.join("max_freq")))
        {
            locked = Some(locked.unwrap_or(true) && lo == hi);
        }
    }
    for c in list(&roots.sysfs.join("devices/system/cpu/cpufreq")) {
        if let (Some(lo), Some(hi)) = (
            read_num(&c.join("scaling_min_freq")),
            read_num(&c.join("scaling_max_freq")),
        ) {
            locked = Some(locked.unwrap_or(true) && lo == hi);
        }
    }
    let emc_freq_mhz = [
        "kernel/debug/bpmp/debug/clk/emc/rate",
        "kernel/debug/clk/emc/clk_rate",
    ]
    .iter()
    .find_map(|p| read_num(&roots.sysfs.join(p)))
    .map(|hz| hz / 1e6);

    let mut ctx = DeviceContext {
        device_model,
        hostname: read_trim(&roots.etc.join("hostname")),
        l4t_release,
        nvpmodel,
        gpu_freq_mhz,
        emc_freq_mhz,
        clocks_locked: locked,
        temps_before_c: temperatures(roots),
        ..Default::default()
    };
    if ctx.clocks_locked == Some(false) {
        ctx.warnings.push(
            "clocks are not locked (min != max frequency): latency varies with DVFS; run `sudo jetson_clocks` (or set the governor to performance) for stable numbers".into(),
        );
    }
    ctx
}

impl DeviceContext {
    /// Record the temperatures after the run and warn about heating.
    pub fn finish(&mut self, roots: &Roots) {
        self.temps_after_c = temperatures(roots);
        for (zone, after) in &self.temps_after_c {
            let rise = self
                .temps_before_c
                .get(zone)
                .map(|b| after - b)
                .unwrap_or(0.0);
            if rise >= 10.0 || *after >= 85.0 {
                self.warnings.push(format!(
                    "{zone} went from {:.1} °C to {after:.1} °C: the run may have throttled; add cooling, lower the power mode or shorten the run",
                    after - rise
                ));
            }
        }
    }

    /// The parts that must match for two results to be comparable.
    pub fn identity(&self) -> (String, Option<String>) {
        (self.device_model.clone(), self.nvpmodel.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l4t_and_nvpmodel() {
        let t = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot";
        assert_eq!(parse_l4t(t).as_deref(), Some("R36.4.3"));
        let conf = "< POWER_MODEL ID=0 NAME=MAXN >\nCPU_ONLINE CORE_0 1\n< POWER_MODEL ID=2 NAME=MODE_30W >\n< PM_CONFIG DEFAULT=2 >";
        assert_eq!(
            parse_nvpmodel("pmode:0002\n", Some(conf)).as_deref(),
            Some("MODE_30W (2)")
        );
        assert_eq!(
            parse_nvpmodel("pmode:0001", None).as_deref(),
            Some("mode 1")
        );
    }
}
