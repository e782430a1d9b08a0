//! The document reader (`seal --from-file`, the `serve` sources): JSON and YAML, with
//! alias bombs and deep nesting in reach of small inputs.
//!
//! Input: one control byte, one marker position, then the document. A marker is
//! spliced into the document at that position (in a value, a key, a comment, anywhere).
//!
//! Properties:
//! - an accepted document is a JSON object with no key twice (the client's rules);
//!   JSON comes out byte for byte as it went in; YAML comes out as canonical compact
//!   JSON (parsing it and writing it again changes nothing);
//! - an accepted document fits the limits: no more input bytes than `limits.bytes`;
//! - a refusal is one line that names the document and never holds the marker, in its
//!   message or its hint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secret_zero::fuzzing::document::{DOCUMENT_LIMITS, InputFormat, parse, parse_any};
use secret_zero_client::{DocumentLimits, check_object};

const MARKER: &[u8] = b"Zq7MarkerVv3Kp9";

/// Limits small enough for a few kilobytes of input to reach every one of them.
const SMALL: DocumentLimits = DocumentLimits {
    bytes: 2048,
    depth: 12,
    yaml_nodes: 300,
    yaml_aliases: 40,
    yaml_alias_events: 2_000,
    yaml_scalar_bytes: 4096,
};

fuzz_target!(|data: &[u8]| {
    let [control, at, rest @ ..] = data else {
        return;
    };
    let at = usize::from(*at).min(rest.len());
    let mut doc = rest[..at].to_vec();
    doc.extend_from_slice(MARKER);
    doc.extend_from_slice(&rest[at..]);

    let limits = if control & 4 == 0 {
        SMALL
    } else {
        DOCUMENT_LIMITS
    };
    let format = if control & 1 == 0 {
        InputFormat::Json
    } else {
        InputFormat::Yaml
    };
    let (result, json) = if control & 2 == 0 {
        (
            parse(&doc, format, "doc", &limits),
            format == InputFormat::Json,
        )
    } else {
        let first = doc.iter().find(|b| !b.is_ascii_whitespace());
        (parse_any(&doc, "doc", &limits), first == Some(&b'{'))
    };
    match result {
        Ok(plaintext) => {
            let out = plaintext.expose();
            assert!(doc.len() <= limits.bytes, "accepted over the byte limit");
            check_object(out).expect("an accepted document follows the JSON rules");
            if json {
                assert_eq!(out, &doc[..], "JSON must be kept byte for byte");
            } else {
                let value: serde_json::Value = serde_json::from_slice(out).expect("valid JSON");
                let again = serde_json::to_vec(&value).expect("writes");
                assert_eq!(again, out, "YAML must become canonical compact JSON");
            }
        }
        Err(e) => {
            let message = e.to_string();
            let hint = e.hint();
            for text in [message.as_str(), hint] {
                assert!(
                    !contains(text.as_bytes(), MARKER),
                    "content in an error: {text}"
                );
                assert!(!text.contains('\n'), "not one line: {text:?}");
            }
            assert!(message.starts_with("doc "), "{message}");
        }
    }
});

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
