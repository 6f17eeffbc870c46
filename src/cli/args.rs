//! Arguments several subcommands share.

use std::path::PathBuf;

/// A recipe, and the model (or engine) and images a command runs over instead of the recipe's.
#[derive(clap::Args)]
pub struct RecipeImages {
    /// Recipe (YAML): model and input contract (and, for eval, the decoder and eval set).
    pub recipe: PathBuf,
    /// Use this model instead of the recipe's (same input contract; for eval, same decoder).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Images (folder or list file) instead of the recipe's: eval reads the eval section's;
    /// run reads the eval section's, else the calibration section's.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Use at most N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Run this TensorRT engine (built from the recipe: same input contract, and for eval the
    /// same decoder) on the device instead of the ONNX model on CPU.
    #[arg(long)]
    pub engine: Option<PathBuf>,
}
