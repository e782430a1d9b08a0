//! Rendering a delivered JSON document for the shell: dotenv lines and single values.
//!
//! Everything rendered here is plaintext, so it goes into [`SecretBuf`], a buffer that
//! never leaves a stale copy behind when it grows and is wiped when dropped. Parsing
//! borrows from the document (`RawValue`) instead of building a `serde_json::Value`, so
//! the only other copies are serde_json's own scratch buffers for escaped strings, which
//! the zero-on-free allocator wipes.
//!
//! Error messages never quote a value: serde_json's own messages can (for example
//! "invalid type: string \"...\""), so they are reduced to a position.

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

/// A growable byte buffer for plaintext: growing moves the content into a fresh
/// allocation and wipes the old one, and the whole capacity is wiped on drop.
pub struct SecretBuf(Zeroizing<Vec<u8>>);

impl SecretBuf {
    /// An empty buffer with room for `capacity` bytes before it has to grow.
    pub fn with_capacity(capacity: usize) -> SecretBuf {
        SecretBuf(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    /// Append `bytes`, growing without leaving the old content on the heap.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    /// Append one byte.
    pub fn push(&mut self, byte: u8) {
        self.reserve(1);
        self.0.push(byte);
    }

    /// Make room for `additional` more bytes. `Vec::reserve` would `realloc`, which may
    /// free the old block unwiped; this copies into a new zeroizing block instead.
    pub fn reserve(&mut self, additional: usize) {
        let needed = self.0.len() + additional;
        if needed <= self.0.capacity() {
            return;
        }
        let capacity = needed.max(self.0.capacity().saturating_mul(2)).max(64);
        let mut grown = Zeroizing::new(Vec::with_capacity(capacity));
        grown.extend_from_slice(&self.0);
        // The old block is wiped as `grown` replaces it.
        self.0 = grown;
    }

    /// Drop the first `n` bytes, shifting the rest down in place (no new allocation).
    pub fn discard_front(&mut self, n: usize) {
        let n = n.min(self.0.len());
        self.0.copy_within(n.., 0);
        let len = self.0.len() - n;
        // The tail beyond `len` still holds shifted bytes; zero them before truncating.
        self.0[len..].fill(0);
        self.0.truncate(len);
    }

    /// Keep only the first `len` bytes, wiping the rest.
    pub fn truncate(&mut self, len: usize) {
        if len < self.0.len() {
            self.0[len..].fill(0);
            self.0.truncate(len);
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The buffer itself, still wiped on drop.
    pub fn into_inner(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

/// Why a document cannot be rendered. Messages name keys, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The document does not parse as JSON; the detail is a position only.
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
        }
    }
}

/// Whether `name` can be a shell variable: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_shell_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Render a JSON object as `KEY='value'` lines, safe to `set -a; . FILE` for any value
/// but NUL: values are single-quoted and an embedded `'` becomes `'\''`. Strings are
/// written unescaped; numbers, booleans, null, objects and arrays as their JSON text.
/// Keys keep document order; every key is checked before anything is rendered.
pub fn dotenv(doc: &[u8]) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    let entries = entries(doc)?;
    if let Some((key, _)) = entries.iter().find(|(key, _)| !is_shell_name(key)) {
        return Err(FormatError::InvalidKey(shorten(key)));
    }
    // Unescaping never makes a string longer, so this is enough unless values hide `'`
    // behind `\u0027`; SecretBuf grows safely then.
    let capacity = entries
        .iter()
        .map(|(key, raw)| key.len() + raw.get().len() + 4 + 3 * count_quotes(raw.get()) + 2)
        .sum();
    let mut out = SecretBuf::with_capacity(capacity);
    for (key, raw) in &entries {
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"='");
        write_value(raw, key, &mut out, true)?;
        out.extend_from_slice(b"'\n");
    }
    Ok(out.into_inner())
}

/// The value of the top-level key `name`: a string unescaped and unquoted, anything else
/// as its JSON text. With duplicate keys the last one wins, as in serde_json.
pub fn key_value(doc: &[u8], name: &str) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    let entries = entries(doc)?;
    let Some((key, raw)) = entries.iter().rev().find(|(key, _)| key == name) else {
        return Err(FormatError::MissingKey(shorten(name)));
    };
    let mut out = SecretBuf::with_capacity(raw.get().len());
    write_value(raw, key, &mut out, false)?;
    Ok(out.into_inner())
}

