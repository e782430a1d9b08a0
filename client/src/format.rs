//! Rendering a delivered JSON document for the shell: dotenv lines and single values.
//!
//! Everything rendered here is plaintext, so it is built in a [`PlaintextBuf`] and
//! returned as a [`Plaintext`]. Parsing borrows from the document (`RawValue`) instead
//! of building a `serde_json::Value`, so the only other copies are serde_json's own
//! scratch buffers for escaped strings, which the zero-on-free allocator of the
//! secret-zero binary wipes.
//!
//! The document is held to the JSON rules first (see `json.rs`), duplicate keys
//! included. Error messages never quote a value.

use serde::de::{self, DeserializeSeed, Visitor};
use serde_json::value::RawValue;

use crate::json::{self, EntriesError, JsonError, JsonErrorKind};
use crate::plaintext::{Plaintext, PlaintextBuf};

/// How to ask the agent for the document: the `?format=` query value, and
/// `secret-zero get --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum FetchFormat {
    /// The JSON document.
    #[default]
    Json,
    /// KEY='value' lines, safe to `eval` in a shell: plain shell variables, which no child
    /// process inherits (do not `set -a`: it exports them to every child).
    Dotenv,
    /// The bytes as delivered.
    Raw,
}

impl FetchFormat {
    /// The query value: `json`, `dotenv` or `raw`.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchFormat::Json => "json",
            FetchFormat::Dotenv => "dotenv",
            FetchFormat::Raw => "raw",
        }
    }

    /// The format a `?format=` query value asks for; `None` for anything else.
    pub fn from_query(value: &str) -> Option<FetchFormat> {
        match value {
            "json" => Some(FetchFormat::Json),
            "dotenv" => Some(FetchFormat::Dotenv),
            "raw" => Some(FetchFormat::Raw),
            _ => None,
        }
    }
}

impl std::fmt::Display for FetchFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a document cannot be rendered. Messages name keys, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The document does not parse as JSON; the detail is a reason and a position.
    #[error("the document is not valid JSON ({0})")]
    NotJson(String),

    /// The document is JSON but not an object, so it has no keys.
    #[error("the document is not a JSON object")]
    NotObject,

    /// A top-level key that is not a shell variable name (`[A-Za-z_][A-Za-z0-9_]*`).
    #[error("key {0:?} is not a valid shell variable name")]
    InvalidKey(String),

    /// A string value with a NUL character, which no shell variable can hold.
    #[error("the value of key {0:?} contains a NUL character")]
    Nul(String),

    /// `--key NAME` asked for a key the document does not have.
    #[error("the document has no top-level key {0:?}")]
    MissingKey(String),

    /// A top-level key given twice (the name cut to 64 characters).
    #[error("the document has the key {0:?} more than once")]
    DuplicateKey(String),

    /// An object inside the document has a key twice.
    #[error("an object in the document has a key more than once (line {line}, column {column})")]
    NestedDuplicateKey {
        /// The line of the repeated key (1-based).
        line: usize,
        /// The parser's column there (1-based, in bytes).
        column: usize,
    },
}

impl FormatError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            FormatError::NotJson(_) | FormatError::NotObject => {
                "the agent serves raw bytes or a non-object document: use --format raw".into()
            }
            FormatError::InvalidKey(_) => "dotenv needs keys made of letters, digits and '_' \
                 (not starting with a digit); rename the key, or use --format json or --key"
                .into(),
            FormatError::Nul(_) => {
                "a shell variable cannot hold NUL: use --format json or --key for this value".into()
            }
            FormatError::MissingKey(_) => {
                "check the key name (case matters); --format json shows the document".into()
            }
            FormatError::DuplicateKey(_) | FormatError::NestedDuplicateKey { .. } => {
                "parsers disagree on which of two equal keys wins: seal the document again \
                 with every key once (secret-zero seal refuses duplicates)"
                    .into()
            }
        }
    }
}

impl From<JsonError> for FormatError {
    fn from(e: JsonError) -> FormatError {
        match e.kind() {
            JsonErrorKind::Empty => FormatError::NotJson("empty document".into()),
            JsonErrorKind::Syntax => FormatError::NotJson(format!(
                "{}, line {}, column {}",
                e.reason(),
                e.line(),
                e.column()
            )),
            JsonErrorKind::NotObject(_) => FormatError::NotObject,
            JsonErrorKind::DuplicateKey => FormatError::NestedDuplicateKey {
                line: e.line(),
                column: e.column(),
            },
        }
    }
}

impl From<EntriesError> for FormatError {
    fn from(e: EntriesError) -> FormatError {
        match e {
            EntriesError::Json(e) => e.into(),
            EntriesError::DuplicateKey(name) => FormatError::DuplicateKey(name),
        }
    }
}

