//! Flags of `webhook` (issue 7).

use clap::Args;

/// `secret-zero webhook`.
#[derive(Debug, Args)]
pub struct WebhookArgs {}
