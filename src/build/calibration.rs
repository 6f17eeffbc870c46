//! What feeds the calibrator bridge in a real build (always compiled, pure Rust):
//!
//! - [`StreamSource`]: a [`BatchSource`] over the SAME [`ImageStream`] `trtforge calibrate`
//!   reads (same image set, order, contract and unreadable-image policy). It regroups the
//!   stream's images into batches of the network's calibration batch size.
//! - [`ProvenanceCache`]: a [`CacheStore`] over the calibration artifact set in the recipe's
//!   output folder (`calibration.cache` guarded by `provenance.json`): a fresh cache is handed
//!   to TensorRT, a stale one is refused naming the field that changed, and the cache TensorRT
//!   writes is stored with the current provenance and the two range files.
//! - [`prepare`]: the CPU-side decision `trtforge build` makes before any TensorRT call.

use super::plan::BuildPlan;
use crate::calib::artifacts::{self, check_existing, CACHE_FILE};
use crate::calib::cache::CalibrationCache;
use crate::calib::calibrate::current_provenance;
use crate::calib::provenance::Provenance;
use crate::data::{ImageSet, ImageStream};
use crate::error::{Error, Result, StaleFix};
use crate::recipe::{BuildJob, Calibration, CalibrationJob};
use crate::trt::bridge::{BatchSource, CacheStore, HostTensor};
use std::path::{Path, PathBuf};

/// A [`BatchSource`] pulling preprocessed images from an [`ImageStream`].
///
/// TensorRT needs every calibration batch to have the network's batch size, while the stream's
/// batches follow `calibration.batch_size` (and its last one may be short), so images are
/// regrouped. A final group smaller than the batch size cannot be given to TensorRT: it is
/// dropped and counted in [`StreamSource::dropped_tail`].
pub struct StreamSource {
    stream: ImageStream,
    input: String,
    batch: usize,
    /// Images taken from the stream but not yet served (flattened CHW each).
    pending: Vec<f32>,
    pending_images: usize,
    /// CHW of one image, fixed by the first image seen.
    image_shape: Option<[usize; 3]>,
    served: usize,
    dropped_tail: usize,
}

impl StreamSource {
    /// Serve `stream`'s images as input `input`, `batch` images per batch.
    pub fn new(stream: ImageStream, input: impl Into<String>, batch: usize) -> Result<Self> {
        if batch == 0 {
            return Err(Error::Invalid(
                "calibration batch size 0: set calibration.batch_size to at least 1".into(),
            ));
        }
        Ok(StreamSource {
            stream,
            input: input.into(),
            batch,
            pending: Vec::new(),
            pending_images: 0,
            image_shape: None,
            served: 0,
            dropped_tail: 0,
        })
    }

    /// Batches served so far.
    pub fn served(&self) -> usize {
        self.served
    }

    /// Images left over at the end of the stream (fewer than one batch), not calibrated on.
    pub fn dropped_tail(&self) -> usize {
        self.dropped_tail
    }

    /// Images the stream skipped as unreadable (with `on_unreadable: skip`).
    pub fn skipped(&self) -> usize {
        self.stream.skipped().len()
    }

    /// Pull one stream batch into `pending`; `false` at the end of the stream.
    fn pull(&mut self) -> Result<bool> {
        let Some(b) = self.stream.next() else {
            return Ok(false);
        };
        let b = b?;
        let (n, c, h, w) = b.tensor.dim();
        let shape = [c, h, w];
        match self.image_shape {
            None => self.image_shape = Some(shape),
            Some(s) if s != shape => {
                return Err(Error::Contract(format!(
                    "calibration images changed shape from {s:?} to {shape:?} (at {})",
                    b.items
                        .first()
                        .map_or_else(String::new, |i| i.path.display().to_string())
                )))
            }
            Some(_) => {}
        }
        let t = b.tensor.as_standard_layout();
        self.pending
            .extend_from_slice(t.as_slice().expect("standard layout"));
        self.pending_images += n;
        Ok(true)
    }
}

impl BatchSource for StreamSource {
    fn batch_size(&self) -> usize {
        self.batch
    }

    fn input_names(&self) -> Vec<String> {
        vec![self.input.clone()]
    }

