//! The builder configuration: flags, memory pools, device, profiling, tactics, timing cache,
//! optimization profiles.

use super::super::options::{Flag, Pool, ProfilingVerbosity, TacticSource};
use super::super::result::check;
use super::super::sys;
use super::{HostBytes, Profile};
use crate::error::{Error, Result};
use std::marker::PhantomData;
use std::ptr::NonNull;

handle!(Config, sys::trtforge_config, sys::trtforge_config_destroy);

fn flag_raw(flag: Flag) -> u32 {
    match flag {
        Flag::Fp16 => sys::TRTFORGE_FLAG_FP16,
        Flag::Int8 => sys::TRTFORGE_FLAG_INT8,
        Flag::GpuFallback => sys::TRTFORGE_FLAG_GPU_FALLBACK,
        Flag::DirectIo => sys::TRTFORGE_FLAG_DIRECT_IO,
        Flag::ObeyPrecisionConstraints => sys::TRTFORGE_FLAG_OBEY_PRECISION_CONSTRAINTS,
        Flag::PreferPrecisionConstraints => sys::TRTFORGE_FLAG_PREFER_PRECISION_CONSTRAINTS,
        Flag::SparseWeights => sys::TRTFORGE_FLAG_SPARSE_WEIGHTS,
        Flag::VersionCompatible => sys::TRTFORGE_FLAG_VERSION_COMPATIBLE,
        Flag::ExcludeLeanRuntime => sys::TRTFORGE_FLAG_EXCLUDE_LEAN_RUNTIME,
    }
}

fn tactic_bit(t: TacticSource) -> u32 {
    match t {
        TacticSource::Cublas => sys::TRTFORGE_TACTIC_CUBLAS,
        TacticSource::CublasLt => sys::TRTFORGE_TACTIC_CUBLAS_LT,
        TacticSource::Cudnn => sys::TRTFORGE_TACTIC_CUDNN,
        TacticSource::EdgeMaskConvolutions => sys::TRTFORGE_TACTIC_EDGE_MASK_CONVOLUTIONS,
        TacticSource::JitConvolutions => sys::TRTFORGE_TACTIC_JIT_CONVOLUTIONS,
    }
}

impl<'b> Config<'b> {
    pub fn set_flag(&self, flag: Flag, on: bool) -> Result<()> {
        check(
            // SAFETY: valid handle.
            unsafe {
                sys::trtforge_config_set_flag(
                    self.raw.as_ptr(),
                    flag_raw(flag) as i32,
                    i32::from(on),
                )
            },
            "builder flag",
        )
    }

    pub fn set_memory_pool(&self, pool: Pool, bytes: u64) -> Result<()> {
        let p = match pool {
            Pool::Workspace => sys::TRTFORGE_POOL_WORKSPACE,
            Pool::DlaManagedSram => sys::TRTFORGE_POOL_DLA_MANAGED_SRAM,
            Pool::DlaLocalDram => sys::TRTFORGE_POOL_DLA_LOCAL_DRAM,
            Pool::DlaGlobalDram => sys::TRTFORGE_POOL_DLA_GLOBAL_DRAM,
        };
        check(
            // SAFETY: valid handle.
            unsafe { sys::trtforge_config_set_memory_pool(self.raw.as_ptr(), p as i32, bytes) },
            "memory pool",
        )
    }

    /// `None`: GPU; `Some(core)`: DLA core `core` as the default device.
    pub fn set_device(&self, dla_core: Option<u32>) -> Result<()> {
        let core = dla_core.map_or(-1, |c| c as i32);
        check(
            // SAFETY: valid handle.
            unsafe { sys::trtforge_config_set_device(self.raw.as_ptr(), core) },
            "device",
        )
    }

    pub fn set_optimization_level(&self, level: u32) -> Result<()> {
        check(
            // SAFETY: valid handle.
            unsafe { sys::trtforge_config_set_optimization_level(self.raw.as_ptr(), level as i32) },
            "builder optimization level",
        )
    }

