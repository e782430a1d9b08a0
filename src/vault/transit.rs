//! Transit: encrypt, decrypt and rewrap (single and batch), and the key operations
//! rotation needs (read, rotate, config, trim).
//!
//! A binding context (`namespace/name`, ARCHITECTURE.md, I9) is passed as text and base64-encoded
//! here, where Vault wants it.

use std::collections::BTreeMap;

use base64::Engine;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::client::{Client, Reply, parse, status_error};
use super::error::VaultError;
use super::token::VaultToken;
use crate::plaintext::Plaintext;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The Transit `context` for a binding such as `shop/app-secrets`: base64 of its bytes.
pub fn context_for(binding: &str) -> String {
    B64.encode(binding.as_bytes())
}

/// The key version a `vault:vN:...` ciphertext was made with.
pub fn ciphertext_version(ciphertext: &str) -> Option<u64> {
    let rest = ciphertext.strip_prefix("vault:v")?;
    let (version, body) = rest.split_once(':')?;
    if body.is_empty() {
        return None;
    }
    version.parse().ok()
}

/// What `GET {mount}/keys/{name}` says about a key (no key material).
#[derive(Debug, Clone, Deserialize)]
pub struct KeyInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub key_type: String,
    #[serde(default)]
    pub derived: bool,
    pub latest_version: u64,
    pub min_decryption_version: u64,
    #[serde(default)]
    pub min_encryption_version: u64,
    #[serde(default)]
    pub min_available_version: u64,
    #[serde(default)]
    pub deletion_allowed: bool,
    /// Version number -> creation time (or a map, for asymmetric keys).
    #[serde(default)]
    pub keys: BTreeMap<String, serde_json::Value>,
}

/// Key settings to change; `None` leaves a setting as it is.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct KeyConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_decryption_version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_encryption_version: Option<u64>,
}

/// One ciphertext to rewrap, with its binding when the key is derived.
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub ciphertext: String,
    /// The binding text (`namespace/name`), not yet base64.
    pub context: Option<String>,
}

#[derive(Serialize)]
struct CipherRequest<'a> {
    ciphertext: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<String>,
}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

#[derive(Deserialize)]
struct CiphertextOut {
    ciphertext: String,
}

#[derive(Deserialize)]
struct PlaintextOut {
    #[serde(deserialize_with = "from_base64")]
    plaintext: Plaintext,
}

/// Decode Vault's base64 `plaintext` straight from the parser's view of the answer
/// into a [`Plaintext`]: no `String` of it is ever made.
fn from_base64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Plaintext, D::Error> {
    struct Base64;
    impl serde::de::Visitor<'_> for Base64 {
        type Value = Plaintext;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a base64 string")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Plaintext, E> {
            Plaintext::from_base64(text.as_bytes()).map_err(|_| E::custom("not base64"))
        }
    }
    d.deserialize_str(Base64)
}

#[derive(Deserialize)]
struct BatchOut {
    batch_results: Vec<BatchResult>,
}

#[derive(Deserialize)]
struct BatchResult {
    #[serde(default)]
    ciphertext: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Refuse names that would change the request path.
fn segment<'a>(what: &str, name: &'a str) -> Result<&'a str, VaultError> {
    let bad = name.is_empty()
        || name.contains(['?', '#', ' '])
        || name.split('/').any(|part| part.is_empty() || part == "..");
    if bad {
        return Err(VaultError::Config(format!("invalid {what} name {name:?}")));
    }
    Ok(name)
}

fn key_path(mount: &str, op: &str, key: &str) -> Result<String, VaultError> {
    let mount = segment("transit mount", mount.trim_matches('/'))?;
    let key = segment("transit key", key)?;
    if key.contains('/') {
        return Err(VaultError::Config(format!(
            "invalid transit key name {key:?}"
        )));
    }
    Ok(format!("{mount}/{op}/{key}"))
}

fn json_body(value: &impl Serialize) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(serde_json::to_vec(value).expect("request body serializes"))
}