    fn next_batch(&mut self) -> Result<Option<Vec<HostTensor>>> {
        while self.pending_images < self.batch {
            if !self.pull()? {
                if self.pending_images > 0 {
                    log::warn!(
                        "calibration: the last {} image(s) do not fill a batch of {} and are not used",
                        self.pending_images,
                        self.batch
                    );
                    self.dropped_tail = self.pending_images;
                    self.pending.clear();
                    self.pending_images = 0;
                }
                if self.served == 0 {
                    // TensorRT would only say it found no scaling factors.
                    return Err(Error::Invalid(format!(
                        "calibration: {} readable image(s) ({} unreadable skipped) do not fill one batch of {}; add images to calibration.images, or lower the batch (the model's batch dimension, or builder.profiles opt)",
                        self.dropped_tail,
                        self.stream.skipped().len(),
                        self.batch
                    )));
                }
                return Ok(None);
            }
        }
        let [c, h, w] = self.image_shape.expect("set by pull");
        let take = self.batch * c * h * w;
        let rest = self.pending.split_off(take);
        let data = std::mem::replace(&mut self.pending, rest);
        self.pending_images -= self.batch;
        self.served += 1;
        Ok(Some(vec![HostTensor {
            name: self.input.clone(),
            data,
            shape: vec![self.batch, c, h, w],
        }]))
    }
}

/// A stale calibration cache seen from `trtforge build`: the fix names its flag.
pub fn for_build(e: Error) -> Error {
    e.with_stale_fix(StaleFix::RecalibrateInBuild)
}

/// The provenance-checked calibration cache in a recipe's output folder, as TensorRT sees it.
pub struct ProvenanceCache {
    out: PathBuf,
    now: Provenance,
    /// `--force-calibration`: ignore what is there (TensorRT calibrates, then overwrites it).
    ignore_existing: bool,
}

impl ProvenanceCache {
    /// `now` is the provenance of the current inputs ([`current_provenance`]).
    pub fn new(out: impl Into<PathBuf>, now: Provenance, ignore_existing: bool) -> Self {
        ProvenanceCache {
            out: out.into(),
            now,
            ignore_existing,
        }
    }

    pub fn cache_path(&self) -> PathBuf {
        self.out.join(CACHE_FILE)
    }
}

impl CacheStore for ProvenanceCache {
    fn read(&mut self) -> Result<Option<Vec<u8>>> {
        if self.ignore_existing {
            return Ok(None);
        }
        match check_existing(&self.out, &self.now).map_err(for_build)? {
            None => Ok(None),
            Some(_) => crate::error::read_file(&self.cache_path()).map(Some),
        }
    }

    /// Store TensorRT's cache: parse it (a cache we could not read back is refused), then
    /// write the artifact set with the current provenance ([`artifacts::write`]).
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let path = self.cache_path();
        let text = std::str::from_utf8(bytes).map_err(|_| {
            Error::Invalid(format!(
                "{}: TensorRT handed back a calibration cache that is not text; not stored",
                path.display()
            ))
        })?;
        let cache = CalibrationCache::parse(text, &path)?;
        let plain: Vec<(String, f32)> = cache
            .entries
            .iter()
            .map(|e| (e.tensor.clone(), e.amax()))
            .collect();
        artifacts::write(&self.out, &plain, bytes, &self.now)
    }
}

/// The state of the calibration cache when `build` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheState {
    /// A cache made from exactly these inputs: reused, no calibration.
    Fresh,
    /// No cache yet: calibrate.
    Absent,
    /// `--force-calibration`: calibrate whatever is there.
    Forced,
}

/// Everything `build` needs to calibrate (or reuse a cache) for an INT8 calibrator plan.
pub struct CalibrationPrep {
    pub job: CalibrationJob,
    pub set: ImageSet,
    pub provenance: Provenance,
    pub state: CacheState,
    /// Images per TensorRT calibration batch.
    pub network_batch: usize,
}

/// The batch TensorRT calibrates with: the model's static batch dimension, else the
/// calibration profile's opt (the recipe's profile for the input), else `calibration.batch_size`.
pub fn network_batch(job: &BuildJob, plan: &BuildPlan, cal: &Calibration) -> usize {
    let input = &job.input.tensor;
    let dim0 = plan
        .inputs
        .iter()
        .find(|(n, _)| n == input)
        .and_then(|(_, d)| d.first().copied())
        .unwrap_or(-1);
    if dim0 > 0 {
        return dim0 as usize;
    }
    job.builder
        .profiles
        .get(input)
        .and_then(|p| p.opt.first().copied())
        .filter(|b| *b > 0)
        .map_or(cal.batch_size, |b| b as usize)
}

