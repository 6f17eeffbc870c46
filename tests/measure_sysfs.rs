//! INA3221 and INA238 discovery and reading on sysfs fixture trees that mirror the real
//! layouts.

mod common;
mod measure_support;

use measure_support::*;
use std::time::{Duration, Instant};
use trtforge::measure::energy;
use trtforge::measure::power::ina238::Ina238;
use trtforge::measure::power::ina3221::Ina3221;
use trtforge::measure::power::{self, PowerChoice, PowerSource, RunningSampler, Sampler};

fn rails(s: &Ina3221) -> Vec<String> {
    s.channels().iter().map(|c| c.label.clone()).collect()
}

#[test]
fn orin_nx_hwmon_rails_values_and_total() {
    let t = tempfile::tempdir().unwrap();
    orin_nx(t.path(), 2);
    let mut s = Ina3221::discover(t.path()).unwrap();
    assert_eq!(s.layout(), "ina3221");
    // Channel 7 (sum of shunt voltages) is not a rail.
    assert_eq!(rails(&s), ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]);
    let r = s.read().unwrap();
    // mV x mA / 1000 = mW: 5160 x 1010 / 1000 = 5211.6 mW.
    assert_eq!(r.rails_mw, vec![5211.6, 800.0, 1440.0]);
    assert_eq!(
        trtforge::measure::power::total_rails(&s.rails()),
        ["VDD_IN"]
    );
}

#[test]
fn unstable_hwmon_index_is_discovered() {
    for idx in [0, 3, 12] {
        let t = tempfile::tempdir().unwrap();
        orin_nx(t.path(), idx);
        let s = Ina3221::discover(t.path()).unwrap();
        assert_eq!(s.channels().len(), 3, "hwmon{idx}");
        assert!(s.channels()[0]
            .dir
            .ends_with(format!("1-0040/hwmon/hwmon{idx}")));
    }
}

#[test]
fn agx_orin_skips_nc_and_enodata_and_sums_three_rails() {
    let t = tempfile::tempdir().unwrap();
    agx_orin(t.path());
    let mut s = Ina3221::discover_with(t.path(), enodata_reader()).unwrap();
    assert_eq!(
        rails(&s),
        [
            "VDD_GPU_SOC",
            "VDD_CPU_CV",
            "VIN_SYS_5V0",
            "VDDQ_VDD2_1V8AO"
        ]
    );
    assert_eq!(s.channels()[3].chip, "1-0041");
    let skipped = s.skipped().join("\n");
    assert_eq!(s.skipped().len(), 2, "{skipped}");
    assert!(
        skipped.contains("in1_label") && skipped.contains("in3_label"),
        "{skipped}"
    );
    // VDDQ_VDD2_1V8AO is fed from VIN_SYS_5V0: not part of the total.
    assert_eq!(
        trtforge::measure::power::total_rails(&s.rails()),
        ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"]
    );
    let r = s.read().unwrap();
    assert_eq!(r.rails_mw[0], 5088.0 * 550.0 / 1000.0);
    assert_eq!(r.rails_mw[3], 5024.0 * 60.0 / 1000.0);
}

#[test]
fn labelled_channel_answering_enodata_is_skipped() {
    // A channel with a real label whose value files fail with ENODATA (disabled in the
    // device tree) must be skipped, not read as 0 W.
    let t = tempfile::tempdir().unwrap();
    orin_nx(t.path(), 1);
    let d = "bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1";
    write(t.path(), &format!("{d}/in3_input"), ENODATA_MARK);
    let s = Ina3221::discover_with(t.path(), enodata_reader()).unwrap();
    assert_eq!(rails(&s), ["VDD_IN", "VDD_CPU_GPU_CV"]);
    assert!(s.skipped()[0].contains("VDD_SOC") && s.skipped()[0].contains("ENODATA"));
}

#[test]
fn devices_view_with_name_file_is_a_fallback() {
    let t = tempfile::tempdir().unwrap();
    let d = "bus/i2c/devices/1-0040/hwmon/hwmon4";
    write(t.path(), &format!("{d}/name"), "ina3221");
    hwmon_channel(t.path(), d, 1, "VDD_IN", "5016", "6050");
    // Another hwmon chip on the bus that is not an INA3221.
    let o = "bus/i2c/devices/1-004c/hwmon/hwmon1";
    write(t.path(), &format!("{o}/name"), "tmp451");
    write(t.path(), &format!("{o}/in1_label"), "NOT_A_RAIL");
    let mut s = Ina3221::discover(t.path()).unwrap();
    assert_eq!(rails(&s), ["VDD_IN"]);
    assert_eq!(s.read().unwrap().rails_mw, vec![5016.0 * 6050.0 / 1000.0]);
}

