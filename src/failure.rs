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
        let message = say_once(&self.to_string());
        let line = match self.hint() {
            Some(hint) => format!("{message} (hint: {hint})"),
            None => message,
        };
        line.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// A message whose layers repeat each other said once: in `A: B` (or `A: B; C`), a
/// part `B` of two words or more that `A` already says (the agent's "no delivery left"
/// wrapped in the client's "has no delivery left: ...", Vault's "permission denied"
/// after "permission denied on PATH") is dropped with the separator before it.
fn say_once(message: &str) -> String {
    let mut out = String::new();
    let mut last = "";
    for (separator, part) in parts(message) {
        if !last.is_empty() && separator == ": " && repeats(last, part) {
            continue;
        }
        out.push_str(separator);
        out.push_str(part);
        last = part;
    }
    out
}

/// `message` cut at every ": " and "; ", each part with the separator before it (""
/// for the first).
fn parts(message: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut separator = "";
    let mut rest = message;
    loop {
        let next = [": ", "; "]
            .iter()
            .filter_map(|s| rest.find(s).map(|at| (at, *s)))
            .min();
        match next {
            Some((at, s)) => {
                out.push((separator, &rest[..at]));
                separator = s;
                rest = &rest[at + s.len()..];
            }
            None => {
                out.push((separator, rest));
                return out;
            }
        }
    }
}

/// Whether `part` (at least two words) appears in `before` as whole words.
fn repeats(before: &str, part: &str) -> bool {
    let part = part.trim();
    if part.split_whitespace().count() < 2 {
        return false;
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    before.match_indices(part).any(|(at, _)| {
        !word(before[..at].chars().next_back()) && !word(before[at + part.len()..].chars().next())
    })
}

/// What is wrong with a JSON body, and where, without what it holds: serde's own
/// messages quote the values they meet ("invalid type: string \"...\""), and a misshapen
/// answer from Vault or the API server may carry a plaintext, a token or a Secret's data.
/// Only a missing field, which names one of ours, is passed on.
pub fn json_error_without_values(error: &serde_json::Error, empty: bool) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Eof if empty => return "the body is empty".to_string(),
        Category::Eof => "the body ends early".to_string(),
        Category::Syntax => "the body is not JSON".to_string(),
        Category::Io => "the body cannot be read".to_string(),
        Category::Data => {
            let message = error.to_string();
            match message.find("missing field `") {
                Some(at) => {
                    let field = message[at..].split('`').nth(1).unwrap_or("");
                    format!("the body lacks the field `{field}`")
                }
                None => "the body is JSON of another shape than expected".to_string(),
            }
        }
    };
    format!("{what} (line {}, column {})", error.line(), error.column())
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
    fn a_phrase_two_layers_both_say_is_said_once() {
        for (said, once) in [
            (
                "the agent on /run/a.sock has no delivery left: no delivery left: 1 of 1 made",
                "the agent on /run/a.sock has no delivery left: 1 of 1 made",
            ),
            (
                "the agent on @a is not ready: not ready",
                "the agent on @a is not ready",
            ),
            (
                "vault: permission denied on transit/keys/k: permission denied",
                "vault: permission denied on transit/keys/k",
            ),
            (
                "vault: permission denied on a/b: permission denied; then c: d",
                "vault: permission denied on a/b; then c: d",
            ),
        ] {
            assert_eq!(
                InputError::new(said, "h").one_line(),
                format!("{once} (hint: h)")
            );
        }
        // One word, a part of a word, or a different phrase: kept.
        for kept in [
            "cannot read file: file",
            "not readable: not ready",
            "Secret a/b has no data key \"x\": seal it again",
        ] {
            assert_eq!(
                InputError::new(kept, "h").one_line(),
                format!("{kept} (hint: h)")
            );
        }
    }

    #[test]
    fn one_line_folds_whitespace_and_appends_the_hint() {
        let e = InputError::new("bad\n  thing", "fix it");
        assert_eq!(e.one_line(), "bad thing (hint: fix it)");
    }
}
