//! The decoders of Vault's answers (`src/vault/`): login, decrypt, rewrap (single and
//! batch) and key read, as the client applies them to a 2xx body (and, for a batch,
//! to a 400 too).
//!
//! Input: one control byte (which answer, and for a batch its status and item count),
//! then the body. Every `$$` in the body becomes a marker that stands for a token or a
//! secret the body carries.
//!
//! Properties:
//! - no answer is accepted without its required fields (by name, or by position in an
//!   array, which serde also reads a struct from): a login has a non-empty
//!   `auth.client_token` string, a decrypt a `data.plaintext` string whose base64 is
//!   the plaintext returned, a rewrap a `data.ciphertext` string (returned as is), a key
//!   read `data.name`, `data.type`, `data.latest_version` and
//!   `data.min_decryption_version`, a batch exactly one result per item;
//! - an error never holds the marker: a body is never echoed.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use secret_zero::fuzzing::vault::{
    decrypt_answer, key_answer, login_answer, rewrap_answer, rewrap_batch_answer,
};
use serde_json::Value;

const MARKER: &str = "s.Zq7MarkerVv3Kp9";
const PATH: &str = "transit/decrypt/app";

fuzz_target!(|data: &[u8]| {
    let [control, rest @ ..] = data else {
        return;
    };
    let body = replace(rest, b"$$", MARKER.as_bytes());
    // The oracle reads the body as text: serde_json skips an ignored field's string
    // without checking its UTF-8, so the decoders may accept bytes a `Value` refuses.
    let value: Option<Value> = serde_json::from_str(&String::from_utf8_lossy(&body)).ok();
    let field = |path: &[(&str, usize)]| value.as_ref().and_then(|v| at(v, path)).cloned();
    let error = match control % 5 {
        0 => match login_answer(PATH, &body) {
            Ok(login) => {
                let token = field(&[("auth", 0), ("client_token", 0)]);
                assert!(matches!(token, Some(Value::String(t)) if !t.is_empty()));
                drop(login);
                return;
            }
            Err(e) => e,
        },
        1 => match decrypt_answer(PATH, &body) {
            Ok(plaintext) => {
                let Some(Value::String(encoded)) = field(&[("data", 0), ("plaintext", 0)]) else {
                    panic!("a plaintext without data.plaintext");
                };
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .expect("accepted plaintext is base64");
                assert_eq!(plaintext.expose(), &decoded[..]);
                return;
            }
            Err(e) => e,
        },
        2 => match rewrap_answer(PATH, &body) {
            Ok(ciphertext) => {
                let found = field(&[("data", 0), ("ciphertext", 0)]);
                assert_eq!(found, Some(Value::String(ciphertext)));
                return;
            }
            Err(e) => e,
        },
        3 => match key_answer(PATH, &body) {
            Ok(key) => {
                let data = |name, position| field(&[("data", 0), (name, position)]);
                assert_eq!(data("name", 0), Some(Value::String(key.name)));
                assert_eq!(data("type", 1), Some(Value::String(key.key_type)));
                let number = |name, position| data(name, position).and_then(|v| v.as_u64());
                assert_eq!(number("latest_version", 3), Some(key.latest_version));
                assert_eq!(
                    number("min_decryption_version", 4),
                    Some(key.min_decryption_version)
                );
                return;
            }
            Err(e) => e,
        },
        _ => {
            let items = usize::from(control / 5 % 4);
            let status = if control & 0x80 == 0 { 200 } else { 400 };
            match rewrap_batch_answer(PATH, status, &body, items) {
                Ok(results) => {
                    let Some(Value::Array(batch)) = field(&[("data", 0), ("batch_results", 0)])
                    else {
                        panic!("batch results without data.batch_results");
                    };
                    assert_eq!(results.len(), items);
                    assert_eq!(batch.len(), items);
                    for (result, item) in results.iter().zip(&batch) {
                        if let Ok(ciphertext) = result {
                            assert!(!ciphertext.is_empty());
                            let found = at(item, &[("ciphertext", 0)]);
                            assert_eq!(found, Some(&Value::from(ciphertext.as_str())));
                        }
                    }
                    return;
                }
                // A 400 without batch results is Vault's refusal: its own messages are
                // shown by design (status_error), so only 2xx errors are checked.
                Err(_) if status == 400 => return,
                Err(e) => e,
            }
        }
    };
    let text = error.to_string();
    assert!(!text.contains(MARKER), "the body is echoed: {text}");
    assert!(
        !text.contains("Zq7Marker"),
        "part of the body is echoed: {text}"
    );
});

/// The value at `path`: by name in an object, or by position in an array, which serde
/// also reads a struct from (its fields in order; Vault never answers so, and the
/// fields must all be there all the same).
fn at<'v>(mut value: &'v Value, path: &[(&str, usize)]) -> Option<&'v Value> {
    for (name, position) in path {
        value = match value {
            Value::Object(map) => map.get(*name)?,
            Value::Array(items) => items.get(*position)?,
            _ => return None,
        };
    }
    Some(value)
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}
