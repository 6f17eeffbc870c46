//! The C++ calibrator (sys/calibrator.cpp) bound to the Rust bridge state it calls back into.

use super::super::bridge::{CalibrationSummary, CalibratorState};
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

/// A C++ calibrator and the Rust state it forwards to, owned together. The state is held as
/// a raw pointer (not a `Box`), because TensorRT mutates it through the pointer in the
/// callback table while the session exists; it is reached from Rust only when TensorRT is not
/// running (after the build returns), and freed after the calibrator handle.
/// [`super::Builder::build`] attaches the calibrator for the duration of the build.
pub struct CalibrationSession {
    /// Some until the session drops.
    calib: Option<Calibrator<'static>>,
    state: NonNull<CalibratorState>,
}

impl CalibrationSession {
    /// `minmax` picks IInt8MinMaxCalibrator, else IInt8EntropyCalibrator2.
    pub fn new(state: Box<CalibratorState>, minmax: bool) -> Result<Self> {
        let state = NonNull::from(Box::leak(state));
        let cb = CalibratorState::callbacks_for(state.as_ptr());
        let algo = if minmax {
            sys::TRTFORGE_CALIB_MINMAX
        } else {
            sys::TRTFORGE_CALIB_ENTROPY2
        };
        let mut raw = std::ptr::null_mut();
        // SAFETY: `cb.user` is the leaked state, which lives until this session drops.
        let st = unsafe { sys::trtforge_calibrator_create(&cb, algo as i32, &mut raw) };
        let calib = check(st, "calibrator").and_then(|()| Calibrator::from_raw(raw, "calibrator"));
        match calib {
            Ok(calib) => Ok(CalibrationSession {
                calib: Some(calib),
                state,
            }),
            Err(e) => {
                // SAFETY: no calibrator holds the pointer; this is the only owner.
                drop(unsafe { Box::from_raw(state.as_ptr()) });
                Err(e)
            }
        }
    }

    /// The C++ calibrator, for the builder config.
    pub(super) fn raw(&self) -> *mut sys::trtforge_calibrator {
        self.calib.as_ref().expect("alive until drop").raw.as_ptr()
    }

    /// The recorded failure, or the summary. Call only after the build returned (TensorRT no
    /// longer calls the calibrator).
    pub fn finish(&mut self) -> Result<CalibrationSummary> {
        // SAFETY: TensorRT has returned, so nothing else uses the state right now.
        unsafe { self.state.as_mut() }.finish()
    }
}

impl Drop for CalibrationSession {
    fn drop(&mut self) {
        // The C++ calibrator holding the pointer goes first.
        drop(self.calib.take());
        // SAFETY: nothing refers to the state any more, and this session owns it.
        drop(unsafe { Box::from_raw(self.state.as_ptr()) });
    }
}
