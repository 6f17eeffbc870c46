//! `trtforge prune`: dependency groups on hand-built graphs, exact removal, exact recovery,
//! and the real detectors pruned end to end.

mod common;

use ndarray::{ArrayD, IxDyn};
use std::collections::{BTreeMap, HashSet};
use trtforge::exec::OrtSession;
use trtforge::onnx::tensor::{float_tensor, read_f32};
use trtforge::onnx::{Graph, Model, Patch};
use trtforge::prune::apply::{remove_channels, Masks};
use trtforge::prune::job::{plan_step, shapes_of, StepGoal};
use trtforge::prune::{Criterion, Measure, PruneSettings};

fn settings(by: Measure, ratio: f64) -> PruneSettings {
    PruneSettings {
        by,
        steps: vec![ratio],
        criterion: None,
        align: 8,
        min_keep: 0.25,
        recover: false,
        recover_images: 4,
        recover_positions: 256,
    }
}

/// The model with the input columns of removed channels zeroed in every conv that reads
/// them: removing those channels must then change nothing.
fn zero_columns(model: &Model, masks: &Masks) -> Model {
    let g = Graph::new(model);
    let mut p = Patch::new(&g);
    for (id, n) in g.nodes() {
        if n.op_type != "Conv" {
            continue;
        }
        let Some(m) = masks.get(&n.input[0]) else {
            continue;
        };
        if g.attr_int(id, "group").unwrap().unwrap_or(1) != 1 {
            continue;
        }
        let w = g.constant(&n.input[1]).unwrap();
        let mut v = read_f32(w).unwrap();
        let (cout, cin) = (w.dims[0] as usize, w.dims[1] as usize);
        let inner = v.len() / (cout * cin);
        for o in 0..cout {
            for (c, &keep) in m.iter().enumerate() {
                if !keep {
                    v[(o * cin + c) * inner..(o * cin + c + 1) * inner].fill(0.0);
                }
            }
        }
        p.replace_constant(float_tensor(&w.name, &w.dims, v))
            .unwrap();
    }
    p.apply().unwrap()
}

fn run(model: &Model, input: &str, x: &ArrayD<f32>) -> Vec<(String, ArrayD<f32>)> {
    let mut s = OrtSession::from_model(model, &[]).unwrap();
    s.run(&[(input, x.view())]).unwrap()
}

fn max_rel_diff(a: &[(String, ArrayD<f32>)], b: &[(String, ArrayD<f32>)]) -> f32 {
    a.iter()
        .zip(b)
        .map(|((na, x), (nb, y))| {
            assert_eq!(na, nb);
            assert_eq!(x.shape(), y.shape(), "output {na}");
            let scale = x.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale
        })
        .fold(0f32, f32::max)
}

fn input_of(shape: &[usize]) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32).collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

#[test]
fn removing_channels_from_yolox_equals_zeroing_their_consumers() {
    let Some(path) = common::yolox() else { return };
    let model = Model::load(&path).unwrap();
    if common::ort_session(&model, &[]).is_none() {
        return;
    }
    let shape = vec![1, 3, 416, 416];
    let inputs = BTreeMap::from([("images".to_string(), shape.clone())]);
    let s = settings(Measure::Macs, 0.2);
    let goal = StepGoal {
        criterion: Criterion::L1,
        target: 0.2,
        orig_total: total_macs(&model, &inputs),
        path: &path,
        data: None,
        compare: trtforge::prune::sensitivity::Compare::Features,
    };
    let plan = plan_step(&model, &inputs, &s, &goal, &mut |_| {})
        .unwrap()
        .unwrap();
    assert!(!plan.removed.is_empty());
    let pruned = remove_channels(&model, &plan.masks, &plan.shapes).unwrap();
    let zeroed = zero_columns(&model, &plan.masks);
    let x = input_of(&shape);
    let d = max_rel_diff(&run(&zeroed, "images", &x), &run(&pruned, "images", &x));
    assert!(d < 1e-4, "pruned and zeroed outputs differ by {d}");
}

