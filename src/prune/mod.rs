//! Structural channel pruning of an ONNX detector, without its training code
//! (`trtforge prune`):
//! - [`groups`]: dependency analysis: which channels of which tensors go together, and what
//!   cannot be pruned, with the reason;
//! - [`criterion`]: BN scale, L1 or L2 importance per channel;
//! - [`sensitivity`]: the `output` criterion, each set's removal measured end to end;
//! - [`select`]: a global ranking to a share of channels or MACs, aligned widths, a floor per
//!   layer;
//! - [`apply`]: the graph edit that removes the channels;
//! - [`recover`]: least-squares refit of the layers that lost inputs, on calibration images;
//! - [`job`]: the whole run (progressive steps, figures before and after), and [`report`].

pub mod apply;
pub mod criterion;
pub mod groups;
pub mod job;
pub mod recover;
pub mod report;
pub mod select;
pub mod sensitivity;

pub use criterion::Criterion;
pub use job::{analyse, prune, PruneJob, PruneSettings, Pruned};
pub use select::Measure;
