//! `cargo bench --bench matrix_rerun`: a night of the test matrix (3 shared detectors x
//! {fp16, int8, int8-qdq} x 2 device classes, tests/common/matrix_fixture.rs) run twice with
//! `trtforge matrix run --all -j 2`: the first computes every stage and cell, the second finds
//! every cell's result in the store. Prints both wall times and their ratio.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

fn run_all(matrix: &str) -> f64 {
    let t = Instant::now();
    let (code, out, err) = common::trtforge(&["matrix", "run", matrix, "--all", "-j", "2"]);
    // 3: every cell did its CPU steps; TensorRT is not here.
    assert!(code == 3 || code == 0, "{out}{err}");
    t.elapsed().as_secs_f64()
}

fn main() {
    let Some(f) = common::matrix_fixture::fixture() else {
        return;
    };
    let matrix = f.matrix();
    let first = run_all(&matrix);
    let second = run_all(&matrix);
    println!(
        "matrix run --all: first night {first:.2} s (every stage and cell), second night {second:.3} s (nothing changed), ratio {:.4}",
        second / first
    );
}