fn total_macs(model: &Model, inputs: &BTreeMap<String, Vec<usize>>) -> f64 {
    let shapes = shapes_of(model, inputs).unwrap();
    let g = Graph::new(model);
    let a = trtforge::prune::groups::Analysis::new(&g, &shapes).unwrap();
    let c = trtforge::prune::select::CostModel::new(&g, &a, &shapes).unwrap();
    let full: Vec<usize> = a.tensors.iter().map(|t| t.channels).collect();
    c.macs(&full) as f64
}

use trtforge::onnx::synth::GraphBuilder;
use trtforge::onnx::{int64_tensor, ints_attr, node, value_info};
use trtforge::prune::groups::Analysis;

const HW: i64 = 8;

/// `images` [1,3,8,8] -> stem conv 3->16 -> Relu `a`; `body` adds the pattern under test and
/// returns the tensors that reach the head; each gets a 1x1 conv head and a graph output.
fn graph(body: impl FnOnce(&mut GraphBuilder, &str) -> Vec<(String, i64)>) -> Model {
    let mut b = GraphBuilder::new("pattern");
    b.graph.input.push(value_info("images", &[1, 3, HW, HW]));
    let x = b.conv("stem", "images", 3, 16, 3, 1);
    let a = b.unary("Relu", "a", &x);
    let heads = body(&mut b, &a);
    for (i, (t, c)) in heads.iter().enumerate() {
        let h = b.conv(&format!("head{i}"), t, *c, 4, 1, 1);
        b.graph.output.push(value_info(&h, &[1, 4, HW, HW]));
    }
    b.finish(13, "pattern.onnx")
}

fn analyse(m: &Model) -> Analysis {
    let inputs = BTreeMap::from([("images".to_string(), vec![1, 3, HW as usize, HW as usize])]);
    let shapes = shapes_of(m, &inputs).unwrap();
    Analysis::new(&Graph::new(m), &shapes).unwrap()
}

fn set_with<'a>(a: &'a Analysis, tensor: &str) -> &'a trtforge::prune::groups::ChannelSet {
    let c = a.component(tensor, 0).unwrap();
    &a.sets[a.set_of(c).unwrap()]
}

fn ort_ok() -> bool {
    common::ort_session(&graph(|_, a| vec![(a.to_string(), 16)]), &[]).is_some()
}

#[test]
fn a_residual_add_joins_both_operands_and_its_output() {
    if !ort_ok() {
        return;
    }
    let m = graph(|b, a| {
        let x = b.conv("body", a, 16, 16, 3, 1);
        let x = b.unary("Relu", "body_act", &x);
        b.graph
            .node
            .push(node("Add", "res", &[a, &x], &["sum"], vec![]));
        vec![("sum".into(), 16)]
    });
    let an = analyse(&m);
    let s = set_with(&an, "sum");
    assert!(s.excluded.is_none(), "{:?}", s.excluded);
    assert_eq!(s.sources, vec!["body".to_string(), "stem".to_string()]);
    for c in 0..16 {
        let k = an.component("sum", c);
        assert_eq!(k, an.component("a.out", c));
        assert_eq!(k, an.component("body_act.out", c));
    }
}

#[test]
fn a_concat_maps_each_input_to_its_offset() {
    if !ort_ok() {
        return;
    }
    let m = graph(|b, a| {
        let p = b.conv("p", a, 16, 8, 1, 1);
        let q = b.conv("q", a, 16, 24, 1, 1);
        b.graph.node.push(node(
            "Concat",
            "cat",
            &[&p, &q],
            &["cat"],
            vec![trtforge::onnx::int_attr("axis", 1)],
        ));
        vec![("cat".into(), 32)]
    });
    let an = analyse(&m);
    for k in 0..8 {
        assert_eq!(an.component("cat", k), an.component("p.out", k));
    }
    for k in 0..24 {
        assert_eq!(an.component("cat", 8 + k), an.component("q.out", k));
    }
    let (sp, sq) = (set_with(&an, "p.out"), set_with(&an, "q.out"));
    // A constant in front shifts every offset (constant-folded coordinate grids).
    let m2 = graph(|b, a| {
        b.graph
            .initializer
            .push(float_tensor("grid", &[1, 2, HW, HW], vec![0.5; 128]));
        b.graph.node.push(node(
            "Concat",
            "cat",
            &["grid", a],
            &["cat"],
            vec![trtforge::onnx::int_attr("axis", 1)],
        ));
        vec![("cat".into(), 18)]
    });
    let an2 = analyse(&m2);
    for k in 0..16 {
        assert_eq!(an2.component("cat", 2 + k), an2.component("a.out", k));
    }
    assert_ne!(sp.id, sq.id);
    assert_eq!((sp.channels, sq.channels), (8, 24));
    assert_eq!(sp.group, sq.group, "one group: both feed the concat");
}

