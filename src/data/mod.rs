//! Images in, tensors out: decoding ([`image`]), the input contract ([`contract`]) and
//! preprocessing ([`preprocess`]), ordered image sets ([`set`]), the parallel ordered stream
//! of batches ([`stream`]) and `.npy` files ([`npy`], [`dump`]). Calibration, evaluation,
//! quantization and `run` all read images through here.

pub mod contract;
pub mod dump;
pub mod image;
pub mod jpeg;
pub mod npy;
pub mod preprocess;
pub mod set;
pub mod stream;

pub use contract::{ChannelOrder, InputContract, InputDtype, Interpolation, ResizeMode};
pub use preprocess::Letterbox;
pub use set::{ImageSet, Order};
pub use stream::{Batch, ImageStream, ItemInfo, OnUnreadable, Skipped};