/// Check the cache in the recipe's output folder against the current inputs. A stale cache
/// is an error (naming the differing field) unless `force`. `None` when the recipe has no
/// calibration section.
pub fn prepare(job: &BuildJob, plan: &BuildPlan, force: bool) -> Result<Option<CalibrationPrep>> {
    let Some(cal) = &job.calibration else {
        return Ok(None);
    };
    let set = cal.image_set()?;
    let provenance = current_provenance(cal, &set)?;
    let state = if force {
        CacheState::Forced
    } else {
        match check_existing(&cal.out, &provenance).map_err(for_build)? {
            Some(_) => CacheState::Fresh,
            None => CacheState::Absent,
        }
    };
    let network_batch = network_batch(job, plan, &cal.calibration);
    if state != CacheState::Fresh && set.len() < network_batch {
        return Err(Error::Invalid(format!(
            "calibration: {} image(s) in {} do not fill one batch of {} (the network's batch); add images, or lower the batch (the model's batch dimension, or builder.profiles opt)",
            set.len(),
            cal.calibration.images.display(),
            network_batch
        )));
    }
    Ok(Some(CalibrationPrep {
        network_batch,
        job: cal.clone(),
        set,
        provenance,
        state,
    }))
}

impl CalibrationPrep {
    /// The bridge's inputs: the calibration stream (same set, contract and policy as
    /// `trtforge calibrate`) and the provenance-checked cache.
    pub fn bridge_inputs(&self, workers: usize) -> Result<(StreamSource, ProvenanceCache)> {
        let (c, input) = (&self.job.calibration, &self.job.input);
        let stream = ImageStream::new(
            self.set.clone(),
            input,
            c.batch_size,
            c.on_unreadable,
            workers,
        )?;
        let source = StreamSource::new(stream, &input.tensor, self.network_batch)?;
        let cache = ProvenanceCache::new(
            &self.job.out,
            self.provenance.clone(),
            self.state == CacheState::Forced,
        );
        Ok((source, cache))
    }

    pub fn cache_path(&self) -> PathBuf {
        self.job.out.join(CACHE_FILE)
    }
}

