//! DEVELOPMENT AND MIGRATION sources, none of them Secret Zero: the plaintext sits in
//! the environment, in a `.env` file, or in etcd. They exist so that a team leaving the
//! old `secretmanager` tool can switch an application to the socket first (same
//! one-shot delivery, same document) and to a Transit ciphertext second.
//!
//! Each fetch reads its source afresh, like the other sources, and builds a JSON object
//! whose values are strings. Error messages name keys, variables and objects, never a
//! value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::kube::{ClusterSource, ConfigMaps, KubeError, Secrets};
use crate::plaintext::PlaintextBuf;
use crate::retry::{Backoff, retry};
use crate::secret_format::SecretRef;

use super::Fetched;
use crate::document;
use crate::fault::Fault;

/// `--plaintext-env DEFINITION [--env-file FILE]`: the old ENVIRONMENT source. The
/// definition (JSON or YAML) maps document keys to environment variable names; each
/// value is read from the agent's environment, or else from the optional dotenv file.
/// As with the old tool (python-dotenv's default), the process environment wins over
/// the file.
pub struct PlaintextEnvSource {
    pub definition: PathBuf,
    pub env_file: Option<PathBuf>,
}

impl PlaintextEnvSource {
    pub fn fetch(&self) -> Result<Fetched, Fault> {
        let mapping = self.read_definition()?;
        let file_values = match &self.env_file {
            Some(path) => read_env_file(path)?,
            None => BTreeMap::new(),
        };
        let mut document = BTreeMap::new();
        for (key, variable) in &mapping {
            let value = match std::env::var(variable) {
                Ok(value) => Zeroizing::new(value),
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(Fault::input(
                        format!("environment variable {variable} (for key {key:?}) is not UTF-8"),
                        "the document holds text: set the variable to UTF-8 text",
                    ));
                }
                Err(std::env::VarError::NotPresent) => match file_values.get(variable) {
                    Some(value) => value.clone(),
                    None => {
                        let whence = match &self.env_file {
                            Some(path) => format!(" nor in {}", path.display()),
                            None => String::new(),
                        };
                        return Err(Fault::input(
                            format!(
                                "environment variable {variable} (for key {key:?} of {}) is not set{whence}",
                                self.definition.display()
                            ),
                            "set it in the agent container's environment, or add it to --env-file",
                        ));
                    }
                },
            };
            document.insert(key.clone(), value);
        }
        finish(&document)
    }

    fn read_definition(&self) -> Result<Vec<(String, String)>, Fault> {
        let path = &self.definition;
        let bytes = std::fs::read(path).map_err(|e| {
            Fault::input(
                format!(
                    "cannot read the environment definition {}: {e}",
                    path.display()
                ),
                "check the path given to --plaintext-env",
            )
        })?;
        // The definition names variables, it holds no secret; the shared parser is used
        // for its JSON-or-YAML handling and position-only errors.
        let json = document::parse_any(
            &bytes,
            &path.display().to_string(),
            &crate::env::DOCUMENT_LIMITS,
        )?;
        let map: Map<String, Value> = serde_json::from_slice(json.expose())
            .map_err(|e| Fault::Internal(format!("definition re-parse: {e}")))?;
        let mut mapping = Vec::with_capacity(map.len());
        for (key, variable) in map {
            match variable {
                Value::String(name) if is_env_name(&name) => mapping.push((key, name)),
                _ => {
                    return Err(Fault::input(
                        format!(
                            "key {key:?} of {} does not name an environment variable",
                            path.display()
                        ),
                        "map each document key to a variable name, e.g. `db_password: DB_PASSWORD`",
                    ));
                }
            }
        }
        if mapping.is_empty() {
            return Err(Fault::input(
                format!("the environment definition {} maps no keys", path.display()),
                "map each document key to a variable name, e.g. `db_password: DB_PASSWORD`",
            ));
        }
        Ok(mapping)
    }
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
}

/// Parse a dotenv file: `KEY=value` lines, optional `export `, `#` comments, blank
/// lines; values unquoted (trimmed, ` #` starts a comment), in single quotes (taken
/// literally) or in double quotes (`\n`, `\t`, `\r`, `\"`, `\\` escapes; may span
/// lines). No `${VAR}` expansion: a secret that happens to contain `$` stays intact.
/// Errors give a line number only.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, Zeroizing<String>>, Fault> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        Fault::input(
            format!("cannot read the env file {}: {e}", path.display()),
            "check the path given to --env-file (it must be UTF-8 text)",
        )
    })?);
    parse_env(&text).map_err(|line| {
        Fault::input(
            format!("{} line {line} is not KEY=value", path.display()),
            "write KEY=value, KEY='literal' or KEY=\"with \\n escapes\"; the content is not shown here on purpose",
        )
    })
}

