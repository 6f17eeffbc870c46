//! The Rust side of the calibrator bridge (always compiled: it is pure Rust behind a C ABI).
//!
//! TensorRT drives calibration by calling four virtual methods on an `IInt8Calibrator`.
//! `sys/calibrator.cpp` implements them by forwarding to the `extern "C"` functions here,
//! passing a `void*` to a boxed [`CalibratorState`]. The state owns the batch stream, the
//! cache store and the memory TensorRT reads batches from; it outlives the build call so a
//! failure recorded inside a callback can be returned once TensorRT gives control back.
//!
//! Rules kept here: no panic crosses the boundary (`catch_unwind` in every callback); the
//! first failure ends calibration (every later `getBatch` answers "end of stream"); and every
//! binding TensorRT reads holds the full volume of its network input, in the input's type
//! ([`InputBinding`]: the static dims, or the calibration profile's kOPT), because TensorRT
//! reads exactly that many bytes from the address it is given.

use crate::error::{Error, Result};
use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// One input tensor of a calibration batch: NCHW f32 data on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Graph input name, as TensorRT will ask for it.
    pub name: String,
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
}

/// The calibration stream: the same preprocessed batches `trtforge calibrate` uses.
pub trait BatchSource: Send {
    /// Images per batch (TensorRT's `getBatchSize`).
    fn batch_size(&self) -> usize;
    /// Graph inputs every batch provides.
    fn input_names(&self) -> Vec<String>;
    /// The next batch, `None` at the end of the stream.
    fn next_batch(&mut self) -> Result<Option<Vec<HostTensor>>>;
}

/// Where the calibration cache lives. The provenance-checked cache file of the build pipeline
/// implements it: `read` refuses a cache made from other inputs with `Err` (typically
/// [`Error::Stale`]), `Ok(None)` means "no cache, calibrate".
pub trait CacheStore: Send {
    fn read(&mut self) -> Result<Option<Vec<u8>>>;
    fn write(&mut self, bytes: &[u8]) -> Result<()>;
}

/// Memory TensorRT reads a batch from. In a real build this is device memory
/// (`crate::cuda::DeviceBindings` with the `cuda` feature); `upload` must leave the data
/// complete (synchronised) before it returns, because TensorRT launches on its own stream.
pub trait BindingMemory: Send {
    /// Copy `bytes` (the input's elements, already in its type) into the buffer kept for
    /// `name` and return the address TensorRT reads.
    fn upload(&mut self, name: &str, bytes: &[u8]) -> Result<*mut c_void>;
}

/// Element type of a network input as TensorRT reads it during calibration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    F32,
    F16,
}

impl InputType {
    pub fn size(self) -> usize {
        match self {
            InputType::F32 => 4,
            InputType::F16 => 2,
        }
    }

    /// Little-endian bytes of `data` in this type.
    pub fn encode(self, data: &[f32]) -> Vec<u8> {
        match self {
            InputType::F32 => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            InputType::F16 => data
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
        }
    }
}

/// One network input as TensorRT will read it: its full shape (the static dims, or the
/// calibration profile's kOPT for a dynamic input) and element type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputBinding {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: InputType,
}

impl InputBinding {
    pub fn bytes(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }
}

/// Function table handed to the C++ calibrator. Layout matches `trtforge_calibrator_callbacks`
/// in `sys/trtforge_shim.h` (bindgen reuses this type instead of generating its own).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CalibratorCallbacks {
    pub user: *mut c_void,
    /// Returns the batch size, or 0 after recording a failure.
    pub batch_size: Option<unsafe extern "C" fn(user: *mut c_void) -> i32>,
    /// Returns 1 when `bindings` were filled, 0 at end of stream, -1 on failure (recorded).
    pub get_batch: Option<
        unsafe extern "C" fn(
            user: *mut c_void,
            bindings: *mut *mut c_void,
            names: *const *const c_char,
            nb_bindings: i32,
        ) -> i32,
    >,
    /// Returns 1 with `*data`/`*length` set, 0 when there is no cache, -1 on failure.
    pub read_cache: Option<
        unsafe extern "C" fn(
            user: *mut c_void,
            data: *mut *const c_void,
            length: *mut usize,
        ) -> i32,
    >,
    /// Returns 0 when stored, -1 on failure.
    pub write_cache:
        Option<unsafe extern "C" fn(user: *mut c_void, data: *const c_void, length: usize) -> i32>,
}