impl Client {
    /// `POST {mount}/encrypt/{key}`; returns the `vault:vN:` ciphertext.
    pub async fn encrypt(
        &self,
        token: &VaultToken,
        mount: &str,
        key: &str,
        plaintext: &Plaintext,
        context: Option<&str>,
    ) -> Result<String, VaultError> {
        #[derive(Serialize)]
        struct Req<'a> {
            plaintext: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            context: Option<String>,
        }
        let path = key_path(mount, "encrypt", key)?;
        let encoded = plaintext.to_base64();
        let body = json_body(&Req {
            plaintext: &encoded,
            context: context.map(context_for),
        });
        drop(encoded);
        let out: Data<CiphertextOut> = self
            .call(Method::POST, &path, Some(token), Some(body))
            .await?;
        Ok(out.data.ciphertext)
    }

    /// `POST {mount}/decrypt/{key}`; the plaintext goes straight into a [`Plaintext`].
    pub async fn decrypt(
        &self,
        token: &VaultToken,
        mount: &str,
        key: &str,
        ciphertext: &str,
        context: Option<&str>,
    ) -> Result<Plaintext, VaultError> {
        let (path, answer) = self
            .on_ciphertext(token, mount, "decrypt", key, ciphertext, context)
            .await?;
        decrypt_answer(&path, &answer.body)
    }

    /// `POST {mount}/rewrap/{key}`: the same secret under the key's latest version,
    /// without the plaintext leaving Vault.
    pub async fn rewrap(
        &self,
        token: &VaultToken,
        mount: &str,
        key: &str,
        ciphertext: &str,
        context: Option<&str>,
    ) -> Result<String, VaultError> {
        let (path, answer) = self
            .on_ciphertext(token, mount, "rewrap", key, ciphertext, context)
            .await?;
        rewrap_answer(&path, &answer.body)
    }

    /// `POST {mount}/{operation}/{key}` on one ciphertext: decrypt and rewrap. Returns
    /// the path and the 2xx answer.
    async fn on_ciphertext(
        &self,
        token: &VaultToken,
        mount: &str,
        operation: &str,
        key: &str,
        ciphertext: &str,
        context: Option<&str>,
    ) -> Result<(String, Reply), VaultError> {
        let path = key_path(mount, operation, key)?;
        let body = json_body(&CipherRequest {
            ciphertext,
            context: context.map(context_for),
        });
        let answer = self
            .send(Method::POST, &path, Some(token), Some(body))
            .await?;
        Ok((path, answer))
    }

    /// `POST {mount}/rewrap/{key}` with `batch_input`. One result per item, in order:
    /// a new ciphertext, or Vault's message for that item.
    pub async fn rewrap_batch(
        &self,
        token: &VaultToken,
        mount: &str,
        key: &str,
        items: &[BatchItem],
    ) -> Result<Vec<Result<String, String>>, VaultError> {
        #[derive(Serialize)]
        struct Req<'a> {
            batch_input: Vec<CipherRequest<'a>>,
        }
        let path = key_path(mount, "rewrap", key)?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let body = json_body(&Req {
            batch_input: items
                .iter()
                .map(|item| CipherRequest {
                    ciphertext: &item.ciphertext,
                    context: item.context.as_deref().map(context_for),
                })
                .collect(),
        });
        let answer = self
            .send_raw(Method::POST, &path, Some(token), Some(body))
            .await?;
        batch_answer(&path, &answer, items.len())
    }

    /// `GET {mount}/keys/{key}`.
    pub async fn read_key(
        &self,
        token: &VaultToken,
        mount: &str,
        key: &str,
    ) -> Result<KeyInfo, VaultError> {
        let path = key_path(mount, "keys", key)?;
        let answer = self.send(Method::GET, &path, Some(token), None).await?;
        key_answer(&path, &answer.body)
    }

    /// `POST {mount}/keys/{key}/rotate`: a new latest version.
    pub async fn rotate_key(
        &self,
        token: &VaultToken,
        mount: &str,
        key: &str,
    ) -> Result<(), VaultError> {
        let path = format!("{}/rotate", key_path(mount, "keys", key)?);
        self.send(Method::POST, &path, Some(token), None).await?;
        Ok(())
    }

    /// `POST {mount}/keys/{key}/config`: retire old versions. Versions below
    /// `min_decryption_version` can no longer decrypt or be rewrapped; Vault only lets a
    /// key be trimmed up to both minimums, so retirement sets both.
    pub async fn configure_key(
        &self,
        token: &VaultToken,
        mount: &str,
        key: &str,
        config: KeyConfig,
    ) -> Result<(), VaultError> {
        let path = format!("{}/config", key_path(mount, "keys", key)?);
        let body = json_body(&config);
        self.send(Method::POST, &path, Some(token), Some(body))
            .await?;
        Ok(())
    }

    /// `POST {mount}/keys/{key}/trim` with `min_available_version`: versions below it
    /// are deleted for good. Vault only allows it up to `min_decryption_version`.
    pub async fn trim_key(
        &self,
        token: &VaultToken,
        mount: &str,
        key: &str,
        min_available_version: u64,
    ) -> Result<(), VaultError> {
        let path = format!("{}/trim", key_path(mount, "keys", key)?);
        let body =
            json_body(&serde_json::json!({ "min_available_version": min_available_version }));
        self.send(Method::POST, &path, Some(token), Some(body))
            .await?;
        Ok(())
    }
}

