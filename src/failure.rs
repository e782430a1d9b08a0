//! What every failure of this crate can say about itself: a one-line message and, when
//! we know one, a hint. The app layer (`error.rs`) adds the exit code; the layers
//! below only describe what went wrong.

use std::fmt;

/// An error that can tell the user what to do about it.
pub trait Hinted: fmt::Display {
    /// What the user can do about it, when we know.
    fn hint(&self) -> Option<String>;

    /// The error, then its hint, on one line: server messages may carry newlines, and
    /// the contract is one line per failure.
    fn one_line(&self) -> String {
        let line = match self.hint() {
            Some(hint) => format!("{self} (hint: {hint})"),
            None => self.to_string(),
        };
        line.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// The innermost cause of an error chain: the useful part of what reqwest, hyper and
/// kube report ("connection refused" rather than "error sending request").
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut last = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        last = e.to_string();
        source = e.source();
    }
    last
}

/// Input we cannot use: a missing or malformed file, flag value, annotation or setting.
/// The message says which and why; it never quotes secret content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    pub message: String,
    pub hint: String,
}

impl InputError {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> InputError {
        InputError {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl Hinted for InputError {
    fn hint(&self) -> Option<String> {
        Some(self.hint.clone())
    }
}

impl Hinted for secret_zero_client::SocketSpecError {
    fn hint(&self) -> Option<String> {
        Some(secret_zero_client::SocketSpecError::hint(self).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_folds_whitespace_and_appends_the_hint() {
        let e = InputError::new("bad\n  thing", "fix it");
        assert_eq!(e.one_line(), "bad thing (hint: fix it)");
    }
}