/// The dotenv parser behind [`read_env_file`]; `Err` is the 1-based line number.
pub fn parse_env(text: &str) -> Result<BTreeMap<String, Zeroizing<String>>, usize> {
    let mut values = BTreeMap::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    loop {
        // Start of a line: skip blank space and comments.
        while let Some(&c) = chars.peek() {
            match c {
                '\n' => {
                    line += 1;
                    chars.next();
                }
                ' ' | '\t' | '\r' => {
                    chars.next();
                }
                '#' => while chars.next_if(|&c| c != '\n').is_some() {},
                _ => break,
            }
        }
        if chars.peek().is_none() {
            return Ok(values);
        }
        let start_line = line;
        let mut key = String::new();
        while let Some(c) =
            chars.next_if(|&c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            key.push(c);
        }
        if key == "export" && chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            while chars.next_if(|&c| c == ' ' || c == '\t').is_some() {}
            key.clear();
            while let Some(c) =
                chars.next_if(|&c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            {
                key.push(c);
            }
        }
        while chars.next_if(|&c| c == ' ' || c == '\t').is_some() {}
        if key.is_empty() || chars.next() != Some('=') {
            return Err(start_line);
        }
        while chars.next_if(|&c| c == ' ' || c == '\t').is_some() {}
        let mut value = Zeroizing::new(String::new());
        match chars.peek() {
            Some(&quote @ ('\'' | '"')) => {
                chars.next();
                // Single quotes are literal; double quotes take the usual escapes.
                quoted(&mut chars, quote, &mut value, &mut line).map_err(|()| start_line)?;
                rest_of_line(&mut chars).map_err(|()| start_line)?;
            }
            _ => {
                let mut previous = ' ';
                while let Some(c) = chars.next_if(|&c| c != '\n') {
                    if c == '#' && (previous == ' ' || previous == '\t') {
                        while chars.next_if(|&c| c != '\n').is_some() {}
                        break;
                    }
                    value.push(c);
                    previous = c;
                }
                let trimmed = Zeroizing::new(value.trim_end().to_string());
                value = trimmed;
            }
        }
        values.insert(key, value);
    }
}

/// A quoted value up to its closing `quote`, counting the lines it spans. Inside double
/// quotes `\n`, `\t`, `\r` and `\"`, `\\`, `\'`, `\$` are escapes; any other backslash is
/// kept. `Err` when the quote is never closed.
fn quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    quote: char,
    value: &mut String,
    line: &mut usize,
) -> Result<(), ()> {
    loop {
        match chars.next().ok_or(())? {
            c if c == quote => return Ok(()),
            '\\' if quote == '"' => match chars.next().ok_or(())? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'r' => value.push('\r'),
                c @ ('"' | '\\' | '\'' | '$') => value.push(c),
                c => {
                    value.push('\\');
                    value.push(c);
                }
            },
            c => {
                if c == '\n' {
                    *line += 1;
                }
                value.push(c);
            }
        }
    }
}

/// After a closing quote: only blanks or a comment until the end of the line.
fn rest_of_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<(), ()> {
    while chars
        .next_if(|&c| c == ' ' || c == '\t' || c == '\r')
        .is_some()
    {}
    match chars.peek() {
        None | Some('\n') => Ok(()),
        Some('#') => {
            while chars.next_if(|&c| c != '\n').is_some() {}
            Ok(())
        }
        Some(_) => Err(()),
    }
}

/// Which kind of object `--plaintext-secret`/`--plaintext-configmap` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeObjectKind {
    Secret,
    ConfigMap,
}

impl KubeObjectKind {
    fn name(self) -> &'static str {
        match self {
            KubeObjectKind::Secret => "Secret",
            KubeObjectKind::ConfigMap => "ConfigMap",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            KubeObjectKind::Secret => "--plaintext-secret",
            KubeObjectKind::ConfigMap => "--plaintext-configmap",
        }
    }
}

/// `--plaintext-secret NS/NAME[#KEY]` and `--plaintext-configmap NS/NAME[#KEY]`: the
/// old KUBERNETES source. Without `#KEY`, every key of the object becomes a document key
/// (its value a string); with `#KEY` (the old `read_key`), that one key's value must be
/// a JSON or YAML document and is served as is.
///
/// Binary content is refused, naming the key: a Secret value that is not UTF-8, or any
/// ConfigMap `binaryData` key. Serving it base64-encoded would hand the application a
/// value that differs from what it read before the switch, silently.
pub struct PlaintextKubeSource {
    pub kind: KubeObjectKind,
    pub object: SecretRef,
    pub cluster: ClusterSource,
    pub backoff: Backoff,
}