/// A 2xx decrypt answer: `data.plaintext`, base64, decoded straight into a
/// [`Plaintext`]. Errors never quote the body.
#[doc(hidden)]
pub fn decrypt_answer(path: &str, body: &[u8]) -> Result<Plaintext, VaultError> {
    parse::<Data<PlaintextOut>>(path, body).map(|out| out.data.plaintext)
}

/// A 2xx rewrap (or encrypt) answer: `data.ciphertext`.
#[doc(hidden)]
pub fn rewrap_answer(path: &str, body: &[u8]) -> Result<String, VaultError> {
    parse::<Data<CiphertextOut>>(path, body).map(|out| out.data.ciphertext)
}

/// A 2xx key read: `data` with the key's name, type and versions.
#[doc(hidden)]
pub fn key_answer(path: &str, body: &[u8]) -> Result<KeyInfo, VaultError> {
    parse::<Data<KeyInfo>>(path, body).map(|out| out.data)
}

/// A batch rewrap's answer, whatever its status: one result per item, in order (Vault
/// answers 400 when any item failed, still with every item's result).
fn batch_answer(
    path: &str,
    answer: &Reply,
    items: usize,
) -> Result<Vec<Result<String, String>>, VaultError> {
    let batch = match parse::<Data<BatchOut>>(path, &answer.body) {
        Ok(out) if answer.status.is_success() || answer.status.as_u16() == 400 => out.data,
        _ if !answer.status.is_success() => {
            return Err(status_error(path, answer));
        }
        Err(e) => return Err(e),
        Ok(out) => out.data,
    };
    if batch.batch_results.len() != items {
        return Err(VaultError::BadResponse {
            path: path.to_string(),
            detail: format!("{} results for {items} items", batch.batch_results.len()),
        });
    }
    Ok(batch
        .batch_results
        .into_iter()
        .map(|r| match (r.ciphertext, r.error) {
            (Some(ct), None) if !ct.is_empty() => Ok(ct),
            (_, Some(err)) if !err.is_empty() => Err(err),
            _ => Err("no ciphertext in result".to_string()),
        })
        .collect())
}

/// [`batch_answer`] on a status and a body, for the fuzz targets.
#[doc(hidden)]
pub fn rewrap_batch_answer(
    path: &str,
    status: u16,
    body: &[u8],
    items: usize,
) -> Result<Vec<Result<String, String>>, VaultError> {
    let answer = Reply {
        status: reqwest::StatusCode::from_u16(status)
            .map_err(|_| VaultError::Config(format!("HTTP status {status} out of range")))?,
        body: Zeroizing::new(body.to_vec()),
        retry_after: None,
    };
    batch_answer(path, &answer, items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_ciphertexts() {
        assert_eq!(ciphertext_version("vault:v3:abc"), Some(3));
        assert_eq!(ciphertext_version("vault:v12:x:y"), Some(12));
        assert_eq!(ciphertext_version("vault:v:abc"), None);
        assert_eq!(ciphertext_version("vault:v1:"), None);
        assert_eq!(ciphertext_version("v1:abc"), None);
    }

    #[test]
    fn context_is_base64_of_binding() {
        assert_eq!(context_for("shop/app-secrets"), "c2hvcC9hcHAtc2VjcmV0cw==");
    }

    #[test]
    fn names_that_change_the_path_are_refused() {
        assert!(key_path("transit", "decrypt", "../sys").is_err());
        assert!(key_path("transit", "decrypt", "a/b").is_err());
        assert!(key_path("transit", "decrypt", "").is_err());
        assert!(key_path("", "decrypt", "k").is_err());
        assert_eq!(
            key_path("team/transit", "decrypt", "k").unwrap(),
            "team/transit/decrypt/k"
        );
    }
}