#[test]
fn a_depthwise_conv_follows_its_input_and_a_split_its_offsets() {
    if !ort_ok() {
        return;
    }
    let m = graph(|b, a| {
        b.graph
            .initializer
            .push(float_tensor("dw.w", &[16, 1, 3, 3], vec![0.1; 144]));
        b.graph.node.push(node(
            "Conv",
            "dw",
            &[a, "dw.w"],
            &["dw"],
            vec![
                trtforge::onnx::int_attr("group", 16),
                ints_attr("pads", &[1, 1, 1, 1]),
            ],
        ));
        b.graph.initializer.push(int64_tensor("sizes", &[4, 12]));
        b.graph.node.push(node(
            "Split",
            "split",
            &["dw", "sizes"],
            &["s0", "s1"],
            vec![trtforge::onnx::int_attr("axis", 1)],
        ));
        vec![("s0".into(), 4), ("s1".into(), 12)]
    });
    let an = analyse(&m);
    for c in 0..16 {
        assert_eq!(an.component("dw", c), an.component("a.out", c));
    }
    for k in 0..12 {
        assert_eq!(an.component("s1", k), an.component("a.out", 4 + k));
    }
    assert!(set_with(&an, "dw").excluded.is_none());
}

#[test]
fn a_channel_shuffle_and_a_graph_output_are_excluded_with_the_reason() {
    if !ort_ok() {
        return;
    }
    let m = graph(|b, a| {
        b.graph
            .initializer
            .push(int64_tensor("s5", &[1, 2, 8, HW, HW]));
        b.graph
            .initializer
            .push(int64_tensor("s4", &[1, 16, HW, HW]));
        b.graph
            .node
            .push(node("Reshape", "r1", &[a, "s5"], &["r1"], vec![]));
        b.graph.node.push(node(
            "Transpose",
            "t",
            &["r1"],
            &["t"],
            vec![ints_attr("perm", &[0, 2, 1, 3, 4])],
        ));
        b.graph
            .node
            .push(node("Reshape", "r2", &["t", "s4"], &["shuffled"], vec![]));
        let side = b.conv("side", a, 16, 8, 1, 1);
        b.graph.output.push(value_info(&side, &[1, 8, HW, HW]));
        vec![("shuffled".into(), 16)]
    });
    let an = analyse(&m);
    let why = set_with(&an, "a.out").excluded.clone().unwrap();
    assert!(why.contains("Reshape 'r1'"), "{why}");
    let why = set_with(&an, "side.out").excluded.clone().unwrap();
    assert!(why.contains("graph output"), "{why}");
    assert!(trtforge::prune::report::explain(&an).contains("not pruned"));
}