/// `path` relative to the current folder when it is inside it (for messages).
pub fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|d| path.strip_prefix(d).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calib::artifacts::{DYNAMIC_RANGE_FILE, PROVENANCE_FILE, RANGES_FILE};
    use crate::trt::bridge::testing::{get_batch, read_cache, HostBindings};
    use crate::trt::bridge::CalibratorState;

    /// The bundled redistributable photos (5 images, in the repository).
    fn calib_data() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("calib_data")
    }

    /// A recipe in `dir` over `images`, with a real (synthesised) 96x96 model.
    fn recipe(dir: &Path, images: &Path, batch: usize, size: i64) -> BuildJob {
        let model = dir.join("tiny.onnx");
        let mut m = crate::onnx::synth::tiny_detector(size);
        m.path = model.clone();
        m.save(&model).unwrap();
        let text = format!(
            "model: tiny.onnx\ninput:\n  tensor: images\n  shape: [1, 3, 96, 96]\n  channel_order: bgr\n  \
             scale: 0.00392156862745098\n  resize: letterbox-centre\n  pad_value: 114\n\
             calibration:\n  images: {}\n  batch_size: {batch}\nprecision: int8\noutput: out\n",
            images.display()
        );
        let path = dir.join("tiny.yaml");
        std::fs::write(&path, text).unwrap();
        crate::recipe::LoadedRecipe::load(&path)
            .unwrap()
            .build_job()
            .unwrap()
    }

    fn cal(r: &BuildJob) -> &CalibrationJob {
        r.calibration.as_ref().unwrap()
    }

    fn stream(r: &BuildJob, batch: usize) -> ImageStream {
        let c = &cal(r).calibration;
        ImageStream::new(
            cal(r).image_set().unwrap(),
            &r.input,
            c.batch_size,
            c.on_unreadable,
            2,
        )
        .map(|s| s.with_prefetch(batch.max(2)))
        .unwrap()
    }

    /// All images of the set, preprocessed, in order (one stream batch holding everything).
    fn reference(r: &BuildJob) -> Vec<f32> {
        let set = cal(r).image_set().unwrap();
        let n = set.len();
        let c = &cal(r).calibration;
        let mut s = ImageStream::new(set, &r.input, n, c.on_unreadable, 2).unwrap();
        let b = s.next().unwrap().unwrap();
        b.tensor.as_standard_layout().as_slice().unwrap().to_vec()
    }

    const CHW: usize = 3 * 96 * 96;

    /// A calibrator state over `src` in host memory, binding the tiny model's input.
    fn host_state(
        src: StreamSource,
        cache: Option<Box<dyn CacheStore>>,
        batch: usize,
    ) -> Box<CalibratorState> {
        CalibratorState::new(
            Box::new(src),
            cache,
            Box::new(HostBindings::default()),
            f32_input(batch),
        )
        .unwrap()
    }

    /// The tiny model's input as TensorRT reads it, `batch` images of 3 x 96 x 96 float32.
    fn f32_input(batch: usize) -> Vec<crate::trt::bridge::InputBinding> {
        vec![crate::trt::bridge::InputBinding {
            name: "images".into(),
            shape: vec![batch, 3, 96, 96],
            dtype: crate::trt::bridge::InputType::F32,
        }]
    }

    #[test]
    fn serves_full_batches_of_the_stream_then_end_of_stream() {
        let dir = tempfile::tempdir().unwrap();
        // Stream batches of 3 regrouped into network batches of 2: 5 images -> 2 batches,
        // 1 image left over.
        let r = recipe(dir.path(), &calib_data(), 3, 96);
        let all = reference(&r);
        assert_eq!(all.len(), 5 * CHW);
        let mut src = StreamSource::new(stream(&r, 3), "images", 2).unwrap();
        assert_eq!(src.batch_size(), 2);
        assert_eq!(src.input_names(), vec!["images".to_string()]);
        for b in 0..2 {
            let t = src.next_batch().unwrap().expect("a full batch");
            assert_eq!(t.len(), 1);
            assert_eq!(t[0].name, "images");
            assert_eq!(t[0].shape, vec![2, 3, 96, 96]);
            assert_eq!(t[0].data, all[b * 2 * CHW..(b + 1) * 2 * CHW], "batch {b}");
        }
        assert!(src.next_batch().unwrap().is_none());
        assert!(
            src.next_batch().unwrap().is_none(),
            "end of stream is sticky"
        );
        assert_eq!((src.served(), src.dropped_tail()), (2, 1));
    }

    /// Fewer images than one network batch: an error with the counts, not TensorRT's
    /// "no scaling factors" after the build.
    #[test]
    fn fewer_images_than_one_batch_is_an_error_naming_the_counts() {
        let dir = tempfile::tempdir().unwrap();
        let r = recipe(dir.path(), &calib_data(), 3, 96);
        let mut src = StreamSource::new(stream(&r, 3), "images", 8).unwrap();
        let e = src.next_batch().unwrap_err().to_string();
        assert!(
            e.contains("5 readable image(s)") && e.contains("one batch of 8"),
            "{e}"
        );
    }

    /// The bridge fills the binding TensorRT names with the stream's batch (C ABI, host memory).
    #[test]
    fn bridge_binds_stream_batches_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let r = recipe(dir.path(), &calib_data(), 1, 96);
        let all = reference(&r);
        let src = StreamSource::new(stream(&r, 1), "images", 1).unwrap();
        let mut state = host_state(src, None, 1);
        let cb = state.callbacks();
        // SAFETY: live state.
        assert_eq!(unsafe { cb.batch_size.unwrap()(cb.user) }, 1);
        for b in 0..5 {
            let (rc, ptr) = get_batch(&cb, "images");
            assert_eq!(rc, 1, "batch {b}");
            // SAFETY: HostBindings keeps CHW floats alive at this address until the next call.
            let got = unsafe { std::slice::from_raw_parts(ptr.cast::<f32>(), CHW) };
            assert_eq!(got, &all[b * CHW..(b + 1) * CHW], "batch {b}");
        }
        assert_eq!(get_batch(&cb, "images").0, 0);
        let sum = state.finish().unwrap();
        assert_eq!((sum.batches, sum.ended), (5, true));

        // A binding name the stream does not provide: refused, naming both.
        let src = StreamSource::new(stream(&r, 1), "images", 1).unwrap();
        let mut state = host_state(src, None, 1);
        assert_eq!(get_batch(&state.callbacks(), "input.1").0, -1);
        let e = state.finish().unwrap_err().to_string();
        assert!(
            e.contains("calibration batch 0") && e.contains("input.1") && e.contains("images"),
            "{e}"
        );
    }

    #[test]
    fn unreadable_image_fails_the_batch_naming_it_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let imgs = dir.path().join("imgs");
        std::fs::create_dir(&imgs).unwrap();
        for (from, to) in [
            ("astronaut.png", "a.png"),
            ("chelsea.png", "b.png"),
            ("coffee.png", "d.png"),
        ] {
            std::fs::copy(calib_data().join(from), imgs.join(to)).unwrap();
        }
        std::fs::write(imgs.join("c.jpg"), b"this is not a JPEG").unwrap();
        let r = recipe(dir.path(), &imgs, 2, 96);
        let src = StreamSource::new(stream(&r, 2), "images", 2).unwrap();
        let mut state = host_state(src, None, 2);
        let cb = state.callbacks();
        let get = || get_batch(&cb, "images").0;
        assert_eq!(get(), 1, "a.png + b.png");
        assert_eq!(get(), -1, "c.jpg is unreadable");
        assert_eq!(get(), -1, "nothing after a failure");
        let e = state.finish().unwrap_err().to_string();
        assert!(e.contains("calibration batch 1 (getBatch) failed"), "{e}");
        assert!(e.contains("c.jpg") && e.contains("unreadable image"), "{e}");
    }

    fn provenance(r: &BuildJob) -> Provenance {
        current_provenance(cal(r), &cal(r).image_set().unwrap()).unwrap()
    }

    const TRT_CACHE: &[u8] =
        b"TRT-100300-EntropyCalibration2\nimages: 3c010a14\n/conv1/Conv_output_0: 3d4ccccd\n";

    #[test]
    fn cache_store_absent_then_written_then_fresh_then_stale() {
        let dir = tempfile::tempdir().unwrap();
        let r = recipe(dir.path(), &calib_data(), 2, 96);
        let out = cal(&r).out.clone();
        let now = provenance(&r);

        // Absent: TensorRT calibrates.
        let mut store = ProvenanceCache::new(&out, now.clone(), false);
        assert_eq!(store.read().unwrap(), None);
        // TensorRT writes its cache: stored with provenance and range files.
        store.write(TRT_CACHE).unwrap();
        assert_eq!(std::fs::read(out.join(CACHE_FILE)).unwrap(), TRT_CACHE);
        // The record is the inputs plus the hash of each file written with it.
        let mut stored = Provenance::read(&out.join(PROVENANCE_FILE)).unwrap();
        assert_eq!(
            stored.outputs.get(CACHE_FILE),
            Some(&crate::util::sha256_hex(TRT_CACHE))
        );
        assert_eq!(stored.outputs.len(), 3);
        stored.outputs.clear();
        assert_eq!(stored, now);
        let ranges: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(RANGES_FILE)).unwrap()).unwrap();
        let amax = ranges["/conv1/Conv_output_0"].as_f64().unwrap();
        assert!((amax - 0.05 * 127.0).abs() < 1e-4, "{ranges}");
        assert!(std::fs::read_to_string(out.join(DYNAMIC_RANGE_FILE))
            .unwrap()
            .contains("images:"));

        // Fresh: the same inputs read the bytes back.
        let mut store = ProvenanceCache::new(&out, now.clone(), false);
        assert_eq!(store.read().unwrap().as_deref(), Some(TRT_CACHE));
        // Forced: ignored.
        assert_eq!(ProvenanceCache::new(&out, now, true).read().unwrap(), None);

        // Stale: another model (same file name, other weights/shape) is refused, naming the field.
        let mut m = crate::onnx::synth::tiny_detector(64);
        m.path = r.model.path.clone();
        m.save(&r.model.path).unwrap();
        let mut store = ProvenanceCache::new(&out, provenance(&r), false);
        match store.read().unwrap_err() {
            e @ Error::Stale { .. } => {
                let msg = e.to_string();
                assert!(msg.contains(PROVENANCE_FILE), "{msg}");
                assert!(msg.contains("model sha256 differs"), "{msg}");
                assert!(msg.contains("--force-calibration"), "{msg}");
            }
            other => panic!("expected Stale, got {other}"),
        }

        // Through the bridge: readCalibrationCache refuses, and build gets the Stale error.
        let src = StreamSource::new(stream(&r, 2), "images", 2).unwrap();
        let mut state = host_state(src, Some(Box::new(store)), 2);
        assert_eq!(read_cache(&state.callbacks()).0, -1);
        assert!(matches!(state.finish().unwrap_err(), Error::Stale { .. }));
    }

    #[test]
    fn fresh_cache_goes_to_tensorrt_through_the_c_abi() {
        let dir = tempfile::tempdir().unwrap();
        let r = recipe(dir.path(), &calib_data(), 2, 96);
        let out = cal(&r).out.clone();
        ProvenanceCache::new(&out, provenance(&r), false)
            .write(TRT_CACHE)
            .unwrap();
        let src = StreamSource::new(stream(&r, 2), "images", 2).unwrap();
        let store = ProvenanceCache::new(&out, provenance(&r), false);
        let mut state = host_state(src, Some(Box::new(store)), 2);
        assert_eq!(read_cache(&state.callbacks()), (1, TRT_CACHE.to_vec()));
        let sum = state.finish().unwrap();
        assert!(sum.cache_used);
        assert_eq!(
            sum.cache_sha256.unwrap(),
            crate::util::sha256_hex(TRT_CACHE)
        );
    }

    #[test]
    fn a_cache_that_is_not_a_tensorrt_cache_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let r = recipe(dir.path(), &calib_data(), 2, 96);
        let out = cal(&r).out.clone();
        let e = ProvenanceCache::new(&out, provenance(&r), false)
            .write(b"garbage\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(CACHE_FILE), "{e}");
        assert!(!out.join(CACHE_FILE).exists() && !out.join(PROVENANCE_FILE).exists());
    }

    #[test]
    fn network_batch_prefers_the_static_dimension() {
        let dir = tempfile::tempdir().unwrap();
        let r = recipe(dir.path(), &calib_data(), 4, 96);
        let mut plan = crate::build::plan::plan(&r).unwrap();
        let c = &cal(&r).calibration;
        assert_eq!(network_batch(&r, &plan, c), 1, "the model's batch is 1");
        plan.inputs[0].1[0] = -1;
        assert_eq!(
            network_batch(&r, &plan, c),
            4,
            "dynamic: calibration.batch_size"
        );
    }

    #[cfg(feature = "cuda")]
    /// The calibrator bridge over the real calibration stream (calib_data/, 5 images, batch 1)
    /// leaves each preprocessed image in device memory, bound by input name.
    #[test]
    fn bridge_feeds_real_stream_batches_into_device_memory() {
        use crate::cuda::testing::{gpu, read_device};
        use crate::cuda::DeviceBindings;
        use crate::data::{InputContract, OnUnreadable, Order};
        let Some(g) = gpu() else { return };
        // The binary may run from another checkout (the device machine): try both.
        let data = [
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("calib_data"),
            std::path::PathBuf::from("calib_data"),
        ]
        .into_iter()
        .find(|p| p.is_dir())
        .expect("calib_data/ (in the repository) not found");
        let contract: InputContract = serde_yaml_ng::from_str(
            "tensor: images\nshape: [1, 3, 96, 96]\nchannel_order: bgr\nscale: 0.00392156862745098\n\
             resize: letterbox-centre\npad_value: 114\n",
        )
        .unwrap();
        let set = || ImageSet::from_path(&data, Order::Sorted, 0, None).unwrap();
        let chw = 3 * 96 * 96;
        let mut all = ImageStream::new(set(), &contract, 5, OnUnreadable::Fail, 2).unwrap();
        let all = all.next().unwrap().unwrap().tensor;
        let all = all.as_slice().unwrap();
        let stream = ImageStream::new(set(), &contract, 1, OnUnreadable::Fail, 2).unwrap();
        let src = StreamSource::new(stream, "images", 1).unwrap();
        let mut state = CalibratorState::new(
            Box::new(src),
            None,
            Box::new(DeviceBindings::new(g.clone())),
            f32_input(1),
        )
        .unwrap();
        let cb = state.callbacks();
        let mut first = None;
        for b in 0..5 {
            let (rc, ptr) = get_batch(&cb, "images");
            assert_eq!(rc, 1, "batch {b}");
            assert_eq!(*first.get_or_insert(ptr), ptr, "one buffer, reused");
            // SAFETY: `ptr` is a live device allocation of `chw` floats owned by the state.
            let host = unsafe { read_device(&g, ptr, chw) };
            assert_eq!(&host[..], &all[b * chw..(b + 1) * chw], "batch {b}");
        }
        assert_eq!(get_batch(&cb, "images").0, 0);
        let sum = state.finish().unwrap();
        println!(
            "bridge: {} calib_data batches went through device memory",
            sum.batches
        );
        assert_eq!(sum.batches, 5);
    }
}