/// Why calibration stopped early.
#[derive(Debug)]
pub enum Cause {
    Error(Error),
    Panic(String),
}

/// The first failure raised inside a callback.
#[derive(Debug)]
pub struct CallbackFailure {
    /// The TensorRT method that was running (`getBatch`, `readCalibrationCache`, ...).
    pub callback: &'static str,
    /// 0-based index of the batch being produced, when it was `getBatch`.
    pub batch: Option<usize>,
    pub cause: Cause,
}

impl CallbackFailure {
    /// The error `build` returns. A refused (stale) cache keeps its own error unchanged: it
    /// already names the file and what to do.
    pub fn into_error(self) -> Error {
        let at = match self.batch {
            Some(b) => format!("calibration batch {b} ({})", self.callback),
            None => format!("calibration ({})", self.callback),
        };
        match self.cause {
            Cause::Error(e @ Error::Stale { .. }) => e,
            Cause::Error(e) => Error::Callback {
                at,
                source: Box::new(e),
            },
            Cause::Panic(msg) => Error::CallbackPanic { at, msg },
        }
    }
}

/// Everything a calibrator needs across callbacks. Box it, hand [`CalibratorState::callbacks`]
/// to the C++ side, and keep the box alive until TensorRT has released the calibrator.
pub struct CalibratorState {
    source: Box<dyn BatchSource>,
    cache: Option<Box<dyn CacheStore>>,
    memory: Box<dyn BindingMemory>,
    bindings: Vec<InputBinding>,
    batches: usize,
    ended: bool,
    /// Cache bytes handed to TensorRT; the pointer must stay valid until the next call.
    cache_bytes: Option<Vec<u8>>,
    cache_written: Option<Vec<u8>>,
    failure: Option<CallbackFailure>,
}

/// What happened during calibration, for logs and the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrationSummary {
    pub batches: usize,
    pub ended: bool,
    /// TensorRT took its scales from the cache handed to it: it read one and then asked for no
    /// batch (a cache it rejects, e.g. another version's, is followed by calibration).
    pub cache_used: bool,
    pub cache_bytes_written: usize,
    /// sha256 of the cache TensorRT used (read) or produced (written).
    pub cache_sha256: Option<String>,
}

impl CalibratorState {
    /// A state serving `source`'s batches for the network inputs `bindings`. Refused when the
    /// source's batch or its inputs do not fit them: TensorRT would read past the buffers.
    pub fn new(
        source: Box<dyn BatchSource>,
        cache: Option<Box<dyn CacheStore>>,
        memory: Box<dyn BindingMemory>,
        bindings: Vec<InputBinding>,
    ) -> Result<Box<Self>> {
        let have = source.input_names();
        for b in &bindings {
            if !have.contains(&b.name) {
                return Err(Error::Contract(format!(
                    "the network reads input '{}' but the calibration stream provides {have:?}; \
                     set the recipe's input.tensor to the model's input name",
                    b.name
                )));
            }
            if b.shape.first() != Some(&source.batch_size()) {
                return Err(Error::Contract(format!(
                    "calibration input '{}': the network reads batches of shape {:?} but the \
                     stream serves {} images per batch",
                    b.name,
                    b.shape,
                    source.batch_size()
                )));
            }
        }
        Ok(Box::new(CalibratorState {
            source,
            cache,
            memory,
            bindings,
            batches: 0,
            ended: false,
            cache_bytes: None,
            cache_written: None,
            failure: None,
        }))
    }

