//! INA3221 discovery and reading on sysfs fixture trees that mirror the real layouts.

mod common;
mod measure_support;

use measure_support::*;
use std::time::{Duration, Instant};
use trtforge::measure::energy;
use trtforge::measure::power::ina3221::Ina3221;
use trtforge::measure::power::{PowerSource, Sampler};

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

#[test]
fn power_sample_cli_on_fixture() {
    let t = tempfile::tempdir().unwrap();
    agx_orin(t.path());
    // The real reader sees the ENODATA marker as a non-number: those NC channels are skipped
    // by their label first, so the CLI works on this tree too.
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
        .arg(t.path())
        .output()
        .unwrap();
    let v = common::json_output(&out);
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
