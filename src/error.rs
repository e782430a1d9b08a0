//! The crate's error type, its exit codes, and the hint each failure carries.
//!
//! Every failure ends as one line: what failed, against which endpoint or object, and
//! what to do about it (DESIGN §2.8). Exit codes are a contract for scripts and
//! kubelet; they are documented in the README and `--help`.

use crate::agent::AgentError;
use crate::client::ClientError;
use crate::format::FormatError;
use crate::kube::KubeError;
use crate::vault::VaultError;

/// Documented process exit codes.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// A bug: something that should not happen did.
    pub const INTERNAL: i32 = 1;
    /// The command line is wrong (unknown flag, missing value).
    pub const USAGE: i32 = 2;
    /// An input we cannot use: a missing or malformed file, document or setting.
    pub const INPUT: i32 = 3;
    /// Vault refused the login (role, audience, expired or foreign token).
    pub const VAULT_AUTH: i32 = 4;
    /// Vault refused an operation: permission denied, bad request, no such key.
    pub const VAULT_DENIED: i32 = 5;
    /// Vault could not be reached, is sealed, failed TLS, or kept failing after retries.
    pub const VAULT_UNAVAILABLE: i32 = 6;
    /// The Kubernetes API refused: unauthorized, forbidden or not found.
    pub const KUBE_DENIED: i32 = 7;
    /// A Kubernetes write lost a race (409) that retries did not settle.
    pub const KUBE_CONFLICT: i32 = 8;
    /// The Kubernetes API could not be reached or kept failing.
    pub const KUBE_UNAVAILABLE: i32 = 9;
    /// `get`: the agent refused this process (403: uid/gid not allowed).
    pub const AGENT_REFUSED: i32 = 10;
    /// `get`: the agent has no delivery left (410).
    pub const AGENT_GONE: i32 = 11;
    /// `get`/`probe`: no agent answers on the socket, or it is not ready.
    pub const AGENT_UNREACHABLE: i32 = 12;
    /// `serve`: the socket cannot be bound (directory missing or read-only, a live
    /// agent already on it).
    pub const SOCKET: i32 = 13;
    /// `rotate`: some Secrets could not be read, rewrapped or written (each named in
    /// the log); the others were. Nothing was retired.
    pub const SECRETS_FAILED: i32 = 14;
    /// `rotate --retire` refused: some Secret under the key, in some namespace, is
    /// still behind the latest version (each named in the log). Nothing was retired.
    pub const RETIRE_REFUSED: i32 = 15;
}

/// Anything that can stop a secret-zero command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("vault: {0}")]
    Vault(#[from] VaultError),

    #[error("kubernetes: {0}")]
    Kube(#[from] KubeError),

    /// Unusable input; the message says which and why.
    #[error("{message}")]
    Input {
        message: String,
        hint: Option<String>,
    },

    #[error("internal error: {0}")]
    Internal(String),

    /// The agent's socket could not be bound or served (exit code `SOCKET`).
    #[error(transparent)]
    Agent(#[from] AgentError),

    /// `get`/`probe`: the agent did not hand over what was asked.
    #[error(transparent)]
    Client(#[from] ClientError),

    /// A delivered document cannot be rendered as asked (dotenv, `--key`).
    #[error(transparent)]
    Format(#[from] FormatError),
}

impl Error {
    /// An input error with a hint.
    pub fn input(message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Input {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Vault(e) => match e {
                VaultError::PermissionDenied { path, .. }
                | VaultError::InvalidRequest { path, .. }
                    if is_login(path) =>
                {
                    exit::VAULT_AUTH
                }
                VaultError::PermissionDenied { .. }
                | VaultError::InvalidRequest { .. }
                | VaultError::NotFound { .. } => exit::VAULT_DENIED,
                VaultError::Config(_) => exit::INPUT,
                VaultError::Unavailable { .. }
                | VaultError::Transient { .. }
                | VaultError::Tls { .. }
                | VaultError::BadResponse { .. } => exit::VAULT_UNAVAILABLE,
            },
            Error::Kube(e) => match e {
                KubeError::Conflict { .. } | KubeError::AlreadyExists { .. } => exit::KUBE_CONFLICT,
                KubeError::Transient { .. } => exit::KUBE_UNAVAILABLE,
                KubeError::Config(_) => exit::INPUT,
                _ => exit::KUBE_DENIED,
            },
            Error::Input { .. } => exit::INPUT,
            Error::Internal(_) => exit::INTERNAL,
            Error::Agent(_) => exit::SOCKET,
            Error::Client(e) => e.exit_code(),
            Error::Format(_) => exit::INPUT,
        }
    }

    /// What the user can do about it, when we know.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Vault(e) => e.hint(),
            Error::Kube(e) => e.hint(),
            Error::Input { hint, .. } => hint.clone(),
            Error::Internal(_) => {
                Some("this is a bug in secret-zero: please report it with the log".into())
            }
            Error::Agent(e) => e.hint(),
            Error::Client(e) => e.hint(),
            Error::Format(e) => Some(e.hint()),
        }
    }

    /// Whether a later attempt may succeed (bounded retries with backoff).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Vault(e) => e.is_transient(),
            Error::Kube(e) => e.is_transient(),
            _ => false,
        }
    }

    /// The one line printed when a command fails: the error, then the hint.
    pub fn one_line(&self) -> String {
        let line = match self.hint() {
            Some(hint) => format!("{self} (hint: {hint})"),
            None => self.to_string(),
        };
        // Server messages may carry newlines; the contract is one line.
        line.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

fn is_login(path: &str) -> bool {
    path.starts_with("auth/") && path.ends_with("/login")
}
