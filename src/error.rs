//! The app layer's error: every failure a command can end with, its exit code, and
//! its hint. The layers below describe what went wrong (each with its own error type);
//! only this file decides what that means for the process (see ARCHITECTURE.md,
//! "Errors and exit codes").
//!
//! Every failure ends as one line: what failed, against which endpoint or object, and
//! what to do about it. Exit codes are a contract for scripts and kubelet; they are
//! documented in docs/exit-codes.md and `--help`.

use crate::agent::AgentError;
use crate::audit::AuditError;
use crate::client::ClientError;
use crate::exit;
use crate::failure::{Hinted, InputError};
use crate::fault::Fault;
use crate::format::FormatError;
use crate::kube::KubeError;
use crate::vault::VaultError;
use crate::webhook::WebhookError;

/// Anything that can stop a secret-zero command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Vault, Kubernetes, unusable input or a bug, from the domain layer.
    #[error(transparent)]
    Fault(#[from] Fault),

    /// The agent's settings or socket.
    #[error(transparent)]
    Agent(#[from] AgentError),

    /// `get`/`probe`: the agent did not hand over what was asked.
    #[error(transparent)]
    Client(#[from] ClientError),

    /// A delivered document cannot be rendered as asked (dotenv, `--key`).
    #[error(transparent)]
    Format(#[from] FormatError),

    /// The webhook cannot start.
    #[error(transparent)]
    Webhook(#[from] WebhookError),

    /// `audit` could not list the pods.
    #[error(transparent)]
    Audit(#[from] AuditError),

    /// The command line is wrong in a way clap's definitions cannot say (flags that do
    /// not go together, a missing source): the same exit code as clap's own usage
    /// errors.
    #[error(transparent)]
    Usage(InputError),
}

impl From<VaultError> for Error {
    fn from(e: VaultError) -> Error {
        Error::Fault(e.into())
    }
}

impl From<KubeError> for Error {
    fn from(e: KubeError) -> Error {
        Error::Fault(e.into())
    }
}

impl From<crate::document::DocumentError> for Error {
    fn from(e: crate::document::DocumentError) -> Error {
        Error::Fault(e.into())
    }
}

impl From<InputError> for Error {
    fn from(e: InputError) -> Error {
        Error::Fault(e.into())
    }
}

impl Error {
    /// An input error with a hint.
    pub fn input(message: impl Into<String>, hint: impl Into<String>) -> Error {
        InputError::new(message, hint).into()
    }

    /// A usage error with a hint: exit code [`exit::USAGE`], like clap's.
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Usage(InputError::new(message, hint))
    }

    /// A bug: something that should not happen did.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::Fault(Fault::Internal(message.into()))
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Fault(e) => fault_code(e),
            Error::Agent(AgentError::Config(_)) => exit::INPUT,
            Error::Agent(_) => exit::SOCKET,
            Error::Client(e) => e.exit_code(),
            Error::Format(_) => exit::INPUT,
            Error::Webhook(WebhookError::Tls(_)) => exit::INPUT,
            // Like a socket `serve` cannot bind: the address, not the input, is the problem.
            Error::Webhook(WebhookError::Listen { .. } | WebhookError::MetricsListen { .. }) => {
                exit::SOCKET
            }
            Error::Audit(AuditError::Forbidden { .. }) => exit::KUBE_DENIED,
            Error::Audit(AuditError::Fault(e)) => fault_code(e),
            Error::Usage(_) => exit::USAGE,
        }
    }
}

impl Hinted for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Fault(e) => e.hint(),
            Error::Agent(e) => e.hint(),
            Error::Client(e) => e.hint(),
            Error::Format(e) => Some(e.hint()),
            Error::Webhook(e) => Some(e.hint()),
            Error::Audit(e) => e.hint(),
            Error::Usage(e) => e.hint(),
        }
    }
}

fn fault_code(fault: &Fault) -> i32 {
    match fault.root() {
        Fault::Vault(e) => vault_code(e),
        Fault::Kube(e) => kube_code(e),
        Fault::Input(_) => exit::INPUT,
        Fault::Internal(_) | Fault::Context { .. } => exit::INTERNAL,
    }
}

fn vault_code(e: &VaultError) -> i32 {
    match e {
        VaultError::LoginRefused { .. } => exit::VAULT_AUTH,
        VaultError::PermissionDenied { .. }
        | VaultError::InvalidRequest { .. }
        | VaultError::NotFound { .. } => exit::VAULT_DENIED,
        VaultError::Credentials(_) | VaultError::Config(_) => exit::INPUT,
        VaultError::Unavailable { .. }
        | VaultError::Transient { .. }
        | VaultError::Tls { .. }
        | VaultError::BadResponse { .. } => exit::VAULT_UNAVAILABLE,
    }
}

fn kube_code(e: &KubeError) -> i32 {
    match e {
        KubeError::Conflict { .. } | KubeError::AlreadyExists { .. } => exit::KUBE_CONFLICT,
        KubeError::Transient { .. } => exit::KUBE_UNAVAILABLE,
        KubeError::Config(_) => exit::INPUT,
        KubeError::Unauthorized { .. }
        | KubeError::Forbidden { .. }
        | KubeError::NotFound { .. }
        | KubeError::Refused { .. } => exit::KUBE_DENIED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_exit_code_of_its_source() {
        let denied = VaultError::PermissionDenied {
            path: "transit/keys/k".into(),
            message: "permission denied".into(),
        };
        let e = Error::from(Fault::from(denied).context("nothing was written"));
        assert_eq!(e.exit_code(), exit::VAULT_DENIED);
        assert!(e.one_line().ends_with("; nothing was written (hint: check that the token's policy grants this operation on transit/keys/k)"), "{}", e.one_line());
    }

    #[test]
    fn an_address_in_use_is_not_bad_input() {
        let in_use = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = in_use.local_addr().unwrap();
        let source = std::net::TcpListener::bind(addr).unwrap_err();
        let e = Error::from(WebhookError::Listen { addr, source });
        assert_eq!(e.exit_code(), exit::SOCKET);
        assert!(e.one_line().contains("--listen"), "{}", e.one_line());
    }

    #[test]
    fn a_refused_login_is_an_auth_failure() {
        let e = Error::from(VaultError::LoginRefused {
            path: "auth/kubernetes/login".into(),
            status: 403,
            message: "permission denied".into(),
        });
        assert_eq!(e.exit_code(), exit::VAULT_AUTH);
        assert_eq!(
            e.to_string(),
            "vault: permission denied on auth/kubernetes/login: permission denied"
        );
    }
}