#[test]
fn legacy_iio_layout_jetpack4() {
    let t = tempfile::tempdir().unwrap();
    // Jetson Nano: POM_5V_IN (total), POM_5V_GPU, POM_5V_CPU with in_power files (mW).
    let d = "bus/i2c/drivers/ina3221x/6-0040/iio:device0";
    for (k, name, mv, ma, mw) in [
        (0, "POM_5V_IN", "5000", "1028", "5143"),
        (1, "POM_5V_GPU", "5000", "590", "2949"),
        (2, "POM_5V_CPU", "5000", "36", "179"),
    ] {
        write(t.path(), &format!("{d}/rail_name_{k}"), name);
        write(t.path(), &format!("{d}/in_voltage{k}_input"), mv);
        write(t.path(), &format!("{d}/in_current{k}_input"), ma);
        write(t.path(), &format!("{d}/in_power{k}_input"), mw);
    }
    let mut s = Ina3221::discover(t.path()).unwrap();
    assert_eq!(s.layout(), "ina3221x");
    assert_eq!(rails(&s), ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]);
    assert_eq!(s.read().unwrap().rails_mw, vec![5143.0, 2949.0, 179.0]);
    assert_eq!(
        trtforge::measure::power::total_rails(&s.rails()),
        ["POM_5V_IN"]
    );
}

#[test]
fn no_device_is_unavailable_with_the_fix() {
    let t = tempfile::tempdir().unwrap();
    let e = Ina3221::discover(t.path()).unwrap_err();
    assert!(matches!(e, trtforge::Error::Unavailable { .. }));
    assert!(e.to_string().contains("--sysfs-root"), "{e}");
}

#[test]
fn sampler_thread_on_fixture_integrates_constant_power() {
    let t = tempfile::tempdir().unwrap();
    orin_nx(t.path(), 2);
    let src = Ina3221::discover(t.path()).unwrap();
    let epoch = Instant::now();
    let s = Sampler::start(Box::new(src), Duration::from_millis(5), epoch).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let a = epoch.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(60));
    let b = epoch.elapsed().as_secs_f64();
    let trace = s.stop().unwrap();
    assert!(trace.t_s.len() >= 5, "{} samples", trace.t_s.len());
    assert!(trace.t_s.windows(2).all(|w| w[1] >= w[0]));
    assert!(
        *trace.t_s.last().unwrap() >= b,
        "last sample after the window"
    );
    let e = energy::compute(&trace, (a, b), None, 10).unwrap();
    let want = 5.2116 * (b - a);
    assert!(
        (e.energy_j - want).abs() / want < 1e-9,
        "{} vs {want}",
        e.energy_j
    );
    assert_eq!(e.rails_summed, ["VDD_IN"]);
}

/// `trtforge power sample --json` for 100 ms on the fixture tree `root`.
fn power_sample_json(root: &std::path::Path) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args([
            "power",
            "sample",
            "--duration",
            "100ms",
            "--period",
            "10ms",
            "--json",
            "--sysfs-root",
        ])
        .arg(root)
        .output()
        .unwrap();
    common::json_output(&out)
}

#[test]
fn power_sample_cli_on_fixture() {
    let t = tempfile::tempdir().unwrap();
    agx_orin(t.path());
    // The real reader sees the ENODATA marker as a non-number: those NC channels are skipped
    // by their label first, so the CLI works on this tree too.
    let v = power_sample_json(t.path());
    assert_eq!(v["energy"]["source"], "ina3221");
    let summed: Vec<&str> = v["energy"]["rails_summed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(summed, ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"]);
    let avg = v["energy"]["avg_w"].as_f64().unwrap();
    let want = (5088.0 * 550.0 + 5088.0 * 157.0 + 5024.0 * 660.0) / 1e6;
    assert!((avg - want).abs() / want < 1e-9, "{avg} vs {want}");
}

// ---- INA238 (Jetson AGX Thor carrier-board system input) ----

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(|s| s.as_str()).collect()
}