/// Zero filters and biases of stem and body channel 3 and 7: a residual keeps them zero, so
/// removing them must leave the outputs as they are.
#[test]
fn channels_with_zero_weights_and_bias_are_removed_exactly() {
    if !ort_ok() {
        return;
    }
    let mut m = graph(|b, a| {
        let x = b.conv("body", a, 16, 16, 3, 1);
        let x = b.unary("Relu", "body_act", &x);
        b.graph
            .node
            .push(node("Add", "res", &[a, &x], &["sum"], vec![]));
        let p = b.conv("p", "sum", 16, 8, 1, 1);
        b.graph.node.push(node(
            "Concat",
            "cat",
            &["sum", &p],
            &["cat"],
            vec![trtforge::onnx::int_attr("axis", 1)],
        ));
        vec![("cat".into(), 24)]
    });
    for conv in ["stem", "body"] {
        let g = &mut m.proto.graph.mut_or_insert_default().initializer;
        for t in g
            .iter_mut()
            .filter(|t| t.name.starts_with(&format!("{conv}.")))
        {
            let mut v = read_f32(t).unwrap();
            let per = v.len() / t.dims[0] as usize;
            for c in [3usize, 7] {
                v[c * per..(c + 1) * per].fill(0.0);
            }
            *t = float_tensor(&t.name.clone(), &t.dims.clone(), v);
        }
    }
    let an = analyse(&m);
    let removed: HashSet<usize> = [3, 7]
        .iter()
        .map(|&c| an.component("sum", c).unwrap())
        .collect();
    let masks = an.masks(&removed);
    assert_eq!(masks["cat"].iter().filter(|k| !**k).count(), 2);
    let inputs = BTreeMap::from([("images".to_string(), vec![1, 3, HW as usize, HW as usize])]);
    let pruned = remove_channels(&m, &masks, &shapes_of(&m, &inputs).unwrap()).unwrap();
    let x = common::ramp_input(&[1, 3, HW as usize, HW as usize], 5);
    let (a, b) = (run(&m, "images", &x), run(&pruned, "images", &x));
    let d = max_rel_diff(&a, &b);
    assert!(d < 1e-5, "outputs differ by {d}");
    let w = Graph::new(&pruned)
        .constant("body.weight")
        .unwrap()
        .dims
        .clone();
    assert_eq!(w, vec![14, 14, 3, 3]);
}

/// Stem channels 8..16 are linear combinations of channels 0..8 (no activation before the
/// 1x1 head): after removing them, least squares must give the head back exactly.
#[test]
fn least_squares_recovers_channels_that_are_combinations_of_kept_ones() {
    let Some(images) = common::shared("datasets/coco128-train/images") else {
        return;
    };
    if !ort_ok() {
        return;
    }
    let mut m = graph(|_, _| vec![]);
    // Rebuild without the Relu: head reads the stem directly.
    {
        let g = m.proto.graph.mut_or_insert_default();
        g.node
            .retain(|n| n.op_type != "Relu" && !n.name.starts_with("head"));
        g.output.clear();
        g.initializer.push(float_tensor(
            "h.w",
            &[4, 16, 1, 1],
            trtforge::onnx::synth::weights(9, 64, 0.5),
        ));
        g.node
            .push(node("Conv", "h", &["stem.out", "h.w"], &["y"], vec![]));
        g.output.push(value_info("y", &[1, 4, HW, HW]));
        for t in g
            .initializer
            .iter_mut()
            .filter(|t| t.name.starts_with("stem."))
        {
            let mut v = read_f32(t).unwrap();
            let per = v.len() / 16;
            for j in 0..8 {
                for e in 0..per {
                    v[(8 + j) * per + e] = 0.5 * v[j * per + e] - 0.3 * v[((j + 1) % 8) * per + e];
                }
            }
            *t = float_tensor(&t.name.clone(), &t.dims.clone(), v);
        }
    }
    let an = analyse(&m);
    let removed: HashSet<usize> = (8..16)
        .map(|c| an.component("stem.out", c).unwrap())
        .collect();
    let masks = an.masks(&removed);
    let inputs = BTreeMap::from([("images".to_string(), vec![1, 3, HW as usize, HW as usize])]);
    let sliced = remove_channels(&m, &masks, &shapes_of(&m, &inputs).unwrap()).unwrap();
    let contract: trtforge::recipe::InputContract = serde_yaml_ng::from_str(
        "{tensor: images, shape: [1, 3, 8, 8], channel_order: rgb, scale: 0.0039215686, resize: stretch}",
    )
    .unwrap();
    let mut paths: Vec<_> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let settings = trtforge::prune::recover::RecoverSettings {
        images: paths[..4].to_vec(),
        positions: 64,
        input: contract.clone(),
    };
    let (recovered, stats) =
        trtforge::prune::recover::recover(&m, &sliced, &masks, &settings).unwrap();
    assert_eq!(stats.layers, 1);
    // The report names the refit layer, exact after the refit and not before it.
    assert_eq!(stats.worst.len(), 1, "{:?}", stats.worst);
    assert!(
        stats.worst[0].refit < 1e-4 && stats.worst[0].sliced > 0.05,
        "{:?}",
        stats.worst
    );
    let (chw, _) = trtforge::data::preprocess::preprocess_image(&paths[10], &contract).unwrap();
    let x = chw.insert_axis(ndarray::Axis(0)).into_dyn();
    let want = run(&m, "images", &x);
    let d_sliced = max_rel_diff(&want, &run(&sliced, "images", &x));
    let d_fit = max_rel_diff(&want, &run(&recovered, "images", &x));
    assert!(
        d_sliced > 0.05,
        "removing the channels must matter: {d_sliced}"
    );
    assert!(
        d_fit < 1e-3,
        "recovery left an error of {d_fit} (sliced: {d_sliced})"
    );
}

