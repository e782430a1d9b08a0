//! The JSON document rules, one policy for every reader: seal, the agent's sources, the
//! decrypted-document check, the dotenv and `--key` rendering, and applications.
//!
//! A document is valid when it parses as JSON, is a JSON object (decided here from its
//! first significant byte, because serde_json's type errors quote the value) and no
//! object in it, at any depth, has the same key twice: parsers disagree on which of two
//! duplicates wins, so the application could see another value than the one sealed.
//!
//! Errors are a kind and a position, never content: serde_json's syntax messages are
//! fixed texts ("expected `,` or `}`"), anything else it says is dropped. The key names
//! collected to find duplicates are wiped once the object is read.

use std::cell::Cell;
use std::collections::HashSet;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use zeroize::Zeroize;

use crate::plaintext::{Plaintext, PlaintextBuf};

/// What is wrong with a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonErrorKind {
    /// Nothing but whitespace.
    Empty,
    /// Not JSON; [`JsonError::reason`] says what the parser expected.
    Syntax,
    /// An object, at any depth, has a key twice.
    DuplicateKey,
    /// Valid JSON, but not an object.
    NotObject(JsonType),
}

/// The type of a JSON value that is not an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    /// `[...]`
    Array,
    /// `"..."`
    String,
    /// `true` or `false`
    Boolean,
    /// `null`
    Null,
    /// A number.
    Number,
}

impl JsonType {
    /// The type with its article, as it reads in a sentence: "an array", "null".
    pub fn as_str(self) -> &'static str {
        match self {
            JsonType::Array => "an array",
            JsonType::String => "a string",
            JsonType::Boolean => "a boolean",
            JsonType::Null => "null",
            JsonType::Number => "a number",
        }
    }
}

/// Why a document breaks the rules: a kind and a 1-based position, never a value.
///
/// [`JsonError::describe`] makes the one-line message with the caller's name for the
/// document; `Display` uses "the document".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    kind: JsonErrorKind,
    reason: String,
    line: usize,
    column: usize,
}

/// The fixed text of a duplicate key: the [`JsonError::reason`] of
/// [`JsonErrorKind::DuplicateKey`], and the "unexpected" part of the error
/// [`CompactJson`] raises through the format's deserializer, so that its reader can tell
/// it apart.
pub const DUPLICATE_KEY: &str = "duplicate key in an object";

impl JsonError {
    /// What is wrong.
    pub fn kind(&self) -> JsonErrorKind {
        self.kind
    }

    /// A fixed text for the problem: the parser's expectation ("expected `,` or `}`"),
    /// "duplicate key in an object", "JSON an array, not an object", "empty".
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The line of the problem (1-based).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column of the problem (1-based). For syntax errors and duplicate keys it
    /// is the parser's (in bytes), for a non-object the first character of the value.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The message with `subject` naming the document, e.g. `app.json is not valid
    /// JSON: expected `,` or `}` (line 2, column 3)`, `app.json is JSON an array, not
    /// an object (line 1, column 1)`, `app.json is empty`.
    pub fn describe(&self, subject: &str) -> String {
        let (line, column) = (self.line, self.column);
        match self.kind {
            JsonErrorKind::Empty => format!("{subject} is empty"),
            JsonErrorKind::Syntax | JsonErrorKind::DuplicateKey => format!(
                "{subject} is not valid JSON: {} (line {line}, column {column})",
                self.reason
            ),
            JsonErrorKind::NotObject(_) => {
                format!(
                    "{subject} is {} (line {line}, column {column})",
                    self.reason
                )
            }
        }
    }

    fn new(kind: JsonErrorKind, reason: impl Into<String>, line: usize, column: usize) -> Self {
        JsonError {
            kind,
            reason: reason.into(),
            line,
            column,
        }
    }
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe("the document"))
    }
}

impl std::error::Error for JsonError {}

/// Check that `bytes` is a JSON object with no duplicate key at any depth.
pub fn check_object(bytes: &[u8]) -> Result<(), JsonError> {
    check(bytes, true, None)
}

/// Check that `bytes` is JSON (of any type) with no duplicate key at any depth.
pub(crate) fn check_value(bytes: &[u8]) -> Result<(), JsonError> {
    check(bytes, false, None)
}

