//! The failure type of the domain layer (sources, seal, rotate): a Vault or
//! Kubernetes error, unusable input, or a bug, optionally with what it meant for the
//! run. It carries no exit code: `error.rs` in the app layer maps it.

use crate::document::DocumentError;
use crate::failure::{Hinted, InputError};
use crate::kube::KubeError;
use crate::vault::VaultError;

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("vault: {0}")]
    Vault(#[from] VaultError),

    #[error("kubernetes: {0}")]
    Kube(#[from] KubeError),

    /// A file, flag, annotation or document we cannot use.
    #[error(transparent)]
    Input(#[from] InputError),

    /// Something that should not happen did.
    #[error("internal error: {0}")]
    Internal(String),

    /// What the failure meant for this run ("nothing was written", "it was put back").
    /// The exit code and hint are the source's.
    #[error("{source}; {note}")]
    Context { note: String, source: Box<Fault> },
}

impl Fault {
    /// Unusable input, with what to do about it.
    pub fn input(message: impl Into<String>, hint: impl Into<String>) -> Fault {
        Fault::Input(InputError::new(message, hint))
    }

    /// `self`, with what it meant for this run.
    pub fn context(self, note: impl Into<String>) -> Fault {
        Fault::Context {
            note: note.into(),
            source: Box::new(self),
        }
    }

    /// The failure under any context notes.
    pub fn root(&self) -> &Fault {
        match self {
            Fault::Context { source, .. } => source.root(),
            other => other,
        }
    }
}

impl From<DocumentError> for Fault {
    fn from(e: DocumentError) -> Fault {
        Fault::input(e.to_string(), e.hint())
    }
}

impl Hinted for Fault {
    fn hint(&self) -> Option<String> {
        match self {
            Fault::Vault(e) => e.hint(),
            Fault::Kube(e) => e.hint(),
            Fault::Input(e) => Some(e.hint.clone()),
            Fault::Internal(_) => {
                Some("this is a bug in secret-zero: please report it with the log".into())
            }
            Fault::Context { source, .. } => source.hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_source_and_its_hint() {
        let e = Fault::from(InputError::new("bad", "fix it")).context("nothing was written");
        assert_eq!(e.to_string(), "bad; nothing was written");
        assert_eq!(e.hint().as_deref(), Some("fix it"));
        assert!(matches!(e.root(), Fault::Input(_)));
    }
}
