//! The application side of a secret-zero agent: read the document it serves over its
//! Unix socket, once, and render it (JSON, dotenv lines, one key's value).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let socket = secret_zero_client::socket_from_env()?;
//! let document = secret_zero_client::fetch_json_blocking(&socket)?;
//! let password = document.key("db_password")?;
//! # let _ = password.expose();
//! # Ok(())
//! # }
//! ```
//!
//! Decrypted bytes only ever live in a [`Plaintext`] (or a [`PlaintextBuf`] while they
//! arrive), which is wiped on drop and never printed. The document rules (JSON object,
//! no duplicate keys, errors with a position and never a value) are the same here as in
//! the secret-zero binary: see ARCHITECTURE.md in its repository.
//!
//! The async functions need the default `tokio` feature; the `_blocking` ones need no
//! runtime. The `clap` feature derives `clap::ValueEnum` on [`FetchFormat`] and
//! [`DocFormat`].

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod exit;
mod fetch;
mod format;
mod json;
mod plaintext;
mod socket;
mod status;

pub use fetch::{
    ClientError, Document, KEY_ANSWER_HEADER, TIMEOUT, fetch_blocking, fetch_json_blocking,
    fetch_key_blocking, status_blocking,
};
#[cfg(feature = "tokio")]
pub use fetch::{fetch, fetch_json, fetch_key, status};
pub use format::{
    FetchFormat, FormatError, KeyValue, dotenv, is_shell_name, key_value, key_value_typed,
};
pub use json::{
    CompactJson, DUPLICATE_KEY, DocumentLimits, EntriesError, JsonError, JsonErrorKind, JsonType,
    check_object, object_entries, position,
};
pub use plaintext::{InvalidBase64, Plaintext, PlaintextBuf};
pub use socket::{DEFAULT_SOCKET, SOCKET_ENV, SocketSpec, SocketSpecError, socket_from_env};
pub use status::{AgentState, AgentStatus, DocFormat};
