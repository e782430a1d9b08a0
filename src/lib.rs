//! secret-zero: a sidecar that turns a Transit ciphertext into plaintext held only in
//! memory, delivered once over a Unix socket.
//!
//! The modules are private and layered (see ARCHITECTURE.md, "Layers"):
//!
//! - bottom, importing no other module of this crate: [`env`] (every variable name and
//!   default), `document` (the document reader), `failure` (one-line messages and hints),
//!   `retry`, `harden`, `signals`, `crypto`, `alloc`; plus what the client crate
//!   `secret-zero-client` provides to both sides of the socket — [`Plaintext`], the exit
//!   codes, the socket address, the JSON rules and the renderings;
//! - clients, each with its own error type and no exit codes: `vault`, `kube`;
//! - domain: `fault` (the domain's error), `secret_format`, `source`, `agent`, `seal`,
//!   `rotate`, `inject`, `webhook`, `audit`;
//! - app: `error` (exit codes and hints), `cli`, `commands`.
//!
//! What an application needs is the [`client`] module (the same as the
//! `secret-zero-client` crate, which does not pull in this crate's dependencies).
#![deny(unsafe_code)]

// Bottom.
mod alloc;
mod crypto;
mod document;
pub mod env;
mod failure;
mod harden;
mod retry;
mod signals;

// Clients.
mod kube;
mod vault;

// Domain.
mod agent;
mod audit;
mod fault;
mod inject;
mod rotate;
mod seal;
mod secret_format;
mod source;
mod webhook;

// App.
mod cli;
mod commands;
mod error;

// The pieces shared with the client crate, under the names the layers above use.
mod exit {
    pub use secret_zero_client::exit::*;
}
mod format {
    pub use secret_zero_client::{FetchFormat, FormatError, dotenv};
}
mod plaintext {
    pub use secret_zero_client::{Plaintext, PlaintextBuf};
}

/// The application side of the agent's socket: fetch the document once, with typed
/// errors and the exit codes `secret-zero get` uses.
pub mod client {
    pub use secret_zero_client::*;
}

pub use secret_zero_client::Plaintext;

/// What the `secret-zero` binary runs; not an API.
#[doc(hidden)]
pub mod app {
    pub use crate::alloc::ZeroingAllocator;
    pub use crate::cli::{Cli, LogFormat};
    pub use crate::commands::run;
    pub use crate::error::Error;
    pub use crate::failure::Hinted;
    pub use secret_zero_client::exit;
}

/// What the integration tests in `tests/` reach into; not an API.
#[doc(hidden)]
pub mod testing {
    pub mod vault {
        pub use crate::vault::{
            AuthMethod, BatchItem, Client, KeyConfig, Login, TokenInfo, VaultConfig, VaultError,
            VaultToken, ciphertext_version,
        };
    }
    pub mod kube {
        pub use crate::kube::{ClusterSource, KubeError, Secret, Secrets, connect};
    }
    pub mod agent {
        pub use crate::agent::{
            Agent, AgentConfig, AgentError, Limits, PeerPolicy, Source, StatusHandle,
        };
        pub use crate::fault::Fault;
    }
    pub mod inject {
        pub use crate::inject::{Options, STATUS, inject_object};
    }
    pub mod webhook {
        pub use crate::env::DEFAULT_MAX_BODY_BYTES;
        pub use crate::webhook::{CertFiles, Config, Server};
    }
    pub mod error {
        pub use crate::error::Error;
        pub use crate::failure::Hinted;
        pub use secret_zero_client::exit;
    }
}

/// What the fuzz targets in `fuzz/` drive (docs/fuzzing.md); not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub mod document {
        pub use crate::document::{InputFormat, ManifestFormat, parse, parse_any};
        pub use crate::env::DOCUMENT_LIMITS;
    }
    pub mod secret {
        pub use crate::kube::Secret;
        pub use crate::secret_format::{
            Binding, Envelope, SecretRef, Transit, TransitFlags, parse_ciphertext, read, resolve,
        };
    }
    pub mod vault {
        pub use crate::vault::{
            KeyInfo, Login, VaultError, check_jwt, ciphertext_version, decrypt_answer, key_answer,
            login_answer, rewrap_answer, rewrap_batch_answer,
        };
    }
    pub mod inject {
        pub use crate::inject::{Options, STATUS, inject_object, inject_yaml};
        pub use crate::webhook::review::{Decision, Verdict, review};
    }
    pub mod dotenv {
        pub use crate::source::parse_env;
        pub use secret_zero_client::{
            FormatError, dotenv, is_shell_name, key_value, object_entries,
        };
    }
    pub mod agent {
        pub use crate::agent::{AgentConfig, AgentState, AgentStatus, DocFormat, Source, serve_io};
        pub use crate::fault::Fault;
    }
}