#[test]
fn thor_ina238_is_discovered_once_across_sysfs_views() {
    let t = tempfile::tempdir().unwrap();
    agx_thor(t.path());
    let s = Ina238::discover(t.path()).unwrap();
    // drivers/ina238, devices/ and class/hwmon all link to one directory: one device.
    assert_eq!(s.devices().len(), 1, "{:?}", s.devices());
    let d = &s.devices()[0];
    assert_eq!(d.rail, "VIN");
    assert_eq!(d.chip, "2-0044");
    assert!(d.has_power_file);
    assert!(
        d.dir.ends_with("2-0044/hwmon/hwmon3"),
        "{}",
        d.dir.display()
    );
    assert_eq!(s.name(), "ina238");
    assert_eq!(s.rails(), ["VIN"]);
    assert!(s.skipped().is_empty(), "{:?}", s.skipped());
}

#[test]
fn ina238_is_found_through_each_sysfs_view_alone() {
    // Only the driver directory.
    let t = tempfile::tempdir().unwrap();
    ina238_hwmon(
        t.path(),
        "bus/i2c/drivers/ina238/3-0045/hwmon/hwmon9",
        "19200",
        "1500",
        Some("28812500"),
    );
    let s = Ina238::discover(t.path()).unwrap();
    assert_eq!(s.devices()[0].chip, "3-0045");
    // Only bus/i2c/devices, matched by the device's name file (the hwmon name missing), next
    // to a non-INA238 chip.
    let t = tempfile::tempdir().unwrap();
    let d = "bus/i2c/devices/2-0044/hwmon/hwmon2";
    ina238_hwmon(t.path(), d, "19100", "1000", None);
    std::fs::remove_file(t.path().join(d).join("name")).unwrap();
    write(t.path(), "bus/i2c/devices/2-0044/name", "ina238");
    write(
        t.path(),
        "bus/i2c/devices/1-004c/hwmon/hwmon1/name",
        "tmp451",
    );
    let mut s = Ina238::discover(t.path()).unwrap();
    assert_eq!(s.devices().len(), 1);
    assert_eq!(s.devices()[0].chip, "2-0044");
    assert_eq!(s.read().unwrap().rails_mw, vec![19100.0]);
    // Only class/hwmon, a plain directory: the chip is named after the hwmon directory.
    let t = tempfile::tempdir().unwrap();
    ina238_hwmon(
        t.path(),
        "class/hwmon/hwmon7",
        "19200",
        "1500",
        Some("1000"),
    );
    write(t.path(), "class/hwmon/hwmon0/name", "ina3221");
    let mut s = Ina238::discover(t.path()).unwrap();
    assert_eq!(s.devices().len(), 1);
    assert_eq!(s.devices()[0].chip, "hwmon7");
    assert_eq!(s.read().unwrap().rails_mw, vec![1.0]);
}

#[test]
fn ina238_power1_input_microwatts_become_milliwatts() {
    let t = tempfile::tempdir().unwrap();
    agx_thor(t.path());
    let mut s = Ina238::discover(t.path()).unwrap();
    // 28 812 500 µW / 1000: the power register, not bus mV x mA (28 800).
    assert_eq!(s.read().unwrap().rails_mw, vec![THOR_VIN_MW]);
    // Every sample rereads the file.
    write(t.path(), &format!("{THOR_INA238}/power1_input"), "30000000");
    assert_eq!(s.read().unwrap().rails_mw, vec![30_000.0]);
}

#[test]
fn ina238_without_power1_input_uses_bus_voltage_times_current() {
    let t = tempfile::tempdir().unwrap();
    agx_thor(t.path());
    std::fs::remove_file(t.path().join(THOR_INA238).join("power1_input")).unwrap();
    let mut s = Ina238::discover(t.path()).unwrap();
    assert!(!s.devices()[0].has_power_file);
    // 19 200 mV x 1 500 mA / 1000 = 28 800 mW.
    assert_eq!(s.read().unwrap().rails_mw, vec![THOR_VIN_VI_MW]);
    assert_eq!(THOR_VIN_VI_MW, 28_800.0);
    write(t.path(), &format!("{THOR_INA238}/curr1_input"), "2000");
    assert_eq!(s.read().unwrap().rails_mw, vec![38_400.0]);
}

