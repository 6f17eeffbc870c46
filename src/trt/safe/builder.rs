//! The builder: networks, configs, optimization profiles and the serialized build.

use super::super::bridge::CalibrationSummary;
use super::super::options::InputProfile;
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

handle!(
    Profile,
    sys::trtforge_profile,
    sys::trtforge_profile_destroy
);

impl<'l> Builder<'l> {
    /// A builder; needs the libraries loaded ([`super::load`]).
    pub fn new(logger: &'l Logger) -> Result<Self> {
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: valid logger handle, out-pointer.
            unsafe { sys::trtforge_builder_create(logger.raw.as_ptr(), &mut raw) },
            "builder",
        )?;
        Builder::from_raw(raw, "builder")
    }

    /// DLA cores on this device (0 on GPUs and on Orin Nano).
    pub fn nb_dla_cores(&self) -> Result<u32> {
        let mut n = 0;
        check(
            // SAFETY: valid handle, out-pointer.
            unsafe { sys::trtforge_builder_nb_dla_cores(self.raw.as_ptr(), &mut n) },
            "DLA cores",
        )?;
        Ok(n.max(0) as u32)
    }

    /// Explicit-batch network; `strongly_typed` where the version has it (11: always).
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

    /// An optimization profile with `shapes` set, ready for [`Config::add_profile`]. The
    /// handle is freed on every path (TensorRT keeps the profile itself).
    pub fn profile(&self, shapes: &[InputProfile]) -> Result<Profile<'_>> {
        for p in shapes {
            if p.min.len() != p.opt.len() || p.opt.len() != p.max.len() {
                return Err(Error::Invalid(format!(
                    "profile for '{}': min/opt/max ranks differ",
                    p.name
                )));
            }
        }
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: valid builder handle, out-pointer.
            unsafe { sys::trtforge_profile_create(self.raw.as_ptr(), &mut raw) },
            "optimization profile",
        )?;
        let profile = Profile::from_raw(raw, "optimization profile")?;
        for p in shapes {
            let c = CString::new(p.name.as_str())
                .map_err(|_| Error::Invalid(format!("input name {:?}", p.name)))?;
            check(
                // SAFETY: arrays of `len` dims, valid profile handle.
                unsafe {
                    sys::trtforge_profile_set(
                        profile.raw.as_ptr(),
                        c.as_ptr(),
                        p.min.len() as i32,
                        p.min.as_ptr(),
                        p.opt.as_ptr(),
                        p.max.as_ptr(),
                    )
                },
                "optimization profile",
            )?;
        }
        Ok(profile)
    }

    /// Build the serialized engine. With a calibrator, the failure recorded in its state (an
    /// error or a panic in a callback) takes precedence over TensorRT's own error.
    pub fn build(
        &self,
        network: &Network<'_>,
        config: &Config<'_>,
        calib: Option<&mut CalibrationSession>,
    ) -> Result<(HostBytes<'static>, Option<CalibrationSummary>)> {
        if let Some(s) = calib.as_deref() {
            check(
                // SAFETY: valid handles; the session outlives this call, and is detached below.
                unsafe { sys::trtforge_config_set_calibrator(config.raw.as_ptr(), s.raw()) },
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
                Some(s.finish()?)
            }
            None => None,
        };
        check(status, "engine build")?;
        let bytes = bytes.ok_or_else(|| Error::Tensorrt {
            what: "engine build".into(),
            msg: "returned no bytes".into(),
        })?;
        Ok((bytes, summary))
    }
}