    /// The function table pointing at the state behind `state`, which must stay alive (and
    /// not be used otherwise) while the C++ calibrator holding the table can call it.
    pub fn callbacks_for(state: *mut CalibratorState) -> CalibratorCallbacks {
        CalibratorCallbacks {
            user: state.cast(),
            batch_size: Some(cb_batch_size),
            get_batch: Some(cb_get_batch),
            read_cache: Some(cb_read_cache),
            write_cache: Some(cb_write_cache),
        }
    }

    /// The function table pointing at this boxed state (tests drive it directly; a real build
    /// hands TensorRT a raw pointer, see `CalibrationSession`).
    pub fn callbacks(self: &mut Box<Self>) -> CalibratorCallbacks {
        Self::callbacks_for(&mut **self)
    }

    /// The first failure, if any; taking it clears it.
    pub fn take_failure(&mut self) -> Option<CallbackFailure> {
        self.failure.take()
    }

    /// `Err` with the recorded failure, else the summary.
    pub fn finish(&mut self) -> Result<CalibrationSummary> {
        match self.take_failure() {
            Some(f) => Err(f.into_error()),
            None => Ok(self.summary()),
        }
    }

    pub fn summary(&self) -> CalibrationSummary {
        CalibrationSummary {
            batches: self.batches,
            ended: self.ended,
            cache_used: self.cache_bytes.is_some() && self.batches == 0,
            cache_bytes_written: self.cache_written.as_ref().map_or(0, Vec::len),
            cache_sha256: self
                .cache_written
                .as_deref()
                .or(self.cache_bytes.as_deref())
                .map(crate::util::sha256_hex),
        }
    }

    fn fail(&mut self, callback: &'static str, batch: Option<usize>, cause: Cause) {
        if self.failure.is_none() {
            self.failure = Some(CallbackFailure {
                callback,
                batch,
                cause,
            });
        }
    }

    fn batch_size(&mut self) -> Result<i32> {
        let n = self.source.batch_size();
        i32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            Error::Invalid(format!("calibration batch size {n} is not in 1..=i32::MAX"))
        })
    }

    /// Fill `out[i]` with the address of the tensor named `names[i]`. `Ok(false)` = end.
    fn get_batch(&mut self, names: &[String], out: &mut [*mut c_void]) -> Result<bool> {
        if self.ended {
            return Ok(false);
        }
        let Some(tensors) = self.source.next_batch()? else {
            self.ended = true;
            return Ok(false);
        };
        for (name, slot) in names.iter().zip(out.iter_mut()) {
            let want = self.bindings.iter().find(|b| &b.name == name).ok_or_else(|| {
                let known: Vec<&str> = self.bindings.iter().map(|b| b.name.as_str()).collect();
                Error::Contract(format!(
                    "TensorRT asks for input '{name}' but the network's calibration inputs are {known:?}"
                ))
            })?;
            let t = tensors.iter().find(|t| &t.name == name).ok_or_else(|| {
                let have: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
                Error::Contract(format!(
                    "TensorRT asks for input '{name}' but the calibration batch has {have:?}; \
                     set the recipe's input.tensor to the model's input name"
                ))
            })?;
            let count: usize = t.shape.iter().product();
            if count != t.data.len() {
                return Err(Error::Contract(format!(
                    "calibration tensor '{name}': shape {:?} holds {count} values but the batch has {}",
                    t.shape,
                    t.data.len()
                )));
            }
            if t.shape != want.shape {
                return Err(Error::Contract(format!(
                    "calibration tensor '{name}' has shape {:?} but the network reads {:?}; \
                     make input.shape (and the calibration profile) match the model",
                    t.shape, want.shape
                )));
            }
            *slot = self.memory.upload(name, &want.dtype.encode(&t.data))?;
        }
        self.batches += 1;
        Ok(true)
    }

    fn read_cache(&mut self) -> Result<Option<&[u8]>> {
        let Some(store) = self.cache.as_mut() else {
            return Ok(None);
        };
        self.cache_bytes = store.read()?.filter(|b| !b.is_empty());
        Ok(self.cache_bytes.as_deref())
    }

    fn write_cache(&mut self, bytes: &[u8]) -> Result<()> {
        if let Some(store) = self.cache.as_mut() {
            store.write(bytes)?;
        }
        self.cache_written = Some(bytes.to_vec());
        Ok(())
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Run `f` on the state behind `user`, recording an error or a panic as the failure.
///
/// # Safety
/// `user` must be the pointer from [`CalibratorState::callbacks`] of a live state, and no other
/// reference to that state may be in use (TensorRT calls the calibrator from one thread).
unsafe fn with_state<T>(
    user: *mut c_void,
    callback: &'static str,
    failed: T,
    f: impl FnOnce(&mut CalibratorState) -> Result<T>,
) -> T {
    if user.is_null() {
        return failed;
    }
    // SAFETY: the caller guarantees `user` points to a live, exclusively used CalibratorState.
    let state = unsafe { &mut *user.cast::<CalibratorState>() };
    if state.failure.is_some() {
        return failed; // the first failure ends calibration
    }
    let batch = (callback == "getBatch").then_some(state.batches);
    match catch_unwind(AssertUnwindSafe(|| f(&mut *state))) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            state.fail(callback, batch, Cause::Error(e));
            failed
        }
        Err(p) => {
            state.fail(callback, batch, Cause::Panic(panic_message(p)));
            failed
        }
    }
}