impl PlaintextKubeSource {
    pub async fn fetch(&self) -> Result<Fetched, Fault> {
        let (client, _) = crate::kube::connect(&self.cluster).await?;
        let (ns, name) = (&self.object.namespace, &self.object.name);
        let label = format!("{} {ns}/{name}", self.kind.name());
        let not_found = |e: KubeError| match e {
            // KubeError's own not-found message speaks of sealed Secrets and `seal`.
            KubeError::NotFound { .. } => KubeError::Refused {
                object: label.clone(),
                code: 404,
                message: format!(
                    "{label} does not exist (create it, or fix {})",
                    self.kind.flag()
                ),
            },
            other => other,
        };
        // key -> Ok(text) or Err(()) for binary content.
        let entries: BTreeMap<String, Result<Zeroizing<String>, ()>> = match self.kind {
            KubeObjectKind::Secret => {
                let secrets = Secrets::new(client);
                let secret = retry("read Secret", self.backoff, || secrets.get(ns, name))
                    .await
                    .map_err(not_found)?;
                secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(key, bytes)| {
                        // Moved, not copied: the bytes become the text, or are wiped.
                        let text = String::from_utf8(bytes.0)
                            .map(Zeroizing::new)
                            .map_err(|e| drop(Zeroizing::new(e.into_bytes())));
                        (key, text)
                    })
                    .collect()
            }
            KubeObjectKind::ConfigMap => {
                let configmaps = ConfigMaps::new(client);
                let configmap = retry("read ConfigMap", self.backoff, || configmaps.get(ns, name))
                    .await
                    .map_err(not_found)?;
                let mut entries: BTreeMap<_, _> = configmap
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(key, text)| (key, Ok(Zeroizing::new(text))))
                    .collect();
                for (key, _) in configmap.binary_data.unwrap_or_default() {
                    entries.insert(key, Err(()));
                }
                entries
            }
        };
        let binary = |key: &str| {
            Fault::input(
                format!("key {key:?} of {label} holds binary data"),
                "the document holds text: store the value as UTF-8 text (or base64 it yourself and decode it in the application)",
            )
        };
        if let Some(key) = &self.object.data_key {
            let text = match entries.get(key) {
                Some(Ok(text)) => text,
                Some(Err(())) => return Err(binary(key)),
                None => {
                    return Err(Fault::input(
                        format!("{label} has no key {key:?}"),
                        format!("check the #KEY of {} (case matters)", self.kind.flag()),
                    ));
                }
            };
            let plaintext = document::parse_any(
                text.as_bytes(),
                &format!("{label}#{key}"),
                &crate::env::DOCUMENT_LIMITS,
            )?;
            return Ok(Fetched {
                plaintext,
                key_version: None,
            });
        }
        if entries.is_empty() {
            return Err(Fault::input(
                format!("{label} has no data"),
                "add the keys the application needs to it",
            ));
        }
        let mut document = BTreeMap::new();
        for (key, text) in entries {
            match text {
                Ok(text) => document.insert(key, text),
                Err(()) => return Err(binary(&key)),
            };
        }
        finish(&document)
    }
}

/// The served document, `{"key":"value",...}` in key order, written straight into a
/// plaintext buffer: the values never pass through a `serde_json::Value`.
fn finish(document: &BTreeMap<String, Zeroizing<String>>) -> Result<Fetched, Fault> {
    let size: usize = document.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    let mut out = PlaintextBuf::with_capacity(size + 2);
    out.push(b'{');
    for (i, (key, value)) in document.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, key.as_str())
            .and_then(|()| {
                out.push(b':');
                serde_json::to_writer(&mut out, value.as_str())
            })
            .map_err(|e| Fault::Internal(format!("document: {e}")))?;
    }
    out.push(b'}');
    Ok(Fetched {
        plaintext: out.into_plaintext(),
        key_version: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<(String, String)> {
        parse_env(text)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect()
    }

    #[test]
    fn dotenv_quoting_comments_and_export() {
        let text = "# comment\n\nA=plain value # comment\nexport B='lit $X \\n'\nC=\"multi\nline \\\"q\\\" \\n\"\nD=\nE=a#b\n";
        assert_eq!(
            parsed(text),
            [
                ("A".into(), "plain value".into()),
                ("B".into(), "lit $X \\n".into()),
                ("C".into(), "multi\nline \"q\" \n".into()),
                ("D".into(), "".into()),
                ("E".into(), "a#b".into()),
            ]
        );
    }

    #[test]
    fn dotenv_errors_give_the_line() {
        assert_eq!(parse_env("A=1\nnot a line\n").unwrap_err(), 2);
        assert_eq!(parse_env("A=1\n\nB=\"open\n").unwrap_err(), 3);
        assert_eq!(parse_env("A='x' trailing\n").unwrap_err(), 1);
    }
}