/// The recipe written beside a pruned model, cut down so that calibrate and quantize run in
/// seconds: 16 calibration images, 8 validation images, no plan search, no refinements.
fn quick_recipe(dir: &std::path::Path) -> std::path::PathBuf {
    let path = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-pruned.yaml"))
        .expect("prune writes <recipe>-pruned.yaml");
    let mut r: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    r["calibration"]["limit"] = 16.into();
    let q = &mut r["quantize"];
    q["max_map_drop"] = serde_yaml_ng::Value::Null;
    q["refine"] = serde_yaml_ng::Value::Sequence(vec![]);
    q["validation"]["limit"] = 8.into();
    let quick = dir.join("quick.yaml");
    std::fs::write(&quick, serde_yaml_ng::to_string(&r).unwrap()).unwrap();
    quick
}

/// Both detectors pruned at 10, 20 and 30% of MACs: the models run in ONNX Runtime with the
/// original's output shapes, widths stay multiples of 8, and the most pruned one feeds
/// `calibrate` and `quantize` through the recipe `prune` writes.
#[test]
fn yolox_and_nanodet_pruned_run_and_feed_calibrate_and_quantize() {
    for recipe in [
        "engines/yolox-nano-qdq.yaml",
        "engines/nanodet-m-320-qdq.yaml",
    ] {
        let Some(_) = common::shared("datasets/coco128-train/images") else {
            return;
        };
        let loaded =
            trtforge::recipe::LoadedRecipe::load(&common::crate_root().join(recipe)).unwrap();
        let original = loaded.checked_model().unwrap();
        let Some(mut base) = common::ort_session(&original, &[]) else {
            return;
        };
        let shape = loaded.recipe.input.shape.to_vec();
        let x = common::ramp_input(&shape, 1);
        let tensor = loaded.recipe.input.tensor.clone();
        let want: Vec<Vec<usize>> = base
            .run(&[(tensor.as_str(), x.view())])
            .unwrap()
            .iter()
            .map(|(_, a)| a.shape().to_vec())
            .collect();
        let tmp = tempfile::tempdir().unwrap();
        for ratio in ["0.1", "0.2", "0.3"] {
            let out = tmp.path().join(ratio);
            let (code, stdout, stderr) = common::trtforge(&[
                "prune",
                recipe,
                "--ratio",
                ratio,
                "--no-eval",
                "--recover-images",
                "4",
                "--json",
                "--out",
                out.to_str().unwrap(),
            ]);
            assert_eq!(code, 0, "{recipe} at {ratio}: {stderr}");
            let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            let removed = 1.0
                - report["pruned"]["macs"].as_f64().unwrap()
                    / report["original"]["macs"].as_f64().unwrap();
            let r: f64 = ratio.parse().unwrap();
            assert!(
                removed >= r && removed < r + 0.05,
                "{recipe}: {removed} of the MACs removed for {ratio}"
            );
            assert!(
                report["unaligned"].as_array().unwrap().is_empty(),
                "{}",
                report["unaligned"]
            );
            assert!(report["recovery"]["layers"].as_u64().unwrap() > 0);
            // The worst refit layers, worst first, at most 5.
            let worst: Vec<f64> = report["recovery"]["worst"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["refit"].as_f64().unwrap())
                .collect();
            assert!(
                !worst.is_empty() && worst.len() <= 5 && worst.windows(2).all(|w| w[0] >= w[1]),
                "{worst:?}"
            );
            let model = Model::load(std::path::Path::new(
                report["pruned_model"].as_str().unwrap(),
            ))
            .unwrap();
            let mut s = OrtSession::from_model(&model, &[]).unwrap();
            let got: Vec<Vec<usize>> = s
                .run(&[(tensor.as_str(), x.view())])
                .unwrap()
                .iter()
                .map(|(_, a)| a.shape().to_vec())
                .collect();
            assert_eq!(got, want, "{recipe} at {ratio}: output shapes");
        }
        let quick = quick_recipe(&tmp.path().join("0.3"));
        let quick = quick.to_str().unwrap();
        let (code, _, stderr) = common::trtforge(&["calibrate", quick]);
        assert_eq!(code, 0, "calibrate {recipe} pruned: {stderr}");
        let (code, stdout, stderr) = common::trtforge(&["quantize", quick, "--json"]);
        assert_eq!(code, 0, "quantize {recipe} pruned: {stderr}");
        let q: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert!(std::path::Path::new(q["qdq_model"].as_str().unwrap()).is_file());
    }
}