#[test]
fn ina238_power1_input_unreadable_mid_run_falls_back_per_sample() {
    let t = tempfile::tempdir().unwrap();
    agx_thor(t.path());
    let power = format!("{THOR_INA238}/power1_input");
    let mut s = Ina238::discover_with(t.path(), enodata_reader()).unwrap();
    assert!(s.devices()[0].has_power_file);
    assert_eq!(s.read().unwrap().rails_mw, vec![THOR_VIN_MW]);
    // ENODATA on the power file: bus mV x mA for that sample.
    write(t.path(), &power, ENODATA_MARK);
    assert_eq!(s.read().unwrap().rails_mw, vec![THOR_VIN_VI_MW]);
    // The file gone (an I/O error): the same fallback.
    std::fs::remove_file(t.path().join(&power)).unwrap();
    assert_eq!(s.read().unwrap().rails_mw, vec![THOR_VIN_VI_MW]);
    // Back again: the power register is read again.
    write(t.path(), &power, "28812500");
    assert_eq!(s.read().unwrap().rails_mw, vec![THOR_VIN_MW]);
    // ENODATA at discovery: no power file, bus mV x mA from the start.
    write(t.path(), &power, ENODATA_MARK);
    let mut s = Ina238::discover_with(t.path(), enodata_reader()).unwrap();
    assert!(!s.devices()[0].has_power_file);
    assert_eq!(s.read().unwrap().rails_mw, vec![THOR_VIN_VI_MW]);
}

