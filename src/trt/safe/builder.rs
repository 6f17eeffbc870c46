//! The builder: networks, configs, optimization profiles and the serialized build.

use super::super::bridge::CalibrationSummary;
use super::super::result::check;
use super::super::sys;
use super::{CalibrationSession, Config, HostBytes, Logger, Network};
use crate::error::{Error, Result};
use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

handle!(
    Builder,
    sys::trtforge_builder,
    sys::trtforge_builder_destroy
);

/// Shapes of one dynamic input in an optimization profile.
#[derive(Debug, Clone, PartialEq)]
pub struct InputProfile {
    pub name: String,
    pub min: Vec<i64>,
    pub opt: Vec<i64>,
    pub max: Vec<i64>,
}

impl<'l> Builder<'l> {
    pub fn new(logger: &'l Logger) -> Result<Self> {
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: valid logger handle, out-pointer.
            unsafe { sys::trtforge_builder_create(logger.raw.as_ptr(), &mut raw) },
            "builder",
        )?;
        Builder::from_raw(raw, "builder")
    }

    /// Explicit-batch network; `strongly_typed` for Q/DQ models where the version has it.
    pub fn network(&self, strongly_typed: bool) -> Result<Network<'_>> {
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: valid builder handle, out-pointer.
            unsafe {
                sys::trtforge_network_create(self.raw.as_ptr(), i32::from(strongly_typed), &mut raw)
            },
            "network",
        )?;
        Network::from_raw(raw, "network")
    }

    pub fn config(&self) -> Result<Config<'_>> {
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: valid builder handle, out-pointer.
            unsafe { sys::trtforge_config_create(self.raw.as_ptr(), &mut raw) },
            "builder config",
        )?;
        Config::from_raw(raw, "builder config")
    }

    /// Add an optimization profile: `(input, min, opt, max)` per dynamic input.
    pub fn add_profile(
        &self,
        config: &Config<'_>,
        shapes: &[InputProfile],
        calibration: bool,
    ) -> Result<()> {
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: valid builder handle, out-pointer.
            unsafe { sys::trtforge_profile_create(self.raw.as_ptr(), &mut raw) },
            "optimization profile",
        )?;
        for InputProfile {
            name,
            min,
            opt,
            max,
        } in shapes
        {
            let c = CString::new(name.as_str())
                .map_err(|_| Error::Invalid(format!("input name {name:?}")))?;
            if min.len() != opt.len() || opt.len() != max.len() {
                return Err(Error::Invalid(format!(
                    "profile for '{name}': min/opt/max ranks differ"
                )));
            }
            check(
                // SAFETY: arrays of `len` dims, valid profile handle.
                unsafe {
                    sys::trtforge_profile_set(
                        raw,
                        c.as_ptr(),
                        min.len() as i32,
                        min.as_ptr(),
                        opt.as_ptr(),
                        max.as_ptr(),
                    )
                },
                "optimization profile",
            )?;
        }
        // SAFETY: the config takes the profile (TensorRT owns it); `raw` is not used again.
        check(
            unsafe {
                sys::trtforge_config_add_profile(config.raw.as_ptr(), raw, i32::from(calibration))
            },
            "optimization profile",
        )
    }

    /// Build the serialized engine. With a calibrator, the failure recorded in its state (an
    /// error or a panic in a callback) takes precedence over TensorRT's own error.
    pub fn build(
        &self,
        network: &Network<'_>,
        config: &Config<'_>,
        calib: Option<&mut CalibrationSession>,
    ) -> Result<(Vec<u8>, Option<CalibrationSummary>)> {
        if let Some(s) = calib.as_deref() {
            check(
                // SAFETY: valid handles; the session outlives this call, and is detached below.
                unsafe {
                    sys::trtforge_config_set_calibrator(config.raw.as_ptr(), s.calib.raw.as_ptr())
                },
                "calibrator",
            )?;
        }
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid handles; the calibrator session is borrowed for the whole call.
        let status = unsafe {
            sys::trtforge_build_serialized(
                self.raw.as_ptr(),
                network.raw.as_ptr(),
                config.raw.as_ptr(),
                &mut raw,
            )
        };
        // Own whatever came back before any early return, so it is freed.
        let bytes = if raw.is_null() {
            None
        } else {
            Some(HostBytes::from_raw(raw, "engine build")?)
        };
        let summary = match calib {
            Some(s) => {
                // SAFETY: detach so the config never points at a dropped calibrator.
                unsafe {
                    sys::trtforge_config_set_calibrator(config.raw.as_ptr(), std::ptr::null_mut())
                };
                Some(s.state.finish()?)
            }
            None => None,
        };
        check(status, "engine build")?;
        let bytes = bytes.ok_or_else(|| Error::Tensorrt {
            what: "engine build".into(),
            msg: "returned no bytes".into(),
        })?;
        Ok((bytes.as_slice().to_vec(), summary))
    }
}
