//! Where the agent listens: a socket file or a name in the Linux abstract namespace.

use std::path::PathBuf;

/// The socket used when none is given: a file in a memory-backed `emptyDir`.
pub const DEFAULT_SOCKET: &str = "/run/secret-zero/agent.sock";

/// The environment variable naming the agent's socket, the one `secret-zero get` and
/// `serve` read too.
pub const SOCKET_ENV: &str = "SECRET_ZERO_SOCKET";

/// Where the agent listens: `--socket PATH` or `--socket @NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketSpec {
    /// A socket file, normally in a memory-backed `emptyDir`.
    Path(PathBuf),
    /// A name in the Linux abstract namespace: no file at all, and no file mode either,
    /// so the peer policy is the only guard.
    Abstract(String),
}

/// A socket that cannot be parsed. The message is one line; [`SocketSpecError::hint`]
/// says what to give instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SocketSpecError {
    /// `@` with nothing after it.
    #[error("--socket @ needs a name after '@'")]
    MissingName,
    /// The empty string.
    #[error("--socket is empty")]
    Empty,
}

impl SocketSpecError {
    /// What to give instead.
    pub fn hint(&self) -> &'static str {
        match self {
            SocketSpecError::MissingName => {
                "e.g. --socket @secret-zero, or a path such as /run/secret-zero/agent.sock"
            }
            SocketSpecError::Empty => "give a path such as /run/secret-zero/agent.sock, or @NAME",
        }
    }
}

impl std::str::FromStr for SocketSpec {
    type Err = SocketSpecError;

    /// `@NAME` is an abstract name; anything else a path.
    fn from_str(s: &str) -> Result<SocketSpec, SocketSpecError> {
        match s.strip_prefix('@') {
            Some("") => Err(SocketSpecError::MissingName),
            Some(name) => Ok(SocketSpec::Abstract(name.to_string())),
            None if s.is_empty() => Err(SocketSpecError::Empty),
            None => Ok(SocketSpec::Path(PathBuf::from(s))),
        }
    }
}

impl std::fmt::Display for SocketSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketSpec::Path(path) => write!(f, "{}", path.display()),
            SocketSpec::Abstract(name) => write!(f, "@{name}"),
        }
    }
}

impl Default for SocketSpec {
    fn default() -> SocketSpec {
        SocketSpec::Path(PathBuf::from(DEFAULT_SOCKET))
    }
}

/// The socket an application should use: `SECRET_ZERO_SOCKET` (a path or `@NAME`) when
/// set and not empty, else `/run/secret-zero/agent.sock`.
pub fn socket_from_env() -> Result<SocketSpec, SocketSpecError> {
    match std::env::var(SOCKET_ENV) {
        Ok(value) if !value.is_empty() => value.parse(),
        _ => Ok(SocketSpec::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_abstract_names_parse_and_print_back() {
        for text in [
            "/run/secret-zero/agent.sock",
            "relative.sock",
            "@secret-zero",
            "@a b",
        ] {
            let spec: SocketSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), text);
        }
        assert_eq!(
            "@name".parse::<SocketSpec>(),
            Ok(SocketSpec::Abstract("name".into()))
        );
        assert_eq!(
            SocketSpec::default(),
            SocketSpec::Path(PathBuf::from(DEFAULT_SOCKET))
        );
    }

    #[test]
    fn empty_and_bare_at_are_refused_with_a_hint() {
        let e = "".parse::<SocketSpec>().unwrap_err();
        assert_eq!(e, SocketSpecError::Empty);
        assert_eq!(e.to_string(), "--socket is empty");
        assert!(e.hint().contains("@NAME"));
        let e = "@".parse::<SocketSpec>().unwrap_err();
        assert_eq!(e.to_string(), "--socket @ needs a name after '@'");
        assert!(e.hint().contains("--socket @secret-zero"));
    }
}
