//! Every sample line in ../shared/reference/power/tegrastats_samples.txt parsed to the right
//! rails and values (expected values typed from the file by hand).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};
use trtforge::measure::power::tegrastats::{self, TegrastatsSampler};

/// (rail, cur, avg, third) per sample line, in file order.
type R = (&'static str, f64, f64, Option<f64>);

fn expected() -> Vec<(Option<&'static str>, Vec<R>)> {
    vec![
        (
            Some("07-21-2025 16:33:42"),
            vec![
                ("VDD_GPU_SOC", 2798.0, 2798.0, None),
                ("VDD_CPU_CV", 799.0, 799.0, None),
                ("VIN_SYS_5V0", 3315.0, 3315.0, None),
            ],
        ),
        (
            Some("07-21-2025 16:33:54"),
            vec![
                ("VDD_GPU_SOC", 2399.0, 2765.0, None),
                ("VDD_CPU_CV", 399.0, 732.0, None),
                ("VIN_SYS_5V0", 2712.0, 3131.0, None),
            ],
        ),
        (
            Some("11-15-2024 08:38:09"),
            vec![
                ("VDD_IN", 12479.0, 12479.0, None),
                ("VDD_CPU_GPU_CV", 4667.0, 4667.0, None),
                ("VDD_SOC", 2817.0, 2817.0, None),
            ],
        ),
        (
            Some("06-18-2025 11:25:24"),
            vec![
                ("VDD_IN", 4824.0, 4824.0, None),
                ("VDD_CPU_GPU_CV", 518.0, 518.0, None),
                ("VDD_SOC", 1475.0, 1475.0, None),
            ],
        ),
        (
            None,
            vec![
                ("VDD_GPU_SOC", 3205.0, 3205.0, None),
                ("VDD_CPU_CV", 4405.0, 4405.0, None),
                ("VIN_SYS_5V0", 4767.0, 4767.0, None),
            ],
        ),
        (
            None,
            vec![
                ("VDD_GPU_SOC", 4940.0, 4940.0, None),
                ("VDD_CPU_CV", 988.0, 988.0, None),
                ("VIN_SYS_5V0", 4442.0, 4442.0, None),
            ],
        ),
        (
            Some("04-24-2023 00:01:24"),
            vec![
                ("VDD_GPU_SOC", 2399.0, 2399.0, None),
                ("VDD_CPU_CV", 400.0, 400.0, None),
                ("VIN_SYS_5V0", 4032.0, 4032.0, None),
                ("NC", 0.0, 0.0, None),
                ("VDDQ_VDD2_1V8AO", 301.0, 301.0, None),
                ("NC", 0.0, 0.0, None),
            ],
        ),
        (
            Some("11-21-2025 08:49:48"),
            vec![
                ("VDD_GPU_SOC", 3150.0, 2971.0, None),
                ("VDD_CPU_CV", 14312.0, 12415.0, None),
                ("VIN_SYS_5V0", 4968.0, 5048.0, None),
                ("VDDQ_VDD2_1V8AO", 1091.0, 1091.0, None),
            ],
        ),
        (
            None,
            vec![
                ("VDD_IN", 5299.0, 5299.0, None),
                ("VDD_CPU_GPU_CV", 773.0, 773.0, None),
                ("VDD_SOC", 1424.0, 1424.0, None),
            ],
        ),
        (
            Some("07-25-2026 09:08:28"),
            vec![
                ("VDD_GPU_SOC", 5139.0, 5139.0, Some(5139.0)),
                ("VDD_CPU_CV", 3268.0, 3268.0, Some(3268.0)),
                ("VIN_SYS_5V0", 5500.0, 5500.0, Some(5500.0)),
            ],
        ),
        (
            Some("10-01-2025 20:06:07"),
            vec![
                ("VDD_IN", 13353.0, 6482.0, None),
                ("VDD_CPU_GPU_CV", 7340.0, 2289.0, None),
                ("VDD_SOC", 1944.0, 1319.0, None),
            ],
        ),
        (
            None,
            vec![
                ("VDD_IN", 4067.0, 4067.0, None),
                ("VDD_CPU_GPU_CV", 738.0, 738.0, None),
                ("VDD_SOC", 1353.0, 1353.0, None),
            ],
        ),
        (
            None,
            vec![
                ("GPU", 0.0, 0.0, None),
                ("CPU", 311.0, 311.0, None),
                ("SOC", 932.0, 932.0, None),
                ("CV", 0.0, 0.0, None),
                ("VDDRQ", 621.0, 621.0, None),
                ("SYS5V", 1482.0, 1482.0, None),
            ],
        ),
        (
            None,
            vec![
                ("GPU", 463.0, 463.0, None),
                ("CPU", 618.0, 618.0, None),
                ("SOC", 2936.0, 2936.0, None),
                ("CV", 0.0, 0.0, None),
                ("VDDRQ", 309.0, 309.0, None),
                ("SYS5V", 3306.0, 3306.0, None),
            ],
        ),
        (
            None,
            vec![
                ("POM_5V_IN", 5143.0, 2615.0, None),
                ("POM_5V_GPU", 2949.0, 182.0, None),
                ("POM_5V_CPU", 179.0, 998.0, None),
            ],
        ),
        (
            None,
            vec![
                ("VDD_IN", 3624.0, 3624.0, None),
                ("VDD_CPU", 696.0, 696.0, None),
                ("VDD_GPU", 371.0, 371.0, None),
                ("VDD_SOC", 650.0, 650.0, None),
                ("VDD_WIFI", 0.0, 0.0, None),
                ("VDD_DDR", 881.0, 881.0, None),
            ],
        ),
        // Nano capture without any power rail: power unavailable, not zero.
        (None, vec![]),
    ]
}

#[test]
fn every_sample_line() {
    let Some(p) = common::shared("reference/power/tegrastats_samples.txt") else {
        return;
    };
    let text = std::fs::read_to_string(p).unwrap();
    let data_lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    let parsed = tegrastats::parse_log(&text);
    let want = expected();
    assert_eq!(data_lines, 17);
    assert_eq!(parsed.len(), want.len());
    for ((lineno, got), (ts, rails)) in parsed.iter().zip(&want) {
        assert_eq!(got.timestamp.as_deref(), *ts, "line {lineno}");
        let g: Vec<R> = got
            .rails
            .iter()
            .map(|r| {
                // Leak is fine in a test: turn the name into &'static for comparison.
                let n: &'static str = Box::leak(r.name.clone().into_boxed_str());
                (n, r.cur_mw, r.avg_mw, r.third_mw)
            })
            .collect();
        assert_eq!(&g, rails, "line {lineno}");
    }
    // NC entries are parsed but not connected rails.
    let nc_line = &parsed[6].1;
    assert_eq!(nc_line.connected().count(), 4);
}

#[test]
fn parse_tegrastats_cli_json() {
    let Some(p) = common::shared("reference/power/tegrastats_samples.txt") else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args(["power", "parse-tegrastats", "--json"])
        .arg(&p)
        .output()
        .unwrap();
    let v = common::json_output(&out);
    let lines = v.as_array().unwrap();
    assert_eq!(lines.len(), 17);
    // AGX Orin JP5.1 line: total = VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0, NC and VDDQ left out.
    assert_eq!(lines[6]["total_mw"], 2399.0 + 400.0 + 4032.0);
    // Orin Nano: VDD_IN alone.
    assert_eq!(lines[2]["total_mw"], 12479.0);
    // Jetson Nano JP4: POM_5V_IN alone.
    assert_eq!(lines[14]["total_mw"], 5143.0);
    assert!(lines[16]["total_mw"].is_null());
}

#[test]
fn live_sampler_reads_a_tegrastats_stream() {
    // A stand-in for tegrastats that prints real Orin NX lines, a burst of five and then one
    // every 20 ms (it ignores the --interval argument the sampler appends). The burst keeps the
    // test from depending on the scheduler of a loaded CI machine: 300 ms of a 20 ms stream
    // once gave only 2 lines there.
    let script = "l='RAM 6334/15388MB (lfb 1770x4MB) CPU [6%@729,off] VDD_IN 5299mW/5299mW VDD_CPU_GPU_CV 773mW/773mW VDD_SOC 1424mW/1424mW'; for i in 1 2 3 4 5; do echo \"$l\"; done; while true; do echo \"$l\"; sleep 0.02; done";
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script, "fake-tegrastats"]);
    let epoch = Instant::now();
    let s = TegrastatsSampler::start_command(cmd, Duration::from_millis(20), epoch).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let trace = s.stop().unwrap();
    assert_eq!(trace.source, "tegrastats");
    assert_eq!(trace.rails, ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]);
    assert_eq!(trace.total_rails, ["VDD_IN"]);
    assert!(trace.t_s.len() >= 3, "{} lines", trace.t_s.len());
    assert!(trace
        .rail_mw("VDD_IN")
        .unwrap()
        .iter()
        .all(|&v| v == 5299.0));
}
