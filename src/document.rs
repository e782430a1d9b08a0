//! Plaintext documents as people write them: read from a file or stdin, JSON or YAML,
//! checked against the one set of document rules and handed on as compact JSON in a
//! [`Plaintext`].
//!
//! The JSON rules (a JSON object, no key twice in any object, errors with a position and
//! never a value) are `secret_zero_client`'s, so `seal`, every `serve` source, the
//! agent's rendering and applications agree on what a document is. YAML is converted
//! with the same rules: a duplicate key, or two keys that become the same JSON key
//! (`1` and `"1"`), is refused with its position.
//!
//! Nothing here prints or logs content. The raw bytes read are held in wiping buffers;
//! short-lived parser copies (serde-saphyr's events and strings) are freed at once and
//! wiped by the binary's zero-on-free allocator.

use std::io::Read;
use std::path::Path;

use secret_zero_client::{
    CompactJson, DUPLICATE_KEY, JsonError, JsonErrorKind, Plaintext, PlaintextBuf, check_object,
    position,
};
use zeroize::Zeroizing;

/// How the plaintext document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// A JSON object, sealed byte for byte as given.
    Json,
    /// A YAML mapping, converted to compact JSON before sealing.
    Yaml,
}

/// How the Secret manifest is printed (`seal --output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ManifestFormat {
    // No doc comments on the variants: clap would print them in `--help`, which lists
    // these two bare.
    Yaml,
    Json,
}

/// The most read from a file or stdin; anything near it cannot fit a Secret anyway.
const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

const CONTENT_HIDDEN: &str = "fix the document; its content is not shown here on purpose";

/// A document that cannot be used: one line naming the document and what is wrong
/// (with a line and column where there is one), and a hint. Never any content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DocumentError {
    message: String,
    hint: &'static str,
}

impl DocumentError {
    fn new(message: String, hint: &'static str) -> DocumentError {
        DocumentError { message, hint }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> &str {
        self.hint
    }
}

/// Who is reading: the hints of `seal` name its flags, the others do not.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reader {
    Seal,
    Other,
}

/// `seal --from-file`: read the document from `path` (`-` is stdin) and check it is a
/// JSON object, or with `format` YAML a mapping, converted to JSON. At most 16 MiB is
/// read; the raw bytes are wiped on return.
pub fn read(path: &Path, format: InputFormat) -> Result<Plaintext, DocumentError> {
    let stdin = path == Path::new("-");
    let source = if stdin {
        "the document on stdin".to_string()
    } else {
        path.display().to_string()
    };
    let bytes = read_input(path, stdin, &source)?;
    parse(bytes.expose(), format, &source)
}

fn read_input(path: &Path, stdin: bool, source: &str) -> Result<PlaintextBuf, DocumentError> {
    let cannot = |e: std::io::Error| {
        DocumentError::new(
            format!("cannot read {source}: {e}"),
            "give the document with --from-file PATH, or --from-file - and pipe it in",
        )
    };
    let (mut input, capacity): (Box<dyn Read>, usize) = if stdin {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() {
            eprintln!("secret-zero: reading the document from the terminal; end it with Ctrl-D");
        }
        (Box::new(std::io::stdin().lock()), 64 * 1024)
    } else {
        let file = std::fs::File::open(path).map_err(cannot)?;
        // Room for the whole file (and the byte that shows it is too large), so the
        // buffer does not have to grow.
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let size = usize::try_from(size).unwrap_or(MAX_INPUT_BYTES);
        (Box::new(file), size.min(MAX_INPUT_BYTES) + 1)
    };
    let mut bytes = PlaintextBuf::with_capacity(capacity);
    let mut chunk = Zeroizing::new([0u8; 16 * 1024]);
    loop {
        let n = match input.read(&mut chunk[..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(cannot(e)),
        };
        bytes.extend_from_slice(&chunk[..n]);
        if bytes.len() > MAX_INPUT_BYTES {
            return Err(DocumentError::new(
                format!("{source} is larger than {} MiB", MAX_INPUT_BYTES >> 20),
                "a Kubernetes Secret holds at most 1 MiB: seal a document under about 768 KiB",
            ));
        }
    }
    Ok(bytes)
}

/// Check `bytes` and return the JSON to seal: a JSON object as given, or a YAML mapping
/// as compact JSON. `source` names the document in errors, which give the position,
/// never the content.
pub fn parse(bytes: &[u8], format: InputFormat, source: &str) -> Result<Plaintext, DocumentError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(empty(source, Reader::Seal));
    }
    match format {
        InputFormat::Json => json_object(bytes, source, Reader::Seal),
        InputFormat::Yaml => yaml_mapping(bytes, source),
    }
}