#[test]
fn ina238_enodata_skips_the_chip_and_drops_samples_mid_run() {
    // No power file and a bus voltage answering ENODATA: the chip has no data, it is skipped,
    // and with no other INA238 the source is unavailable (not 0 W).
    let t = tempfile::tempdir().unwrap();
    agx_thor(t.path());
    std::fs::remove_file(t.path().join(THOR_INA238).join("power1_input")).unwrap();
    write(t.path(), &format!("{THOR_INA238}/in1_input"), ENODATA_MARK);
    let e = Ina238::discover_with(t.path(), enodata_reader()).unwrap_err();
    assert!(matches!(e, trtforge::Error::Unavailable { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("ENODATA") && msg.contains("in1_input") && msg.contains("2-0044"),
        "{msg}"
    );
    // Two chips, one without data: the other is the only one, named VIN (not VIN_2).
    let t = tempfile::tempdir().unwrap();
    let a = "bus/i2c/drivers/ina238/2-0044/hwmon/hwmon3";
    let b = "bus/i2c/drivers/ina238/2-0045/hwmon/hwmon4";
    ina238_hwmon(t.path(), a, ENODATA_MARK, ENODATA_MARK, None);
    ina238_hwmon(t.path(), b, "12000", "500", None);
    let mut s = Ina238::discover_with(t.path(), enodata_reader()).unwrap();
    assert_eq!(s.rails(), ["VIN"]);
    assert_eq!(s.devices()[0].chip, "2-0045");
    assert_eq!(s.skipped().len(), 1, "{:?}", s.skipped());
    assert!(s.skipped()[0].contains("2-0044") && s.skipped()[0].contains("ENODATA"));
    assert_eq!(s.read().unwrap().rails_mw, vec![6000.0]);
    // ENODATA mid-run: the sample fails (the sampler drops it), it is not read as 0 W.
    write(t.path(), &format!("{b}/curr1_input"), ENODATA_MARK);
    let e = s.read().unwrap_err().to_string();
    assert!(e.contains("ENODATA") && e.contains("VIN"), "{e}");
    // A sampler over that source counts the failed samples as dropped and records none.
    let epoch = Instant::now();
    let sampler = Sampler::start(Box::new(s), Duration::from_millis(5), epoch).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let trace = sampler.stop().unwrap();
    assert!(trace.t_s.is_empty(), "{:?}", trace.t_s);
    assert!(trace.dropped >= 2, "{} dropped", trace.dropped);
}

/// The file an error message starts with (`<path>: ...`), canonicalized.
fn named_file(msg: &str) -> std::path::PathBuf {
    let (path, _) = msg
        .split_once(": ")
        .unwrap_or_else(|| panic!("no path in {msg}"));
    std::fs::canonicalize(path).unwrap_or_else(|e| panic!("{path}: {e} (from {msg})"))
}

#[test]
fn ina238_malformed_value_is_a_one_line_error_naming_the_file() {
    let t = tempfile::tempdir().unwrap();
    agx_thor(t.path());
    let power = t.path().join(THOR_INA238).join("power1_input");
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).unwrap();
    // At discovery. The message names the file through the sysfs view it was found in
    // (bus/i2c/drivers/ina238/2-0044/...), the same file.
    std::fs::write(&power, "n/a\n").unwrap();
    let e = Ina238::discover(t.path()).unwrap_err();
    assert!(matches!(e, trtforge::Error::Invalid(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("bus/i2c/drivers/ina238/2-0044/hwmon/hwmon3/power1_input: "),
        "{msg}"
    );
    assert_eq!(named_file(&msg), canon(&power));
    assert!(msg.contains("\"n/a\"") && msg.contains("µW"), "{msg}");
    assert!(msg.contains("--sysfs-root"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    // Mid-run on the power file: the sample fails with the same message (no fallback: the
    // file answered, with garbage).
    std::fs::write(&power, "28812500\n").unwrap();
    let mut s = Ina238::discover(t.path()).unwrap();
    std::fs::write(&power, "28.8 W\n").unwrap();
    let msg = s.read().unwrap_err().to_string();
    assert_eq!(named_file(&msg), canon(&power));
    assert!(msg.contains("\"28.8 W\""), "{msg}");
    // On the fallback path the current file is named.
    std::fs::remove_file(&power).unwrap();
    let curr = t.path().join(THOR_INA238).join("curr1_input");
    std::fs::write(&curr, "1.5A\n").unwrap();
    let msg = Ina238::discover(t.path()).unwrap_err().to_string();
    assert_eq!(named_file(&msg), canon(&curr));
    assert!(msg.contains("\"1.5A\"") && msg.contains("mA"), "{msg}");
}

#[test]
fn several_ina238_are_vin_1_vin_2_and_the_total_is_their_sum() {
    let t = tempfile::tempdir().unwrap();
    ina238_hwmon(
        t.path(),
        "bus/i2c/drivers/ina238/2-0044/hwmon/hwmon3",
        "19200",
        "1500",
        Some("28812500"),
    );
    ina238_hwmon(
        t.path(),
        "bus/i2c/drivers/ina238/2-0045/hwmon/hwmon10",
        "12000",
        "250",
        Some("3000000"),
    );
    let mut s = Ina238::discover(t.path()).unwrap();
    assert_eq!(s.rails(), ["VIN_1", "VIN_2"]);
    assert_eq!(s.devices()[1].chip, "2-0045");
    assert_eq!(power::total_rails(&s.rails()), ["VIN_1", "VIN_2"]);
    assert_eq!(s.read().unwrap().rails_mw, vec![28_812.5, 3_000.0]);
}

#[test]
fn total_rails_prefers_vin_then_pom_5v_in_then_vdd_in() {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // VIN replaces the module rails, even a module input rail.
    assert_eq!(
        power::total_rails(&names(&["VDD_GPU", "VDD_IN", "VIN", "POM_5V_IN"])),
        ["VIN"]
    );
    assert_eq!(
        power::total_rails(&names(&["VDD_IN", "POM_5V_IN"])),
        ["POM_5V_IN"]
    );
    // VIN_SYS_5V0 is not an INA238 rail: AGX Orin keeps its three-rail total.
    assert_eq!(
        power::total_rails(&names(&[
            "VDD_GPU_SOC",
            "VDD_CPU_CV",
            "VIN_SYS_5V0",
            "VDDQ_VDD2_1V8AO"
        ])),
        ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"]
    );
}

fn polled_trace(choice: PowerChoice, root: &std::path::Path) -> power::PowerTrace {
    let epoch = Instant::now();
    let s = power::start(choice, root, Duration::from_millis(5), epoch)
        .unwrap()
        .expect("a sampler");
    assert!(matches!(s, RunningSampler::Polled(_)));
    std::thread::sleep(Duration::from_millis(40));
    s.stop().unwrap()
}

#[test]
fn auto_on_thor_takes_vin_as_total_and_records_module_rails() {
    let t = tempfile::tempdir().unwrap();
    agx_thor(t.path());
    let trace = polled_trace(PowerChoice::Auto, t.path());
    assert_eq!(trace.source, "ina238+ina3221");
    assert_eq!(
        strs(&trace.rails),
        ["VIN", "VDD_GPU", "VDD_CPU_SOC_MSS", "VIN_SYS_5V0"]
    );
    assert_eq!(trace.total_rails, ["VIN"]);
    assert_eq!(trace.dropped, 0);
    assert!(trace.t_s.len() >= 2, "{} samples", trace.t_s.len());
    // The total is VIN alone, not VIN plus the module rails.
    assert!(trace.total_mw().iter().all(|&p| p == THOR_VIN_MW));
    let gpu = trace.rail_mw("VDD_GPU").unwrap();
    assert!(
        gpu.iter().all(|&p| p == 5040.0 * 2100.0 / 1000.0),
        "{gpu:?}"
    );
    let sys = trace.rail_mw("VIN_SYS_5V0").unwrap();
    assert!(sys.iter().all(|&p| p == 5000.0 * 820.0 / 1000.0), "{sys:?}");
}

#[test]
fn explicit_ina238_choice_gives_vin_alone_and_auto_elsewhere_is_unchanged() {
    assert_eq!(
        "ina238".parse::<PowerChoice>().unwrap(),
        PowerChoice::Ina238
    );
    assert!("ina239"
        .parse::<PowerChoice>()
        .unwrap_err()
        .contains("ina238"));
    let t = tempfile::tempdir().unwrap();
    agx_thor(t.path());
    let trace = polled_trace(PowerChoice::Ina238, t.path());
    assert_eq!(trace.source, "ina238");
    assert_eq!(trace.rails, ["VIN"]);
    assert_eq!(trace.total_rails, ["VIN"]);
    assert!(trace.mw[0].iter().all(|&p| p == THOR_VIN_MW));
    // --power ina3221 on Thor: the module rails alone.
    let trace = polled_trace(PowerChoice::Ina3221, t.path());
    assert_eq!(trace.source, "ina3221");
    assert_eq!(
        strs(&trace.rails),
        ["VDD_GPU", "VDD_CPU_SOC_MSS", "VIN_SYS_5V0"]
    );
    // An Orin NX has no INA238: asked for explicitly it is unavailable, auto still takes the
    // INA3221 with VDD_IN as the total.
    let t = tempfile::tempdir().unwrap();
    orin_nx(t.path(), 2);
    let e = power::start(
        PowerChoice::Ina238,
        t.path(),
        Duration::from_millis(5),
        Instant::now(),
    )
    .err()
    .expect("no INA238 on an Orin NX");
    assert!(matches!(e, trtforge::Error::Unavailable { .. }), "{e}");
    assert!(e.to_string().contains("--sysfs-root"), "{e}");
    let trace = polled_trace(PowerChoice::Auto, t.path());
    assert_eq!(trace.source, "ina3221");
    assert_eq!(trace.total_rails, ["VDD_IN"]);
}

#[test]
fn auto_with_a_malformed_ina238_fails_instead_of_dropping_vin() {
    let t = tempfile::tempdir().unwrap();
    agx_thor(t.path());
    write(t.path(), &format!("{THOR_INA238}/power1_input"), "garbage");
    let e = power::start(
        PowerChoice::Auto,
        t.path(),
        Duration::from_millis(5),
        Instant::now(),
    )
    .err()
    .expect("a malformed INA238 value is an error");
    assert!(matches!(e, trtforge::Error::Invalid(_)), "{e}");
    assert!(e.to_string().contains("power1_input"), "{e}");
}

#[test]
fn power_sample_cli_on_thor_fixture() {
    let t = tempfile::tempdir().unwrap();
    agx_thor(t.path());
    let v = power_sample_json(t.path());
    assert_eq!(v["energy"]["source"], "ina238+ina3221");
    assert_eq!(v["energy"]["rails_summed"], serde_json::json!(["VIN"]));
    let avg = v["energy"]["avg_w"].as_f64().unwrap();
    assert!((avg - 28.8125).abs() < 1e-9, "{avg}");
    let rails: Vec<(&str, f64)> = v["energy"]["rails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["mean_w"].as_f64().unwrap()))
        .collect();
    assert_eq!(rails.len(), 4, "{rails:?}");
    assert_eq!(rails[0].0, "VIN");
    assert!((rails[0].1 - 28.8125).abs() < 1e-9, "{rails:?}");
    assert_eq!(rails[1].0, "VDD_GPU");
    assert!((rails[1].1 - 10.584).abs() < 1e-9, "{rails:?}");
}
