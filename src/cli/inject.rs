//! Flags of `inject` (issue 6).

use clap::Args;

/// `secret-zero inject`.
#[derive(Debug, Args)]
pub struct InjectArgs {}
