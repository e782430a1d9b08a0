//! A YAML stream in, a YAML (or JSON) stream out, with the pod templates injected.
//!
//! Documents that the mutation does not change are copied through byte for byte
//! (comments, key order and quoting included); a document that changes is written
//! anew, with keys sorted as `kubectl get -o yaml` writes them. The input is split at
//! `---` and `...` lines, which YAML forbids inside any scalar at the start of a line,
//! so the split never cuts a document.

use crate::document::{self, ManifestFormat};
use serde_json::{Value, json};

use super::{InjectError, Options, inject_object};

/// The result of [`inject_yaml`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Pod templates injected.
    pub injected: usize,
    pub warnings: Vec<String>,
}

/// One document of the input: its separator line (if any) and its text.
struct Chunk<'a> {
    marker: &'a str,
    body: &'a str,
    /// 1-based line of the body's first line in the input.
    line: usize,
}

/// Inject every input (`(label, text)`; the label names it in messages).
pub fn inject_yaml(
    inputs: &[(String, String)],
    options: &Options,
    format: ManifestFormat,
) -> Result<Rendered, InjectError> {
    let mut out = Rendered {
        text: String::new(),
        injected: 0,
        warnings: Vec::new(),
    };
    let mut objects = Vec::new();
    let several = inputs.len() > 1;
    for (label, text) in inputs {
        let mut file_out = String::new();
        let mut number = 0;
        for chunk in split(text) {
            file_out.push_str(chunk.marker);
            if is_blank(chunk.body) {
                file_out.push_str(chunk.body);
                continue;
            }
            number += 1;
            let place = if several || label != "-" {
                format!("{label}: document {number}")
            } else {
                format!("document {number}")
            };
            let original = parse(chunk.body, &place, chunk.line)?;
            if original.is_null() {
                file_out.push_str(chunk.body);
                continue;
            }
            let mut object = original.clone();
            let report = inject_object(&mut object, options, &place)?;
            out.injected += report.injected;
            out.warnings.extend(report.warnings);
            if object == original {
                file_out.push_str(chunk.body);
            } else {
                file_out.push_str(&to_yaml(&object)?);
            }
            objects.push(object);
        }
        if !out.text.is_empty() {
            if !out.text.ends_with('\n') {
                out.text.push('\n');
            }
            if split(&file_out).next().is_none_or(|c| c.marker.is_empty()) {
                out.text.push_str("---\n");
            }
        }
        out.text.push_str(&file_out);
    }
    if format == ManifestFormat::Json {
        let value = if objects.len() == 1 {
            objects.pop().unwrap_or_default()
        } else {
            json!({"apiVersion": "v1", "kind": "List", "items": objects})
        };
        out.text = serde_json::to_string_pretty(&value).map_err(|e| InjectError::Malformed {
            place: "output".into(),
            message: e.to_string(),
        })?;
        out.text.push('\n');
    }
    Ok(out)
}

/// One YAML document as a value, held to the document limits (env.rs) as the document
/// reader is: nesting, nodes, aliases, alias replays and scalar text (aliases repeat
/// what they name, so a small document could otherwise fill memory).
fn parse(body: &str, place: &str, first_line: usize) -> Result<Value, InjectError> {
    let options = document::yaml_options(&crate::env::DOCUMENT_LIMITS);
    serde_saphyr::from_str_with_options(body, options).map_err(|e| InjectError::Malformed {
        place: place.to_string(),
        message: parse_message(&e, first_line),
    })
}

/// The YAML text of one object, as the output writes it.
pub fn to_yaml(object: &Value) -> Result<String, InjectError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    // Long one-line values (a URL, a shell command) stay on one line rather than
    // being folded at 80 columns.
    options.folded_wrap_chars = usize::MAX / 2;
    serde_saphyr::to_string_with_options(object, options).map_err(|e| InjectError::Malformed {
        place: "output".into(),
        message: format!("cannot write YAML: {e}"),
    })
}

fn split(text: &str) -> impl Iterator<Item = Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut marker = "";
    let mut body_start = 0;
    let mut body_line = 1;
    let mut offset = 0;
    for (line_no, line) in (1..).zip(text.split_inclusive('\n')) {
        let next = offset + line.len();
        if let Some(rest) = separator(line) {
            chunks.push(Chunk {
                marker,
                body: &text[body_start..offset],
                line: body_line,
            });
            if rest.trim().is_empty() || rest.trim_start().starts_with('#') {
                marker = line;
                body_start = next;
                body_line = line_no + 1;
            } else {
                // `--- {kind: Pod, ...}`: the document starts on the marker's line.
                marker = &line[..3];
                body_start = offset + 3;
                body_line = line_no;
            }
        }
        offset = next;
    }
    chunks.push(Chunk {
        marker,
        body: &text[body_start..],
        line: body_line,
    });
    chunks.into_iter()
}

/// For a `---` or `...` line, what follows the marker on that line.
fn separator(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("---")
        .or_else(|| line.strip_prefix("..."))?;
    (rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n'])).then_some(rest)
}

fn is_blank(body: &str) -> bool {
    body.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    })
}

fn parse_message(e: &serde_saphyr::Error, first_line: usize) -> String {
    let text = e.to_string();
    let mut first = text.lines().next().unwrap_or("invalid YAML").trim();
    // The parser's own "error: line L column C: " counts from the document, not the file.
    if let Some(rest) = first.strip_prefix("error: line ")
        && let Some((_, message)) = rest.split_once(": ")
    {
        first = message;
    }
    match e.location() {
        Some(l) => format!(
            "not valid YAML at line {}, column {}: {first}",
            l.line() as usize + first_line - 1,
            l.column()
        ),
        None => format!("not valid YAML: {first}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_every_byte() {
        for text in [
            "",
            "a: 1\n",
            "---\na: 1\n---\nb: 2",
            "a: 1\n--- # two\nb: 2\n...\n---\nc: |\n  ---x\n",
            "--- {a: 1}\n---\n",
        ] {
            let joined: String = split(text)
                .map(|c| format!("{}{}", c.marker, c.body))
                .collect();
            assert_eq!(joined, text);
        }
        let chunks: Vec<_> = split("a: 1\n---\nb: 2\n").collect();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].body, "b: 2\n");
        assert_eq!(chunks[1].line, 3);
    }
}