/// Why [`object_entries`] refused a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntriesError {
    /// The document breaks the rules; a duplicate here is in a nested object.
    #[error(transparent)]
    Json(#[from] JsonError),

    /// A top-level key is given twice. Its name (cut to 64 characters) is here for
    /// callers that show key names; [`check_object`] never gives it.
    #[error("the document has the key {0:?} more than once")]
    DuplicateKey(String),
}

/// The top-level entries of a JSON object in document order, the values borrowed
/// from `doc` as raw JSON text. The whole document is held to the rules of
/// [`check_object`] first.
pub fn object_entries(doc: &[u8]) -> Result<Vec<(String, &RawValue)>, EntriesError> {
    let top_duplicate = Cell::new(None);
    if let Err(e) = check(doc, true, Some(&top_duplicate)) {
        return Err(match top_duplicate.take() {
            Some(name) => EntriesError::DuplicateKey(name),
            None => EntriesError::Json(e),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(doc);
    // The document passed `check` above, so these errors are not expected; they are
    // still reduced to a position.
    let entries = de
        .deserialize_map(EntriesVisitor)
        .map_err(|e| reduce(&e, false))?;
    de.end().map_err(|e| reduce(&e, false))?;
    Ok(entries)
}

fn check(
    bytes: &[u8],
    object: bool,
    top_duplicate: Option<&Cell<Option<String>>>,
) -> Result<(), JsonError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(JsonError::new(JsonErrorKind::Empty, "empty", 1, 1));
    }
    let duplicate = Cell::new(false);
    let seed = NoDuplicateKeys {
        duplicate: &duplicate,
        top_duplicate,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    seed.deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| reduce(&e, duplicate.get()))?;
    if !object {
        return Ok(());
    }
    let at = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let kind = match bytes[at] {
        b'{' => return Ok(()),
        b'[' => JsonType::Array,
        b'"' => JsonType::String,
        b't' | b'f' => JsonType::Boolean,
        b'n' => JsonType::Null,
        _ => JsonType::Number,
    };
    let (line, column) = position(bytes, at);
    Err(JsonError::new(
        JsonErrorKind::NotObject(kind),
        format!("JSON {}, not an object", kind.as_str()),
        line,
        column,
    ))
}

/// A serde_json error reduced to a fixed reason and its position: its message may
/// quote content for anything but syntax errors.
fn reduce(e: &serde_json::Error, duplicate: bool) -> JsonError {
    use serde_json::error::Category;
    let (line, column) = (e.line(), e.column());
    if duplicate {
        return JsonError::new(JsonErrorKind::DuplicateKey, DUPLICATE_KEY, line, column);
    }
    let reason = match e.classify() {
        Category::Syntax | Category::Eof => {
            let text = e.to_string();
            match text.rsplit_once(" at line ") {
                Some((reason, _)) => reason.to_string(),
                None => text,
            }
        }
        Category::Data | Category::Io => "invalid JSON".to_string(),
    };
    JsonError::new(JsonErrorKind::Syntax, reason, line, column)
}

/// Line and column (1-based, columns in characters) of byte `at`: how every error of
/// the document rules gives a place without quoting the content.
pub fn position(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = before[line_start..]
        .iter()
        .filter(|&&b| (b & 0xC0) != 0x80)
        .count()
        + 1;
    (line, column)
}

/// Keys go into error messages and logs; keep a hostile one short.
pub(crate) fn shorten(key: &str) -> String {
    const MAX: usize = 64;
    match key.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &key[..cut]),
        None => key.to_string(),
    }
}

/// Walks a JSON value and refuses an object with a key twice. Nothing is kept but the
/// keys of the objects being read, wiped afterwards. `duplicate` tells the error apart
/// from serde_json's own; `top_duplicate`, when given, receives the name of a repeated
/// top-level key.
#[derive(Clone, Copy)]
struct NoDuplicateKeys<'a> {
    duplicate: &'a Cell<bool>,
    top_duplicate: Option<&'a Cell<Option<String>>>,
}

impl NoDuplicateKeys<'_> {
    fn nested(self) -> Self {
        NoDuplicateKeys {
            top_duplicate: None,
            ..self
        }
    }
}