/// Whether `name` can be a shell variable: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_shell_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Render a JSON object as `KEY='value'` lines, safe to evaluate in a shell for any value
/// but NUL: values are single-quoted and an embedded `'` becomes `'\''`. Strings are
/// written unescaped; numbers, booleans, null, objects and arrays as their JSON text.
/// Keys keep document order; every key is checked before anything is rendered.
pub fn dotenv(doc: &[u8]) -> Result<Plaintext, FormatError> {
    let entries = json::object_entries(doc)?;
    if let Some((key, _)) = entries.iter().find(|(key, _)| !is_shell_name(key)) {
        return Err(FormatError::InvalidKey(json::shorten(key)));
    }
    // Unescaping never makes a string longer, so this is enough unless values hide `'`
    // behind `\u0027`; the buffer grows safely then.
    let capacity = entries
        .iter()
        .map(|(key, raw)| key.len() + raw.get().len() + 4 + 3 * count_quotes(raw.get()) + 2)
        .sum();
    let mut out = PlaintextBuf::with_capacity(capacity);
    for (key, raw) in &entries {
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"='");
        write_value(raw, key, &mut out, true)?;
        out.extend_from_slice(b"'\n");
    }
    Ok(out.into_plaintext())
}

/// The value of the top-level key `name`: a string unescaped and unquoted, anything else
/// as its JSON text.
pub fn key_value(doc: &[u8], name: &str) -> Result<Plaintext, FormatError> {
    key_value_typed(doc, name).map(|value| value.value)
}

/// One top-level value, as [`key_value`] renders it, and whether it was a JSON string
/// (the agent's `?key=` answer is `text/plain` then, `application/json` otherwise).
pub struct KeyValue {
    /// The value: a string unescaped and unquoted, anything else as its JSON text.
    pub value: Plaintext,
    /// The value was a JSON string.
    pub is_string: bool,
}

/// [`key_value`], saying whether the value was a string.
pub fn key_value_typed(doc: &[u8], name: &str) -> Result<KeyValue, FormatError> {
    let entries = json::object_entries(doc)?;
    let Some((key, raw)) = entries.iter().find(|(key, _)| key == name) else {
        return Err(FormatError::MissingKey(json::shorten(name)));
    };
    let mut out = PlaintextBuf::with_capacity(raw.get().len());
    write_value(raw, key, &mut out, false)?;
    Ok(KeyValue {
        value: out.into_plaintext(),
        is_string: raw.get().starts_with('"'),
    })
}

/// Write one value: strings unescaped (quote-escaped when `quoted`), others verbatim.
fn write_value(
    raw: &RawValue,
    key: &str,
    out: &mut PlaintextBuf,
    quoted: bool,
) -> Result<(), FormatError> {
    let text = raw.get();
    if text.starts_with('"') {
        let mut de = serde_json::Deserializer::from_str(text);
        let sink = StrSink { out, quoted };
        match sink.deserialize(&mut de) {
            Ok(true) => Ok(()),
            Ok(false) => Err(FormatError::Nul(json::shorten(key))),
            // Not expected: the document passed the rules. Still position-only.
            Err(e) => Err(FormatError::NotJson(format!(
                "invalid string, line {}, column {}",
                e.line(),
                e.column()
            ))),
        }
    } else if quoted {
        push_quoted(out, text);
        Ok(())
    } else {
        out.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

/// Receives a JSON string straight from the parser and appends it to the buffer.
/// Answers `false` (and writes nothing) when the string holds a NUL.
struct StrSink<'a> {
    out: &'a mut PlaintextBuf,
    quoted: bool,
}

impl<'de> DeserializeSeed<'de> for StrSink<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrSink<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
        if s.contains('\0') {
            return Ok(false);
        }
        if self.quoted {
            push_quoted(self.out, s);
        } else {
            self.out.extend_from_slice(s.as_bytes());
        }
        Ok(true)
    }
}

/// Append `s` for use inside single quotes: `'` closes, escapes and reopens the quote.
fn push_quoted(out: &mut PlaintextBuf, s: &str) {
    for chunk in s.split_inclusive('\'') {
        match chunk.strip_suffix('\'') {
            Some(head) => {
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(b"'\\''");
            }
            None => out.extend_from_slice(chunk.as_bytes()),
        }
    }
}

