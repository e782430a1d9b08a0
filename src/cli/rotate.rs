//! Flags of `rotate` (issue 5).

use clap::Args;

/// `secret-zero rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {}