impl<'de> DeserializeSeed<'de> for NoDuplicateKeys<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicateKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self.nested())?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut result = Ok(());
        loop {
            let key = match map.next_key::<String>() {
                Ok(Some(key)) => key,
                Ok(None) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            if let Some(mut key) = seen.replace(key) {
                if let Some(top) = self.top_duplicate {
                    top.set(Some(shorten(&key)));
                }
                key.zeroize();
                self.duplicate.set(true);
                result = Err(de::Error::custom(DUPLICATE_KEY));
                break;
            }
            if let Err(e) = map.next_value_seed(self.nested()) {
                result = Err(e);
                break;
            }
        }
        // Key names can be telling too: wipe them rather than leave them to the allocator.
        for mut key in seen.drain() {
            key.zeroize();
        }
        result
    }
}

/// Bounds on one document from outside, so that a hostile one costs bounded memory and
/// time: the bytes read, the nesting depth, and for YAML the nodes and aliases as
/// written, the events alias replays add, and the scalar text in all (replays
/// included). The secret-zero binary's values are named in its `env.rs`
/// (docs/fuzzing.md lists them). JSON's depth is serde_json's own recursion limit
/// (127 levels pass), whatever `depth` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentLimits {
    /// Bytes of the document as written.
    pub bytes: usize,
    /// Mappings and sequences nested in one another (YAML).
    pub depth: usize,
    /// YAML nodes as written: scalars, mappings and sequences.
    pub yaml_nodes: usize,
    /// YAML aliases (`*name`) as written.
    pub yaml_aliases: usize,
    /// Events replayed from aliases (and recorded for anchors), in all.
    pub yaml_alias_events: usize,
    /// Bytes of YAML scalar text, alias replays included.
    pub yaml_scalar_bytes: usize,
}

/// A document read through another self-describing serde format (secret-zero's YAML
/// reader uses it) and written as compact JSON, under the same rules: two keys of one
/// mapping that become the same JSON key (`1` and `"1"` in YAML) are refused, at any
/// depth, with `serde::de::Error::invalid_value(Unexpected::Other(DUPLICATE_KEY), ..)`
/// raised while the second key is read (so a format that knows where that key is can
/// say so).
///
/// The JSON is written straight into a [`PlaintextBuf`] without building a tree of
/// values; the keys of each mapping are sorted, as a `serde_json::Value` would write
/// them. Mapping keys must be scalars; values that JSON cannot hold (non-finite
/// floats) become `null`, as in `serde_json::Value`.
pub struct CompactJson(PlaintextBuf);

impl CompactJson {
    /// Whether the document is a JSON object (a mapping at the top).
    pub fn is_object(&self) -> bool {
        self.0.expose().first() == Some(&b'{')
    }

    /// The compact JSON.
    pub fn into_plaintext(self) -> Plaintext {
        self.0.into_plaintext()
    }
}

impl std::fmt::Debug for CompactJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CompactJson([REDACTED {} bytes])", self.0.len())
    }
}

impl<'de> serde::Deserialize<'de> for CompactJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut out = PlaintextBuf::with_capacity(256);
        Transcode { out: &mut out }.deserialize(deserializer)?;
        Ok(CompactJson(out))
    }
}

/// Writes the value it visits into `out` as compact JSON.
struct Transcode<'a> {
    out: &'a mut PlaintextBuf,
}

impl Transcode<'_> {
    fn json<E: de::Error>(&mut self, value: &(impl serde::Serialize + ?Sized)) -> Result<(), E> {
        // Writing into memory cannot fail; a number or string always serializes.
        serde_json::to_writer(&mut *self.out, value).map_err(|_| E::custom("cannot write JSON"))
    }
}

