//! The calibration image stream on real images, checked against an independent
//! numpy/OpenCV reference (tests/py/preprocess_ref.py) and against hand-made bad inputs.

use ndarray::{ArrayD, Axis};
use std::path::{Path, PathBuf};
use std::process::Command;
use trtforge::data::dump::dump_inputs;
use trtforge::data::image::decode_rgb8;
use trtforge::data::npy::read_npy;
use trtforge::data::preprocess::preprocess_image;
use trtforge::data::{ImageSet, ImageStream};
use trtforge::recipe::{InputContract, LoadedRecipe, OnUnreadable, Order};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/<rel>`, or None (with a message) when absent outside CI; absent in CI fails.
fn shared(rel: &str) -> Option<PathBuf> {
    let p = root().join("../shared").join(rel);
    if p.exists() {
        return Some(p);
    }
    if trtforge::env::in_ci() {
        panic!("{} is missing (required under CI=true)", p.display());
    }
    eprintln!("SKIP: {} is absent", p.display());
    None
}

fn python() -> Option<PathBuf> {
    let p = trtforge::env::var("TRTFORGE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"));
    if p.exists() {
        return Some(p);
    }
    if trtforge::env::in_ci() {
        panic!("{} is missing: run `source scripts/env.sh`", p.display());
    }
    eprintln!(
        "SKIP: no Python at {} (run `source scripts/env.sh`)",
        p.display()
    );
    None
}

fn run_ref(py: &Path, args: &[&str]) -> String {
    let out = Command::new(py)
        .arg(root().join("tests/py/preprocess_ref.py"))
        .args(args)
        .output()
        .expect("start python");
    assert!(
        out.status.success(),
        "preprocess_ref.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The input contract of the committed recipe for `model` (the recipes users run).
fn contract(model: &str) -> InputContract {
    let recipe = match model {
        "yolox" => "yolox-nano-int8.yaml",
        "nanodet" => "nanodet-m-320-int8.yaml",
        "fastestdet" => "fastestdet-dla-fp16.yaml",
        _ => unreachable!(),
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    LoadedRecipe::load(&root.join("engines").join(recipe))
        .unwrap()
        .recipe
        .input
}

/// Images for the reference comparison: COCO JPEGs of several sizes, the greyscale one
/// (000000000086.jpg), and public-domain PNGs and a JPEG.
fn reference_images() -> Option<Vec<PathBuf>> {
    let coco = shared("datasets/coco128-train/images")?;
    let pd = shared("images/public-domain")?;
    let mut v: Vec<PathBuf> = [
        "000000000009.jpg",
        "000000000025.jpg",
        "000000000086.jpg",
        "000000000110.jpg",
        "000000000241.jpg",
        "000000000625.jpg",
    ]
    .iter()
    .map(|n| coco.join(n))
    .collect();
    v.extend(
        ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]
            .iter()
            .map(|n| pd.join(n)),
    );
    Some(v)
}

fn max_abs(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn is_png(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "png")
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Decoded pixels as an HxWx3 f32 array (RGB).
fn decoded(p: &Path) -> ArrayD<f32> {
    let img = decode_rgb8(&std::fs::read(p).unwrap(), p).unwrap();
    let (w, h) = img.dimensions();
    ArrayD::from_shape_vec(
        vec![h as usize, w as usize, 3],
        img.as_raw().iter().map(|v| *v as f32).collect(),
    )
    .unwrap()
}

/// Largest difference between two model inputs on the 0..255 pixel scale (mean/std undone),
/// and the mean difference.
fn pixel_diff(c: &InputContract, got: &ArrayD<f32>, want: &ArrayD<f32>) -> (f32, f32) {
    assert_eq!(got.shape(), want.shape());
    let (mut worst, mut sum) = (0.0f32, 0.0f64);
    for ch in 0..3 {
        let k = c.std[ch] / c.scale;
        for (a, b) in got
            .index_axis(Axis(1), ch)
            .iter()
            .zip(want.index_axis(Axis(1), ch).iter())
        {
            let d = (a - b).abs() * k;
            worst = worst.max(d);
            sum += d as f64;
        }
    }
    (worst, (sum / got.len() as f64) as f32)
}

/// JPEG decoding is checked against OpenCV (libjpeg-turbo): the JPEG standard lets IDCTs
/// differ, and zune-jpeg's integer IDCT and colour conversion round differently from
/// libjpeg-turbo's on a small share of samples. PNG decoding must be exact.
#[test]
fn decode_matches_opencv() {
    let (Some(py), Some(imgs)) = (python(), reference_images()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec!["decode", tmp.path().to_str().unwrap()];
    args.extend(imgs.iter().map(|p| p.to_str().unwrap()));
    run_ref(&py, &args);
    for (i, p) in imgs.iter().enumerate() {
        let want = read_npy(&tmp.path().join(format!("{i}.npy"))).unwrap();
        let got = decoded(p);
        assert_eq!(got.shape(), want.shape(), "{}", p.display());
        let d = max_abs(&got, &want);
        let differing =
            got.iter().zip(want.iter()).filter(|(a, b)| a != b).count() as f64 / got.len() as f64;
        eprintln!(
            "decode {}: max |diff| {d}, samples differing {:.2}%",
            name(p),
            differing * 100.0
        );
        if is_png(p) {
            assert_eq!(d, 0.0, "{}: PNG decoding must be exact", p.display());
        } else {
            assert!(
                d <= 3.0 && differing < 0.05,
                "{}: JPEG decode too far from libjpeg-turbo",
                p.display()
            );
        }
    }
    // The greyscale COCO image decodes to three equal channels.
    let grey = imgs.iter().find(|p| name(p) == "000000000086.jpg").unwrap();
    let g = decoded(grey);
    assert!(g
        .lanes(Axis(2))
        .into_iter()
        .all(|px| px[0] == px[1] && px[1] == px[2]));
}

/// The preprocessing itself (geometry, interpolation, pad, channel order, mean/std) against
/// the models' reference pipelines in numpy/OpenCV, fed the same decoded pixels: every
/// value within 1 LSB of the 0..255 scale.
#[test]
fn preprocessing_matches_reference_pipelines() {
    let (Some(py), Some(imgs)) = (python(), reference_images()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // Hand the reference exactly the pixels trtforge decoded.
    let mut pixel_files = Vec::new();
    for (i, p) in imgs.iter().enumerate() {
        let f = tmp.path().join(format!("pixels{i}.npy"));
        trtforge::data::npy::write_npy(&f, &decoded(p).view()).unwrap();
        pixel_files.push(f);
    }
    for model in ["yolox", "nanodet", "fastestdet"] {
        let c = contract(model);
        let out = tmp.path().join(model);
        std::fs::create_dir(&out).unwrap();
        let mut args = vec![model, out.to_str().unwrap()];
        args.extend(pixel_files.iter().map(|p| p.to_str().unwrap()));
        run_ref(&py, &args);
        for (i, p) in imgs.iter().enumerate() {
            let want = read_npy(&out.join(format!("{i}.npy"))).unwrap();
            let (got, _) = preprocess_image(p, &c).unwrap();
            let got = got.insert_axis(Axis(0)).into_dyn();
            let (worst, mean) = pixel_diff(&c, &got, &want);
            eprintln!(
                "{model} {}: max |diff| {worst:.4}, mean {mean:.4} (0..255 units)",
                name(p)
            );
            assert!(
                worst < 1.0,
                "{model} {}: max difference {worst} >= 1 LSB",
                p.display()
            );
        }
    }
}

/// End to end against `cv2.imread` + the reference pipeline: exact-decode PNGs stay within
/// 1 LSB; JPEGs carry the decoder's rounding differences (bounded above). The mean is
/// about 0.2 even for PNGs because OpenCV rounds resized pixels to u8 and trtforge keeps f32.
#[test]
fn end_to_end_matches_opencv_pipelines() {
    let (Some(py), Some(imgs)) = (python(), reference_images()) else {
        return;
    };
    for model in ["yolox", "nanodet", "fastestdet"] {
        let c = contract(model);
        let tmp = tempfile::tempdir().unwrap();
        let mut args = vec![model, tmp.path().to_str().unwrap()];
        args.extend(imgs.iter().map(|p| p.to_str().unwrap()));
        run_ref(&py, &args);
        for (i, p) in imgs.iter().enumerate() {
            let want = read_npy(&tmp.path().join(format!("{i}.npy"))).unwrap();
            let (got, _) = preprocess_image(p, &c).unwrap();
            let (worst, mean) = pixel_diff(&c, &got.insert_axis(Axis(0)).into_dyn(), &want);
            eprintln!(
                "end-to-end {model} {}: max |diff| {worst:.4}, mean {mean:.4}",
                name(p)
            );
            if is_png(p) {
                assert!(worst < 1.0, "{model} {}: {worst}", p.display());
            } else {
                assert!(
                    worst < 3.5 && mean < 0.3,
                    "{model} {}: max {worst} mean {mean}",
                    p.display()
                );
            }
        }
    }
}

fn coco_set(limit: usize) -> Option<ImageSet> {
    let dir = shared("datasets/coco128-train/images")?;
    Some(ImageSet::from_path(&dir, Order::Sorted, 0, Some(limit)).unwrap())
}

/// One streamed image: path, sha256, tensor.
type Streamed = (PathBuf, String, ndarray::Array3<f32>);

/// Flatten a stream into one entry per image, with the batch sizes seen.
fn drain(stream: &mut ImageStream) -> (Vec<Streamed>, Vec<usize>) {
    let mut items = Vec::new();
    let mut sizes = Vec::new();
    for b in stream.by_ref() {
        let b = b.unwrap();
        assert_eq!(b.tensor.shape()[0], b.items.len());
        sizes.push(b.items.len());
        for (k, it) in b.items.into_iter().enumerate() {
            items.push((
                it.path,
                it.sha256,
                b.tensor.index_axis(Axis(0), k).to_owned(),
            ));
        }
    }
    (items, sizes)
}

#[test]
fn order_is_deterministic_across_workers_and_batch_sizes() {
    let Some(set) = coco_set(12) else { return };
    let c = contract("yolox");
    let names: Vec<String> = set.paths().iter().map(|p| name(p)).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), 12);

    let (a, sa) = drain(&mut ImageStream::new(set.clone(), &c, 1, OnUnreadable::Fail, 1).unwrap());
    let (b, sb) = drain(&mut ImageStream::new(set.clone(), &c, 5, OnUnreadable::Fail, 2).unwrap());
    let mut small = ImageStream::new(set.clone(), &c, 1, OnUnreadable::Fail, 2)
        .unwrap()
        .with_prefetch(3);
    let (d, sd) = drain(&mut small);
    // Bounded memory: never more than the prefetch window decoded ahead of the consumer.
    assert!(
        small.peak_ahead() <= 3 && small.peak_ahead() >= 1,
        "{}",
        small.peak_ahead()
    );
    assert_eq!(sa, vec![1; 12]);
    assert_eq!(sb, vec![5, 5, 2], "the last batch holds the rest");
    assert_eq!(sd, vec![1; 12]);
    for other in [&b, &d] {
        assert_eq!(a.len(), other.len());
        for (x, y) in a.iter().zip(other.iter()) {
            assert_eq!(x.0, y.0);
            assert_eq!(x.1, y.1);
            assert!(x.2 == y.2, "{}: tensors differ between runs", x.0.display());
        }
    }
    assert_eq!(a.iter().map(|x| name(&x.0)).collect::<Vec<_>>(), names);

    // Content hashes agree with an independent tool.
    if let Ok(out) = Command::new("sha256sum").arg(&a[3].0).output() {
        let s = String::from_utf8_lossy(&out.stdout);
        assert_eq!(s.split_whitespace().next().unwrap(), a[3].1);
    }

    // A shuffled order is a seeded permutation of the sorted set, the same every time.
    let dir = shared("datasets/coco128-train/images").unwrap();
    let s1 = ImageSet::from_path(&dir, Order::Shuffled, 3, Some(20)).unwrap();
    let s2 = ImageSet::from_path(&dir, Order::Shuffled, 3, Some(20)).unwrap();
    let s3 = ImageSet::from_path(&dir, Order::Shuffled, 4, Some(20)).unwrap();
    assert_eq!(s1.paths(), s2.paths());
    assert_ne!(s1.paths(), s3.paths());
    assert_ne!(s1.paths(), coco_set(20).unwrap().paths());
}

/// A temp folder with real images plus a JPEG cut inside its image data (which decoders
/// would happily fill with grey), a text file named .jpg and a PNG cut in half.
fn folder_with_bad_images() -> Option<(tempfile::TempDir, Vec<String>)> {
    let src = shared("datasets/coco128-train/images")?;
    let tmp = tempfile::tempdir().unwrap();
    let good = ["000000000009.jpg", "000000000025.jpg", "000000000030.jpg"];
    for (i, g) in good.iter().enumerate() {
        std::fs::copy(src.join(g), tmp.path().join(format!("img{}.jpg", 2 * i))).unwrap();
    }
    let bytes = std::fs::read(src.join("000000000034.jpg")).unwrap();
    std::fs::write(tmp.path().join("img1.jpg"), &bytes[..bytes.len() * 6 / 10]).unwrap();
    std::fs::write(tmp.path().join("img3.jpg"), b"this is not a picture\n").unwrap();
    let png = std::fs::read(src.join("../../../images/public-domain/chelsea.png")).unwrap();
    std::fs::write(tmp.path().join("img5.png"), &png[..png.len() / 2]).unwrap();
    std::fs::write(
        tmp.path().join("readme.txt"),
        b"ignored: not an image extension\n",
    )
    .unwrap();
    Some((
        tmp,
        vec!["img0.jpg".into(), "img2.jpg".into(), "img4.jpg".into()],
    ))
}

#[test]
fn unreadable_images_are_skipped_and_counted() {
    let Some((tmp, good)) = folder_with_bad_images() else {
        return;
    };
    let set = ImageSet::from_path(tmp.path(), Order::Sorted, 0, None).unwrap();
    assert_eq!(set.len(), 6, "readme.txt is not listed");
    let mut stream = ImageStream::new(set, &contract("nanodet"), 2, OnUnreadable::Skip, 2).unwrap();
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    for b in stream.by_ref() {
        let b = b.unwrap();
        sizes.push(b.items.len());
        seen.extend(b.items.iter().map(|i| name(&i.path)));
    }
    assert_eq!(seen, good);
    assert_eq!(
        sizes,
        vec![2, 1],
        "skipped images' places are filled by the next readable ones"
    );
    let skipped: Vec<String> = stream.skipped().iter().map(|s| name(&s.path)).collect();
    assert_eq!(skipped, ["img1.jpg", "img3.jpg", "img5.png"]);
    assert_eq!(stream.yielded(), 3);
    for s in stream.skipped() {
        eprintln!("skipped {}: {}", s.path.display(), s.reason);
    }
}

#[test]
fn fail_mode_names_the_file_and_the_fix() {
    let Some((tmp, _)) = folder_with_bad_images() else {
        return;
    };
    let set = ImageSet::from_path(tmp.path(), Order::Sorted, 0, None).unwrap();
    let mut stream = ImageStream::new(set, &contract("yolox"), 1, OnUnreadable::Fail, 2).unwrap();
    assert!(stream.next().unwrap().is_ok(), "img0.jpg is fine");
    let e = stream.next().unwrap().unwrap_err().to_string();
    eprintln!("{e}");
    assert!(e.contains("img1.jpg"), "{e}");
    assert!(
        e.contains("on_unreadable: skip") && e.contains("replace or remove"),
        "{e}"
    );
    assert!(!e.contains('\n'), "one line: {e}");
    assert!(stream.next().is_none(), "the stream ends after the error");
}

#[test]
fn empty_and_missing_folders_name_the_path_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "x").unwrap();
    let e = ImageSet::from_path(tmp.path(), Order::Sorted, 0, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&tmp.path().display().to_string()), "{e}");
    assert!(
        e.contains("no .jpg, .jpeg or .png files") && e.contains("calibration.images"),
        "{e}"
    );

    let missing = tmp.path().join("no_such_dir");
    let e = ImageSet::from_path(&missing, Order::Sorted, 0, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no_such_dir") && e.contains("calibration.images"),
        "{e}"
    );

    let e = ImageSet::from_path(tmp.path(), Order::Sorted, 0, Some(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("limit 0"), "{e}");
}

#[test]
fn list_file_resolves_relative_paths_and_skips_comments() {
    let Some(src) = shared("datasets/coco128-train/images") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("calib.txt");
    let rel = pathdiff(&src, tmp.path());
    std::fs::write(
        &list,
        format!("# calibration subset\n\n{rel}/000000000030.jpg\n{rel}/000000000009.jpg\n  # indented comment\n"),
    )
    .unwrap();
    let set = ImageSet::from_path(&list, Order::Sorted, 0, None).unwrap();
    let names: Vec<String> = set.paths().iter().map(|p| name(p)).collect();
    assert_eq!(names, ["000000000009.jpg", "000000000030.jpg"]);
    assert!(set.paths().iter().all(|p| p.is_file()));
}

/// A relative path from `base` to `target` (both absolute, no symlinks involved).
fn pathdiff(target: &Path, base: &Path) -> String {
    let t = target.canonicalize().unwrap();
    let b = base.canonicalize().unwrap();
    let common = t
        .components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .count();
    let ups = b.components().count() - common;
    let mut s: Vec<String> = vec!["..".into(); ups];
    s.extend(
        t.components()
            .skip(common)
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    s.join("/")
}

#[test]
fn cmyk_jpeg_is_converted_to_rgb() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (jpg, npy) = (tmp.path().join("cmyk.jpg"), tmp.path().join("cmyk.npy"));
    run_ref(&py, &["cmyk", jpg.to_str().unwrap(), npy.to_str().unwrap()]);
    let want = read_npy(&npy).unwrap();
    let got = decoded(&jpg);
    let d = max_abs(&got, &want);
    eprintln!("CMYK: max |diff| {d}");
    assert!(d <= 2.0, "CMYK conversion off by {d}");
    // Block 0 is pure cyan ink: red absent, green and blue full.
    let px: Vec<f32> = (0..3).map(|c| got[[8, 8, c]]).collect();
    assert!(px[0] <= 2.0 && px[1] >= 253.0 && px[2] >= 253.0, "{px:?}");
}

#[test]
fn exif_orientation_is_ignored() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (jpg, npy) = (tmp.path().join("rot.jpg"), tmp.path().join("rot.npy"));
    run_ref(&py, &["exif", jpg.to_str().unwrap(), npy.to_str().unwrap()]);
    let want = read_npy(&npy).unwrap();
    let got = decoded(&jpg);
    assert_eq!(
        got.shape(),
        &[32, 64, 3],
        "stored 64x32, not rotated to 32x64"
    );
    let d = max_abs(&got, &want);
    eprintln!("EXIF-tagged JPEG: max |diff| vs stored pixels {d}");
    assert!(d <= 3.0, "{d}");
}

#[test]
fn dump_inputs_writes_npy_in_stream_order() {
    let Some(py) = python() else { return };
    let Some(set) = coco_set(4) else { return };
    let c = contract("nanodet");
    let want: Vec<PathBuf> = set.paths().to_vec();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("inputs");
    let mut stream = ImageStream::new(set, &c, 3, OnUnreadable::Fail, 2).unwrap();
    let summary = dump_inputs(&mut stream, &dir).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, summary.files);
    assert_eq!(names[0], "000000_000000000009.npy");
    for (n, p) in names.iter().zip(&want) {
        assert!(n.ends_with(&format!("{}.npy", p.file_stem().unwrap().to_string_lossy())));
    }
    // numpy reads them as float32 1x3x320x320 holding what preprocess_image computes.
    let files: Vec<String> = names
        .iter()
        .map(|n| dir.join(n).to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["npyinfo"];
    args.extend(files.iter().map(|s| s.as_str()));
    let info = run_ref(&py, &args);
    assert_eq!(info.lines().count(), want.len());
    for (line, p) in info.lines().zip(&want) {
        let (t, _) = preprocess_image(p, &c).unwrap();
        let sum: f64 = t.iter().map(|v| *v as f64).sum();
        // "(1, 3, 320, 320) float32 <sum>"
        assert!(line.starts_with("(1, 3, 320, 320) float32 "), "{line}");
        let got: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(
            (got - sum).abs() < 1e-3 * sum.abs().max(1.0),
            "{line} vs {sum}"
        );
    }
}
