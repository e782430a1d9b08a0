//! dotenv both ways: the client's rendering of a JSON document as `KEY='value'` lines
//! (`client/src/format.rs`, what `get --format dotenv` and `?format=dotenv` print), and
//! the parser of `--env-file` (`src/source/dev.rs`).
//!
//! Input: one control byte, then a JSON document (rendering) or, with control bit 0,
//! a dotenv file (parsing). For rendering, a marker is spliced into the document at the
//! position the second byte gives.
//!
//! Properties:
//! - rendering then reading the lines back as a POSIX shell does gives every top-level
//!   key in document order with its value: a string unescaped, anything else its JSON
//!   text; and each is what `key_value` gives for that key;
//! - a refusal names at most a key (cut to 64 characters), never a value: with the key
//!   names taken out, it holds no marker;
//! - parsing then writing the values back double-quoted and parsing again gives the
//!   same variables (decode, encode, decode); a refused file names a line it has.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secret_zero::fuzzing::dotenv::{FormatError, dotenv, key_value, object_entries, parse_env};

const MARKER: &[u8] = b"Zq7MarkerVv3Kp9";

fuzz_target!(|data: &[u8]| {
    let [control, rest @ ..] = data else {
        return;
    };
    if control & 1 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            parse_round_trip(text);
        }
        return;
    }
    let [at, rest @ ..] = rest else {
        return;
    };
    let at = usize::from(*at).min(rest.len());
    let mut doc = rest[..at].to_vec();
    doc.extend_from_slice(MARKER);
    doc.extend_from_slice(&rest[at..]);
    render_round_trip(&doc);
});

fn render_round_trip(doc: &[u8]) {
    match dotenv(doc) {
        Ok(lines) => {
            let read = shell_read(lines.expose());
            let entries = object_entries(doc).expect("a rendered document has entries");
            assert_eq!(read.len(), entries.len(), "one line per key");
            for ((key, value), (name, raw)) in read.iter().zip(&entries) {
                assert_eq!(key, name);
                let expected = match serde_json::from_str::<String>(raw.get()) {
                    Ok(text) => text.into_bytes(),
                    Err(_) => raw.get().as_bytes().to_vec(),
                };
                assert_eq!(value, &expected, "the value of {name:?} changed");
                let single = key_value(doc, name).expect("key_value finds a rendered key");
                assert_eq!(single.expose(), &expected[..]);
            }
        }
        Err(e) => {
            let mut text = e.to_string();
            match &e {
                FormatError::InvalidKey(k)
                | FormatError::Nul(k)
                | FormatError::MissingKey(k)
                | FormatError::DuplicateKey(k) => {
                    assert!(k.chars().count() <= 64 + 3, "a key not cut: {k:?}");
                    text = text.replace(&format!("{k:?}"), "");
                }
                FormatError::NotJson(_)
                | FormatError::NotObject
                | FormatError::NestedDuplicateKey { .. } => {}
            }
            assert!(
                !contains(text.as_bytes(), MARKER),
                "a value in an error: {text}"
            );
        }
    }
}

/// `KEY='...'` lines as a POSIX shell reads them: inside single quotes everything is
/// literal, `'\''` closes, adds a quote and reopens.
fn shell_read(out: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut vars = Vec::new();
    let mut rest = out;
    while !rest.is_empty() {
        let eq = rest.iter().position(|&b| b == b'=').expect("KEY=");
        let key = String::from_utf8(rest[..eq].to_vec()).expect("a key is text");
        rest = &rest[eq + 1..];
        let mut value = Vec::new();
        loop {
            assert_eq!(rest.first(), Some(&b'\''), "a value opens a single quote");
            let close = 1 + rest[1..].iter().position(|&b| b == b'\'').expect("closed");
            value.extend_from_slice(&rest[1..close]);
            rest = &rest[close + 1..];
            if let Some(after) = rest.strip_prefix(b"\\'") {
                value.push(b'\'');
                rest = after;
            } else {
                break;
            }
        }
        rest = rest
            .strip_prefix(b"\n")
            .expect("a line ends after its value");
        vars.push((key, value));
    }
    vars
}

fn parse_round_trip(text: &str) {
    match parse_env(text) {
        Ok(vars) => {
            let mut file = String::new();
            for (key, value) in &vars {
                assert!(!key.is_empty());
                file.push_str(key);
                file.push_str("=\"");
                for c in value.chars() {
                    match c {
                        '\\' => file.push_str("\\\\"),
                        '"' => file.push_str("\\\""),
                        '\n' => file.push_str("\\n"),
                        '\r' => file.push_str("\\r"),
                        '\t' => file.push_str("\\t"),
                        c => file.push(c),
                    }
                }
                file.push_str("\"\n");
            }
            let again = parse_env(&file).unwrap_or_else(|line| panic!("line {line} of {file:?}"));
            let a: Vec<(&String, &str)> = vars.iter().map(|(k, v)| (k, v.as_str())).collect();
            let b: Vec<(&String, &str)> = again.iter().map(|(k, v)| (k, v.as_str())).collect();
            assert_eq!(a, b, "decode, encode, decode changed the variables");
        }
        Err(line) => {
            let lines = text.matches('\n').count() + 1;
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
