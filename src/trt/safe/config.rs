//! The builder configuration: precision, constraints, memory, DLA, timing cache, profiling.

use super::super::result::check;
use super::super::sys;
use super::HostBytes;
use crate::error::{Error, Result};
use std::marker::PhantomData;
use std::ptr::NonNull;

handle!(Config, sys::trtforge_config, sys::trtforge_config_destroy);

/// Builder precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildPrecision {
    Fp32,
    Fp16,
    Int8,
    Best,
}

/// Precision constraints for layers given explicit precisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraints {
    None,
    Prefer,
    Obey,
}

impl<'b> Config<'b> {
    pub fn set_precision(&self, p: BuildPrecision) -> Result<()> {
        let v = match p {
            BuildPrecision::Fp32 => sys::TRTFORGE_PRECISION_FP32,
            BuildPrecision::Fp16 => sys::TRTFORGE_PRECISION_FP16,
            BuildPrecision::Int8 => sys::TRTFORGE_PRECISION_INT8,
            BuildPrecision::Best => sys::TRTFORGE_PRECISION_BEST,
        };
        // SAFETY: valid handle.
        check(
            unsafe { sys::trtforge_config_set_precision(self.raw.as_ptr(), v as i32) },
            "precision",
        )
    }

    pub fn set_constraints(&self, c: Constraints) -> Result<()> {
        let v = match c {
            Constraints::None => sys::TRTFORGE_CONSTRAINTS_NONE,
            Constraints::Prefer => sys::TRTFORGE_CONSTRAINTS_PREFER,
            Constraints::Obey => sys::TRTFORGE_CONSTRAINTS_OBEY,
        };
        // SAFETY: valid handle.
        check(
            unsafe { sys::trtforge_config_set_constraints(self.raw.as_ptr(), v as i32) },
            "precision constraints",
        )
    }

    pub fn set_workspace_mib(&self, mib: u64) -> Result<()> {
        // SAFETY: valid handle.
        check(
            unsafe { sys::trtforge_config_set_workspace(self.raw.as_ptr(), mib << 20) },
            "workspace",
        )
    }

    pub fn set_dla(&self, core: Option<u32>, gpu_fallback: bool) -> Result<()> {
        let core = core.map(|c| c as i32).unwrap_or(-1);
        // SAFETY: valid handle.
        check(
            unsafe {
                sys::trtforge_config_set_dla(self.raw.as_ptr(), core, i32::from(gpu_fallback))
            },
            "DLA",
        )
    }

    pub fn set_optimization_level(&self, level: u32) -> Result<()> {
        // SAFETY: valid handle.
        check(
            unsafe { sys::trtforge_config_set_optimization_level(self.raw.as_ptr(), level as i32) },
            "builder optimization level",
        )
    }

    pub fn set_detailed_profiling(&self) -> Result<()> {
        // SAFETY: valid handle.
        check(
            unsafe { sys::trtforge_config_set_detailed_profiling(self.raw.as_ptr()) },
            "profiling verbosity",
        )
    }

    /// Attach a timing cache (`None`: start an empty one).
    pub fn set_timing_cache(&self, bytes: Option<&[u8]>) -> Result<()> {
        let (p, n) = bytes
            .map(|b| (b.as_ptr().cast(), b.len()))
            .unwrap_or((std::ptr::null(), 0));
        // SAFETY: valid handle; TensorRT copies the bytes.
        check(
            unsafe { sys::trtforge_config_set_timing_cache(self.raw.as_ptr(), p, n) },
            "timing cache",
        )
    }

    pub fn timing_cache(&self) -> Result<Vec<u8>> {
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: valid handle, out-pointer.
            unsafe { sys::trtforge_config_serialize_timing_cache(self.raw.as_ptr(), &mut raw) },
            "timing cache",
        )?;
        Ok(HostBytes::from_raw(raw, "timing cache")?
            .as_slice()
            .to_vec())
    }
}