    pub fn set_profiling_verbosity(&self, v: ProfilingVerbosity) -> Result<()> {
        check(
            // SAFETY: valid handle.
            unsafe { sys::trtforge_config_set_profiling_verbosity(self.raw.as_ptr(), v as i32) },
            "profiling verbosity",
        )
    }

    pub fn set_tactic_sources(
        &self,
        enable: &[TacticSource],
        disable: &[TacticSource],
    ) -> Result<()> {
        let bits = |s: &[TacticSource]| s.iter().fold(0u32, |a, t| a | tactic_bit(*t));
        check(
            // SAFETY: valid handle.
            unsafe {
                sys::trtforge_config_set_tactic_sources(
                    self.raw.as_ptr(),
                    bits(enable),
                    bits(disable),
                )
            },
            "tactic sources",
        )
    }

    /// TensorRT's HardwareCompatibilityLevel number (0 none, 1 Ampere+, 2 same compute
    /// capability from 10.16).
    pub fn set_hardware_compatibility(&self, level: u32) -> Result<()> {
        check(
            // SAFETY: valid handle.
            unsafe {
                sys::trtforge_config_set_hardware_compatibility(self.raw.as_ptr(), level as i32)
            },
            "hardware compatibility level",
        )
    }

    /// Attach a timing cache made from `bytes` (`None`: a new one). A cache from another device
    /// or version is ignored by TensorRT with a warning (trtexec's behaviour).
    pub fn set_timing_cache(&self, bytes: Option<&[u8]>) -> Result<()> {
        let (p, n) = bytes
            .map(|b| (b.as_ptr().cast(), b.len()))
            .unwrap_or((std::ptr::null(), 0));
        check(
            // SAFETY: valid handle; TensorRT copies the bytes.
            unsafe { sys::trtforge_config_set_timing_cache(self.raw.as_ptr(), p, n) },
            "timing cache",
        )
    }

    /// The cache to write back: the file's current content (`None`: no file) with this
    /// build's entries combined into it, and whether they were: a file from another device or
    /// TensorRT version comes back unchanged (`false`), as trtexec keeps it.
    pub fn merge_timing_cache(&self, file: Option<&[u8]>) -> Result<(Vec<u8>, bool)> {
        let (p, n) = file
            .map(|b| (b.as_ptr().cast(), b.len()))
            .unwrap_or((std::ptr::null(), 0));
        let (mut raw, mut combined) = (std::ptr::null_mut(), 0);
        check(
            // SAFETY: valid handle, bytes alive for the call, out-pointers.
            unsafe {
                sys::trtforge_config_merge_timing_cache(
                    self.raw.as_ptr(),
                    p,
                    n,
                    &mut raw,
                    &mut combined,
                )
            },
            "timing cache",
        )?;
        let bytes = HostBytes::from_raw(raw, "timing cache")?
            .as_slice()
            .to_vec();
        Ok((bytes, combined == 1))
    }

    /// Add `profile`; with `calibration` it is the calibration profile too.
    pub fn add_profile(&self, profile: &Profile<'_>, calibration: bool) -> Result<()> {
        check(
            // SAFETY: valid handles; TensorRT keeps the profile (the builder owns it).
            unsafe {
                sys::trtforge_config_add_profile(
                    self.raw.as_ptr(),
                    profile.raw.as_ptr(),
                    i32::from(calibration),
                )
            },
            "optimization profile",
        )
    }

    /// Raw handle for the builder and calibrator calls in this module.
    #[allow(dead_code)]
    pub(super) fn raw_ptr(&self) -> *mut sys::trtforge_config {
        self.raw.as_ptr()
    }
}

/// The error when a setting is asked for a TensorRT that lacks it, naming the recipe field.
pub fn unsupported_field(field: &str, e: Error) -> Error {
    match e {
        Error::Unavailable { why, .. } => Error::Unavailable {
            what: format!("recipe field {field}"),
            why,
            fix: format!("drop {field} from the recipe or build with a TensorRT that has it"),
        },
        other => other,
    }
}