/// With BatchNormalization kept, `bn` ranks by |gamma|: the eight smallest go first.
#[test]
fn the_bn_criterion_removes_the_smallest_scales() {
    if !ort_ok() {
        return;
    }
    let m = graph(|b, a| {
        let gamma: Vec<f32> = (0..16)
            .map(|c| if c % 2 == 0 { 0.01 } else { 1.0 + c as f32 })
            .collect();
        for (n, v) in [
            ("bn.s", gamma),
            ("bn.b", vec![0.0; 16]),
            ("bn.m", vec![0.0; 16]),
            ("bn.v", vec![1.0; 16]),
        ] {
            b.graph.initializer.push(float_tensor(n, &[16], v));
        }
        let x = b.conv("body", a, 16, 16, 3, 1);
        b.graph.node.push(node(
            "BatchNormalization",
            "bn",
            &[&x, "bn.s", "bn.b", "bn.m", "bn.v"],
            &["bn"],
            vec![],
        ));
        vec![("bn".into(), 16)]
    });
    let an = analyse(&m);
    let g = Graph::new(&m);
    let imp = trtforge::prune::criterion::importance(&g, &an, Criterion::Bn, None).unwrap();
    let inputs = BTreeMap::from([("images".to_string(), vec![1, 3, HW as usize, HW as usize])]);
    let shapes = shapes_of(&m, &inputs).unwrap();
    let cost = trtforge::prune::select::CostModel::new(&g, &an, &shapes).unwrap();
    let sel = trtforge::prune::select::Selection {
        by: Measure::Channels,
        ratio: 0.2,
        align: 8,
        min_keep: 0.25,
    };
    let scores = trtforge::prune::select::Scores::Importance(&imp);
    let removed = trtforge::prune::select::select(
        &an,
        &imp,
        scores,
        &cost,
        sel,
        std::path::Path::new("m.onnx"),
    )
    .unwrap();
    let gone: Vec<usize> = (0..16)
        .filter(|&c| removed.contains(&an.component("bn", c).unwrap()))
        .collect();
    assert_eq!(gone, vec![0, 2, 4, 6, 8, 10, 12, 14]);
    // A folded export has no BN: asking for bn is a one-line error naming the fix.
    let (code, _, err) = common::trtforge(&[
        "prune",
        "engines/yolox-nano-qdq.yaml",
        "--ratio",
        "0.1",
        "--criterion",
        "bn",
        "--no-eval",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("use --criterion l1 or l2") && err.lines().count() == 1,
        "{err}"
    );
    let (code, _, err) =
        common::trtforge(&["prune", "engines/yolox-nano-qdq.yaml", "--ratio", "1.5"]);
    assert_eq!(code, 1);
    assert!(err.contains("out of range"), "{err}");
}

/// `--criterion output` measures each set's removal end to end, with removed channels
/// replaced by their linear prediction from the kept ones. The stem's channels 8..16 are
/// eight times channels 0..8 (weights and bias, so also after the Relu; far apart in L1, so
/// a chunk takes one half whole): losing either half costs nothing once predicted, while any
/// 8 of the side branch's independent channels cost output. The one chunk to remove must
/// come from the stem.
#[test]
fn the_output_criterion_removes_channels_the_kept_ones_can_stand_in_for() {
    let Some(images) = common::shared("datasets/coco128-train/images") else {
        return;
    };
    if !ort_ok() {
        return;
    }
    let mut m = graph(|b, a| {
        let s = b.conv("side", "images", 3, 16, 3, 1);
        let r = b.unary("Relu", "r", &s);
        vec![(a.to_string(), 16), (r, 16)]
    });
    for t in m
        .proto
        .graph
        .mut_or_insert_default()
        .initializer
        .iter_mut()
        .filter(|t| t.name.starts_with("stem."))
    {
        let mut v = read_f32(t).unwrap();
        let per = v.len() / 16;
        for e in 0..8 * per {
            v[8 * per + e] = 8.0 * v[e];
        }
        *t = float_tensor(&t.name.clone(), &t.dims.clone(), v);
    }
    let mut paths: Vec<_> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let contract: trtforge::recipe::InputContract = serde_yaml_ng::from_str(
        "{tensor: images, shape: [1, 3, 8, 8], channel_order: rgb, scale: 0.0039215686, resize: stretch}",
    )
    .unwrap();
    let data = trtforge::prune::recover::RecoverSettings {
        images: paths[..4].to_vec(),
        positions: 64,
        input: contract,
    };
    let inputs = BTreeMap::from([("images".to_string(), vec![1, 3, HW as usize, HW as usize])]);
    let an = analyse(&m);
    let shapes = shapes_of(&m, &inputs).unwrap();
    let g = Graph::new(&m);
    let imp = trtforge::prune::criterion::importance(&g, &an, Criterion::Output, None).unwrap();
    let sel = trtforge::prune::select::Selection {
        by: Measure::Channels,
        ratio: 0.2,
        align: 8,
        min_keep: 0.25,
    };
    let orders = trtforge::prune::select::set_orders(&an, &imp, &sel);
    let curves = trtforge::prune::sensitivity::measure_curves(
        &m,
        &an,
        &shapes,
        &orders,
        &data,
        trtforge::prune::sensitivity::Compare::Features,
        &mut |_| {},
    )
    .unwrap();
    let (stem, side) = (set_with(&an, "stem.out").id, set_with(&an, "side.out").id);
    assert!(curves[&stem][0] < 1e-6, "stem: {:?}", curves[&stem]);
    assert!(curves[&side][0] > 1e-2, "side: {:?}", curves[&side]);
    // The same through a whole step: 8 of the 40 conv output channels, all from the stem.
    let mut s = settings(Measure::Channels, 0.2);
    s.criterion = Some(Criterion::Output);
    let goal = StepGoal {
        criterion: Criterion::Output,
        target: 0.2,
        orig_total: 40.0,
        path: std::path::Path::new("pattern.onnx"),
        data: Some(&data),
        compare: trtforge::prune::sensitivity::Compare::Features,
    };
    let plan = plan_step(&m, &inputs, &s, &goal, &mut |_| {})
        .unwrap()
        .unwrap();
    assert_eq!(plan.removed.len(), 8);
    let stem_set: HashSet<usize> = set_with(&an, "stem.out")
        .components
        .iter()
        .copied()
        .collect();
    assert!(plan.removed.is_subset(&stem_set), "{:?}", plan.removed);
}

/// Measured scores go by error per MAC saved, but a chunk that would overshoot the goal by
/// more than `OVERSHOOT` waits; when every chunk overshoots, the one adding the least error
/// finishes. The side branch (5x5 filters) saves about 2.5x the stem's MACs per chunk.
#[test]
fn a_measured_chunk_that_overshoots_waits_and_the_least_error_one_finishes() {
    if !ort_ok() {
        return;
    }
    use trtforge::prune::select::{select, CostModel, Scores, Selection, OVERSHOOT};
    let m = graph(|b, _| {
        let s = b.conv("side", "images", 3, 16, 5, 1);
        let r = b.unary("Relu", "r", &s);
        vec![("a.out".to_string(), 16), (r, 16)]
    });
    let inputs = BTreeMap::from([("images".to_string(), vec![1, 3, HW as usize, HW as usize])]);
    let an = analyse(&m);
    let g = Graph::new(&m);
    let cost = CostModel::new(&g, &an, &shapes_of(&m, &inputs).unwrap()).unwrap();
    let (stem, side) = (set_with(&an, "stem.out"), set_with(&an, "side.out"));
    let full: Vec<usize> = an.tensors.iter().map(|t| t.channels).collect();
    let without = |set: &trtforge::prune::groups::ChannelSet| {
        let mut k = full.clone();
        for (name, times) in &set.tensors {
            let i = an.tensors.iter().position(|t| &t.name == name).unwrap();
            k[i] -= 8 * times;
        }
        cost.macs(&full) - cost.macs(&k)
    };
    let total = cost.macs(&full) as f64;
    let (a, b) = (without(stem) as f64, without(side) as f64);
    assert!(b > 2.0 * a, "side saves {b}, stem {a}");
    let imp = trtforge::prune::criterion::importance(&g, &an, Criterion::L1, None).unwrap();
    let pick = |ratio: f64, stem_err: f64, side_err: f64| {
        let curves =
            std::collections::HashMap::from([(stem.id, vec![stem_err]), (side.id, vec![side_err])]);
        let sel = Selection {
            by: Measure::Macs,
            ratio,
            align: 8,
            min_keep: 0.25,
        };
        let removed = select(
            &an,
            &imp,
            Scores::Measured(&curves),
            &cost,
            sel,
            std::path::Path::new("m.onnx"),
        )
        .unwrap();
        let from_stem = stem
            .components
            .iter()
            .filter(|c| removed.contains(c))
            .count();
        let from_side = side
            .components
            .iter()
            .filter(|c| removed.contains(c))
            .count();
        (from_stem, from_side)
    };
    // The side chunk adds less error per MAC (0.3 / b < 0.5 / a), but asked for exactly the
    // stem chunk's MACs it would overshoot by far more than OVERSHOOT: the stem chunk goes.
    assert!((b - a) / total > OVERSHOOT);
    assert_eq!(pick(a / total, 0.5, 0.3), (8, 0));
    // Asked for far less, both overshoot: the one adding the least error (the side) goes,
    // although the stem was taken from the queue last.
    let tiny = 0.1 * a / total;
    assert!(
        a / total - tiny > OVERSHOOT,
        "the stem chunk overshoots too"
    );
    assert_eq!(pick(tiny, 0.5, 0.3), (0, 8));
    assert_eq!(pick(tiny, 0.2, 0.3), (8, 0));
}

/// Without calibration images, `--criterion output` is a one-line error naming the recipe
/// and the fix, and nothing is written; left to choose, `prune --no-recover` falls back to
/// `l1` there.
#[test]
fn the_output_criterion_without_calibration_images_names_the_fix() {
    let Some(_) = common::shared("models/yolox_nano/yolox_nano.onnx") else {
        return;
    };
    if !ort_ok() {
        return;
    }
    let root = common::crate_root();
    let mut r: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join("engines/yolox-nano-qdq.yaml")).unwrap(),
    )
    .unwrap();
    let model = root.join("engines").join(r["model"].as_str().unwrap());
    r["model"] = model.canonicalize().unwrap().to_str().unwrap().into();
    let map = r.as_mapping_mut().unwrap();
    for key in ["calibration", "quantize", "eval"] {
        map.remove(key);
    }
    map.insert("precision".into(), "fp16".into());
    let tmp = tempfile::tempdir().unwrap();
    let recipe = tmp.path().join("no-calibration.yaml");
    std::fs::write(&recipe, serde_yaml_ng::to_string(&r).unwrap()).unwrap();
    let out = tmp.path().join("out");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "prune".to_string(),
            recipe.to_str().unwrap().to_string(),
            "--ratio".into(),
            "0.1".into(),
            "--out".into(),
            out.to_str().unwrap().to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        common::trtforge(&a)
    };
    let (code, _, err) = run(args(&["--criterion", "output", "--no-recover"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no-calibration.yaml")
            && err.contains("--criterion output measures channels on calibration images")
            && err.contains("use --criterion l1")
            && err.trim().lines().count() == 1,
        "{err}"
    );
    assert!(!out.exists(), "a refused prune wrote {}", out.display());
    let (code, stdout, err) = run(args(&["--no-recover", "--no-eval", "--json"]));
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["criterion"], "l1");
}