fn count_quotes(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'\'').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(doc: &str) -> Result<String, FormatError> {
        dotenv(doc.as_bytes()).map(|p| String::from_utf8(p.expose().to_vec()).unwrap())
    }

    fn value(doc: &[u8], name: &str) -> Result<Vec<u8>, FormatError> {
        key_value(doc, name).map(|p| p.expose().to_vec())
    }

    #[test]
    fn strings_are_single_quoted_with_quotes_escaped() {
        let out = render(r#"{"A":"it's","B":"x\ny","C":"$(id) `id` \\"}"#).unwrap();
        assert_eq!(out, "A='it'\\''s'\nB='x\ny'\nC='$(id) `id` \\'\n");
        // Quotes hidden behind escapes make the buffer grow past its estimate.
        let out = render(r#"{"Q":"\u0027\u0027\u0027\u0027"}"#).unwrap();
        assert_eq!(out, "Q=''\\'''\\'''\\'''\\'''\n");
    }

    #[test]
    fn non_strings_are_their_json_text() {
        let out = render(r#"{"N":42,"F":1.5e3,"T":true,"Z":null,"O":{"k":"v'"},"L":[1,2]}"#);
        assert_eq!(
            out.unwrap(),
            "N='42'\nF='1.5e3'\nT='true'\nZ='null'\nO='{\"k\":\"v'\\''\"}'\nL='[1,2]'\n"
        );
    }

    #[test]
    fn invalid_keys_and_nul_are_refused() {
        assert_eq!(
            render(r#"{"OK":"1","bad-key":"2"}"#),
            Err(FormatError::InvalidKey("bad-key".into()))
        );
        assert_eq!(
            render(r#"{"1X":"2"}"#),
            Err(FormatError::InvalidKey("1X".into()))
        );
        assert_eq!(
            render(r#"{"K":"a\u0000b"}"#),
            Err(FormatError::Nul("K".into()))
        );
    }

    #[test]
    fn errors_never_quote_values() {
        let err = render(r#"["sentinel-value"]"#).unwrap_err();
        assert_eq!(err, FormatError::NotObject);
        let err = render(r#"{"K": "sentinel-value" oops}"#).unwrap_err();
        assert!(matches!(err, FormatError::NotJson(_)));
        assert!(!err.to_string().contains("sentinel"), "{err}");
        let err = render(r#""sentinel-value""#).unwrap_err();
        assert_eq!(err, FormatError::NotObject);
        let err = render("sentinel-value").unwrap_err();
        assert!(!err.to_string().contains("sentinel"), "{err}");
        let err = render(r#"{"K":1} trailing-sentinel"#).unwrap_err();
        assert!(!err.to_string().contains("sentinel"), "{err}");
        assert_eq!(
            render("  ").unwrap_err(),
            FormatError::NotJson("empty document".into())
        );
        assert_eq!(
            render("{\"K\": 1,\n oops}").unwrap_err().to_string(),
            "the document is not valid JSON (key must be a string, line 2, column 2)"
        );
    }

    #[test]
    fn key_value_is_raw_for_strings_and_json_otherwise() {
        let doc = br#"{"s":"it's \"q\"\n","n":7,"o":{"a":[1]}}"#;
        assert_eq!(value(doc, "n").unwrap(), b"7");
        assert_eq!(value(doc, "o").unwrap(), br#"{"a":[1]}"#);
        assert_eq!(value(doc, "s").unwrap(), b"it's \"q\"\n");
        assert_eq!(
            value(doc, "missing"),
            Err(FormatError::MissingKey("missing".into()))
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_the_top_and_nested() {
        let top = br#"{"K":"sentinel-1","OTHER":1,"K":"sentinel-2"}"#;
        let nested = b"{\"K\":{\"n\":\"sentinel-1\",\n\"n\":\"sentinel-2\"}}";
        for result in [dotenv(top).map(|_| ()), key_value(top, "OTHER").map(|_| ())] {
            let err = result.unwrap_err();
            assert_eq!(err, FormatError::DuplicateKey("K".into()));
            assert_eq!(
                err.to_string(),
                "the document has the key \"K\" more than once"
            );
            assert!(!err.to_string().contains("sentinel"));
        }
        for result in [
            dotenv(nested).map(|_| ()),
            key_value(nested, "K").map(|_| ()),
        ] {
            let err = result.unwrap_err();
            assert!(
                matches!(err, FormatError::NestedDuplicateKey { line: 2, .. }),
                "{err:?}"
            );
            let text = format!("{err} {err:?} {}", err.hint());
            assert!(
                !text.contains("sentinel") && !text.contains("\"n\""),
                "{text}"
            );
        }
    }

    #[test]
    fn shell_names() {
        for ok in ["A", "_", "a_1", "DB_PASSWORD", "_x9"] {
            assert!(is_shell_name(ok), "{ok}");
        }
        for bad in ["", "1A", "a-b", "a b", "é", "a.b", "A=B"] {
            assert!(!is_shell_name(bad), "{bad}");
        }
    }

    #[test]
    fn fetch_formats_round_trip_through_the_query() {
        for format in [FetchFormat::Json, FetchFormat::Dotenv, FetchFormat::Raw] {
            assert_eq!(FetchFormat::from_query(format.as_str()), Some(format));
            assert_eq!(format.to_string(), format.as_str());
        }
        assert_eq!(FetchFormat::from_query("JSON"), None);
        assert_eq!(FetchFormat::from_query(""), None);
        assert_eq!(FetchFormat::default(), FetchFormat::Json);
    }
}
