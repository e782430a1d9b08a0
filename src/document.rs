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
//! A hostile document costs bounded memory and time: the caller's [`DocumentLimits`]
//! (secret-zero's are in `env.rs`) cap the bytes read, the nesting, and YAML's nodes,
//! aliases, alias replays and scalar text, through serde-saphyr's own budget; each
//! breach is one line naming the limit, never content (docs/fuzzing.md lists them).
//!
//! Nothing here prints or logs content. The raw bytes read are held in wiping buffers;
//! short-lived parser copies (serde-saphyr's events and strings) are freed at once and
//! wiped by the binary's zero-on-free allocator.

use std::io::Read;
use std::path::Path;

use secret_zero_client::{
    CompactJson, DUPLICATE_KEY, DocumentLimits, JsonError, JsonErrorKind, Plaintext, PlaintextBuf,
    check_object, position,
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

const CONTENT_HIDDEN: &str = "fix the document; its content is not shown here on purpose";

const OVER_LIMIT: &str = "a secret document is small and flat: this one looks built to exhaust \
                          memory; the limits are listed in docs/fuzzing.md";

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
/// JSON object, or with `format` YAML a mapping, converted to JSON. At most
/// `limits.bytes` are read; the raw bytes are wiped on return.
pub fn read(
    path: &Path,
    format: InputFormat,
    limits: &DocumentLimits,
) -> Result<Plaintext, DocumentError> {
    let stdin = path == Path::new("-");
    let source = if stdin {
        "the document on stdin".to_string()
    } else {
        path.display().to_string()
    };
    let bytes = read_input(path, stdin, &source, limits.bytes)?;
    parse(bytes.expose(), format, &source, limits)
}

fn read_input(
    path: &Path,
    stdin: bool,
    source: &str,
    max: usize,
) -> Result<PlaintextBuf, DocumentError> {
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
        let size = usize::try_from(size).unwrap_or(max);
        (Box::new(file), size.min(max) + 1)
    };
    let mut bytes = PlaintextBuf::with_capacity(capacity);
    let mut chunk = Zeroizing::new([0u8; 16 * 1024]);
    loop {
        // Never more than one byte past the limit: the buffer (sized for that) does
        // not grow, and a huge input costs no more than the limit.
        let room = (max + 1 - bytes.len()).min(chunk.len());
        let n = match input.read(&mut chunk[..room]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(cannot(e)),
        };
        bytes.extend_from_slice(&chunk[..n]);
        if bytes.len() > max {
            return Err(too_large(source, max));
        }
    }
    Ok(bytes)
}

fn too_large(source: &str, max: usize) -> DocumentError {
    DocumentError::new(
        format!("{source} is larger than {}", size(max)),
        "a Kubernetes Secret holds at most 1 MiB: seal a document under about 768 KiB",
    )
}

/// A byte count as the limits are written: `16 MiB`, `4096 bytes`.
fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// Check `bytes` and return the JSON to seal: a JSON object as given, or a YAML mapping
/// as compact JSON. `source` names the document in errors, which give the position,
/// never the content.
pub fn parse(
    bytes: &[u8],
    format: InputFormat,
    source: &str,
    limits: &DocumentLimits,
) -> Result<Plaintext, DocumentError> {
    if bytes.len() > limits.bytes {
        return Err(too_large(source, limits.bytes));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(empty(source, Reader::Seal));
    }
    match format {
        InputFormat::Json => json_object(bytes, source, Reader::Seal),
        InputFormat::Yaml => yaml_mapping(bytes, source, limits),
    }
}

/// A document in either format, told apart the way the old tool did: a JSON object
/// when its first significant byte is `{`, else YAML (of which JSON is a subset). For
/// the `serve` sources (plaintext files, `#KEY` values, environment definitions).
pub fn parse_any(
    bytes: &[u8],
    source: &str,
    limits: &DocumentLimits,
) -> Result<Plaintext, DocumentError> {
    if bytes.len() > limits.bytes {
        return Err(too_large(source, limits.bytes));
    }
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(empty(source, Reader::Other)),
        Some(b'{') => json_object(bytes, source, Reader::Other),
        Some(_) => yaml_mapping(bytes, source, limits),
    }
}

