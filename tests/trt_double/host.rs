//! Calibration plumbing in host memory for the double: a batch source, a cache store, and
//! binding memory whose allocations the double's size oracle can look up.
//!
//! These mirror `trtforge::trt::bridge::testing` (HostBindings, MemCache, a counting source),
//! which is `#[cfg(test)] pub(crate)` and so not reachable from integration tests; they only
//! use the bridge's public traits.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, OnceLock};
use trtforge::trt::bridge::{InputBinding, InputType};
use trtforge::trt::{BatchSource, BindingMemory, CacheStore, HostTensor};

/// Live host bindings: address -> bytes.
fn allocations() -> &'static Mutex<HashMap<usize, usize>> {
    static A: OnceLock<Mutex<HashMap<usize, usize>>> = OnceLock::new();
    A.get_or_init(Default::default)
}

/// The double's binding size oracle: bytes behind `ptr` when it is one of ours, else 0.
pub extern "C" fn oracle(ptr: *const c_void) -> usize {
    allocations()
        .lock()
        .map(|a| a.get(&(ptr as usize)).copied().unwrap_or(0))
        .unwrap_or(0)
}

/// One buffer per input, allocated once at the first upload's size (stable addresses).
#[derive(Default)]
pub struct HostBindings {
    buffers: HashMap<String, Vec<u64>>,
}

impl BindingMemory for HostBindings {
    fn upload(&mut self, name: &str, bytes: &[u8]) -> trtforge::Result<*mut c_void> {
        let buf = self
            .buffers
            .entry(name.to_string())
            .or_insert_with(|| vec![0u64; bytes.len().div_ceil(8)]);
        assert!(buf.len() * 8 >= bytes.len(), "input {name} grew");
        // SAFETY: `buf` holds at least `bytes.len()` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                buf.as_mut_ptr().cast::<u8>(),
                bytes.len(),
            )
        };
        let ptr = buf.as_mut_ptr();
        allocations()
            .lock()
            .unwrap()
            .insert(ptr as usize, bytes.len());
        Ok(ptr.cast())
    }
}

impl Drop for HostBindings {
    fn drop(&mut self) {
        let mut a = allocations().lock().unwrap();
        for b in self.buffers.values() {
            a.remove(&(b.as_ptr() as usize));
        }
    }
}

/// `batches` batches of one input, every value of batch `b` equal to `b + 1` (so the sum of a
/// batch the double reads back is `(b + 1) * volume`).
pub struct ConstSource {
    pub name: String,
    pub shape: Vec<usize>,
    pub batches: usize,
    served: usize,
}

impl ConstSource {
    pub fn new(name: &str, shape: &[usize], batches: usize) -> Self {
        ConstSource {
            name: name.into(),
            shape: shape.to_vec(),
            batches,
            served: 0,
        }
    }
}

impl BatchSource for ConstSource {
    fn batch_size(&self) -> usize {
        self.shape[0]
    }
    fn input_names(&self) -> Vec<String> {
        vec![self.name.clone()]
    }
    fn next_batch(&mut self) -> trtforge::Result<Option<Vec<HostTensor>>> {
        if self.served == self.batches {
            return Ok(None);
        }
        self.served += 1;
        let n: usize = self.shape.iter().product();
        Ok(Some(vec![HostTensor {
            name: self.name.clone(),
            data: vec![self.served as f32; n],
            shape: self.shape.clone(),
        }]))
    }
}

/// A cache in memory, shared with the test through the Arc.
#[derive(Clone, Default)]
pub struct MemCache(pub Arc<Mutex<Option<Vec<u8>>>>);

impl CacheStore for MemCache {
    fn read(&mut self) -> trtforge::Result<Option<Vec<u8>>> {
        Ok(self.0.lock().unwrap().clone())
    }
    fn write(&mut self, bytes: &[u8]) -> trtforge::Result<()> {
        *self.0.lock().unwrap() = Some(bytes.to_vec());
        Ok(())
    }
}

/// The f32 binding the network reads for input `name` of `shape`.
pub fn f32_binding(name: &str, shape: &[usize]) -> Vec<InputBinding> {
    vec![InputBinding {
        name: name.into(),
        shape: shape.to_vec(),
        dtype: InputType::F32,
    }]
}
