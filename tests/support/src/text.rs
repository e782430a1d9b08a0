//! Small conversions and test documents the suites share.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// Base64 back to bytes; panics on bad input (the test made it).
pub fn unb64(text: &str) -> Vec<u8> {
    STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {text}"))
}

/// `bytes` as JSON, or a panic that shows them.
pub fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// A secret value no output may contain unless asked for: `sz-sentinel-` and 16 random
/// hex digits.
pub fn sentinel() -> String {
    format!("sz-sentinel-{:016x}", fastrand::u64(..))
}

/// A JSON document carrying `secret` as `db_password`.
pub fn doc_with(secret: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"db_password": secret, "api_key": "k-123", "port": 5432})).unwrap()
}

/// The `accessor=...` a Vault login logged.
pub fn logged_accessor(log: &str) -> String {
    let at = log.find("accessor=").expect("no accessor in the log");
    log[at + "accessor=".len()..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
        .next()
        .unwrap()
        .to_string()
}
