//! The C++ calibrator (sys/calibrator.cpp) bound to the Rust bridge state it calls back into.

use super::super::bridge::CalibratorState;
use super::super::result::check;
use super::super::sys;
use crate::error::{Error, Result};
use std::marker::PhantomData;
use std::ptr::NonNull;

handle!(
    Calibrator,
    sys::trtforge_calibrator,
    sys::trtforge_calibrator_destroy
);

/// A C++ calibrator and the boxed Rust state it forwards to, owned together (the handle is
/// dropped before the state). [`Builder::build`] attaches it for the duration of the build.
pub struct CalibrationSession {
    pub(super) calib: Calibrator<'static>,
    pub(super) state: Box<CalibratorState>,
}

impl CalibrationSession {
    /// `minmax` picks IInt8MinMaxCalibrator, else IInt8EntropyCalibrator2.
    pub fn new(mut state: Box<CalibratorState>, minmax: bool) -> Result<Self> {
        let cb = state.callbacks();
        let algo = if minmax {
            sys::TRTFORGE_CALIB_MINMAX
        } else {
            sys::TRTFORGE_CALIB_ENTROPY2
        };
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: `cb.user` points into the box, which this session owns and outlives the handle.
            unsafe { sys::trtforge_calibrator_create(&cb, algo as i32, &mut raw) },
            "calibrator",
        )?;
        Ok(CalibrationSession {
            calib: Calibrator::from_raw(raw, "calibrator")?,
            state,
        })
    }

    pub fn state(&mut self) -> &mut CalibratorState {
        &mut self.state
    }
}