/// The top-level entries of a JSON object, values borrowed from `doc`.
fn entries(doc: &[u8]) -> Result<Vec<(String, &RawValue)>, FormatError> {
    // Decide "not an object" ourselves: serde_json's type errors quote the value.
    match doc.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) => {
            // Still tell "not JSON" from "JSON but not an object" when we can do it
            // without building a value: ignore the content, only check the syntax.
            return match serde_json::from_slice::<de::IgnoredAny>(doc) {
                Ok(_) => Err(FormatError::NotObject),
                Err(e) => Err(not_json(&e)),
            };
        }
        None => return Err(FormatError::NotJson("empty document".into())),
    }
    let mut de = serde_json::Deserializer::from_slice(doc);
    let entries = de
        .deserialize_map(EntriesVisitor)
        .map_err(|e| not_json(&e))?;
    de.end().map_err(|e| not_json(&e))?;
    Ok(entries)
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Vec<(String, &'de RawValue)>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<String>()? {
            let value: &'de RawValue = map.next_value()?;
            out.push((key, value));
        }
        Ok(out)
    }
}

/// Write one value: strings unescaped (quote-escaped when `quoted`), others verbatim.
fn write_value(
    raw: &RawValue,
    key: &str,
    out: &mut SecretBuf,
    quoted: bool,
) -> Result<(), FormatError> {
    let text = raw.get();
    if text.starts_with('"') {
        let mut de = serde_json::Deserializer::from_str(text);
        let sink = StrSink { out, quoted };
        match sink.deserialize(&mut de) {
            Ok(true) => Ok(()),
            Ok(false) => Err(FormatError::Nul(shorten(key))),
            Err(e) => Err(not_json(&e)),
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
    out: &'a mut SecretBuf,
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
fn push_quoted(out: &mut SecretBuf, s: &str) {
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

/// A serde_json error reduced to its kind and position: its message may quote content.
fn not_json(e: &serde_json::Error) -> FormatError {
    let kind = match e.classify() {
        serde_json::error::Category::Eof => "unexpected end",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected content",
        serde_json::error::Category::Io => "read error",
    };
    FormatError::NotJson(format!("{kind} at line {} column {}", e.line(), e.column()))
}

/// Keys go into error messages and logs; keep a hostile one short.
fn shorten(key: &str) -> String {
    const MAX: usize = 64;
    match key.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &key[..cut]),
        None => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(doc: &str) -> Result<String, FormatError> {
        dotenv(doc.as_bytes()).map(|z| String::from_utf8(z.to_vec()).unwrap())
    }

    #[test]
    fn strings_are_single_quoted_with_quotes_escaped() {
        let out = render(r#"{"A":"it's","B":"x\ny","C":"$(id) `id` \\"}"#).unwrap();
        assert_eq!(out, "A='it'\\''s'\nB='x\ny'\nC='$(id) `id` \\'\n");
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
    }

    #[test]
    fn key_value_is_raw_for_strings_and_json_otherwise() {
        let doc = br#"{"s":"it's \"q\"\n","n":7,"o":{"a":[1]},"s":"last"}"#;
        assert_eq!(&key_value(doc, "n").unwrap()[..], b"7");
        assert_eq!(&key_value(doc, "o").unwrap()[..], br#"{"a":[1]}"#);
        assert_eq!(&key_value(doc, "s").unwrap()[..], b"last");
        assert_eq!(
            key_value(doc, "missing"),
            Err(FormatError::MissingKey("missing".into()))
        );
        assert_eq!(
            &key_value(br#"{"s":"it's \"q\"\n"}"#, "s").unwrap()[..],
            b"it's \"q\"\n"
        );
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
    fn secret_buf_grows_and_discards() {
        let mut buf = SecretBuf::with_capacity(1);
        for _ in 0..100 {
            buf.extend_from_slice(b"abc");
        }
        assert_eq!(buf.len(), 300);
        buf.discard_front(297);
        assert_eq!(buf.as_slice(), b"abc");
        buf.truncate(1);
        assert_eq!(buf.as_slice(), b"a");
    }
}