impl<'de> DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a value JSON can hold")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<(), E> {
        self.json(&v)
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<(), E> {
        self.json(&v)
    }

    fn visit_i128<E: de::Error>(mut self, v: i128) -> Result<(), E> {
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(v), _) => self.json(&v),
            (_, Ok(v)) => self.json(&v),
            _ => Err(E::custom("number out of range")),
        }
    }

    fn visit_u128<E: de::Error>(mut self, v: u128) -> Result<(), E> {
        match u64::try_from(v) {
            Ok(v) => self.json(&v),
            Err(_) => Err(E::custom("number out of range")),
        }
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<(), E> {
        if v.is_finite() {
            self.json(&v)
        } else {
            self.out.extend_from_slice(b"null");
            Ok(())
        }
    }

    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<(), E> {
        self.json(v)
    }

    fn visit_string<E: de::Error>(mut self, mut v: String) -> Result<(), E> {
        let written = self.json(v.as_str());
        v.zeroize();
        written
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push(b'[');
        let mut first = true;
        loop {
            let comma = self.out.len();
            if !first {
                self.out.push(b',');
            }
            if seq
                .next_element_seed(Transcode {
                    out: &mut *self.out,
                })?
                .is_none()
            {
                // No element after all: take the comma back.
                self.out.truncate(comma);
                break;
            }
            first = false;
        }
        self.out.push(b']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Each value is written apart, so the entries can be sorted by key once all are
        // read; the buffers wipe themselves, the keys are wiped below.
        let mut entries: Vec<(String, PlaintextBuf)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let result = (|| {
            while let Some(key) = map.next_key_seed(NewKey { seen: &seen })? {
                seen.insert(key.clone());
                entries.push((key, PlaintextBuf::with_capacity(64)));
                let (_, value) = entries.last_mut().expect("just pushed");
                map.next_value_seed(Transcode { out: value })?;
            }
            Ok(())
        })();
        if result.is_ok() {
            entries.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
            self.out.push(b'{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                serde_json::to_writer(&mut *self.out, key.as_str())
                    .map_err(|_| de::Error::custom("cannot write JSON"))?;
                self.out.push(b':');
                self.out.extend_from_slice(value.expose());
            }
            self.out.push(b'}');
        }
        for (mut key, _) in entries {
            key.zeroize();
        }
        for mut key in seen.drain() {
            key.zeroize();
        }
        result
    }
}

/// A mapping key as a JSON key (a string), refused when the mapping already has it.
struct NewKey<'a> {
    seen: &'a HashSet<String>,
}