/// The YAML parser's options for a document from outside: no snippet of the document
/// in errors, a repeated key refused, and the budget of `limits` (nesting, nodes,
/// aliases and what their replays add). `inject` reads manifests with them too.
pub fn yaml_options(limits: &DocumentLimits) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = limits.depth;
    // The scanner's own cap on `[` and `{`: it reads ahead of the budget's count, so in
    // flow style this is what trips.
    budget.flow_nesting_limit = limits.depth;
    budget.max_nodes = limits.yaml_nodes;
    budget.max_aliases = limits.yaml_aliases;
    budget.max_total_scalar_bytes = limits.yaml_scalar_bytes;
    budget.max_recorded_anchor_bytes = limits.yaml_scalar_bytes;
    budget.max_recorded_anchor_events = limits.yaml_alias_events;
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = limits.yaml_alias_events;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits = alias_limits;
    // A snippet would keep a cropped copy of the document inside the error.
    options.with_snippet = false;
    // The default, made explicit: a repeated key is an error, not a silent choice.
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options
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
    if e.kind() == JsonErrorKind::Syntax && e.reason() == "recursion limit exceeded" {
        return DocumentError::new(
            format!(
                "{source} nests deeper than {JSON_DEPTH} levels (line {}, column {})",
                e.line(),
                e.column()
            ),
            OVER_LIMIT,
        );
    }
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

/// What serde_json's fixed recursion limit (128) lets through: arrays and objects
/// nested deeper than this are refused.
const JSON_DEPTH: usize = 127;