/// TensorRT broke the calibrator interface's contract.
fn tensorrt_fault(msg: String) -> Error {
    Error::Tensorrt {
        what: "getBatch".into(),
        msg,
    }
}

unsafe extern "C" fn cb_batch_size(user: *mut c_void) -> i32 {
    // SAFETY: called by the C++ calibrator with the `user` we gave it.
    unsafe { with_state(user, "getBatchSize", 0, |s| s.batch_size()) }
}

unsafe extern "C" fn cb_get_batch(
    user: *mut c_void,
    bindings: *mut *mut c_void,
    names: *const *const c_char,
    nb_bindings: i32,
) -> i32 {
    // SAFETY: called by the C++ calibrator with the `user` we gave it.
    unsafe {
        with_state(user, "getBatch", -1, |s| {
            let n = usize::try_from(nb_bindings)
                .map_err(|_| tensorrt_fault(format!("passed {nb_bindings} bindings")))?;
            if n > 0 && (bindings.is_null() || names.is_null()) {
                return Err(tensorrt_fault("passed null binding arrays".into()));
            }
            let mut owned = Vec::with_capacity(n);
            for i in 0..n {
                // SAFETY: TensorRT passes `nb_bindings` valid NUL-terminated names.
                let p = *names.add(i);
                if p.is_null() {
                    return Err(tensorrt_fault(format!(
                        "passed a null name for binding {i}"
                    )));
                }
                owned.push(CStr::from_ptr(p).to_string_lossy().into_owned());
            }
            let out: &mut [*mut c_void] = if n == 0 {
                &mut []
            } else {
                // SAFETY: TensorRT passes an array of `nb_bindings` writable pointers.
                std::slice::from_raw_parts_mut(bindings, n)
            };
            Ok(i32::from(s.get_batch(&owned, out)?))
        })
    }
}

unsafe extern "C" fn cb_read_cache(
    user: *mut c_void,
    data: *mut *const c_void,
    length: *mut usize,
) -> i32 {
    // SAFETY: called by the C++ calibrator with the `user` we gave it and valid out-pointers.
    unsafe {
        if !data.is_null() {
            *data = std::ptr::null();
        }
        if !length.is_null() {
            *length = 0;
        }
        with_state(user, "readCalibrationCache", -1, |s| {
            match s.read_cache()? {
                Some(bytes) if !data.is_null() && !length.is_null() => {
                    *data = bytes.as_ptr().cast();
                    *length = bytes.len();
                    Ok(1)
                }
                _ => Ok(0),
            }
        })
    }
}

