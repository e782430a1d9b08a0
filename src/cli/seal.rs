//! Flags of `seal` (issue 4).

use clap::Args;

/// `secret-zero seal`.
#[derive(Debug, Args)]
pub struct SealArgs {}
