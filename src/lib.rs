//! secret-zero: a sidecar that turns a Transit ciphertext into plaintext held only in
//! memory, delivered once over a Unix socket.
//!
//! The library holds everything; `main.rs` only parses, runs and maps errors to exit
//! codes. See `DESIGN.md` for the security invariants each module keeps.

pub mod agent;
pub mod alloc;
pub mod cli;
pub mod client;
pub mod commands;
pub mod error;
pub mod format;
pub mod harden;
pub mod inject;
pub mod kube;
pub mod operator;
pub mod plaintext;
pub mod retry;
pub mod rotate;
pub mod seal;
pub mod sealed;
pub mod signals;
pub mod source;
pub mod vault;
pub mod webhook;

pub use error::Error;
pub use plaintext::Plaintext;