/// A document in either format, told apart the way the old tool did: a JSON object
/// when its first significant byte is `{`, else YAML (of which JSON is a subset). For
/// the `serve` sources (plaintext files, `#KEY` values, environment definitions).
pub fn parse_any(bytes: &[u8], source: &str) -> Result<Plaintext, DocumentError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(empty(source, Reader::Other)),
        Some(b'{') => json_object(bytes, source, Reader::Other),
        Some(_) => yaml_mapping(bytes, source),
    }
}

/// Whether two documents are the same JSON value (object key order, whitespace and
/// number spelling aside). The parsed trees live only inside this call.
pub fn same_document(a: &Plaintext, b: &Plaintext) -> bool {
    let parse = |p: &Plaintext| serde_json::from_slice::<serde_json::Value>(p.expose()).ok();
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn empty(source: &str, reader: Reader) -> DocumentError {
    DocumentError::new(
        format!("{source} is empty"),
        match reader {
            Reader::Seal => "seal a JSON object such as {\"password\": \"...\"}",
            Reader::Other => {
                "give a JSON object such as {\"password\": \"...\"}, or a YAML mapping"
            }
        },
    )
}

fn json_object(bytes: &[u8], source: &str, reader: Reader) -> Result<Plaintext, DocumentError> {
    check_object(bytes).map_err(|e| json_error(&e, source, reader))?;
    // An exact-size copy: `Plaintext::new` keeps it without copying again.
    Ok(Plaintext::new(bytes.to_vec()))
}

fn json_error(e: &JsonError, source: &str, reader: Reader) -> DocumentError {
    let hint = match (e.kind(), reader) {
        (JsonErrorKind::Empty, _) => return empty(source, reader),
        (JsonErrorKind::NotObject(_), Reader::Seal) => "seal a JSON object: {\"key\": value, ...}",
        (JsonErrorKind::NotObject(_), Reader::Other) => "give a JSON object: {\"key\": value, ...}",
        (JsonErrorKind::Syntax | JsonErrorKind::DuplicateKey, Reader::Seal) => {
            "fix the document; its content is not shown here on purpose; pass --input-format \
             yaml for a YAML document"
        }
        (JsonErrorKind::Syntax | JsonErrorKind::DuplicateKey, Reader::Other) => CONTENT_HIDDEN,
    };
    DocumentError::new(e.describe(source), hint)
}

/// A YAML mapping converted to JSON. Errors give the position, never the content.
fn yaml_mapping(bytes: &[u8], source: &str) -> Result<Plaintext, DocumentError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = position(bytes, e.valid_up_to());
        DocumentError::new(
            format!("{source} is not UTF-8 text (line {line}, column {column})"),
            "save the document as UTF-8",
        )
    })?;
    let mut options = serde_saphyr::Options::default();
    // A snippet would keep a cropped copy of the document inside the error.
    options.with_snippet = false;
    // The default, made explicit: a repeated key is an error, not a silent choice.
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    let json: CompactJson =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| yaml_error(&e, source))?;
    if !json.is_object() {
        let (line, column) = first_yaml_node(text);
        return Err(DocumentError::new(
            format!("{source} is not a YAML mapping (line {line}, column {column})"),
            "seal a mapping of keys to values",
        ));
    }
    Ok(json.into_plaintext())
}

/// serde-saphyr's own messages can quote the document: only the position is kept, and
/// whether the problem is a duplicate key.
fn yaml_error(e: &serde_saphyr::Error, source: &str) -> DocumentError {
    let at = e
        .location()
        .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
        .unwrap_or_default();
    if is_duplicate_key(e) {
        return DocumentError::new(
            format!("{source} is not valid YAML: duplicate key in a mapping{at}"),
            "give each key of a mapping once (parsers disagree on which of two wins); the \
             content is not shown here on purpose",
        );
    }
    DocumentError::new(
        format!("{source} is not valid YAML, or has no JSON equivalent{at}"),
        CONTENT_HIDDEN,
    )
}

/// A key repeated as written (serde-saphyr's check), or two keys that are the same
/// once they are JSON keys (the JSON rules' check, raised through serde-saphyr).
fn is_duplicate_key(mut e: &serde_saphyr::Error) -> bool {
    while let serde_saphyr::Error::AliasError { error, .. } = e {
        e = error;
    }
    match e {
        serde_saphyr::Error::DuplicateMappingKey { .. } => true,
        serde_saphyr::Error::SerdeInvalidValue { unexpected, .. } => unexpected == DUPLICATE_KEY,
        _ => false,
    }
}