unsafe extern "C" fn cb_write_cache(user: *mut c_void, data: *const c_void, length: usize) -> i32 {
    // SAFETY: called by the C++ calibrator with the `user` we gave it.
    unsafe {
        with_state(user, "writeCalibrationCache", -1, |s| {
            let bytes: &[u8] = if length == 0 || data.is_null() {
                &[]
            } else {
                // SAFETY: TensorRT passes `length` readable bytes at `data`.
                std::slice::from_raw_parts(data.cast(), length)
            };
            s.write_cache(bytes).map(|()| 0)
        })
    }
}

/// Calibration batches in device memory, as a real build needs them.
#[cfg(feature = "cuda")]
impl BindingMemory for crate::cuda::DeviceBindings {
    fn upload(&mut self, name: &str, bytes: &[u8]) -> Result<*mut c_void> {
        crate::cuda::DeviceBindings::upload(self, name, bytes)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Host-memory stand-ins used by the unit tests and the C++ harness test. They run the
    //! real callbacks; only the memory is host instead of device memory.
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    /// Batches made of a running counter, so every value is checkable.
    pub struct CountingSource {
        pub batch: usize,
        pub chw: usize,
        pub batches: usize,
        pub served: usize,
        /// Fail (error) when producing this batch index.
        pub error_at: Option<usize>,
        /// Panic when producing this batch index.
        pub panic_at: Option<usize>,
    }

    impl CountingSource {
        pub fn new(batch: usize, chw: usize, batches: usize) -> Self {
            CountingSource {
                batch,
                chw,
                batches,
                served: 0,
                error_at: None,
                panic_at: None,
            }
        }
        /// Value of element `i` in batch `b`.
        pub fn value(&self, b: usize, i: usize) -> f32 {
            (b * 1000 + i) as f32 * 0.5
        }
    }

    impl BatchSource for CountingSource {
        fn batch_size(&self) -> usize {
            self.batch
        }
        fn input_names(&self) -> Vec<String> {
            vec!["images".into()]
        }
        fn next_batch(&mut self) -> Result<Option<Vec<HostTensor>>> {
            let b = self.served;
            if self.panic_at == Some(b) {
                panic!("decoder exploded on batch {b}");
            }
            if self.error_at == Some(b) {
                return Err(Error::Image {
                    path: format!("calib/{b:03}.jpg").into(),
                    msg: "not a JPEG file".into(),
                });
            }
            if b >= self.batches {
                return Ok(None);
            }
            self.served += 1;
            let n = self.batch * self.chw;
            Ok(Some(vec![HostTensor {
                name: "images".into(),
                data: (0..n).map(|i| self.value(b, i)).collect(),
                shape: vec![self.batch, self.chw],
            }]))
        }
    }

    /// A cache in memory; `stale` makes `read` refuse like a provenance mismatch.
    #[derive(Clone, Default)]
    pub struct MemCache {
        pub bytes: Arc<Mutex<Option<Vec<u8>>>>,
        pub stale: bool,
    }

    impl CacheStore for MemCache {
        fn read(&mut self) -> Result<Option<Vec<u8>>> {
            if self.stale {
                return Err(Error::Stale {
                    path: "build/yolox.calib.cache".into(),
                    why: "made from model sha256 1111… but the recipe's model is 2222…".into(),
                    fix: crate::error::StaleFix::Recalibrate,
                });
            }
            Ok(self.bytes.lock().unwrap().clone())
        }
        fn write(&mut self, bytes: &[u8]) -> Result<()> {
            *self.bytes.lock().unwrap() = Some(bytes.to_vec());
            Ok(())
        }
    }

    /// Call getBatch through the C ABI the way TensorRT does, for one input; returns
    /// (rc, binding). `cb` must come from a live state.
    pub fn get_batch(cb: &CalibratorCallbacks, name: &str) -> (i32, *mut c_void) {
        let cname = std::ffi::CString::new(name).unwrap();
        let names = [cname.as_ptr()];
        let mut bindings = [std::ptr::null_mut::<c_void>()];
        // SAFETY: valid arrays of one element; the caller keeps the state behind `cb` alive.
        let rc =
            unsafe { cb.get_batch.unwrap()(cb.user, bindings.as_mut_ptr(), names.as_ptr(), 1) };
        (rc, bindings[0])
    }

    /// Call readCalibrationCache through the C ABI; returns (rc, a copy of the bytes).
    pub fn read_cache(cb: &CalibratorCallbacks) -> (i32, Vec<u8>) {
        let (mut p, mut n) = (std::ptr::null::<c_void>(), 0usize);
        // SAFETY: valid out-pointers; the caller keeps the state behind `cb` alive.
        let rc = unsafe { cb.read_cache.unwrap()(cb.user, &mut p, &mut n) };
        let bytes = if p.is_null() {
            assert_eq!(n, 0, "a null cache pointer with a length");
            vec![]
        } else {
            // SAFETY: the state keeps the bytes alive until the next call.
            unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) }.to_vec()
        };
        (rc, bytes)
    }

    /// Host buffers, one per input name, allocated once (stable addresses), 8-byte aligned
    /// like device memory. Every buffer's address and size is registered in [`allocations`],
    /// so a test double of TensorRT can check how many bytes a binding really holds.
    #[derive(Default)]
    pub struct HostBindings {
        pub buffers: HashMap<String, (Vec<u64>, usize)>,
    }

    /// Live host bindings: address -> size in bytes.
    pub fn allocations() -> &'static Mutex<HashMap<usize, usize>> {
        static A: std::sync::OnceLock<Mutex<HashMap<usize, usize>>> = std::sync::OnceLock::new();
        A.get_or_init(Default::default)
    }

    impl BindingMemory for HostBindings {
        fn upload(&mut self, name: &str, bytes: &[u8]) -> Result<*mut c_void> {
            let (buf, n) = self
                .buffers
                .entry(name.to_string())
                .or_insert_with(|| (vec![0u64; bytes.len().div_ceil(8)], bytes.len()));
            if *n != bytes.len() {
                return Err(Error::Contract(format!(
                    "input '{name}' changed size from {n} to {} bytes",
                    bytes.len()
                )));
            }
            // SAFETY: `buf` holds at least `bytes.len()` bytes (rounded up to whole u64s).
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.as_mut_ptr().cast(), bytes.len())
            };
            let ptr = buf.as_mut_ptr();
            allocations().lock().unwrap().insert(ptr as usize, *n);
            Ok(ptr.cast())
        }
    }

    impl Drop for HostBindings {
        fn drop(&mut self) {
            let mut a = allocations().lock().unwrap();
            for (buf, _) in self.buffers.values() {
                a.remove(&(buf.as_ptr() as usize));
            }
        }
    }

    /// The bindings a [`CountingSource`] feeds: one f32 input `images` of `batch x chw`.
    pub fn counting_bindings(batch: usize, chw: usize) -> Vec<InputBinding> {
        vec![InputBinding {
            name: "images".into(),
            shape: vec![batch, chw],
            dtype: InputType::F32,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn state(src: CountingSource, cache: Option<MemCache>) -> Box<CalibratorState> {
        let bindings = counting_bindings(src.batch, src.chw);
        CalibratorState::new(
            Box::new(src),
            cache.map(|c| Box::new(c) as Box<dyn CacheStore>),
            Box::new(HostBindings::default()),
            bindings,
        )
        .unwrap()
    }

    #[test]
    fn layout_matches_the_c_struct() {
        assert_eq!(
            std::mem::size_of::<CalibratorCallbacks>(),
            5 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn serves_every_batch_then_end_of_stream() {
        let mut s = state(CountingSource::new(2, 3, 3), None);
        let cb = s.callbacks();
        // SAFETY: live state.
        assert_eq!(unsafe { cb.batch_size.unwrap()(cb.user) }, 2);
        for b in 0..3 {
            let (rc, p) = get_batch(&cb, "images");
            assert_eq!(rc, 1);
            // SAFETY: HostBindings returned a pointer to 6 floats that stays valid.
            let got = unsafe { std::slice::from_raw_parts(p.cast::<f32>(), 6) };
            let want: Vec<f32> = (0..6).map(|i| (b * 1000 + i) as f32 * 0.5).collect();
            assert_eq!(got, &want[..]);
        }
        assert_eq!(get_batch(&cb, "images").0, 0);
        assert_eq!(get_batch(&cb, "images").0, 0, "end of stream is sticky");
        let sum = s.finish().unwrap();
        assert_eq!(sum.batches, 3);
        assert!(sum.ended);
    }

    /// A float16 network input gets half-precision bytes, and a batch whose shape is not the
    /// network's (static dims or the calibration profile's opt) is refused, not truncated.
    #[test]
    fn f16_inputs_get_half_bytes_and_shapes_must_be_the_networks() {
        let src = CountingSource::new(2, 3, 1);
        let bindings = vec![InputBinding {
            name: "images".into(),
            shape: vec![2, 3],
            dtype: InputType::F16,
        }];
        let mut s = CalibratorState::new(
            Box::new(src),
            None,
            Box::new(HostBindings::default()),
            bindings,
        )
        .unwrap();
        let cb = s.callbacks();
        let (rc, p) = get_batch(&cb, "images");
        assert_eq!(rc, 1);
        assert_eq!(allocations().lock().unwrap().get(&(p as usize)), Some(&12));
        // SAFETY: HostBindings returned a pointer to 6 halves that stays valid.
        let got = unsafe { std::slice::from_raw_parts(p.cast::<u16>(), 6) };
        let want: Vec<u16> = (0..6)
            .map(|i| half::f16::from_f32(i as f32 * 0.5).to_bits())
            .collect();
        assert_eq!(got, &want[..]);
        s.finish().unwrap();

        // The network calibrates 2 x 4 but the stream serves 2 x 3.
        let src = CountingSource::new(2, 3, 1);
        let mut s = CalibratorState::new(
            Box::new(src),
            None,
            Box::new(HostBindings::default()),
            counting_bindings(2, 4),
        )
        .unwrap();
        assert_eq!(get_batch(&s.callbacks(), "images").0, -1);
        let e = s.finish().unwrap_err().to_string();
        assert!(e.contains("[2, 3]") && e.contains("[2, 4]"), "{e}");
    }

    #[test]
    fn unknown_input_name_is_a_contract_error_naming_both() {
        let mut s = state(CountingSource::new(1, 4, 2), None);
        let cb = s.callbacks();
        assert_eq!(get_batch(&cb, "input.1").0, -1);
        let e = s.finish().unwrap_err().to_string();
        assert!(e.contains("calibration batch 0"), "{e}");
        assert!(e.contains("input.1") && e.contains("images"), "{e}");
    }

    #[test]
    fn error_in_source_stops_calibration_with_batch_and_cause() {
        let mut src = CountingSource::new(1, 4, 5);
        src.error_at = Some(2);
        let mut s = state(src, None);
        let cb = s.callbacks();
        assert_eq!(get_batch(&cb, "images").0, 1);
        assert_eq!(get_batch(&cb, "images").0, 1);
        assert_eq!(get_batch(&cb, "images").0, -1);
        assert_eq!(get_batch(&cb, "images").0, -1, "no batch after a failure");
        let e = s.finish().unwrap_err();
        // The batch source's own error is kept as the source.
        match &e {
            Error::Callback { source, .. } => assert!(matches!(**source, Error::Image { .. })),
            other => panic!("expected a callback error, got {other:?}"),
        }
        let e = e.to_string();
        assert!(e.contains("calibration batch 2 (getBatch) failed"), "{e}");
        assert!(
            e.contains("calib/002.jpg") && e.contains("not a JPEG"),
            "{e}"
        );
    }

    #[test]
    fn panic_in_source_is_caught_and_reported() {
        let mut src = CountingSource::new(1, 4, 5);
        src.panic_at = Some(1);
        let mut s = state(src, None);
        let cb = s.callbacks();
        assert_eq!(get_batch(&cb, "images").0, 1);
        assert_eq!(get_batch(&cb, "images").0, -1);
        let e = s.finish().unwrap_err();
        assert!(matches!(e, Error::CallbackPanic { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("calibration batch 1 (getBatch) panicked"), "{e}");
        assert!(e.contains("decoder exploded on batch 1"), "{e}");
    }

    #[test]
    fn cache_round_trip_through_the_c_abi() {
        let cache = MemCache::default();
        let mut s = state(CountingSource::new(1, 4, 1), Some(cache.clone()));
        let cb = s.callbacks();
        assert_eq!(read_cache(&cb), (0, vec![]));
        let text = b"TRT-8601-EntropyCalibration2\nimages: 3c010a14\n";
        assert_eq!(
            // SAFETY: `text` is readable for its length.
            unsafe { cb.write_cache.unwrap()(cb.user, text.as_ptr().cast(), text.len()) },
            0
        );
        assert_eq!(cache.bytes.lock().unwrap().as_deref(), Some(&text[..]));

        let mut s2 = state(CountingSource::new(1, 4, 1), Some(cache));
        assert_eq!(read_cache(&s2.callbacks()), (1, text.to_vec()));
        assert!(s2.finish().unwrap().cache_used);
    }

    #[test]
    fn stale_cache_is_refused_and_returned_unchanged() {
        let cache = MemCache {
            stale: true,
            ..Default::default()
        };
        let mut s = state(CountingSource::new(1, 4, 3), Some(cache));
        let cb = s.callbacks();
        assert_eq!(read_cache(&cb), (-1, vec![]));
        assert_eq!(
            get_batch(&cb, "images").0,
            -1,
            "no calibration on top of a refused cache"
        );
        match s.finish().unwrap_err() {
            Error::Stale { path, why, fix } => {
                assert!(path.ends_with("yolox.calib.cache"));
                assert!(why.contains("model sha256"));
                assert_eq!(fix, crate::error::StaleFix::Recalibrate);
            }
            other => panic!("expected Stale, got {other}"),
        }
    }

    #[test]
    fn null_user_is_harmless() {
        // SAFETY: a null user is checked before any dereference.
        assert_eq!(unsafe { cb_batch_size(std::ptr::null_mut()) }, 0);
    }

    #[cfg(feature = "cuda")]
    /// The bridge's getBatch, through the C ABI, leaves each batch in device memory.
    #[test]
    fn bridge_puts_batches_in_device_memory() {
        use crate::cuda::testing::{gpu, read_device};
        use crate::cuda::DeviceBindings;
        let Some(g) = gpu() else { return };
        let src = CountingSource::new(2, 5, 3);
        let want: Vec<Vec<f32>> = (0..3)
            .map(|b| (0..10).map(|i| src.value(b, i)).collect())
            .collect();
        let mut state = CalibratorState::new(
            Box::new(src),
            None,
            Box::new(DeviceBindings::new(g.clone())),
            counting_bindings(2, 5),
        )
        .unwrap();
        let cb = state.callbacks();
        for batch in &want {
            let (rc, ptr) = get_batch(&cb, "images");
            assert_eq!(rc, 1);
            // SAFETY: `ptr` is a live device allocation of 10 floats owned by the state.
            let host = unsafe { read_device(&g, ptr, 10) };
            assert_eq!(&host, batch);
        }
        assert_eq!(get_batch(&cb, "images").0, 0);
        assert_eq!(state.finish().unwrap().batches, 3);
    }
}