/// A YAML mapping converted to JSON. Errors give the position, never the content.
fn yaml_mapping(
    bytes: &[u8],
    source: &str,
    limits: &DocumentLimits,
) -> Result<Plaintext, DocumentError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = position(bytes, e.valid_up_to());
        DocumentError::new(
            format!("{source} is not UTF-8 text (line {line}, column {column})"),
            "save the document as UTF-8",
        )
    })?;
    let json: CompactJson = serde_saphyr::from_str_with_options(text, yaml_options(limits))
        .map_err(|e| yaml_error(&e, source, limits))?;
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
fn yaml_error(e: &serde_saphyr::Error, source: &str, limits: &DocumentLimits) -> DocumentError {
    let at = e
        .location()
        .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
        .unwrap_or_default();
    if let Some(limit) = over_limit(e, limits) {
        return DocumentError::new(format!("{source} {limit}{at}"), OVER_LIMIT);
    }
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

/// Which of the limits a YAML error is, said as the rest of a sentence.
fn over_limit(mut e: &serde_saphyr::Error, limits: &DocumentLimits) -> Option<String> {
    use serde_saphyr::Error;
    use serde_saphyr::budget::BudgetBreach;
    use serde_saphyr::localizer::ExternalMessageSource;
    while let Error::AliasError { error, .. } = e {
        e = error;
    }
    Some(match e {
        Error::Budget { breach, .. } => match breach {
            BudgetBreach::Depth { .. } => format!("nests deeper than {} levels", limits.depth),
            BudgetBreach::Nodes { .. } => format!("has more than {} YAML nodes", limits.yaml_nodes),
            BudgetBreach::Aliases { .. } => {
                format!("has more than {} YAML aliases", limits.yaml_aliases)
            }
            BudgetBreach::ScalarBytes { .. } | BudgetBreach::RecordedAnchorBytes { .. } => {
                format!(
                    "has more than {} of text, alias replays included",
                    size(limits.yaml_scalar_bytes)
                )
            }
            BudgetBreach::RecordedAnchorEvents { .. } => format!(
                "has aliases that expand to more than {} events",
                limits.yaml_alias_events
            ),
            BudgetBreach::AliasAnchorRatio { .. } => {
                "uses its anchors more than 10 times each on average (100 aliases or more)"
                    .to_string()
            }
            // The others are counts only (events, anchors, scalar bytes, documents).
            other => format!("is over the YAML parser's budget: {other:?}"),
        },
        Error::AliasReplayLimitExceeded { .. } | Error::AliasExpansionLimitExceeded { .. } => {
            format!(
                "has aliases that expand to more than {} events",
                limits.yaml_alias_events
            )
        }
        // The scanner's nesting cap (flow collections), a fixed text of the parser.
        Error::ExternalMessage { source, msg, .. }
            if matches!(**source, ExternalMessageSource::Parser(_))
                && msg == "recursion limit exceeded" =>
        {
            format!("nests deeper than {} levels", limits.depth)
        }
        Error::AliasReplayStackDepthExceeded { .. } => {
            "has aliases nested too deep in one another".to_string()
        }
        _ => return None,
    })
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

    /// The binary's limits (env.rs), which this bottom module cannot import.
    const LIMITS: DocumentLimits = DocumentLimits {
        bytes: 16 * 1024 * 1024,
        depth: 64,
        yaml_nodes: 250_000,
        yaml_aliases: 10_000,
        yaml_alias_events: 100_000,
        yaml_scalar_bytes: 16 * 1024 * 1024,
    };

    fn parsed(text: &str, format: InputFormat) -> Result<Plaintext, String> {
        parse(text.as_bytes(), format, "doc", &LIMITS)
            .map_err(|e| format!("{e} (hint: {})", e.hint()))
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
                parse_any(doc.as_bytes(), "doc", &LIMITS)
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
        let err = parse(b"a: \xff\n", InputFormat::Yaml, "doc", &LIMITS).unwrap_err();
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
                parse_any(doc.as_bytes(), "doc", &LIMITS)
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
        let json = parse_any(b"  {\"b\": 1, \"a\": 2}", "doc", &LIMITS).unwrap();
        assert_eq!(json.expose(), b"  {\"b\": 1, \"a\": 2}");
        let yaml = parse_any(b"b: 1\na: 2\n", "doc", &LIMITS).unwrap();
        assert_eq!(yaml.expose(), br#"{"a":2,"b":1}"#);
        let err = parse_any(b"{\"a\": oops}", "doc", &LIMITS).unwrap_err();
        assert_eq!(err.hint(), CONTENT_HIDDEN);
        assert!(
            err.to_string()
                .starts_with("doc is not valid JSON: expected value (line 1")
        );
        let err = parse_any(b"[1, 2]", "doc", &LIMITS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "doc is not a YAML mapping (line 1, column 1)"
        );
        assert_eq!(
            parse_any(b" \n", "doc", &LIMITS).unwrap_err().to_string(),
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
            read(&file, InputFormat::Yaml, &LIMITS).unwrap().expose(),
            br#"{"a":1}"#
        );
        let err = read(&file, InputFormat::Json, &LIMITS).unwrap_err();
        assert!(err.to_string().contains("is not valid JSON"), "{err}");
        let missing = dir.join("missing.json");
        let err = read(&missing, InputFormat::Json, &LIMITS).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read {}: ", missing.display())),
            "{err}"
        );
        assert!(err.hint().contains("--from-file -"));
        let big = dir.join("big.json");
        let mut content = vec![b' '; LIMITS.bytes];
        content[0] = b'{';
        content.push(b'}');
        std::fs::write(&big, &content).unwrap();
        let err = read(&big, InputFormat::Json, &LIMITS).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{} is larger than 16 MiB", big.display())
        );
        content.pop();
        content[LIMITS.bytes - 1] = b'}';
        std::fs::write(&big, &content).unwrap();
        assert_eq!(
            read(&big, InputFormat::Json, &LIMITS).unwrap().len(),
            LIMITS.bytes
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
    fn nesting_stops_after_127_levels_of_json_and_64_of_yaml() {
        let json = |depth: usize| format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        let flow = |depth: usize| format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth));
        assert!(parsed(&json(127), InputFormat::Json).is_ok());
        assert!(parsed(&flow(64), InputFormat::Yaml).is_ok());
        let err = parsed(&json(128), InputFormat::Json).unwrap_err();
        assert!(
            err.starts_with("doc nests deeper than 127 levels (line 1, column"),
            "{err}"
        );
        let err = parsed(&flow(65), InputFormat::Yaml).unwrap_err();
        assert!(
            err.starts_with("doc nests deeper than 64 levels (line 1, column"),
            "{err}"
        );
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(position("ab\ncé d".as_bytes(), "ab\ncé ".len()), (2, 4));
        assert_eq!(first_yaml_node("%YAML 1.2\n---\n  - x"), (3, 3));
        assert_eq!(first_yaml_node("--- [x]"), (1, 5));
    }
}