impl NewKey<'_> {
    fn check<E: de::Error>(&self, key: &str) -> Result<(), E> {
        if self.seen.contains(key) {
            return Err(E::invalid_value(de::Unexpected::Other(DUPLICATE_KEY), self));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for NewKey<'_> {
    type Value = String;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NewKey<'_> {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("each key of a mapping once")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<String, E> {
        self.check(key)?;
        Ok(key.to_owned())
    }

    fn visit_string<E: de::Error>(self, mut key: String) -> Result<String, E> {
        if let Err(e) = self.check(&key) {
            key.zeroize();
            return Err(e);
        }
        Ok(key)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(doc: &str) -> JsonError {
        check_object(doc.as_bytes()).unwrap_err()
    }

    #[test]
    fn objects_pass_at_any_depth() {
        check_object(br#" {"a": {"b": [1, {"c": null}], "c": 2}, "b": "x"} "#).unwrap();
        // The same key in different objects is fine.
        check_object(br#"{"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 2}]}"#).unwrap();
    }

    #[test]
    fn syntax_errors_keep_the_parsers_reason_and_position_only() {
        let e = err("{\"password\": \"hunter2\",\n  oops}");
        assert_eq!(e.kind(), JsonErrorKind::Syntax);
        assert_eq!(
            e.describe("doc"),
            "doc is not valid JSON: key must be a string (line 2, column 3)"
        );
        for doc in [
            r#"{"a": "hunter2" oops}"#,
            r#"{"a": 1} trailing-hunter2"#,
            "{\"a\": \"hunter2",
            "hunter2",
        ] {
            let e = err(doc);
            assert_eq!(e.kind(), JsonErrorKind::Syntax, "{doc}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        assert_eq!(err(" \n\t").kind(), JsonErrorKind::Empty);
        assert_eq!(err(" \n\t").describe("doc"), "doc is empty");
    }

    #[test]
    fn non_objects_are_named_by_type_and_position() {
        let e = err("\n  [\"hunter2\"]");
        assert_eq!(e.kind(), JsonErrorKind::NotObject(JsonType::Array));
        assert_eq!(
            e.describe("doc"),
            "doc is JSON an array, not an object (line 2, column 3)"
        );
        for (doc, kind) in [
            ("\"hunter2\"", JsonType::String),
            ("true", JsonType::Boolean),
            ("null", JsonType::Null),
            ("-1.5", JsonType::Number),
        ] {
            let e = err(doc);
            assert_eq!(e.kind(), JsonErrorKind::NotObject(kind));
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        // Any JSON value passes the value check.
        check_value(b"[1, \"x\"]").unwrap();
        assert_eq!(
            check_value(br#"[{"a": 1, "a": 2}]"#).unwrap_err().kind(),
            JsonErrorKind::DuplicateKey
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_the_top_and_nested_without_names() {
        for doc in [
            "{\"hunter2\": \"sentinel-1\",\n \"hunter2\": \"sentinel-2\"}",
            "{\"a\": {\"hunter2\": \"sentinel-1\",\n \"hunter2\": 2}}",
            "{\"a\": [1, {\"b\": 1}, {\"hunter2\": 1,\n \"hunter2\": \"sentinel-2\"}]}",
            // Escapes do not hide a duplicate: both keys are "ab".
            "{\"x\": {\"ab\": 1,\n \"a\\u0062\": 2}}",
        ] {
            let e = err(doc);
            assert_eq!(e.kind(), JsonErrorKind::DuplicateKey, "{doc}");
            let text = e.describe("doc");
            assert!(
                text.starts_with(
                    "doc is not valid JSON: duplicate key in an object (line 2, column "
                ),
                "{text}"
            );
            assert!(
                !text.contains("hunter2") && !text.contains("sentinel"),
                "{text}"
            );
            assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
        }
    }

    #[test]
    fn entries_borrow_values_and_name_a_repeated_top_level_key() {
        let doc = br#"{"b": {"x": [1]}, "a": "it's"}"#;
        let entries = object_entries(doc).unwrap();
        let flat: Vec<(&str, &str)> = entries.iter().map(|(k, v)| (k.as_str(), v.get())).collect();
        assert_eq!(flat, [("b", r#"{"x": [1]}"#), ("a", r#""it's""#)]);

        assert_eq!(
            object_entries(br#"{"K": "sentinel-1", "K": "sentinel-2"}"#).unwrap_err(),
            EntriesError::DuplicateKey("K".into())
        );
        let long = "k".repeat(100);
        let doc = format!("{{\"{long}\": 1, \"{long}\": 2}}");
        let Err(EntriesError::DuplicateKey(name)) = object_entries(doc.as_bytes()) else {
            panic!("expected a duplicate");
        };
        assert_eq!(name, format!("{}...", "k".repeat(64)));

        // Nested: the rules' error, without a name.
        let e = object_entries(br#"{"K": {"n": "sentinel", "n": 1}}"#).unwrap_err();
        let EntriesError::Json(e) = e else {
            panic!("expected a JSON error, got {e:?}");
        };
        assert_eq!(e.kind(), JsonErrorKind::DuplicateKey);
        assert!(matches!(
            object_entries(b"[1]"),
            Err(EntriesError::Json(e)) if e.kind() == JsonErrorKind::NotObject(JsonType::Array)
        ));
    }

    fn compact(text: &str) -> Result<String, String> {
        serde_json::from_str::<CompactJson>(text)
            .map(|c| String::from_utf8(c.into_plaintext().expose().to_vec()).unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn compact_json_sorts_keys_and_writes_every_type() {
        let out = compact(
            r#" {"b": [1, -2, 1.5, true, null, "q\"\u00e9", [], {}], "a": {"z": 1, "y": [{"k": "v"}]}} "#,
        );
        assert_eq!(
            out.unwrap(),
            r#"{"a":{"y":[{"k":"v"}],"z":1},"b":[1,-2,1.5,true,null,"q\"é",[],{}]}"#
        );
        let c = serde_json::from_str::<CompactJson>("[1]").unwrap();
        assert!(!c.is_object());
        assert!(!format!("{c:?}").contains('1'));
        assert!(
            serde_json::from_str::<CompactJson>("{}")
                .unwrap()
                .is_object()
        );
    }

    #[test]
    fn compact_json_refuses_duplicates_at_any_depth() {
        for doc in [
            r#"{"k": "sentinel-1", "k": "sentinel-2"}"#,
            r#"{"a": [{"k": 1, "k": 2}]}"#,
        ] {
            let e = compact(doc).unwrap_err();
            assert!(
                e.starts_with(&format!(
                    "invalid value: {DUPLICATE_KEY}, expected each key"
                )),
                "{e}"
            );
            assert!(!e.contains("sentinel"), "{e}");
        }
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(position("ab\ncé d".as_bytes(), "ab\ncé ".len()), (2, 4));
        assert_eq!(position(b"abc", 0), (1, 1));
    }
}