/// Where the first YAML node starts: past blank lines, comments, directives and `---`.
fn first_yaml_node(text: &str) -> (usize, usize) {
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let skip = trimmed.is_empty()
            || trimmed.starts_with('#')
            || trimmed.starts_with('%')
            || trimmed.trim_end() == "---";
        if !skip {
            let indent = line.chars().count() - trimmed.chars().count();
            let column = match trimmed.strip_prefix("--- ") {
                Some(rest) => indent + 4 + (rest.len() - rest.trim_start().len()),
                None => indent,
            };
            return (index + 1, column + 1);
        }
    }
    (1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str, format: InputFormat) -> Result<Plaintext, String> {
        parse(text.as_bytes(), format, "doc").map_err(|e| format!("{e} (hint: {})", e.hint()))
    }

    fn json_text(p: &Plaintext) -> &str {
        std::str::from_utf8(p.expose()).unwrap()
    }

    #[test]
    fn json_objects_are_sealed_as_given() {
        let doc = "{\"b\": 1,\n \"a\": [true, null]}\n";
        assert_eq!(
            parsed(doc, InputFormat::Json).unwrap().expose(),
            doc.as_bytes()
        );
    }

    #[test]
    fn bad_json_gives_the_position_never_the_content() {
        let err = parsed("{\"password\": \"hunter2\",\n  oops}", InputFormat::Json)
            .err()
            .unwrap();
        assert!(err.contains("line 2, column 3"), "{err}");
        assert!(!err.contains("hunter2") && !err.contains("oops"), "{err}");
        assert!(err.contains("pass --input-format yaml"), "{err}");

        let err = parsed("\n  [\"hunter2\"]", InputFormat::Json)
            .err()
            .unwrap();
        assert!(
            err.starts_with("doc is JSON an array, not an object (line 2, column 3)"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");

        let err = parsed("{\"a\": 1} trailing-hunter2", InputFormat::Json)
            .err()
            .unwrap();
        assert!(!err.contains("hunter2"), "{err}");
        let err = parsed(" \n\t", InputFormat::Json).err().unwrap();
        assert!(
            err.starts_with("doc is empty (hint: seal a JSON object"),
            "{err}"
        );
        let err = parsed(" \n\t", InputFormat::Yaml).err().unwrap();
        assert!(err.starts_with("doc is empty"), "{err}");
    }

    #[test]
    fn duplicate_json_keys_are_refused_at_every_level() {
        for doc in [
            "{\"hunter2\": \"sentinel\",\n \"hunter2\": 2}",
            "{\"a\": {\"hunter2\": 1,\n \"hunter2\": \"sentinel\"}}",
            "{\"a\": [{\"b\": {\"hunter2\": 1,\n \"hunter2\": \"sentinel\"}}]}",
        ] {
            for result in [
                parsed(doc, InputFormat::Json).map(|_| ()),
                parse_any(doc.as_bytes(), "doc")
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            ] {
                let err = result.unwrap_err();
                assert!(
                    err.starts_with(
                        "doc is not valid JSON: duplicate key in an object (line 2, column"
                    ),
                    "{err}"
                );
                assert!(
                    !err.contains("hunter2") && !err.contains("sentinel"),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn yaml_becomes_json() {
        let doc = "# comment\nuser: alice\nport: 5432\nnested:\n  - on: true\n";
        let json = parsed(doc, InputFormat::Yaml).unwrap();
        let value: serde_json::Value = serde_json::from_slice(json.expose()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"user": "alice", "port": 5432, "nested": [{"on": true}]})
        );
        // Compact, keys sorted: what a `serde_json::Value` wrote before.
        assert_eq!(
            json_text(&json),
            r#"{"nested":[{"on":true}],"port":5432,"user":"alice"}"#
        );
        let err = parsed("# c\n\n- hunter2\n", InputFormat::Yaml)
            .err()
            .unwrap();
        assert!(
            err.starts_with("doc is not a YAML mapping (line 3, column 1)"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let err = parsed("a: [hunter2\n", InputFormat::Yaml).err().unwrap();
        assert!(!err.contains("hunter2") && err.contains("line"), "{err}");
        assert!(err.starts_with("doc is not valid YAML, or has no JSON equivalent (line"));
        let err = parsed("a: 1\n\u{0}\u{ff}", InputFormat::Yaml);
        assert!(err.is_err());
        let err = parse(b"a: \xff\n", InputFormat::Yaml, "doc").unwrap_err();
        assert_eq!(err.to_string(), "doc is not UTF-8 text (line 1, column 4)");
    }

    #[test]
    fn yaml_types_and_anchors_convert_like_json_values() {
        let doc = "i: -3\nu: 18446744073709551615\nf: 1.5\nt: yes\nn: ~\ns: 'it''s \"q\"'\n\
                   base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\nlist: [1, [2], {}]\n";
        let json = parsed(doc, InputFormat::Yaml).unwrap();
        let expected = serde_json::json!({
            "i": -3, "u": 18446744073709551615u64, "f": 1.5, "t": true, "n": null,
            "s": "it's \"q\"", "base": {"x": 1}, "merged": {"x": 1, "y": 2},
            "list": [1, [2], {}],
        });
        let value: serde_json::Value = serde_json::from_slice(json.expose()).unwrap();
        assert_eq!(value, expected);
        assert_eq!(json_text(&json), serde_json::to_string(&expected).unwrap());
    }

    #[test]
    fn duplicate_yaml_keys_are_refused_with_a_position() {
        for (doc, line) in [
            ("hunter2: a\nhunter2: sentinel\n", 2),
            ("a:\n  b: 1\n  hunter2: x\n  hunter2: sentinel\n", 4),
            ("a: {hunter2: 1, hunter2: sentinel}\n", 1),
            ("list:\n  - k: 1\n    k: sentinel\n", 3),
            // Different YAML keys that are the same JSON key.
            ("1: a\n\"1\": sentinel\n", 2),
            ("a:\n  - true: x\n    \"true\": sentinel\n", 3),
        ] {
            for result in [
                parsed(doc, InputFormat::Yaml).map(|_| ()),
                parse_any(doc.as_bytes(), "doc")
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            ] {
                let err = result.unwrap_err();
                let prefix = format!(
                    "doc is not valid YAML: duplicate key in a mapping (line {line}, column"
                );
                assert!(err.starts_with(&prefix), "{doc:?}: {err}");
                assert!(
                    !err.contains("hunter2") && !err.contains("sentinel"),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn parse_any_tells_json_from_yaml() {
        let json = parse_any(b"  {\"b\": 1, \"a\": 2}", "doc").unwrap();
        assert_eq!(json.expose(), b"  {\"b\": 1, \"a\": 2}");
        let yaml = parse_any(b"b: 1\na: 2\n", "doc").unwrap();
        assert_eq!(yaml.expose(), br#"{"a":2,"b":1}"#);
        let err = parse_any(b"{\"a\": oops}", "doc").unwrap_err();
        assert_eq!(err.hint(), CONTENT_HIDDEN);
        assert!(
            err.to_string()
                .starts_with("doc is not valid JSON: expected value (line 1")
        );
        let err = parse_any(b"[1, 2]", "doc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "doc is not a YAML mapping (line 1, column 1)"
        );
        assert_eq!(
            parse_any(b" \n", "doc").unwrap_err().to_string(),
            "doc is empty"
        );
    }

    #[test]
    fn files_and_their_errors() {
        let dir = std::env::temp_dir().join(format!("secret-zero-document-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("doc.yaml");
        std::fs::write(&file, "a: 1\n").unwrap();
        assert_eq!(
            read(&file, InputFormat::Yaml).unwrap().expose(),
            br#"{"a":1}"#
        );
        let err = read(&file, InputFormat::Json).unwrap_err();
        assert!(err.to_string().contains("is not valid JSON"), "{err}");
        let missing = dir.join("missing.json");
        let err = read(&missing, InputFormat::Json).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read {}: ", missing.display())),
            "{err}"
        );
        assert!(err.hint().contains("--from-file -"));
        let big = dir.join("big.json");
        let mut content = vec![b' '; MAX_INPUT_BYTES];
        content[0] = b'{';
        content.push(b'}');
        std::fs::write(&big, &content).unwrap();
        let err = read(&big, InputFormat::Json).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{} is larger than 16 MiB", big.display())
        );
        content.pop();
        content[MAX_INPUT_BYTES - 1] = b'}';
        std::fs::write(&big, &content).unwrap();
        assert_eq!(
            read(&big, InputFormat::Json).unwrap().len(),
            MAX_INPUT_BYTES
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn canonical_comparison_ignores_layout() {
        let a = Plaintext::new(br#"{"a": 1, "b": {"c": [1, 2]}}"#.to_vec());
        let b = Plaintext::new(b"{\"b\":{\"c\":[1,2]},\"a\":1}".to_vec());
        let c = Plaintext::new(br#"{"a": 2, "b": {"c": [1, 2]}}"#.to_vec());
        assert!(same_document(&a, &b));
        assert!(!same_document(&a, &c));
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(position("ab\ncé d".as_bytes(), "ab\ncé ".len()), (2, 4));
        assert_eq!(first_yaml_node("%YAML 1.2\n---\n  - x"), (3, 3));
        assert_eq!(first_yaml_node("--- [x]"), (1, 5));
    }
}
